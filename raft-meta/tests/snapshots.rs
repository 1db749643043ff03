//! The state machine over the real RocksDB store: snapshot builds racing
//! snapshot installs (a build that started before an install and finishes
//! after it must not replace the newer snapshot, neither in
//! `get_current_snapshot` nor after a restart, and the state, its applied
//! index and its digest must stay those of the installed snapshot), and a
//! large committed range applied in bounded groups.

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, LogId};
use toastyfs_proto::namespace::{Command, Proposal, WriteCommit, MIN_CHUNK_SIZE};
use toastyfs_proto::{ChunkHash, FsPath};
use toastyfs_raft_meta::store::state::state_header;
use toastyfs_raft_meta::store::{self, StateMachine};
use toastyfs_raft_meta::types::{Entry, ProposalBatch};

fn entry(index: u64) -> Entry {
    let proposal = Proposal {
        session: None,
        time_ms: index,
        command: Command::WriteCommit(WriteCommit {
            path: FsPath::new(&format!("/f{index}")).expect("path"),
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
    let entries: Vec<Entry> = indexes.map(entry).collect();
    state.apply(entries).await.expect("apply");
}

fn digest(state: &StateMachine) -> (u64, [u8; 32]) {
    let header = state_header(state.db()).expect("header");
    (header.applied_index, header.digest)
}

/// A build of index 5 that finishes after an install of index 10 leaves
/// index 10 current, loaded and durable across a restart.
#[tokio::test]
async fn a_build_finishing_after_a_newer_install_never_replaces_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_log, mut state) = store::open(dir.path()).expect("open");
    apply(&mut state, 1..=5).await;
    let mut stale_build = state.get_snapshot_builder().await;

    let donor_dir = tempfile::tempdir().expect("temp dir");
    let (_donor_log, mut donor) = store::open(donor_dir.path()).expect("open donor");
    apply(&mut donor, 1..=10).await;
    let newer = donor
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("donor snapshot");
    let expected = digest(&donor);

    let mut incoming = state.begin_receiving_snapshot().await.expect("receive");
    let mut data = *newer.snapshot;
    tokio::io::copy(&mut data, &mut *incoming)
        .await
        .expect("copy");
    state
        .install_snapshot(&newer.meta, incoming)
        .await
        .expect("install");
    assert_eq!(digest(&state), expected);

    let stale = stale_build.build_snapshot().await.expect("stale build");
    assert_eq!(stale.meta.last_log_id.map(|id| id.index), Some(5));
    let current = state
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("a snapshot");
    assert_eq!(
        current.meta, newer.meta,
        "an older build replaced the newer snapshot"
    );
    assert_eq!(
        digest(&state),
        expected,
        "the state moved under the install"
    );

    drop((_log, state, stale_build, stale, current));
    let (_log, mut reopened) = store::open(dir.path()).expect("reopen");
    assert_eq!(digest(&reopened), expected);
    let current = reopened
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("a snapshot");
    assert_eq!(current.meta, newer.meta);
    let (applied, _) = reopened.applied_state().await.expect("applied");
    assert_eq!(applied.map(|id| id.index), Some(10));
}

/// A committed range far larger than one apply group, handed over at once,
/// ends in the same state, digest and applied index as one entry at a time.
#[tokio::test]
async fn a_large_committed_range_applies_like_single_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_log, mut at_once) = store::open(dir.path()).expect("open");
    apply(&mut at_once, 1..=1000).await;
    let other = tempfile::tempdir().expect("temp dir");
    let (_other_log, mut one_by_one) = store::open(other.path()).expect("open");
    for index in 1..=1000 {
        apply(&mut one_by_one, index..=index).await;
    }
    assert_eq!(digest(&at_once), digest(&one_by_one));
    let (applied, _) = at_once.applied_state().await.expect("applied");
    assert_eq!(applied.map(|id| id.index), Some(1000));
}
