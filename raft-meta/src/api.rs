//! The one place a metadata node receives requests: the axum router over
//! every route of `proto::routes` a node serves. The handlers live by
//! concern: [`raft`] (peer RPCs), [`namespace`] (writes and reads),
//! [`chunks`] (chunk server reports, placement, locations, chunk status),
//! [`cluster`] (status, metrics, cluster management); [`forward`] is the
//! one place a request is sent on to the leader, and [`reply`] what every
//! answer looks like.
//!
//! A request that reaches a follower is forwarded to the leader once
//! (never twice: a forwarded request that again finds no leader is
//! answered 503 naming what is known), so no client needs to know who
//! leads. Every body is bounded in size.

mod backup;
mod chunks;
mod cluster;
mod forward;
mod namespace;
mod raft;
pub mod reply;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use toastyfs_proto::routes;

use crate::auth::{self, Gate};
use crate::callers;
use crate::limits::{MAX_CLIENT_REQUESTS_IN_FLIGHT, MAX_REQUEST_BYTES};
use crate::node::Node;
use tower::limit::GlobalConcurrencyLimitLayer;

type AppState = Arc<Node>;

/// The node's router. Node-to-node routes (Raft RPCs, chunk reports,
/// cluster management) pass `gate` first ([`crate::auth`]); client routes
/// need a client key or the secret ([`crate::callers`]); `/metrics` and
/// `/health` are open. `None` checks nothing.
pub fn router(node: Arc<Node>, gate: Option<Arc<Gate>>) -> Router {
    let between_nodes = Router::new()
        .route(routes::RAFT_APPEND, post(raft::append))
        .route(routes::RAFT_VOTE, post(raft::vote))
        .route(routes::RAFT_SNAPSHOT, post(raft::snapshot))
        .route(routes::RAFT_PRE_VOTE, post(raft::pre_vote))
        .route(routes::RAFT_CAMPAIGN, post(raft::campaign))
        .route(routes::CHUNK_REPORT, post(chunks::report))
        .route(routes::CLUSTER_INIT, post(cluster::init))
        .route(routes::CLUSTER_ADD_NODE, post(cluster::add_node))
        .route(routes::CLUSTER_REMOVE_NODE, post(cluster::remove_node))
        .route(routes::CLUSTER_BACKUP, get(backup::backup))
        .route_layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            auth::require_signature,
        ));
    let with_tokens = Router::new()
        .route(routes::CHUNK_PLACEMENT, post(chunks::placement))
        .route(routes::CHUNK_LOCATE, post(chunks::locate))
        .route_layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            callers::add_chunk_token,
        ));
    let from_clients = Router::new()
        .route(routes::WRITE, post(namespace::write))
        .route(routes::READ, post(namespace::read))
        .route(routes::STATUS, get(cluster::status))
        .route(routes::WHOAMI, get(callers::whoami))
        .route(routes::CHUNK_STATUS, get(chunks::status))
        .route(routes::CHUNK_HEALTH, post(chunks::health))
        .merge(with_tokens)
        .route_layer(axum::middleware::from_fn_with_state(
            (node.clone(), gate.clone()),
            callers::identify,
        ))
        .route_layer(GlobalConcurrencyLimitLayer::new(
            MAX_CLIENT_REQUESTS_IN_FLIGHT,
        ));
    Router::new()
        .merge(from_clients)
        .route(routes::METRICS, get(cluster::metrics))
        .route(routes::HEALTH, get(|| async { "ok" }))
        .merge(between_nodes)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::middleware::map_response_with_state(
            node.clone(),
            name_the_leader,
        ))
        .with_state(node)
}

/// Names the leader on every answer ([`routes::LEADER_HEADER`]) when this
/// node knows one worth naming ([`Node::leader_to_name`]), so callers go
/// there first next time.
async fn name_the_leader(State(node): State<AppState>, mut response: Response) -> Response {
    if let Some(addr) = node.leader_to_name() {
        if let Ok(value) = HeaderValue::from_str(&addr) {
            response.headers_mut().insert(routes::LEADER_HEADER, value);
        }
    }
    response
}
