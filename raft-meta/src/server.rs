//! Starting a metadata node: open the store, start Raft, serve the HTTP
//! API, and run the background tasks (leader-change logging and
//! fail-stop, reclaim proposals, the replication scan, elections after a
//! pre-vote) until the node fails.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, SnapshotPolicy};
use toastyfs_client::secret::ClusterKeys;
use toastyfs_client::serve::{serve, ServeLimits};
use toastyfs_client::transport::Transport;
use toastyfs_proto::namespace::{Command, Proposal};

use crate::api;
use crate::auth::Gate;
use crate::chunk_map::ChunkMapConfig;
use toastyfs_client::tls::NodeTls;

use crate::election::{self, ElectionState};
use crate::handover;
use crate::limits;
use crate::namespace::Namespace;
use crate::network::NetworkFactory;
use crate::node::Node;
use crate::proposer::Proposer;
use crate::read_index::ReadIndex;
use crate::replication::{self, Replication};
use crate::store;
use crate::types::{NodeId, Raft};
use crate::upload_sweep;

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
    /// An upload temporary unwritten for this long is deleted.
    pub upload_temp_ttl: Duration,
    /// The cluster secret (and during a rotation one more accepted):
    /// node-to-node requests are signed and checked with it. `None`:
    /// nothing is signed or checked.
    pub keys: Option<ClusterKeys>,
    /// TLS on the listener and to peers; `None`: plain HTTP.
    pub tls: Option<NodeTls>,
}

impl NodeConfig {
    pub fn new(id: NodeId, data_dir: PathBuf, listen: SocketAddr) -> NodeConfig {
        NodeConfig {
            id,
            data_dir,
            listen,
            advertise: listen.to_string(),
            heartbeat_ms: limits::HEARTBEAT_MS,
            election_min_ms: limits::ELECTION_MIN_MS,
            election_max_ms: limits::ELECTION_MAX_MS,
            snapshot_every: limits::SNAPSHOT_EVERY_ENTRIES,
            keep_logs: limits::KEEP_LOGS_BEHIND_SNAPSHOT,
            chunks: ChunkMapConfig::default(),
            upload_temp_ttl: limits::DEFAULT_UPLOAD_TEMP_TTL,
            keys: None,
            tls: None,
        }
    }

    /// The pre-vote's timing. Its lease equals openraft's own leader lease
    /// (openraft's `election_timeout_max`), so a voter that grants a
    /// pre-vote does not then refuse the vote.
    pub fn election_timing(&self) -> election::Timing {
        election::Timing {
            lease: Duration::from_millis(self.openraft_election_bounds().1),
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            max: Duration::from_millis(self.election_max_ms),
        }
    }

    /// openraft's election timeout bounds. Its own timer is off
    /// ([`election`] campaigns), so they only set its leader lease (the
    /// upper bound): the shortest election timeout.
    fn openraft_election_bounds(&self) -> (u64, u64) {
        let min = (self.election_min_ms.saturating_sub(1)).max(self.heartbeat_ms + 1);
        (min, min + 1)
    }

    fn raft_config(&self) -> Result<Config, NodeError> {
        let (election_min, election_max) = self.openraft_election_bounds();
        Config {
            cluster_name: "toastyfs".into(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: election_min,
            election_timeout_max: election_max,
            enable_elect: false,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_logs,
            max_payload_entries: limits::MAX_PAYLOAD_ENTRIES,
            snapshot_max_chunk_size: limits::SNAPSHOT_RPC_BYTES,
            install_snapshot_timeout: limits::INSTALL_SNAPSHOT_TIMEOUT_MS,
            ..Default::default()
        }
        .validate()
        .map_err(|e| NodeError::Config(e.to_string()))
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

/// Opens the store, starts Raft and serves until the node fails.
/// Runs a node until it fails or `stop` completes; at a stop, a leader
/// first hands leadership over ([`handover`]) and Raft shuts down.
pub async fn run(
    config: NodeConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let node = start(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: config.listen,
            source,
        })?;
    tracing::info!(id = config.id, addr = %config.advertise, dir = %config.data_dir.display(), "metadata node listening");
    let gate = match &config.keys {
        Some(keys) => Some(Arc::new(Gate::new(keys))),
        None => {
            tracing::warn!("no cluster secret (--secret-file): node-to-node requests are neither signed nor checked; anyone who reaches this node can act as a peer");
            None
        }
    };
    let app = api::router(node.clone(), gate);
    let server_tls = config.tls.as_ref().map(|t| t.server.clone());
    tokio::spawn(serve(listener, app, ServeLimits::default(), server_tls));
    tokio::spawn(propose_reclaim(node.clone()));
    tokio::spawn(upload_sweep::run(node.clone(), config.upload_temp_ttl));
    tokio::spawn(election::run(node.clone(), config.election_timing()));
    let scanner = node.clone();
    tokio::spawn(async move {
        let node = &scanner;
        replication::run(&node.replication, &node.raft, &node.db, &node.proposer).await
    });
    tokio::select! {
        failed = watch(node.clone()) => failed,
        () = stop => {
            tracing::info!("stopping");
            handover::step_down(&node).await;
            let _ = node.raft.shutdown().await;
            Ok(())
        }
    }
}

/// The store opened and Raft started: the node's shared handle.
async fn start(config: &NodeConfig) -> Result<Arc<Node>, NodeError> {
    let (log, sm) = store::open(&config.data_dir)?;
    let db = sm.db().clone();
    let transport = Transport::new(limits::FORWARD_TIMEOUT)
        .signed_with(config.keys.as_ref().map(|k| k.sign_with.clone()))
        .with_tls(config.tls.as_ref().map(|t| t.peers.clone()));
    let network = NetworkFactory {
        transport: transport.clone(),
    };
    let raft_config = Arc::new(config.raft_config()?);
    let raft = Raft::new(config.id, raft_config, network, log.clone(), sm)
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
    Ok(Arc::new(Node {
        id: config.id,
        addr: config.advertise.clone(),
        raft: raft.clone(),
        db,
        log,
        namespace: Namespace::default(),
        transport,
        proposer: Proposer::start(raft.clone()),
        read_index: ReadIndex::start(raft),
        replication: Replication::new(
            config.chunks.clone(),
            std::time::Duration::from_millis(config.election_min_ms),
        ),
        prometheus: crate::metrics::install(),
        election: ElectionState::default(),
        lease: config.election_timing().lease,
    }))
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
        tokio::time::sleep(limits::RECLAIM_INTERVAL).await;
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
