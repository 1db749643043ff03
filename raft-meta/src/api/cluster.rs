//! The operator endpoints: a node's status and metrics, and cluster
//! management (init on any member; add and remove node on the leader,
//! forwarded there once from a follower). The work itself is in
//! [`crate::cluster`].

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use toastyfs_client::transport::SendOptions;
use toastyfs_proto::cluster::{AddNodeRequest, InitRequest, NodeStatus, RemoveNodeRequest};
use toastyfs_proto::routes;

use super::forward::{self, Forward};
use super::reply::ApiError;
use super::AppState;
use crate::cluster;
use crate::limits::{ADD_NODE_FORWARD_TIMEOUT, REMOVE_NODE_FORWARD_TIMEOUT};
use crate::node::Node;

pub async fn status(State(node): State<AppState>) -> Result<Json<NodeStatus>, ApiError> {
    node.status()
        .map(Json)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

pub async fn metrics(State(node): State<AppState>) -> String {
    node.refresh_metrics();
    node.prometheus
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default()
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
}

pub async fn init(State(node): State<AppState>, body: Bytes) -> Result<Json<String>, ApiError> {
    let request: InitRequest = json(&body)?;
    cluster::init(&node, request.members).await?;
    Ok(Json("initialised".into()))
}

/// Sends a management request on to the leader, once.
async fn to_leader(
    node: &Node,
    headers: &HeaderMap,
    path: &str,
    body: Bytes,
    timeout: Duration,
) -> Result<Response, ApiError> {
    let request = Forward::Post {
        path,
        body,
        json: true,
    };
    let options = SendOptions::new(timeout);
    forward::to_leader(
        node,
        headers,
        node.leader_addr(),
        request,
        options,
        "cluster",
    )
    .await
}

pub async fn add_node(
    State(node): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: AddNodeRequest = json(&body)?;
    if !node.is_leader() {
        let path = routes::CLUSTER_ADD_NODE;
        return to_leader(&node, &headers, path, body, ADD_NODE_FORWARD_TIMEOUT).await;
    }
    Ok(Json(cluster::add_node(&node, &request).await?).into_response())
}

pub async fn remove_node(
    State(node): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: RemoveNodeRequest = json(&body)?;
    if !node.is_leader() {
        let path = routes::CLUSTER_REMOVE_NODE;
        return to_leader(&node, &headers, path, body, REMOVE_NODE_FORWARD_TIMEOUT).await;
    }
    Ok(Json(cluster::remove_node(&node, &request).await?).into_response())
}
