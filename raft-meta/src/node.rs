//! The `Node` handle of a running metadata node, shared by its HTTP
//! handlers and background tasks, and the queries they ask of it: its
//! namespace, its role and leader, its status. It starts nothing
//! ([`crate::server`] does) and knows nothing of HTTP.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use openraft::ServerState;
use toastyfs_client::transport::Transport;
use toastyfs_proto::cluster::{NodeStatus, Role};
use toastyfs_proto::namespace::{Query, QueryResult};

use crate::election::ElectionState;
use crate::namespace::kv::StoreError;
use crate::namespace::{self, Namespace};
use crate::proposer::Proposer;
use crate::read_index::ReadIndex;
use crate::replication::Replication;
use crate::store::{state, Db, LogStore};
use crate::types::{NodeId, Raft};

/// Shared state of a running node.
pub struct Node {
    pub id: NodeId,
    pub addr: String,
    pub raft: Raft,
    pub db: Arc<Db>,
    pub log: LogStore,
    pub namespace: Namespace,
    /// Everything this node sends (Raft RPCs, forwards) goes through it.
    pub transport: Transport,
    pub proposer: Proposer,
    /// Linearizable reads wait here for a shared read index round.
    pub read_index: ReadIndex,
    /// The leader's chunk locations and replication manager.
    pub replication: Replication,
    pub prometheus: Option<PrometheusHandle>,
    /// When this node last heard from a leader (the pre-vote's clock).
    pub election: ElectionState,
    /// No pre-vote is granted while a leader was heard within this long.
    pub lease: std::time::Duration,
}

/// openraft's server state as the cluster API names it.
pub fn role_of(state: ServerState) -> Role {
    match state {
        ServerState::Leader => Role::Leader,
        ServerState::Candidate => Role::Candidate,
        ServerState::Follower => Role::Follower,
        ServerState::Learner => Role::Learner,
        ServerState::Shutdown => Role::Shutdown,
    }
}

impl Node {
    pub fn query(&self, query: &Query) -> Result<QueryResult, StoreError> {
        state::query(&self.db, &self.namespace, query)
    }

    /// The client key `id` in this node's applied state.
    pub fn client_key(
        &self,
        id: toastyfs_proto::client_key::KeyId,
    ) -> Result<Option<crate::namespace::client_keys::StoredKey>, StoreError> {
        crate::namespace::client_keys::get(&state::DbReader::new(&self.db), id)
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The leader's id and address, if known.
    /// The leader worth naming to callers ([`toastyfs_proto::routes::LEADER_HEADER`]):
    /// the one this node follows, or itself only while a quorum
    /// acknowledged it within the lease. A leader cut off from its peers
    /// (or just resumed from a pause) does not name itself, so it does not
    /// pull callers back to it from the leader the others elected.
    pub fn leader_to_name(&self) -> Option<String> {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        if leader == self.id {
            let acked = metrics.millis_since_quorum_ack?;
            if u128::from(acked) >= self.lease.as_millis() {
                return None;
            }
        }
        let node = metrics.membership_config.membership().get_node(&leader)?;
        Some(node.addr.clone())
    }

    pub fn leader_addr(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        let node = metrics
            .membership_config
            .membership()
            .get_node(&leader)?
            .clone();
        Some((leader, node.addr))
    }

    pub fn status(&self) -> Result<NodeStatus, StoreError> {
        let m = self.raft.metrics().borrow().clone();
        let header = state::state_header(&self.db)?;
        let membership = m.membership_config.membership();
        Ok(NodeStatus {
            id: self.id,
            addr: self.addr.clone(),
            role: role_of(m.state),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index.unwrap_or(0),
            commit_index: self.log.committed_index(),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            digest: hex::encode(header.digest),
            digest_index: header.applied_index,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            nodes: membership
                .nodes()
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect(),
            wal_syncs: self.db.wal_syncs(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            running: m.running_state.is_ok(),
        })
    }

    pub fn refresh_metrics(&self) {
        let m = self.raft.metrics().borrow().clone();
        crate::metrics::record_raft(
            m.current_term,
            m.state == ServerState::Leader,
            m.current_leader,
            self.log.committed_index(),
            m.last_applied.map_or(0, |l| l.index),
            m.last_log_index.unwrap_or(0),
        );
        let lags = self.follower_lags(&m);
        crate::metrics::record_follower_lag(&lags);
        if m.state != ServerState::Leader {
            crate::metrics::clear_leader_figures();
        }
    }

    /// How many entries each other member's log is behind this node's, as
    /// its replication says (the leader's); 0 for each on any other node.
    fn follower_lags(
        &self,
        m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>,
    ) -> Vec<(NodeId, u64)> {
        let last_log = m.last_log_index.unwrap_or(0);
        let others = m.membership_config.membership().nodes().map(|(id, _)| *id);
        others
            .filter(|id| *id != self.id)
            .map(|id| {
                let lag = match &m.replication {
                    Some(matched) => {
                        let index = matched.get(&id).copied().flatten().map_or(0, |l| l.index);
                        last_log.saturating_sub(index)
                    }
                    None => 0,
                };
                (id, lag)
            })
            .collect()
    }

    /// Whether detached subtrees wait for `Reclaim`.
    pub fn trash_pending(&self) -> bool {
        namespace::trash_pending(&state::DbReader::new(&self.db)).unwrap_or(false)
    }
}
