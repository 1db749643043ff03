//! A running metadata node: the store, openraft, the HTTP server, and the
//! background tasks (status metrics, leader-change logging, reclaim
//! proposals, the replication scan, fail-stop).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use openraft::{Config, ServerState, SnapshotPolicy};
use toastyfs_proto::namespace::{Command, Proposal, Query, QueryResult};

use crate::api::{self, NodeStatus};
use crate::chunk_map::ChunkMapConfig;
use crate::namespace::kv::StoreError;
use crate::namespace::{self, Namespace};
use crate::network::NetworkFactory;
use crate::proposer::Proposer;
use crate::replication::{self, Replication};
use crate::store::{self, state, Db, LogStore};
use crate::transport::Transport;
use crate::types::{NodeId, Raft};

/// How to run one node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Address peers and clients use to reach this node.
    pub advertise: String,
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Take a snapshot (and compact the log) after this many entries.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot for lagging followers.
    pub keep_logs: u64,
    /// Chunk replication: replication factor and chunk server timeouts.
    pub chunks: ChunkMapConfig,
}

impl NodeConfig {
    pub fn new(id: NodeId, data_dir: PathBuf, listen: SocketAddr) -> NodeConfig {
        NodeConfig {
            id,
            data_dir,
            listen,
            advertise: listen.to_string(),
            heartbeat_ms: 100,
            election_min_ms: 300,
            election_max_ms: 600,
            snapshot_every: 20_000,
            keep_logs: 1_000,
            chunks: ChunkMapConfig::default(),
        }
    }
}

/// Why a node stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Open(#[from] store::OpenError),
    #[error("invalid Raft configuration: {0}")]
    Config(String),
    #[error("Raft failed to start: {0}")]
    Raft(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("fail-stop: {0}")]
    FailStop(String),
}

/// Shared state of a running node.
pub struct Node {
    pub id: NodeId,
    pub addr: String,
    pub raft: Raft,
    pub db: Arc<Db>,
    pub log: LogStore,
    pub namespace: Namespace,
    pub transport: Transport,
    pub proposer: Proposer,
    /// The leader's chunk locations and replication manager.
    pub replication: Replication,
    pub prometheus: Option<PrometheusHandle>,
}

impl Node {
    pub fn query(&self, query: &Query) -> Result<QueryResult, StoreError> {
        state::query(&self.db, &self.namespace, query)
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The leader's id and address, if known.
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
            role: format!("{:?}", m.state),
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
    }

    fn trash_pending(&self) -> bool {
        namespace::trash_pending(&state::DbReader::new(&self.db)).unwrap_or(false)
    }
}

/// Opens the store, starts Raft and serves until the node fails.
pub async fn run(config: NodeConfig) -> Result<(), NodeError> {
    let (log, sm) = store::open(&config.data_dir)?;
    let db = sm.db().clone();
    let raft_config = Config {
        cluster_name: "toastyfs".into(),
        heartbeat_interval: config.heartbeat_ms,
        election_timeout_min: config.election_min_ms,
        election_timeout_max: config.election_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
        max_in_snapshot_log_to_keep: config.keep_logs,
        max_payload_entries: 1000,
        ..Default::default()
    }
    .validate()
    .map_err(|e| NodeError::Config(e.to_string()))?;
    let transport = Transport::new();
    let network = NetworkFactory {
        transport: transport.clone(),
    };
    let raft = Raft::new(config.id, Arc::new(raft_config), network, log.clone(), sm)
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
    let node = Arc::new(Node {
        id: config.id,
        addr: config.advertise.clone(),
        raft: raft.clone(),
        db,
        log,
        namespace: Namespace::default(),
        transport,
        proposer: Proposer::start(raft.clone()),
        replication: Replication::new(config.chunks.clone()),
        prometheus: crate::metrics::install(),
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: config.listen,
            source,
        })?;
    tracing::info!(id = config.id, addr = %config.advertise, dir = %config.data_dir.display(), "metadata node listening");
    let server = axum::serve(listener, api::router(node.clone()));
    tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    tokio::spawn(propose_reclaim(node.clone()));
    let scanner = node.clone();
    tokio::spawn(async move {
        let node = &scanner;
        replication::run(&node.replication, &node.raft, &node.db, &node.proposer).await
    });
    watch(node).await
}

/// Logs leader and membership changes; returns when Raft stops (fail-stop).
async fn watch(node: Arc<Node>) -> Result<(), NodeError> {
    let mut metrics = node.raft.metrics();
    let mut leader = None;
    let mut voters: Vec<NodeId> = Vec::new();
    loop {
        let m = metrics.borrow_and_update().clone();
        if let Err(fatal) = &m.running_state {
            tracing::error!(error = %fatal, "fail-stop: Raft stopped");
            return Err(NodeError::FailStop(fatal.to_string()));
        }
        if m.current_leader != leader {
            tracing::info!(term = m.current_term, leader = ?m.current_leader, state = ?m.state, "leader changed");
            leader = m.current_leader;
        }
        let now: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
        if now != voters {
            tracing::info!(voters = ?now, "membership changed");
            voters = now;
        }
        node.refresh_metrics();
        if metrics.changed().await.is_err() {
            return Err(NodeError::FailStop("Raft shut down".into()));
        }
    }
}

/// While this node leads and detached subtrees wait, propose `Reclaim`.
async fn propose_reclaim(node: Arc<Node>) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !node.is_leader() || !node.trash_pending() {
            continue;
        }
        let proposal = Proposal {
            session: None,
            time_ms: 0,
            command: Command::Reclaim,
        };
        if let Err(e) = node.proposer.propose(proposal).await {
            tracing::debug!(error = ?e, "reclaim proposal failed");
        }
    }
}
