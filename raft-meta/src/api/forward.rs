//! Forwarding to the leader, in one place. A request that reaches a node
//! which cannot answer it (not the leader) is sent on to the leader once,
//! marked with [`FORWARDED_HEADER`], and the leader's answer is relayed
//! as it came. A request that arrives already marked is never forwarded
//! again: it is answered 503, so no request bounces between followers
//! (two nodes that each believe the other leads).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use toastyfs_client::transport::{RawResponse, SendOptions};
use toastyfs_proto::routes::{FORWARDED_HEADER, RECORD_CONTENT_TYPE};

use super::reply::ApiError;
use crate::metrics::record_request;
use crate::node::Node;
use crate::types::NodeId;

const JSON: &str = "application/json";

/// Whether the request was already forwarded once.
pub fn is_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED_HEADER)
}

/// What is forwarded: a POSTed body (record or JSON) or a GET.
pub enum Forward<'a> {
    Post {
        path: &'a str,
        body: Bytes,
        json: bool,
    },
    Get {
        path: &'a str,
    },
}

/// Where to forward: the leader this node knows of, if it may forward at
/// all (not already forwarded, and the leader is another node).
fn target(node: &Node, headers: &HeaderMap, leader: Option<(NodeId, String)>) -> Option<String> {
    if is_forwarded(headers) {
        return None;
    }
    leader
        .filter(|(id, _)| *id != node.id)
        .map(|(_, addr)| addr)
}

/// Sends the request on to `leader` (or the leader this node knows) once,
/// and relays its answer.
pub async fn to_leader(
    node: &Node,
    headers: &HeaderMap,
    leader: Option<(NodeId, String)>,
    request: Forward<'_>,
    options: SendOptions,
    kind: &'static str,
) -> Result<Response, ApiError> {
    let Some(addr) = target(node, headers, leader) else {
        record_request(kind, "no_leader");
        return Err(ApiError::NoLeader);
    };
    let options = options.forwarded();
    let transport = &node.transport;
    let (raw, json) = match request {
        Forward::Post { path, body, json } => {
            let content_type = if json { JSON } else { RECORD_CONTENT_TYPE };
            let raw = transport
                .post_body(&addr, path, content_type, body, options)
                .await;
            (raw, json)
        }
        Forward::Get { path } => (transport.get_raw(&addr, path, options).await, true),
    };
    let raw = raw.map_err(|e| ApiError::ForwardFailed(e.to_string()))?;
    record_request(kind, "forwarded");
    Ok(relay(raw, json))
}

/// The leader's answer, status and body as they came.
fn relay(raw: RawResponse, json: bool) -> Response {
    let status = StatusCode::from_u16(raw.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = if status == StatusCode::OK && !json {
        RECORD_CONTENT_TYPE
    } else {
        JSON
    };
    (status, [("content-type", content_type)], raw.body).into_response()
}
