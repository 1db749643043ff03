//! Real partitions (issue 12): metadata nodes, chunk servers and the
//! clients each in a network namespace of its own ([`NetCluster`]). A cut
//! link drops the traffic across it and a healed one carries it again; the
//! register workload stays linearizable under every nemesis of the short
//! profile, and the nodes converge afterwards.

use std::time::Duration;

use toastyfs_jepsen::append::AppendWorkload;
use toastyfs_jepsen::blocks::BlocksWorkload;
use toastyfs_jepsen::namespace::NamespaceWorkload;
use toastyfs_jepsen::nemesis::{Fault, Schedule};
use toastyfs_jepsen::netcluster::{wait_until, Layout, NetCluster};
use toastyfs_jepsen::register::RegisterWorkload;
use toastyfs_jepsen::run::{fault_config, run_register, Run};
use toastyfs_jepsen::verdict::RunVerdict;

pub fn start(layout: Layout) -> NetCluster {
    NetCluster::start(crate::harness::binary(), layout)
        .expect("start a cluster in network namespaces (root, iproute2, iptables, curl)")
}

#[test]
fn cut_links_drop_traffic_and_healed_links_carry_it_again() {
    let mut layout = Layout::small();
    layout.chunk_servers = 0;
    let cluster = start(layout);
    let client = cluster.client_host(0);
    let leader = cluster.wait_leader(Duration::from_secs(30));

    // The client's link to one node: cut, then healed.
    let other = (leader + 1) % 3;
    cluster.net.cut(client, other).expect("cut");
    assert!(
        cluster.status_from(client, other).is_none(),
        "a cut link carried a request"
    );
    assert!(
        cluster.status_from(client, leader).is_some(),
        "an uncut link stopped"
    );
    cluster.net.heal().expect("heal");
    assert!(
        cluster.status_from(client, other).is_some(),
        "a healed link carries nothing"
    );

    // The leader cut from the other nodes, both ways, while the client
    // still reaches everyone: the others elect a new leader.
    let peers: Vec<usize> = (0..3).filter(|h| *h != leader).collect();
    cluster
        .net
        .isolate_from(leader, &peers)
        .expect("isolate the leader");
    let new_leader = wait_until(
        "a new leader among the others",
        Duration::from_secs(20),
        || {
            let s = cluster.status_from(client, peers[0])?;
            s.leader.filter(|l| *l != leader as u64 + 1)
        },
    );
    assert_ne!(new_leader, leader as u64 + 1);
    cluster.net.heal().expect("heal");
    cluster.wait_converged(Duration::from_secs(30));
}

/// A follower cut off from the other metadata nodes for many election
/// timeouts, then healed, changes neither the leader nor the term: it
/// never won a pre-vote, so it never raised its term (issue 18: before
/// the pre-vote it climbed about two terms a second and its term deposed
/// the healthy leader at the heal).
#[test]
fn a_follower_cut_off_and_healed_deposes_no_leader() {
    let mut layout = Layout::small();
    layout.chunk_servers = 0;
    let cluster = start(layout);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let before = cluster.status(leader).expect("the leader's status");
    let follower = (leader + 1) % 3;
    let peers: Vec<usize> = (0..3).filter(|h| *h != follower).collect();
    cluster
        .net
        .isolate_from(follower, &peers)
        .expect("isolate the follower");
    // Ten election timeouts and more.
    std::thread::sleep(Duration::from_secs(6));
    let cut_off = cluster
        .status(follower)
        .expect("the cut-off follower's status");
    cluster.net.heal().expect("heal");
    cluster.wait_converged(Duration::from_secs(30));
    let after = cluster
        .status(leader)
        .expect("the leader's status after the heal");
    assert_eq!(
        (after.leader, after.term),
        (before.leader, before.term),
        "the heal changed the leader or the term (the cut-off follower was at term {})",
        cut_off.term
    );
    assert_eq!(
        cut_off.term, before.term,
        "the cut-off follower raised its term"
    );
}

/// The short profile's partitions and process faults, one after another,
/// against whole-file puts, compare-and-sets and partial writes of one
/// large file; every key must read back after the heal.
#[test]
fn register_workload_under_the_short_nemesis_profile_is_linearizable() {
    let _heavy = crate::harness::heavy();
    let mut layout = Layout::small();
    layout.spare_metas = 1;
    layout.fast_collection();
    // Snapshots and log compaction every few hundred entries, so a
    // follower cut off for a fault catches up by a snapshot install.
    layout.meta_args.extend(
        ["--snapshot-every", "300", "--keep-logs", "100"]
            .iter()
            .map(|a| a.to_string()),
    );
    let mut cluster = start(layout);
    let workload = RegisterWorkload {
        duration: Duration::from_secs(96),
        cas_percent: 50,
        ..RegisterWorkload::short_profile()
    };
    let schedule = Schedule {
        faults: Fault::PROFILE.to_vec(),
        quiet: Duration::from_secs(1),
        hold: Duration::from_secs(3),
        duration: Duration::from_secs(90),
    };
    let run = Run {
        workload,
        schedule,
        config: fault_config,
        pinned_readers: true,
        blocks: Some(BlocksWorkload {
            duration: Duration::from_secs(96),
            ..BlocksWorkload::short_profile()
        }),
        namespace: Some(NamespaceWorkload {
            duration: Duration::from_secs(96),
            ..NamespaceWorkload::short_profile()
        }),
        append: Some(AppendWorkload {
            duration: Duration::from_secs(96),
            ..AppendWorkload::short_profile()
        }),
        seed: 1,
    };
    let verdict = judged(&mut cluster, "short-profile", run);
    assert!(verdict.passed(), "{}", verdict.summary("short-profile"));
}

/// Five metadata nodes: a majority ring (every node sees a majority, no
/// two the same one), random halves, the leader isolated, killed, paused,
/// a majority killed, and membership changes, against registers and
/// appends.
#[test]
fn five_metadata_nodes_stay_linearizable_under_rings_and_halves() {
    let _heavy = crate::harness::heavy();
    let mut layout = Layout::small();
    layout.metas = 5;
    layout.spare_metas = 1;
    layout.fast_collection();
    let mut cluster = start(layout);
    let duration = Duration::from_secs(45);
    let run = Run {
        workload: RegisterWorkload {
            duration,
            cas_percent: 50,
            ..RegisterWorkload::short_profile()
        },
        schedule: Schedule {
            faults: vec![
                Fault::Bridge,
                Fault::RandomHalves,
                Fault::IsolateLeader,
                Fault::KillMajority,
                Fault::PauseLeader,
                Fault::KillLeader,
                Fault::MembershipChange,
                Fault::LeaderRepliesLost,
            ],
            quiet: Duration::from_secs(1),
            hold: Duration::from_secs(3),
            duration: duration - Duration::from_secs(5),
        },
        config: fault_config,
        pinned_readers: true,
        blocks: None,
        namespace: None,
        append: Some(AppendWorkload {
            duration,
            ..AppendWorkload::short_profile()
        }),
        seed: 5,
    };
    let verdict = judged(&mut cluster, "five-nodes", run);
    assert!(verdict.passed(), "{}", verdict.summary("five-nodes"));
}

/// Runs and judges `run`, which must have enough successes to check.
pub fn judged(cluster: &mut NetCluster, name: &str, run: Run) -> RunVerdict {
    let verdict = run_register(cluster, name, run).expect("run the workload");
    eprintln!("{}", verdict.summary(name));
    assert!(
        verdict.ok >= 20,
        "too few operations succeeded to check anything: {}",
        verdict.summary(name)
    );
    verdict
}
