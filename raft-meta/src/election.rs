//! Elections a cut-off node cannot force on a healthy cluster: a pre-vote,
//! which openraft 0.9 lacks.
//!
//! openraft campaigns on its own timer, one term higher each time, so a
//! voter cut off from the others climbs terms, and once the link heals
//! its higher term deposes the healthy leader (the leader's next
//! AppendEntries is refused with the higher vote). Here openraft's timer
//! is off (`enable_elect: false`) and [`run`] campaigns instead: a voter
//! that has not heard from a leader for its randomised election timeout
//! first asks every other voter whether it would vote for it (a
//! pre-vote, which changes no term anywhere), and calls openraft's
//! election only when a majority, itself included, says yes.
//!
//! A voter says yes ([`grant`]) when it has not heard from a leader for
//! the lease (the shortest election timeout, which is also openraft's own
//! leader lease here, so a granted pre-vote is not then refused by the
//! lease), it is not a leader that a quorum still acknowledges, and the
//! candidate's last log id is at least its own (the same test as the
//! real vote). So a node cut off alone never raises its term; on healing
//! it hears the leader's next heartbeat and follows.
//!
//! Safety stays openraft's: the pre-vote only decides when to ask for
//! real votes. [`ElectionState`] is when this node last heard a leader:
//! the AppendEntries and InstallSnapshot handlers mark it whenever
//! openraft accepted the sender as leader.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::ServerState;
use rand::Rng;
use serde::{Deserialize, Serialize};
use toastyfs_proto::record::Framed;
use toastyfs_proto::routes;

use crate::node::Node;
use crate::types::{kinds, LogId, NodeId};

/// A candidate's question: would you vote for me if I campaigned now?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteRequest {
    pub candidate: NodeId,
    pub last_log_id: Option<LogId>,
}

/// The answer; `granted` false says why in `reason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteReply {
    pub granted: bool,
    pub reason: String,
}

pub type PreVoteRpc = Framed<{ kinds::RPC_PRE_VOTE }, PreVoteRequest>;
pub type PreVoteAnswer = Framed<{ kinds::RPC_PRE_VOTE_REPLY }, PreVoteReply>;

/// A node's election clock: when it last heard from a leader it
/// accepted, since when it leads itself (as [`run`] saw it, up to a tick
/// late), and whether it is stopping (then it never campaigns again).
#[derive(Debug)]
pub struct ElectionState {
    heard: Mutex<Instant>,
    leading_since: Mutex<Option<Instant>>,
    stopping: AtomicBool,
}

impl Default for ElectionState {
    fn default() -> Self {
        ElectionState {
            heard: Mutex::new(Instant::now()),
            leading_since: Mutex::new(None),
            stopping: AtomicBool::new(false),
        }
    }
}

impl ElectionState {
    pub fn heard(&self) {
        *self.heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub fn since(&self) -> Duration {
        self.heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    fn set_leading(&self, leading: bool) {
        let mut since = self.leading_since.lock().unwrap_or_else(|p| p.into_inner());
        match (leading, *since) {
            (true, None) => *since = Some(Instant::now()),
            (false, Some(_)) => *since = None,
            _ => {}
        }
    }

    /// How long this node has led at least (it was seen up to a tick late).
    pub fn led_for(&self) -> Option<Duration> {
        let since = *self.leading_since.lock().unwrap_or_else(|p| p.into_inner());
        since.map(|at| at.elapsed())
    }

    /// This node is stopping: it campaigns no more.
    pub fn stop_campaigning(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

/// The election timing of a node.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// No pre-vote is granted while a leader was heard within this long.
    pub lease: Duration,
    /// A voter campaigns after a random silence in `[lease + heartbeat /
    /// 2, max)`, so the others' leases have run out when it asks.
    pub heartbeat: Duration,
    pub max: Duration,
}

impl Timing {
    fn random_timeout(&self) -> Duration {
        let low = self.lease + self.heartbeat / 2;
        let high = self.max.max(low + Duration::from_millis(1));
        rand::rng().random_range(low..high)
    }
}

/// How often the driver looks at the clock.
const TICK: Duration = Duration::from_millis(20);

/// What a voter knows when it is asked for a pre-vote.
#[derive(Debug, Clone, Copy)]
pub struct VoterView {
    pub id: NodeId,
    /// Leading, and how long ago a quorum last acknowledged it.
    pub leading: Option<Option<Duration>>,
    /// How long ago it last heard from a leader.
    pub heard_leader: Duration,
    pub last_log_id: Option<LogId>,
}

/// The pre-vote rule: refused while a leader is heard (or this voter
/// leads and a quorum acknowledged it) within `lease`, or while the
/// candidate's log is behind this voter's.
pub fn judge(voter: &VoterView, lease: Duration, request: &PreVoteRequest) -> PreVoteReply {
    let refuse = |reason: String| PreVoteReply {
        granted: false,
        reason,
    };
    match voter.leading {
        Some(Some(acked)) if acked < lease => {
            return refuse(format!(
                "node {} leads and a quorum acknowledged it",
                voter.id
            ));
        }
        Some(_) => {}
        None if voter.heard_leader < lease => {
            return refuse(format!(
                "node {} heard its leader {:?} ago",
                voter.id, voter.heard_leader
            ));
        }
        None => {}
    }
    if request.last_log_id >= voter.last_log_id {
        PreVoteReply {
            granted: true,
            reason: String::new(),
        }
    } else {
        refuse(format!(
            "node {}'s log ({:?}) is ahead of the candidate's ({:?})",
            voter.id, voter.last_log_id, request.last_log_id
        ))
    }
}

/// Whether this node would vote for `request`'s candidate now.
pub fn grant(node: &Node, lease: Duration, request: &PreVoteRequest) -> PreVoteReply {
    let metrics = node.raft.metrics().borrow().clone();
    let view = VoterView {
        id: node.id,
        leading: (metrics.state == ServerState::Leader)
            .then(|| metrics.millis_since_quorum_ack.map(Duration::from_millis)),
        heard_leader: node.election.since(),
        last_log_id: node.raft.data_metrics().borrow().last_log,
    };
    judge(&view, lease, request)
}

/// Campaigns for this node whenever it is a voter that has not heard from
/// a leader for its election timeout and a majority grants a pre-vote.
/// Returns when Raft stops.
pub async fn run(node: Arc<Node>, timing: Timing) {
    let mut timeout = timing.random_timeout();
    // When this node last asked: its own retry clock, apart from the
    // leader-contact clock the pre-vote rule reads (asking must not make
    // it refuse the others, or two candidates refuse each other for ever).
    let mut asked = Instant::now();
    loop {
        tokio::time::sleep(TICK).await;
        let metrics = node.raft.metrics().borrow().clone();
        if metrics.running_state.is_err() || metrics.state == ServerState::Shutdown {
            return;
        }
        let voters: Vec<(NodeId, String)> = metrics
            .membership_config
            .membership()
            .voter_ids()
            .filter_map(|id| {
                let member = metrics.membership_config.membership().get_node(&id)?;
                Some((id, member.addr.clone()))
            })
            .collect();
        let is_voter = voters.iter().any(|(id, _)| *id == node.id);
        node.election
            .set_leading(metrics.state == ServerState::Leader);
        if metrics.state == ServerState::Leader {
            node.election.heard();
            continue;
        }
        if !is_voter {
            // Not (yet) a voter: it never campaigns, and a new voter
            // waits a whole timeout before its first campaign. Its
            // leader clock is left alone: a node that belongs to no
            // cluster yet heard from no leader, so it grants the first
            // node's pre-votes (the cluster was initialised before it
            // started); marking it here refused them for ever.
            asked = Instant::now();
            continue;
        }
        let silent = node.election.since();
        if silent < timeout
            || asked.elapsed() < timeout
            || node.election.stopping.load(Ordering::SeqCst)
        {
            continue;
        }
        tracing::debug!(?silent, "no leader heard; asking for pre-votes");
        asked = Instant::now();
        timeout = timing.random_timeout();
        if !pre_vote(&node, &voters, timing).await {
            continue;
        }
        let now = node.raft.metrics().borrow().clone();
        let asking = Asking {
            term: metrics.current_term,
            leader_heard_since: node.election.since() < asked.elapsed(),
        };
        if let Err(why) = asking.still_stands(now.current_term, now.state) {
            tracing::debug!(why, "pre-vote granted but outdated; not campaigning");
            continue;
        }
        tracing::info!(
            term = metrics.current_term,
            "pre-vote granted by a majority; campaigning"
        );
        if node.raft.trigger().elect().await.is_err() {
            return;
        }
    }
}

/// A pre-vote round as it ended: the term it was asked in, and whether a
/// leader was heard while the answers came in.
#[derive(Debug, Clone, Copy)]
struct Asking {
    term: u64,
    leader_heard_since: bool,
}

impl Asking {
    /// Whether a granted pre-vote still justifies campaigning, now that
    /// this node is at `term` in `state`. The voters granted it because
    /// they heard no leader; if one was elected meanwhile (often the
    /// very voter that granted it, a candidate then), campaigning now
    /// would depose a leader nothing is wrong with, and two such
    /// candidates depose each other term after term.
    fn still_stands(&self, term: u64, state: ServerState) -> Result<(), &'static str> {
        if state == ServerState::Leader {
            Err("this node leads already")
        } else if self.leader_heard_since {
            Err("a leader was heard while the pre-vote was asked")
        } else if term != self.term {
            Err("the term moved on while the pre-vote was asked")
        } else {
            Ok(())
        }
    }
}

/// Asks every other voter for a pre-vote; whether a majority (this node
/// included) granted it. Returns as soon as the majority is known, so a
/// silent voter (the paused leader) does not hold the answer.
async fn pre_vote(node: &Node, voters: &[(NodeId, String)], timing: Timing) -> bool {
    let request = PreVoteRpc::from_owned(PreVoteRequest {
        candidate: node.id,
        last_log_id: node.raft.data_metrics().borrow().last_log,
    });
    let transport = node.transport.with_timeout(timing.lease / 2);
    let asks = voters
        .iter()
        .filter(|(id, _)| *id != node.id)
        .map(|(id, addr)| {
            let (transport, request) = (transport.clone(), &request);
            async move {
                let answer: Result<PreVoteAnswer, _> = transport
                    .post_record(addr, routes::RAFT_PRE_VOTE, request)
                    .await;
                match answer {
                    Ok(answer) if answer.0.granted => true,
                    Ok(answer) => {
                        tracing::debug!(voter = id, reason = %answer.0.reason, "pre-vote refused");
                        false
                    }
                    Err(e) => {
                        tracing::debug!(voter = id, error = %e, "pre-vote unanswered");
                        false
                    }
                }
            }
        });
    let needed = voters.len() / 2 + 1;
    let mut granted = 1;
    let mut pending = asks.collect::<futures::stream::FuturesUnordered<_>>();
    while let Some(yes) = futures::StreamExt::next(&mut pending).await {
        granted += usize::from(yes);
        if granted >= needed {
            return true;
        }
    }
    granted >= needed
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    const LEASE: Duration = Duration::from_millis(300);

    fn log(term: u64, index: u64) -> Option<LogId> {
        Some(LogId::new(CommittedLeaderId::new(term, 1), index))
    }

    fn follower(heard_ms: u64, last: Option<LogId>) -> VoterView {
        VoterView {
            id: 2,
            leading: None,
            heard_leader: Duration::from_millis(heard_ms),
            last_log_id: last,
        }
    }

    fn ask(last: Option<LogId>) -> PreVoteRequest {
        PreVoteRequest {
            candidate: 3,
            last_log_id: last,
        }
    }

    #[test]
    fn a_follower_that_hears_its_leader_refuses() {
        let reply = judge(&follower(100, log(1, 10)), LEASE, &ask(log(1, 10)));
        assert!(!reply.granted);
        assert!(
            reply.reason.contains("heard its leader"),
            "{}",
            reply.reason
        );
    }

    #[test]
    fn a_follower_past_the_lease_grants_an_up_to_date_candidate() {
        assert!(judge(&follower(300, log(1, 10)), LEASE, &ask(log(1, 10))).granted);
        assert!(judge(&follower(900, log(1, 10)), LEASE, &ask(log(2, 4))).granted);
    }

    #[test]
    fn a_candidate_with_a_shorter_or_older_log_is_refused() {
        let reply = judge(&follower(900, log(2, 10)), LEASE, &ask(log(2, 9)));
        assert!(!reply.granted);
        assert!(reply.reason.contains("ahead"), "{}", reply.reason);
        assert!(!judge(&follower(900, log(2, 10)), LEASE, &ask(log(1, 50))).granted);
        assert!(!judge(&follower(900, log(1, 1)), LEASE, &ask(None)).granted);
    }

    #[test]
    fn a_granted_pre_vote_is_dropped_once_a_leader_appeared_meanwhile() {
        let quiet = Asking {
            term: 4,
            leader_heard_since: false,
        };
        assert_eq!(quiet.still_stands(4, ServerState::Follower), Ok(()));
        assert_eq!(quiet.still_stands(4, ServerState::Candidate), Ok(()));
        // Another candidate won (this node voted for it, or heard it).
        assert!(quiet.still_stands(5, ServerState::Follower).is_err());
        assert!(quiet.still_stands(4, ServerState::Leader).is_err());
        let heard = Asking {
            leader_heard_since: true,
            ..quiet
        };
        assert!(heard.still_stands(4, ServerState::Follower).is_err());
    }

    #[test]
    fn a_leader_refuses_while_a_quorum_acknowledges_it() {
        let mut leader = follower(0, log(1, 10));
        leader.leading = Some(Some(Duration::from_millis(50)));
        assert!(!judge(&leader, LEASE, &ask(log(1, 10))).granted);
        // Cut off from its quorum for longer than the lease, it lets the
        // others move on.
        leader.leading = Some(Some(Duration::from_millis(2_000)));
        assert!(judge(&leader, LEASE, &ask(log(1, 10))).granted);
    }
}
