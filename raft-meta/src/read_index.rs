//! Batched read index on the leader: one round of heartbeats confirms the
//! lead for every linearizable read that arrived before the round began.
//!
//! A linearizable read needs a read index taken *after* it arrived: the
//! leader confirms with a quorum that it still leads, notes the commit
//! index, and answers once it has applied that far (openraft's
//! `ensure_linearizable`). Asking once per read costs a heartbeat round
//! each, so under load the rounds, not the reads, are the limit. Here the
//! reads queue; one task takes every read queued so far, runs one round,
//! and answers them all with its outcome. A read that arrives while a
//! round runs waits for the next one, whose index is taken after it
//! arrived, so every read still sees every write acknowledged before it
//! began. At most one round runs at a time, so a read waits at most two.

use openraft::error::{CheckIsLeaderError, RaftError};
use openraft::BasicNode;
use tokio::sync::{mpsc, oneshot};

use crate::types::{NodeId, Raft};

/// What a read index round answers: ready to read, or why not (not the
/// leader, with the leader if known; or Raft stopped).
pub type ReadIndexResult = Result<(), RaftError<NodeId, CheckIsLeaderError<NodeId, BasicNode>>>;

/// How many reads may wait for a round; more wait to be queued.
const READS_QUEUED: usize = 8192;

/// Queues linearizable reads for the batching task.
#[derive(Clone)]
pub struct ReadIndex {
    queue: mpsc::Sender<oneshot::Sender<ReadIndexResult>>,
}

impl ReadIndex {
    /// Starts the batching task for `raft`.
    pub fn start(raft: Raft) -> ReadIndex {
        let (queue, receiver) = mpsc::channel(READS_QUEUED);
        tokio::spawn(run(raft, receiver));
        ReadIndex { queue }
    }

    /// Waits until this node may answer a read that arrived now
    /// linearizably: it led, with a quorum's word, after the read arrived,
    /// and has applied everything committed by then.
    pub async fn ensure_linearizable(&self) -> ReadIndexResult {
        let (reply, answer) = oneshot::channel();
        if self.queue.send(reply).await.is_err() {
            return Err(RaftError::Fatal(openraft::error::Fatal::Stopped));
        }
        answer
            .await
            .unwrap_or(Err(RaftError::Fatal(openraft::error::Fatal::Stopped)))
    }
}

/// Serves rounds until every [`ReadIndex`] handle is dropped.
async fn run(raft: Raft, mut queue: mpsc::Receiver<oneshot::Sender<ReadIndexResult>>) {
    while let Some(first) = queue.recv().await {
        let mut waiting = vec![first];
        while let Ok(next) = queue.try_recv() {
            waiting.push(next);
        }
        // Every read in `waiting` was queued before this round began.
        let outcome = raft.ensure_linearizable().await.map(|_| ());
        crate::metrics::record_read_index_round(waiting.len());
        for reply in waiting {
            let _ = reply.send(outcome.clone());
        }
    }
}
