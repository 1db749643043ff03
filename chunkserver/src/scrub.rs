//! The scrubber: re-reads every chunk in the background, verifies its hash,
//! and lets the store drop corrupt or vanished chunks into the lost report
//! (through the same path as a client read, [`ChunkStore::verify`]).
//!
//! Reads are paced by a token bucket in bytes per second so scrubbing never
//! starves client traffic. [`TokenBucket`] takes `now` as an argument and
//! does no I/O, so pacing is tested without a clock; [`scrub_pass`] runs one
//! pass with whatever bucket it is given. Deliberately absent: repairing
//! anything (the leader schedules healing copies from the lost report).

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use toastyfs_proto::hash::ChunkHash;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::StoreError;
use crate::store::{ChunkStore, MAX_CHUNK_BYTES};

/// How fast and how often the scrubber runs.
#[derive(Debug, Clone, Copy)]
pub struct ScrubConfig {
    /// Average read rate.
    pub rate_bytes_per_sec: NonZeroU64,
    /// Rest between the end of one pass and the start of the next.
    pub pause_between_passes: Duration,
}

pub use crate::limits::{DEFAULT_SCRUB_PAUSE, DEFAULT_SCRUB_RATE_BYTES_PER_SEC};

impl Default for ScrubConfig {
    fn default() -> ScrubConfig {
        ScrubConfig {
            rate_bytes_per_sec: NonZeroU64::new(DEFAULT_SCRUB_RATE_BYTES_PER_SEC)
                .unwrap_or(NonZeroU64::MIN),
            pause_between_passes: DEFAULT_SCRUB_PAUSE,
        }
    }
}

/// A byte-rate limiter. It may go into debt by one read (a chunk is read
/// whole), and the caller then waits the debt off, so the average rate holds
/// and a burst is at most `burst_bytes` plus one chunk.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_bytes_per_sec: f64,
    burst_bytes: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_bytes_per_sec: NonZeroU64, burst_bytes: u64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate_bytes_per_sec: rate_bytes_per_sec.get() as f64,
            burst_bytes: burst_bytes as f64,
            tokens: burst_bytes as f64,
            last: now,
        }
    }

    /// Spends `bytes` at `now` and returns how long to wait before reading on.
    pub fn take(&mut self, bytes: u64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate_bytes_per_sec).min(self.burst_bytes);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(-self.tokens / self.rate_bytes_per_sec)
    }
}

/// What one pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Chunks read and found intact.
    pub verified: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Chunks found corrupt (now quarantined and reported lost).
    pub corrupt: Vec<ChunkHash>,
    /// Chunks whose file had vanished (reported lost), or that were deleted
    /// during the pass.
    pub missing: Vec<ChunkHash>,
    /// Chunks that could not be read for another reason (logged; retried
    /// on the next pass).
    pub failed: Vec<ChunkHash>,
}

/// Verifies every chunk in the inventory once, pacing reads with `bucket`.
pub async fn scrub_pass(store: &Arc<ChunkStore>, bucket: &mut TokenBucket) -> ScrubReport {
    let mut report = ScrubReport::default();
    for hash in store.inventory() {
        let outcome = store.blocking(move |s| s.verify(hash)).await;
        let size_bytes = outcome.as_ref().map_or(0, |size| *size);
        record(&mut report, hash, outcome);
        tokio::time::sleep(bucket.take(size_bytes, Instant::now())).await;
    }
    report
}

fn record(report: &mut ScrubReport, hash: ChunkHash, outcome: Result<u64, StoreError>) {
    match outcome {
        Ok(size_bytes) => {
            report.verified += 1;
            report.bytes += size_bytes;
        }
        Err(StoreError::Corrupt(_)) => report.corrupt.push(hash),
        Err(StoreError::NotFound(_)) => report.missing.push(hash),
        Err(e) => {
            tracing::warn!(%hash, error = %e, "scrubber could not read a chunk");
            report.failed.push(hash);
        }
    }
}

/// Starts the scrubber: passes forever, `pause_between_passes` apart. Abort
/// the returned handle to stop it.
pub fn spawn_scrubber(store: Arc<ChunkStore>, config: ScrubConfig) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut bucket =
            TokenBucket::new(config.rate_bytes_per_sec, MAX_CHUNK_BYTES, Instant::now());
        loop {
            let report = scrub_pass(&store, &mut bucket).await;
            log_pass(&report);
            tokio::time::sleep(config.pause_between_passes).await;
        }
    })
}

fn log_pass(report: &ScrubReport) {
    crate::metrics::record_scrub(report.bytes, report.corrupt.len() as u64);
    tracing::info!(
        verified = report.verified,
        bytes = report.bytes,
        corrupt = report.corrupt.len(),
        missing = report.missing.len(),
        failed = report.failed.len(),
        "scrub pass finished"
    );
}

#[cfg(test)]
mod tests {
    use std::fs;

    use tempfile::TempDir;

    use super::*;

    fn rate(bytes_per_sec: u64) -> NonZeroU64 {
        NonZeroU64::new(bytes_per_sec).unwrap()
    }

    fn store_with(dir: &TempDir, chunks: &[&[u8]]) -> (Arc<ChunkStore>, Vec<ChunkHash>) {
        let store = ChunkStore::open(dir.path(), None).unwrap();
        let hashes = chunks
            .iter()
            .map(|bytes| {
                let hash = ChunkHash::of(bytes);
                store.put(hash, bytes).unwrap();
                hash
            })
            .collect();
        (Arc::new(store), hashes)
    }

    /// The bucket lets a burst through, then asks for waits that hold the rate.
    #[test]
    fn token_bucket_paces_to_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(rate(1000), 500, start);
        assert_eq!(bucket.take(500, start), Duration::ZERO);
        assert_eq!(bucket.take(1000, start), Duration::from_secs(1));
        // A second later the debt is paid and nothing has accrued.
        let later = start + Duration::from_secs(1);
        assert_eq!(bucket.take(250, later), Duration::from_millis(250));
    }

    /// Idle time refills the bucket only up to the burst size.
    #[test]
    fn token_bucket_caps_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(rate(100), 100, start);
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(bucket.take(100, much_later), Duration::ZERO);
        assert_eq!(bucket.take(100, much_later), Duration::from_secs(1));
    }

    /// A pass verifies every intact chunk and finds a flipped byte, which the
    /// store then reports lost and stops serving.
    #[tokio::test]
    async fn scrub_finds_a_flipped_byte() {
        let dir = TempDir::new().unwrap();
        let (store, hashes) = store_with(&dir, &[b"one", b"two", b"three"]);
        let path = store.chunk_path(hashes[1]);
        fs::write(&path, b"twO").unwrap();
        let mut bucket = TokenBucket::new(rate(u64::MAX), u64::MAX, Instant::now());
        let report = scrub_pass(&store, &mut bucket).await;
        assert_eq!(report.verified, 2);
        assert_eq!(report.bytes, 8);
        assert_eq!(report.corrupt, vec![hashes[1]]);
        assert_eq!(store.take_lost(), vec![hashes[1]]);
        assert_eq!(store.contains(&hashes), vec![true, false, true]);
    }

    /// A pass is paced: 3 000 bytes at 1 000 B/s with a 1 000-byte burst
    /// takes at least two (virtual) seconds.
    #[tokio::test(start_paused = true)]
    async fn scrub_pass_respects_the_rate() {
        let dir = TempDir::new().unwrap();
        let chunks: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1000]).collect();
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let (store, _) = store_with(&dir, &refs);
        let start = Instant::now();
        let mut bucket = TokenBucket::new(rate(1000), 1000, start);
        let report = scrub_pass(&store, &mut bucket).await;
        assert_eq!(report.verified, 3);
        assert!(
            start.elapsed() >= Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
}
