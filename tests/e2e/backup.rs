//! Backup and restore (issue 16, item 3): a backup taken while a client
//! writes holds every write acknowledged before it began and none begun
//! after it ended, with the digest the nodes had at its index; a quiet
//! cluster's backup has the nodes' digest; restored as the first node of
//! a new cluster (the old metadata nodes gone, the chunk servers kept),
//! joined by two fresh nodes, it serves every file it holds, byte for
//! byte. A restore into a directory holding a node's data is refused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use toastyfs_client::Client;
use toastyfs_proto::FsPath;

use crate::harness::{pattern, wait_for};
use crate::site::Site;

fn p(path: &str) -> FsPath {
    FsPath::new(path).expect("path")
}

fn content(seed: u64) -> Vec<u8> {
    pattern(20_000 + (seed as usize % 7) * 1_000, seed)
}

/// `key value` pairs after "index", "digest" in the backup's summary line.
fn summary_field<'a>(line: &'a str, after: &str) -> &'a str {
    line.split(after)
        .nth(1)
        .and_then(|rest| rest.split([' ', ',', ':']).find(|w| !w.is_empty()))
        .unwrap_or_else(|| panic!("no {after:?} in {line:?}"))
}

/// One write of the load: its number, and when it began and ended.
struct Done {
    number: u64,
    began: Instant,
    ended: Instant,
}

async fn write_until(client: Client, stop: Arc<AtomicBool>) -> Vec<Done> {
    let mut done = Vec::new();
    let mut number = 0;
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let path = p(&format!("/load/g{number}"));
        if client
            .put(&path, &content(1_000 + number)[..], false, None, None)
            .await
            .is_ok()
        {
            done.push(Done {
                number,
                began,
                ended: Instant::now(),
            });
        }
        number += 1;
    }
    done
}

/// Every name in `dir`, page by page.
async fn list(client: &Client, dir: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut after = None;
    loop {
        let page = client.list(&p(dir), after, 500).await.expect("list");
        names.extend(page.entries.into_iter().map(|e| e.name));
        match page.next {
            Some(next) => after = Some(next),
            None => return names,
        }
    }
}

// The heavy lock only orders whole tests; it is never contended inside one.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_into_a_new_cluster() {
    let _heavy = crate::harness::heavy();
    let mut site = Site::new();
    site.launch(&[], 2).await;
    site.cli(&["cluster", "set-replication-factor", "2"]);

    let client = site.client();
    for dir in ["/pre", "/load"] {
        client.mkdir(&p(dir), true).await.expect("mkdir");
    }
    for i in 0..20 {
        client
            .put(
                &p(&format!("/pre/f{i}")),
                &content(i)[..],
                false,
                None,
                None,
            )
            .await
            .expect("put before the backup");
    }

    // A backup while a client writes.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_until(site.client(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let loaded = site.dir.path().join("loaded.backup");
    let backup_began = Instant::now();
    let said = site.cli(&["cluster", "backup", &loaded.display().to_string()]);
    let backup_ended = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let done = writer.await.expect("the writer");
    assert!(
        done.len() >= 5,
        "the load wrote too little to test: {}",
        done.len()
    );
    eprintln!("under load ({} writes): {said}", done.len());
    let loaded_index = summary_field(&said, "applied index").to_owned();
    let loaded_digest = summary_field(&said, "digest").to_owned();

    // A quiet cluster's backup has the nodes' digest at their index.
    site.wait_healthy(2);
    let quiet = site.dir.path().join("quiet.backup");
    let said = site.cli(&["cluster", "backup", &quiet.display().to_string()]);
    eprintln!("quiet: {said}");
    let status = site.status();
    for node in status["nodes"].as_array().expect("nodes") {
        assert_eq!(
            node["status"]["digest"].as_str(),
            Some(summary_field(&said, "digest")),
            "a quiet backup's digest differs from node {}: {said}",
            node["id"]
        );
    }
    let again = site.run(&["cluster", "backup", &quiet.display().to_string()]);
    assert_eq!(again.status.code(), Some(2), "a backup replaced a file");

    // The old metadata nodes are gone; the chunk servers stay.
    for i in 1..=3 {
        site.stop(&format!("meta{i}"));
    }
    let restored = site.data("restored1");
    let advertise = site.addr(1);
    let file = loaded.display().to_string();
    let dir = restored.display().to_string();
    let restore = [
        "cluster",
        "restore",
        &file,
        "--data-dir",
        &dir,
        "--id",
        "1",
        "--advertise",
        &advertise,
    ];
    site.cli(&restore);
    let twice = site.run(&restore);
    assert_eq!(twice.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("already holds a metadata node's data"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );
    site.start_meta(1, &restored, &[], &[]);
    let first: serde_json::Value =
        wait_for("the restored node to lead", Duration::from_secs(30), || {
            let out = site.run(&["cluster", "status", "-o", "json", "--meta", &advertise]);
            async move {
                let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
                let node = status["nodes"].get(0)?.clone();
                (node["status"]["role"] == "Leader").then_some(node)
            }
        })
        .await;
    assert_eq!(
        first["status"]["digest"].as_str(),
        Some(loaded_digest.as_str()),
        "the restored digest"
    );
    assert!(
        first["status"]["applied_index"].as_u64() >= loaded_index.parse().ok(),
        "{first}"
    );
    for i in 2..=3 {
        site.start_meta(i, &site.data(&format!("fresh{i}")), &[], &[]);
        site.cli(&[
            "cluster",
            "add-node",
            &format!("{i}={}", site.addr(i)),
            "--meta",
            &advertise,
        ]);
    }
    site.wait_healthy(2);

    // Every file before the backup, each write the load finished before
    // it began, none it began after it ended; each reads back whole.
    let client = site.client();
    for i in 0..20 {
        let mut bytes = Vec::new();
        client
            .read_to(&p(&format!("/pre/f{i}")), 0, None, &mut bytes, None)
            .await
            .expect("read a file from before the backup");
        assert_eq!(bytes, content(i), "/pre/f{i}");
    }
    // Only the files: a put's temporary (`.gN…`) in flight at the backup
    // is the collector's to delete.
    let names: Vec<String> = list(&client, "/load")
        .await
        .into_iter()
        .filter(|name| name.starts_with('g'))
        .collect();
    for write in &done {
        let name = format!("g{}", write.number);
        if write.ended < backup_began {
            assert!(
                names.contains(&name),
                "{name} was acknowledged before the backup began and is missing"
            );
        }
        if write.began > backup_ended {
            assert!(
                !names.contains(&name),
                "{name} began after the backup ended and is in it"
            );
        }
    }
    for name in &names {
        let number: u64 = name.trim_start_matches('g').parse().expect("a load file");
        let mut bytes = Vec::new();
        client
            .read_to(&p(&format!("/load/{name}")), 0, None, &mut bytes, None)
            .await
            .expect("read a file the backup holds");
        assert_eq!(bytes, content(1_000 + number), "/load/{name}");
    }
}
