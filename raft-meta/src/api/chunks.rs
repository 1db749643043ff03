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
use toastyfs_proto::record;

use super::{forward, is_forwarded, record_response, ApiError, AppState};
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

/// `POST /v1/chunks/report`: a chunk server's report; answers its orders.
pub async fn report(
    State(node): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let report: ChunkReport = record::decode(&body)?;
    check_count(report.added.len() + report.lost.len())?;
    let Some(mut map) = node.replication.map_if_leader(&node.raft) else {
        return forward(
            &node,
            "/v1/chunks/report",
            body,
            &headers,
            to_leader(&node),
            "chunk_report",
        )
        .await;
    };
    let (orders, event) = map.report(report, Instant::now());
    drop(map);
    replication::log_events(event.as_slice());
    record_request("chunk_report", "ok");
    Ok(record_response(&orders))
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
    let Some(mut map) = node.replication.map_if_leader(&node.raft) else {
        return forward(
            &node,
            "/v1/chunks/placement",
            body,
            &headers,
            to_leader(&node),
            "placement",
        )
        .await;
    };
    replication::follow_settings(&DbReader::new(&node.db), &mut map)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let reply = map.place(&request.hashes, Instant::now());
    drop(map);
    match reply {
        Ok(reply) => {
            record_request("placement", "ok");
            Ok(record_response(&reply))
        }
        Err(e) => {
            record_request("placement", "not_ready");
            Err(ApiError::Unavailable(e.to_string()))
        }
    }
}

/// `POST /v1/chunks/locate`: the live holders of each chunk.
pub async fn locate(
    State(node): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: LocateRequest = record::decode(&body)?;
    check_count(request.hashes.len())?;
    let Some(map) = node.replication.map_if_leader(&node.raft) else {
        return forward(
            &node,
            "/v1/chunks/locate",
            body,
            &headers,
            to_leader(&node),
            "locate",
        )
        .await;
    };
    let reply = map.locate(&request.hashes, Instant::now());
    drop(map);
    match reply {
        Ok(reply) => {
            record_request("locate", "ok");
            Ok(record_response(&reply))
        }
        Err(e) => {
            record_request("locate", "not_ready");
            Err(ApiError::Unavailable(e.to_string()))
        }
    }
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
