//! Shared pieces of the ToastyFS benchmarks: latency statistics and the
//! closed-loop workload driver (N clients, each issuing one request after
//! another for a fixed time).

use std::future::Future;
use std::time::{Duration, Instant};

#[cfg(feature = "etcd")]
pub mod etcd;

/// This machine's limits as `machine-limits.sh` printed them in the same
/// run ("name value unit" lines), for figures reported as ratios.
#[derive(Debug, Clone, Default)]
pub struct MachineLimits {
    pub sha256_core_mbps: Option<f64>,
    pub disk_write_mbps: Option<f64>,
}

impl MachineLimits {
    /// Reads the lines `machine-limits.sh` printed; unknown lines are
    /// skipped, a missing file gives no limits.
    pub fn read(path: &std::path::Path) -> MachineLimits {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let value = |name: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
        };
        MachineLimits {
            sha256_core_mbps: value("sha256_core_MBps "),
            disk_write_mbps: value("disk_write_MBps "),
        }
    }
}

/// `figure / limit` to two places, or "no limit measured".
pub fn ratio(figure: f64, limit: Option<f64>) -> String {
    match limit {
        Some(limit) if limit > 0.0 => format!("{:.2}", figure / limit),
        _ => "no limit measured".to_owned(),
    }
}

/// What a timed run measured.
#[derive(Debug, Clone)]
pub struct RunStats {
    pub clients: usize,
    pub ops: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl RunStats {
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..=1) of the latencies, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted[at].as_secs_f64() * 1e3
    }
}

/// Runs `clients` closed loops for `duration`; `op(client, i)` performs one
/// request and says whether it succeeded.
pub async fn closed_loop<F, Fut>(clients: usize, duration: Duration, op: F) -> RunStats
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut i = 0;
            while started.elapsed() < duration {
                let t = Instant::now();
                if op(client, i).await {
                    latencies.push(t.elapsed());
                } else {
                    errors += 1;
                }
                i += 1;
            }
            (latencies, errors)
        }));
    }
    let mut stats = RunStats {
        clients,
        ops: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        if let Ok((latencies, errors)) = task.await {
            stats.ops += latencies.len();
            stats.errors += errors;
            stats.latencies.extend(latencies);
        }
    }
    stats.elapsed = started.elapsed();
    stats
}

/// Peak resident set size of a process, from /proc (Linux), in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
