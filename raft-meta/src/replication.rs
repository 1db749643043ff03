//! The leader's replication manager as it runs in a node: the
//! [`ChunkMap`] guarded by the Raft term it belongs to, the periodic scan
//! that keeps chunks at the replication factor, and the namespace lookups
//! (reference counts) the map needs.
//!
//! The map is valid only while this node leads in the term it was built
//! in: [`Replication::map_if_leader`] resets it whenever the term changes,
//! so a new leader always rebuilds locations from fresh reports. A scan
//! first confirms leadership with a read index (`ensure_linearizable`), so
//! the reference counts it reads cover every committed write. Garbage
//! whose copies are all deleted has its record dropped by a
//! `ForgetGarbage` command, so the garbage set does not grow forever.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::ServerState;
use toastyfs_proto::namespace::{Command, Outcome, Proposal};
use toastyfs_proto::ChunkHash;

use crate::chunk_map::{ChunkMap, ChunkMapConfig, ServerEvent};
use crate::namespace;
use crate::namespace::kv::{KvRead, StoreError};
use crate::proposer::Proposer;
use crate::store::state::DbReader;
use crate::store::Db;
use crate::types::Raft;

use crate::limits::{CONFIRM_LEAD_TIMEOUT, FORGET_PAGE, LEADER_LEASE, REF_PAGE, SCAN_INTERVAL};

/// The chunk map and the term it belongs to.
pub struct Replication {
    map: Mutex<ChunkMap>,
    /// The term and the moment (taken before asking) a quorum last
    /// confirmed this node's lead.
    confirmed: Mutex<Option<(u64, Instant)>>,
    /// How long a confirmation is trusted.
    lease: Duration,
}

impl Replication {
    /// `election_min` is the shortest election timeout: a confirmation is
    /// trusted for at most half of it (and at most [`LEADER_LEASE`]).
    pub fn new(config: ChunkMapConfig, election_min: Duration) -> Replication {
        Replication {
            map: Mutex::new(ChunkMap::new(config, 0, Instant::now())),
            confirmed: Mutex::new(None),
            lease: LEADER_LEASE.min(election_min / 2),
        }
    }

    /// Whether this node leads with a quorum's confirmation no older than
    /// its lease (asking for a fresh one, bounded by
    /// [`CONFIRM_LEAD_TIMEOUT`], when the last is older). The chunk
    /// endpoints answer only then: a leader cut off from its peers, which
    /// openraft still calls leader until it hears otherwise, must not keep
    /// answering chunk servers and clients from a map the real leader no
    /// longer shares.
    pub async fn confirm_lead(&self, raft: &Raft) -> bool {
        let (state, term) = {
            let m = raft.metrics();
            let m = m.borrow();
            (m.state, m.current_term)
        };
        if state != ServerState::Leader {
            return false;
        }
        let recent = *self.confirmed.lock().unwrap_or_else(|p| p.into_inner());
        if recent.is_some_and(|(t, at)| t == term && at.elapsed() < self.lease) {
            return true;
        }
        let asked = Instant::now();
        let confirmed = matches!(
            tokio::time::timeout(CONFIRM_LEAD_TIMEOUT, raft.ensure_linearizable()).await,
            Ok(Ok(_))
        );
        if confirmed {
            *self.confirmed.lock().unwrap_or_else(|p| p.into_inner()) = Some((term, asked));
        }
        confirmed
    }

    /// The map, if this node leads; reset first if the term moved on.
    pub fn map_if_leader(&self, raft: &Raft) -> Option<MutexGuard<'_, ChunkMap>> {
        let (state, term) = {
            let m = raft.metrics();
            let m = m.borrow();
            (m.state, m.current_term)
        };
        if state != ServerState::Leader {
            return None;
        }
        let mut map = self.lock();
        if map.term() != term {
            tracing::info!(
                term,
                "leading: rebuilding chunk locations from the chunk servers' reports"
            );
            map.reset(term, Instant::now());
        }
        Some(map)
    }

    fn lock(&self) -> MutexGuard<'_, ChunkMap> {
        // A panic while holding the lock leaves a map that is only soft
        // state: keep using it rather than poisoning every later request.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sets the map's replication factor from the cluster settings.
pub fn follow_settings<R: KvRead>(reader: &R, map: &mut ChunkMap) -> Result<(), StoreError> {
    let settings = namespace::settings::read(reader)?;
    let config = map.config();
    if settings.replication_factor != config.replication_factor
        || settings.copies_to_acknowledge() != config.copies_to_acknowledge
    {
        tracing::info!(
            replication_factor = settings.replication_factor,
            min_copies = settings.min_copies,
            "cluster settings changed"
        );
        map.follow(&settings);
    }
    Ok(())
}

/// Referenced chunks that no live chunk server holds.
pub fn count_lost(db: &Db, map: &ChunkMap) -> Result<u64, StoreError> {
    let reader = DbReader::new(db);
    let mut after = None;
    let mut lost = 0;
    loop {
        let (page, next) = namespace::referenced_chunks_page(&reader, after, REF_PAGE)?;
        lost += page.iter().filter(|h| map.holder_count(h) == 0).count() as u64;
        match next {
            Some(_) => after = next,
            None => return Ok(lost),
        }
    }
}

/// Up to [`FORGET_PAGE`] garbage chunks, from `cursor` on, whose copies
/// are all gone; the cursor moves on and wraps at the end.
fn forgettable<R: KvRead>(
    reader: &R,
    map: &ChunkMap,
    cursor: &mut Option<ChunkHash>,
) -> Result<Vec<ChunkHash>, StoreError> {
    let (page, next) = namespace::garbage_page(reader, *cursor, FORGET_PAGE)?;
    *cursor = next;
    let now = Instant::now();
    Ok(page
        .into_iter()
        .filter(|hash| map.may_forget(hash, now))
        .collect())
}

/// Runs the replication scan every [`SCAN_INTERVAL`] while this node leads,
/// and proposes `ForgetGarbage` for garbage whose copies are all deleted.
pub async fn run(replication: &Replication, raft: &Raft, db: &Db, proposer: &Proposer) {
    let mut cursor = None;
    loop {
        tokio::time::sleep(SCAN_INTERVAL).await;
        if replication.map_if_leader(raft).is_none() {
            continue;
        }
        if raft.ensure_linearizable().await.is_err() {
            // Possibly deposed (cut off from the quorum): order no deletion
            // from a view that may be stale.
            if let Some(mut map) = replication.map_if_leader(raft) {
                map.withdraw_drops();
            }
            continue;
        }
        let forget = scan_once(replication, raft, db, &mut cursor);
        if !forget.is_empty() {
            propose_forget(proposer, forget).await;
        }
    }
}

/// One scan under the map's lock (never held across an await); returns
/// the garbage chunks to forget.
fn scan_once(
    replication: &Replication,
    raft: &Raft,
    db: &Db,
    cursor: &mut Option<ChunkHash>,
) -> Vec<ChunkHash> {
    let Some(mut map) = replication.map_if_leader(raft) else {
        return Vec::new();
    };
    let reader = DbReader::new(db);
    if let Err(e) = follow_settings(&reader, &mut map) {
        tracing::warn!(error = %e, "replication scan could not read the cluster settings");
        return Vec::new();
    }
    match map.scan(Instant::now(), |hash| {
        namespace::is_referenced(&reader, hash)
    }) {
        Ok((summary, events)) => {
            log_events(&events);
            crate::metrics::record_replication(&summary, map.servers_up());
        }
        Err(e) => {
            tracing::warn!(error = %e, "replication scan could not read the namespace");
            return Vec::new();
        }
    }
    forgettable(&reader, &map, cursor).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the garbage records");
        Vec::new()
    })
}

async fn propose_forget(proposer: &Proposer, hashes: Vec<ChunkHash>) {
    let count = hashes.len();
    let proposal = Proposal {
        session: None,
        time_ms: 0,
        command: Command::ForgetGarbage { hashes },
    };
    match proposer.propose(proposal).await {
        Ok(Ok(Outcome::GarbageForgotten { count })) => {
            tracing::debug!(count, "forgot deleted garbage chunks");
            crate::metrics::record_garbage_forgotten(count);
        }
        Ok(result) => tracing::warn!(count, ?result, "ForgetGarbage was refused"),
        Err(e) => tracing::debug!(error = ?e, "ForgetGarbage proposal failed"),
    }
}

/// Logs chunk servers connecting and going down.
pub fn log_events(events: &[ServerEvent]) {
    for event in events {
        match event {
            ServerEvent::Registered { server, addr } => {
                tracing::info!(server = server.0, %addr, "chunk server connected")
            }
            ServerEvent::Down { server, addr } => {
                tracing::warn!(server = server.0, %addr, "chunk server down (stopped reporting); re-replicating its chunks")
            }
        }
    }
}
