//! The replication scan: expires stale placements and fetch orders, finds
//! under-replicated chunks and orders copies of them, recomputes every
//! server's drop set (extra copies of referenced chunks, and every copy of
//! condemned ones), and names the unreferenced chunks to condemn. Also
//! what the scan loop asks besides: whether a condemned chunk's record may
//! be forgotten, and withdrawing drops when the lead is in doubt.
//!
//! Nothing is dropped because this map believes it unreferenced: only a
//! chunk the log condemned ([`Collection::Condemned`]) loses its copies.
//! A chunk that is held but neither referenced nor condemned is proposed
//! for condemnation once no recent placement protects it.

use std::collections::{BTreeMap, BTreeSet};
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

/// What a scan carries from chunk to chunk.
struct Pass {
    now: Instant,
    /// Whether this leader may order deletions yet.
    may_drop: bool,
    /// Whether it may propose condemnations yet.
    may_condemn: bool,
    summary: ScanSummary,
    drops: BTreeMap<ChunkServerId, BTreeSet<ChunkHash>>,
    condemn: Vec<ChunkHash>,
}

impl Pass {
    fn drop_from(&mut self, id: ChunkServerId, hash: ChunkHash) {
        self.drops.entry(id).or_default().insert(hash);
    }
}

impl ChunkMap {
    /// Marks silent servers down, expires stale placements and fetch
    /// orders, recomputes copies to make and chunks to drop, and names the
    /// chunks to condemn. `collection` says what the namespace (as of now,
    /// read under the same lock as the drop sets are written) says of a
    /// chunk.
    pub fn scan<E>(
        &mut self,
        now: Instant,
        mut collection: impl FnMut(&ChunkHash) -> Result<Collection, E>,
    ) -> Result<ScanOutcome, E> {
        let events = self.mark_down(now);
        self.expire(now);
        let mut pass = Pass {
            now,
            may_drop: self.may_order_drops(now),
            may_condemn: self.may_condemn(now),
            summary: ScanSummary::default(),
            drops: BTreeMap::new(),
            condemn: Vec::new(),
        };
        let hashes: Vec<ChunkHash> = self.holders.keys().copied().collect();
        for hash in hashes {
            pass.summary.chunks += 1;
            match collection(&hash)? {
                Collection::Referenced => self.check_copies(hash, &mut pass),
                Collection::Condemned if pass.may_drop => self.drop_garbage(hash, &mut pass),
                Collection::Condemned => {}
                Collection::Unclaimed => self.consider_condemning(hash, &mut pass),
            }
        }
        for (id, server) in self.servers.iter_mut() {
            server.drops = pass.drops.remove(id).unwrap_or_default();
        }
        self.last_scan = pass.summary;
        Ok(ScanOutcome {
            summary: pass.summary,
            events,
            condemn: pass.condemn,
        })
    }

    /// A new leader proposes no condemnation until placements the last
    /// leader handed out (which it cannot know) have expired.
    fn may_condemn(&self, now: Instant) -> bool {
        let wait = self.config.server_timeout.max(self.config.placement_ttl);
        now.duration_since(self.leading_since) >= wait
    }

    /// An unclaimed chunk not protected by a recent placement is to be
    /// condemned (a batch at a time).
    fn consider_condemning(&self, hash: ChunkHash, pass: &mut Pass) {
        if pass.may_condemn
            && !self.placed.contains_key(&hash)
            && pass.condemn.len() < MAX_CHUNKS_PER_OP
        {
            pass.condemn.push(hash);
        }
    }

    /// A condemned chunk: every holder drops it.
    fn drop_garbage(&self, hash: ChunkHash, pass: &mut Pass) {
        pass.summary.garbage += 1;
        for id in &self.holders[&hash] {
            pass.drop_from(*id, hash);
        }
    }

    /// A referenced chunk: orders the copies it lacks, or drops the extra.
    /// Extra copies are counted and chosen among the steady holders only,
    /// so the copies kept are never ones an older drop order may still
    /// delete.
    fn check_copies(&mut self, hash: ChunkHash, pass: &mut Pass) {
        let live = self.holders[&hash].len();
        let steady = self.steady_holders(&hash);
        let rf = self.config.replication_factor as usize;
        if live < rf {
            pass.summary.under_replicated += 1;
            // Safe mode: a new leader orders no repair until every live
            // server has had time to report (its other copies may simply
            // not be known yet), or a leader change starts a copy storm.
            if pass.may_drop {
                pass.summary.copies_ordered += self.order_copies(hash, rf - live, pass.now);
            }
        } else if steady.len() > rf && pass.may_drop {
            pass.summary.over_replicated += 1;
            for id in self.extra_copy_victims(steady, rf, pass.now) {
                pass.drop_from(id, hash);
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
        }
    }

    /// Whether the garbage record of `hash` may be forgotten: this leader
    /// has heard from every server, none holds it, and no recent placement
    /// handed it out.
    pub fn may_forget(&self, hash: &ChunkHash, now: Instant) -> bool {
        self.may_order_drops(now) && self.holder_count(hash) == 0 && !self.placed.contains_key(hash)
    }
}
