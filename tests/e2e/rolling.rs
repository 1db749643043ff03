//! A rolling restart under load (issue 16, item 4): every metadata node
//! (the leader last) and every chunk server is stopped with SIGTERM and
//! started again, one at a time, each after `toastyfs cluster
//! wait-healthy`, while clients read and write. No acknowledged operation
//! may be lost or misread, every file must read back afterwards, and the
//! longest time the clients went without a success is reported and
//! bounded: a planned restart should cost a leader hand-over, not an
//! outage.

use std::time::Duration;

use toastyfs_jepsen::nemesis::{Fault, Schedule};
use toastyfs_jepsen::netcluster::Layout;
use toastyfs_jepsen::register::RegisterWorkload;
use toastyfs_jepsen::run::{fault_config, Run};

use crate::partition::{judged, start};

/// Far above a hand-over (one round trip) and an election (under a
/// second), far below "the cluster was down": a bound on correctness, not
/// a speed target (figures go in the closing note and docs).
const UNAVAILABLE_AT_MOST: Duration = Duration::from_secs(10);

#[test]
fn a_rolling_restart_under_load_loses_nothing() {
    let _heavy = crate::harness::heavy();
    let mut cluster = start(Layout::small());
    let run = Run {
        workload: RegisterWorkload {
            duration: Duration::from_secs(45),
            value_bytes: 16 * 1024,
            keys: 20,
            ..RegisterWorkload::short_profile()
        },
        // One strike: the whole roll, then the rest of the run quiet.
        schedule: Schedule {
            faults: vec![Fault::RollingRestart],
            quiet: Duration::from_secs(2),
            hold: Duration::from_secs(1),
            duration: Duration::from_secs(10),
        },
        config: fault_config,
        pinned_readers: false,
        blocks: None,
        namespace: None,
        append: None,
        seed: 11,
    };
    let verdict = judged(&mut cluster, "rolling-restart", run);
    let summary = verdict.summary("rolling-restart");
    assert_eq!(
        verdict.cycles.values().sum::<usize>(),
        1,
        "the roll did not happen exactly once: {summary}"
    );
    assert!(
        verdict.passed(),
        "a rolling restart lost or misread data: {summary}"
    );
    assert!(
        verdict.longest_gap <= UNAVAILABLE_AT_MOST,
        "clients went {:?} without a success during a planned rolling restart: {summary}",
        verdict.longest_gap
    );
}
