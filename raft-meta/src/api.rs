//! The one place a metadata node receives requests: an axum router for
//! Raft RPCs (`/raft/*`), the namespace API (`/v1/write`, `/v1/read`),
//! chunk placement, locations and chunk server reports (`/v1/chunks/*`,
//! in [`chunks`]), cluster management (`/v1/cluster/*`), status and metrics.
//!
//! A write or linearizable read that reaches a follower is forwarded to the
//! leader once (never twice: a forwarded request that again finds no
//! leader is answered 503 naming what is known), so no client needs to
//! know who leads. Every body is bounded in size.

mod chunks;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::error::{CheckIsLeaderError, ForwardToLeader, RaftError};
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};
use toastyfs_proto::namespace::{CommandResult, Proposal, Query, QueryResult};
use toastyfs_proto::record::{self, Record, RecordError};

use crate::metrics::record_request;
use crate::network::{AppendReply, AppendRequest, SnapshotReply, SnapshotRpc, VoteReply, VoteRpc};
use crate::node::Node;
use crate::proposer::ProposeError;
use crate::transport::{FORWARDED_HEADER, RECORD_CONTENT_TYPE};
use crate::types::NodeId;

/// Largest request body (a Raft append batch or snapshot chunk).
pub const MAX_REQUEST_BYTES: usize = 32 << 20;

/// An error answer; `status` maps each case once.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    BadRecord(#[from] RecordError),
    #[error("no leader is known right now (election in progress?); retry shortly")]
    NoLeader,
    #[error("the leader could not be reached to forward the request: {0}")]
    ForwardFailed(String),
    #[error("this node is not ready: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRecord(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NoLeader | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ForwardFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

type AppState = Arc<Node>;

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/raft/append", post(raft_append))
        .route("/raft/vote", post(raft_vote))
        .route("/raft/snapshot", post(raft_snapshot))
        .route("/v1/write", post(write))
        .route("/v1/read", post(read))
        .route("/v1/status", get(status))
        .route("/v1/chunks/report", post(chunks::report))
        .route("/v1/chunks/placement", post(chunks::placement))
        .route("/v1/chunks/locate", post(chunks::locate))
        .route("/v1/chunks/status", get(chunks::status))
        .route("/v1/cluster/init", post(cluster_init))
        .route("/v1/cluster/add-node", post(add_node))
        .route("/v1/cluster/remove-node", post(remove_node))
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(node)
}

fn record_response<T: Record>(value: &T) -> Response {
    match record::encode(value) {
        Ok(bytes) => ([("content-type", RECORD_CONTENT_TYPE)], bytes).into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

async fn raft_append(State(node): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: AppendRequest = record::decode(&body)?;
    let reply = node.raft.append_entries(request.0).await;
    Ok(record_response(&AppendReply::from_owned(reply)))
}

async fn raft_vote(State(node): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: VoteRpc = record::decode(&body)?;
    let reply = node.raft.vote(request.0).await;
    Ok(record_response(&VoteReply::from_owned(reply)))
}

async fn raft_snapshot(State(node): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: SnapshotRpc = record::decode(&body)?;
    let reply = node.raft.install_snapshot(request.0).await;
    Ok(record_response(&SnapshotReply::from_owned(reply)))
}

fn is_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED_HEADER)
}

/// Sends the same body to the leader, once, and relays its answer.
async fn forward(
    node: &Node,
    path: &str,
    body: Bytes,
    headers: &HeaderMap,
    to: ForwardToLeader<NodeId, BasicNode>,
    kind: &'static str,
) -> Result<Response, ApiError> {
    let leader = to
        .leader_node
        .filter(|_| !is_forwarded(headers) && to.leader_id != Some(node.id));
    let Some(leader) = leader else {
        record_request(kind, "no_leader");
        return Err(ApiError::NoLeader);
    };
    let raw = node
        .transport
        .post_raw(
            &leader.addr,
            path,
            body.to_vec(),
            true,
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| ApiError::ForwardFailed(e.to_string()))?;
    record_request(kind, "forwarded");
    let status = StatusCode::from_u16(raw.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = if status == StatusCode::OK {
        RECORD_CONTENT_TYPE
    } else {
        "application/json"
    };
    Ok((status, [("content-type", content_type)], raw.body).into_response())
}

async fn write(
    State(node): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let proposal: Proposal = record::decode(&body)?;
    match node.proposer.propose(proposal).await {
        Ok(result) => {
            record_request("write", if result.is_ok() { "ok" } else { "refused" });
            Ok(record_response::<CommandResult>(&result))
        }
        Err(ProposeError::NotLeader(to)) => {
            forward(&node, "/v1/write", body, &headers, to, "write").await
        }
        Err(ProposeError::Failed(e)) => {
            record_request("write", "error");
            Err(ApiError::Unavailable(e))
        }
    }
}

#[derive(Debug, Deserialize, Default)]
struct ReadParams {
    #[serde(default)]
    stale: bool,
}

async fn read(
    State(node): State<AppState>,
    UrlQuery(params): UrlQuery<ReadParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let query: Query = record::decode(&body)?;
    if !params.stale {
        match node.raft.ensure_linearizable().await {
            Ok(_) => {}
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(to))) => {
                return forward(&node, "/v1/read", body, &headers, to, "read").await;
            }
            Err(e) => {
                record_request("read", "error");
                return Err(ApiError::Unavailable(e.to_string()));
            }
        }
    }
    let result: QueryResult = node
        .query(&query)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    record_request("read", if params.stale { "stale" } else { "ok" });
    Ok(record_response(&result))
}

/// What `GET /v1/status` reports about a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: NodeId,
    pub addr: String,
    pub role: String,
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
}

async fn status(State(node): State<AppState>) -> Result<Json<NodeStatus>, ApiError> {
    node.status()
        .map(Json)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn metrics(State(node): State<AppState>) -> String {
    node.refresh_metrics();
    node.prometheus
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default()
}

/// `POST /v1/cluster/init`: the initial voters, id → address.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitRequest {
    pub members: BTreeMap<NodeId, String>,
}

async fn cluster_init(
    State(node): State<AppState>,
    Json(request): Json<InitRequest>,
) -> Result<Json<String>, ApiError> {
    if !request.members.contains_key(&node.id) {
        return Err(ApiError::BadRequest(format!(
            "node {} must be one of the initial members",
            node.id
        )));
    }
    let members: BTreeMap<NodeId, BasicNode> = request
        .members
        .into_iter()
        .map(|(id, addr)| (id, BasicNode::new(addr)))
        .collect();
    match node.raft.initialize(members).await {
        Ok(()) => {
            tracing::info!("cluster initialised");
            Ok(Json("initialised".into()))
        }
        Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => {
            Err(ApiError::Conflict(
                "the cluster is already initialised; refusing to initialise it again".into(),
            ))
        }
        Err(e) => Err(ApiError::BadRequest(e.to_string())),
    }
}

/// `POST /v1/cluster/add-node`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AddNodeRequest {
    pub id: NodeId,
    pub addr: String,
}

/// `POST /v1/cluster/remove-node`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RemoveNodeRequest {
    pub id: NodeId,
}

async fn forward_json<T: Serialize>(
    node: &Node,
    path: &str,
    request: &T,
) -> Result<Json<String>, ApiError> {
    let leader = node.leader_addr().ok_or(ApiError::NoLeader)?;
    if leader.0 == node.id {
        return Err(ApiError::NoLeader);
    }
    node.transport
        .post_json::<T, String>(&leader.1, path, request, Duration::from_secs(120))
        .await
        .map(Json)
        .map_err(|e| ApiError::ForwardFailed(e.to_string()))
}

async fn add_node(
    State(node): State<AppState>,
    Json(request): Json<AddNodeRequest>,
) -> Result<Json<String>, ApiError> {
    if !node.is_leader() {
        return forward_json(&node, "/v1/cluster/add-node", &request).await;
    }
    tracing::info!(id = request.id, addr = %request.addr, "adding node as learner");
    node.raft
        .add_learner(request.id, BasicNode::new(&request.addr), true)
        .await
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    tracing::info!(id = request.id, "learner caught up; promoting to voter");
    node.raft
        .change_membership(ChangeMembers::AddVoterIds([request.id].into()), false)
        .await
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    Ok(Json(format!("node {} added as a voter", request.id)))
}

async fn remove_node(
    State(node): State<AppState>,
    Json(request): Json<RemoveNodeRequest>,
) -> Result<Json<String>, ApiError> {
    if !node.is_leader() {
        return forward_json(&node, "/v1/cluster/remove-node", &request).await;
    }
    tracing::info!(id = request.id, "removing node");
    node.raft
        .change_membership(ChangeMembers::RemoveVoters([request.id].into()), false)
        .await
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    Ok(Json(format!("node {} removed", request.id)))
}
