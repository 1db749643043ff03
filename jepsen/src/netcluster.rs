//! A cluster whose every process lives in a host of its own on a
//! [`Network`]: metadata nodes on hosts `0..metas` (node id = host + 1,
//! port 7000), chunk servers on the next hosts (port 7100), then the client
//! hosts, whose client code runs on threads of the test process moved into
//! the host ([`NetCluster::run_in`]). Processes get their peers' addresses
//! as flags, exactly as an operator would give them. Every poll is bounded;
//! dropping the cluster kills its processes, then the network goes.
//!
//! A node's status is asked from inside its own host, so a cut link never
//! hides a node from the harness.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use toastyfs_proto::cluster::NodeStatus;

use crate::net::{NetError, Network};

/// The port every metadata node listens on (inside its own host).
pub const META_PORT: u16 = 7000;
/// The port every chunk server listens on.
pub const CHUNK_PORT: u16 = 7100;

/// How many processes of each kind, and what they are started with.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Metadata nodes that form the cluster.
    pub metas: usize,
    /// Metadata nodes started outside the cluster, for membership changes
    /// to add (hosts right after the members).
    pub spare_metas: usize,
    pub chunk_servers: usize,
    pub client_hosts: usize,
    /// Environment of every metadata node (e.g. the unsafe modes).
    pub meta_env: Vec<(String, String)>,
    /// Extra flags of every metadata node.
    pub meta_args: Vec<String>,
    /// Extra flags of every chunk server.
    pub chunk_args: Vec<String>,
}

impl Layout {
    /// Three metadata nodes, three chunk servers reporting every 200 ms,
    /// and one client host.
    pub fn small() -> Layout {
        Layout {
            metas: 3,
            spare_metas: 0,
            chunk_servers: 3,
            client_hosts: 1,
            meta_env: Vec::new(),
            meta_args: Vec::new(),
            chunk_args: vec!["--report-interval-ms".into(), "200".into()],
        }
    }
}

impl Layout {
    /// A collector that acts within seconds, so deletes, re-puts and
    /// stalled writes race it: chunk servers delete at once on a drop
    /// order, a new leader orders drops 2 s after it starts leading, and
    /// an upload not committed within 2 s of its placement may be
    /// condemned (its commit is then refused and redone).
    pub fn fast_collection(&mut self) {
        self.meta_args.extend(
            [
                "--chunk-server-timeout-ms",
                "2000",
                "--placement-ttl-ms",
                "2000",
            ]
            .map(str::to_owned),
        );
        self.chunk_args
            .extend(["--drop-grace-secs", "0"].map(str::to_owned));
    }
}

/// Why a cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot make the run's directory: {0}")]
    Dir(#[from] std::io::Error),
    #[error("the cluster did not form within {0:?} (logs in {1})")]
    NotFormed(Duration, String),
}

/// The running cluster.
pub struct NetCluster {
    pub net: Arc<Network>,
    pub layout: Layout,
    binary: PathBuf,
    dir: tempfile::TempDir,
    /// One slot per metadata node and chunk server, by host.
    children: Vec<Option<Child>>,
    /// The metadata hosts that are members now (as the harness changed
    /// them).
    members: std::collections::BTreeSet<usize>,
}

/// Polls `probe` every 100 ms until it answers, or panics after `within`
/// naming `what`.
pub fn wait_until<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
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

impl NetCluster {
    /// Builds the network, starts every process and forms the cluster.
    pub fn start(binary: PathBuf, layout: Layout) -> Result<NetCluster, StartError> {
        let layout_metas = layout.metas;
        let hosts = layout.metas + layout.spare_metas + layout.chunk_servers + layout.client_hosts;
        let net = Arc::new(Network::create(hosts)?);
        let dir = tempfile::Builder::new()
            .prefix("toastyfs-netcluster-")
            .tempdir()?;
        let mut cluster = NetCluster {
            net,
            layout,
            binary,
            dir,
            children: Vec::new(),
            members: (0..layout_metas).collect(),
        };
        for host in 0..cluster.client_host(0) {
            let child = cluster.spawn(host)?;
            cluster.children.push(Some(child));
        }
        cluster.form(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// The metadata hosts that are members of the cluster now.
    pub fn metas(&self) -> Vec<usize> {
        self.members.iter().copied().collect()
    }

    /// Every metadata host, members and spares.
    pub fn meta_hosts(&self) -> std::ops::Range<usize> {
        0..self.layout.metas + self.layout.spare_metas
    }

    pub fn chunk_servers(&self) -> std::ops::Range<usize> {
        let first = self.meta_hosts().end;
        first..first + self.layout.chunk_servers
    }

    /// Host of the `i`-th client host.
    pub fn client_host(&self, i: usize) -> usize {
        self.chunk_servers().end + i
    }

    /// Every client host.
    pub fn client_hosts(&self) -> Vec<usize> {
        (0..self.layout.client_hosts)
            .map(|i| self.client_host(i))
            .collect()
    }

    pub fn meta_addr(&self, node: usize) -> String {
        format!("{}:{META_PORT}", self.net.ip(node))
    }

    /// Every metadata host's address, members and spares (any of them
    /// will do for a client or a chunk server).
    pub fn meta_addrs(&self) -> Vec<String> {
        self.meta_hosts().map(|h| self.meta_addr(h)).collect()
    }

    /// Where the run's data and logs are.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn name(&self, host: usize) -> String {
        if self.meta_hosts().contains(&host) {
            format!("meta{host}")
        } else {
            format!("chunk{host}")
        }
    }

    /// Starts host `host`'s process (a metadata node or a chunk server),
    /// its log appended to `<dir>/<name>.log`.
    fn spawn(&self, host: usize) -> Result<Child, StartError> {
        let name = self.name(host);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))?;
        let mut command = self.net.command(host, &self.binary);
        if self.meta_hosts().contains(&host) {
            let id = (host + 1).to_string();
            command
                .args(["meta", "--id", &id, "--listen", &self.meta_addr(host)])
                .args(&self.layout.meta_args)
                .envs(self.layout.meta_env.iter().cloned());
        } else {
            let listen = format!("{}:{CHUNK_PORT}", self.net.ip(host));
            command
                .args(["chunk", "--listen", &listen, "--meta"])
                .arg(self.meta_addrs().join(","))
                .args(&self.layout.chunk_args);
        }
        let child = command
            .arg("--data-dir")
            .arg(self.dir.path().join(&name))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        Ok(child)
    }

    /// Runs `toastyfs cluster init` from the first client host (or node 0)
    /// until it succeeds.
    fn form(&self, within: Duration) -> Result<(), StartError> {
        let from = self.client_hosts().first().copied().unwrap_or(0);
        let members: Vec<String> = self
            .metas()
            .into_iter()
            .map(|h| format!("{}={}", h + 1, self.meta_addr(h)))
            .collect();
        let deadline = Instant::now() + within;
        loop {
            let out = self
                .net
                .command(from, &self.binary)
                .args(["cluster", "init", "--meta", &self.meta_addr(0)])
                .args(&members)
                .output()?;
            if out.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StartError::NotFormed(
                    within,
                    self.dir.path().display().to_string(),
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A command running the `toastyfs` binary inside host `host` (a
    /// client process of the run).
    pub fn command(&self, host: usize) -> std::process::Command {
        self.net.command(host, &self.binary)
    }

    /// Node `node`'s status, asked inside its own host (`None`: no answer
    /// within two seconds, e.g. killed or paused).
    pub fn status(&self, node: usize) -> Option<NodeStatus> {
        self.status_from(node, node)
    }

    /// Node `node`'s status asked from host `from`, across whatever cuts
    /// stand between them (`None`: no answer within two seconds).
    pub fn status_from(&self, from: usize, node: usize) -> Option<NodeStatus> {
        let url = format!(
            "http://{}{}",
            self.meta_addr(node),
            toastyfs_proto::routes::STATUS
        );
        let out = self
            .net
            .command(from, "curl")
            .args(["-s", "-f", "-m", "2", &url])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// A node that says it leads (there may be a deposed one too while a
    /// partition holds: the one with the highest term).
    pub fn leader(&self) -> Option<usize> {
        self.metas()
            .into_iter()
            .filter_map(|h| Some((h, self.status(h)?)))
            .filter(|(h, s)| s.leader == Some(*h as u64 + 1))
            .max_by_key(|(_, s)| s.term)
            .map(|(h, _)| h)
    }

    pub fn wait_leader(&self, within: Duration) -> usize {
        wait_until("a leader", within, || self.leader())
    }

    /// Waits until every metadata node answers with one leader, the same
    /// applied index and the same digest; returns the digest.
    pub fn wait_converged(&self, within: Duration) -> String {
        wait_until(
            "every metadata node converges (same leader, applied index and digest)",
            within,
            || {
                let all: Vec<NodeStatus> = self
                    .metas()
                    .into_iter()
                    .map(|h| self.status(h))
                    .collect::<Option<_>>()?;
                let first = &all[0];
                all.iter()
                    .all(|s| {
                        s.leader.is_some()
                            && s.leader == first.leader
                            && (s.applied_index, &s.digest) == (first.applied_index, &first.digest)
                    })
                    .then(|| first.digest.clone())
            },
        )
    }

    /// Runs `toastyfs cluster <args>` from the first client host against
    /// every metadata address; whether it succeeded (its stderr if not).
    fn cluster_command(&self, args: &[String]) -> Result<(), String> {
        let out = self
            .net
            .command(self.client_host(0), &self.binary)
            .args(["--meta", &self.meta_addrs().join(","), "cluster"])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Adds metadata host `host` to the cluster (a learner, promoted once
    /// caught up), retrying for `within`.
    pub fn add_member(&mut self, host: usize, within: Duration) -> Result<(), String> {
        let member = format!("{}={}", host + 1, self.meta_addr(host));
        self.retry_command(&["add-node".into(), member], within)?;
        self.members.insert(host);
        Ok(())
    }

    /// Removes metadata host `host` from the cluster, retrying for
    /// `within`.
    pub fn remove_member(&mut self, host: usize, within: Duration) -> Result<(), String> {
        self.retry_command(&["remove-node".into(), (host + 1).to_string()], within)?;
        self.members.remove(&host);
        Ok(())
    }

    fn retry_command(&self, args: &[String], within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            match self.cluster_command(args) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("cluster {}: {e}", args.join(" ")))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    /// Kills host `host`'s process, deletes its data and starts it afresh
    /// (a metadata host removed from the cluster becomes a spare again).
    pub fn wipe(&mut self, host: usize) -> Result<(), StartError> {
        self.kill(host);
        let data = self.dir.path().join(self.name(host));
        if data.exists() {
            std::fs::remove_dir_all(&data)?;
        }
        self.restart(host)
    }

    /// The chunk files chunk server `host` holds now
    /// (`<data dir>/chunks/ab/cd/<hex>`), in a stable order.
    pub fn chunk_files(&self, host: usize) -> Vec<PathBuf> {
        let root = self.dir.path().join(self.name(host)).join("chunks");
        let mut files = Vec::new();
        let dirs = |path: &std::path::Path| -> Vec<PathBuf> {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            entries
        };
        for first in dirs(&root) {
            for second in dirs(&first) {
                files.extend(dirs(&second).into_iter().filter(|p| p.is_file()));
            }
        }
        files
    }

    fn pid(&self, host: usize) -> Option<libc::pid_t> {
        let child = self.children.get(host)?.as_ref()?;
        libc::pid_t::try_from(child.id()).ok()
    }

    fn signal(&self, host: usize, signal: libc::c_int) {
        if let Some(pid) = self.pid(host) {
            // SAFETY: kill(2) with a pid of our own child.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// kill -9 of host `host`'s process (a node or a chunk server).
    pub fn kill(&mut self, host: usize) {
        if let Some(mut child) = self.children.get_mut(host).and_then(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts host `host`'s process again on its data.
    pub fn restart(&mut self, host: usize) -> Result<(), StartError> {
        self.kill(host);
        let child = self.spawn(host)?;
        self.children[host] = Some(child);
        Ok(())
    }

    /// Stops host `host`'s process as a service manager does (SIGTERM,
    /// then kill -9 if it has not exited within `grace`) and starts it
    /// again on its data. Says so if it had to be killed: a clean stop
    /// that hangs is a finding.
    pub fn restart_gracefully(&mut self, host: usize, grace: Duration) -> Result<(), String> {
        self.signal(host, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        let mut hung = false;
        if let Some(mut child) = self.children.get_mut(host).and_then(Option::take) {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {
                        hung = true;
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        let child = self.spawn(host).map_err(|e| e.to_string())?;
        self.children[host] = Some(child);
        if hung {
            return Err(format!(
                "host {host} did not exit within {grace:?} of SIGTERM"
            ));
        }
        Ok(())
    }

    /// Runs `toastyfs cluster wait-healthy` from the first client host.
    pub fn wait_healthy(&self, within: Duration) -> Result<(), String> {
        self.cluster_command(&[
            "wait-healthy".into(),
            "--timeout".into(),
            within.as_secs().to_string(),
        ])
    }

    /// SIGSTOP of host `host`'s process.
    pub fn pause(&self, host: usize) {
        self.signal(host, libc::SIGSTOP);
    }

    /// SIGCONT of host `host`'s process.
    pub fn resume(&self, host: usize) {
        self.signal(host, libc::SIGCONT);
    }

    /// Runs `work` on a thread of its own inside host `host` (its sockets
    /// belong to that host), on a current-thread runtime.
    pub fn run_in<T, F, Fut>(&self, host: usize, work: F) -> std::thread::JoinHandle<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T>,
    {
        let net = Arc::clone(&self.net);
        std::thread::spawn(move || {
            net.enter(host).expect("enter the client host");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the client host");
            runtime.block_on(work())
        })
    }
}

/// Set (to anything) to keep every cluster's logs, not only a failed one's.
pub const KEEP_LOGS_ENV: &str = "TOASTYFS_KEEP_CLUSTER_LOGS";

impl Drop for NetCluster {
    fn drop(&mut self) {
        for host in 0..self.children.len() {
            self.resume(host);
            self.kill(host);
        }
        if std::thread::panicking() || std::env::var_os(KEEP_LOGS_ENV).is_some() {
            // Keep the logs of a failed run (or of every run, if asked).
            let kept = std::mem::replace(
                &mut self.dir,
                tempfile::TempDir::new().expect("a scratch directory"),
            )
            .keep();
            eprintln!("cluster logs kept in {}", kept.display());
        }
    }
}
