//! The Raft RPC endpoints: a peer's AppendEntries, Vote, InstallSnapshot
//! pre-vote and a stopping leader's campaign request, each a record in and
//! a record out. An AppendEntries or
//! InstallSnapshot openraft accepted marks the leader as heard.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use toastyfs_proto::record;

use openraft::raft::AppendEntriesResponse;

use super::reply::{record_response, ApiError};
use super::AppState;
use crate::election::{self, PreVoteAnswer, PreVoteRpc};
use crate::handover::{self, CampaignAnswer, CampaignRpc};
use crate::network::{AppendReply, AppendRequest, SnapshotReply, SnapshotRpc, VoteReply, VoteRpc};

pub async fn append(State(node): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: AppendRequest = record::decode(&body)?;
    let reply = node.raft.append_entries(request.0).await;
    if matches!(&reply, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
        node.election.heard();
    }
    Ok(record_response(&AppendReply::from_owned(reply)))
}

pub async fn vote(State(node): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: VoteRpc = record::decode(&body)?;
    let reply = node.raft.vote(request.0).await;
    Ok(record_response(&VoteReply::from_owned(reply)))
}

pub async fn snapshot(State(node): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: SnapshotRpc = record::decode(&body)?;
    let leader_vote = request.0.vote;
    let reply = crate::snapshot_receiver::receive_chunk(&node.raft, request.0).await;
    if matches!(&reply, Ok(r) if r.vote <= leader_vote) {
        node.election.heard();
    }
    Ok(record_response(&SnapshotReply::from_owned(reply)))
}

pub async fn pre_vote(State(node): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: PreVoteRpc = record::decode(&body)?;
    let reply = election::grant(&node, node.lease, &request.0);
    Ok(record_response(&PreVoteAnswer::from_owned(reply)))
}

pub async fn campaign(State(node): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: CampaignRpc = record::decode(&body)?;
    let reply = handover::campaign(&node, &request.0).await;
    Ok(record_response(&CampaignAnswer::from_owned(reply)))
}
