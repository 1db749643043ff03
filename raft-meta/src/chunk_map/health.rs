//! The one definition of a referenced chunk's health, which `cluster
//! status` counts and `fsck` asks about file by file: live copies are
//! those on up servers that reported them to this leader; none known is
//! "pending" while a copy may still exist unreported (the leader's
//! warm-up, or a recent placement to a server that is up), and "lost"
//! only after that.

use std::time::Instant;

use toastyfs_proto::chunks::ChunkHealth;
use toastyfs_proto::ChunkHash;

use super::ChunkMap;

/// How many referenced chunks are in each unhealthy state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthCounts {
    pub under_replicated: u64,
    pub pending: u64,
    pub lost: u64,
}

impl HealthCounts {
    pub fn add(&mut self, health: ChunkHealth) {
        match health {
            ChunkHealth::Healthy => {}
            ChunkHealth::UnderReplicated { .. } => self.under_replicated += 1,
            ChunkHealth::Pending => self.pending += 1,
            ChunkHealth::Lost => self.lost += 1,
        }
    }
}

impl ChunkMap {
    /// The health of `hash`, a chunk a file references.
    pub fn health(&self, hash: &ChunkHash, now: Instant) -> ChunkHealth {
        let copies = self.holder_count(hash);
        let rf = self.config.replication_factor as usize;
        if copies >= rf {
            ChunkHealth::Healthy
        } else if copies > 0 {
            ChunkHealth::UnderReplicated {
                copies: u32::try_from(copies).unwrap_or(u32::MAX),
            }
        } else if self.reports_pending(hash, now) {
            ChunkHealth::Pending
        } else {
            ChunkHealth::Lost
        }
    }

    /// Whether a copy of `hash` may exist that this leader has not heard
    /// of: it has not yet led for a server timeout, or a placement it
    /// still remembers sent the chunk to a server that is up.
    fn reports_pending(&self, hash: &ChunkHash, now: Instant) -> bool {
        !self.may_order_drops(now)
            || self
                .placed
                .get(hash)
                .is_some_and(|(targets, _)| targets.iter().any(|id| self.is_up(id)))
    }
}
