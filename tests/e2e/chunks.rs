//! Chunk servers end to end: 3 metadata nodes and 4 chunk servers as real
//! processes. Replication to the replication factor, re-replication after
//! a chunk server dies, healing of a corrupted copy (found by the scrubber
//! or reported by a reader), garbage deleted only
//! after its grace period, and a new leader that rebuilds locations from
//! reports without deleting anything it should keep.

use std::time::{Duration, Instant};

use toastyfs_proto::namespace::{Command, WriteCommit};
use toastyfs_proto::{ChunkHash, FsPath};

use crate::harness::{wait_for, Cluster};

/// Meta flags: chunk servers silent for 2 s are down.
const META_ARGS: &[&str] = &[
    "--chunk-server-timeout-ms",
    "2000",
    "--placement-ttl-ms",
    "2000",
];
/// Chunk server flags: report often, drop garbage after 4 s, scrub fast.
const CHUNK_ARGS: &[&str] = &[
    "--report-interval-ms",
    "200",
    "--drop-grace-secs",
    "4",
    "--scrub-pause-secs",
    "1",
];

const WAIT: Duration = Duration::from_secs(60);

async fn start(chunk_servers: usize) -> Cluster {
    let mut cluster = crate::harness::start(3, META_ARGS).await;
    for _ in 0..chunk_servers {
        cluster.spawn_chunk_server(CHUNK_ARGS);
    }
    cluster.wait_chunk_servers_up(chunk_servers).await;
    cluster
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// Uploads `bytes` to chunk server `n`; returns the hash.
async fn upload(cluster: &Cluster, n: u64, bytes: &[u8]) -> ChunkHash {
    let hash = ChunkHash::of(bytes);
    let addr = &cluster.chunk_servers[&n].addr;
    let response = http()
        .put(format!("http://{addr}/chunks/{hash}"))
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload answered");
    assert!(
        response.status().is_success(),
        "upload: {}",
        response.status()
    );
    hash
}

/// Whether chunk server `n` serves intact bytes of `hash`.
async fn serves(cluster: &Cluster, n: u64, hash: &ChunkHash) -> bool {
    let server = &cluster.chunk_servers[&n];
    if server.child.is_none() {
        return false;
    }
    let url = format!("http://{}/chunks/{hash}", server.addr);
    match http().get(url).send().await {
        Ok(r) if r.status().is_success() => {
            r.bytes().await.is_ok_and(|b| ChunkHash::of(&b) == *hash)
        }
        _ => false,
    }
}

/// The running chunk servers that serve `hash`.
async fn holders(cluster: &Cluster, hash: &ChunkHash) -> Vec<u64> {
    let mut found = Vec::new();
    for n in cluster.chunk_servers.keys() {
        if serves(cluster, *n, hash).await {
            found.push(*n);
        }
    }
    found
}

async fn wait_holders(cluster: &Cluster, hash: &ChunkHash, want: usize) -> Vec<u64> {
    wait_for(
        &format!("chunk {hash} on exactly {want} chunk servers"),
        WAIT,
        || async {
            let found = holders(cluster, hash).await;
            (found.len() == want).then_some(found)
        },
    )
    .await
}

/// Makes `/name` a one-chunk file referencing `hash`.
async fn commit(cluster: &Cluster, name: &str, hash: ChunkHash, len: u64) {
    let command = Command::WriteCommit(WriteCommit {
        path: FsPath::new(name).expect("path"),
        offset: 0,
        length: len,
        chunks: vec![hash],
        expect: None,
        create_with_chunk_size: Some(1 << 20),
    });
    let result = cluster.write(command).await;
    assert!(result.is_ok(), "commit {name}: {result:?}");
}

fn chunk_file(cluster: &Cluster, n: u64, hash: &ChunkHash) -> std::path::PathBuf {
    let hex = hash.to_string();
    cluster.chunk_servers[&n]
        .dir
        .join("chunks")
        .join(&hex[0..2])
        .join(&hex[2..4])
        .join(&hex)
}

/// A chunk uploaded to one server reaches 3 copies; when a holder is
/// killed, the chunk is copied again until it has 3 live copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_reach_the_replication_factor_and_survive_a_dead_server() {
    let mut cluster = start(4).await;
    let bytes = b"replicate me".repeat(1000);
    let hash = upload(&cluster, 1, &bytes).await;
    commit(&cluster, "/a", hash, bytes.len() as u64).await;
    let found = wait_holders(&cluster, &hash, 3).await;
    assert!(found.contains(&1));
    let victim = found[0];
    cluster.kill_chunk_server(victim);
    let healed = wait_holders(&cluster, &hash, 3).await;
    assert!(!healed.contains(&victim));
    let status = cluster.client().chunk_status().await.expect("chunk status");
    let down: Vec<_> = status.servers.iter().filter(|s| !s.up).collect();
    assert_eq!(down.len(), 1, "{status:?}");
    assert_eq!(down[0].addr, cluster.chunk_servers[&victim].addr);
}

/// A copy corrupted on disk is found by the scrubber, reported lost, and
/// replaced from a good replica; no reader ever gets the bad bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_copy_is_detected_and_healed() {
    let cluster = start(3).await;
    let bytes = b"bitrot target".repeat(500);
    let hash = upload(&cluster, 1, &bytes).await;
    commit(&cluster, "/b", hash, bytes.len() as u64).await;
    wait_holders(&cluster, &hash, 3).await;
    let path = chunk_file(&cluster, 2, &hash);
    let mut on_disk = std::fs::read(&path).expect("chunk file of server 2");
    on_disk[7] ^= 0x40;
    std::fs::write(&path, &on_disk).expect("corrupt the chunk");
    // Detected (by the scrubber or a read), quarantined, then healed: the
    // copy on server 2 comes back intact.
    wait_for("server 2 to hold an intact copy again", WAIT, || async {
        let repaired = std::fs::read(&path).is_ok_and(|b| ChunkHash::of(&b) == hash);
        (repaired && serves(&cluster, 2, &hash).await).then_some(())
    })
    .await;
    assert!(cluster.chunk_log_of(2).contains("corrupt"));
    assert_eq!(holders(&cluster, &hash).await.len(), 3);
}

/// The holders of `hash` in the order the leader tells readers to try
/// them.
async fn read_order(cluster: &Cluster, hash: ChunkHash) -> Vec<String> {
    use toastyfs_proto::chunks::{LocateReply, LocateRequest};
    let leader = cluster.wait_leader().await;
    let url = format!("http://{}/v1/chunks/locate", cluster.nodes[&leader].addr);
    let body = toastyfs_proto::record::encode(&LocateRequest { hashes: vec![hash] })
        .expect("encode locate");
    let answer = http()
        .post(url)
        .body(body)
        .send()
        .await
        .expect("locate answered");
    let bytes = answer.bytes().await.expect("locate body");
    let mut reply: LocateReply = toastyfs_proto::record::decode(&bytes).expect("a locate reply");
    reply.holders.pop().expect("one chunk located")
}

/// Chunk servers send a whole chunk to a client without hashing it (the
/// client hashes it anyway). A reader whose first holder's copy is
/// corrupt reads the right bytes from the next and reports the bad copy,
/// and the holder quarantines it at once (the scrubber is an hour off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_reports_a_corrupt_copy_and_reads_another() {
    let mut cluster = crate::harness::start(3, META_ARGS).await;
    let no_scrub = ["--report-interval-ms", "200", "--scrub-pause-secs", "3600"];
    for _ in 0..3 {
        cluster.spawn_chunk_server(&no_scrub);
    }
    cluster.wait_chunk_servers_up(3).await;
    let bytes = b"read me twice".repeat(700);
    let hash = upload(&cluster, 1, &bytes).await;
    commit(&cluster, "/r", hash, bytes.len() as u64).await;
    wait_holders(&cluster, &hash, 3).await;
    // The leader hears of copies by reports: wait until it names all three.
    let order = wait_for("the leader to locate three holders", WAIT, || async {
        let order = read_order(&cluster, hash).await;
        (order.len() == 3).then_some(order)
    })
    .await;
    let first = order[0].clone();
    let (&bad, _) = cluster
        .chunk_servers
        .iter()
        .find(|(_, s)| s.addr == first)
        .expect("the first holder is one of ours");
    let path = chunk_file(&cluster, bad, &hash);
    let mut on_disk = std::fs::read(&path).expect("chunk file");
    on_disk[100] ^= 0x01;
    std::fs::write(&path, &on_disk).expect("corrupt the first holder's copy");
    let client = toastyfs_client::Client::new(toastyfs_client::ClientConfig::new(cluster.addrs()));
    let mut read = Vec::new();
    client
        .read_to(&FsPath::new("/r").expect("path"), 0, None, &mut read, None)
        .await
        .expect("read from another holder");
    assert!(
        read == bytes,
        "the reader got other bytes than were written"
    );
    // The report made the holder check its copy at once: the corrupt
    // bytes left the chunk's place (quarantined; the leader then has a good
    // copy made, as `a_corrupted_copy_is_detected_and_healed` shows).
    assert!(
        cluster.chunk_log_of(bad).contains("corrupt"),
        "server {bad} did not find its copy corrupt on the reader's report"
    );
    assert!(
        std::fs::read(&path).map_or(true, |b| b != on_disk),
        "the corrupt copy is still in place on server {bad}"
    );
}

/// An unreferenced chunk is dropped, but not before the grace period; a
/// referenced one is never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_deleted_only_after_the_grace_period() {
    let cluster = start(3).await;
    let kept = upload(&cluster, 1, b"referenced").await;
    commit(&cluster, "/kept", kept, 10).await;
    let uploaded = Instant::now();
    let garbage = upload(&cluster, 2, b"never committed").await;
    // Until the grace period (4 s) has passed it stays.
    while uploaded.elapsed() < Duration::from_secs(3) {
        assert!(
            serves(&cluster, 2, &garbage).await,
            "dropped before its grace period"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_holders(&cluster, &garbage, 0).await;
    assert!(uploaded.elapsed() >= Duration::from_secs(4));
    // Deleting the file makes its chunk garbage too.
    wait_holders(&cluster, &kept, 3).await;
    let deleted = cluster
        .write(Command::Delete {
            path: FsPath::new("/kept").expect("path"),
            recursive: false,
            expect: None,
        })
        .await;
    assert!(deleted.is_ok());
    wait_holders(&cluster, &kept, 0).await;
    // Once every copy is gone the leader forgets the garbage record.
    let leader = cluster.wait_leader().await;
    let url = format!("http://{}/metrics", cluster.nodes[&leader].addr);
    wait_for("the leader to forget the deleted garbage", WAIT, || async {
        let text = http().get(&url).send().await.ok()?.text().await.ok()?;
        let forgotten = text
            .lines()
            .find(|l| l.starts_with("toastyfs_meta_garbage_forgotten_total"))?
            .rsplit(' ')
            .next()?
            .parse::<f64>()
            .ok()?;
        (forgotten >= 1.0).then_some(())
    })
    .await;
}

/// After the metadata leader dies, the new leader learns every location
/// from the chunk servers' full reports, and deletes nothing still
/// referenced even after every grace period has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_rebuilds_locations_and_keeps_referenced_chunks() {
    let mut cluster = start(4).await;
    let mut hashes = Vec::new();
    for i in 0..20u32 {
        let bytes = format!("chunk number {i}").repeat(100);
        let hash = upload(&cluster, u64::from(i % 4) + 1, bytes.as_bytes()).await;
        commit(&cluster, &format!("/f{i}"), hash, bytes.len() as u64).await;
        hashes.push(hash);
    }
    for hash in &hashes {
        wait_holders(&cluster, hash, 3).await;
    }
    let old = cluster.wait_leader().await;
    cluster.kill(old);
    let new = cluster.wait_leader().await;
    assert_ne!(old, new);
    cluster.wait_chunk_servers_up(4).await;
    let client = cluster.client();
    wait_for(
        "the new leader to see every chunk at 3 copies",
        WAIT,
        || async {
            let status = client.chunk_status().await.ok()?;
            (status.under_replicated == 0 && status.lost == 0).then_some(())
        },
    )
    .await;
    // Longer than the server timeout plus the grace period plus reports.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for hash in &hashes {
        assert_eq!(holders(&cluster, hash).await.len(), 3, "chunk {hash}");
    }
}

/// The replication factor is a cluster setting in the replicated state:
/// lowering it drops extra copies (after the grace period), raising it
/// copies more, and a new leader keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replication_factor_is_a_cluster_setting() {
    let mut cluster = start(4).await;
    let bytes = b"how many copies".repeat(300);
    let hash = upload(&cluster, 1, &bytes).await;
    commit(&cluster, "/rf", hash, bytes.len() as u64).await;
    wait_holders(&cluster, &hash, 3).await;
    let client = toastyfs_client::Client::new(toastyfs_client::ClientConfig::new(cluster.addrs()));
    client
        .admin()
        .set_replication_factor(2, None)
        .await
        .expect("set the replication factor to 2");
    wait_holders(&cluster, &hash, 2).await;
    client
        .admin()
        .set_replication_factor(4, None)
        .await
        .expect("set the replication factor to 4");
    wait_holders(&cluster, &hash, 4).await;
    let old = cluster.wait_leader().await;
    cluster.kill(old);
    cluster.wait_leader().await;
    let meta = cluster.client();
    wait_for("the new leader to report factor 4", WAIT, || async {
        let status = meta.chunk_status().await.ok()?;
        (status.replication_factor == 4).then_some(())
    })
    .await;
    assert_eq!(holders(&cluster, &hash).await.len(), 4);
}

/// A leader cut off from the other metadata nodes (both SIGSTOPped) stops
/// answering the chunk endpoints within a second: it cannot confirm its
/// lead, so its view of the chunk servers may no longer be the cluster's.
/// Before, it kept answering placements from its own map for as long as
/// openraft still called it leader. Resumed, the cluster answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_stops_answering_chunk_requests() {
    use toastyfs_proto::chunks::PlacementRequest;
    use toastyfs_proto::routes;
    let cluster = start(3).await;
    let leader = cluster.wait_leader().await;
    let addr = cluster.nodes[&leader].addr.clone();
    let request = toastyfs_proto::record::encode(&PlacementRequest {
        hashes: vec![ChunkHash::of(b"placed")],
    })
    .expect("encode");
    let place = || {
        http()
            .post(routes::url(&addr, routes::CHUNK_PLACEMENT))
            .header("content-type", routes::RECORD_CONTENT_TYPE)
            .body(request.clone())
            .send()
    };
    assert_eq!(place().await.expect("answered").status().as_u16(), 200);
    let followers: Vec<u64> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|id| *id != leader)
        .collect();
    for id in &followers {
        cluster.pause(*id);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let isolated = place().await.expect("answered");
    for id in &followers {
        cluster.resume(*id);
    }
    assert_eq!(
        isolated.status().as_u16(),
        503,
        "an isolated leader placed chunks: {:?}",
        isolated.text().await
    );
    cluster.wait_leader().await;
    cluster.wait_chunk_servers_up(3).await;
}

/// Chunk servers follow a new leader promptly (issue 18): with the leader
/// SIGSTOPped (its sockets still accept, so a report to it is never
/// refused, only unanswered), every chunk server is reporting to the
/// leader the others elect within seconds, not after the 10 s report
/// timeout its report to the paused node would wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_servers_report_to_a_new_leader_within_seconds() {
    let cluster = start(3).await;
    let old = cluster.wait_leader().await;
    cluster.pause(old);
    let others: Vec<String> = (1..=3)
        .filter(|id| *id != old)
        .map(|id| cluster.nodes[&id].addr.clone())
        .collect();
    let admin = toastyfs_client::Admin::connect(others.clone());
    wait_for(
        "a leader among the others",
        Duration::from_secs(10),
        || async {
            for addr in &others {
                let status = admin.status(addr).await.ok()?;
                if status.leader.is_some_and(|l| l != old) {
                    return Some(());
                }
            }
            None
        },
    )
    .await;
    // Reports every 200 ms and a 500 ms hedge make this about a second;
    // the bound stays under the 10 s report timeout a report to the
    // paused node would wait without the hedge and the hint.
    let elected = Instant::now();
    wait_for(
        "every chunk server to report to the new leader",
        Duration::from_secs(9),
        || async {
            let status = admin.chunk_status().await.ok()?;
            (status.servers.iter().filter(|s| s.up).count() == 3).then_some(())
        },
    )
    .await;
    eprintln!(
        "every chunk server reported to the new leader after {:?}",
        elected.elapsed()
    );
    cluster.resume(old);
}
