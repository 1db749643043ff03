//! The chunk endpoints of a metadata node: chunk server reports, placement
//! of new chunks, chunk locations and health, and the chunk side of
//! cluster status.
//!
//! They are answered from the leader's soft state ([`crate::replication`]);
//! a follower forwards them to the leader once, like namespace writes.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use toastyfs_client::transport::SendOptions;
use toastyfs_proto::chunk_token::REVOCATION_NOTICE_MS;
use toastyfs_proto::chunks::{
    ChunkHealthReply, ChunkHealthRequest, ChunkReport, LocateRequest, PlacementRequest,
    MAX_HASHES_PER_MESSAGE,
};
use toastyfs_proto::client_key::KeyId;
use toastyfs_proto::cluster::ChunkClusterStatus;
use toastyfs_proto::namespace::{Command, MAX_CHUNKS_PER_OP};
use toastyfs_proto::record::{self, Record};
use toastyfs_proto::{addr, routes};

use super::forward::{self, Forward};
use super::reply::{record_response, ApiError};
use super::AppState;
use crate::auth::now_ms;
use crate::callers::Caller;
use crate::chunk_map::{ChunkMap, NotReady, PlaceError};
use crate::limits::{CHUNK_STATUS_FORWARD_TIMEOUT, FORWARD_TIMEOUT};
use crate::metrics::record_request;
use crate::namespace;
use crate::node::Node;
use crate::replication;
use crate::store::state::DbReader;

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
    if node.replication.confirm_lead(&node.raft).await {
        if let Some(mut map) = node.replication.map_if_leader(&node.raft) {
            let reply = answer(&mut map);
            drop(map);
            record_request(kind, if reply.is_ok() { "ok" } else { "not_ready" });
            return reply.map(|r| record_response(&r));
        }
    }
    let request = Forward::Post {
        path,
        body,
        json: false,
    };
    let options = SendOptions::new(FORWARD_TIMEOUT);
    forward::to_leader(node, headers, node.leader_addr(), request, options, kind).await
}

fn not_ready(e: NotReady) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

/// [`routes::CHUNK_REPORT`]: a chunk server's report; answers its orders.
pub async fn report(
    State(node): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let report: ChunkReport = record::decode(&body)?;
    addr::validate(&report.addr)
        .map_err(|e| ApiError::BadRequest(format!("the report's address: {e}")))?;
    check_count(report.added.len() + report.lost.len())?;
    check_count(report.dropping.len())?;
    let path = routes::CHUNK_REPORT;
    on_leader(&node, &headers, body, path, "chunk_report", |map| {
        let (mut orders, event) = map.report(report, Instant::now());
        replication::log_events(event.as_slice());
        orders.revoked_keys = recently_revoked(&node)?;
        Ok(orders)
    })
    .await
}

/// The keys whose chunk tokens may still be live although revoked.
fn recently_revoked(node: &Node) -> Result<Vec<KeyId>, ApiError> {
    let since = now_ms().saturating_sub(REVOCATION_NOTICE_MS);
    namespace::client_keys::revoked_since(&DbReader::new(&node.db), since)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// [`routes::CHUNK_PLACEMENT`]: which new chunks the cluster already
/// holds, and where the others go. Condemned chunks among them are
/// pardoned first (the client uploads them again), and the reply names
/// the applied index the answer was decided at, which the commit carries.
pub async fn placement(
    State(node): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.may_upload()?;
    let request: PlacementRequest = record::decode(&body)?;
    check_count(request.hashes.len())?;
    if node.replication.confirm_lead(&node.raft).await {
        pardon_condemned(&node, &request.hashes).await?;
    }
    let path = routes::CHUNK_PLACEMENT;
    on_leader(&node, &headers, body, path, "placement", |map| {
        let reader = DbReader::new(&node.db);
        let internal = |e: crate::namespace::kv::StoreError| ApiError::Internal(e.to_string());
        replication::follow_settings(&reader, map).map_err(internal)?;
        let placed_at = namespace::header(&reader).map_err(internal)?.applied_index;
        let referenced = |hash: &_| namespace::is_referenced(&reader, hash);
        map.place(&request.hashes, Instant::now(), placed_at, referenced)
            .map_err(|e| match e {
                PlaceError::NotReady(e) => not_ready(e),
                PlaceError::Read(e) => internal(e),
            })
    })
    .await
}

/// Lifts the condemnation of the requested chunks that have one, through
/// the log, before the placement is answered. If the pardon does not
/// apply, the placement still answers: the commit is then refused for the
/// chunk still condemned, and the client places it again.
async fn pardon_condemned(
    node: &Node,
    hashes: &[toastyfs_proto::ChunkHash],
) -> Result<(), ApiError> {
    let reader = DbReader::new(&node.db);
    let condemned = replication::condemned_among(&reader, hashes)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    for batch in condemned.chunks(MAX_CHUNKS_PER_OP) {
        let command = Command::Pardon {
            hashes: batch.to_vec(),
        };
        replication::propose_collection(&node.proposer, command).await;
    }
    Ok(())
}

/// [`routes::CHUNK_LOCATE`]: the live holders of each chunk.
pub async fn locate(
    State(node): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: LocateRequest = record::decode(&body)?;
    check_count(request.hashes.len())?;
    let path = routes::CHUNK_LOCATE;
    on_leader(&node, &headers, body, path, "locate", |map| {
        map.locate(&request.hashes, Instant::now())
            .map_err(not_ready)
    })
    .await
}

/// [`routes::CHUNK_HEALTH`]: each chunk's health, by the definition
/// [`status`] counts with, at the replication factor now in force.
pub async fn health(
    State(node): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: ChunkHealthRequest = record::decode(&body)?;
    check_count(request.hashes.len())?;
    let reader = DbReader::new(&node.db);
    on_leader(
        &node,
        &headers,
        body,
        routes::CHUNK_HEALTH,
        "health",
        |map| {
            replication::follow_settings(&reader, map)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let now = Instant::now();
            Ok(ChunkHealthReply {
                health: request.hashes.iter().map(|h| map.health(h, now)).collect(),
            })
        },
    )
    .await
}

/// The chunk status as this node sees it while leading; `None` if it
/// does not lead (or stopped meanwhile). The referenced chunks are counted
/// a page at a time, never under one hold of the map's lock.
async fn leader_status(node: &AppState) -> Result<Option<ChunkClusterStatus>, ApiError> {
    let internal = |e: crate::namespace::kv::StoreError| ApiError::Internal(e.to_string());
    let term = {
        let Some(mut map) = node.replication.map_if_leader(&node.raft) else {
            return Ok(None);
        };
        replication::follow_settings(&DbReader::new(&node.db), &mut map).map_err(internal)?;
        map.term()
    };
    let Some(counts) = replication::count_health(&node.replication, &node.raft, &node.db, term)
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let map = node.replication.map_in_term(&node.raft, term);
    Ok(map.map(|map| map.status(Instant::now(), counts)))
}

/// [`routes::CHUNK_STATUS`] (JSON): chunk servers, replication factor,
/// under-replicated, pending and lost chunks, as the leader sees them.
pub async fn status(
    State(node): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if node.replication.confirm_lead(&node.raft).await {
        if let Some(status) = leader_status(&node).await? {
            return Ok(Json(status).into_response());
        }
    }
    let request = Forward::Get {
        path: routes::CHUNK_STATUS,
    };
    let options = SendOptions::new(CHUNK_STATUS_FORWARD_TIMEOUT);
    forward::to_leader(
        &node,
        &headers,
        node.leader_addr(),
        request,
        options,
        "chunk_status",
    )
    .await
}
