//! The checker's teeth (issue 12): each deliberately unsafe mode (built
//! only with the test-only `unsafe-modes` feature, switched on per process
//! or per client) must make a short run fail: its history is not
//! linearizable, or a file it acknowledged cannot be read after the heal.
//! The same faults without the modes are the short profile in
//! `partition.rs`, which must pass.

use std::time::Duration;

use toastyfs_client::ClientConfig;
use toastyfs_jepsen::nemesis::{Fault, Schedule};
use toastyfs_jepsen::netcluster::Layout;
use toastyfs_jepsen::register::RegisterWorkload;
use toastyfs_jepsen::run::{fault_config, Run};

use crate::partition::{judged, start};

fn schedule(fault: Fault) -> Schedule {
    Schedule {
        faults: vec![fault],
        quiet: Duration::from_secs(2),
        hold: Duration::from_secs(4),
        duration: Duration::from_secs(20),
    }
}

/// Every node answers linearizable reads from its own state: a reader
/// pinned to a follower cut off from the others reads old values after
/// newer writes were acknowledged.
#[test]
fn reads_without_a_read_index_are_caught() {
    let _heavy = crate::harness::heavy();
    let mut layout = Layout::small();
    layout.meta_env = vec![(
        toastyfs_raft_meta::unsafe_modes::ENV.to_owned(),
        "local-reads".to_owned(),
    )];
    let mut cluster = start(layout);
    let run = Run {
        workload: RegisterWorkload {
            duration: Duration::from_secs(22),
            ..RegisterWorkload::short_profile()
        },
        schedule: schedule(Fault::IsolateFollower),
        config: fault_config,
        pinned_readers: true,
        blocks: None,
        namespace: None,
        append: None,
        seed: 2,
    };
    let verdict = judged(&mut cluster, "tooth-local-reads", run);
    assert!(
        !verdict.linearizable(),
        "stale reads went unnoticed: {}",
        verdict.summary("tooth-local-reads")
    );
}

fn fresh_tags(meta: Vec<String>) -> ClientConfig {
    let mut config = fault_config(meta);
    config.request_timeout = Duration::from_secs(1);
    config.unsafe_fresh_tag_per_attempt = true;
    config
}

/// A retried write goes under a fresh session tag: when the nodes' answers
/// to the clients are lost, a compare-and-set that was applied is applied
/// again, refused as a version mismatch and reported failed, although its
/// value is there for everyone to read.
#[test]
fn retries_that_skip_the_session_check_are_caught() {
    let _heavy = crate::harness::heavy();
    let mut cluster = start(Layout::small());
    let run = Run {
        workload: RegisterWorkload {
            clients: 8,
            duration: Duration::from_secs(22),
            read_percent: 30,
            cas_percent: 100,
            ..RegisterWorkload::short_profile()
        },
        schedule: Schedule {
            quiet: Duration::from_secs(1),
            hold: Duration::from_secs(2),
            ..schedule(Fault::RepliesToClientsLost)
        },
        config: fresh_tags,
        pinned_readers: false,
        blocks: None,
        namespace: None,
        append: None,
        seed: 3,
    };
    let verdict = judged(&mut cluster, "tooth-fresh-tags", run);
    assert!(
        !verdict.linearizable(),
        "double-applied writes went unnoticed: {}",
        verdict.summary("tooth-fresh-tags")
    );
}

/// The collector drops chunks no file references without condemning them
/// in the log first: an upload whose commit is held up while the clients
/// are cut from the metadata nodes is deleted, the late commit is
/// accepted, and the file it wrote cannot be read after the heal.
///
/// The bug bites only when a cut falls between a client's placement and
/// its commit and a scan runs before the heal, so one 30 s run misses it
/// now and then (once in about twenty CI runs). The checker has teeth if
/// it catches the bug in one of up to [`UNFENCED_ATTEMPTS`] runs, each on
/// its own directory and seed of the same cluster; it never has to catch
/// anything that did not happen.
#[test]
fn drops_without_the_collection_fence_are_caught() {
    let _heavy = crate::harness::heavy();
    let mut layout = Layout::small();
    layout.meta_env = vec![(
        toastyfs_raft_meta::unsafe_modes::ENV.to_owned(),
        "unfenced-drops".to_owned(),
    )];
    layout.fast_collection();
    let mut cluster = start(layout);
    let mut missed = Vec::new();
    for attempt in 0..UNFENCED_ATTEMPTS {
        let name = format!("tooth-unfenced-drops-{attempt}");
        let verdict = judged(&mut cluster, &name, unfenced_drops_run(attempt));
        if !verdict.passed() {
            return;
        }
        missed.push(verdict.summary(&name));
    }
    panic!(
        "chunks deleted under committed files went unnoticed in {UNFENCED_ATTEMPTS} runs:\n{}",
        missed.join("\n")
    );
}

/// How many runs the unfenced-drops tooth gets to catch its bug.
const UNFENCED_ATTEMPTS: u64 = 3;

/// The `attempt`th run of the unfenced-drops tooth.
fn unfenced_drops_run(attempt: u64) -> Run {
    Run {
        workload: RegisterWorkload {
            clients: 8,
            dir: format!("/reg-unfenced-{attempt}"),
            duration: Duration::from_secs(30),
            // Most writes go to a key of their own, so a lost one is the
            // value the final reads look for.
            keys: 5_000,
            read_percent: 20,
            // Uploads long enough that a cut often finds a write between
            // its upload and its commit.
            value_bytes: 256 * 1024,
            ..RegisterWorkload::short_profile()
        },
        schedule: Schedule {
            quiet: Duration::from_secs(1),
            hold: Duration::from_secs(3),
            duration: Duration::from_secs(28),
            ..schedule(Fault::ClientsCutFromMetas)
        },
        config: fault_config,
        pinned_readers: false,
        blocks: None,
        namespace: None,
        append: None,
        seed: 4 + attempt,
    }
}
