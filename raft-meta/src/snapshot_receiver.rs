//! Receiving the leader's snapshot chunks so that a hang-up cannot tear one.
//!
//! openraft's chunked receiver keeps, beside the open snapshot file, the
//! offset it has written up to, and moves that offset only once a chunk is
//! written whole. If the future writing a chunk were dropped part way
//! (the leader's RPC timed out and it hung up, so the HTTP handler was
//! cancelled), the file's cursor would have moved while the recorded
//! offset had not: the leader's resend of the same chunk would then land
//! past where it belongs and the installed snapshot would be corrupt.
//!
//! Invariant: a chunk that began to be written is written whole. Each
//! chunk is received in a task of its own that runs to its end whether or
//! not anyone still waits for the answer; a resend waits behind it on
//! openraft's receive lock and finds the file and the offset agreeing.

use openraft::error::{Fatal, InstallSnapshotError, RaftError};
use openraft::raft::{InstallSnapshotRequest, InstallSnapshotResponse};

use crate::types::{NodeId, Raft, TypeConfig};

/// Receives one chunk of a snapshot (and installs it if it is the last) in
/// a task the caller's cancellation does not reach.
pub async fn receive_chunk(
    raft: &Raft,
    request: InstallSnapshotRequest<TypeConfig>,
) -> Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
    let raft = raft.clone();
    match tokio::spawn(async move { raft.install_snapshot(request).await }).await {
        Ok(reply) => reply,
        Err(join) => {
            tracing::error!(error = %join, "receiving a snapshot chunk panicked");
            Err(RaftError::Fatal(Fatal::Panicked))
        }
    }
}
