//! The sync loop with the metadata leader: reports what this server holds,
//! and carries out the orders each answer brings.
//!
//! Every `report_interval` (sooner after a chunk is stored, see
//! [`SyncHandle::waker`]) the loop sends a [`ChunkReport`] record as
//! the report route (`proto::routes::CHUNK_REPORT`) and gets a
//! [`ChunkOrders`] record back, through [`link::Link`]: any metadata node
//! will do (followers forward to the leader); a refusal (non-200, e.g. 503
//! while there is no leader) or a connection failure moves on to the next
//! address of the list, and so does a node silent for half a second (the
//! report is hedged, see [`link`]); when every address failed the loop backs off
//! (the client crate's one [`Backoff`], doubling, capped). Connecting and
//! losing the metadata service are logged once per change, not on every
//! attempt.
//!
//! Reports. The first one after start is `full`: the whole inventory in
//! `added`. Later ones carry the chunks stored since the previous report
//! ([`ChunkStore::take_added_since_last`]) and those lost or deleted since
//! ([`ChunkStore::take_lost`], plus the chunks this loop dropped on the
//! leader's orders). A delta cannot be resent once taken, so after any
//! failed report the next one is full again; so is the report after an
//! answer with `full_report_wanted`, sent at once. No message carries more
//! than [`MAX_HASHES_PER_MESSAGE`] hashes (lost plus added): a larger report
//! goes out as several messages, only the first of them `full` (the leader
//! resets this server's inventory on it and the non-full ones that follow
//! add the rest); if any of them fails the whole full report is sent again.
//!
//! Orders. Fetch orders are handed to the [`Fetcher`] (background copies,
//! bounded parallelism). Drop orders go through the [`DropSchedule`]: a
//! chunk is deleted only after the grace period, while the leader keeps
//! listing it and its latest answer is at most three report intervals old.
//! Deletions run on the blocking pool, one batch at a time, so the loop
//! never waits on the disk.

mod drops;
mod fetch;
mod link;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use toastyfs_client::retry::Backoff;
use toastyfs_client::transport::{SendError, Transport};
use toastyfs_proto::auth::Secret;
use toastyfs_proto::chunks::{ChunkOrders, ChunkReport, ChunkServerId, MAX_HASHES_PER_MESSAGE};
use toastyfs_proto::hash::ChunkHash;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::store::{ChunkStore, DeleteOutcome, Usage};

pub use drops::{DropSchedule, DropUpdate};
pub use fetch::{FetchError, Fetcher, MAX_QUEUED_FETCHES};
use link::Link;

pub use crate::limits::{DEFAULT_DROP_GRACE, DEFAULT_FETCH_PARALLELISM, DEFAULT_REPORT_INTERVAL};
use crate::limits::{
    FETCH_TIMEOUT, FIRST_BACKOFF, FRESH_ANSWER_INTERVALS, MAX_BACKOFF, REPORT_TIMEOUT,
};

/// How the loop reports and to whom.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub server: ChunkServerId,
    /// Address clients and peers use to reach this server's HTTP API.
    pub advertise: String,
    /// Metadata node addresses (`host:port`), tried in turn.
    pub meta: Vec<String>,
    pub report_interval: Duration,
    pub drop_grace: Duration,
    pub fetch_parallelism: usize,
    /// Signs reports and peer fetches (`None`: unsigned).
    pub secret: Option<Secret>,
    /// Where the revoked keys each answer lists go (the API's
    /// [`crate::access::AccessGate`]).
    pub revoked: Option<Arc<crate::access::RevokedKeys>>,
    /// The CA to reach the metadata nodes and peers with over TLS.
    pub tls: Option<toastyfs_client::tls::ClientTls>,
}

impl SyncConfig {
    /// A config with the default interval, grace and parallelism.
    pub fn new(server: ChunkServerId, advertise: String, meta: Vec<String>) -> SyncConfig {
        SyncConfig {
            server,
            advertise,
            meta,
            report_interval: DEFAULT_REPORT_INTERVAL,
            drop_grace: DEFAULT_DROP_GRACE,
            fetch_parallelism: DEFAULT_FETCH_PARALLELISM,
            secret: None,
            revoked: None,
            tls: None,
        }
    }
}

/// Why one report got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("no metadata node address was given")]
    NoAddresses,
    #[error("cannot encode the report: {0}")]
    Encode(#[source] toastyfs_proto::record::RecordError),
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Splits one logical report into messages of at most `max` hashes each
/// (lost first, then added). Only the first message keeps `full`; there is
/// always at least one message.
pub fn split_report(
    template: &ChunkReport,
    full: bool,
    added: Vec<ChunkHash>,
    lost: Vec<ChunkHash>,
    max: usize,
) -> Vec<ChunkReport> {
    let max = max.max(1);
    let mut added = added.into_iter().peekable();
    let mut lost = lost.into_iter().peekable();
    let mut reports = Vec::new();
    loop {
        let mut report = template.clone();
        report.full = full && reports.is_empty();
        report.lost = lost.by_ref().take(max).collect();
        report.added = added.by_ref().take(max - report.lost.len()).collect();
        reports.push(report);
        if added.peek().is_none() && lost.peek().is_none() {
            return reports;
        }
    }
}

/// The running loop. Dropping the handle stops it.
pub struct SyncHandle {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl SyncHandle {
    /// Notify this to report soon (at most one report per tenth of the
    /// interval): the API does after storing a chunk.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the sync loop.
pub fn spawn(store: Arc<ChunkStore>, config: SyncConfig) -> Result<SyncHandle, SyncError> {
    if config.meta.is_empty() {
        return Err(SyncError::NoAddresses);
    }
    let wake = Arc::new(Notify::new());
    let syncer = Syncer::new(store, config, Arc::clone(&wake));
    Ok(SyncHandle {
        wake,
        task: tokio::spawn(syncer.run()),
    })
}

/// What to do after one sync.
enum Next {
    /// The leader wants a full report at once.
    Now,
    /// Wait for the next interval (or an early wake-up).
    Later,
}

struct Syncer {
    store: Arc<ChunkStore>,
    config: SyncConfig,
    link: Link,
    /// The next report must be full (first report, or a delta was lost).
    need_full: bool,
    drops: Arc<Mutex<DropSchedule>>,
    deleter: Option<JoinHandle<Vec<ChunkHash>>>,
    /// Chunks deleted on the leader's orders, to report as lost.
    deleted: Vec<ChunkHash>,
    fetcher: Fetcher,
    wake: Arc<Notify>,
    backoff: Backoff,
    /// Failed rounds over every metadata node since the last answer.
    failed_rounds: u32,
    /// The store's acknowledgement clock when the latest report was sent.
    report_clock: u64,
    /// This run's number, drawn at start, and the last message number
    /// sent in it (see [`ChunkReport::seq`]).
    boot: u64,
    sent: u64,
}

impl Syncer {
    fn new(store: Arc<ChunkStore>, config: SyncConfig, wake: Arc<Notify>) -> Syncer {
        let transport = Transport::new(REPORT_TIMEOUT)
            .signed_with(config.secret.clone())
            .with_tls(config.tls.clone());
        let fetcher = Fetcher::new(
            Arc::clone(&store),
            transport.with_timeout(FETCH_TIMEOUT),
            config.advertise.clone(),
            config.fetch_parallelism,
            Arc::clone(&wake),
        );
        let freshness = config.report_interval * FRESH_ANSWER_INTERVALS;
        Syncer {
            link: Link::new(transport, config.meta.clone()),
            drops: Arc::new(Mutex::new(DropSchedule::new(config.drop_grace, freshness))),
            backoff: backoff_for(config.report_interval),
            failed_rounds: 0,
            report_clock: 0,
            boot: rand::random(),
            sent: 0,
            store,
            config,
            need_full: true,
            deleter: None,
            deleted: Vec::new(),
            fetcher,
            wake,
        }
    }

    async fn run(mut self) {
        loop {
            let next = self.sync_once().await;
            self.reap_deletions().await;
            self.start_deletions();
            match next {
                Ok(Next::Now) => {}
                Ok(Next::Later) => {
                    self.failed_rounds = 0;
                    self.wait(self.config.report_interval).await;
                }
                Err(_) => {
                    self.failed_rounds = self.failed_rounds.saturating_add(1);
                    tokio::time::sleep(self.backoff.delay(self.failed_rounds)).await
                }
            }
        }
    }

    /// Sleeps `interval`, or less when woken, though at least a tenth of it.
    async fn wait(&self, interval: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = self.wake.notified() => tokio::time::sleep(interval / 10).await,
        }
    }

    /// Sends one report (in as many messages as it takes) and applies the
    /// answers.
    async fn sync_once(&mut self) -> Result<Next, SyncError> {
        let full = self.need_full;
        // Read before the changes are taken: every upload acknowledged
        // later is newer than the drop orders this report's answer brings.
        self.report_clock = self.store.ack_clock();
        let (added, lost) = self.take_changes(full);
        let template = self.template().await;
        self.need_full = true;
        for mut message in split_report(&template, full, added, lost, MAX_HASHES_PER_MESSAGE) {
            self.sent += 1;
            message.seq = self.sent;
            let orders = self.link.send(&message).await?;
            let wanted = orders.full_report_wanted;
            self.apply(orders);
            if wanted {
                tracing::info!("the metadata leader asked for a full report");
                return Ok(if full { Next::Later } else { Next::Now });
            }
        }
        self.need_full = false;
        Ok(Next::Later)
    }

    /// What to report as added and lost. For a full report the pending delta
    /// is reset and the whole inventory sent instead.
    fn take_changes(&mut self, full: bool) -> (Vec<ChunkHash>, Vec<ChunkHash>) {
        let delta = self.store.take_added_since_last();
        // A chunk uploaded again is wanted again: its pending drop, if any,
        // is cancelled (a later drop order starts a new grace period).
        {
            let mut drops = lock(&self.drops);
            for hash in &delta {
                drops.forget(*hash);
            }
        }
        let added = if full { self.store.inventory() } else { delta };
        let mut lost = self.store.take_lost();
        lost.append(&mut self.deleted);
        lost.sort_unstable();
        lost.dedup();
        (added, still_missing(&self.store, lost))
    }

    /// A report with this server's identity, usage and pending drops, and
    /// no added or lost hashes.
    async fn template(&self) -> ChunkReport {
        let usage = match self.store.blocking(|s| s.usage()).await {
            Ok(usage) => usage,
            Err(e) => {
                tracing::warn!(error = %e, "cannot measure free space; reporting none");
                fallback_usage(&self.store)
            }
        };
        ChunkReport {
            server: self.config.server,
            addr: self.config.advertise.clone(),
            full: false,
            added: Vec::new(),
            lost: Vec::new(),
            chunks: usage.chunks,
            used_bytes: usage.bytes,
            free_bytes: usage.free_bytes,
            dropping: lock(&self.drops).pending_hashes(),
            boot: self.boot,
            seq: 0,
        }
    }

    fn apply(&mut self, orders: ChunkOrders) {
        if let Some(revoked) = &self.config.revoked {
            revoked.note(&orders.revoked_keys);
        }
        let update = lock(&self.drops).update(&orders.drop, Instant::now(), self.report_clock);
        for hash in &update.cancelled {
            tracing::debug!(%hash, "the leader no longer lists a pending drop; keeping the chunk");
        }
        if update.added > 0 {
            tracing::debug!(
                new = update.added,
                "the leader listed chunks to drop after the grace period"
            );
        }
        if !orders.fetch.is_empty() {
            let started = self.fetcher.start(orders.fetch);
            tracing::debug!(started, queued = self.fetcher.queued(), "fetch orders");
        }
    }

    /// Collects the outcome of a finished deletion batch.
    async fn reap_deletions(&mut self) {
        if !self.deleter.as_ref().is_some_and(JoinHandle::is_finished) {
            return;
        }
        if let Some(task) = self.deleter.take() {
            match task.await {
                Ok(mut deleted) => self.deleted.append(&mut deleted),
                Err(e) => tracing::error!(error = %e, "a chunk deletion task failed"),
            }
        }
    }

    /// Starts deleting the chunks whose drop is due, unless a batch runs.
    fn start_deletions(&mut self) {
        if self.deleter.is_some() {
            return;
        }
        let due = lock(&self.drops).due(Instant::now());
        if due.is_empty() {
            return;
        }
        let store = Arc::clone(&self.store);
        let drops = Arc::clone(&self.drops);
        self.deleter = Some(tokio::task::spawn_blocking(move || {
            delete_due(&store, &drops, due)
        }));
    }
}

/// The chunks of `lost` the store does not hold now: one deleted (or
/// found corrupt) and then stored again before this report is held, and
/// reporting it lost would make the leader forget a good copy.
fn still_missing(store: &ChunkStore, lost: Vec<ChunkHash>) -> Vec<ChunkHash> {
    let held = store.contains(&lost);
    lost.into_iter()
        .zip(held)
        .filter(|(_, held)| !held)
        .map(|(hash, _)| hash)
        .collect()
}

fn lock(drops: &Mutex<DropSchedule>) -> MutexGuard<'_, DropSchedule> {
    drops.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Usage from the inventory alone, when free space cannot be measured.
fn fallback_usage(store: &ChunkStore) -> Usage {
    Usage {
        chunks: store.inventory().len() as u64,
        bytes: 0,
        capacity_bytes: None,
        free_bytes: 0,
    }
}

/// Deletes each hash that is still due (the leader may have cancelled it
/// since the batch was chosen) and not uploaded again since its drop was
/// ordered; returns those that were here and are gone.
fn delete_due(
    store: &ChunkStore,
    drops: &Mutex<DropSchedule>,
    due: Vec<(ChunkHash, u64)>,
) -> Vec<ChunkHash> {
    let mut deleted = Vec::new();
    for (hash, clock) in due {
        if !lock(drops).is_due(hash, Instant::now()) {
            continue;
        }
        match store.delete_unless_acked_after(hash, clock) {
            Ok(outcome) => {
                lock(drops).forget(hash);
                match outcome {
                    DeleteOutcome::Deleted => {
                        tracing::info!(%hash, "deleted a chunk the leader dropped");
                        deleted.push(hash);
                    }
                    DeleteOutcome::AckedSince => {
                        tracing::debug!(%hash, "kept a dropped chunk uploaded again since the order")
                    }
                    DeleteOutcome::Absent => {}
                }
            }
            Err(e) => {
                tracing::warn!(%hash, error = %e, "cannot delete a dropped chunk; will retry")
            }
        }
    }
    deleted
}

/// The wait between failed rounds over every metadata node: short at
/// first (after an election every server must re-register quickly),
/// never shorter than needed to keep up with the report interval.
fn backoff_for(report_interval: Duration) -> Backoff {
    Backoff {
        first: FIRST_BACKOFF.min(report_interval),
        max: MAX_BACKOFF.max(report_interval),
    }
}

#[cfg(test)]
mod tests;
