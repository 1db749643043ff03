//! The namespace endpoints: a write (a `Proposal`, committed through the
//! proposer) and a read (a `Query`, linearizable through a read index
//! unless `stale`). A follower forwards both to the leader once.

use axum::body::Bytes;
use axum::extract::{Extension, Query as UrlQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use openraft::error::{CheckIsLeaderError, ForwardToLeader, RaftError};
use openraft::BasicNode;
use serde::Deserialize;
use toastyfs_client::transport::SendOptions;
use toastyfs_proto::namespace::{CommandResult, Proposal, Query, QueryResult};
use toastyfs_proto::record;
use toastyfs_proto::routes;

use super::forward::{self, Forward};
use super::reply::{record_response, ApiError};
use super::AppState;
use crate::callers::Caller;
use crate::limits::FORWARD_TIMEOUT;
use crate::metrics::record_request;
use crate::proposer::ProposeError;
use crate::types::NodeId;

/// The leader openraft named, as forwarding wants it.
fn leader_of(to: ForwardToLeader<NodeId, BasicNode>) -> Option<(NodeId, String)> {
    Some((to.leader_id?, to.leader_node?.addr))
}

pub async fn write(
    State(node): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let proposal: Proposal = record::decode(&body)?;
    caller.may_propose(&proposal.command)?;
    // A command too large to apply never takes room in the log.
    toastyfs_proto::admission::check(&proposal.command)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    match node.proposer.propose(proposal).await {
        Ok(result) => {
            record_request("write", if result.is_ok() { "ok" } else { "refused" });
            Ok(record_response::<CommandResult>(&result))
        }
        Err(ProposeError::NotLeader(to)) => {
            let request = Forward::Post {
                path: routes::WRITE,
                body,
                json: false,
            };
            let options = SendOptions::new(FORWARD_TIMEOUT);
            forward::to_leader(&node, &headers, leader_of(to), request, options, "write").await
        }
        Err(ProposeError::Unknown(e)) => {
            record_request("write", "error");
            Err(ApiError::Unavailable(e))
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct ReadParams {
    #[serde(default)]
    stale: bool,
}

pub async fn read(
    State(node): State<AppState>,
    Extension(caller): Extension<Caller>,
    UrlQuery(params): UrlQuery<ReadParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let query: Query = record::decode(&body)?;
    caller.may_query(&query)?;
    if !params.stale && !crate::unsafe_modes::local_reads() {
        match node.read_index.ensure_linearizable().await {
            Ok(_) => {}
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(to))) => {
                let request = Forward::Post {
                    path: routes::READ,
                    body,
                    json: false,
                };
                let options = SendOptions::new(FORWARD_TIMEOUT);
                return forward::to_leader(
                    &node,
                    &headers,
                    leader_of(to),
                    request,
                    options,
                    "read",
                )
                .await;
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
