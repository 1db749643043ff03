//! The cluster API's wire types: what a metadata node says about itself
//! ([`NodeStatus`]), the requests that form and change the metadata
//! cluster, and the leader's view of the chunk servers
//! ([`ChunkClusterStatus`]). All of them travel as JSON on the operator
//! routes of [`crate::routes`]; the chunk status is also a record.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::chunks::ChunkServerId;
use crate::record::Record;

/// A metadata node's Raft id (positive).
pub type NodeId = u64;

/// What a metadata node is doing in Raft right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Leader,
    Candidate,
    Follower,
    /// Receives the log but does not vote (being added).
    Learner,
    /// Raft stopped on this node (fail-stop).
    Shutdown,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "Leader",
            Role::Candidate => "Candidate",
            Role::Follower => "Follower",
            Role::Learner => "Learner",
            Role::Shutdown => "Shutdown",
        }
    }
}

impl fmt::Display for Role {
    /// The name, padded to the formatter's width (tables line up).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What `GET /v1/status` reports about one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: NodeId,
    pub addr: String,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// The namespace digest (hex) and the log index it covers.
    pub digest: String,
    pub digest_index: u64,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, String>,
    pub wal_syncs: u64,
    pub running: bool,
    /// The ToastyFS version the node runs (empty from nodes older than
    /// this field).
    #[serde(default)]
    pub version: String,
}

/// `POST /v1/cluster/init`: the initial voters, id → address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitRequest {
    pub members: BTreeMap<NodeId, String>,
}

/// `POST /v1/cluster/add-node`: added as a learner, promoted to voter once
/// it has caught up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddNodeRequest {
    pub id: NodeId,
    pub addr: String,
}

/// `POST /v1/cluster/remove-node`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveNodeRequest {
    pub id: NodeId,
}

/// What the leader knows of one chunk server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkServerInfo {
    pub server: ChunkServerId,
    pub addr: String,
    pub up: bool,
    pub chunks: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    /// Milliseconds since its last report.
    pub last_report_ms: u64,
}

/// The chunk side of `cluster status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkClusterStatus {
    pub servers: Vec<ChunkServerInfo>,
    pub replication_factor: u32,
    /// Referenced chunks by [`crate::chunks::ChunkHealth`]: some live
    /// copies but fewer than the factor.
    pub under_replicated: u64,
    /// Referenced chunks with no known copy after every server has had
    /// time to report.
    pub lost: u64,
    /// Referenced chunks with no copy reported yet that may still exist
    /// (the leader's warm-up, or a placement not yet reported).
    #[serde(default)]
    pub pending: u64,
}

impl Record for ChunkClusterStatus {
    const KIND: u8 = crate::chunks::kinds::CHUNK_CLUSTER_STATUS;
    const MAX_BODY_BYTES: usize = 16 << 20;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The role travels as its name, as operators and scripts read it.
    #[test]
    fn role_is_its_name_in_json() {
        assert_eq!(
            serde_json::to_string(&Role::Leader).ok().as_deref(),
            Some("\"Leader\"")
        );
        let back: Role = serde_json::from_str("\"Learner\"").expect("decodes");
        assert_eq!(back, Role::Learner);
    }

    /// The JSON name and the displayed name agree, and tables line up.
    #[test]
    fn role_displays_its_name_padded() {
        for role in [
            Role::Leader,
            Role::Candidate,
            Role::Follower,
            Role::Learner,
            Role::Shutdown,
        ] {
            let json = serde_json::to_string(&role).expect("encodes");
            assert_eq!(json.trim_matches('"'), role.to_string());
        }
        assert_eq!(format!("{:<10}|", Role::Leader), "Leader    |");
    }
}
