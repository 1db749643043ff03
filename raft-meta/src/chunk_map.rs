//! The leader's soft state about chunks: which chunk server holds which
//! hash, how full each server is, and the replication manager that turns
//! this into orders (copy a chunk here, drop that one there) and into
//! placements for new chunks.
//!
//! None of this is in the Raft log, but no deletion is decided here: only
//! chunks the log condemned are dropped (besides extra copies of
//! referenced ones), and a placement answers "present" only for chunks a
//! file references. A node that becomes leader starts with an empty map
//! and rebuilds it from the chunk servers' next reports (each is asked for
//! a full inventory); it orders no deletion until it has led for at least
//! one server timeout, so every live server has reported.
//!
//! The map is deterministic given its inputs: time is passed in as
//! `Instant`s and "is this chunk referenced or condemned?" as a closure
//! over the namespace store, so the replication rules are unit-tested without a
//! cluster. Every answer to a report carries the server's complete current
//! drop set: a chunk missing from it is no longer to be dropped (the chunk
//! server cancels its pending deletion).
//!
//! This file owns the map type, its configuration and the state the other
//! parts share; `reports.rs` takes chunk server reports (registration,
//! liveness, orders), `scan.rs` is the replication scan (under-replication,
//! fetch and drop orders, garbage) and `placement.rs` places new chunks and
//! locates existing ones, `health.rs` says how many copies a chunk has.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use toastyfs_proto::chunks::{ChunkServerId, FetchOrder};
use toastyfs_proto::cluster::{ChunkClusterStatus, ChunkServerInfo};
use toastyfs_proto::namespace::ClusterSettings;
use toastyfs_proto::ChunkHash;

mod health;
mod placement;
mod reports;
mod scan;

pub use health::HealthCounts;
pub use placement::{NotReady, PlaceError};
pub use reports::ServerEvent;
pub use scan::{Collection, ScanOutcome, ScanPass, ScanSummary};

use crate::limits::{
    DEFAULT_FETCH_TIMEOUT, DEFAULT_PLACEMENT_TTL, DEFAULT_REPLICATION_FACTOR,
    DEFAULT_SERVER_TIMEOUT,
};

/// How the replication manager behaves.
#[derive(Debug, Clone, Hash)]
pub struct ChunkMapConfig {
    /// Copies every referenced chunk should have: the cluster setting, kept
    /// up to date from the namespace state by [`crate::replication`].
    pub replication_factor: u32,
    /// Copies a write must have stored before it commits (the cluster
    /// setting `min_copies` capped at the replication factor).
    pub copies_to_acknowledge: u32,
    /// A server that has not reported for this long is down.
    pub server_timeout: Duration,
    /// A fetch order not confirmed by a report within this is re-issued.
    pub fetch_timeout: Duration,
    /// A placement not confirmed by a report within this is forgotten.
    pub placement_ttl: Duration,
}

impl Default for ChunkMapConfig {
    fn default() -> Self {
        ChunkMapConfig {
            replication_factor: DEFAULT_REPLICATION_FACTOR,
            copies_to_acknowledge: ClusterSettings::default().copies_to_acknowledge(),
            server_timeout: DEFAULT_SERVER_TIMEOUT,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            placement_ttl: DEFAULT_PLACEMENT_TTL,
        }
    }
}

/// What the leader knows of one chunk server.
#[derive(Debug, Clone, Hash)]
struct Server {
    addr: String,
    up: bool,
    last_report: Instant,
    chunks: BTreeSet<ChunkHash>,
    used_bytes: u64,
    free_bytes: u64,
    /// Chunks this server should drop (recomputed by the scan, a page of
    /// hashes at a time).
    drops: BTreeSet<ChunkHash>,
    /// The drops among `drops` of extra copies of referenced chunks:
    /// withdrawn as soon as any copy of the chunk is lost or its holder
    /// goes down, since the copies counted when it was chosen may be gone.
    extra_drops: BTreeSet<ChunkHash>,
    /// Chunks its latest report says it has a pending drop of (on this
    /// leader's orders or on older ones).
    dropping: BTreeSet<ChunkHash>,
    /// Copies ordered here, not yet confirmed, with when they were ordered.
    fetching: BTreeMap<ChunkHash, FetchOrder>,
    ordered_at: BTreeMap<ChunkHash, Instant>,
    /// When it last reported a chunk lost (missing or corrupt): a suspect
    /// disk gives up its extra copies first.
    last_loss: Option<Instant>,
    /// The run (`boot`) and number (`seq`) of the newest numbered report
    /// message applied: an older one arriving late is answered, not applied.
    last_message: Option<(u64, u64)>,
}

impl Server {
    /// A server first heard of at `now`, holding nothing yet.
    fn new(addr: String, now: Instant) -> Server {
        Server {
            addr,
            up: true,
            last_report: now,
            chunks: BTreeSet::new(),
            used_bytes: 0,
            free_bytes: 0,
            drops: BTreeSet::new(),
            extra_drops: BTreeSet::new(),
            dropping: BTreeSet::new(),
            last_loss: None,
            fetching: BTreeMap::new(),
            ordered_at: BTreeMap::new(),
            last_message: None,
        }
    }
}

/// The leader's map of chunk locations and its replication manager.
#[derive(Debug, Clone, Hash)]
pub struct ChunkMap {
    config: ChunkMapConfig,
    /// The Raft term this map was built in; a new term starts afresh.
    term: u64,
    leading_since: Instant,
    servers: BTreeMap<ChunkServerId, Server>,
    /// Live (up) holders of each chunk.
    holders: BTreeMap<ChunkHash, BTreeSet<ChunkServerId>>,
    /// Placements handed to clients, not yet confirmed by a report.
    placed: BTreeMap<ChunkHash, (Vec<ChunkServerId>, Instant)>,
    last_scan: ScanSummary,
}

impl ChunkMap {
    pub fn new(config: ChunkMapConfig, term: u64, now: Instant) -> ChunkMap {
        ChunkMap {
            config,
            term,
            leading_since: now,
            servers: BTreeMap::new(),
            holders: BTreeMap::new(),
            placed: BTreeMap::new(),
            last_scan: ScanSummary::default(),
        }
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn config(&self) -> &ChunkMapConfig {
        &self.config
    }

    /// Follows the cluster setting (read from the namespace state).
    pub fn set_replication_factor(&mut self, factor: u32) {
        self.config.replication_factor = factor.max(1);
    }

    /// Follows the cluster settings: replication factor and the copies a
    /// write waits for.
    pub fn follow(&mut self, settings: &ClusterSettings) {
        self.set_replication_factor(settings.replication_factor);
        self.config.copies_to_acknowledge = settings.copies_to_acknowledge();
    }

    /// Forgets everything: this node leads in a new term (or no longer leads).
    pub fn reset(&mut self, term: u64, now: Instant) {
        *self = ChunkMap::new(self.config.clone(), term, now);
    }

    /// Deletions wait until every live server has had time to report to
    /// this leader.
    fn may_order_drops(&self, now: Instant) -> bool {
        now.duration_since(self.leading_since) >= self.config.server_timeout
    }

    fn is_up(&self, id: &ChunkServerId) -> bool {
        self.servers.get(id).is_some_and(|s| s.up)
    }

    /// The live holders of `hash` whose copy no order but this leader's
    /// threatens: their latest report names no pending drop of it, or
    /// only the one this leader ordered. A copy with a pending drop from
    /// an older order (a previous leader's, or one from before a pardon)
    /// may vanish at any moment, so it is neither kept on purpose nor
    /// dropped on purpose until a report shows the drop cancelled.
    fn steady_holders(&self, hash: &ChunkHash) -> Vec<ChunkServerId> {
        let Some(holders) = self.holders.get(hash) else {
            return Vec::new();
        };
        holders
            .iter()
            .copied()
            .filter(|id| {
                self.servers
                    .get(id)
                    .is_some_and(|s| !s.dropping.contains(hash) || s.drops.contains(hash))
            })
            .collect()
    }

    /// Live holders of one chunk (for tests and status).
    pub fn holder_count(&self, hash: &ChunkHash) -> usize {
        self.holders.get(hash).map_or(0, |h| h.len())
    }

    /// The chunk side of `cluster status`; the referenced chunks' health
    /// is counted by the caller (it needs the namespace).
    pub fn status(&self, now: Instant, counts: HealthCounts) -> ChunkClusterStatus {
        ChunkClusterStatus {
            servers: self
                .servers
                .iter()
                .map(|(id, s)| server_info(*id, s, now))
                .collect(),
            replication_factor: self.config.replication_factor,
            under_replicated: counts.under_replicated,
            lost: counts.lost,
            pending: counts.pending,
        }
    }

    pub fn last_scan(&self) -> ScanSummary {
        self.last_scan
    }

    pub fn servers_up(&self) -> usize {
        self.servers.values().filter(|s| s.up).count()
    }

    /// Servers this leader has heard of, up or down.
    pub fn servers_known(&self) -> usize {
        self.servers.len()
    }
}

/// One server's line of `cluster status`.
fn server_info(id: ChunkServerId, s: &Server, now: Instant) -> ChunkServerInfo {
    ChunkServerInfo {
        server: id,
        addr: s.addr.clone(),
        up: s.up,
        chunks: s.chunks.len() as u64,
        used_bytes: s.used_bytes,
        free_bytes: s.free_bytes,
        last_report_ms: now.duration_since(s.last_report).as_millis() as u64,
    }
}

#[cfg(test)]
mod tests;
