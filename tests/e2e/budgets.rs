//! Byte budgets on the Raft path (issue 11, defect 3): many maximum-size
//! commands committed at once, and a follower catching up over thousands
//! of entries after them, all within the receivers' request limit.

use std::time::Duration;

use futures::future::join_all;
use futures::StreamExt;
use toastyfs_client::ClientError;
use toastyfs_proto::namespace::{Command, Outcome, Proposal, MAX_CHUNKS_PER_OP};
use toastyfs_proto::{ChunkHash, FsPath};

/// A `ForgetGarbage` naming the most hashes a command may: about 128 KiB
/// encoded, cheap to apply (none of them is garbage).
fn largest_command(seed: u64) -> Command {
    let hashes = (0..MAX_CHUNKS_PER_OP as u64)
        .map(|j| ChunkHash::of(&[seed.to_be_bytes(), j.to_be_bytes()].concat()))
        .collect();
    Command::ForgetGarbage { hashes }
}

fn anonymous(command: Command) -> Proposal {
    Proposal {
        session: None,
        time_ms: 0,
        command,
    }
}

// The heavy-test lock is held for the whole test on the test's own
// runtime thread; nothing else on that runtime waits for it.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximum_size_commits_at_once_then_a_follower_catches_up_over_thousands_of_entries() {
    let _heavy = crate::harness::heavy();
    let mut cluster = crate::harness::start(3, &[]).await;
    let leader = cluster.wait_leader().await;
    let behind = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.kill(behind);
    let client = cluster.client();

    // A command over its limits is refused before it takes room in the log.
    let before = cluster.status(leader).await.expect("status").last_log_index;
    let over = Command::ForgetGarbage {
        hashes: (0..=MAX_CHUNKS_PER_OP as u64)
            .map(|j| ChunkHash::of(&j.to_be_bytes()))
            .collect(),
    };
    match client.propose(&anonymous(over)).await {
        Err(ClientError::Protocol(message)) => assert!(message.contains("limit"), "{message}"),
        other => panic!("an oversized command: {other:?}"),
    }
    let after = cluster.status(leader).await.expect("status").last_log_index;
    assert_eq!(before, after, "the refused command reached the log");

    // 300 of them, 32 at a time (about 38 MiB in all, more than a node
    // accepts in one request).
    let burst = futures::stream::iter(0..300u64)
        .map(|i| {
            let client = client.clone();
            async move { (i, client.propose(&anonymous(largest_command(i))).await) }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>();
    let answers = tokio::time::timeout(Duration::from_secs(120), burst)
        .await
        .expect("300 maximum-size commands commit within 120 s");
    for (i, answer) in answers {
        match answer {
            Ok(Ok(Outcome::GarbageForgotten { count: 0 })) => {}
            other => panic!("maximum-size command {i}: {other:?}"),
        }
    }

    // Thousands of small entries (four writers, mostly one entry each).
    let writers = (0..4).map(|w| {
        let client = client.clone();
        async move {
            for i in 0..750 {
                let path = FsPath::new(&format!("/many/{w}-{i}")).expect("path");
                let command = Command::CreateDir {
                    path,
                    parents: true,
                    expect: None,
                };
                let answer = client.propose(&anonymous(command)).await;
                assert!(matches!(answer, Ok(Ok(_))), "mkdir {w}-{i}: {answer:?}");
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(120), join_all(writers))
        .await
        .expect("3,000 small writes within 120 s");

    // The follower comes back over the log (no snapshot yet) and converges.
    cluster.restart(behind).await;
    let status = cluster.status(behind).await.expect("status");
    assert!(
        status.snapshot_index.is_none(),
        "caught up by log, not snapshot"
    );
    cluster.wait_converged().await;
}
