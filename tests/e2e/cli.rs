//! The CLI as a user meets it (issue 13): human and JSON output, `cp`-like
//! recursive and multi-file copies that create missing parents, one
//! exit-code table, completion and version, `cluster status` and `fsck`
//! agreeing on one definition of chunk health, and signals that stop a
//! copy without leaving anything behind.

use std::path::Path;
use std::process::{Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{pattern, wait_for, Cluster};

/// A cluster whose chunk servers report every `report_interval_ms` and
/// are declared down after `server_timeout_ms` of silence.
async fn start_with(report_interval_ms: &str, server_timeout_ms: &str) -> Cluster {
    let mut cluster =
        crate::harness::start(3, &["--chunk-server-timeout-ms", server_timeout_ms]).await;
    for _ in 0..3 {
        cluster.spawn_chunk_server(&["--report-interval-ms", report_interval_ms]);
    }
    cluster.wait_chunk_servers_up(3).await;
    cluster
}

async fn start(report_interval_ms: &str) -> Cluster {
    start_with(report_interval_ms, "2000").await
}

fn command(meta: &str, args: &[&str]) -> Process {
    let mut command = Process::new(crate::harness::binary());
    command
        .args(args)
        .env("HOME", std::env::temp_dir())
        .env_remove("XDG_CONFIG_HOME")
        .env("TOASTYFS_META", meta);
    command
}

/// Runs the CLI; (exit code, stdout, stderr).
fn run(cluster: &Cluster, args: &[&str]) -> (Option<i32>, String, String) {
    let output: Output = command(&cluster.addrs().join(","), args)
        .output()
        .expect("run the CLI");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(cluster: &Cluster, args: &[&str]) -> (String, String) {
    let (code, out, err) = run(cluster, args);
    assert_eq!(code, Some(0), "toastyfs {args:?}: {err}{out}");
    (out, err)
}

fn json(cluster: &Cluster, args: &[&str]) -> Value {
    let (out, _) = ok(cluster, args);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("toastyfs {args:?}: not JSON ({e}): {out}"))
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `ls -l` has a header, sizes in binary units and a local ISO modified
/// time; `stat` says the same; `-o json` gives stable, documented fields;
/// a put's last line states bytes, time and rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_readable_for_people_and_stable_for_scripts() {
    let cluster = start("200").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let local = dir.path().join("data.bin");
    std::fs::write(&local, pattern(1_572_864, 1)).expect("local file");
    let (_, err) = ok(&cluster, &["put", s(&local), "/d/data.bin"]);
    assert!(
        err.contains("/d/data.bin: 1.50 MiB in ") && err.contains("/s)"),
        "the put's last line: {err}"
    );

    let (out, _) = ok(&cluster, &["ls", "-l", "/d"]);
    let mut lines = out.lines();
    let header = lines.next().expect("a header");
    for column in ["KIND", "SIZE", "VERSION", "MODIFIED", "NAME"] {
        assert!(header.contains(column), "{out}");
    }
    let row = lines.next().expect("one entry");
    assert!(
        row.contains("1.50 MiB") && row.ends_with("data.bin"),
        "{out}"
    );
    assert!(
        row.contains(":") && row.contains("-"),
        "no modified time: {out}"
    );
    let (out, _) = ok(&cluster, &["ls", "-l", "--bytes", "/d"]);
    assert!(out.contains("1572864"), "{out}");

    let (out, _) = ok(&cluster, &["stat", "/d/data.bin"]);
    assert!(out.contains("1.50 MiB (1572864 bytes)"), "{out}");
    assert!(!out.contains("since the epoch"), "{out}");

    let listing = json(&cluster, &["ls", "-o", "json", "/d"]);
    let entry = &listing[0];
    assert_eq!(entry["name"], "data.bin", "{listing}");
    assert_eq!(entry["kind"], "file");
    assert_eq!(entry["size"], 1_572_864);
    for field in ["version", "chunk_size", "modified_ms", "modified"] {
        assert!(!entry[field].is_null(), "{field} missing: {listing}");
    }
    let stat = json(&cluster, &["stat", "-o", "json", "/d"]);
    assert_eq!(stat["path"], "/d");
    assert_eq!(stat["kind"], "dir");

    let status = json(&cluster, &["cluster", "status", "-o", "json"]);
    let nodes = status["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{status}");
    assert!(nodes
        .iter()
        .all(|n| n["status"]["version"] == env!("CARGO_PKG_VERSION")));
    assert_eq!(
        status["chunks"]["servers"].as_array().map(Vec::len),
        Some(3)
    );
    let fsck = json(&cluster, &["fsck", "-o", "json"]);
    assert_eq!(fsck["files_checked"], 1, "{fsck}");
    assert_eq!(
        fsck["unhealthy"].as_array().map(Vec::len),
        Some(0),
        "{fsck}"
    );

    // A --meta flag, before the command or after it, beats TOASTYFS_META.
    let addrs = cluster.addrs().join(",");
    for args in [
        &["--meta", &addrs, "ls", "/d"][..],
        &["ls", "/d", "--meta", &addrs],
        &["cluster", "status", "--meta", &addrs],
    ] {
        let output = command("127.0.0.1:1", args).output().expect("run the CLI");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "toastyfs {args:?}: {err}");
    }

    let (out, _) = ok(&cluster, &["version"]);
    assert!(
        out.contains(&format!("client   {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("node")).count(),
        3,
        "{out}"
    );
}

/// A local tree with empty files, empty directories and nesting goes in
/// with `put -r` and comes back identical with `get -r`; the `cp` rule
/// places a copy into an existing directory under its own name; several
/// sources go into one directory; missing parents are created unless
/// `--no-parents`; `--append` appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_and_multi_file_copies_round_trip_a_tree() {
    let cluster = start("200").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let tree = dir.path().join("tree");
    for sub in ["a/b/c", "empty", "a/also-empty"] {
        std::fs::create_dir_all(tree.join(sub)).expect("local dirs");
    }
    std::fs::write(tree.join("top.txt"), b"top").expect("file");
    std::fs::write(tree.join("zero"), b"").expect("empty file");
    std::fs::write(tree.join("a/b/c/deep.bin"), pattern(300_000, 2)).expect("file");
    std::fs::write(tree.join("a/b/none"), b"").expect("empty file");

    // A new target becomes the copy; an existing one receives it by name.
    ok(
        &cluster,
        &["put", "-r", "--parallelism", "3", s(&tree), "/backup"],
    );
    ok(&cluster, &["put", "-r", s(&tree), "/backup"]);
    let listing = json(&cluster, &["ls", "-o", "json", "/backup"]);
    let names: Vec<&str> = listing
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["a", "empty", "top.txt", "tree", "zero"],
        "{listing}"
    );

    let back = dir.path().join("back");
    ok(&cluster, &["get", "-r", "/backup/tree", s(&back)]);
    assert_same_tree(&tree, &back);
    let (code, _, err) = run(&cluster, &["get", "/backup", s(&dir.path().join("x"))]);
    assert_eq!(code, Some(2), "a directory without -r: {err}");
    assert!(err.contains("-r"), "{err}");

    // Several sources into a directory, parents created on the way.
    let one = tree.join("top.txt");
    let two = tree.join("zero");
    ok(&cluster, &["put", s(&one), s(&two), "/new/deep/dir"]);
    let (out, _) = ok(&cluster, &["ls", "/new/deep/dir"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["top.txt", "zero"],
        "{out}"
    );
    let (code, _, err) = run(&cluster, &["put", "--no-parents", s(&one), "/nowhere/f"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("/nowhere does not exist"), "{err}");

    ok(&cluster, &["put", "--append", s(&one), "/log"]);
    ok(&cluster, &["put", "--append", s(&one), "/log"]);
    let (out, _) = ok(&cluster, &["cat", "/log"]);
    assert_eq!(out, "toptop");
}

fn assert_same_tree(want: &Path, got: &Path) {
    let mut entries: Vec<_> = std::fs::read_dir(want)
        .expect("read the tree")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let mirror = got.join(path.file_name().expect("a name"));
        if path.is_dir() {
            assert!(mirror.is_dir(), "{} missing", mirror.display());
            assert_same_tree(&path, &mirror);
        } else {
            assert_eq!(
                std::fs::read(&path).expect("want"),
                std::fs::read(&mirror).unwrap_or_else(|e| panic!("{}: {e}", mirror.display())),
                "{} differs",
                mirror.display()
            );
        }
    }
    let count = |dir: &Path| std::fs::read_dir(dir).expect("read").count();
    assert_eq!(
        count(want),
        count(got),
        "{} has other entries",
        got.display()
    );
}

/// One exit-code table: usage errors 2 before anything is sent, a
/// refusal 1, an unreachable cluster 3 (reported within about 2 s, naming
/// the addresses), and the table in `--help`; completion scripts for the
/// shells.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_one_table() {
    let cluster = start("200").await;
    for args in [
        &["put", "--parallelism", "0", "/etc/hostname", "/h"][..],
        &["put", "--chunk-size", "0", "/etc/hostname", "/h"],
        &["cluster", "set-replication-factor", "0"],
        &["cluster", "set-min-copies", "17"],
        &["dev", "--base-port", "65530"],
        &["ls", "-o", "yaml"],
    ] {
        let (code, _, err) = run(&cluster, args);
        assert_eq!(code, Some(2), "toastyfs {args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    ok(&cluster, &["mkdir", "/exists"]);
    let (code, _, err) = run(&cluster, &["mkdir", "/exists"]);
    assert_eq!(code, Some(1), "{err}");

    for args in [&["ls", "/"][..], &["cluster", "status"], &["version"]] {
        let started = Instant::now();
        let output = command("127.0.0.1:1,127.0.0.1:2", args)
            .output()
            .expect("run the CLI");
        let took = started.elapsed();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "toastyfs {args:?}: {err}");
        assert!(
            err.contains("127.0.0.1:1") && err.contains("toastyfs dev"),
            "{err}"
        );
        // The library's own give-up is 5 s; the CLI says so sooner.
        eprintln!("toastyfs {args:?} reported an unreachable cluster after {took:?}");
        assert!(
            took < Duration::from_millis(4_500),
            "{args:?} took {took:?}"
        );
    }

    let (out, _) = ok(&cluster, &["put", "--help"]);
    assert!(out.contains("Exit codes:") && out.contains("130"), "{out}");
    assert!(out.contains("Examples:"), "{out}");
    let (out, _) = ok(&cluster, &["dev", "--help"]);
    assert!(
        !out.contains("--meta") && !out.contains("Exit codes"),
        "{out}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let (out, _) = ok(&cluster, &["completion", shell]);
        assert!(
            out.contains("toastyfs") && out.contains("put"),
            "{shell}: {out}"
        );
    }
}

/// A replication factor above the chunk servers that are up is refused
/// unless forced; forced, `cluster status` counts every chunk as
/// under-replicated and `fsck` agrees file by file (before, status said 0
/// while fsck called every file unhealthy). A down server shows no stale
/// figures and when it was last seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_fsck_agree_and_a_factor_above_the_servers_is_refused() {
    let mut cluster = start("200").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let local = dir.path().join("f");
    std::fs::write(&local, pattern(40_000, 3)).expect("local file");
    ok(&cluster, &["put", "--chunk-size", "4096", s(&local), "/f"]);

    let (code, _, err) = run(&cluster, &["cluster", "set-replication-factor", "5"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("only 3 chunk servers are up"), "{err}");
    let (_, err) = ok(
        &cluster,
        &["cluster", "set-replication-factor", "5", "--force"],
    );
    assert!(err.contains("warning"), "{err}");
    let status = wait_for(
        "status to count 10 under-replicated chunks",
        Duration::from_secs(20),
        || async {
            let status = json(&cluster, &["cluster", "status", "-o", "json"]);
            (status["chunks"]["under_replicated"] == 10).then_some(status)
        },
    )
    .await;
    assert_eq!(status["chunks"]["lost"], 0, "{status}");
    let (code, out, _) = run(&cluster, &["fsck", "-o", "json"]);
    assert_eq!(code, Some(1), "{out}");
    let fsck: Value = serde_json::from_str(&out).expect("fsck JSON");
    assert_eq!(fsck["unhealthy"][0]["under_replicated"], 10, "{fsck}");
    assert_eq!(fsck["under_replicated"], 10, "{fsck}");
    let (out, _) = ok(&cluster, &["cluster", "status"]);
    assert!(out.contains("fewer than the replication factor 5"), "{out}");

    cluster.kill_chunk_server(2);
    let out = wait_for(
        "the killed server shown down",
        Duration::from_secs(20),
        || async {
            let (out, _) = ok(&cluster, &["cluster", "status"]);
            out.lines().any(|l| l.contains("DOWN")).then_some(out)
        },
    )
    .await;
    let down = out
        .lines()
        .find(|l| l.contains("DOWN"))
        .expect("a down line");
    assert!(down.contains(" - ") && down.contains("s ago"), "{out}");
}

/// Right after a leader change, chunks the new leader has not yet heard
/// reported are "pending reports", not "lost" (the chunk servers report
/// every 5 s here, so the new leader knows none of them for a while; it
/// waits the default 20 s for every server before calling a chunk lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_not_yet_reported_are_pending_not_lost() {
    let mut cluster = start_with("5000", "20000").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let local = dir.path().join("f");
    std::fs::write(&local, pattern(20_000, 4)).expect("local file");
    ok(&cluster, &["put", "--chunk-size", "4096", s(&local), "/f"]);
    let leader = cluster.wait_leader().await;
    cluster.kill(leader);
    let status = wait_for(
        "a new leader's chunk status",
        Duration::from_secs(20),
        || async {
            let (code, out, _) = run(&cluster, &["cluster", "status", "-o", "json"]);
            let status: Value = serde_json::from_str(&out).ok()?;
            (code == Some(0) && status["chunks"].is_object()).then_some(status)
        },
    )
    .await;
    let chunks = &status["chunks"];
    eprintln!("the new leader's chunk counts: {chunks}");
    assert_eq!(
        chunks["lost"], 0,
        "unreported chunks counted as lost: {status}"
    );
}

/// SIGTERM and SIGHUP stop a put like Ctrl-C: exit 130 and its temporary
/// removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_stopped_by_sigterm_or_sighup_leaves_nothing_behind() {
    use std::io::Write;
    let cluster = start("200").await;
    let meta = cluster.addrs().join(",");
    for signal in ["-TERM", "-HUP"] {
        let dir = format!("/in{}", signal.to_lowercase());
        ok(&cluster, &["mkdir", &dir]);
        let mut child = command(
            &meta,
            &["put", "-", &format!("{dir}/f"), "--chunk-size", "4096"],
        )
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run put");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&pattern(200_000, 5)).expect("feed the put");
        wait_for("the put's temporary", Duration::from_secs(30), || async {
            let (_, out, _) = run(&cluster, &["ls", "-a", &dir]);
            out.contains("toastyfs-upload").then_some(())
        })
        .await;
        Process::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        let status = child.wait().expect("put ends");
        drop(stdin);
        assert_eq!(status.code(), Some(130), "{signal}");
        let (out, _) = ok(&cluster, &["ls", "-a", &dir]);
        assert!(out.is_empty(), "{signal} left {out}");
    }
}

/// A put killed outright (`kill -9`: no chance to clean up) leaves its
/// temporary behind; the leader deletes it once nobody has written it for
/// the upload TTL (1.5 s here). A put that keeps writing for longer than
/// the TTL is left alone and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_deletes_an_abandoned_put_temporary_but_not_a_live_one() {
    use std::io::Write;
    let mut cluster = crate::harness::start(3, &["--upload-temp-ttl-ms", "1500"]).await;
    for _ in 0..3 {
        cluster.spawn_chunk_server(&["--report-interval-ms", "200"]);
    }
    cluster.wait_chunk_servers_up(3).await;
    let meta = cluster.addrs().join(",");
    let put_from_pipe = |path: &str| {
        command(
            &meta,
            &[
                "put",
                "-",
                path,
                "--chunk-size",
                "4096",
                "--parallelism",
                "2",
            ],
        )
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run put")
    };
    ok(&cluster, &["mkdir", "/killed"]);
    ok(&cluster, &["mkdir", "/live"]);

    let mut killed = put_from_pipe("/killed/f");
    let mut stdin = killed.stdin.take().expect("stdin");
    stdin.write_all(&pattern(100_000, 6)).expect("feed the put");
    wait_for("the put's temporary", Duration::from_secs(30), || async {
        let (_, out, _) = run(&cluster, &["ls", "-a", "/killed"]);
        out.contains("toastyfs-upload").then_some(())
    })
    .await;
    killed.kill().expect("kill -9 the put");
    let _ = killed.wait();
    drop(stdin);

    // Meanwhile a slow put writes a window every 400 ms for 4 s.
    let mut live = put_from_pipe("/live/f");
    let mut stdin = live.stdin.take().expect("stdin");
    let mut sent = Vec::new();
    for round in 0..10 {
        let part = pattern(8_192, 100 + round);
        stdin.write_all(&part).expect("feed the slow put");
        sent.extend_from_slice(&part);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    drop(stdin);
    let output = live.wait_with_output().expect("the slow put ends");
    assert!(
        output.status.success(),
        "a put still writing lost its temporary: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got = command(&meta, &["cat", "/live/f"]).output().expect("cat");
    assert!(got.stdout == sent, "the slow put's file differs");

    wait_for(
        "the abandoned temporary deleted",
        Duration::from_secs(20),
        || async {
            let (_, out, _) = run(&cluster, &["ls", "-a", "/killed"]);
            out.is_empty().then_some(())
        },
    )
    .await;
}
