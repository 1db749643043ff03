//! Where chunks go and where they are: placement of new chunks on the up
//! servers with room (weighted rendezvous hashing over free space), and
//! locating the holders of existing ones, spread so reads do not all hit
//! the same server. A new leader that may not have heard from every server
//! yet answers [`NotReady::Warming`].

use std::collections::BTreeSet;
use std::time::Instant;

use sha2::{Digest, Sha256};
use toastyfs_proto::chunks::{ChunkServerId, LocateReply, Placement, PlacementReply};
use toastyfs_proto::ChunkHash;

use super::ChunkMap;
use crate::limits::MIN_FREE_BYTES;

/// Why the leader cannot place or locate chunks right now; the client
/// should retry shortly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("this leader is new and has not heard from enough chunk servers yet; retry shortly")]
    Warming,
    #[error("no chunk server with free space is up to take new chunks")]
    NoServers,
    #[error("only {up} chunk server(s) with free space are up, but a write needs {needed} copies (the cluster's min_copies); start more chunk servers or lower it with `toastyfs cluster set-min-copies`")]
    TooFewServers { up: usize, needed: usize },
}

/// Why placement could not answer: the leader is not ready, or the
/// namespace could not be read.
#[derive(Debug)]
pub enum PlaceError<E> {
    NotReady(NotReady),
    Read(E),
}

impl ChunkMap {
    /// Where new chunks go, and which the cluster already holds.
    /// `referenced` says whether a file references a chunk in the state
    /// the leader had applied up to `placed_at` (or later). Only a
    /// referenced chunk with a live holder is "present": an unreferenced
    /// one may be condemned at any moment, so the client uploads it again
    /// (which renews the copy on a holder), and the drop orders this map
    /// holds for it are withdrawn; the commit's check against `placed_at`
    /// refuses it if it was condemned meanwhile.
    pub fn place<E>(
        &mut self,
        hashes: &[ChunkHash],
        now: Instant,
        placed_at: u64,
        mut referenced: impl FnMut(&ChunkHash) -> Result<bool, E>,
    ) -> Result<PlacementReply, PlaceError<E>> {
        if self.warming(now) {
            return Err(PlaceError::NotReady(NotReady::Warming));
        }
        let mut placements = Vec::with_capacity(hashes.len());
        for hash in hashes {
            let referenced = referenced(hash).map_err(PlaceError::Read)?;
            placements.push(self.place_one(hash, referenced));
        }
        self.check_targets(&placements)
            .map_err(PlaceError::NotReady)?;
        for p in placements.iter().filter(|p| !p.present) {
            let ids = self.ids_of(&p.targets);
            self.placed.insert(p.hash, (ids, now));
            self.withdraw_drops_of(&p.hash);
        }
        Ok(PlacementReply {
            placements,
            min_copies: self.config.copies_to_acknowledge,
            placed_at,
        })
    }

    /// Every chunk to upload has enough targets.
    fn check_targets(&self, placements: &[Placement]) -> Result<(), NotReady> {
        if placements
            .iter()
            .any(|p| !p.present && p.targets.is_empty())
        {
            return Err(NotReady::NoServers);
        }
        let needed = self.config.copies_to_acknowledge as usize;
        if let Some(short) = placements
            .iter()
            .find(|p| !p.present && p.targets.len() < needed)
        {
            return Err(NotReady::TooFewServers {
                up: short.targets.len(),
                needed,
            });
        }
        Ok(())
    }

    /// No server is to drop `hash` any more (a client uploads it again).
    fn withdraw_drops_of(&mut self, hash: &ChunkHash) {
        for server in self.servers.values_mut() {
            server.drops.remove(hash);
            server.extra_drops.remove(hash);
        }
    }

    /// One chunk's placement: present if it is referenced and some steady
    /// live holder keeps it (no drop order threatens its copy), else its
    /// live holders topped up with the best ranked other servers.
    fn place_one(&self, hash: &ChunkHash, referenced: bool) -> Placement {
        let live = self.live_holders(hash);
        let kept = self.steady_holders(hash).into_iter().any(|id| {
            self.servers
                .get(&id)
                .is_some_and(|s| !s.drops.contains(hash))
        });
        if referenced && kept {
            return Placement {
                hash: *hash,
                present: true,
                targets: vec![],
            };
        }
        let mut targets = live;
        let excluded = targets.iter().copied().collect();
        let rf = self.config.replication_factor as usize;
        let fresh = rf.saturating_sub(targets.len());
        targets.extend(self.rank_servers(hash, &excluded, fresh));
        Placement {
            hash: *hash,
            present: false,
            targets: self.addrs(&targets),
        }
    }

    /// Who holds each chunk: reported live holders first, then servers a
    /// recent placement sent it to (their report may not have arrived yet).
    /// A new leader that knows no holder of some chunk answers `Warming`
    /// rather than "nobody has it".
    pub fn locate(&self, hashes: &[ChunkHash], now: Instant) -> Result<LocateReply, NotReady> {
        let holders: Vec<Vec<String>> = hashes
            .iter()
            .map(|hash| self.addrs(&self.read_order(hash)))
            .collect();
        // During the warm-up an empty list may only mean "its holders have
        // not reported to this leader yet": ask the client to retry rather
        // than tell it nobody holds the chunk.
        if !self.may_order_drops(now) && holders.iter().any(Vec::is_empty) {
            return Err(NotReady::Warming);
        }
        Ok(LocateReply { holders })
    }

    /// The servers to read `hash` from, in the order to try them.
    fn read_order(&self, hash: &ChunkHash) -> Vec<ChunkServerId> {
        let mut ids = self.live_holders(hash);
        rotate_for(hash, &mut ids);
        if let Some((placed, _)) = self.placed.get(hash) {
            for id in placed {
                if self.is_up(id) && !ids.contains(id) {
                    ids.push(*id);
                }
            }
        }
        ids
    }

    /// A new leader that may not have heard from every chunk server yet:
    /// it has led for less than a server timeout and knows fewer servers
    /// than the replication factor.
    fn warming(&self, now: Instant) -> bool {
        !self.may_order_drops(now) && self.servers_up() < self.config.replication_factor as usize
    }

    /// Up to `n` up servers not in `excluded` with room, best first:
    /// weighted rendezvous hashing, so chunks spread over all servers and
    /// servers with more free space get proportionally more.
    pub(super) fn rank_servers(
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

    /// The live holders of `hash`, lowest id first.
    fn live_holders(&self, hash: &ChunkHash) -> Vec<ChunkServerId> {
        self.holders
            .get(hash)
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default()
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
