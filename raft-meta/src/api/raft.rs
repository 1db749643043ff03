//! The Raft RPC endpoints: a peer's AppendEntries, Vote and
//! InstallSnapshot, each a record in and a record out.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use toastyfs_proto::record;

use super::reply::{record_response, ApiError};
use super::AppState;
use crate::network::{AppendReply, AppendRequest, SnapshotReply, SnapshotRpc, VoteReply, VoteRpc};

pub async fn append(State(node): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: AppendRequest = record::decode(&body)?;
    let reply = node.raft.append_entries(request.0).await;
    Ok(record_response(&AppendReply::from_owned(reply)))
}

pub async fn vote(State(node): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: VoteRpc = record::decode(&body)?;
    let reply = node.raft.vote(request.0).await;
    Ok(record_response(&VoteReply::from_owned(reply)))
}

pub async fn snapshot(State(node): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: SnapshotRpc = record::decode(&body)?;
    let reply = crate::snapshot_receiver::receive_chunk(&node.raft, request.0).await;
    Ok(record_response(&SnapshotReply::from_owned(reply)))
}
