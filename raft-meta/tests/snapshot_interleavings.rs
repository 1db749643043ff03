//! Snapshot builds and installs interleaved over the real RocksDB store
//! (issue 11): random runs of applies, builds started and finished in any
//! order (before or after installs), installs of newer snapshots and
//! restarts. After every step the state's applied index equals the applied
//! log id, its digest is the one a plain in-memory replay reaches at that
//! index, and the current snapshot is the newest one ever published.

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, LogId};
use proptest::prelude::*;
use toastyfs_proto::namespace::{Command, Proposal};
use toastyfs_proto::FsPath;
use toastyfs_raft_meta::namespace::kv::MemStore;
use toastyfs_raft_meta::namespace::{self, Namespace};
use toastyfs_raft_meta::store::state::state_header;
use toastyfs_raft_meta::store::{self, StateMachine};
use toastyfs_raft_meta::types::{Entry, ProposalBatch, TypeConfig};

type Builder = <StateMachine as RaftStateMachine<TypeConfig>>::SnapshotBuilder;

fn proposal(index: u64) -> Proposal {
    Proposal {
        session: None,
        time_ms: index,
        command: Command::CreateDir {
            path: FsPath::new(&format!("/d{}/e{index}", index % 7)).expect("path"),
            parents: true,
            expect: None,
        },
    }
}

fn entry(index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(ProposalBatch {
            proposals: vec![proposal(index)],
        }),
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// Apply the next `n` entries.
    Apply(u64),
    /// Take a snapshot builder now (its checkpoint is this state).
    BeginBuild,
    /// Finish the `i`-th pending build (modulo how many are pending).
    FinishBuild(usize),
    /// Install a snapshot `ahead` entries past the applied index.
    Install(u64),
    /// Close and reopen the store (pending builds are dropped).
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u64..12).prop_map(Step::Apply),
        3 => Just(Step::BeginBuild),
        3 => (0usize..4).prop_map(Step::FinishBuild),
        2 => (1u64..15).prop_map(Step::Install),
        1 => Just(Step::Restart),
    ]
}

/// The digest an in-memory replay reaches after each index (0 first).
fn reference_digests(last: u64) -> Vec<[u8; 32]> {
    let ns = Namespace::default();
    let mut mem = MemStore::new();
    let mut out = vec![namespace::header(&mem).expect("header").digest];
    for index in 1..=last {
        let _ = ns.apply(&mut mem, index, &proposal(index)).expect("apply");
        out.push(namespace::header(&mem).expect("header").digest);
    }
    out
}

struct Run {
    dir: tempfile::TempDir,
    /// The store's log half; it shares the database, so it is closed and
    /// reopened with the state.
    log: Option<store::LogStore>,
    state: Option<StateMachine>,
    pending: Vec<Builder>,
    donor: StateMachine,
    _donor_dir: tempfile::TempDir,
    donor_applied: u64,
    applied: u64,
    newest_snapshot: Option<u64>,
}

impl Run {
    fn state(&mut self) -> &mut StateMachine {
        self.state.as_mut().expect("open")
    }

    async fn step(&mut self, step: &Step) {
        match step {
            Step::Apply(n) => {
                let from = self.applied + 1;
                let entries: Vec<Entry> = (from..from + n).map(entry).collect();
                self.state().apply(entries).await.expect("apply");
                self.applied += n;
            }
            Step::BeginBuild => {
                let builder = self.state().get_snapshot_builder().await;
                self.pending.push(builder);
            }
            Step::FinishBuild(i) => {
                if self.pending.is_empty() {
                    return;
                }
                let mut builder = self.pending.remove(i % self.pending.len());
                let built = builder.build_snapshot().await.expect("build");
                let index = built.meta.last_log_id.map_or(0, |l| l.index);
                self.newest_snapshot = self.newest_snapshot.max(Some(index));
            }
            Step::Install(ahead) => {
                let target = self.applied + ahead;
                let entries: Vec<Entry> = (self.donor_applied + 1..=target).map(entry).collect();
                self.donor.apply(entries).await.expect("donor apply");
                self.donor_applied = target;
                let snapshot = self
                    .donor
                    .get_snapshot_builder()
                    .await
                    .build_snapshot()
                    .await
                    .expect("donor build");
                let mut incoming = self
                    .state()
                    .begin_receiving_snapshot()
                    .await
                    .expect("receive");
                let mut data = *snapshot.snapshot;
                tokio::io::copy(&mut data, &mut *incoming)
                    .await
                    .expect("copy");
                self.state()
                    .install_snapshot(&snapshot.meta, incoming)
                    .await
                    .expect("install");
                self.applied = target;
                self.newest_snapshot = self.newest_snapshot.max(Some(target));
            }
            Step::Restart => {
                self.pending.clear();
                self.state = None;
                self.log = None;
                let (log, state) = store::open(self.dir.path()).expect("reopen");
                self.log = Some(log);
                self.state = Some(state);
            }
        }
    }

    async fn check(&mut self, digests: &[[u8; 32]], after: &Step) {
        let applied = self.applied;
        let newest = self.newest_snapshot;
        let state = self.state();
        let header = state_header(state.db()).expect("header");
        let (log_id, _) = state.applied_state().await.expect("applied state");
        assert_eq!(header.applied_index, applied, "state index after {after:?}");
        assert_eq!(
            log_id.map_or(0, |l| l.index),
            applied,
            "applied log id after {after:?}"
        );
        assert_eq!(
            header.digest, digests[applied as usize],
            "digest at {applied} after {after:?}"
        );
        let current = state.get_current_snapshot().await.expect("current");
        let current = current.map(|s| s.meta.last_log_id.map_or(0, |l| l.index));
        assert_eq!(current, newest, "current snapshot after {after:?}");
    }
}

async fn run(steps: Vec<Step>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, state) = store::open(dir.path()).expect("open");
    let donor_dir = tempfile::tempdir().expect("temp dir");
    let (_donor_log, donor) = store::open(donor_dir.path()).expect("open donor");
    let mut run = Run {
        dir,
        log: Some(log),
        state: Some(state),
        pending: Vec::new(),
        donor,
        _donor_dir: donor_dir,
        donor_applied: 0,
        applied: 0,
        newest_snapshot: None,
    };
    // Enough for every step to move forward by its maximum.
    let digests = reference_digests(steps.len() as u64 * 15 + 1);
    for step in &steps {
        run.step(step).await;
        run.check(&digests, step).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn builds_and_installs_in_any_order_keep_index_state_and_digest_together(
        steps in proptest::collection::vec(step(), 1..24)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run(steps));
    }
}
