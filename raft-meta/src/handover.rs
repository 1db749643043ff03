//! Handing leadership over before a planned stop, so a SIGTERM of the
//! leader costs the cluster no election timeout. openraft 0.9 has no
//! leadership transfer; this is one built from what it has.
//!
//! The stopping leader picks the voter whose replicated log is furthest
//! along, waits (briefly) until that voter holds the leader's whole log,
//! stops its heartbeats and asks the voter to campaign at once
//! (`POST /raft/campaign`, which skips the pre-vote because the leader
//! itself asked). The voter asks for votes with the next term; the old
//! leader grants it (openraft refreshes a leader's own vote only when it
//! changes, so that lease runs out one lease after its election, which the
//! handover waits for if need be), and in a cluster of three that
//! is a majority. With more nodes the others still hear the old leader
//! within their lease and may refuse; the candidate then wins at its next
//! pre-vote, one lease later, still well inside an election timeout.
//! Every step is bounded: a stop is never held longer than
//! [`HANDOVER_WITHIN`].

use std::time::{Duration, Instant};

use openraft::ServerState;
use serde::{Deserialize, Serialize};
use toastyfs_proto::record::Framed;
use toastyfs_proto::routes;

use crate::node::Node;
use crate::types::{kinds, NodeId};

/// The leader's request that a caught-up voter campaign now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRequest {
    /// The leader handing over.
    pub from: NodeId,
}

/// Whether the voter began campaigning; if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignReply {
    pub started: bool,
    pub reason: String,
}

pub type CampaignRpc = Framed<{ kinds::RPC_CAMPAIGN }, CampaignRequest>;
pub type CampaignAnswer = Framed<{ kinds::RPC_CAMPAIGN_REPLY }, CampaignReply>;

/// The longest a stopping leader spends handing over.
pub const HANDOVER_WITHIN: Duration = Duration::from_secs(3);
/// How long the chosen voter may take to hold the whole log.
const CATCH_UP_WITHIN: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(10);
/// Waited past the lease, for the time the campaign request takes to
/// become a vote request.
const LEASE_MARGIN: Duration = Duration::from_millis(10);

/// If this node leads, hands leadership to its most caught-up voter and
/// waits until another node leads (or [`HANDOVER_WITHIN`] passes).
/// Returns the new leader, if one was seen.
pub async fn step_down(node: &Node) -> Option<NodeId> {
    let began = Instant::now();
    node.election.stop_campaigning();
    let target = caught_up_voter(node).await?;
    // openraft's lease on this node's own vote runs from its election: a
    // leader younger than the lease would refuse the target's vote. (The
    // time led is counted from when it was seen, so it is never over.)
    let led = node.election.led_for().unwrap_or_default();
    tokio::time::sleep(node.lease.saturating_sub(led) + LEASE_MARGIN).await;
    node.raft.runtime_config().heartbeat(false);
    let asked = ask_to_campaign(node, target).await;
    if let Err(reason) = &asked {
        tracing::warn!(target, %reason, "handover: the voter did not campaign");
    }
    let mut metrics = node.raft.metrics();
    loop {
        let leader = metrics.borrow().current_leader;
        if leader.is_some_and(|l| l != node.id) {
            tracing::info!(new_leader = ?leader, took = ?began.elapsed(), "handed leadership over");
            return leader;
        }
        let left = HANDOVER_WITHIN.saturating_sub(began.elapsed());
        if left.is_zero() || asked.is_err() {
            tracing::warn!("handover: no new leader seen; stopping anyway");
            return None;
        }
        let _ = tokio::time::timeout(left, metrics.changed()).await;
    }
}

/// The voter (other than this node) with the most of the log replicated,
/// once it holds all of it, or the best after [`CATCH_UP_WITHIN`]; `None`
/// unless this node leads and has another voter.
async fn caught_up_voter(node: &Node) -> Option<NodeId> {
    let deadline = Instant::now() + CATCH_UP_WITHIN;
    loop {
        let metrics = node.raft.metrics().borrow().clone();
        if metrics.state != ServerState::Leader {
            return None;
        }
        let voters: Vec<NodeId> = metrics.membership_config.membership().voter_ids().collect();
        let matched = metrics.replication.unwrap_or_default();
        let best = voters
            .iter()
            .filter(|id| **id != node.id)
            .map(|id| (matched.get(id).copied().flatten().map(|l| l.index), *id))
            .max()?;
        if best.0 >= metrics.last_log_index || Instant::now() >= deadline {
            return Some(best.1);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Asks `target` to campaign now.
async fn ask_to_campaign(node: &Node, target: NodeId) -> Result<(), String> {
    let addr = {
        let metrics = node.raft.metrics().borrow().clone();
        let member = metrics
            .membership_config
            .membership()
            .get_node(&target)
            .cloned();
        member
            .ok_or_else(|| format!("node {target} is not a member"))?
            .addr
    };
    let request = CampaignRpc::from_owned(CampaignRequest { from: node.id });
    let answer: CampaignAnswer = node
        .transport
        .with_timeout(Duration::from_millis(500))
        .post_record(&addr, routes::RAFT_CAMPAIGN, &request)
        .await
        .map_err(|e| e.to_string())?;
    if answer.0.started {
        Ok(())
    } else {
        Err(answer.0.reason)
    }
}

/// A voter asked by its leader to campaign: starts an election unless it
/// leads or is no voter.
pub async fn campaign(node: &Node, request: &CampaignRequest) -> CampaignReply {
    let metrics = node.raft.metrics().borrow().clone();
    let refuse = |reason: String| CampaignReply {
        started: false,
        reason,
    };
    if metrics.state == ServerState::Leader {
        return refuse(format!("node {} leads already", node.id));
    }
    if !metrics
        .membership_config
        .membership()
        .voter_ids()
        .any(|id| id == node.id)
    {
        return refuse(format!("node {} is not a voter", node.id));
    }
    tracing::info!(from = request.from, "the leader hands over; campaigning");
    match node.raft.trigger().elect().await {
        Ok(()) => CampaignReply {
            started: true,
            reason: String::new(),
        },
        Err(e) => refuse(format!("node {} cannot campaign: {e}", node.id)),
    }
}
