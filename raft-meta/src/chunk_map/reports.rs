//! Chunk server reports: registering a server on its first full report,
//! applying what it added and lost to the location index, marking silent
//! servers down, and the orders each report is answered with.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use toastyfs_proto::chunks::{ChunkOrders, ChunkReport, ChunkServerId, MAX_HASHES_PER_MESSAGE};
use toastyfs_proto::ChunkHash;

use super::{ChunkMap, Server};

/// A server that changed state during a scan or a report, for logging.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerEvent {
    Registered { server: ChunkServerId, addr: String },
    Down { server: ChunkServerId, addr: String },
}

impl ChunkMap {
    /// Takes a chunk server's report and answers with its orders.
    pub fn report(
        &mut self,
        report: ChunkReport,
        now: Instant,
    ) -> (ChunkOrders, Option<ServerEvent>) {
        let id = report.server;
        if self.is_stale(&report) {
            // A copy that was delayed (a hedged report through a paused or
            // cut-off node): what it says is older than what was applied.
            return (self.orders_for(id), None);
        }
        let known_up = self.is_up(&id);
        if !report.full && !known_up {
            return (full_report_wanted(), None);
        }
        let event = (!known_up).then(|| ServerEvent::Registered {
            server: id,
            addr: report.addr.clone(),
        });
        if report.full {
            self.forget_holdings(id);
        }
        if event.is_some() {
            self.forget_replaced(id, &report.addr);
        }
        self.apply_report(report, now);
        (self.orders_for(id), event)
    }

    /// Whether `report` is a numbered message of the server's current run
    /// at or below the newest one applied. A message of another run is
    /// never stale: the server restarted (a copy from before a restart
    /// would have to outlive the restart to be misapplied).
    fn is_stale(&self, report: &ChunkReport) -> bool {
        let last = self
            .servers
            .get(&report.server)
            .and_then(|s| s.last_message);
        report.seq != 0 && last.is_some_and(|(boot, seq)| boot == report.boot && report.seq <= seq)
    }

    /// Records a report of a known (or now registered) server.
    fn apply_report(&mut self, report: ChunkReport, now: Instant) {
        let id = report.server;
        let server = self
            .servers
            .entry(id)
            .or_insert_with(|| Server::new(report.addr.clone(), now));
        server.addr = report.addr;
        server.up = true;
        server.last_report = now;
        server.used_bytes = report.used_bytes;
        server.free_bytes = report.free_bytes;
        server.dropping = report.dropping.into_iter().collect();
        if report.seq != 0 {
            server.last_message = Some((report.boot, report.seq));
        }
        if !report.lost.is_empty() {
            server.last_loss = Some(now);
        }
        for hash in &report.lost {
            server.chunks.remove(hash);
            server.drops.remove(hash);
            server.extra_drops.remove(hash);
        }
        for hash in &report.added {
            server.chunks.insert(*hash);
            server.fetching.remove(hash);
            server.ordered_at.remove(hash);
        }
        for hash in &report.lost {
            remove_holder(&mut self.holders, hash, id);
            self.withdraw_extra_drops_of(hash);
        }
        // Placements stay until they expire even once reported: until then
        // the write that placed the chunk may still commit it.
        for hash in report.added {
            self.holders.entry(hash).or_default().insert(id);
        }
    }

    /// The server's pending fetches and its complete drop set, each capped
    /// at one message's worth.
    fn orders_for(&self, id: ChunkServerId) -> ChunkOrders {
        let Some(server) = self.servers.get(&id) else {
            return full_report_wanted();
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
            revoked_keys: vec![],
        }
    }

    /// A copy of `hash` is gone (lost, deleted, or its holder down): no
    /// server keeps a drop of an extra copy of it, chosen when that copy
    /// was still counted; the scan's next page over `hash` chooses again.
    /// Drops of condemned chunks stand: a deletion is reported as a loss,
    /// and garbage must not restart its grace period on every deletion.
    fn withdraw_extra_drops_of(&mut self, hash: &ChunkHash) {
        for server in self.servers.values_mut() {
            if server.extra_drops.remove(hash) {
                server.drops.remove(hash);
            }
        }
    }

    /// Removes every holding of `id` from the location index; returns the
    /// chunks it held.
    fn forget_holdings(&mut self, id: ChunkServerId) -> BTreeSet<ChunkHash> {
        let Some(server) = self.servers.get_mut(&id) else {
            return BTreeSet::new();
        };
        let held = std::mem::take(&mut server.chunks);
        for hash in &held {
            remove_holder(&mut self.holders, hash, id);
        }
        // Its drop set stays until the scan's pages recompute it: a full
        // report (after any failed one) must not restart the grace period
        // of every pending drop, or on a flaky link nothing is collected.
        held
    }

    /// Forgets the servers other than `id` registered at `addr`: a host
    /// whose disk was replaced comes back under a new id at its old
    /// address, and the old id will never report again (its copies are
    /// gone with the disk). Only one process can listen at an address, so
    /// the newest registration wins; forgetting copies only ever orders
    /// more copies, never a drop, and a server wrongly forgotten (two
    /// servers advertising one address) registers again with its next
    /// report.
    fn forget_replaced(&mut self, id: ChunkServerId, addr: &str) {
        let replaced: Vec<ChunkServerId> = self
            .servers
            .iter()
            .filter(|(other, s)| **other != id && s.addr == addr)
            .map(|(other, _)| *other)
            .collect();
        for old in replaced {
            self.forget_holdings(old);
            self.servers.remove(&old);
        }
    }

    /// Marks servers silent for longer than the server timeout down: their
    /// chunks no longer count as copies and their fetch orders are void.
    pub(super) fn mark_down(&mut self, now: Instant) -> Vec<ServerEvent> {
        let timeout = self.config.server_timeout;
        let silent: Vec<ChunkServerId> = self
            .servers
            .iter()
            .filter(|(_, s)| s.up && now.duration_since(s.last_report) > timeout)
            .map(|(id, _)| *id)
            .collect();
        silent
            .into_iter()
            .filter_map(|id| self.take_down(id))
            .collect()
    }

    /// Marks one server down: it holds nothing and fetches nothing, and
    /// no extra copy of a chunk it held is dropped elsewhere on a count
    /// that included its copy.
    fn take_down(&mut self, id: ChunkServerId) -> Option<ServerEvent> {
        for hash in &self.forget_holdings(id) {
            self.withdraw_extra_drops_of(hash);
        }
        let server = self.servers.get_mut(&id)?;
        server.up = false;
        server.fetching.clear();
        server.ordered_at.clear();
        Some(ServerEvent::Down {
            server: id,
            addr: server.addr.clone(),
        })
    }
}

/// The answer to a server this leader does not know as up: no orders, send
/// your whole inventory.
fn full_report_wanted() -> ChunkOrders {
    ChunkOrders {
        fetch: vec![],
        drop: vec![],
        full_report_wanted: true,
        revoked_keys: vec![],
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
