//! A cluster of real processes on 127.0.0.1 for the operator tests
//! (backup, alerts): metadata nodes and chunk servers started with flags
//! under a cluster secret, each one killable, restartable and pausable by
//! name, and the CLI pointed at them. Logs go to `<dir>/<name>.log`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use toastyfs_client::{Client, ClientConfig};

use crate::dev::{free_base, Running};
use crate::harness::wait_for;

pub struct Site {
    pub dir: tempfile::TempDir,
    pub base: u16,
    processes: BTreeMap<String, Running>,
}

impl Site {
    /// A site with a fresh cluster secret and nothing running.
    pub fn new() -> Site {
        let site = Site {
            dir: tempfile::tempdir().expect("temp dir"),
            base: free_base(),
            processes: BTreeMap::new(),
        };
        let secret = site.secret().display().to_string();
        site.cli(&["cluster", "secret", &secret]);
        site
    }

    pub fn addr(&self, offset: u16) -> String {
        format!("127.0.0.1:{}", self.base + offset)
    }

    /// The metadata nodes 1 to 3, comma-separated.
    pub fn metas(&self) -> String {
        (1..=3).map(|i| self.addr(i)).collect::<Vec<_>>().join(",")
    }

    pub fn secret(&self) -> PathBuf {
        self.dir.path().join("cluster.secret")
    }

    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `toastyfs ARGS` aimed at this site's nodes, with its secret.
    pub fn toastyfs(&self, args: &[&str]) -> Command {
        let mut command = Command::new(crate::harness::binary());
        command
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("TOASTYFS_KEY")
            .env_remove("TOASTYFS_TLS_CA")
            .env_remove(toastyfs_raft_meta::unsafe_modes::ENV)
            .env("TOASTYFS_META", self.metas())
            .env("TOASTYFS_SECRET_FILE", self.secret());
        command
    }

    /// `toastyfs ARGS`, which must succeed; its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "`toastyfs {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.toastyfs(args).output().expect("run toastyfs")
    }

    /// Starts `toastyfs ARGS` as `name` (replacing a process of that
    /// name), with `env` added.
    pub fn start(&mut self, name: &str, args: &[&str], env: &[(&str, &str)]) {
        self.stop(name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))
            .expect("log file");
        let child = self
            .toastyfs(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a server");
        self.processes.insert(name.to_owned(), Running(child));
    }

    /// Metadata node `id` on `data` (its name is `meta<id>`).
    pub fn start_meta(&mut self, id: u16, data: &Path, extra: &[&str], env: &[(&str, &str)]) {
        let data = data.display().to_string();
        let listen = self.addr(id);
        let mut args = vec!["meta", "--id"];
        let id_text = id.to_string();
        args.extend([id_text.as_str(), "--listen", &listen, "--data-dir", &data]);
        args.extend(extra);
        self.start(&format!("meta{id}"), &args, env);
    }

    /// Chunk server `i` (port offset 10 + i, data `chunk<i>`).
    pub fn start_chunk(&mut self, i: u16) {
        let dir = self.data(&format!("chunk{i}")).display().to_string();
        let listen = self.addr(10 + i);
        let metas = self.metas();
        let args = [
            "chunk",
            "--data-dir",
            &dir,
            "--listen",
            &listen,
            "--meta",
            &metas,
            "--report-interval-ms",
            "200",
        ];
        self.start(&format!("chunk{i}"), &args, &[]);
    }

    /// Forms the cluster of metadata nodes 1 to 3 (retrying while they
    /// start).
    pub async fn form(&self) {
        let voters: Vec<String> = (1..=3).map(|i| format!("{i}={}", self.addr(i))).collect();
        let mut init = vec!["cluster", "init"];
        init.extend(voters.iter().map(String::as_str));
        wait_for(
            "the nodes to take cluster init",
            Duration::from_secs(30),
            || {
                let formed = self.run(&init).status.success();
                async move { formed.then_some(()) }
            },
        )
        .await;
    }

    /// Metadata nodes 1 to 3 (with `meta_args`) formed into a cluster,
    /// and chunk servers 1 to `chunk_servers`, all up and healthy.
    pub async fn launch(&mut self, meta_args: &[&str], chunk_servers: u16) {
        for i in 1..=3 {
            self.start_meta(i, &self.data(&format!("meta{i}")), meta_args, &[]);
        }
        self.form().await;
        for i in 1..=chunk_servers {
            self.start_chunk(i);
        }
        self.wait_healthy(usize::from(chunk_servers));
    }

    /// `toastyfs cluster wait-healthy` for `chunk_servers` up, within 120 s.
    pub fn wait_healthy(&self, chunk_servers: usize) {
        let chunk_servers = chunk_servers.to_string();
        let args = [
            "cluster",
            "wait-healthy",
            "--timeout",
            "120",
            "--chunk-servers",
        ];
        let mut args = args.to_vec();
        args.push(&chunk_servers);
        self.cli(&args);
    }

    /// kill -9 of `name`, if it runs.
    pub fn stop(&mut self, name: &str) {
        self.processes.remove(name);
    }

    fn signal(&self, name: &str, signal: libc::c_int) {
        let pid = self.processes.get(name).map(|r| r.0.id());
        let pid = pid.and_then(|p| libc::pid_t::try_from(p).ok());
        if let Some(pid) = pid {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// SIGSTOP of `name`.
    pub fn pause(&self, name: &str) {
        self.signal(name, libc::SIGSTOP);
    }

    /// SIGCONT of `name`.
    pub fn resume(&self, name: &str) {
        self.signal(name, libc::SIGCONT);
    }

    /// A client of the library with the secret.
    pub fn client(&self) -> Client {
        let mut config = ClientConfig::new((1..=3).map(|i| self.addr(i)).collect());
        config.secret = Some(toastyfs_client::secret::load(&self.secret()).expect("secret"));
        config.retry_for = Duration::from_secs(30);
        Client::new(config)
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.cli(&["cluster", "status", "-o", "json"])).expect("status JSON")
    }

    /// The id of the node every answering node names as leader, if they
    /// agree on one.
    pub fn leader(&self) -> Option<u64> {
        let out = self.run(&["cluster", "status", "-o", "json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        status["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["status"]["role"] == "Leader")
            .and_then(|n| n["id"].as_u64())
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // Resume paused processes so they can be killed and reaped.
        let names: Vec<String> = self.processes.keys().cloned().collect();
        for name in names {
            self.resume(&name);
        }
    }
}
