//! The leader's replication manager as it runs in a node: the
//! [`ChunkMap`] guarded by the Raft term it belongs to, the periodic scan
//! that keeps chunks at the replication factor, and the namespace lookups
//! (reference counts) the map needs.
//!
//! The map is valid only while this node leads in the term it was built
//! in: [`Replication::map_if_leader`] resets it whenever the term changes,
//! so a new leader always rebuilds locations from fresh reports. A scan
//! first confirms leadership with a read index (`ensure_linearizable`), so
//! the reference counts and condemnations it reads cover every committed
//! entry; the scan then runs a page of chunks per hold of the map's lock,
//! re-confirming the lead between pages. Held chunks that no file
//! references are proposed for condemnation (`Condemn`); condemned chunks
//! whose copies are all deleted have their record lifted by a
//! `ForgetGarbage` command, so the set does not grow forever. Placement pardons (`Pardon`) condemned chunks a
//! client is about to upload again before it answers.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::ServerState;
use toastyfs_proto::namespace::{Command, Outcome, Proposal};
use toastyfs_proto::ChunkHash;

use crate::chunk_map::{ChunkMap, ChunkMapConfig, Collection, HealthCounts, ScanPass, ServerEvent};
use crate::namespace;
use crate::namespace::kv::{KvRead, StoreError};
use crate::proposer::Proposer;
use crate::store::state::DbReader;
use crate::store::Db;
use crate::types::Raft;

use crate::limits::{
    CONFIRM_LEAD_TIMEOUT, FORGET_PAGE, LEADER_LEASE, REF_PAGE, SCAN_INTERVAL, SCAN_PAGE,
};

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

    /// The map, if this node still leads in `term` (work begun in one
    /// term, such as a scan pass or a status count, ends with it).
    pub fn map_in_term(&self, raft: &Raft, term: u64) -> Option<MutexGuard<'_, ChunkMap>> {
        self.map_if_leader(raft).filter(|m| m.term() == term)
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

/// The referenced chunks counted by health ([`ChunkMap::health`]), a
/// page at a time: each page of reference keys is read without the map's
/// lock and counted under it, so `cluster status` never holds the map for
/// longer than one page. `None` if this node no longer leads in `term`.
pub async fn count_health(
    replication: &Replication,
    raft: &Raft,
    db: &Db,
    term: u64,
) -> Result<Option<HealthCounts>, StoreError> {
    let mut after = None;
    let mut counts = HealthCounts::default();
    loop {
        let (page, next) = namespace::referenced_chunks_page(&DbReader::new(db), after, REF_PAGE)?;
        {
            let Some(map) = replication.map_in_term(raft, term) else {
                return Ok(None);
            };
            let now = Instant::now();
            for hash in &page {
                counts.add(map.health(hash, now));
            }
        }
        match next {
            Some(_) => after = next,
            None => return Ok(Some(counts)),
        }
        tokio::task::yield_now().await;
    }
}

/// Up to [`FORGET_PAGE`] garbage chunks, from `cursor` on, whose copies
/// are all gone; the cursor moves on and wraps at the end.
pub(crate) fn forgettable<R: KvRead>(
    reader: &R,
    map: &ChunkMap,
    cursor: &mut Option<ChunkHash>,
    now: Instant,
) -> Result<Vec<ChunkHash>, StoreError> {
    let (page, next) = namespace::garbage_page(reader, *cursor, FORGET_PAGE)?;
    *cursor = next;
    Ok(page
        .into_iter()
        .filter(|hash| map.may_forget(hash, now))
        .collect())
}

/// What the namespace says of `hash`.
pub fn collection<R: KvRead>(reader: &R, hash: &ChunkHash) -> Result<Collection, StoreError> {
    Ok(if namespace::is_referenced(reader, hash)? {
        Collection::Referenced
    } else if namespace::is_condemned(reader, hash)? || crate::unsafe_modes::unfenced_drops() {
        Collection::Condemned
    } else {
        Collection::Unclaimed
    })
}

/// The condemned chunks among `hashes` (a placement pardons them first).
pub fn condemned_among<R: KvRead>(
    reader: &R,
    hashes: &[ChunkHash],
) -> Result<Vec<ChunkHash>, StoreError> {
    let mut condemned = Vec::new();
    for hash in hashes {
        if namespace::is_condemned(reader, hash)? {
            condemned.push(*hash);
        }
    }
    Ok(condemned)
}

/// What a scan asks the log for.
#[derive(Debug, Default)]
struct Proposals {
    condemn: Vec<ChunkHash>,
    forget: Vec<ChunkHash>,
}

/// Runs the replication scan every [`SCAN_INTERVAL`] while this node leads,
/// and proposes `Condemn` for held chunks no file references and
/// `ForgetGarbage` for condemned chunks whose copies are all deleted.
pub async fn run(replication: &Replication, raft: &Raft, db: &Db, proposer: &Proposer) {
    let mut cursor = None;
    let mut unfinished = None;
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
        let proposals = scan_pass(replication, raft, db, &mut unfinished, &mut cursor).await;
        if !proposals.condemn.is_empty() {
            let command = Command::Condemn {
                hashes: proposals.condemn,
            };
            propose_collection(proposer, command).await;
        }
        if !proposals.forget.is_empty() {
            let command = Command::ForgetGarbage {
                hashes: proposals.forget,
            };
            propose_collection(proposer, command).await;
        }
    }
}

/// One scan, a page of [`SCAN_PAGE`] chunks per hold of the map's lock
/// (never held across an await), each page reading the namespace as of
/// that page; returns the chunks to condemn and the condemned chunks to
/// forget. A pass the node stops leading during is abandoned. One whose
/// lead cannot be confirmed between pages withdraws every drop and is
/// kept in `unfinished`, to go on from where it stopped next time (in the
/// same term), so a pass over many chunks is not started over by every
/// slow confirmation.
async fn scan_pass(
    replication: &Replication,
    raft: &Raft,
    db: &Db,
    unfinished: &mut Option<(u64, ScanPass)>,
    cursor: &mut Option<ChunkHash>,
) -> Proposals {
    let Some((term, mut pass)) = resume_or_begin(replication, raft, db, unfinished) else {
        return Proposals::default();
    };
    let outcome = loop {
        let page = {
            let Some(mut map) = replication.map_in_term(raft, term) else {
                return Proposals::default();
            };
            let reader = DbReader::new(db);
            let page = map.scan_page(&mut pass, Instant::now(), SCAN_PAGE, |hash| {
                collection(&reader, hash)
            });
            if page.is_err() {
                map.withdraw_drops();
            }
            page
        };
        log_events(&pass.take_events());
        match page {
            Ok(Some(outcome)) => break outcome,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "replication scan could not read the namespace; every drop withdrawn");
                return Proposals::default();
            }
        }
        tokio::task::yield_now().await;
        if !replication.confirm_lead(raft).await {
            if let Some(mut map) = replication.map_if_leader(raft) {
                map.withdraw_drops();
            }
            *unfinished = Some((term, pass));
            return Proposals::default();
        }
    };
    let Some(map) = replication.map_in_term(raft, term) else {
        return Proposals::default();
    };
    crate::metrics::record_replication(&outcome.summary, map.servers_up(), map.servers_known());
    let reader = DbReader::new(db);
    let forget = forgettable(&reader, &map, cursor, Instant::now()).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the condemned chunks");
        Vec::new()
    });
    Proposals {
        condemn: outcome.condemn,
        forget,
    }
}

/// The unfinished pass if it belongs to the term this node leads in,
/// else a new one, after following the cluster settings. Returns the
/// pass and its term; `None` if this node does not lead.
fn resume_or_begin(
    replication: &Replication,
    raft: &Raft,
    db: &Db,
    unfinished: &mut Option<(u64, ScanPass)>,
) -> Option<(u64, ScanPass)> {
    let mut map = replication.map_if_leader(raft)?;
    if let Err(e) = follow_settings(&DbReader::new(db), &mut map) {
        tracing::warn!(error = %e, "replication scan could not read the cluster settings");
        return None;
    }
    let term = map.term();
    match unfinished.take() {
        Some((t, pass)) if t == term => Some((term, pass)),
        _ => Some((term, ScanPass::new())),
    }
}

/// Proposes one of the leader's collection commands (`Condemn`, `Pardon`,
/// `ForgetGarbage`); returns whether it applied.
pub async fn propose_collection(proposer: &Proposer, command: Command) -> bool {
    let proposal = Proposal {
        session: None,
        time_ms: 0,
        command,
    };
    match proposer.propose(proposal).await {
        Ok(Ok(Outcome::GarbageForgotten { count })) => {
            tracing::debug!(count, "forgot deleted condemned chunks");
            crate::metrics::record_garbage_forgotten(count);
            true
        }
        Ok(Ok(Outcome::Condemned { count })) => {
            tracing::debug!(count, "condemned unreferenced chunks");
            true
        }
        Ok(Ok(Outcome::Pardoned { count })) => {
            tracing::debug!(count, "pardoned condemned chunks a client uploads again");
            true
        }
        Ok(result) => {
            tracing::warn!(?result, "a chunk collection command was refused");
            false
        }
        Err(e) => {
            tracing::debug!(error = ?e, "a chunk collection proposal failed");
            false
        }
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
