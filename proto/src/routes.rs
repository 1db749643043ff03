//! Every HTTP route of every ToastyFS process, the record content type and
//! the header that marks a forwarded request: the one wire contract the
//! servers route by and the clients send to. No path literal lives
//! anywhere else.
//!
//! Metadata node routes carry records ([`RECORD_CONTENT_TYPE`]) except the
//! operator endpoints (status, cluster management), which speak JSON.
//! Chunk server routes carry raw chunk bytes.

use crate::ChunkHash;

/// Content type of a body that is one record (`record.rs`).
pub const RECORD_CONTENT_TYPE: &str = "application/x-toastyfs-record";

/// Set on a request a metadata node forwards to its leader. A forwarded
/// request is never forwarded again, so requests cannot bounce between
/// followers.
pub const FORWARDED_HEADER: &str = "x-toastyfs-forwarded";
/// On every answer of a metadata node that knows its leader: the leader's
/// address, so clients and chunk servers send their next request there
/// first (a hint: hedging still covers a leader that does not answer).
pub const LEADER_HEADER: &str = "x-toastyfs-leader";

/// Raft RPCs between metadata nodes (records).
pub const RAFT_APPEND: &str = "/raft/append";
pub const RAFT_VOTE: &str = "/raft/vote";
pub const RAFT_SNAPSHOT: &str = "/raft/snapshot";
/// A candidate asks whether a voter would vote for it, before it
/// campaigns (a pre-vote; raft-meta's `election`).
pub const RAFT_PRE_VOTE: &str = "/raft/pre-vote";
/// A stopping leader asks a caught-up voter to campaign now (raft-meta's
/// `handover`).
pub const RAFT_CAMPAIGN: &str = "/raft/campaign";

/// A namespace write: a `Proposal` in, a `CommandResult` out.
pub const WRITE: &str = "/v1/write";
/// A linearizable namespace read: a `Query` in, a `QueryResult` out.
pub const READ: &str = "/v1/read";
/// A read any node answers from its own state (possibly stale).
pub const READ_STALE: &str = "/v1/read?stale=true";
/// Who the node takes the caller for: a [`crate::client_key::Whoami`]
/// (JSON); a gateway checks its users' keys with it.
pub const WHOAMI: &str = "/v1/whoami";
/// One node's [`crate::cluster::NodeStatus`] (JSON).
pub const STATUS: &str = "/v1/status";

/// A chunk server's `ChunkReport`; answered with its `ChunkOrders`.
pub const CHUNK_REPORT: &str = "/v1/chunks/report";
/// A `PlacementRequest` for new chunks; answered with a `PlacementReply`.
pub const CHUNK_PLACEMENT: &str = "/v1/chunks/placement";
/// A `LocateRequest`; answered with the live holders of each chunk.
pub const CHUNK_LOCATE: &str = "/v1/chunks/locate";
/// The leader's `ChunkClusterStatus` (JSON).
pub const CHUNK_STATUS: &str = "/v1/chunks/status";
/// A `ChunkHealthRequest`; answered with each chunk's `ChunkHealth`, by
/// the definition `cluster status` counts with.
pub const CHUNK_HEALTH: &str = "/v1/chunks/health";

/// Cluster management (JSON): initialise, add a node, remove a node.
pub const CLUSTER_INIT: &str = "/v1/cluster/init";
pub const CLUSTER_ADD_NODE: &str = "/v1/cluster/add-node";
pub const CLUSTER_REMOVE_NODE: &str = "/v1/cluster/remove-node";
/// A backup of the namespace (the leader's, once everything committed
/// before the request is applied), streamed in snapshot records; needs
/// the cluster secret.
pub const CLUSTER_BACKUP: &str = "/v1/cluster/backup";

/// Prometheus metrics and liveness, on every process.
pub const METRICS: &str = "/metrics";
pub const HEALTH: &str = "/health";

/// Chunk server: one chunk by hash (PUT upload, GET download, PATCH).
pub const CHUNK: &str = "/chunks/{hash}";
/// Chunk server: check one copy now (POST, no body): the server reads and
/// hashes it, quarantining it if corrupt. A client that got bytes not
/// matching the hash says so here.
pub const CHUNK_VERIFY: &str = "/chunks/{hash}/verify";
/// On a chunk download: the caller hashes what it receives itself, so the
/// chunk server sends the copy without hashing it first (a mismatch is
/// the caller's to report on [`CHUNK_VERIFY`]). Only whole-chunk GETs; a
/// range is always verified by the server, which alone sees the whole.
pub const CALLER_VERIFIES_HEADER: &str = "x-toastyfs-caller-verifies";
/// On a chunk upload: the chunk servers that should also store it, in
/// order, comma-separated. The server stores the body and, while it
/// arrives, streams it to the first of them with the rest of the list
/// (chain replication: the client sends each chunk once); its answer
/// ([`crate::chunks::UploadReply`]) names every copy made durable.
pub const CHAIN_HEADER: &str = "x-toastyfs-chain";
/// Marks an upload a chunk server passes on down a chain: it takes a
/// slot of its own at the next server or is refused at once (503), never
/// queued behind other uploads.
pub const CHAIN_HOP_HEADER: &str = "x-toastyfs-chain-hop";
/// Chunk server: which of a list of hashes it holds (JSON).
pub const CHUNKS_EXISTS: &str = "/chunks/exists";
/// Chunk server: its store's status (JSON).
pub const CHUNK_SERVER_STATUS: &str = "/status";

/// The path of one chunk on a chunk server ([`CHUNK`] filled in).
pub fn chunk(hash: &ChunkHash) -> String {
    format!("/chunks/{hash}")
}

/// The verify route of one chunk ([`CHUNK_VERIFY`] filled in).
pub fn chunk_verify(hash: &ChunkHash) -> String {
    format!("/chunks/{hash}/verify")
}

/// `http://{addr}{path}`: the URL of a route on a process.
pub fn url(addr: &str, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_path_fills_the_route_pattern() {
        let hash = ChunkHash::of(b"x");
        assert_eq!(chunk(&hash), CHUNK.replace("{hash}", &hash.to_string()));
        assert_eq!(
            chunk_verify(&hash),
            CHUNK_VERIFY.replace("{hash}", &hash.to_string())
        );
    }

    #[test]
    fn stale_read_is_the_read_route_with_a_flag() {
        assert!(READ_STALE.starts_with(READ));
    }
}
