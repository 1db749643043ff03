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
