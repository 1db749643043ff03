//! Receiving a snapshot over the network: a chunk whose write is cut off
//! when the leader hangs up and is then sent again must still give an
//! intact install (the soak of 1051b54 saw a wiped, re-added node fail
//! with "record checksum mismatch" after such resends), and a received
//! file that is corrupt must be refused before the old state is touched.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{BasicNode, CommittedLeaderId, Config, EntryPayload, LogId};
use toastyfs_proto::namespace::{Command, Proposal, WriteCommit, MIN_CHUNK_SIZE};
use toastyfs_proto::{ChunkHash, FsPath};
use toastyfs_raft_meta::snapshot_receiver::receive_chunk;
use toastyfs_raft_meta::store::state::state_header;
use toastyfs_raft_meta::store::{self, Db, StateMachine};
use toastyfs_raft_meta::types::{
    Entry, NodeId, ProposalBatch, Raft, SnapshotMeta, TypeConfig, Vote,
};
use tokio::io::AsyncReadExt;

/// An entry writing a file with a long name, so a few thousand of them
/// make a snapshot of several MiB.
fn entry(index: u64) -> Entry {
    let name = format!("/f{index:08}-{}", "x".repeat(240));
    let proposal = Proposal {
        session: None,
        time_ms: index,
        command: Command::WriteCommit(WriteCommit {
            path: FsPath::new(&name).expect("path"),
            offset: 0,
            length: 10,
            chunks: vec![ChunkHash::of(&index.to_be_bytes())],
            expect: None,
            create_with_chunk_size: Some(MIN_CHUNK_SIZE),
        }),
    };
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(ProposalBatch {
            proposals: vec![proposal],
        }),
    }
}

async fn apply(state: &mut StateMachine, indexes: std::ops::RangeInclusive<u64>) {
    for group in indexes.collect::<Vec<_>>().chunks(1000) {
        let entries: Vec<Entry> = group.iter().copied().map(entry).collect();
        state.apply(entries).await.expect("apply");
    }
}

fn digest(db: &Db) -> (u64, [u8; 32]) {
    let header = state_header(db).expect("header");
    (header.applied_index, header.digest)
}

/// A snapshot of `entries` entries, its meta and its bytes.
async fn donor_snapshot(entries: u64) -> (SnapshotMeta, Vec<u8>, (u64, [u8; 32])) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_log, mut donor) = store::open(dir.path()).expect("open donor");
    apply(&mut donor, 1..=entries).await;
    let mut snapshot = donor
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build");
    let mut bytes = Vec::new();
    snapshot
        .snapshot
        .read_to_end(&mut bytes)
        .await
        .expect("read snapshot");
    (snapshot.meta, bytes, digest(donor.db()))
}

/// A network every link of which is down: the node under test is alone.
#[derive(Clone)]
struct Alone;

struct NoPeer;

type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no peers in this test")
    }
}

impl std::error::Error for Down {}

impl RaftNetworkFactory<TypeConfig> for Alone {
    type Network = NoPeer;

    async fn new_client(&mut self, _target: NodeId, _node: &BasicNode) -> NoPeer {
        NoPeer
    }
}

impl RaftNetwork<TypeConfig> for NoPeer {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        Err(RPCError::Unreachable(Unreachable::new(&Down)))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        Err(RPCError::Unreachable(Unreachable::new(&Down)))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        Err(RPCError::Unreachable(Unreachable::new(&Down)))
    }
}

/// A new node (id 2) that belongs to no cluster yet, as a node just added
/// as a learner is before the leader sends it a snapshot; and its store.
async fn new_node(dir: &Path) -> (Raft, std::sync::Arc<Db>) {
    let (log, state) = store::open(dir).expect("open store");
    let db = state.db().clone();
    let config = Config {
        cluster_name: "snapshot-transfer-test".into(),
        ..Default::default()
    };
    let config = std::sync::Arc::new(config.validate().expect("config"));
    let raft = Raft::new(2, config, Alone, log, state)
        .await
        .expect("start raft");
    (raft, db)
}

fn chunk(
    meta: &SnapshotMeta,
    offset: usize,
    data: &[u8],
    done: bool,
) -> InstallSnapshotRequest<TypeConfig> {
    InstallSnapshotRequest {
        vote: Vote::new_committed(1, 1),
        meta: meta.clone(),
        offset: offset as u64,
        data: data.to_vec(),
        done,
    }
}

async fn send(raft: &Raft, request: InstallSnapshotRequest<TypeConfig>) {
    tokio::time::timeout(Duration::from_secs(30), receive_chunk(raft, request))
        .await
        .expect("a chunk is received within 30 s")
        .expect("the chunk is accepted");
}

/// Polls the receipt of `request` until the node has begun writing it to
/// its incoming file, then drops it, as axum drops a handler whose
/// client hung up. Says whether it was cut (rather than already done).
async fn cut_off_mid_write(
    raft: &Raft,
    incoming: &Path,
    request: InstallSnapshotRequest<TypeConfig>,
) -> bool {
    let mut receipt = Box::pin(receive_chunk(raft, request));
    let mut cx = Context::from_waker(Waker::noop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Poll::Ready(reply) = Pin::as_mut(&mut receipt).poll(&mut cx) {
            reply.expect("the chunk is accepted");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let written = std::fs::metadata(incoming).map_or(0, |m| m.len());
        if written > 0 {
            return true;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node did not begin writing the chunk within 30 s"
        );
    }
}

const CHUNK: usize = 3 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_cut_off_mid_write_and_sent_again_installs_intact() {
    let (meta, bytes, donor) = donor_snapshot(16_000).await;
    assert!(
        bytes.len() > CHUNK + 1024,
        "the snapshot ({} bytes) must span more than one {CHUNK}-byte chunk",
        bytes.len()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (raft, db) = new_node(dir.path()).await;
    let incoming = db.snapshot_dir().join("incoming.snap");

    let first = &bytes[..CHUNK];
    let cut = cut_off_mid_write(&raft, &incoming, chunk(&meta, 0, first, false)).await;
    eprintln!("first chunk cut off mid write: {cut}");
    // The leader heard nothing, so it sends the same chunk again, then the rest.
    send(&raft, chunk(&meta, 0, first, false)).await;
    send(&raft, chunk(&meta, CHUNK, &bytes[CHUNK..], true)).await;

    assert_eq!(
        digest(&db),
        donor,
        "the installed state is the donor's, applied index and digest"
    );
    let _ = raft.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_received_snapshot_is_refused_and_the_old_state_kept() {
    let (meta, mut bytes, _) = donor_snapshot(3_000).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut state_log, mut state) = store::open(dir.path()).expect("open store");
    let _ = &mut state_log;
    apply(&mut state, 1..=5).await;
    let before = digest(state.db());

    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let mut incoming = state
        .begin_receiving_snapshot()
        .await
        .expect("begin receiving");
    tokio::io::AsyncWriteExt::write_all(&mut *incoming, &bytes)
        .await
        .expect("write incoming");
    let installed = state.install_snapshot(&meta, incoming).await;
    assert!(installed.is_err(), "a corrupt snapshot must not install");
    assert_eq!(
        digest(state.db()),
        before,
        "the state before the corrupt install is kept whole"
    );
    drop((state_log, state));
    let (_log, reopened) =
        store::open(dir.path()).expect("the store opens again after a refused install");
    assert_eq!(
        digest(reopened.db()),
        before,
        "and still holds the old state"
    );
}
