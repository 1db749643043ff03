//! `DropSchedule`: which chunks the leader wants dropped, since when, and
//! which of them may be deleted now.
//!
//! Every answer from the leader carries the complete set of chunks this
//! server may drop, so the schedule is replaced by each answer: a hash newly
//! listed becomes pending from that moment, a pending hash no longer listed
//! is cancelled (an in-flight write committed it after all). A pending hash
//! is due once the grace period has passed since it was first listed, and
//! only while the latest answer is recent: a server cut off from the leader
//! deletes nothing on stale orders. Pure bookkeeping: every method takes
//! `now`, and the caller does the deleting.
//!
//! Each pending drop also keeps the store's acknowledgement clock
//! ([`crate::store::ChunkStore::ack_clock`]) read when the report it
//! answers was sent: the deletion is refused for a copy acknowledged after
//! that (an upload the leader had not heard of when it ordered the drop).

use std::collections::BTreeMap;
use std::time::Duration;

use toastyfs_proto::hash::ChunkHash;
use tokio::time::Instant;

/// The pending drops of one chunk server. See the module docs.
#[derive(Debug, Clone)]
pub struct DropSchedule {
    grace: Duration,
    freshness: Duration,
    /// Hash → when the leader first listed it (in an unbroken run of
    /// answers), and the acknowledgement clock of the report it answered.
    pending: BTreeMap<ChunkHash, (Instant, u64)>,
    latest_answer_at: Option<Instant>,
}

/// What one answer changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropUpdate {
    /// Hashes that became pending.
    pub added: usize,
    /// Pending hashes the answer no longer lists.
    pub cancelled: Vec<ChunkHash>,
}

impl DropSchedule {
    /// Deletes a chunk `grace` after it was first listed, as long as the
    /// latest answer is at most `freshness` old.
    pub fn new(grace: Duration, freshness: Duration) -> DropSchedule {
        DropSchedule {
            grace,
            freshness,
            pending: BTreeMap::new(),
            latest_answer_at: None,
        }
    }

    /// Takes the complete drop list of an answer received at `now` to a
    /// report sent at acknowledgement clock `clock`.
    pub fn update(&mut self, listed: &[ChunkHash], now: Instant, clock: u64) -> DropUpdate {
        let mut next = BTreeMap::new();
        let mut added = 0;
        for &hash in listed {
            let since = self.pending.get(&hash).copied().unwrap_or_else(|| {
                added += 1;
                (now, clock)
            });
            next.insert(hash, since);
        }
        let cancelled = self
            .pending
            .keys()
            .filter(|hash| !next.contains_key(*hash))
            .copied()
            .collect();
        self.pending = next;
        self.latest_answer_at = Some(now);
        DropUpdate { added, cancelled }
    }

    /// Whether `hash` may be deleted at `now`.
    pub fn is_due(&self, hash: ChunkHash, now: Instant) -> bool {
        self.answer_is_recent(now)
            && self
                .pending
                .get(&hash)
                .is_some_and(|(since, _)| now.saturating_duration_since(*since) >= self.grace)
    }

    /// Every hash that may be deleted at `now`, sorted, with the
    /// acknowledgement clock its drop order is as old as (they stay pending
    /// until [`DropSchedule::forget`]).
    pub fn due(&self, now: Instant) -> Vec<(ChunkHash, u64)> {
        if !self.answer_is_recent(now) {
            return Vec::new();
        }
        self.pending
            .iter()
            .filter(|(_, (since, _))| now.saturating_duration_since(*since) >= self.grace)
            .map(|(hash, (_, clock))| (*hash, *clock))
            .collect()
    }

    /// Stops tracking `hash` (it was deleted).
    pub fn forget(&mut self, hash: ChunkHash) {
        self.pending.remove(&hash);
    }

    /// The pending drops, sorted (a report names them, so the leader
    /// knows which copies may vanish).
    pub fn pending_hashes(&self) -> Vec<ChunkHash> {
        self.pending.keys().copied().collect()
    }

    /// How many drops are pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no drop is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn answer_is_recent(&self, now: Instant) -> bool {
        self.latest_answer_at
            .is_some_and(|at| now.saturating_duration_since(at) <= self.freshness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(60);
    const FRESH: Duration = Duration::from_secs(3);

    fn h(n: u8) -> ChunkHash {
        ChunkHash::of(&[n])
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A listed hash is pending from its first listing and due only once the
    /// grace period has passed, whatever later answers repeat it.
    #[test]
    fn a_listed_hash_is_due_after_the_grace_period() {
        let t0 = Instant::now();
        let mut s = DropSchedule::new(GRACE, FRESH);
        let first = s.update(&[h(1)], t0, 0);
        assert_eq!(first.added, 1);
        for t in (1..60).map(|n| t0 + secs(n)) {
            assert_eq!(s.update(&[h(1)], t, 0).added, 0);
            assert!(s.due(t).is_empty(), "deleted before the grace at {t:?}");
        }
        let t = t0 + secs(60);
        s.update(&[h(1)], t, 0);
        assert_eq!(s.due(t), vec![(h(1), 0)]);
        assert!(s.is_due(h(1), t));
        s.forget(h(1));
        assert!(s.is_empty());
    }

    /// A pending hash the latest answer no longer lists is cancelled; listed
    /// again later, its grace starts over.
    #[test]
    fn a_hash_absent_from_the_latest_answer_is_cancelled() {
        let t0 = Instant::now();
        let mut s = DropSchedule::new(GRACE, FRESH);
        s.update(&[h(1), h(2)], t0, 0);
        let update = s.update(&[h(2)], t0 + secs(30), 0);
        assert_eq!(update.cancelled, vec![h(1)]);
        assert_eq!(s.len(), 1);
        s.update(&[h(1), h(2)], t0 + secs(59), 0);
        let t = t0 + secs(61);
        s.update(&[h(1), h(2)], t, 0);
        assert_eq!(s.due(t), vec![(h(2), 0)]);
        assert!(!s.is_due(h(1), t));
        let t = t0 + secs(59 + 60);
        s.update(&[h(1), h(2)], t, 0);
        assert_eq!(s.due(t), vec![(h(1), 0), (h(2), 0)]);
    }

    /// Without a recent answer nothing is due, however old the drop order.
    #[test]
    fn nothing_is_due_on_a_stale_answer() {
        let t0 = Instant::now();
        let mut s = DropSchedule::new(GRACE, FRESH);
        s.update(&[h(1)], t0, 0);
        s.update(&[h(1)], t0 + secs(58), 0);
        let stale = t0 + secs(62);
        assert!(s.due(stale).is_empty());
        assert!(!s.is_due(h(1), stale));
        s.update(&[h(1)], t0 + secs(63), 0);
        assert_eq!(s.due(t0 + secs(64)), vec![(h(1), 0)]);
    }

    /// A hash never listed is never due.
    #[test]
    fn unlisted_hashes_are_never_due() {
        let t0 = Instant::now();
        let mut s = DropSchedule::new(Duration::ZERO, FRESH);
        assert!(!s.is_due(h(1), t0));
        s.update(&[h(2)], t0, 0);
        assert!(!s.is_due(h(1), t0));
        assert_eq!(s.due(t0), vec![(h(2), 0)]);
    }
}
