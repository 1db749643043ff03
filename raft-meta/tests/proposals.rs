//! Every proposal ends (issue 11, defect 4): a leader that is cut off
//! with entries in flight, deposed, and caught up by a snapshot that
//! covers those entries' indexes (so openraft never applies nor truncates
//! them, and never answers their callers) fails them within a bound as
//! "outcome unknown", frees its proposer, and writes again once it leads.

mod support {
    pub mod router;
}

use std::time::Duration;

use openraft::ServerState;
use support::router::Cluster;
use toastyfs_proto::namespace::{Command, CommandResult, Proposal};
use toastyfs_proto::{ClientId, FsPath, Seq, SessionTag};
use toastyfs_raft_meta::limits::PROPOSER_ENTRIES_IN_FLIGHT;
use toastyfs_raft_meta::proposer::{ProposeError, Proposer};

fn mkdir(path: &str) -> Proposal {
    Proposal {
        session: None,
        time_ms: 0,
        command: Command::CreateDir {
            path: FsPath::new(path).expect("path"),
            parents: false,
            expect: None,
        },
    }
}

async fn commit(proposer: &Proposer, path: &str) -> CommandResult {
    tokio::time::timeout(Duration::from_secs(10), proposer.propose(mkdir(path)))
        .await
        .unwrap_or_else(|_| panic!("mkdir {path} did not end within 10 s"))
        .unwrap_or_else(|e| panic!("mkdir {path}: {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_caught_up_by_snapshot_ends_its_proposals_and_writes_again() {
    let cluster = Cluster::start(3, 20).await;
    let old = cluster
        .wait_leader_other_than(&[], Duration::from_secs(10))
        .await;
    let proposers: std::collections::BTreeMap<_, _> = cluster
        .rafts
        .iter()
        .map(|(id, raft)| (*id, Proposer::start(raft.clone())))
        .collect();
    assert!(commit(&proposers[&old], "/before").await.is_ok());

    // Cut the leader off, then give it more proposals than it keeps in
    // flight, one entry each: none can commit.
    cluster.router.isolate(old);
    let mut stuck = Vec::new();
    for i in 0..=PROPOSER_ENTRIES_IN_FLIGHT {
        let proposer = proposers[&old].clone();
        stuck.push(tokio::spawn(async move {
            proposer.propose(mkdir(&format!("/stuck{i}"))).await
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    // The majority elects a leader and writes past a snapshot, purging
    // the log the old leader would need.
    let new = cluster
        .wait_leader_other_than(&[old], Duration::from_secs(10))
        .await;
    for i in 0..40 {
        assert!(commit(&proposers[&new], &format!("/after{i}"))
            .await
            .is_ok());
    }
    let old_last = cluster.rafts[&old]
        .metrics()
        .borrow()
        .last_log_index
        .unwrap_or(0);
    let raft = &cluster.rafts[&new];
    raft.trigger().snapshot().await.expect("trigger snapshot");
    raft.wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index > old_last),
            "new leader purged its log",
        )
        .await
        .expect("the new leader snapshots and purges");

    // Heal: the old leader is deposed and installs the snapshot.
    cluster.router.heal();
    cluster.rafts[&old]
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index > old_last),
            "old leader installed the snapshot",
        )
        .await
        .expect("the old leader catches up by snapshot");

    // Every proposal it had in flight ends, none of them committed.
    for (i, task) in stuck.into_iter().enumerate() {
        let outcome = tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .unwrap_or_else(|_| panic!("proposal /stuck{i} never ended"))
            .expect("task");
        assert!(
            matches!(
                outcome,
                Err(ProposeError::Unknown(_)) | Err(ProposeError::NotLeader(_))
            ),
            "/stuck{i}: {outcome:?}"
        );
    }

    // Re-elected, the old leader writes again through the same proposer.
    // Once it has everything the new leader has, the others stop
    // heartbeating and campaigning, so when their leases lapse the old
    // leader's campaign wins.
    let newest = cluster.rafts[&new]
        .metrics()
        .borrow()
        .last_log_index
        .unwrap_or(0);
    cluster.rafts[&old]
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.last_applied.is_some_and(|l| l.index >= newest),
            "old leader caught up",
        )
        .await
        .expect("the old leader catches up fully");
    for (id, raft) in &cluster.rafts {
        if *id != old {
            raft.runtime_config().heartbeat(false);
            raft.runtime_config().elect(false);
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let raft = &cluster.rafts[&old];
    while raft.metrics().borrow().state != ServerState::Leader {
        if tokio::time::Instant::now() >= deadline {
            let all: Vec<String> = cluster
                .rafts
                .values()
                .map(|r| format!("{}", *r.metrics().borrow()))
                .collect();
            panic!("the old leader was not re-elected within 20 s: {all:#?}");
        }
        raft.trigger().elect().await.expect("trigger election");
        let _ = raft
            .wait(Some(Duration::from_millis(500)))
            .metrics(|m| m.state == ServerState::Leader, "old leader re-elected")
            .await;
    }
    assert!(commit(&proposers[&old], "/again").await.is_ok());
    cluster.shutdown().await;
}

/// Copies of one write (a client's hedge, a follower's forward sent again
/// after a change of leader) that reach the leader while the first is in
/// flight join it: one log entry, one result for all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_a_proposal_in_flight_join_it_and_add_one_entry() {
    let cluster = Cluster::start(3, 1_000).await;
    let leader = cluster
        .wait_leader_other_than(&[], Duration::from_secs(10))
        .await;
    let proposer = Proposer::start(cluster.rafts[&leader].clone());
    // The followers never campaign, so the leader keeps leading while it
    // is cut off and nothing it proposes can commit.
    for (id, raft) in &cluster.rafts {
        if *id != leader {
            raft.runtime_config().elect(false);
        }
    }
    let raft = &cluster.rafts[&leader];
    let before = raft.metrics().borrow().last_log_index.unwrap_or(0);
    cluster.router.isolate(leader);
    let tagged = Proposal {
        session: Some(SessionTag {
            client: ClientId(7),
            seq: Seq(1),
        }),
        ..mkdir("/once")
    };
    let mut copies = Vec::new();
    for _ in 0..4 {
        let (proposer, proposal) = (proposer.clone(), tagged.clone());
        copies.push(tokio::spawn(
            async move { proposer.propose(proposal).await },
        ));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    cluster.router.heal();
    let mut results = Vec::new();
    for copy in copies {
        let result = tokio::time::timeout(Duration::from_secs(10), copy)
            .await
            .expect("a copy ended within 10 s")
            .expect("task")
            .expect("committed");
        results.push(result);
    }
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "copies answered differently: {results:?}"
    );
    let after = raft.metrics().borrow().last_log_index.unwrap_or(0);
    assert_eq!(
        after - before,
        1,
        "the copies were proposed {} times",
        after - before
    );
}
