//! The leader's soft state about chunks: which chunk server holds which
//! hash, how full each server is, and the replication manager that turns
//! this into orders (copy a chunk here, drop that one there) and into
//! placements for new chunks.
//!
//! None of this is in the Raft log. A node that becomes leader starts with
//! an empty map and rebuilds it from the chunk servers' next reports (each
//! is asked for a full inventory); it orders no deletion until it has led
//! for at least one server timeout, so every live server has reported.
//!
//! The map is deterministic given its inputs: time is passed in as
//! `Instant`s and "is this chunk referenced?" as a closure over the
//! namespace store, so the replication rules are unit-tested without a
//! cluster. Every answer to a report carries the server's complete current
//! drop set: a chunk missing from it is no longer to be dropped (the chunk
//! server cancels its pending deletion).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use toastyfs_proto::chunks::{
    ChunkClusterStatus, ChunkOrders, ChunkReport, ChunkServerId, ChunkServerInfo, FetchOrder,
    LocateReply, Placement, PlacementReply, MAX_HASHES_PER_MESSAGE,
};
use toastyfs_proto::ChunkHash;

/// Servers with less free space than this get no new chunks.
const MIN_FREE_BYTES: u64 = 1 << 20;

/// How the replication manager behaves.
#[derive(Debug, Clone)]
pub struct ChunkMapConfig {
    /// Copies every referenced chunk should have: the cluster setting, kept
    /// up to date from the namespace state by [`crate::replication`].
    pub replication_factor: u32,
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
            replication_factor: 3,
            server_timeout: Duration::from_secs(20),
            fetch_timeout: Duration::from_secs(60),
            placement_ttl: Duration::from_secs(120),
        }
    }
}

/// Why the leader cannot place or locate chunks right now; the client
/// should retry shortly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("this leader is new and has not heard from enough chunk servers yet; retry shortly")]
    Warming,
    #[error("no chunk server with free space is up to take new chunks")]
    NoServers,
}

/// What the leader knows of one chunk server.
#[derive(Debug)]
struct Server {
    addr: String,
    up: bool,
    last_report: Instant,
    chunks: BTreeSet<ChunkHash>,
    used_bytes: u64,
    free_bytes: u64,
    /// Chunks this server should drop (recomputed by every scan).
    drops: BTreeSet<ChunkHash>,
    /// Copies ordered here, not yet confirmed, with when they were ordered.
    fetching: BTreeMap<ChunkHash, FetchOrder>,
    ordered_at: BTreeMap<ChunkHash, Instant>,
}

/// What one replication scan found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanSummary {
    pub chunks: u64,
    pub under_replicated: u64,
    pub over_replicated: u64,
    pub garbage: u64,
    pub copies_ordered: u64,
}

/// A server that changed state during a scan or a report, for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    Registered { server: ChunkServerId, addr: String },
    Down { server: ChunkServerId, addr: String },
}

/// The leader's map of chunk locations and its replication manager.
#[derive(Debug)]
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

    /// Withdraws every drop order: this node could not confirm it still
    /// leads, so its view of the reference counts may be stale.
    pub fn withdraw_drops(&mut self) {
        for server in self.servers.values_mut() {
            server.drops.clear();
        }
    }

    /// Follows the cluster setting (read from the namespace state).
    pub fn set_replication_factor(&mut self, factor: u32) {
        self.config.replication_factor = factor.max(1);
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

    /// A new leader that may not have heard from every chunk server yet:
    /// it has led for less than a server timeout and knows fewer servers
    /// than the replication factor.
    fn warming(&self, now: Instant) -> bool {
        !self.may_order_drops(now) && self.servers_up() < self.config.replication_factor as usize
    }

    /// Takes a chunk server's report and answers with its orders.
    pub fn report(
        &mut self,
        report: ChunkReport,
        now: Instant,
    ) -> (ChunkOrders, Option<ServerEvent>) {
        let id = report.server;
        let known_up = self.servers.get(&id).is_some_and(|s| s.up);
        if !report.full && !known_up {
            let orders = ChunkOrders {
                fetch: vec![],
                drop: vec![],
                full_report_wanted: true,
            };
            return (orders, None);
        }
        let event = (!known_up).then(|| ServerEvent::Registered {
            server: id,
            addr: report.addr.clone(),
        });
        if report.full {
            self.forget_holdings(id);
        }
        let server = self.servers.entry(id).or_insert_with(|| Server {
            addr: report.addr.clone(),
            up: true,
            last_report: now,
            chunks: BTreeSet::new(),
            used_bytes: 0,
            free_bytes: 0,
            drops: BTreeSet::new(),
            fetching: BTreeMap::new(),
            ordered_at: BTreeMap::new(),
        });
        server.addr = report.addr;
        server.up = true;
        server.last_report = now;
        server.used_bytes = report.used_bytes;
        server.free_bytes = report.free_bytes;
        for hash in &report.lost {
            server.chunks.remove(hash);
            server.drops.remove(hash);
        }
        for hash in &report.added {
            server.chunks.insert(*hash);
            server.fetching.remove(hash);
            server.ordered_at.remove(hash);
        }
        for hash in &report.lost {
            remove_holder(&mut self.holders, hash, id);
        }
        // Placements stay until they expire even once reported: until then
        // the write that placed the chunk may still commit it.
        for hash in report.added {
            self.holders.entry(hash).or_default().insert(id);
        }
        (self.orders_for(id), event)
    }

    fn orders_for(&self, id: ChunkServerId) -> ChunkOrders {
        let Some(server) = self.servers.get(&id) else {
            return ChunkOrders {
                fetch: vec![],
                drop: vec![],
                full_report_wanted: true,
            };
        };
        ChunkOrders {
            fetch: server
                .fetching
                .values()
                .take(MAX_HASHES_PER_MESSAGE)
                .cloned()
                .collect(),
            drop: server
                .drops
                .iter()
                .take(MAX_HASHES_PER_MESSAGE)
                .copied()
                .collect(),
            full_report_wanted: false,
        }
    }

    /// Removes every holding of `id` from the location index.
    fn forget_holdings(&mut self, id: ChunkServerId) {
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        for hash in std::mem::take(&mut server.chunks) {
            remove_holder(&mut self.holders, &hash, id);
        }
        server.drops.clear();
    }

    fn is_up(&self, id: &ChunkServerId) -> bool {
        self.servers.get(id).is_some_and(|s| s.up)
    }

    /// Marks silent servers down, expires stale placements and fetch
    /// orders, and recomputes copies to make and chunks to drop.
    /// `referenced` says whether the namespace still references a chunk.
    pub fn scan<E>(
        &mut self,
        now: Instant,
        mut referenced: impl FnMut(&ChunkHash) -> Result<bool, E>,
    ) -> Result<(ScanSummary, Vec<ServerEvent>), E> {
        let events = self.mark_down(now);
        self.expire(now);
        let may_drop = self.may_order_drops(now);
        let mut summary = ScanSummary::default();
        let mut drops: BTreeMap<ChunkServerId, BTreeSet<ChunkHash>> = BTreeMap::new();
        let hashes: Vec<ChunkHash> = self.holders.keys().copied().collect();
        for hash in hashes {
            summary.chunks += 1;
            if !referenced(&hash)? {
                if self.placed.contains_key(&hash) || !may_drop {
                    continue;
                }
                summary.garbage += 1;
                for id in &self.holders[&hash] {
                    drops.entry(*id).or_default().insert(hash);
                }
                continue;
            }
            let live = self.holders[&hash].len();
            let rf = self.config.replication_factor as usize;
            if live < rf {
                summary.under_replicated += 1;
                summary.copies_ordered += self.order_copies(hash, rf - live, now);
            } else if live > rf && may_drop {
                summary.over_replicated += 1;
                // Always the highest ids: a stable choice, so repeated scans
                // keep asking the same servers and no two lists race.
                for id in self.holders[&hash].iter().rev().take(live - rf) {
                    drops.entry(*id).or_default().insert(hash);
                }
            }
        }
        for (id, server) in self.servers.iter_mut() {
            server.drops = drops.remove(id).unwrap_or_default();
        }
        self.last_scan = summary;
        Ok((summary, events))
    }

    fn mark_down(&mut self, now: Instant) -> Vec<ServerEvent> {
        let timeout = self.config.server_timeout;
        let silent: Vec<ChunkServerId> = self
            .servers
            .iter()
            .filter(|(_, s)| s.up && now.duration_since(s.last_report) > timeout)
            .map(|(id, _)| *id)
            .collect();
        let mut events = Vec::new();
        for id in silent {
            self.forget_holdings(id);
            if let Some(server) = self.servers.get_mut(&id) {
                server.up = false;
                server.fetching.clear();
                server.ordered_at.clear();
                events.push(ServerEvent::Down {
                    server: id,
                    addr: server.addr.clone(),
                });
            }
        }
        events
    }

    fn expire(&mut self, now: Instant) {
        let ttl = self.config.placement_ttl;
        self.placed
            .retain(|_, (_, at)| now.duration_since(*at) <= ttl);
        let timeout = self.config.fetch_timeout;
        for server in self.servers.values_mut() {
            let stale: Vec<ChunkHash> = server
                .ordered_at
                .iter()
                .filter(|(_, at)| now.duration_since(**at) > timeout)
                .map(|(h, _)| *h)
                .collect();
            for hash in stale {
                server.ordered_at.remove(&hash);
                server.fetching.remove(&hash);
            }
        }
    }

    /// Orders up to `missing` new copies of `hash` on servers that neither
    /// hold nor are already fetching it. Returns how many were ordered.
    fn order_copies(&mut self, hash: ChunkHash, missing: usize, now: Instant) -> u64 {
        let holders = &self.holders[&hash];
        let in_flight = self
            .servers
            .values()
            .filter(|s| s.up && s.fetching.contains_key(&hash))
            .count();
        let wanted = missing.saturating_sub(in_flight);
        if wanted == 0 {
            return 0;
        }
        let from: Vec<String> = holders
            .iter()
            .filter_map(|id| self.servers.get(id).map(|s| s.addr.clone()))
            .collect();
        let excluded: BTreeSet<ChunkServerId> = holders
            .iter()
            .copied()
            .chain(
                self.servers
                    .iter()
                    .filter(|(_, s)| s.fetching.contains_key(&hash))
                    .map(|(id, _)| *id),
            )
            .collect();
        let targets = self.rank_servers(&hash, &excluded, wanted);
        for id in &targets {
            if let Some(server) = self.servers.get_mut(id) {
                server.fetching.insert(
                    hash,
                    FetchOrder {
                        hash,
                        from: from.clone(),
                    },
                );
                server.ordered_at.insert(hash, now);
            }
        }
        targets.len() as u64
    }

    /// Up to `n` up servers not in `excluded` with room, best first:
    /// weighted rendezvous hashing, so chunks spread over all servers and
    /// servers with more free space get proportionally more.
    fn rank_servers(
        &self,
        hash: &ChunkHash,
        excluded: &BTreeSet<ChunkServerId>,
        n: usize,
    ) -> Vec<ChunkServerId> {
        let mut scored: Vec<(f64, ChunkServerId)> = self
            .servers
            .iter()
            .filter(|(id, s)| s.up && s.free_bytes >= MIN_FREE_BYTES && !excluded.contains(id))
            .map(|(id, s)| (rendezvous_score(hash, *id, s.free_bytes), *id))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(n).map(|(_, id)| id).collect()
    }

    /// Where new chunks go, and which the cluster already holds. A chunk
    /// whose only copies are being dropped as garbage is not "present":
    /// the client uploads it again, which renews it on the holder.
    pub fn place(
        &mut self,
        hashes: &[ChunkHash],
        now: Instant,
    ) -> Result<PlacementReply, NotReady> {
        if self.warming(now) {
            return Err(NotReady::Warming);
        }
        let rf = self.config.replication_factor as usize;
        let placements: Vec<Placement> = hashes
            .iter()
            .map(|hash| {
                let live: Vec<ChunkServerId> = self
                    .holders
                    .get(hash)
                    .map(|h| h.iter().copied().collect())
                    .unwrap_or_default();
                let doomed = live
                    .iter()
                    .all(|id| self.servers.get(id).is_some_and(|s| s.drops.contains(hash)));
                if !live.is_empty() && !doomed {
                    return Placement {
                        hash: *hash,
                        present: true,
                        targets: vec![],
                    };
                }
                let mut targets = live;
                let excluded = targets.iter().copied().collect();
                let fresh = rf.saturating_sub(targets.len());
                targets.extend(self.rank_servers(hash, &excluded, fresh));
                Placement {
                    hash: *hash,
                    present: false,
                    targets: self.addrs(&targets),
                }
            })
            .collect();
        if placements
            .iter()
            .any(|p| !p.present && p.targets.is_empty())
        {
            return Err(NotReady::NoServers);
        }
        for p in placements.iter().filter(|p| !p.present) {
            let ids = self.ids_of(&p.targets);
            self.placed.insert(p.hash, (ids, now));
        }
        Ok(PlacementReply { placements })
    }

    fn ids_of(&self, addrs: &[String]) -> Vec<ChunkServerId> {
        addrs
            .iter()
            .filter_map(|a| {
                self.servers
                    .iter()
                    .find(|(_, s)| s.up && &s.addr == a)
                    .map(|(id, _)| *id)
            })
            .collect()
    }

    fn addrs(&self, ids: &[ChunkServerId]) -> Vec<String> {
        ids.iter()
            .filter_map(|id| self.servers.get(id).map(|s| s.addr.clone()))
            .collect()
    }

    /// Who holds each chunk: reported live holders first, then servers a
    /// recent placement sent it to (their report may not have arrived yet).
    /// A new leader that knows no holder of some chunk answers `Warming`
    /// rather than "nobody has it".
    pub fn locate(&self, hashes: &[ChunkHash], now: Instant) -> Result<LocateReply, NotReady> {
        let holders: Vec<Vec<String>> = hashes
            .iter()
            .map(|hash| {
                let mut ids: Vec<ChunkServerId> = self
                    .holders
                    .get(hash)
                    .map(|h| h.iter().copied().collect())
                    .unwrap_or_default();
                rotate_for(hash, &mut ids);
                if let Some((placed, _)) = self.placed.get(hash) {
                    for id in placed {
                        if self.is_up(id) && !ids.contains(id) {
                            ids.push(*id);
                        }
                    }
                }
                self.addrs(&ids)
            })
            .collect();
        if self.warming(now) && holders.iter().any(Vec::is_empty) {
            return Err(NotReady::Warming);
        }
        Ok(LocateReply { holders })
    }

    /// Whether the garbage record of `hash` may be forgotten: this leader
    /// has heard from every server, none holds it, and no recent placement
    /// handed it out.
    pub fn may_forget(&self, hash: &ChunkHash, now: Instant) -> bool {
        self.may_order_drops(now) && self.holder_count(hash) == 0 && !self.placed.contains_key(hash)
    }

    /// Live holders of one chunk (for tests and status).
    pub fn holder_count(&self, hash: &ChunkHash) -> usize {
        self.holders.get(hash).map_or(0, |h| h.len())
    }

    /// The chunk side of `cluster status`; `lost` is counted by the caller
    /// (it needs the namespace).
    pub fn status(&self, now: Instant, lost: u64) -> ChunkClusterStatus {
        ChunkClusterStatus {
            servers: self
                .servers
                .iter()
                .map(|(id, s)| ChunkServerInfo {
                    server: *id,
                    addr: s.addr.clone(),
                    up: s.up,
                    chunks: s.chunks.len() as u64,
                    used_bytes: s.used_bytes,
                    free_bytes: s.free_bytes,
                    last_report_ms: now.duration_since(s.last_report).as_millis() as u64,
                })
                .collect(),
            replication_factor: self.config.replication_factor,
            under_replicated: self.last_scan.under_replicated,
            lost,
        }
    }

    pub fn last_scan(&self) -> ScanSummary {
        self.last_scan
    }

    pub fn servers_up(&self) -> usize {
        self.servers.values().filter(|s| s.up).count()
    }
}

fn remove_holder(
    holders: &mut BTreeMap<ChunkHash, BTreeSet<ChunkServerId>>,
    hash: &ChunkHash,
    id: ChunkServerId,
) {
    if let Some(set) = holders.get_mut(hash) {
        set.remove(&id);
        if set.is_empty() {
            holders.remove(hash);
        }
    }
}

/// A pseudo-random number in (0, 1] from (chunk, server).
fn unit_hash(hash: &ChunkHash, id: ChunkServerId) -> f64 {
    let digest = Sha256::new()
        .chain_update(hash.as_bytes())
        .chain_update(id.0.to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    ((u64::from_be_bytes(bytes) >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

/// Weighted rendezvous score: higher wins; weight is free space.
fn rendezvous_score(hash: &ChunkHash, id: ChunkServerId, free_bytes: u64) -> f64 {
    let weight = (free_bytes as f64).max(1.0);
    -weight / unit_hash(hash, id).ln().min(-f64::MIN_POSITIVE)
}

/// Starts holder lists at a chunk-dependent position so reads spread.
fn rotate_for(hash: &ChunkHash, ids: &mut [ChunkServerId]) {
    if ids.len() > 1 {
        let shift = hash.as_bytes()[0] as usize % ids.len();
        ids.rotate_left(shift);
    }
}

#[cfg(test)]
mod tests;
