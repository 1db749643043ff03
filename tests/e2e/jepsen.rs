//! The register workload under process faults (issue 12): four clients
//! read and overwrite three small files while the leader is killed and
//! restarted, or paused and resumed; the history is checked for
//! linearizability (an info write may or may not have happened), and
//! written as JSON lines for re-checking.

use std::sync::Arc;
use std::time::Duration;

use toastyfs_client::{Client, ClientConfig};
use toastyfs_jepsen::register::{Recorder, RegisterWorkload};
use toastyfs_jepsen::verdict::judge;
use toastyfs_proto::FsPath;

// The heavy-test lock is held for the whole test on the test's own
// runtime thread; nothing else on that runtime waits for it.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_workload_under_leader_kills_and_pauses_is_linearizable() {
    let _heavy = crate::harness::heavy();
    let mut cluster = crate::harness::start(3, &[]).await;
    for _ in 0..3 {
        cluster.spawn_chunk_server(&["--report-interval-ms", "200"]);
    }
    cluster.wait_chunk_servers_up(3).await;
    let mut config = ClientConfig::new(cluster.addrs());
    config.retry_for = Duration::from_secs(10);
    config.request_timeout = Duration::from_secs(3);
    let client = Arc::new(Client::new(config));
    client
        .mkdir(&FsPath::new("/reg").expect("path"), true)
        .await
        .expect("mkdir /reg");

    let workload = RegisterWorkload::short_profile();
    let recorder = Recorder::default();
    // Nemesis: kill -9 and restart the leader, then pause and resume it.
    let nemesis = async {
        for cycle in 0..4 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let leader = cluster.wait_leader().await;
            if cycle % 2 == 0 {
                cluster.kill(leader);
                tokio::time::sleep(Duration::from_secs(1)).await;
                cluster.restart(leader).await;
            } else {
                cluster.pause(leader);
                tokio::time::sleep(Duration::from_secs(2)).await;
                cluster.resume(leader);
            }
        }
    };
    // (Run in this task: the client's futures cannot be spawned.)
    let run = tokio::time::timeout(
        Duration::from_secs(60),
        workload.run(client.clone(), &recorder),
    );
    let (events, ()) = tokio::join!(run, nemesis);
    let events = events.expect("the workload ends");
    cluster.wait_converged().await;

    let verdict = judge("register", &events).expect("judge the run");
    eprintln!("{}", verdict.summary("register"));
    assert!(
        verdict.ok >= 20,
        "too few operations succeeded to check anything"
    );
    assert!(verdict.linearizable(), "{}", verdict.summary("register"));
}
