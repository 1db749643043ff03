//! The chunk endpoints of a metadata node: chunk server reports, placement
//! of new chunks, chunk locations, and the chunk side of cluster status.
//!
//! They are answered from the leader's soft state ([`crate::replication`]);
//! a follower forwards them to the leader once, like namespace writes.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use openraft::error::ForwardToLeader;
use openraft::BasicNode;
use toastyfs_proto::chunks::{
    ChunkClusterStatus, ChunkReport, LocateRequest, PlacementRequest, MAX_HASHES_PER_MESSAGE,
};
use toastyfs_proto::record::{self, Record};

use super::{forward, is_forwarded, record_response, ApiError, AppState};
use crate::chunk_map::{ChunkMap, NotReady};
use crate::metrics::record_request;
use crate::node::Node;
use crate::replication;
use crate::store::state::DbReader;

fn to_leader(node: &Node) -> ForwardToLeader<crate::types::NodeId, BasicNode> {
    let leader = node.leader_addr();
    ForwardToLeader {
        leader_id: leader.as_ref().map(|(id, _)| *id),
        leader_node: leader.map(|(_, addr)| BasicNode::new(addr)),
    }
}

fn check_count(n: usize) -> Result<(), ApiError> {
    if n > MAX_HASHES_PER_MESSAGE {
        return Err(ApiError::BadRequest(format!(
            "{n} hashes in one request; at most {MAX_HASHES_PER_MESSAGE}"
        )));
    }
    Ok(())
}

/// Answers from the leader's chunk map, or forwards the request to the
/// leader when this node does not lead.
async fn on_leader<R: Record>(
    node: &Node,
    headers: &HeaderMap,
    body: Bytes,
    path: &str,
    kind: &'static str,
    answer: impl FnOnce(&mut ChunkMap) -> Result<R, ApiError>,
) -> Result<Response, ApiError> {
    let Some(mut map) = node.replication.map_if_leader(&node.raft) else {
        return forward(node, path, body, headers, to_leader(node), kind).await;
    };
    let reply = answer(&mut map);
    drop(map);
    record_request(kind, if reply.is_ok() { "ok" } else { "not_ready" });
    reply.map(|r| record_response(&r))
}

fn not_ready(e: NotReady) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

/// `POST /v1/chunks/report`: a chunk server's report; answers its orders.
pub async fn report(
    State(node): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let report: ChunkReport = record::decode(&body)?;
    check_count(report.added.len() + report.lost.len())?;
    let path = "/v1/chunks/report";
    on_leader(&node, &headers, body, path, "chunk_report", |map| {
        let (orders, event) = map.report(report, Instant::now());
        replication::log_events(event.as_slice());
        Ok(orders)
    })
    .await
}

/// `POST /v1/chunks/placement`: which new chunks the cluster already
/// holds, and where the others go.
pub async fn placement(
    State(node): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: PlacementRequest = record::decode(&body)?;
    check_count(request.hashes.len())?;
    let path = "/v1/chunks/placement";
    on_leader(&node, &headers, body, path, "placement", |map| {
        replication::follow_settings(&DbReader::new(&node.db), map)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        map.place(&request.hashes, Instant::now())
            .map_err(not_ready)
    })
    .await
}

/// `POST /v1/chunks/locate`: the live holders of each chunk.
pub async fn locate(
    State(node): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: LocateRequest = record::decode(&body)?;
    check_count(request.hashes.len())?;
    let path = "/v1/chunks/locate";
    on_leader(&node, &headers, body, path, "locate", |map| {
        map.locate(&request.hashes, Instant::now())
            .map_err(not_ready)
    })
    .await
}

/// `GET /v1/chunks/status` (JSON): chunk servers, replication factor,
/// under-replicated and lost chunks, as the leader sees them.
pub async fn status(
    State(node): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ChunkClusterStatus>, ApiError> {
    if let Some(mut map) = node.replication.map_if_leader(&node.raft) {
        replication::follow_settings(&DbReader::new(&node.db), &mut map)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let lost = replication::count_lost(&node.db, &map)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        return Ok(Json(map.status(Instant::now(), lost)));
    }
    let Some((leader_id, addr)) = node.leader_addr() else {
        return Err(ApiError::NoLeader);
    };
    if leader_id == node.id || is_forwarded(&headers) {
        return Err(ApiError::NoLeader);
    }
    node.transport
        .get_json(&addr, "/v1/chunks/status", Duration::from_secs(10))
        .await
        .map(Json)
        .map_err(|e| ApiError::ForwardFailed(e.to_string()))
}
