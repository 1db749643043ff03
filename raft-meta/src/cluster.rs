//! Cluster management on a metadata node: forming the cluster from its
//! initial voters, adding a node (learner first, voter once caught up)
//! and removing one. The HTTP handlers in `api/cluster.rs` only decode,
//! forward to the leader when this node does not lead, and encode.

use std::collections::BTreeMap;

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use toastyfs_proto::cluster::{AddNodeRequest, RemoveNodeRequest};

use crate::node::Node;
use crate::types::NodeId;

/// Why a management request was refused. Each is definite: nothing
/// changed, except where the message says a learner was added.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("node {0} must be one of the initial members")]
    NotAMember(NodeId),
    #[error("the cluster is already initialised; refusing to initialise it again")]
    AlreadyInitialised,
    #[error("the membership is not valid: {0}")]
    BadMembership(String),
    #[error("{0}")]
    Refused(String),
}

/// Forms the cluster with `members` as its voters; this node must be one.
pub async fn init(node: &Node, members: BTreeMap<NodeId, String>) -> Result<(), ClusterError> {
    if !members.contains_key(&node.id) {
        return Err(ClusterError::NotAMember(node.id));
    }
    for (id, addr) in &members {
        toastyfs_proto::addr::validate(addr)
            .map_err(|e| ClusterError::BadMembership(format!("node {id}: {e}")))?;
    }
    let members: BTreeMap<NodeId, BasicNode> = members
        .into_iter()
        .map(|(id, addr)| (id, BasicNode::new(addr)))
        .collect();
    match node.raft.initialize(members).await {
        Ok(()) => {
            tracing::info!("cluster initialised");
            Ok(())
        }
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
            Err(ClusterError::AlreadyInitialised)
        }
        Err(e) => Err(ClusterError::BadMembership(e.to_string())),
    }
}

/// Adds a node as a learner, waits for it to catch up, then makes it a
/// voter. Runs on the leader.
pub async fn add_node(node: &Node, request: &AddNodeRequest) -> Result<String, ClusterError> {
    toastyfs_proto::addr::validate(&request.addr)
        .map_err(|e| ClusterError::BadMembership(format!("node {}: {e}", request.id)))?;
    tracing::info!(id = request.id, addr = %request.addr, "adding node as learner");
    node.raft
        .add_learner(request.id, BasicNode::new(&request.addr), true)
        .await
        .map_err(|e| ClusterError::Refused(e.to_string()))?;
    tracing::info!(id = request.id, "learner caught up; promoting to voter");
    node.raft
        .change_membership(ChangeMembers::AddVoterIds([request.id].into()), false)
        .await
        .map_err(|e| {
            ClusterError::Refused(format!(
                "node {} was added as a learner but not promoted to voter: {e}",
                request.id
            ))
        })?;
    Ok(format!("node {} added as a voter", request.id))
}

/// Removes a voter. Runs on the leader.
pub async fn remove_node(node: &Node, request: &RemoveNodeRequest) -> Result<String, ClusterError> {
    tracing::info!(id = request.id, "removing node");
    node.raft
        .change_membership(ChangeMembers::RemoveVoters([request.id].into()), false)
        .await
        .map_err(|e| ClusterError::Refused(e.to_string()))?;
    Ok(format!("node {} removed", request.id))
}
