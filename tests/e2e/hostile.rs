//! Slow and greedy clients (issue 15, item 4): connections that never
//! finish their request headers (a slow-loris) and uploads that stall
//! halfway hold a metadata node's or a chunk server's resources only for
//! a bounded time, and meanwhile the node serves everyone else.

use std::time::{Duration, Instant};

use toastyfs_proto::namespace::Command;
use toastyfs_proto::{ChunkHash, FsPath};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longer than the servers' header read timeout and body idle timeout
/// (`client/src/serve.rs`), with room for a loaded machine.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(60);

/// Opens `n` connections to `addr`, each sending `prefix` and then nothing.
async fn stalled(addr: &str, n: usize, prefix: &[u8]) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(prefix).await.expect("send the start");
        streams.push(stream);
    }
    streams
}

/// Waits until the server closed every one of `streams` (a read ends or
/// fails); panics after [`CUT_OFF_WITHIN`].
async fn all_closed(what: &str, streams: Vec<TcpStream>) {
    let started = Instant::now();
    for mut stream in streams {
        let left = CUT_OFF_WITHIN.saturating_sub(started.elapsed());
        let mut buf = [0u8; 4096];
        let closed = tokio::time::timeout(left, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "{what}: a connection was still open after {CUT_OFF_WITHIN:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_and_stalled_uploads_are_cut_off_while_others_are_served() {
    let mut cluster = crate::harness::start(3, &[]).await;
    let server = cluster.spawn_chunk_server(&["--report-interval-ms", "200"]);
    cluster.wait_chunk_servers_up(1).await;
    let leader = cluster.wait_leader().await;
    let meta_addr = cluster.nodes[&leader].addr.clone();
    let chunk_addr = cluster.chunk_servers[&server].addr.clone();

    let header_only = b"GET /v1/status HTTP/1.1\r\nHost: toastyfs\r\nX-Slow: ";
    let loris_meta = stalled(&meta_addr, 200, header_only).await;
    let loris_chunk = stalled(&chunk_addr, 200, header_only).await;
    let hash = ChunkHash::of(b"never sent in full");
    let upload_start = format!(
        "PUT /chunks/{hash} HTTP/1.1\r\nHost: toastyfs\r\nContent-Length: {}\r\n\r\n",
        64 << 20
    );
    let mut upload = upload_start.into_bytes();
    upload.extend(std::iter::repeat_n(7u8, 1 << 20));
    // Fewer than the chunk bodies a server reads at once
    // (`MAX_CHUNK_BODIES_IN_FLIGHT`): beyond that, uploads wait for a
    // stalled one to be cut off (docs/operations.md, "Limits").
    let stalled_uploads = stalled(&chunk_addr, 12, &upload).await;

    // Meanwhile the others are served: namespace writes and reads, chunk
    // uploads and downloads through the client.
    let mkdir = Command::CreateDir {
        path: FsPath::new("/still-served").expect("path"),
        parents: true,
        expect: None,
    };
    assert!(
        cluster.write(mkdir).await.is_ok(),
        "a write among slow clients"
    );
    let transport = toastyfs_client::transport::Transport::new(Duration::from_secs(30));
    let chunk = bytes::Bytes::from_static(b"a chunk uploaded among stalled ones");
    let chunk_hash = ChunkHash::of(&chunk);
    transport
        .put_chunk(&chunk_addr, &chunk_hash, chunk.clone())
        .await
        .expect("an upload among stalled ones");
    let back = transport
        .get_chunk(&chunk_addr, &chunk_hash, 1 << 20)
        .await
        .expect("a download among stalled ones");
    assert_eq!(back, chunk);

    all_closed("a metadata node's slow-loris", loris_meta).await;
    all_closed("a chunk server's slow-loris", loris_chunk).await;
    all_closed("a stalled upload", stalled_uploads).await;
    assert!(
        !cluster.chunk_log_of(server).contains("panicked"),
        "the chunk server panicked"
    );
}

/// What a hostile body may look like, built from a valid one.
fn mangled(valid: &[u8], seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut flipped = valid.to_vec();
    let at = (seed as usize * 7919) % flipped.len().max(1);
    if let Some(byte) = flipped.get_mut(at) {
        *byte ^= 0x20;
    }
    vec![
        ("empty".into(), Vec::new()),
        ("truncated".into(), valid[..valid.len() / 2].to_vec()),
        ("bit-flipped".into(), flipped),
        ("random".into(), crate::harness::pattern(1_000, seed)),
        (
            "random, long".into(),
            crate::harness::pattern(200_000, seed + 1),
        ),
    ]
}

/// Every status below 500 and at least 400: the request was refused as
/// the client's fault, and the node did not fail.
fn refused(route: &str, what: &str, status: u16, text: &str) {
    assert!(
        (400..500).contains(&status),
        "{route} with a {what} body answered {status}: {text}"
    );
}

async fn send(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Truncated, bit-flipped, random, empty and oversized bodies to every
/// POST route of the leader and every body-taking route of a chunk
/// server: each is answered 4xx, the processes keep serving, and the
/// namespace digest and the chunk inventory do not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_refused_and_change_nothing() {
    use toastyfs_proto::routes;
    let mut cluster = crate::harness::start(3, &[]).await;
    let server = cluster.spawn_chunk_server(&["--report-interval-ms", "200"]);
    cluster.wait_chunk_servers_up(1).await;
    let leader = cluster.wait_leader().await;
    let meta = cluster.nodes[&leader].addr.clone();
    let chunk = cluster.chunk_servers[&server].addr.clone();
    let digest_before = cluster.wait_converged().await;
    let http = reqwest::Client::new();
    let usage = |addr: String| {
        let http = http.clone();
        async move {
            let url = routes::url(&addr, routes::CHUNK_SERVER_STATUS);
            let usage: serde_json::Value = http
                .get(url)
                .send()
                .await
                .expect("chunk server status")
                .json()
                .await
                .expect("status JSON");
            (usage["chunks"].clone(), usage["bytes"].clone())
        }
    };
    let inventory_before = usage(chunk.clone()).await;

    let record =
        toastyfs_proto::record::encode(&toastyfs_raft_meta::election::PreVoteRpc::from_owned(
            toastyfs_raft_meta::election::PreVoteRequest {
                candidate: 9,
                last_log_id: None,
            },
        ))
        .expect("a record");
    let record_routes = [
        routes::RAFT_APPEND,
        routes::RAFT_VOTE,
        routes::RAFT_SNAPSHOT,
        routes::RAFT_PRE_VOTE,
        routes::RAFT_CAMPAIGN,
        routes::WRITE,
        routes::READ,
        routes::CHUNK_REPORT,
        routes::CHUNK_PLACEMENT,
        routes::CHUNK_LOCATE,
        routes::CHUNK_HEALTH,
    ];
    let oversized = vec![0u8; (32 << 20) + 1];
    for (n, route) in record_routes.iter().enumerate() {
        for (what, body) in mangled(&record, n as u64) {
            let (status, text) = send(http.post(routes::url(&meta, route)).body(body)).await;
            refused(route, &what, status, &text);
        }
        let (status, text) =
            send(http.post(routes::url(&meta, route)).body(oversized.clone())).await;
        refused(route, "oversized", status, &text);
    }
    let json = br#"{"id": 4, "addr": "127.0.0.1:1", "members": {"1": "127.0.0.1:1"}}"#;
    for (n, route) in [
        routes::CLUSTER_INIT,
        routes::CLUSTER_ADD_NODE,
        routes::CLUSTER_REMOVE_NODE,
    ]
    .iter()
    .enumerate()
    {
        for (what, body) in mangled(json, n as u64) {
            let request = http
                .post(routes::url(&meta, route))
                .header("content-type", "application/json")
                .body(body);
            let (status, text) = send(request).await;
            refused(route, &what, status, &text);
        }
    }

    let hash = ChunkHash::of(b"the name of a chunk never stored");
    let chunk_path = routes::chunk(&hash);
    for (what, body) in mangled(b"bytes that do not hash to the name", 3) {
        let (status, text) = send(
            http.put(routes::url(&chunk, &chunk_path))
                .body(body.clone()),
        )
        .await;
        refused("PUT /chunks/{hash}", &what, status, &text);
        let patch = format!("{chunk_path}?offset=0");
        let (status, text) = send(http.patch(routes::url(&chunk, &patch)).body(body.clone())).await;
        refused("PATCH /chunks/{hash}", &what, status, &text);
        let (status, text) = send(
            http.post(routes::url(&chunk, routes::CHUNKS_EXISTS))
                .body(body),
        )
        .await;
        refused("POST /chunks/exists", &what, status, &text);
    }
    let (status, text) = send(
        http.put(routes::url(&chunk, "/chunks/not-a-hash"))
            .body("x"),
    )
    .await;
    refused("PUT /chunks/not-a-hash", "any", status, &text);
    let patch = format!("{chunk_path}?offset=minus-one");
    let (status, text) = send(http.patch(routes::url(&chunk, &patch)).body("x")).await;
    refused("PATCH with a bad offset", "any", status, &text);
    // Refused from its announced length, before the body is read: the
    // server answers 413 and closes, so the client may instead see its
    // write cut off (a race over which it notices first). Either is a
    // refusal; the checks below show nothing changed and the server serves.
    let too_big = vec![0u8; (64 << 20) + (64 << 10) + 1];
    match http
        .put(routes::url(&chunk, &chunk_path))
        .body(too_big)
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            refused("PUT /chunks/{hash}", "oversized", status, &text);
        }
        Err(e) => assert!(e.is_request(), "oversized PUT: {e:?}"),
    }
    let (status, text) = send(
        http.get(routes::url(&chunk, &chunk_path))
            .header("range", "bytes=garbage"),
    )
    .await;
    refused("GET /chunks/{hash} with a bad range", "none", status, &text);

    assert_eq!(
        cluster.wait_converged().await,
        digest_before,
        "a refused request changed the namespace"
    );
    assert_eq!(
        usage(chunk).await,
        inventory_before,
        "a refused request changed the chunk inventory"
    );
    for id in 1..=3 {
        assert!(
            !cluster.log_of(id).contains("panicked"),
            "node {id} panicked"
        );
    }
    assert!(
        !cluster.chunk_log_of(server).contains("panicked"),
        "the chunk server panicked"
    );
}
