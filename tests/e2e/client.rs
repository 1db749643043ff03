//! The client library and the CLI end to end, against 3 metadata nodes and
//! 3 chunk servers as real processes: round trips of every awkward size,
//! partial overwrites that upload only what changed (counted by the chunk
//! servers' own metrics), deduplication, holes, unaligned writes, conflicting
//! writers, small files kept inline, a put that outlives a leader kill, and
//! the CLI's error messages.

use std::process::Command as Process;
use std::time::Duration;

use toastyfs_client::{Client, ClientConfig, ClientError, WriteOptions};
use toastyfs_proto::namespace::{FsError, MIN_CHUNK_SIZE};
use toastyfs_proto::{FsPath, Version};

use crate::harness::{pattern, Cluster};

const CHUNK_ARGS: &[&str] = &["--report-interval-ms", "200"];

async fn start() -> Cluster {
    let mut cluster = crate::harness::start(3, &[]).await;
    for _ in 0..3 {
        cluster.spawn_chunk_server(CHUNK_ARGS);
    }
    cluster.wait_chunk_servers_up(3).await;
    cluster
}

fn client(cluster: &Cluster, chunk_size: u32) -> Client {
    let mut config = ClientConfig::new(cluster.addrs());
    config.chunk_size = chunk_size;
    config.retry_for = Duration::from_secs(30);
    Client::new(config)
}

fn p(s: &str) -> FsPath {
    FsPath::new(s).expect("valid path")
}

async fn put(client: &Client, path: &str, bytes: &[u8]) -> toastyfs_client::WriteOutcome {
    client
        .put(&p(path), bytes, false, None, None)
        .await
        .unwrap_or_else(|e| panic!("put {path}: {e}"))
}

async fn get(client: &Client, path: &str) -> Vec<u8> {
    get_range(client, path, 0, None).await
}

async fn get_range(client: &Client, path: &str, offset: u64, len: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    client
        .read_to(&p(path), offset, len, &mut out, None)
        .await
        .unwrap_or_else(|e| panic!("get {path}: {e}"));
    out
}

async fn write_at(client: &Client, path: &str, offset: u64, bytes: &[u8]) {
    client
        .write_at(&p(path), offset, bytes, WriteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("write {path} at {offset}: {e}"));
}

/// Sum of `toastyfs_chunk_uploads_total{outcome="stored"}` over the chunk
/// servers: chunk copies clients actually sent and servers stored.
async fn chunks_stored(cluster: &Cluster) -> u64 {
    let http = reqwest::Client::new();
    let mut total = 0;
    for server in cluster.chunk_servers.values() {
        let text = http
            .get(format!("http://{}/metrics", server.addr))
            .send()
            .await
            .expect("metrics answered")
            .text()
            .await
            .expect("metrics body");
        total += text
            .lines()
            .filter(|l| l.starts_with("toastyfs_chunk_uploads_total") && l.contains("\"stored\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_of_every_awkward_size() {
    let cluster = start().await;
    let cs = MIN_CHUNK_SIZE as usize * 4;
    let client = client(&cluster, cs as u32);
    for (name, len) in [("empty", 0), ("one", 1), ("chunk", cs), ("chunk1", cs + 1)] {
        let bytes = pattern(len, len as u64);
        let outcome = put(&client, &format!("/{name}"), &bytes).await;
        assert_eq!(outcome.bytes_written, len as u64);
        assert_eq!(get(&client, &format!("/{name}")).await, bytes, "{name}");
    }
    // More than 100 chunks, read back whole.
    let many = pattern(cs * 130 + 17, 9);
    put(&client, "/many", &many).await;
    assert_eq!(get(&client, "/many").await, many);
    // A 200 MiB file with the default 4 MiB chunks.
    let big_client = self::client(&cluster, 4 << 20);
    let big = pattern(200 << 20, 200);
    let outcome = put(&big_client, "/big", &big).await;
    assert_eq!(outcome.file_length, big.len() as u64);
    let back = get(&big_client, "/big").await;
    assert!(back == big, "200 MiB file read back differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrites_upload_only_changed_chunks_and_dedup_uploads_nothing() {
    let cluster = start().await;
    let cs = MIN_CHUNK_SIZE as usize;
    let client = client(&cluster, cs as u32);
    let mut content = pattern(cs * 40, 1);
    put(&client, "/file", &content).await;
    // Overwrite two whole chunks in the middle: exactly those two chunks
    // are stored, on every replica.
    let before = chunks_stored(&cluster).await;
    let patch = pattern(cs * 2, 2);
    write_at(&client, "/file", (cs * 10) as u64, &patch).await;
    content[cs * 10..cs * 12].copy_from_slice(&patch);
    assert_eq!(chunks_stored(&cluster).await - before, 2 * 3);
    assert_eq!(get(&client, "/file").await, content);
    // The same content again under another name: nothing is uploaded.
    let before = chunks_stored(&cluster).await;
    let outcome = put(&client, "/copy", &content).await;
    assert_eq!(outcome.bytes_uploaded, 0);
    assert_eq!(chunks_stored(&cluster).await, before);
    // Many files sharing content, and the same put retried: all readable.
    for i in 0..5 {
        put(&client, &format!("/shared{i}"), &content[..cs * 3]).await;
        put(&client, &format!("/shared{i}"), &content[..cs * 3]).await;
    }
    client
        .delete(&p("/file"), false, None)
        .await
        .expect("delete /file");
    for i in 0..5 {
        assert_eq!(
            get(&client, &format!("/shared{i}")).await,
            &content[..cs * 3]
        );
    }
    assert_eq!(get(&client, "/copy").await, content);
}

/// Small files are kept inline: a put of at most 4 KiB uploads no chunk
/// and reads back from the namespace; a write into one, an append and a
/// truncation past the limit move its content to a chunk first, keeping
/// every byte; a put just over the limit, or with the limit set to 0,
/// goes to chunks as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_are_kept_inline_until_they_outgrow_it() {
    let cluster = start().await;
    let client = client(&cluster, MIN_CHUNK_SIZE);
    let small = pattern(1000, 7);
    let before = chunks_stored(&cluster).await;
    let outcome = put(&client, "/small", &small).await;
    assert_eq!((outcome.bytes_uploaded, outcome.file_length), (0, 1000));
    assert_eq!(
        chunks_stored(&cluster).await,
        before,
        "a small put uploaded a chunk"
    );
    assert_eq!(get(&client, "/small").await, small);
    assert_eq!(
        get_range(&client, "/small", 990, Some(50)).await,
        &small[990..]
    );
    // A write inside it: moved to a chunk, then patched.
    write_at(&client, "/small", 10, b"patched").await;
    let mut expected = small.clone();
    expected[10..17].copy_from_slice(b"patched");
    assert_eq!(get(&client, "/small").await, expected);
    assert!(chunks_stored(&cluster).await > before);
    // Truncations of an inline file: in place, then past the limit.
    put(&client, "/cut", &small).await;
    client
        .truncate(&p("/cut"), 600, None)
        .await
        .expect("shrink");
    client
        .truncate(&p("/cut"), 3000, None)
        .await
        .expect("grow within");
    let mut cut = small[..600].to_vec();
    cut.resize(3000, 0);
    assert_eq!(get(&client, "/cut").await, cut);
    client
        .truncate(&p("/cut"), 70_000, None)
        .await
        .expect("grow past");
    cut.resize(70_000, 0);
    assert_eq!(get(&client, "/cut").await, cut);
    // Over the limit, or with inline files turned off: chunks.
    let over = pattern(4097, 8);
    assert!(put(&client, "/over", &over).await.bytes_uploaded > 0);
    assert_eq!(get(&client, "/over").await, over);
    let (ok, out) = cli(Some(&cluster), &["cluster", "set-inline-max", "0"]);
    assert!(ok, "set-inline-max: {out}");
    let off = pattern(100, 9);
    assert!(put(&client, "/off", &off).await.bytes_uploaded > 0);
    assert_eq!(get(&client, "/off").await, off);
    assert_eq!(get(&client, "/small").await, expected);
}

/// A put sends each chunk once: to its first target, which passes it down
/// the others (chain replication), so the client's bytes sent equal the
/// file's size while every replica stores a copy. With a chunk server
/// dead but not yet noticed by the leader, its link fails and the client
/// sends the missing copies directly: the put still succeeds and reads
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_sends_each_chunk_once_down_a_chain() {
    let mut cluster = start().await;
    let cs = MIN_CHUNK_SIZE as usize;
    let client = client(&cluster, cs as u32);
    let content = pattern(cs * 16, 11);
    let before = chunks_stored(&cluster).await;
    let outcome = put(&client, "/chained", &content).await;
    assert_eq!(
        outcome.bytes_uploaded,
        content.len() as u64,
        "each byte sent once"
    );
    assert_eq!(
        chunks_stored(&cluster).await - before,
        16 * 3,
        "three copies of each chunk"
    );
    assert_eq!(get(&client, "/chained").await, content);
    cluster.kill_chunk_server(2);
    for i in 0..4 {
        let content = pattern(cs * 8, 20 + i);
        let outcome = put(&client, &format!("/after-kill-{i}"), &content).await;
        assert!(outcome.bytes_uploaded >= content.len() as u64);
        assert_eq!(get(&client, &format!("/after-kill-{i}")).await, content);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holes_unaligned_writes_and_reads_past_the_end() {
    let cluster = start().await;
    let cs = MIN_CHUNK_SIZE as u64;
    let client = client(&cluster, cs as u32);
    // A write past EOF leaves a hole that reads as zeros.
    put(&client, "/holey", b"head").await;
    write_at(&client, "/holey", cs * 3 + 5, b"tail").await;
    let back = get(&client, "/holey").await;
    assert_eq!(back.len() as u64, cs * 3 + 9);
    assert_eq!(&back[..4], b"head");
    assert!(back[4..(cs * 3 + 5) as usize].iter().all(|b| *b == 0));
    assert_eq!(&back[(cs * 3 + 5) as usize..], b"tail");
    // An unaligned write across two chunk boundaries changes exactly its bytes.
    let mut content = pattern((cs * 4) as usize, 3);
    put(&client, "/unaligned", &content).await;
    let at = cs as usize - 100;
    let patch = pattern(cs as usize + 200, 4);
    write_at(&client, "/unaligned", at as u64, &patch).await;
    content[at..at + patch.len()].copy_from_slice(&patch);
    assert_eq!(get(&client, "/unaligned").await, content);
    // A range read, and a read past the end returns what exists.
    assert_eq!(
        get_range(&client, "/unaligned", 10, Some(50)).await,
        &content[10..60]
    );
    let end = content.len() as u64;
    assert_eq!(
        get_range(&client, "/unaligned", end - 3, Some(100)).await,
        &content[end as usize - 3..]
    );
    assert!(get_range(&client, "/unaligned", end + 10, Some(5))
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_writers_exactly_one_wins() {
    let cluster = start().await;
    let client = client(&cluster, MIN_CHUNK_SIZE);
    let created = put(&client, "/contested", b"v0").await;
    let writers = (0..4).map(|i| {
        let client = &client;
        async move {
            let options = WriteOptions {
                expect: Some(created.version),
                ..Default::default()
            };
            let text = format!("writer {i}");
            client
                .write_at(&p("/contested"), 0, text.as_bytes(), options)
                .await
                .map(|_| text)
        }
    });
    let results = futures::future::join_all(writers).await;
    let winners: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for result in &results {
        if let Err(e) = result {
            assert!(
                matches!(e, ClientError::Refused(FsError::VersionMismatch { .. })),
                "{e}"
            );
        }
    }
    assert_eq!(get(&client, "/contested").await, winners[0].as_bytes());
    let stale = client
        .write_at(
            &p("/contested"),
            0,
            &b"late"[..],
            WriteOptions {
                expect: Some(Version(created.version.0)),
                ..Default::default()
            },
        )
        .await;
    assert!(stale.is_err());
}

/// Writers to disjoint bytes of one chunk all survive: each unaligned
/// write is a read-modify-write of the chunk, guarded by the chunk it read,
/// and redone on the winner's chunk when another writer got there first
/// (before the guard, all were acknowledged and all but one were lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disjoint_writes_into_one_chunk_all_survive() {
    let cluster = start().await;
    let cs = MIN_CHUNK_SIZE * 4;
    let client = client(&cluster, cs);
    put(&client, "/shared", &vec![b'.'; cs as usize]).await;
    let writers = 12u64;
    let step = u64::from(cs) / writers;
    let writes = (0..writers).map(|i| {
        let client = &client;
        async move {
            let bytes = format!("w{i:02}");
            client
                .write_at(
                    &p("/shared"),
                    i * step,
                    bytes.as_bytes(),
                    WriteOptions::default(),
                )
                .await
        }
    });
    for result in futures::future::join_all(writes).await {
        result.expect("every disjoint write is acknowledged");
    }
    let content = get(&client, "/shared").await;
    assert_eq!(content.len(), cs as usize);
    let lost: Vec<u64> = (0..writers)
        .filter(|i| {
            let at = (i * step) as usize;
            content[at..at + 3] != *format!("w{i:02}").as_bytes()
        })
        .collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}

/// With 2 of 3 chunk servers gone a write cannot reach the 2 durable
/// copies it needs (the default `min_copies`): the put fails with a clear
/// error and leaves nothing behind. Before, one copy was enough and the put
/// was acknowledged with a single copy on a single server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_needs_min_copies_durable_copies() {
    let mut cluster = start().await;
    let client = client(&cluster, MIN_CHUNK_SIZE);
    put(&client, "/before", b"three servers up").await;
    cluster.kill_chunk_server(1);
    cluster.kill_chunk_server(2);
    let refused = client
        .put(&p("/after"), &pattern(10_000, 3)[..], false, None, None)
        .await;
    match refused {
        Err(ClientError::UploadFailed { detail, .. }) => {
            assert!(detail.contains("min_copies"), "{detail}")
        }
        other => panic!("a write with one live chunk server was not refused: {other:?}"),
    }
    assert!(matches!(
        client.stat(&p("/after")).await,
        Err(ClientError::Refused(FsError::NotFound { .. }))
    ));
    let admin = client.admin();
    admin
        .set_min_copies(1, None)
        .await
        .expect("lower min_copies");
    put(&client, "/after", b"one copy allowed now").await;
    assert_eq!(get(&client, "/after").await, b"one copy allowed now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_continues_across_a_leader_kill() {
    let mut cluster = start().await;
    let client = client(&cluster, MIN_CHUNK_SIZE * 16);
    let content = pattern(24 << 20, 5);
    let leader = cluster.wait_leader().await;
    let put = {
        let client = &client;
        let content = &content;
        async move {
            client
                .put(&p("/survivor"), &content[..], false, None, None)
                .await
        }
    };
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.kill(leader);
    };
    let (result, ()) = tokio::join!(put, kill);
    result.expect("put across a leader kill");
    assert_eq!(get(&client, "/survivor").await, content);
}

fn cli(cluster: Option<&Cluster>, args: &[&str]) -> (bool, String) {
    let mut command = Process::new(crate::harness::binary());
    command.args(args).env("HOME", std::env::temp_dir());
    match cluster {
        Some(c) => command.env("TOASTYFS_META", c.addrs().join(",")),
        None => command.env("TOASTYFS_META", "127.0.0.1:1"),
    };
    let output = command.output().expect("run the CLI");
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_round_trip_and_error_messages() {
    let cluster = start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let local = dir.path().join("in.txt");
    std::fs::write(&local, b"hello from the cli").expect("local file");
    let local = local.to_str().expect("utf-8 path");
    let out = dir.path().join("out.txt");
    let out = out.to_str().expect("utf-8 path");
    let c = Some(&cluster);
    assert!(cli(c, &["mkdir", "-p", "/x/y"]).0);
    assert!(cli(c, &["put", local, "/x/y/f"]).0);
    assert!(cli(c, &["get", "/x/y/f", out]).0);
    assert_eq!(std::fs::read(out).expect("got"), b"hello from the cli");
    let (ok, text) = cli(c, &["ls", "-l", "/x/y"]);
    assert!(ok && text.contains('f'), "{text}");
    let (ok, text) = cli(c, &["cluster", "status"]);
    assert!(ok && text.contains("replication factor 3"), "{text}");
    // Errors say what went wrong, without Rust debug dumps.
    let mut errors = Vec::new();
    let (ok, text) = cli(c, &["get", "/x/nope", out]);
    assert!(
        !ok && text.contains("/x/nope") && text.contains("no such"),
        "{text}"
    );
    errors.push(text);
    let (ok, text) = cli(c, &["ls", "/a//b"]);
    assert!(!ok && text.to_lowercase().contains("empty"), "{text}");
    errors.push(text);
    let (ok, text) = cli(c, &["put", "/no/such/local/file", "/z"]);
    assert!(!ok && text.contains("/no/such/local/file"), "{text}");
    errors.push(text);
    let (ok, text) = cli(None, &["ls", "/"]);
    assert!(!ok && text.contains("cannot reach"), "{text}");
    errors.push(text);
    // cluster status exits like the file commands for the same cluster.
    let status = Process::new(crate::harness::binary())
        .args(["cluster", "status"])
        .env("HOME", std::env::temp_dir())
        .env("TOASTYFS_META", "127.0.0.1:1")
        .output()
        .expect("run the CLI");
    let text = String::from_utf8_lossy(&status.stderr).into_owned();
    assert_eq!(status.status.code(), Some(3), "{text}");
    assert!(text.contains("toastyfs dev"), "{text}");
    errors.push(text);
    for text in errors {
        assert!(
            !text.contains("panicked") && !text.contains("Error {"),
            "{text}"
        );
    }
}

/// The CLI's usage errors, puts onto directories and a closed pipe: an
/// out-of-range `--chunk-size` is a usage error (exit 2) instead of a
/// panic (exit 101); a put onto an existing directory, or a target ending
/// in `/`, writes `DIR/<local name>` like `cp`; `cat | head` ends quietly
/// (exit 0) instead of "Broken pipe" and exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_usage_errors_puts_into_directories_and_closed_pipes() {
    use std::io::Read;
    let cluster = start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let local = dir.path().join("in.txt");
    std::fs::write(&local, b"into a directory").expect("local file");
    let local = local.to_str().expect("utf-8 path");
    let c = Some(&cluster);
    let code = |args: &[&str]| {
        let mut command = Process::new(crate::harness::binary());
        command
            .args(args)
            .env("HOME", std::env::temp_dir())
            .env("TOASTYFS_META", cluster.addrs().join(","));
        let output = command.output().expect("run the CLI");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (status, text) = code(&["put", local, "/cs", "--chunk-size", "0"]);
    assert_eq!(status, Some(2), "{text}");
    assert!(
        text.contains("chunk size") && !text.contains("panicked"),
        "{text}"
    );

    assert!(cli(c, &["mkdir", "-p", "/d/sub"]).0);
    let (ok, text) = cli(c, &["put", local, "/d/sub"]);
    assert!(ok, "{text}");
    let (ok, text) = cli(c, &["put", local, "/d/"]);
    assert!(ok, "{text}");
    let client = client(&cluster, MIN_CHUNK_SIZE);
    assert_eq!(get(&client, "/d/sub/in.txt").await, b"into a directory");
    assert_eq!(get(&client, "/d/in.txt").await, b"into a directory");
    let (status, text) = code(&["put", "-", "/d/sub"]);
    assert_eq!(status, Some(2), "{text}");

    put(&client, "/big", &pattern(8 << 20, 9)).await;
    let mut cat = Process::new(crate::harness::binary())
        .args(["cat", "/big"])
        .env("HOME", std::env::temp_dir())
        .env("TOASTYFS_META", cluster.addrs().join(","))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run cat");
    let mut first = [0u8; 10];
    cat.stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("the first bytes");
    let output = cat.wait_with_output().expect("cat ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

/// A put or a get interrupted with Ctrl-C leaves nothing behind: the put
/// removes its temporary (which `ls` hides meanwhile, `ls -a` shows) and
/// exits 130; a get writes beside the target and renames at the end, so
/// the target is whole or absent. Before, the temporary stayed in the
/// namespace forever and a get left a partial file under the final name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_puts_and_gets_leave_nothing_behind() {
    use std::io::Write;
    let cluster = start().await;
    let client = client(&cluster, MIN_CHUNK_SIZE);
    client.mkdir(&p("/in"), true).await.expect("mkdir");
    let cli_process = |args: &[&str]| {
        let mut command = Process::new(crate::harness::binary());
        command
            .args(args)
            .env("HOME", std::env::temp_dir())
            .env("TOASTYFS_META", cluster.addrs().join(","))
            .stderr(std::process::Stdio::piped());
        command
    };
    let names = |listing: toastyfs_proto::namespace::Listing| -> Vec<String> {
        listing.entries.into_iter().map(|e| e.name).collect()
    };
    // A put from a pipe kept open: its first windows commit, then it waits.
    let mut put_cmd = cli_process(&["put", "-", "/in/f", "--chunk-size", "4096"]);
    let mut put_child = put_cmd
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run put");
    let mut stdin = put_child.stdin.take().expect("stdin");
    stdin.write_all(&pattern(200_000, 4)).expect("feed the put");
    let listed =
        crate::harness::wait_for("the put's temporary", Duration::from_secs(30), || async {
            let entries = names(client.list(&p("/in"), None, 100).await.ok()?);
            (!entries.is_empty()).then_some(entries)
        })
        .await;
    assert!(
        listed.iter().all(|n| toastyfs_client::is_upload_temp(n)),
        "{listed:?}"
    );
    let (ok, shown) = cli(Some(&cluster), &["ls", "/in"]);
    assert!(
        ok && !shown.contains("toastyfs-upload"),
        "ls shows a temporary: {shown}"
    );
    let (ok, shown) = cli(Some(&cluster), &["ls", "-a", "/in"]);
    assert!(ok && shown.contains("toastyfs-upload"), "ls -a: {shown}");
    let interrupt = |child: &std::process::Child| {
        Process::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill -INT")
    };
    interrupt(&put_child);
    let status = put_child.wait().expect("put ends");
    drop(stdin);
    assert_eq!(status.code(), Some(130));
    let left = names(client.list(&p("/in"), None, 100).await.expect("list"));
    assert!(left.is_empty(), "an interrupted put left {left:?}");

    let content = pattern(48 << 20, 6);
    put(&self::client(&cluster, 1 << 20), "/big", &content).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("big.bin");
    let target_str = target.to_str().expect("utf-8 path").to_owned();
    let mut get_child = cli_process(&["get", "/big", &target_str])
        .spawn()
        .expect("run get");
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let busy = std::fs::read_dir(dir.path())
            .map(|d| d.count() > 0)
            .unwrap_or(false);
        if busy || get_child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    interrupt(&get_child);
    let _ = get_child.wait();
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    match std::fs::read(&target) {
        Ok(bytes) => assert!(bytes == content, "a partial file under the final name"),
        Err(_) => assert!(files.is_empty(), "an interrupted get left {files:?}"),
    }
    assert!(
        files.iter().all(|f| f == "big.bin"),
        "a temporary was left: {files:?}"
    );
}
