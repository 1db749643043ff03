//! Garbage collection against writes, end to end with short timers (3
//! metadata nodes, 3 chunk servers; placements protect an upload for 1 s,
//! chunk servers delete 2 s after the order): a commit whose chunk was
//! collected after its placement is refused and redone, content deleted
//! and put again just as its drops come due stays readable, and a put
//! paused between placement and commit for longer than every timer ends
//! with a readable file.

use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use toastyfs_client::{Client, ClientConfig};
use toastyfs_proto::chunks::{PlacementReply, PlacementRequest};
use toastyfs_proto::namespace::{Command, FsError, WriteCommit, MIN_CHUNK_SIZE};
use toastyfs_proto::{record, routes, ChunkHash, FsPath};

use crate::harness::{pattern, wait_for, Cluster};

const META_ARGS: &[&str] = &[
    "--chunk-server-timeout-ms",
    "2000",
    "--placement-ttl-ms",
    "1000",
];
const CHUNK_ARGS: &[&str] = &["--report-interval-ms", "200", "--drop-grace-secs", "2"];
const GRACE: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(60);

async fn start() -> Cluster {
    let mut cluster = crate::harness::start(3, META_ARGS).await;
    for _ in 0..3 {
        cluster.spawn_chunk_server(CHUNK_ARGS);
    }
    cluster.wait_chunk_servers_up(3).await;
    cluster
}

fn client(cluster: &Cluster) -> Client {
    let mut config = ClientConfig::new(cluster.addrs());
    config.chunk_size = MIN_CHUNK_SIZE;
    config.retry_for = Duration::from_secs(60);
    Client::new(config)
}

fn p(s: &str) -> FsPath {
    FsPath::new(s).expect("valid path")
}

fn chunk_hashes(bytes: &[u8]) -> Vec<ChunkHash> {
    bytes
        .chunks(MIN_CHUNK_SIZE as usize)
        .map(ChunkHash::of)
        .collect()
}

async fn put(client: &Client, path: &str, bytes: &[u8]) {
    client
        .put(&p(path), bytes, false, None, None)
        .await
        .unwrap_or_else(|e| panic!("put {path}: {e}"));
}

async fn get(client: &Client, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    client
        .read_to(&p(path), 0, None, &mut out, None)
        .await
        .unwrap_or_else(|e| panic!("get {path}: {e}"));
    out
}

async fn delete(cluster: &Cluster, path: &str) {
    let result = cluster
        .write(Command::Delete {
            path: p(path),
            recursive: false,
            expect: None,
        })
        .await;
    assert!(result.is_ok(), "delete {path}: {result:?}");
}

/// Asks the cluster where `hashes` go, as a client does before uploading.
async fn placement(cluster: &Cluster, hashes: Vec<ChunkHash>) -> PlacementReply {
    let leader = cluster.wait_leader().await;
    let url = routes::url(&cluster.nodes[&leader].addr, routes::CHUNK_PLACEMENT);
    let body = record::encode(&PlacementRequest { hashes }).expect("encode");
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", routes::RECORD_CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .expect("placement answered");
    assert!(
        response.status().is_success(),
        "placement: {}",
        response.status()
    );
    let bytes = response.bytes().await.expect("placement body");
    record::decode(&bytes).expect("a placement reply")
}

/// Whether any chunk server serves `hash`.
async fn anyone_serves(cluster: &Cluster, hash: &ChunkHash) -> bool {
    let http = reqwest::Client::new();
    for server in cluster.chunk_servers.values() {
        let url = format!("http://{}/chunks/{hash}", server.addr);
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return true;
            }
        }
    }
    false
}

/// The dedup race: a client told its chunks are present (a file holds
/// them) commits only after that file was deleted and every copy
/// collected. The commit is refused with `ChunkCollected` instead of
/// creating a file whose chunks exist nowhere, and the client's own put
/// of the same content then uploads them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deduplicated_commit_after_its_chunks_were_collected_is_refused() {
    let cluster = start().await;
    let client = client(&cluster);
    let content = pattern(3 * MIN_CHUNK_SIZE as usize, 1);
    let hashes = chunk_hashes(&content);
    put(&client, "/a", &content).await;
    let reply = wait_for("the chunks of /a to be reported present", WAIT, || async {
        let reply = placement(&cluster, hashes.clone()).await;
        reply.placements.iter().all(|p| p.present).then_some(reply)
    })
    .await;
    delete(&cluster, "/a").await;
    wait_for("every copy of /a's chunks to be deleted", WAIT, || async {
        for hash in &hashes {
            if anyone_serves(&cluster, hash).await {
                return None;
            }
        }
        Some(())
    })
    .await;
    let late = Command::Placed {
        placed_at: reply.placed_at,
        command: Box::new(Command::WriteCommit(WriteCommit {
            path: p("/b"),
            offset: 0,
            length: content.len() as u64,
            chunks: hashes.clone(),
            expect: None,
            create_with_chunk_size: Some(MIN_CHUNK_SIZE),
        })),
    };
    let result = cluster.write(late).await;
    assert!(
        matches!(result, Err(FsError::ChunkCollected { .. })),
        "a commit of collected chunks: {result:?}"
    );
    put(&client, "/b", &content).await;
    assert_eq!(get(&client, "/b").await, content);
}

/// Content of 2,000 small chunks is deleted and put again under another
/// name at moments around the end of its drop grace period; every time
/// the new file stays readable after every pending drop came due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_put_again_as_its_drops_come_due_stays_readable() {
    let cluster = start().await;
    let client = client(&cluster);
    for (round, offset_ms) in [1500u64, 2100, 2700].into_iter().enumerate() {
        let content = pattern(2000 * MIN_CHUNK_SIZE as usize, 10 + round as u64);
        let first = format!("/first-{round}");
        let again = format!("/again-{round}");
        put(&client, &first, &content).await;
        delete(&cluster, &first).await;
        let deleted = Instant::now();
        tokio::time::sleep(Duration::from_millis(offset_ms)).await;
        put(&client, &again, &content).await;
        // Past every drop the first file's deletion could have ordered.
        let settle = (deleted + GRACE * 3).saturating_duration_since(Instant::now());
        tokio::time::sleep(settle).await;
        assert_eq!(
            get(&client, &again).await,
            content,
            "round {round}: re-put {offset_ms} ms after the delete"
        );
        let health = client.file_health(&p(&again)).await.expect("health");
        assert_eq!(
            health.lost, 0,
            "round {round}: chunks with no copy: {health:?}"
        );
    }
}

/// `toastyfs put` of a 12 MiB file in 4 KiB chunks is stopped (SIGSTOP)
/// mid-upload for longer than the placement protection, the drop grace
/// and the forget of its orphaned uploads, then continued: it either
/// completes with a readable file, or fails with a clear error and a
/// retried put does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_paused_between_placement_and_commit_ends_readable() {
    let cluster = start().await;
    let client = client(&cluster);
    let dir = tempfile::tempdir().expect("temp dir");
    for (round, pause_after_ms) in [300u64, 900].into_iter().enumerate() {
        let content = pattern(3000 * MIN_CHUNK_SIZE as usize, 100 + round as u64);
        let local = dir.path().join(format!("big-{round}"));
        std::fs::write(&local, &content).expect("write the local file");
        let remote = format!("/paused-{round}");
        let run = || {
            Process::new(crate::harness::binary())
                .args(["put", "--chunk-size", "4096"])
                .arg(&local)
                .arg(&remote)
                .env("TOASTYFS_META", cluster.addrs().join(","))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the CLI")
        };
        let child = run();
        tokio::time::sleep(Duration::from_millis(pause_after_ms)).await;
        signal(child.id(), "-STOP");
        tokio::time::sleep(GRACE * 3).await;
        signal(child.id(), "-CONT");
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("join")
            .expect("the CLI ran");
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.starts_with("error: ") && stderr.lines().count() <= 3,
                "round {round}: an unclear error: {stderr}"
            );
            let retry = run().wait_with_output().expect("the retry ran");
            assert!(
                retry.status.success(),
                "round {round}: the retried put failed"
            );
        }
        assert_eq!(get(&client, &remote).await, content, "round {round}");
    }
}

fn signal(pid: u32, which: &str) {
    let status = Process::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {which} {pid}");
}
