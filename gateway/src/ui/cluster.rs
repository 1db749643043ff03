//! The cluster page's data: every metadata node's status (asked in
//! parallel, each within a bound, so a down node shows as down rather
//! than stalling the page) and the leader's view of the chunk servers.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;
use toastyfs_client::Client;
use toastyfs_proto::cluster::{ChunkClusterStatus, NodeStatus};

/// How long the page waits for one node's answer.
const NODE_ANSWER_BOUND: Duration = Duration::from_secs(2);

/// One metadata node as the page shows it.
#[derive(Debug, Serialize)]
pub struct NodeView {
    pub addr: String,
    /// `None` when the node did not answer; `error` says why.
    pub status: Option<NodeStatus>,
    pub error: Option<String>,
}

/// The chunk side as the page shows it: the leader's status, with each
/// server's 64-bit id as a decimal string (a JavaScript number would
/// round it).
#[derive(Debug, Serialize)]
pub struct ChunksView {
    #[serde(flatten)]
    pub status: ChunkClusterStatus,
    pub server_ids: Vec<String>,
}

/// Everything the cluster page shows.
#[derive(Debug, Serialize)]
pub struct ClusterView {
    pub nodes: Vec<NodeView>,
    pub chunks: Option<ChunksView>,
    pub chunks_error: Option<String>,
}

async fn node(client: &Client, addr: String) -> NodeView {
    let admin = client.admin();
    match tokio::time::timeout(NODE_ANSWER_BOUND, admin.status(&addr)).await {
        Ok(Ok(status)) => NodeView {
            addr,
            status: Some(status),
            error: None,
        },
        Ok(Err(e)) => NodeView {
            addr,
            status: None,
            error: Some(e.to_string()),
        },
        Err(_) => NodeView {
            addr,
            status: None,
            error: Some(format!("no answer within {NODE_ANSWER_BOUND:?}")),
        },
    }
}

/// Asks the configured nodes, then any member they name that was not
/// configured (a node added since the gateway started).
pub async fn gather(client: &Client) -> ClusterView {
    let configured: BTreeSet<String> = client.config().meta.iter().cloned().collect();
    let mut nodes = join_all(configured.iter().cloned().map(|a| node(client, a))).await;
    let members: BTreeSet<String> = nodes
        .iter()
        .filter_map(|n| n.status.as_ref())
        .flat_map(|s| s.nodes.values().cloned())
        .filter(|addr| !configured.contains(addr))
        .collect();
    nodes.extend(join_all(members.into_iter().map(|a| node(client, a))).await);
    nodes.sort_by_key(|n| n.status.as_ref().map_or(u64::MAX, |s| s.id));
    let chunk_status =
        tokio::time::timeout(NODE_ANSWER_BOUND * 2, client.admin().chunk_status()).await;
    let (chunks, chunks_error) = match chunk_status {
        Ok(Ok(status)) => {
            let server_ids = status
                .servers
                .iter()
                .map(|s| s.server.0.to_string())
                .collect();
            (Some(ChunksView { status, server_ids }), None)
        }
        Ok(Err(e)) => (None, Some(e.to_string())),
        Err(_) => (None, Some("the leader did not answer".to_owned())),
    };
    ClusterView {
        nodes,
        chunks,
        chunks_error,
    }
}
