//! Group commit on the leader: proposals that arrive while earlier log
//! entries are being replicated and synced are gathered into one log entry
//! (up to [`MAX_BATCH_PROPOSALS`] and [`MAX_ENTRY_PROPOSAL_BYTES`]), so many clients share one append and
//! one fsync instead of paying one each. The next entry is proposed once
//! the one in flight ends (`PROPOSER_ENTRIES_IN_FLIGHT` in `limits.rs`):
//! openraft 0.9 syncs each entry on the leader before replicating it, so
//! more entries in flight only mean smaller batches and more fsyncs.
//!
//! Every proposal ends within [`PROPOSAL_TIMEOUT`] in a result, a
//! redirect ([`ProposeError::NotLeader`]) or [`ProposeError::Unknown`].
//! openraft answers an entry's caller only when the entry is applied or
//! truncated as a conflict; a deposed leader that catches up by a snapshot
//! covering its uncommitted entries does neither, so without a bound their
//! callers (and the proposer's in-flight slots) would wait forever. An
//! entry submitted while this node led is failed as unknown as soon as the
//! node stops leading in that term: it may still commit under the next
//! leader, or never.
//!
//! A proposal whose session tag is already in flight here (a client's
//! hedged copy, or a copy a follower forwarded again after a change of
//! leader) is not proposed again: it joins the one in flight and gets its
//! result. The state machine would apply the copy at most once anyway;
//! joining keeps the copies out of the log.
//!
//! The proposer also stamps the time: every proposal's `time_ms` is
//! overwritten with this node's wall clock (milliseconds since the UNIX
//! epoch, never going backwards here) as it joins a batch, whatever the
//! sender put there. The state machine reads no clock; the log carries the
//! leader's reading, so every replica sees the same modification times.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::error::{ClientWriteError, ForwardToLeader, RaftError};
use openraft::{BasicNode, ServerState};
use toastyfs_proto::namespace::{CommandResult, Proposal};
use toastyfs_proto::SessionTag;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::types::{NodeId, ProposalBatch, Raft, MAX_BATCH_PROPOSALS};

use crate::limits::{
    MAX_ENTRY_PROPOSAL_BYTES, PROPOSALS_QUEUED as QUEUE, PROPOSAL_TIMEOUT,
    PROPOSER_ENTRIES_IN_FLIGHT as IN_FLIGHT,
};

/// Why a proposal was not committed here.
#[derive(Debug, Clone)]
pub enum ProposeError {
    /// This node does not lead; the leader, if known. The proposal was
    /// never appended here, or was truncated as a conflict: it did not
    /// commit, and may be sent to the leader.
    NotLeader(ForwardToLeader<NodeId, BasicNode>),
    /// The proposal may or may not commit: this node lost its lead with
    /// it in flight, it did not commit within [`PROPOSAL_TIMEOUT`], or Raft
    /// failed (shutting down, fatal error).
    Unknown(String),
}

type Reply = oneshot::Sender<Result<CommandResult, ProposeError>>;

/// The session tags in flight, each with the copies waiting on it.
type Joined = Arc<Mutex<BTreeMap<SessionTag, Vec<Reply>>>>;

/// Submits proposals to the batching task.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<(Proposal, Reply)>,
    joined: Joined,
}

impl Proposer {
    /// Starts the batching task for `raft`.
    pub fn start(raft: Raft) -> Proposer {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let joined = Joined::default();
        tokio::spawn(run(raft, receiver, joined.clone()));
        Proposer { queue, joined }
    }

    /// Proposes one command and waits for its result (or, if a proposal
    /// with its session tag is in flight, waits for that one's).
    pub async fn propose(&self, proposal: Proposal) -> Result<CommandResult, ProposeError> {
        let (reply, answer) = oneshot::channel();
        let (reply, unjoin) = match self.join(proposal.session, reply) {
            Some(first) => first,
            None => return answered(answer).await,
        };
        self.queue
            .send((proposal, reply))
            .await
            .map_err(|_| ProposeError::Unknown("proposer stopped".into()))?;
        // Queued: the batching task answers the copies from now on.
        std::mem::forget(unjoin);
        answered(answer).await
    }
}

impl Proposer {
    /// Joins `tag`'s proposal in flight (`None`: `reply` waits on it), or
    /// marks `tag` in flight and gives `reply` back to be queued.
    fn join<'a>(
        &'a self,
        tag: Option<SessionTag>,
        reply: Reply,
    ) -> Option<(Reply, Option<Unjoin<'a>>)> {
        let Some(tag) = tag else {
            return Some((reply, None));
        };
        let mut joined = lock(&self.joined);
        if let Some(copies) = joined.get_mut(&tag) {
            copies.push(reply);
            return None;
        }
        joined.insert(tag, Vec::new());
        let unjoin = Unjoin {
            joined: &self.joined,
            tag,
        };
        Some((reply, Some(unjoin)))
    }
}

async fn answered(
    answer: oneshot::Receiver<Result<CommandResult, ProposeError>>,
) -> Result<CommandResult, ProposeError> {
    answer
        .await
        .map_err(|_| ProposeError::Unknown("proposal dropped".into()))?
}

fn lock(joined: &Joined) -> std::sync::MutexGuard<'_, BTreeMap<SessionTag, Vec<Reply>>> {
    joined
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes a tag out of the joined set if its proposal never reached the
/// queue (the caller went away first); copies waiting on it are dropped,
/// which answers them as unknown, so their clients retry.
struct Unjoin<'a> {
    joined: &'a Joined,
    tag: SessionTag,
}

impl Drop for Unjoin<'_> {
    fn drop(&mut self) {
        lock(self.joined).remove(&self.tag);
    }
}

/// Answers the copies that joined `tag` with `result`.
fn answer_copies(
    joined: &Joined,
    tag: Option<SessionTag>,
    result: &Result<CommandResult, ProposeError>,
) {
    let Some(tag) = tag else { return };
    for copy in lock(joined).remove(&tag).unwrap_or_default() {
        let _ = copy.send(result.clone());
    }
}

/// The time to stamp: the wall clock, or the last stamp if the clock
/// stepped back, so stamps on this node never decrease.
fn stamp(last: u64, now: u64) -> u64 {
    last.max(now)
}

/// Milliseconds since the UNIX epoch (0 if the clock is before it).
fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn run(raft: Raft, mut receiver: mpsc::Receiver<(Proposal, Reply)>, joined: Joined) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut last_stamp = 0;
    // A proposal that did not fit the previous batch starts the next.
    let mut carried: Option<(Proposal, Reply)> = None;
    loop {
        let first = match carried.take() {
            Some(item) => item,
            None => match receiver.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // Everything that queued up while we waited for a slot joins in,
        // up to the entry's byte budget.
        let mut bytes = encoded_len(&first.0);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_PROPOSALS {
            let Ok(item) = receiver.try_recv() else {
                break;
            };
            let len = encoded_len(&item.0);
            if !fits(bytes, len) {
                carried = Some(item);
                break;
            }
            bytes += len;
            batch.push(item);
        }
        last_stamp = stamp(last_stamp, wall_clock_ms());
        for (proposal, _) in &mut batch {
            proposal.time_ms = last_stamp;
        }
        let (raft, joined) = (raft.clone(), joined.clone());
        tokio::spawn(async move {
            commit(&raft, batch, &joined).await;
            drop(slot);
        });
    }
}

/// A proposal's encoded size (a proposal that cannot be measured counts
/// as a whole entry, so it goes alone).
fn encoded_len(proposal: &Proposal) -> usize {
    postcard::experimental::serialized_size(proposal).unwrap_or(MAX_ENTRY_PROPOSAL_BYTES)
}

/// Whether a proposal of `len` bytes joins a batch of `bytes` so far. A
/// batch's first proposal always goes (one proposal is bounded by its
/// record's 1 MiB).
fn fits(bytes: usize, len: usize) -> bool {
    bytes.saturating_add(len) <= MAX_ENTRY_PROPOSAL_BYTES
}

async fn commit(raft: &Raft, batch: Vec<(Proposal, Reply)>, joined: &Joined) {
    let (proposals, replies): (Vec<Proposal>, Vec<Reply>) = batch.into_iter().unzip();
    let tags: Vec<Option<SessionTag>> = proposals.iter().map(|p| p.session).collect();
    let outcome = bounded_write(raft, ProposalBatch { proposals }).await;
    let results: Vec<Result<CommandResult, ProposeError>> = match outcome {
        Ok(response) if response.data.results.len() == replies.len() => {
            response.data.results.into_iter().map(Ok).collect()
        }
        Ok(_) => vec![Err(ProposeError::Unknown("result count mismatch".into())); replies.len()],
        Err(e) => vec![Err(e); replies.len()],
    };
    for ((reply, result), tag) in replies.into_iter().zip(results).zip(tags) {
        answer_copies(joined, tag, &result);
        let _ = reply.send(result);
    }
}

type WriteResponse = openraft::raft::ClientWriteResponse<crate::types::TypeConfig>;

/// `client_write`, ended by a lost lead or the timeout.
async fn bounded_write(raft: &Raft, batch: ProposalBatch) -> Result<WriteResponse, ProposeError> {
    let (leading, term) = {
        let m = raft.metrics().borrow().clone();
        (m.state == ServerState::Leader, m.current_term)
    };
    let write = raft.client_write(batch);
    let lost = async {
        if leading {
            lead_lost(raft, term).await
        } else {
            // Not leading as far as the metrics know: openraft redirects
            // or, if it just won, commits; only the timeout bounds it.
            std::future::pending::<String>().await
        }
    };
    tokio::select! {
        answer = write => match answer {
            Ok(response) => Ok(response),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to))) => {
                Err(ProposeError::NotLeader(to))
            }
            Err(e) => Err(ProposeError::Unknown(e.to_string())),
        },
        why = lost => Err(ProposeError::Unknown(why)),
        () = tokio::time::sleep(PROPOSAL_TIMEOUT) => Err(ProposeError::Unknown(format!(
            "not committed within {PROPOSAL_TIMEOUT:?}"
        ))),
    }
}

/// Returns once this node no longer leads in `term`, saying why.
async fn lead_lost(raft: &Raft, term: u64) -> String {
    let mut metrics = raft.metrics();
    loop {
        {
            let m = metrics.borrow_and_update();
            if m.state != ServerState::Leader || m.current_term != term {
                return format!(
                    "this node stopped leading in term {term} with the proposal in flight \
                     (now {:?} in term {})",
                    m.state, m.current_term
                );
            }
        }
        if metrics.changed().await.is_err() {
            return "Raft shut down with the proposal in flight".into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_follow_the_clock_but_never_go_back() {
        assert_eq!(stamp(0, 1_000), 1_000);
        assert_eq!(stamp(1_000, 1_500), 1_500);
        assert_eq!(stamp(1_500, 900), 1_500, "a clock stepped back");
        assert_eq!(stamp(1_500, 1_500), 1_500);
    }

    #[test]
    fn a_batch_stops_at_its_byte_budget() {
        assert!(fits(0, MAX_ENTRY_PROPOSAL_BYTES));
        assert!(fits(MAX_ENTRY_PROPOSAL_BYTES - 10, 10));
        assert!(!fits(MAX_ENTRY_PROPOSAL_BYTES - 10, 11));
        assert!(!fits(usize::MAX, 1), "no overflow");
    }

    #[test]
    fn the_wall_clock_is_past_the_epoch() {
        // 2020-01-01 in milliseconds: a sanity bound, not an exact value.
        assert!(wall_clock_ms() > 1_577_836_800_000);
    }
}
