//! Starting and controlling a cluster of `toastyfs meta` and `toastyfs
//! chunk` processes: each on a free 127.0.0.1 port with its own data
//! directory and log file; kill -9, restart, and polls with deadlines.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use toastyfs_client::Admin;
use toastyfs_proto::auth::Secret;
use toastyfs_proto::cluster::NodeStatus;
use toastyfs_proto::namespace::{
    Command as NsCommand, CommandResult, Proposal, Query, QueryResult,
};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct MetaProcess {
    pub binary: PathBuf,
    pub id: u64,
    pub addr: String,
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub extra_args: Vec<String>,
}

/// One chunk server process.
pub struct ChunkProcess {
    pub addr: String,
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub extra_args: Vec<String>,
}

/// A cluster of metadata nodes and chunk servers; dropping it kills them all.
pub struct Cluster {
    pub binary: PathBuf,
    pub root: tempfile::TempDir,
    pub nodes: BTreeMap<u64, MetaProcess>,
    /// Chunk servers, numbered from 1 in start order.
    pub chunk_servers: BTreeMap<u64, ChunkProcess>,
    /// The cluster secret the harness's own requests are signed with,
    /// when the nodes were started with one.
    pub secret: Option<Secret>,
}

impl Cluster {
    /// Starts `n` nodes of `binary` and forms the cluster.
    pub async fn start(binary: PathBuf, n: u64, extra_args: &[&str]) -> Cluster {
        Cluster::empty(binary).form(n, extra_args).await
    }

    /// Starts `n` nodes each given the cluster secret in `secret_file`,
    /// and forms the cluster with requests signed with it.
    pub async fn start_signed(binary: PathBuf, n: u64, secret_file: &Path) -> Cluster {
        let mut cluster = Cluster::empty(binary);
        cluster.secret =
            Some(toastyfs_client::secret::load(secret_file).expect("read the cluster secret"));
        let path = secret_file.display().to_string();
        cluster.form(n, &["--secret-file", &path]).await
    }

    async fn form(self, n: u64, extra_args: &[&str]) -> Cluster {
        let mut cluster = self;
        for id in 1..=n {
            cluster.spawn_new(id, extra_args);
        }
        for id in 1..=n {
            cluster.wait_healthy(id).await;
        }
        let members: BTreeMap<u64, String> = cluster
            .nodes
            .values()
            .map(|n| (n.id, n.addr.clone()))
            .collect();
        let first = cluster.nodes[&1].addr.clone();
        cluster
            .client()
            .init(&first, members)
            .await
            .expect("cluster init");
        cluster.wait_leader().await;
        cluster
    }

    /// A cluster of no processes yet, in a new temporary directory.
    pub fn empty(binary: PathBuf) -> Cluster {
        Cluster {
            binary,
            root: tempfile::tempdir().expect("temp dir"),
            nodes: BTreeMap::new(),
            chunk_servers: BTreeMap::new(),
            secret: None,
        }
    }

    /// Starts a new node process (not yet a member).
    pub fn spawn_new(&mut self, id: u64, extra_args: &[&str]) {
        let addr = format!("127.0.0.1:{}", free_port());
        let dir = self.root.path().join(format!("meta{id}"));
        let extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        let mut node = MetaProcess {
            binary: self.binary.clone(),
            id,
            addr,
            dir,
            child: None,
            extra_args,
        };
        node.child = Some(spawn(&node));
        self.nodes.insert(id, node);
    }

    /// Starts a chunk server reporting to every metadata node; returns its
    /// number. It is reachable once [`Cluster::wait_chunk_servers_up`] says so.
    pub fn spawn_chunk_server(&mut self, extra_args: &[&str]) -> u64 {
        let n = self.chunk_servers.len() as u64 + 1;
        let mut server = ChunkProcess {
            addr: format!("127.0.0.1:{}", free_port()),
            dir: self.root.path().join(format!("chunk{n}")),
            child: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        server.child = Some(spawn_chunk(&self.binary, &server, &self.all_meta_addrs()));
        self.chunk_servers.insert(n, server);
        n
    }

    /// Every metadata address, running or not (chunk servers try them all).
    fn all_meta_addrs(&self) -> Vec<String> {
        self.nodes.values().map(|n| n.addr.clone()).collect()
    }

    /// kill -9 of chunk server `n`.
    pub fn kill_chunk_server(&mut self, n: u64) {
        if let Some(mut child) = self.chunk_servers.get_mut(&n).and_then(|s| s.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart_chunk_server(&mut self, n: u64) {
        let metas = self.all_meta_addrs();
        let server = self.chunk_servers.get_mut(&n).expect("known chunk server");
        assert!(server.child.is_none(), "chunk server {n} is running");
        server.child = Some(spawn_chunk(&self.binary, server, &metas));
    }

    pub fn chunk_log_of(&self, n: u64) -> String {
        std::fs::read_to_string(self.chunk_servers[&n].dir.with_extension("log"))
            .unwrap_or_default()
    }

    /// Waits until the leader reports `count` chunk servers up.
    pub async fn wait_chunk_servers_up(&self, count: usize) {
        let client = self.client();
        wait_for(
            &format!("{count} chunk servers to report to the leader"),
            Duration::from_secs(30),
            || {
                let client = client.clone();
                async move {
                    let status = client.chunk_status().await.ok()?;
                    (status.servers.iter().filter(|s| s.up).count() == count).then_some(())
                }
            },
        )
        .await;
    }

    pub fn addrs(&self) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.child.is_some())
            .map(|n| n.addr.clone())
            .collect()
    }

    pub fn client(&self) -> Admin {
        Admin::connect_signed(self.addrs(), self.secret.clone())
    }

    pub async fn wait_healthy(&self, id: u64) {
        let addr = self.nodes[&id].addr.clone();
        let client = self.client();
        wait_for(
            &format!("node {id} to answer"),
            Duration::from_secs(30),
            || {
                let client = client.clone();
                let addr = addr.clone();
                async move { client.status(&addr).await.ok() }
            },
        )
        .await;
    }

    pub async fn status(&self, id: u64) -> Option<NodeStatus> {
        self.client().status(&self.nodes[&id].addr).await.ok()
    }

    /// Waits until every running node agrees on one leader; returns it.
    pub async fn wait_leader(&self) -> u64 {
        wait_for(
            "a leader every running node agrees on",
            Duration::from_secs(30),
            || async {
                let mut leaders = Vec::new();
                for (id, node) in &self.nodes {
                    if node.child.is_none() {
                        continue;
                    }
                    leaders.push(self.status(*id).await?.leader?);
                }
                let first = *leaders.first()?;
                let running = leaders
                    .iter()
                    .all(|l| self.nodes.get(l).is_some_and(|n| n.child.is_some()));
                (running && leaders.iter().all(|l| *l == first)).then_some(first)
            },
        )
        .await
    }

    /// Waits until all running nodes have applied the same index and hold
    /// the same digest; returns the digest.
    pub async fn wait_converged(&self) -> String {
        wait_for(
            "every running node to apply the same entries",
            Duration::from_secs(60),
            || async {
                let mut seen = Vec::new();
                for (id, node) in &self.nodes {
                    if node.child.is_some() {
                        let s = self.status(*id).await?;
                        seen.push((s.applied_index, s.digest_index, s.digest));
                    }
                }
                let first = seen.first()?.clone();
                seen.iter().all(|s| *s == first).then_some(first.2)
            },
        )
        .await
    }

    /// kill -9.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.nodes.get_mut(&id).and_then(|n| n.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, a planned stop: waits up to `within` for the process to
    /// exit and returns how it exited (`None`: still running, then killed).
    pub fn terminate(&mut self, id: u64, within: Duration) -> Option<std::process::ExitStatus> {
        self.signal(id, "-TERM");
        let mut child = self.nodes.get_mut(&id).and_then(|n| n.child.take())?;
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub async fn restart(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("known node");
        assert!(node.child.is_none(), "node {id} is running");
        node.child = Some(spawn(node));
        self.wait_healthy(id).await;
    }

    pub fn log_of(&self, id: u64) -> String {
        std::fs::read_to_string(self.nodes[&id].dir.with_extension("log")).unwrap_or_default()
    }

    /// SIGSTOP: the node keeps its sockets but answers nothing.
    pub fn pause(&self, id: u64) {
        self.signal(id, "-STOP");
    }

    /// SIGCONT after [`Cluster::pause`].
    pub fn resume(&self, id: u64) {
        self.signal(id, "-CONT");
    }

    fn signal(&self, id: u64, signal: &str) {
        let pid = self.pid(id).expect("a running node");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// The process id of a running node.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.nodes.get(&id)?.child.as_ref().map(|c| c.id())
    }

    pub async fn write(&self, command: NsCommand) -> CommandResult {
        let proposal = Proposal {
            session: None,
            time_ms: 1,
            command,
        };
        self.client()
            .propose(&proposal)
            .await
            .expect("write answered")
    }

    pub async fn read(&self, query: Query) -> QueryResult {
        self.client()
            .query(&query, false)
            .await
            .expect("read answered")
    }
}

fn spawn(node: &MetaProcess) -> Child {
    let id = node.id.to_string();
    let args = ["meta", "--id", &id, "--listen", &node.addr];
    spawn_logged(
        &node.binary,
        &args,
        &node.dir,
        &node.extra_args,
        "info,openraft=warn",
    )
}

fn spawn_chunk(binary: &PathBuf, server: &ChunkProcess, metas: &[String]) -> Child {
    let metas = metas.join(",");
    let args = ["chunk", "--listen", &server.addr, "--meta", &metas];
    spawn_logged(binary, &args, &server.dir, &server.extra_args, "info")
}

/// Starts `binary args --data-dir dir extra`, its output appended to
/// `dir.log`, logging at `RUST_LOG` or `default_log`.
fn spawn_logged(
    binary: &PathBuf,
    args: &[&str],
    dir: &std::path::Path,
    extra: &[String],
    default_log: &str,
) -> Child {
    std::fs::create_dir_all(dir).expect("data dir");
    let log = File::options()
        .create(true)
        .append(true)
        .open(dir.with_extension("log"))
        .expect("log file");
    Command::new(binary)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| default_log.into()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {} {}: {e}", binary.display(), args[0]))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        let chunk_ids: Vec<u64> = self.chunk_servers.keys().copied().collect();
        for id in &ids {
            self.kill(*id);
        }
        for n in &chunk_ids {
            self.kill_chunk_server(*n);
        }
        if std::thread::panicking() {
            for id in ids {
                eprintln!("----- log of meta node {id} -----\n{}", self.log_of(id));
            }
            for n in chunk_ids {
                eprintln!(
                    "----- log of chunk server {n} -----\n{}",
                    self.chunk_log_of(n)
                );
            }
        }
    }
}
