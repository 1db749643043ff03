//! A 3-member etcd cluster on loopback, for running our workload shapes
//! against etcd in the same run (Debian's `etcd-server`, default timers).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use toastyfs_jepsen::cluster::free_port;

pub struct EtcdCluster {
    pub members: Vec<(String, Child, String)>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    pub fn start(binary: &Path) -> anyhow::Result<EtcdCluster> {
        let dir = tempfile::tempdir()?;
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{i}=http://127.0.0.1:{peer}"))
            .collect();
        let mut members = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let log = std::fs::File::create(dir.path().join(format!("e{i}.log")))?;
            let child = Command::new(binary)
                .args(["--name", &format!("e{i}")])
                .arg("--data-dir")
                .arg(dir.path().join(format!("e{i}")))
                .args([
                    "--listen-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args([
                    "--advertise-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                ])
                .args(["--initial-cluster", &initial.join(",")])
                .args([
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    "toastyfs-bench",
                ])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            members.push((format!("e{i}"), child, format!("http://127.0.0.1:{client}")));
        }
        Ok(EtcdCluster { members, _dir: dir })
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|(_, _, e)| e.clone()).collect()
    }

    /// Connects and waits until a put succeeds.
    pub async fn connect(&self) -> anyhow::Result<etcd_client::Client> {
        let started = Instant::now();
        loop {
            if let Ok(mut client) = etcd_client::Client::connect(self.endpoints(), None).await {
                if client.put("/bench/ready", "1", None).await.is_ok() {
                    return Ok(client);
                }
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "etcd did not come up"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Index of the member that leads.
    pub async fn leader(&self, client: &mut etcd_client::Client) -> anyhow::Result<usize> {
        for (i, endpoint) in self.endpoints().iter().enumerate() {
            let mut one = etcd_client::Client::connect([endpoint.clone()], None).await?;
            let status = one.status().await?;
            let me = status.header().map(|h| h.member_id()).unwrap_or_default();
            if status.leader() == me {
                return Ok(i);
            }
        }
        let _ = client;
        anyhow::bail!("no etcd member says it leads")
    }

    pub fn kill(&mut self, i: usize) {
        let _ = self.members[i].1.kill();
        let _ = self.members[i].1.wait();
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.members {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
