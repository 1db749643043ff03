//! The replication scan: expires stale placements and fetch orders, finds
//! under-replicated chunks and orders copies of them, recomputes every
//! server's drop set (extra copies of referenced chunks, and every copy of
//! condemned ones), and names the unreferenced chunks to condemn. It runs
//! a page of chunks at a time ([`ScanPass`]), so the map's lock is never
//! held for longer than one page, however many chunks there are. Also
//! what the scan loop asks besides: whether a condemned chunk's record may
//! be forgotten, and withdrawing drops when the lead is in doubt.
//!
//! Nothing is dropped because this map believes it unreferenced: only a
//! chunk the log condemned ([`Collection::Condemned`]) loses its copies.
//! A chunk that is held but neither referenced nor condemned is proposed
//! for condemnation once no recent placement protects it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::Instant;

use toastyfs_proto::chunks::{ChunkServerId, FetchOrder};
use toastyfs_proto::namespace::MAX_CHUNKS_PER_OP;
use toastyfs_proto::ChunkHash;

use super::{ChunkMap, ServerEvent};
use crate::limits::SUSPECT_FOR;

/// What the namespace says of a chunk the map knows of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// A file references it.
    Referenced,
    /// The log condemned it: its copies may be deleted.
    Condemned,
    /// Neither: an upload whose write has not committed (or never will).
    Unclaimed,
}

/// What one replication scan found and decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanOutcome {
    pub summary: ScanSummary,
    pub events: Vec<ServerEvent>,
    /// Unclaimed chunks to propose for condemnation (at most
    /// [`MAX_CHUNKS_PER_OP`]).
    pub condemn: Vec<ChunkHash>,
}

/// What one replication scan found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScanSummary {
    pub chunks: u64,
    pub under_replicated: u64,
    pub over_replicated: u64,
    /// Condemned chunks whose copies are being dropped.
    pub garbage: u64,
    pub copies_ordered: u64,
}

/// A replication scan in progress. The scan walks the chunks in hash
/// order a page at a time ([`ChunkMap::scan_page`]), so the map's lock is
/// held for one page, not for every chunk the cluster stores; this carries
/// what the pass has found so far from page to page.
#[derive(Debug, Clone, Default, Hash)]
pub struct ScanPass {
    /// The last chunk scanned; `None` before the first page.
    after: Option<ChunkHash>,
    summary: ScanSummary,
    events: Vec<ServerEvent>,
    condemn: Vec<ChunkHash>,
}

impl ScanPass {
    /// A pass that starts at the first chunk.
    pub fn new() -> ScanPass {
        ScanPass::default()
    }

    /// The servers marked down by its pages so far, taken out (for the
    /// log, as they happen).
    pub fn take_events(&mut self) -> Vec<ServerEvent> {
        std::mem::take(&mut self.events)
    }
}

/// What one page of a scan carries from chunk to chunk.
struct Page {
    now: Instant,
    /// Whether this leader may order deletions yet.
    may_drop: bool,
    /// Whether it may propose condemnations yet.
    may_condemn: bool,
    summary: ScanSummary,
    /// The drops this page decided, for chunks in its range only.
    drops: BTreeMap<ChunkServerId, BTreeSet<ChunkHash>>,
    /// Those of them that drop extra copies of referenced chunks.
    extra: BTreeMap<ChunkServerId, BTreeSet<ChunkHash>>,
    condemn: Vec<ChunkHash>,
}

impl Page {
    fn drop_from(&mut self, id: ChunkServerId, hash: ChunkHash) {
        self.drops.entry(id).or_default().insert(hash);
    }

    fn drop_extra_from(&mut self, id: ChunkServerId, hash: ChunkHash) {
        self.drop_from(id, hash);
        self.extra.entry(id).or_default().insert(hash);
    }
}

impl ChunkMap {
    /// One whole scan in a single call (one page of every chunk): for
    /// tests and the lifecycle check; a node scans page by page.
    pub fn scan<E>(
        &mut self,
        now: Instant,
        mut collection: impl FnMut(&ChunkHash) -> Result<Collection, E>,
    ) -> Result<ScanOutcome, E> {
        let mut pass = ScanPass::new();
        loop {
            if let Some(outcome) = self.scan_page(&mut pass, now, usize::MAX, &mut collection)? {
                return Ok(outcome);
            }
        }
    }

    /// Scans up to `limit` chunks after where `pass` left off, having first
    /// marked silent servers down and expired stale placements and fetch
    /// orders (work that grows with servers and orders in flight, not with
    /// the chunks stored), so a long pass notices a dead server as soon
    /// as a short one would: orders the
    /// copies they lack, recomputes which servers drop them, and notes the
    /// ones to condemn. `collection` says what the namespace (as of now,
    /// read under the same lock as the drop sets are written) says of a
    /// chunk. Returns the outcome once the pass has seen every chunk.
    ///
    /// A page replaces every server's drops in its own hash range (from
    /// just after the previous page's last chunk to its own last chunk,
    /// or to the end), so drops of chunks no longer held there are cleared
    /// too, and drops outside it stand as the last page over them left
    /// them. Each decision and the drop it installs are made under one
    /// lock: nothing read on one page is acted on by another.
    pub fn scan_page<E>(
        &mut self,
        pass: &mut ScanPass,
        now: Instant,
        limit: usize,
        mut collection: impl FnMut(&ChunkHash) -> Result<Collection, E>,
    ) -> Result<Option<ScanOutcome>, E> {
        pass.events.extend(self.mark_down(now));
        self.expire(now);
        let limit = limit.max(1);
        let from = pass.after.map_or(Bound::Unbounded, Bound::Excluded);
        let hashes: Vec<ChunkHash> = self
            .holders
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(hash, _)| *hash)
            .collect();
        let done = hashes.len() < limit;
        let mut page = Page {
            now,
            may_drop: self.may_order_drops(now),
            may_condemn: self.may_condemn(now),
            summary: pass.summary,
            drops: BTreeMap::new(),
            extra: BTreeMap::new(),
            condemn: std::mem::take(&mut pass.condemn),
        };
        for hash in &hashes {
            page.summary.chunks += 1;
            match collection(hash)? {
                Collection::Referenced => self.check_copies(*hash, &mut page),
                Collection::Condemned if page.may_drop => self.drop_garbage(*hash, &mut page),
                Collection::Condemned => {}
                Collection::Unclaimed => self.consider_condemning(*hash, &mut page),
            }
        }
        let to = match hashes.last() {
            Some(last) if !done => Bound::Included(*last),
            _ => Bound::Unbounded,
        };
        self.install_drops((from, to), page.drops, page.extra);
        pass.summary = page.summary;
        pass.condemn = page.condemn;
        if !done {
            pass.after = hashes.last().copied();
            return Ok(None);
        }
        // A chunk placed since a page named it is being uploaded again:
        // not condemned now (the log would take it, and the write would be
        // refused as collected).
        pass.condemn.retain(|hash| !self.placed.contains_key(hash));
        self.last_scan = pass.summary;
        let pass = std::mem::take(pass);
        Ok(Some(ScanOutcome {
            summary: pass.summary,
            events: pass.events,
            condemn: pass.condemn,
        }))
    }

    /// Replaces every server's drops (and extra-copy drops) within
    /// `range` by `drops` (and `extra`).
    fn install_drops(
        &mut self,
        range: (Bound<ChunkHash>, Bound<ChunkHash>),
        mut drops: BTreeMap<ChunkServerId, BTreeSet<ChunkHash>>,
        mut extra: BTreeMap<ChunkServerId, BTreeSet<ChunkHash>>,
    ) {
        for (id, server) in self.servers.iter_mut() {
            for set in [&mut server.drops, &mut server.extra_drops] {
                let stale: Vec<ChunkHash> = set.range(range).copied().collect();
                for hash in &stale {
                    set.remove(hash);
                }
            }
            server.drops.extend(drops.remove(id).unwrap_or_default());
            server
                .extra_drops
                .extend(extra.remove(id).unwrap_or_default());
        }
    }

    /// A new leader proposes no condemnation until placements the last
    /// leader handed out (which it cannot know) have expired.
    fn may_condemn(&self, now: Instant) -> bool {
        let wait = self.config.server_timeout.max(self.config.placement_ttl);
        now.duration_since(self.leading_since) >= wait
    }

    /// An unclaimed chunk not protected by a recent placement is to be
    /// condemned (a batch at a time).
    fn consider_condemning(&self, hash: ChunkHash, page: &mut Page) {
        if page.may_condemn
            && !self.placed.contains_key(&hash)
            && page.condemn.len() < MAX_CHUNKS_PER_OP
        {
            page.condemn.push(hash);
        }
    }

    /// A condemned chunk: every holder drops it.
    fn drop_garbage(&self, hash: ChunkHash, page: &mut Page) {
        page.summary.garbage += 1;
        for id in &self.holders[&hash] {
            page.drop_from(*id, hash);
        }
    }

    /// A referenced chunk: orders the copies it lacks, or drops the extra.
    /// Extra copies are counted and chosen among the steady holders only,
    /// so the copies kept are never ones an older drop order may still
    /// delete.
    fn check_copies(&mut self, hash: ChunkHash, page: &mut Page) {
        let live = self.holders[&hash].len();
        let steady = self.steady_holders(&hash);
        let rf = self.config.replication_factor as usize;
        if live < rf {
            page.summary.under_replicated += 1;
            // Safe mode: a new leader orders no repair until every live
            // server has had time to report (its other copies may simply
            // not be known yet), or a leader change starts a copy storm.
            if page.may_drop {
                page.summary.copies_ordered += self.order_copies(hash, rf - live, page.now);
            }
        } else if steady.len() > rf && page.may_drop {
            page.summary.over_replicated += 1;
            for id in self.extra_copy_victims(steady, rf, page.now) {
                page.drop_extra_from(id, hash);
            }
        }
    }

    /// Forgets placements and fetch orders that were never confirmed in time.
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

    /// Which of `holders` drop their copy so that `keep` remain: suspect
    /// servers (a chunk lost within [`SUSPECT_FOR`]) first, then the
    /// highest ids. A stable choice, so repeated scans keep asking the same
    /// servers and no two lists race; and the copies kept are the
    /// healthiest.
    fn extra_copy_victims(
        &self,
        mut holders: Vec<ChunkServerId>,
        keep: usize,
        now: Instant,
    ) -> Vec<ChunkServerId> {
        let suspect = |id: &ChunkServerId| {
            self.servers
                .get(id)
                .and_then(|s| s.last_loss)
                .is_some_and(|at| now.saturating_duration_since(at) < SUSPECT_FOR)
        };
        let extra = holders.len().saturating_sub(keep);
        holders.sort_by_key(|id| (std::cmp::Reverse(suspect(id)), std::cmp::Reverse(*id)));
        holders.truncate(extra);
        holders
    }

    /// Orders up to `missing` new copies of `hash` on servers that neither
    /// hold nor are already fetching it. Returns how many were ordered.
    fn order_copies(&mut self, hash: ChunkHash, missing: usize, now: Instant) -> u64 {
        let in_flight = self
            .servers
            .values()
            .filter(|s| s.up && s.fetching.contains_key(&hash))
            .count();
        let wanted = missing.saturating_sub(in_flight);
        if wanted == 0 {
            return 0;
        }
        let order = FetchOrder {
            hash,
            from: self.holder_addrs(&hash),
        };
        let targets = self.rank_servers(&hash, &self.holders_or_fetchers(&hash), wanted);
        for id in &targets {
            if let Some(server) = self.servers.get_mut(id) {
                server.fetching.insert(hash, order.clone());
                server.ordered_at.insert(hash, now);
            }
        }
        targets.len() as u64
    }

    /// Where a copy of `hash` can be fetched from: its live holders.
    fn holder_addrs(&self, hash: &ChunkHash) -> Vec<String> {
        self.holders[hash]
            .iter()
            .filter_map(|id| self.servers.get(id).map(|s| s.addr.clone()))
            .collect()
    }

    /// Servers that must not be ordered another copy of `hash`.
    fn holders_or_fetchers(&self, hash: &ChunkHash) -> BTreeSet<ChunkServerId> {
        self.holders[hash]
            .iter()
            .copied()
            .chain(
                self.servers
                    .iter()
                    .filter(|(_, s)| s.fetching.contains_key(hash))
                    .map(|(id, _)| *id),
            )
            .collect()
    }

    /// Withdraws every drop order: this node could not confirm it still
    /// leads, so its view of the reference counts may be stale.
    pub fn withdraw_drops(&mut self) {
        for server in self.servers.values_mut() {
            server.drops.clear();
            server.extra_drops.clear();
        }
    }

    /// Whether the garbage record of `hash` may be forgotten: this leader
    /// has heard from every server, none holds it, and no recent placement
    /// handed it out.
    pub fn may_forget(&self, hash: &ChunkHash, now: Instant) -> bool {
        self.may_order_drops(now) && self.holder_count(hash) == 0 && !self.placed.contains_key(hash)
    }
}
