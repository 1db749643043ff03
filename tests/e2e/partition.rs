//! Real partitions (issue 12, cluster control): three metadata nodes and a
//! client, each in a network namespace of its own. A cut link drops the
//! traffic across it and a healed one carries it again, for a client's
//! link to a node and for the links between nodes (an isolated leader is
//! replaced; after the heal every node converges).

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use toastyfs_jepsen::net::Network;
use toastyfs_proto::cluster::NodeStatus;

const CLIENT: usize = 3;

fn addr(net: &Network, host: usize) -> String {
    format!("{}:7000", net.ip(host))
}

/// A node's status, asked from the client host (`None`: no answer within
/// two seconds).
fn status(net: &Network, node: usize) -> Option<NodeStatus> {
    let url = format!(
        "http://{}{}",
        addr(net, node),
        toastyfs_proto::routes::STATUS
    );
    let out = net
        .command(CLIENT, "curl")
        .args(["-s", "-f", "-m", "2", &url])
        .output()
        .expect("run curl");
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn wait_until<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `toastyfs <args> --data-dir <dir>/<name>` inside `host`, its
/// log in `<dir>/<name>.log`.
fn spawn_in(net: &Network, host: usize, args: &[&str], dir: &Path, name: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    net.command(host, crate::harness::binary())
        .args(args)
        .arg("--data-dir")
        .arg(dir.join(name))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name} in its namespace: {e}"))
}

fn start_node(net: &Network, host: usize, dir: &Path) -> Child {
    let id = (host + 1).to_string();
    let listen = addr(net, host);
    let args = ["meta", "--id", &id, "--listen", &listen];
    spawn_in(net, host, &args, dir, &format!("meta{host}"))
}

/// Forms the cluster of the metadata nodes on hosts 0..3, from host `from`.
fn form_cluster(net: &Network, from: usize) {
    let members: Vec<String> = (0..3)
        .map(|h| format!("{}={}", h + 1, addr(net, h)))
        .collect();
    wait_until("the cluster forms", Duration::from_secs(30), || {
        let out = net
            .command(from, crate::harness::binary())
            .args(["cluster", "init", "--meta", &addr(net, 0)])
            .args(&members)
            .output()
            .expect("run toastyfs cluster init");
        out.status.success().then_some(())
    });
}

#[test]
fn cut_links_drop_traffic_and_healed_links_carry_it_again() {
    let net = Network::create(4).expect("build the test network (root, iproute2, iptables)");
    let dir = tempfile::tempdir().expect("temp dir");
    let _nodes = Nodes((0..3).map(|h| start_node(&net, h, dir.path())).collect());
    form_cluster(&net, CLIENT);
    let leader = wait_until("a leader", Duration::from_secs(30), || {
        (0..3).find(|h| status(&net, *h).is_some_and(|s| s.leader == Some(*h as u64 + 1)))
    });

    // The client's link to one node: cut, then healed.
    let other = (leader + 1) % 3;
    net.cut(CLIENT, other).expect("cut");
    assert!(
        status(&net, other).is_none(),
        "a cut link carried a request"
    );
    assert!(status(&net, leader).is_some(), "an uncut link stopped");
    net.heal().expect("heal");
    assert!(
        status(&net, other).is_some(),
        "a healed link carries nothing"
    );

    // The leader cut from the other nodes, both ways, while the client
    // still reaches everyone: the others elect a new leader.
    let peers: Vec<usize> = (0..3).filter(|h| *h != leader).collect();
    net.isolate_from(leader, &peers)
        .expect("isolate the leader");
    let new_leader = wait_until(
        "a new leader among the others",
        Duration::from_secs(20),
        || {
            let s = status(&net, peers[0])?;
            s.leader.filter(|l| *l != leader as u64 + 1)
        },
    );
    assert_ne!(new_leader, leader as u64 + 1);
    net.heal().expect("heal");
    wait_until(
        "every node agrees on one leader and converges",
        Duration::from_secs(30),
        || {
            let all: Vec<NodeStatus> = (0..3).map(|h| status(&net, h)).collect::<Option<_>>()?;
            let first = &all[0];
            all.iter()
                .all(|s| {
                    s.leader.is_some()
                        && s.leader == first.leader
                        && (s.applied_index, &s.digest) == (first.applied_index, &first.digest)
                })
                .then_some(())
        },
    );
}

fn start_chunk_server(net: &Network, host: usize, metas: &str, dir: &Path) -> Child {
    let listen = format!("{}:7100", net.ip(host));
    let args = [
        "chunk",
        "--listen",
        &listen,
        "--meta",
        metas,
        "--report-interval-ms",
        "200",
    ];
    spawn_in(net, host, &args, dir, &format!("chunk{host}"))
}

/// The register workload across real partitions (issue 12): three
/// metadata nodes, three chunk servers and the clients each in a host of
/// their own; twice the leader is cut from the other metadata nodes for
/// five seconds while clients and chunk servers still reach it. The
/// history must be linearizable and the nodes must converge.
#[test]
fn register_workload_across_a_partitioned_leader_is_linearizable() {
    use std::sync::Arc;
    use toastyfs_client::{Client, ClientConfig};
    use toastyfs_jepsen::register::{Recorder, RegisterWorkload};
    use toastyfs_jepsen::verdict::judge;

    const CLIENT_HOST: usize = 6;
    let net = Arc::new(Network::create(7).expect("build the test network"));
    let dir = tempfile::tempdir().expect("temp dir");
    let metas: Vec<String> = (0..3).map(|h| addr(&net, h)).collect();
    let mut children: Vec<Child> = (0..3).map(|h| start_node(&net, h, dir.path())).collect();
    children.extend((3..6).map(|h| start_chunk_server(&net, h, &metas.join(","), dir.path())));
    let _children = Nodes(children);
    form_cluster(&net, CLIENT_HOST);

    // The clients run on a thread inside the client host.
    let recorder = Recorder::default();
    let workload = {
        let (net, recorder, metas) = (net.clone(), recorder.clone(), metas.clone());
        std::thread::spawn(move || {
            net.enter(CLIENT_HOST).expect("enter the client host");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut config = ClientConfig::new(metas);
                config.retry_for = Duration::from_secs(10);
                config.request_timeout = Duration::from_secs(3);
                let client = Arc::new(Client::new(config));
                let reg = toastyfs_proto::FsPath::new("/reg").expect("path");
                let deadline = Instant::now() + Duration::from_secs(30);
                while client.mkdir(&reg, true).await.is_err() {
                    assert!(Instant::now() < deadline, "mkdir /reg failed for 30 s");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let workload = RegisterWorkload::short_profile();
                workload.run(client, &recorder).await
            })
        })
    };
    // Nemesis: the leader cut from the other metadata nodes, twice.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_secs(4));
        let leader = wait_until("a leader", Duration::from_secs(20), || {
            (0..3).find(|h| status(&net, *h).is_some_and(|s| s.leader == Some(*h as u64 + 1)))
        });
        let peers: Vec<usize> = (0..3).filter(|h| *h != leader).collect();
        net.isolate_from(leader, &peers)
            .expect("cut the leader off");
        std::thread::sleep(Duration::from_secs(5));
        net.heal().expect("heal");
    }
    let events = workload.join().expect("the workload thread");
    wait_until(
        "every node converges after the heal",
        Duration::from_secs(30),
        || {
            let all: Vec<NodeStatus> = (0..3).map(|h| status(&net, h)).collect::<Option<_>>()?;
            let first = &all[0];
            all.iter()
                .all(|s| (s.applied_index, &s.digest) == (first.applied_index, &first.digest))
                .then_some(())
        },
    );

    let verdict = judge("partition", &events).expect("judge the run");
    eprintln!("{}", verdict.summary("partitioned register"));
    assert!(
        verdict.ok >= 20,
        "too few operations succeeded to check anything"
    );
    assert!(
        verdict.linearizable(),
        "{}",
        verdict.summary("partitioned register")
    );
}
