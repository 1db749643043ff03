//! An in-process cluster of real metadata Rafts (openraft over the RocksDB
//! store, each in a temp dir) joined by a router whose links can be cut:
//! a cut link fails every RPC across it in both directions, as if a
//! partition dropped the packets. Tests drive elections, partitions and
//! snapshots deterministically without processes or sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config, ServerState, SnapshotPolicy};
use toastyfs_raft_meta::store;
use toastyfs_raft_meta::types::{NodeId, Raft, TypeConfig};

#[derive(Default)]
struct Links {
    rafts: BTreeMap<NodeId, Raft>,
    /// Cut pairs, smaller id first.
    cut: BTreeSet<(NodeId, NodeId)>,
}

/// The router every node's network goes through.
#[derive(Clone, Default)]
pub struct Router {
    links: Arc<Mutex<Links>>,
}

fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

#[derive(Debug)]
struct Cut;

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("link cut by the test")
    }
}

impl std::error::Error for Cut {}

impl Router {
    /// The target's Raft, unless the link from `from` is cut.
    fn reach(&self, from: NodeId, to: NodeId) -> Option<Raft> {
        let links = self.links.lock().unwrap();
        if links.cut.contains(&pair(from, to)) {
            return None;
        }
        links.rafts.get(&to).cloned()
    }

    /// Cuts every link between `node` and the others.
    pub fn isolate(&self, node: NodeId) {
        let mut links = self.links.lock().unwrap();
        let others: Vec<NodeId> = links.rafts.keys().copied().filter(|n| *n != node).collect();
        for other in others {
            links.cut.insert(pair(node, other));
        }
    }

    pub fn heal(&self) {
        self.links.lock().unwrap().cut.clear();
    }
}

pub struct Peer {
    from: NodeId,
    to: NodeId,
    router: Router,
}

/// One node's view of the router.
#[derive(Clone)]
pub struct NodeNetwork {
    id: NodeId,
    router: Router,
}

impl RaftNetworkFactory<TypeConfig> for NodeNetwork {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Peer {
        Peer {
            from: self.id,
            to: target,
            router: self.router.clone(),
        }
    }
}

type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl Peer {
    #[allow(clippy::result_large_err)] // openraft's error type
    fn target<E: std::error::Error>(&self) -> Result<Raft, RPCError<NodeId, BasicNode, E>> {
        self.router
            .reach(self.from, self.to)
            .ok_or_else(|| RPCError::Unreachable(Unreachable::new(&Cut)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        let target = self.target()?;
        let reply = target.append_entries(rpc).await;
        // The answer crosses the link too.
        self.target::<RaftError<NodeId>>()?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let target = self.target()?;
        let reply = target.install_snapshot(rpc).await;
        self.target::<RaftError<NodeId, InstallSnapshotError>>()?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        let target = self.target()?;
        let reply = target.vote(rpc).await;
        self.target::<RaftError<NodeId>>()?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }
}

/// A running in-process cluster; the temp dirs live as long as it does.
pub struct Cluster {
    pub router: Router,
    pub rafts: BTreeMap<NodeId, Raft>,
    _dirs: Vec<tempfile::TempDir>,
}

/// Fast elections, a snapshot every `snapshot_every` entries and no log
/// kept behind it, so a node that fell behind catches up by snapshot.
fn config(snapshot_every: u64) -> Arc<Config> {
    let config = Config {
        cluster_name: "router-test".into(),
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..Default::default()
    };
    Arc::new(config.validate().expect("valid Raft config"))
}

impl Cluster {
    /// Starts `n` voters (ids 1..=n) and initializes them from node 1.
    pub async fn start(n: u64, snapshot_every: u64) -> Cluster {
        let router = Router::default();
        let mut rafts = BTreeMap::new();
        let mut dirs = Vec::new();
        for id in 1..=n {
            let dir = tempfile::tempdir().expect("temp dir");
            let (log, state) = store::open(dir.path()).expect("open store");
            let network = NodeNetwork {
                id,
                router: router.clone(),
            };
            let raft = Raft::new(id, config(snapshot_every), network, log, state)
                .await
                .expect("start raft");
            router.links.lock().unwrap().rafts.insert(id, raft.clone());
            rafts.insert(id, raft);
            dirs.push(dir);
        }
        let members: BTreeMap<NodeId, BasicNode> = (1..=n)
            .map(|id| (id, BasicNode::new(format!("node-{id}"))))
            .collect();
        rafts[&1].initialize(members).await.expect("initialize");
        Cluster {
            router,
            rafts,
            _dirs: dirs,
        }
    }

    /// Waits until some node other than those in `not` leads, and says which.
    pub async fn wait_leader_other_than(&self, not: &[NodeId], within: Duration) -> NodeId {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            for (id, raft) in &self.rafts {
                let m = raft.metrics().borrow().clone();
                if !not.contains(id) && m.state == ServerState::Leader {
                    return *id;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no leader outside {not:?} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn shutdown(self) {
        for raft in self.rafts.values() {
            let _ = raft.shutdown().await;
        }
    }
}
