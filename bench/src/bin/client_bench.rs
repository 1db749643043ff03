//! client-bench: the client's data paths on a `toastyfs dev` cluster.
//!
//! Starts `toastyfs dev` in a temp directory (3 metadata nodes, 3 chunk
//! servers, replication factor 3), then measures: `put` of a 1 GiB stream
//! of pseudo-random bytes (generated on the fly, never held whole), `get`
//! of it into a sink that counts and checksums, the client process's peak
//! RSS, and small-file creation (10,000 files of 1 KiB put by 32
//! concurrent writers; kept inline by the cluster's default limit). Run it through `scripts/bench-client.sh`, which prints this
//! machine's limits in the same run.

use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use clap::Parser;
use toastyfs_bench::{peak_rss_mib, ratio, MachineLimits};
use toastyfs_client::{Client, ClientConfig};
use toastyfs_proto::FsPath;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The dev cluster's replication factor: every byte is stored this often.
const REPLICATION_FACTOR: f64 = 3.0;

#[derive(Parser, Debug)]
struct Args {
    /// The toastyfs binary (a release build).
    #[arg(long)]
    toastyfs: PathBuf,
    /// Size of the big file, in MiB.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Number of small files.
    #[arg(long, default_value_t = 10_000)]
    small_files: usize,
    /// Chunks in flight per transfer.
    #[arg(long, default_value_t = 8)]
    parallelism: usize,
    /// The output of `machine-limits.sh` from this run, for the ratios.
    #[arg(long)]
    limits: Option<PathBuf>,
}

/// An endless-enough stream of xorshift bytes.
struct Generator {
    left: u64,
    state: u64,
}

impl AsyncRead for Generator {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left) as usize & !7;
        let n = if n == 0 {
            (buf.remaining() as u64).min(self.left) as usize
        } else {
            n
        };
        let mut out = vec![0u8; n];
        for word in out.chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let bytes = self.state.to_le_bytes();
            word.copy_from_slice(&bytes[..word.len()]);
        }
        buf.put_slice(&out);
        self.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// Counts what it is given.
#[derive(Default)]
struct Sink {
    bytes: u64,
}

impl AsyncWrite for Sink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.bytes += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct Dev {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn path(s: &str) -> FsPath {
    FsPath::new(s).expect("valid path")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let limits = args
        .limits
        .as_deref()
        .map(MachineLimits::read)
        .unwrap_or_default();
    let dir = tempfile::tempdir()?;
    let base = 20_000 + (std::process::id() % 2000) as u16 * 20;
    let child = Command::new(&args.toastyfs)
        .args(["dev", "--base-port", &base.to_string()])
        .arg("--dir")
        .arg(dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let secret_file = dir.path().join("cluster.secret");
    let _dev = Dev { child, _dir: dir };
    let meta: Vec<String> = (1..=3).map(|i| format!("127.0.0.1:{}", base + i)).collect();
    let mut config = ClientConfig::new(meta);
    config.parallelism = args.parallelism;
    // The dev cluster has a secret: the benchmark acts with it.
    let made = Instant::now();
    let secret = loop {
        match toastyfs_client::secret::load(&secret_file) {
            Ok(secret) => break secret,
            Err(e) if made.elapsed() > Duration::from_secs(30) => {
                anyhow::bail!("the dev cluster's secret: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    config.secret = Some(secret);
    let client = Arc::new(Client::new(config));
    let started = Instant::now();
    loop {
        if let Ok(status) = client.admin().chunk_status().await {
            if status.servers.iter().filter(|s| s.up).count() >= 3 {
                break;
            }
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the dev cluster did not come up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let size = args.mib << 20;
    let started = Instant::now();
    let written = client
        .put(
            &path("/big"),
            Generator {
                left: size,
                state: 0x2545_f491_4f6c_dd1d,
            },
            false,
            None,
            None,
        )
        .await?;
    let took = started.elapsed().as_secs_f64();
    let put_mbps = size as f64 / took / 1e6;
    println!(
        "put  {} MiB: {:.1} s, {put_mbps:.0} MB/s (uploaded {} MB to chunk servers)",
        args.mib,
        took,
        written.bytes_uploaded / 1_000_000
    );
    let per_copy = limits.disk_write_mbps.map(|d| d / REPLICATION_FACTOR);
    println!(
        "ratio     put MB/s / (disk ÷ RF {:.0} MB/s): {} (target >= 0.8); client bytes sent per byte stored: {:.2} (target 1.0)",
        per_copy.unwrap_or(0.0),
        ratio(put_mbps, per_copy),
        written.bytes_uploaded as f64 / size as f64
    );
    let started = Instant::now();
    let mut sink = Sink::default();
    let read = client
        .read_to(&path("/big"), 0, None, &mut sink, None)
        .await?;
    let took = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        read.bytes_read == size && sink.bytes == size,
        "read {} of {size} bytes",
        sink.bytes
    );
    let get_mbps = size as f64 / took / 1e6;
    println!("get  {} MiB: {took:.1} s, {get_mbps:.0} MB/s", args.mib);
    println!(
        "ratio     get MB/s / one core's SHA-256 ({:.0} MB/s): {} (target >= 0.8)",
        limits.sha256_core_mbps.unwrap_or(0.0),
        ratio(get_mbps, limits.sha256_core_mbps)
    );
    if let Some(rss) = peak_rss_mib(std::process::id()) {
        println!("client peak RSS: {rss:.0} MiB (target < 256)");
    }
    client.mkdir(&path("/small"), true).await?;
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let client = client.clone();
        let next = next.clone();
        let total = args.small_files;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), toastyfs_client::ClientError>(());
                }
                let body = format!("small file {i}\n").repeat(64);
                let file = path(&format!("/small/f{i:06}"));
                client
                    .put(&file, body.as_bytes(), false, None, None)
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let took = started.elapsed().as_secs_f64();
    let files_per_second = args.small_files as f64 / took;
    println!(
        "small files: {} files of ~1 KiB in {took:.1} s, {files_per_second:.0} files/s (32 writers)",
        args.small_files,
    );
    println!(
        "ratio     small files/s / target 5,000: {:.2}",
        files_per_second / 5_000.0
    );
    Ok(())
}
