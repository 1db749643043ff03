//! The multi-host walkthrough of docs/operations.md ("Deploying on several
//! hosts"), command for command (issue 16, item 2): four hosts and an
//! operator's machine, each a network namespace with its own address and
//! its own `/etc/toastyfs` and `/var/lib/toastyfs` under a temp dir. Three
//! hosts are configured from `deploy/toastyfs.toml`, checked, started and
//! formed into a cluster; a file is written; a fourth host is added; then
//! host 2 dies, is removed, comes back with wiped disks under a new node
//! id, and is added again; the file is read back and the cluster is
//! healthy (equal digests, every chunk fully replicated).

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use toastyfs_jepsen::net::Network;

/// The operator's machine: the last host of the network.
const OPERATOR: usize = 4;

/// One host: its filesystem root (`etc/`, `var/`) and its services.
struct Host {
    root: PathBuf,
    services: Vec<Child>,
}

impl Host {
    fn etc(&self) -> PathBuf {
        self.root.join("etc/toastyfs")
    }

    fn var(&self) -> PathBuf {
        self.root.join("var/lib/toastyfs")
    }

    fn config(&self) -> PathBuf {
        self.etc().join("toastyfs.toml")
    }

    /// The host dies: its services are killed.
    fn kill(&mut self) {
        for mut service in self.services.drain(..) {
            let _ = service.kill();
            let _ = service.wait();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Deployment {
    net: Network,
    dir: tempfile::TempDir,
    hosts: Vec<Host>,
}

impl Deployment {
    fn ip(&self, host: usize) -> String {
        self.net.ip(host).to_string()
    }

    fn meta_addr(&self, host: usize) -> String {
        format!("{}:7001", self.ip(host))
    }

    /// `toastyfs ARGS` on `host`, waited for.
    fn on(&self, host: usize, args: &[&str]) -> Output {
        self.net
            .command(host, crate::harness::binary())
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("TOASTYFS_KEY")
            .env_remove("TOASTYFS_TLS_CA")
            .env(
                "TOASTYFS_SECRET_FILE",
                self.dir.path().join("cluster.secret"),
            )
            .env(
                "TOASTYFS_META",
                [0, 1, 2].map(|h| self.meta_addr(h)).join(","),
            )
            .output()
            .expect("run toastyfs")
    }

    /// `toastyfs ARGS` on the operator's machine, which must succeed.
    fn operator(&self, args: &[&str]) -> String {
        let out = self.on(OPERATOR, args);
        assert!(
            out.status.success(),
            "`toastyfs {}` failed: {}{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `toastyfs cluster wait-healthy` from the operator's machine.
    fn wait_healthy(&self, chunk_servers: u32, timeout_secs: u32) {
        let (servers, timeout) = (chunk_servers.to_string(), timeout_secs.to_string());
        self.operator(&[
            "cluster",
            "wait-healthy",
            "--timeout",
            &timeout,
            "--chunk-servers",
            &servers,
        ]);
    }

    /// Writes host `host`'s file from `deploy/toastyfs.toml` (node id
    /// `id`, its own addresses and directories) and checks it on the host.
    fn configure(&self, host: usize, id: u64) {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/toastyfs.toml");
        let h = &self.hosts[host];
        let text = std::fs::read_to_string(shipped)
            .expect("deploy/toastyfs.toml")
            .replace(
                "[\"10.0.0.1:7001\", \"10.0.0.2:7001\", \"10.0.0.3:7001\"]",
                &format!(
                    "[{}]",
                    [0, 1, 2]
                        .map(|h| format!("\"{}\"", self.meta_addr(h)))
                        .join(", ")
                ),
            )
            .replace("id = 1", &format!("id = {id}"))
            .replace("10.0.0.1:70", &format!("{}:70", self.ip(host)))
            .replace("/etc/toastyfs", &h.etc().display().to_string())
            .replace("/var/lib/toastyfs", &h.var().display().to_string());
        std::fs::create_dir_all(h.etc()).expect("etc");
        std::fs::create_dir_all(h.var()).expect("var");
        std::fs::write(h.config(), text).expect("write the host's file");
        let config = h.config().display().to_string();
        let out = self.on(host, &["config", "check", &config]);
        assert!(
            out.status.success(),
            "config check on host {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// What the units run: `toastyfs meta|chunk --config FILE` on `host`.
    fn start_services(&mut self, host: usize) {
        let config = self.hosts[host].config();
        for role in ["meta", "chunk"] {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join(format!("host{host}-{role}.log")))
                .expect("log file");
            let child = self
                .net
                .command(host, crate::harness::binary())
                .args([role, "--config"])
                .arg(&config)
                .env_remove("TOASTYFS_SECRET_FILE")
                .env_remove("TOASTYFS_META")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start a service");
            self.hosts[host].services.push(child);
        }
    }

    /// Waits until `host`'s metadata node answers `/health` from the
    /// operator's machine (as an operator waits for the units to come up
    /// before `cluster init`); a node that never does fails the test.
    fn wait_listening(&self, host: usize) {
        let url = format!("http://{}/health", self.meta_addr(host));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let answered = self
                .net
                .command(OPERATOR, "curl")
                .args(["-sf", "-m", "2", &url])
                .output()
                .is_ok_and(|o| o.status.success());
            if answered {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "host {host}'s metadata node did not answer within 60 s\n{}",
                self.logs()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The last lines of every service's log, for a failure message.
    fn logs(&self) -> String {
        let mut out = String::new();
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return out;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                out.push_str(&format!("--- {}\n", path.display()));
                for line in tail.into_iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

fn copy_secret(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("a parent")).expect("etc");
    // `scp -p` keeps the mode: so does `fs::copy`.
    std::fs::copy(from, to).expect("copy the secret");
}

#[test]
fn the_multi_host_walkthrough_forms_grows_and_replaces_a_host() {
    let _heavy = crate::harness::heavy();
    let net = Network::create(OPERATOR + 1).expect("network namespaces (root, iproute2)");
    let dir = tempfile::tempdir().expect("temp dir");
    let hosts = (0..OPERATOR)
        .map(|index| Host {
            root: dir.path().join(format!("host{}", index + 1)),
            services: vec![],
        })
        .collect();
    let mut d = Deployment { net, dir, hosts };

    // 1. The secret, made once and copied to every host.
    let secret = d.dir.path().join("cluster.secret");
    d.operator(&["cluster", "secret", &secret.display().to_string()]);
    for host in 0..OPERATOR {
        copy_secret(&secret, &d.hosts[host].etc().join("cluster.secret"));
    }

    // 2 and 3. Each of three hosts: its file, checked, and its services.
    for host in 0..3 {
        d.configure(host, host as u64 + 1);
        d.start_services(host);
    }

    // 4. Formed from the operator's machine once every node listens, and
    // healthy.
    for host in 0..3 {
        d.wait_listening(host);
    }
    let voters: Vec<String> = (0..3)
        .map(|h| format!("{}={}", h + 1, d.meta_addr(h)))
        .collect();
    let mut init = vec!["cluster", "init"];
    init.extend(voters.iter().map(String::as_str));
    d.operator(&init);
    d.wait_healthy(3, 120);

    // 5. Used.
    let local = d.dir.path().join("notes.txt");
    std::fs::write(&local, b"written before the cluster changed\n").expect("local file");
    d.operator(&["put", &local.display().to_string(), "/notes.txt"]);
    assert_eq!(
        d.operator(&["cat", "/notes.txt"]),
        "written before the cluster changed\n"
    );

    // Grown by a fourth host.
    d.configure(3, 4);
    d.start_services(3);
    d.wait_listening(3);
    d.operator(&["cluster", "add-node", &format!("4={}", d.meta_addr(3))]);
    d.wait_healthy(4, 120);

    // Host 2 dies and is replaced: removed, its disks wiped, back under a
    // new node id, added again.
    d.hosts[1].kill();
    d.operator(&["cluster", "remove-node", "2"]);
    let var = d.hosts[1].var();
    std::fs::remove_dir_all(&var).expect("wipe the dead host's disks");
    d.configure(1, 5);
    d.start_services(1);
    d.wait_listening(1);
    d.operator(&["cluster", "add-node", &format!("5={}", d.meta_addr(1))]);
    d.wait_healthy(4, 180);

    assert_eq!(
        d.operator(&["cat", "/notes.txt"]),
        "written before the cluster changed\n"
    );
    let status: serde_json::Value =
        serde_json::from_str(&d.operator(&["cluster", "status", "-o", "json"])).expect("JSON");
    let ids: Vec<u64> = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["id"].as_u64())
        .collect();
    assert_eq!(ids, vec![1, 3, 4, 5], "the members after the replacement");
    let servers = status["chunks"]["servers"]
        .as_array()
        .expect("chunk servers");
    assert_eq!(
        servers.len(),
        4,
        "the replaced chunk server is forgotten: {servers:?}"
    );
    assert!(servers.iter().all(|s| s["up"] == true), "{servers:?}");
}
