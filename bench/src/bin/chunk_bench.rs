//! chunk-bench: upload and download throughput of one `toastyfs chunk`
//! server on loopback.
//!
//! Starts a chunk server (a real process, data in a temp directory), then
//! for each chunk size (1 MiB, 8 MiB) and stream count (1, 8) uploads
//! distinct chunks of pseudo-random bytes (`PUT /chunks/{hash}`: the server
//! hashes every body, writes it to a temp file, fsyncs, renames and fsyncs
//! the directory) and downloads them back (`GET`: the server re-hashes every
//! chunk it serves). Chunks and their hashes are made before the clock
//! starts, so the figures are the server's. Run it through
//! `scripts/bench-chunk.sh`, which prints this machine's SHA-256 and disk
//! limits in the same run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use toastyfs_proto::ChunkHash;

#[derive(Parser, Debug)]
struct Args {
    /// The toastyfs binary (a release build).
    #[arg(long)]
    toastyfs: PathBuf,
    /// Bytes moved per configuration, in MiB.
    #[arg(long, default_value_t = 512)]
    mib: usize,
}

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start(binary: &PathBuf) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    // No metadata service: the server keeps retrying its reports in the
    // background (a few requests a second), which does not touch the data path.
    let child = Command::new(binary)
        .args(["chunk", "--listen", &addr, "--meta", "127.0.0.1:9"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--scrub-pause-secs", "86400"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = Server {
        child,
        addr,
        _dir: dir,
    };
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http
        .get(format!("http://{}/health", server.addr))
        .send()
        .await
        .is_err()
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "chunk server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(server)
}

/// `count` distinct chunks of `size` bytes, with their hashes.
fn make_chunks(count: usize, size: usize, seed: u64) -> Vec<(ChunkHash, bytes::Bytes)> {
    (0..count)
        .map(|i| {
            let mut x = (seed ^ (i as u64) << 20).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut body = vec![0u8; size];
            for word in body.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
            }
            (ChunkHash::of(&body), bytes::Bytes::from(body))
        })
        .collect()
}

/// Runs `op` over every chunk with `streams` requests in flight; MB/s.
async fn transfer<F, Fut>(
    chunks: &Arc<Vec<(ChunkHash, bytes::Bytes)>>,
    streams: usize,
    op: F,
) -> anyhow::Result<f64>
where
    F: Fn(ChunkHash, bytes::Bytes) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<usize>> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let (chunks, next, op) = (chunks.clone(), next.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            let mut moved = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((hash, body)) = chunks.get(i) else {
                    return Ok::<usize, anyhow::Error>(moved);
                };
                moved += op(*hash, body.clone()).await?;
            }
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64() / 1e6)
}

async fn run(args: &Args, size: usize, streams: usize) -> anyhow::Result<(f64, f64)> {
    let server = start(&args.toastyfs).await?;
    let count = (args.mib << 20) / size;
    let chunks = Arc::new(make_chunks(count, size, (size * streams) as u64));
    let http = reqwest::Client::new();
    let base = format!("http://{}/chunks", server.addr);
    let (h, b) = (http.clone(), base.clone());
    let up = transfer(&chunks, streams, move |hash, body| {
        let (http, base) = (h.clone(), b.clone());
        async move {
            let len = body.len();
            let r = http.put(format!("{base}/{hash}")).body(body).send().await?;
            anyhow::ensure!(r.status().is_success(), "upload: {}", r.status());
            Ok(len)
        }
    })
    .await?;
    let down = transfer(&chunks, streams, move |hash, _| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http.get(format!("{base}/{hash}")).send().await?;
            anyhow::ensure!(r.status().is_success(), "download: {}", r.status());
            Ok(r.bytes().await?.len())
        }
    })
    .await?;
    Ok((up, down))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "{:>10} {:>8} {:>12} {:>14}",
        "chunk", "streams", "upload MB/s", "download MB/s"
    );
    for size in [1 << 20, 8 << 20] {
        for streams in [1, 8] {
            let (up, down) = run(&args, size, streams).await?;
            println!(
                "{:>7} MiB {:>8} {:>12.0} {:>14.0}",
                size >> 20,
                streams,
                up,
                down
            );
        }
    }
    Ok(())
}
