//! Forwarding to the leader, in one place. A request that reaches a node
//! which cannot answer it (not the leader) is sent on to the leader once,
//! marked with [`FORWARDED_HEADER`], and the leader's answer is relayed
//! as it came. A request that arrives already marked is never forwarded
//! again: it is answered 503, so no request bounces between followers
//! (two nodes that each believe the other leads).
//!
//! A forward follows leadership: while it waits on the leader it was sent
//! to, a change of leader this node learns of (that leader paused, cut
//! off or deposed) sends the request again to the new one, and the first
//! answer is relayed. Writes carry their session tag, so the cluster
//! applies a write sent twice at most once; reads have no effect to
//! repeat. If this node itself becomes the leader, it answers 503 and the
//! client, retrying, finds it leading.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::{FuturesUnordered, StreamExt};
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
#[derive(Clone)]
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
    let Some(mut addr) = target(node, headers, leader) else {
        record_request(kind, "no_leader");
        return Err(ApiError::NoLeader);
    };
    let deadline = tokio::time::Instant::now() + options.timeout;
    let json = match request {
        Forward::Post { json, .. } => json,
        Forward::Get { .. } => true,
    };
    // Only a change from what the metrics say now moves the forward: they
    // may lag the redirect openraft gave (and still name this node).
    let mut seen = node.leader_addr().map(|(id, _)| id);
    let mut in_flight = FuturesUnordered::new();
    in_flight.push(send(
        node,
        addr.clone(),
        request.clone(),
        options.forwarded(),
    ));
    let mut sent = 1;
    // The latest answer that is not the last word: a refusal (502, 503)
    // while a copy sent to a newer leader may still answer.
    let mut refused = None;
    loop {
        tokio::select! {
            Some(answer) = in_flight.next() => match answer {
                Ok(raw) if is_refusal(&raw) && !in_flight.is_empty() => refused = Some(raw),
                Ok(raw) => {
                    record_request(kind, "forwarded");
                    return Ok(relay(raw, json));
                }
                Err(_) if !in_flight.is_empty() => {}
                Err(e) => {
                    return match refused.take() {
                        Some(raw) => Ok(relay(raw, json)),
                        None => Err(ApiError::ForwardFailed(e.to_string())),
                    };
                }
            },
            moved = leader_moved(node, &addr, seen), if sent < MAX_FORWARDS => {
                let Moved::To(id, new_leader) = moved else {
                    // This node leads now: the client retries here (its
                    // earlier copies may still apply; the client counts a
                    // 503 as reached, never as failed).
                    record_request(kind, "no_leader");
                    return Err(ApiError::NoLeader);
                };
                (seen, addr) = (Some(id), new_leader);
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    sent = MAX_FORWARDS;
                    continue;
                }
                record_request(kind, "reforwarded");
                let options = SendOptions { timeout: left, ..options }.forwarded();
                in_flight.push(send(node, addr.clone(), request.clone(), options));
                sent += 1;
            }
        }
    }
}

/// Copies of one request a node sends on to successive leaders, at most.
const MAX_FORWARDS: usize = 4;

/// A leader's answer that another leader may better: it has none (503) or
/// could not reach one (502).
fn is_refusal(raw: &RawResponse) -> bool {
    matches!(raw.status, 502 | 503)
}

/// Sends `request` to `addr`.
async fn send(
    node: &Node,
    addr: String,
    request: Forward<'_>,
    options: SendOptions,
) -> Result<RawResponse, toastyfs_client::transport::SendError> {
    let transport = &node.transport;
    match request {
        Forward::Post { path, body, json } => {
            let content_type = if json { JSON } else { RECORD_CONTENT_TYPE };
            transport
                .post_body(&addr, path, content_type, body, options)
                .await
        }
        Forward::Get { path } => transport.get_raw(&addr, path, options).await,
    }
}

/// Where leadership went.
enum Moved {
    To(NodeId, String),
    ToSelf,
}

/// Waits until this node knows of a leader other than `seen` and the one
/// at `addr`.
async fn leader_moved(node: &Node, addr: &str, seen: Option<NodeId>) -> Moved {
    let mut metrics = node.raft.metrics();
    loop {
        let known = {
            metrics.borrow_and_update();
            node.leader_addr()
        };
        match known {
            Some((id, _)) if Some(id) == seen => {}
            Some((id, _)) if id == node.id => return Moved::ToSelf,
            Some((id, new)) if new != addr => return Moved::To(id, new),
            _ => {}
        }
        if metrics.changed().await.is_err() {
            // Raft stopped: no leader change will come.
            std::future::pending::<()>().await;
        }
    }
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
