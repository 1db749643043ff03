//! The sync loop with the metadata leader: reports what this server holds,
//! and carries out the orders each answer brings.
//!
//! Every `report_interval` (sooner after a chunk is stored, see
//! [`SyncHandle::waker`]) the loop sends a [`ChunkReport`] record as
//! `POST http://{meta}/v1/chunks/report` and gets a [`ChunkOrders`] record
//! back. Any metadata node will do (followers forward to the leader); a
//! refusal (non-200, e.g. 503 while there is no leader) or a connection
//! failure moves on to the next address of the list, and when every address
//! failed the loop backs off (doubling, capped). Connecting and losing the
//! metadata service are logged once per change, not on every attempt.
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

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use toastyfs_proto::chunks::{ChunkOrders, ChunkReport, ChunkServerId, MAX_HASHES_PER_MESSAGE};
use toastyfs_proto::hash::ChunkHash;
use toastyfs_proto::record::{self, RecordError};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::store::{ChunkStore, Usage};

pub use drops::{DropSchedule, DropUpdate};
pub use fetch::{FetchError, Fetcher, MAX_QUEUED_FETCHES};

/// Path of the report endpoint on every metadata node.
pub const REPORT_PATH: &str = "/v1/chunks/report";
/// Content type of record bodies.
pub const RECORD_CONTENT_TYPE: &str = "application/x-toastyfs-record";
/// Default time between reports.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Default delay between the leader's drop order and the deletion.
pub const DEFAULT_DROP_GRACE: Duration = Duration::from_secs(30 * 60);
/// Default number of healing copies running at once.
pub const DEFAULT_FETCH_PARALLELISM: usize = 4;
/// A drop order is acted on only while the latest answer is at most this
/// many report intervals old.
const FRESH_ANSWER_INTERVALS: u32 = 3;
/// Bound on one report round trip to one metadata node.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one healing copy from one source.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer accepted from a metadata node: the largest record body
/// plus its header, with room to spare.
const MAX_ANSWER_BYTES: usize = (16 << 20) + 4096;
/// First wait after every metadata node failed; doubles up to the cap (kept
/// short: after a leader election every server must re-register quickly).
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

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
        }
    }
}

/// Why one report got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("no metadata node address was given")]
    NoAddresses,
    #[error("cannot encode the report: {0}")]
    Encode(#[source] RecordError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("cannot reach {addr}: {source}")]
    Http {
        addr: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{addr} refused the report ({status}): {message}")]
    Refused {
        addr: String,
        status: StatusCode,
        message: String,
    },
    #[error("reading the answer of {addr}: {source}")]
    Body {
        addr: String,
        #[source]
        source: BodyError,
    },
    #[error("{addr} sent an undecodable answer: {source}")]
    BadAnswer {
        addr: String,
        #[source]
        source: RecordError,
    },
}

/// Why a response body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body exceeds {max} bytes")]
    TooLarge { max: usize },
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// A response body of at most `max` bytes.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge { max });
    }
    let mut body = Vec::new();
    while let Some(piece) = response.chunk().await? {
        if body.len() + piece.len() > max {
            return Err(BodyError::TooLarge { max });
        }
        body.extend_from_slice(&piece);
    }
    Ok(body)
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
    let syncer = Syncer::new(store, config, Arc::clone(&wake))?;
    Ok(SyncHandle {
        wake,
        task: tokio::spawn(syncer.run()),
    })
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, SyncError> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .build()
        .map_err(SyncError::Client)
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
}

impl Syncer {
    fn new(
        store: Arc<ChunkStore>,
        config: SyncConfig,
        wake: Arc<Notify>,
    ) -> Result<Syncer, SyncError> {
        let fetcher = Fetcher::new(
            Arc::clone(&store),
            http_client(FETCH_TIMEOUT)?,
            config.advertise.clone(),
            config.fetch_parallelism,
            Arc::clone(&wake),
        );
        let freshness = config.report_interval * FRESH_ANSWER_INTERVALS;
        Ok(Syncer {
            link: Link::new(http_client(REPORT_TIMEOUT)?, config.meta.clone()),
            drops: Arc::new(Mutex::new(DropSchedule::new(config.drop_grace, freshness))),
            backoff: Backoff::new(config.report_interval),
            store,
            config,
            need_full: true,
            deleter: None,
            deleted: Vec::new(),
            fetcher,
            wake,
        })
    }

    async fn run(mut self) {
        loop {
            let next = self.sync_once().await;
            self.reap_deletions().await;
            self.start_deletions();
            match next {
                Ok(Next::Now) => {}
                Ok(Next::Later) => {
                    self.backoff.reset();
                    self.wait(self.config.report_interval).await;
                }
                Err(_) => tokio::time::sleep(self.backoff.next()).await,
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
        let (added, lost) = self.take_changes(full);
        let template = self.template().await;
        self.need_full = true;
        for message in split_report(&template, full, added, lost, MAX_HASHES_PER_MESSAGE) {
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
        (added, lost)
    }

    /// A report with this server's identity and usage and no hashes.
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
        }
    }

    fn apply(&mut self, orders: ChunkOrders) {
        let update = lock(&self.drops).update(&orders.drop, Instant::now());
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
/// since the batch was chosen); returns those that were here and are gone.
fn delete_due(
    store: &ChunkStore,
    drops: &Mutex<DropSchedule>,
    due: Vec<ChunkHash>,
) -> Vec<ChunkHash> {
    let mut deleted = Vec::new();
    for hash in due {
        if !lock(drops).is_due(hash, Instant::now()) {
            continue;
        }
        match store.delete(hash) {
            Ok(was_here) => {
                lock(drops).forget(hash);
                if was_here {
                    tracing::info!(%hash, "deleted a chunk the leader dropped");
                    deleted.push(hash);
                }
            }
            Err(e) => {
                tracing::warn!(%hash, error = %e, "cannot delete a dropped chunk; will retry")
            }
        }
    }
    deleted
}

/// Exponential backoff between failed rounds over every metadata node.
#[derive(Debug)]
struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(report_interval: Duration) -> Backoff {
        let first = FIRST_BACKOFF.min(report_interval);
        Backoff {
            first,
            next: first,
            max: MAX_BACKOFF.max(report_interval),
        }
    }

    fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    fn reset(&mut self) {
        self.next = self.first;
    }
}

/// The metadata nodes and which one answered last; logs changes of state.
struct Link {
    http: reqwest::Client,
    addrs: Vec<String>,
    current: usize,
    /// The node that answered the latest report; `None` when it failed.
    connected: Option<String>,
    /// Whether the current failure streak was already logged.
    failure_logged: bool,
}

impl Link {
    fn new(http: reqwest::Client, addrs: Vec<String>) -> Link {
        Link {
            http,
            addrs,
            current: 0,
            connected: None,
            failure_logged: false,
        }
    }

    /// Sends `report` to the node that answered last, else to each of the
    /// others in turn.
    async fn send(&mut self, report: &ChunkReport) -> Result<ChunkOrders, SyncError> {
        let body = Bytes::from(record::encode(report).map_err(SyncError::Encode)?);
        let mut last_error = SyncError::NoAddresses;
        for step in 0..self.addrs.len() {
            let index = (self.current + step) % self.addrs.len();
            match post(&self.http, &self.addrs[index], body.clone()).await {
                Ok(orders) => {
                    self.on_answer(index);
                    return Ok(orders);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "metadata node did not take the report");
                    last_error = e;
                }
            }
        }
        self.on_failure(&last_error);
        Err(last_error)
    }

    fn on_answer(&mut self, index: usize) {
        self.current = index;
        let addr = &self.addrs[index];
        if self.connected.as_ref() != Some(addr) {
            tracing::info!(meta = %addr, "reporting to the metadata service");
            self.connected = Some(addr.clone());
        }
        self.failure_logged = false;
    }

    fn on_failure(&mut self, error: &SyncError) {
        if let Some(addr) = self.connected.take() {
            tracing::warn!(meta = %addr, %error, "lost the metadata service; retrying every node with backoff");
        } else if !self.failure_logged {
            tracing::warn!(%error, "cannot reach the metadata service; retrying every node with backoff");
        }
        self.failure_logged = true;
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: String,
}

/// One report to one metadata node.
async fn post(http: &reqwest::Client, addr: &str, body: Bytes) -> Result<ChunkOrders, SyncError> {
    let response = http
        .post(format!("http://{addr}{REPORT_PATH}"))
        .header(CONTENT_TYPE, RECORD_CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .map_err(|source| SyncError::Http {
            addr: addr.to_owned(),
            source,
        })?;
    let status = response.status();
    let bytes = read_body(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|source| SyncError::Body {
            addr: addr.to_owned(),
            source,
        })?;
    if status != StatusCode::OK {
        return Err(refused(addr, status, &bytes));
    }
    record::decode(&bytes).map_err(|source| SyncError::BadAnswer {
        addr: addr.to_owned(),
        source,
    })
}

/// A non-200 answer, with the JSON error message if there is one.
fn refused(addr: &str, status: StatusCode, body: &[u8]) -> SyncError {
    let message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => body.error,
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    };
    SyncError::Refused {
        addr: addr.to_owned(),
        status,
        message,
    }
}

#[cfg(test)]
mod tests;
