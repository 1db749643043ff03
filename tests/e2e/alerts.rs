//! The alert rules of `deploy/prometheus/alerts.yml` (issue 16, item 5),
//! each fired once by causing its condition on a real cluster scraped by a
//! real Prometheus (Debian's package; `.ci/run` installs it): a chunk
//! server killed (down, then its chunks under-replicated), a metadata node
//! killed, a follower paused while 1,200 entries commit (behind), the
//! leader killed four times (flapping), two of three nodes killed (no
//! leader), and a node reporting a digest not its own (digests differ).
//! The rules are used as shipped except their `for:` durations, set to 0
//! so the test does not wait them out; `promtool check rules` passes the
//! shipped file.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use toastyfs_proto::FsPath;

use crate::harness::wait_for;
use crate::site::Site;

fn shipped(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/prometheus")
        .join(name)
}

/// A Prometheus scraping `site` every second with the shipped rules.
struct Prometheus {
    child: Child,
    addr: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(site: &Site) -> Prometheus {
        let dir = site.data("prometheus");
        std::fs::create_dir_all(&dir).expect("prometheus dir");
        let rules = std::fs::read_to_string(shipped("alerts.yml")).expect("alerts.yml");
        let rules: String = rules
            .lines()
            .map(|line| {
                if line.trim_start().starts_with("for:") {
                    "        for: 0s".to_owned()
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.join("alerts.yml"), rules).expect("rules");
        let targets =
            |offsets: [u16; 3]| offsets.map(|o| format!("\"{}\"", site.addr(o))).join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  scrape_timeout: 900ms\n\
             rule_files:\n  - alerts.yml\n\
             scrape_configs:\n  - job_name: toastyfs-meta\n    static_configs:\n      - targets: [{}]\n  \
             - job_name: toastyfs-chunk\n    static_configs:\n      - targets: [{}]\n",
            targets([1, 2, 3]),
            targets([11, 12, 13])
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("config");
        let addr = site.addr(30);
        let log = std::fs::File::create(site.data("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus (apt-get install prometheus; .ci/run does)");
        Prometheus { child, addr }
    }

    /// The names of the alerts firing now.
    async fn firing(&self) -> Option<Vec<String>> {
        let url = format!("http://{}/api/v1/alerts", self.addr);
        let body: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
        Some(
            body["data"]["alerts"]
                .as_array()?
                .iter()
                .filter(|a| a["state"] == "firing")
                .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
                .collect(),
        )
    }

    /// Waits until `alert` fires.
    async fn wait_firing(&self, alert: &str) {
        self.wait_until(alert, true).await;
    }

    /// Waits until `alert` no longer fires.
    async fn wait_quiet(&self, alert: &str) {
        self.wait_until(alert, false).await;
    }

    async fn wait_until(&self, alert: &str, firing: bool) {
        let what = if firing { "fire" } else { "stop firing" };
        wait_for(
            &format!("{alert} to {what}"),
            Duration::from_secs(90),
            || async move {
                self.firing()
                    .await
                    .filter(|names| names.iter().any(|n| n == alert) == firing)
                    .map(drop)
            },
        )
        .await;
    }
}

fn p(path: &str) -> FsPath {
    FsPath::new(path).expect("path")
}

/// Commits `count` directories under `dir`, one at a time: one log
/// entry each (concurrent ones would share entries).
async fn commit_many(site: &Site, dir: &str, count: usize) {
    let client = site.client();
    client.mkdir(&p(dir), true).await.expect("mkdir");
    for i in 0..count {
        client
            .mkdir(&p(&format!("{dir}/d{i}")), false)
            .await
            .expect("mkdir");
    }
}

async fn wait_leader(site: &Site) -> u64 {
    wait_for("a leader", Duration::from_secs(30), || async move {
        site.leader()
    })
    .await
}

const META_ARGS: [&str; 4] = [
    "--chunk-server-timeout-ms",
    "2000",
    "--placement-ttl-ms",
    "5000",
];

// The heavy lock only orders whole tests; it is never contended inside one.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_alert_fires_when_its_condition_is_caused() {
    let _heavy = crate::harness::heavy();
    let check = Command::new("promtool")
        .args(["check", "rules"])
        .arg(shipped("alerts.yml"))
        .output()
        .expect("run promtool");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let mut site = Site::new();
    site.launch(&META_ARGS, 3).await;
    let prometheus = Prometheus::start(&site);
    let client = site.client();
    for i in 0..5 {
        let bytes = crate::harness::pattern(50_000, i);
        client
            .put(&p(&format!("/f{i}")), &bytes[..], false, None, None)
            .await
            .expect("put");
    }
    prometheus.wait_quiet("ToastyFSNoLeader").await;

    // A chunk server killed: down, and every chunk it held under-replicated.
    site.stop("chunk3");
    prometheus.wait_firing("ToastyFSChunkServerDown").await;
    prometheus
        .wait_firing("ToastyFSChunksUnderReplicated")
        .await;
    site.start_chunk(3);

    // A metadata node killed.
    let leader = wait_leader(&site).await;
    let follower = (1..=3).find(|i| *i != leader as u16).expect("a follower");
    site.stop(&format!("meta{follower}"));
    prometheus.wait_firing("ToastyFSMetaNodeDown").await;
    site.start_meta(
        follower,
        &site.data(&format!("meta{follower}")),
        &META_ARGS,
        &[],
    );
    prometheus.wait_quiet("ToastyFSMetaNodeDown").await;

    // A follower paused while 1,200 entries commit: behind.
    let leader = wait_leader(&site).await;
    let follower = (1..=3).find(|i| *i != leader as u16).expect("a follower");
    site.pause(&format!("meta{follower}"));
    commit_many(&site, "/behind", 1_200).await;
    prometheus.wait_firing("ToastyFSNodeBehind").await;
    site.resume(&format!("meta{follower}"));

    // The leader killed and restarted four times: flapping.
    for _ in 0..4 {
        let leader = wait_leader(&site).await as u16;
        site.stop(&format!("meta{leader}"));
        wait_for("another leader", Duration::from_secs(30), || async {
            site.leader().filter(|l| *l != u64::from(leader))
        })
        .await;
        site.start_meta(
            leader,
            &site.data(&format!("meta{leader}")),
            &META_ARGS,
            &[],
        );
        // Long enough for a scrape of each leader, as a real flap is.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    prometheus.wait_firing("ToastyFSLeaderFlapping").await;

    // Two of three nodes killed: no leader.
    site.wait_healthy(3);
    for i in [1u16, 2] {
        site.stop(&format!("meta{i}"));
    }
    prometheus.wait_firing("ToastyFSNoLeader").await;
    for i in [1u16, 2] {
        site.start_meta(i, &site.data(&format!("meta{i}")), &META_ARGS, &[]);
    }
    prometheus.wait_quiet("ToastyFSNoLeader").await;

    // Replicas that agree never fire the digest alert (1,200 entries and
    // four elections have passed checkpoints by now).
    let firing = prometheus.firing().await.expect("the alerts");
    assert!(
        !firing.iter().any(|a| a == "ToastyFSDigestsDiffer"),
        "{firing:?}"
    );

    // Node 3 reports a digest not its own, as a diverged replica would.
    let mode = (
        toastyfs_raft_meta::unsafe_modes::ENV,
        "skewed-digest-fingerprint",
    );
    site.start_meta(3, &site.data("meta3"), &META_ARGS, &[mode]);
    site.wait_healthy(3);
    commit_many(&site, "/digests", 250).await;
    prometheus.wait_firing("ToastyFSDigestsDiffer").await;
}

/// Every metric the shipped dashboard and rules name is one the servers
/// export (named in their source), and the dashboard is valid JSON.
#[test]
fn the_dashboard_and_rules_name_only_exported_metrics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard =
        std::fs::read_to_string(root.join("deploy/grafana/toastyfs.json")).expect("the dashboard");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard JSON");
    assert!(!parsed["panels"].as_array().expect("panels").is_empty());
    let rules = std::fs::read_to_string(shipped("alerts.yml")).expect("the rules");
    let mut source = String::new();
    for dir in ["raft-meta/src", "chunkserver/src"] {
        collect_source(&root.join(dir), &mut source);
    }
    for text in [&dashboard, &rules] {
        for name in metric_names(text) {
            let name = name.trim_end_matches("_bucket");
            assert!(
                source.contains(&format!("\"{name}\"")),
                "{name} is used by deploy/ but no server exports it"
            );
        }
    }
}

fn collect_source(dir: &Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).expect("a source dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_source(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push_str(&std::fs::read_to_string(&path).expect("a source file"));
        }
    }
}

/// The `toastyfs_…` names in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("toastyfs_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}
