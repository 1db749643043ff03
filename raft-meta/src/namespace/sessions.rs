//! Client sessions: at-most-once application of mutating requests.
//!
//! A client opens a session with [`Command::RegisterClient`]
//! (`toastyfs_proto::namespace::Command`), which records it under the id
//! the state assigns: the namespace index of the registration, unique and
//! the same on every replica. A proposal tagged (client, seq) is applied
//! only if `seq` is newer than the session's last one; a repeat of the last
//! seq returns the stored result and changes nothing. A tag whose client
//! the state does not hold is refused with `SessionExpired`, whatever its
//! seq: only a registration creates a session, so a request applied under
//! a session that was later evicted can never be applied a second time
//! (the Raft thesis, §6.3). Sessions expire deterministically by log index
//! (`session_ttl_entries` after their last use) and by count (the least
//! recently used goes beyond `max_sessions`), never by time.

use toastyfs_proto::namespace::{CommandResult, FsError, Outcome};
use toastyfs_proto::{ClientId, Seq, SessionTag};

use super::keys;
use super::kv::{KvPair, KvStore, StoreError};
use super::stored::{self, SessionRecord};
use super::{finish, OpResult, Txn};

/// Runs `op` under the session rules for `tag`.
pub fn run<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    tag: SessionTag,
    op: impl FnOnce(&mut Txn<'_, S>) -> OpResult<Outcome>,
) -> Result<CommandResult, StoreError> {
    let key = keys::session(tag.client);
    let existing: Option<SessionRecord> = stored::read(txn.store, &key)?;
    match &existing {
        Some(session) if tag.seq == session.last_seq => return Ok(session.result.clone()),
        Some(session) if tag.seq < session.last_seq => {
            return Ok(Err(FsError::StaleSequence {
                client: tag.client,
                seq: tag.seq,
                last: session.last_seq,
            }))
        }
        Some(_) => {}
        None => return Ok(Err(FsError::SessionExpired { client: tag.client })),
    }
    let result = finish(op(txn))?;
    if let Some(old) = existing {
        txn.store
            .delete(&keys::expiry(old.last_index, tag.client))?;
    }
    record(txn, tag.client, tag.seq, &result)?;
    Ok(result)
}

/// Opens a session under the id `ClientId(index)`; its first request
/// carries seq 1. Evicts the least recently used session when full.
pub fn register<S: KvStore + ?Sized>(txn: &mut Txn<'_, S>) -> OpResult<Outcome> {
    let client = ClientId(txn.index);
    let existing: Option<SessionRecord> = stored::read(txn.store, &keys::session(client))?;
    if existing.is_some() {
        // Indexes only grow, so no earlier session can hold this id; a
        // replay that finds one is applying out of order.
        return Err(StoreError::Inconsistent(format!(
            "registration at index {} finds session {client} already open",
            txn.index
        ))
        .into());
    }
    if txn.header.session_count >= txn.config.max_sessions {
        evict_oldest(txn)?;
    }
    txn.header.session_count += 1;
    let outcome = Outcome::Registered { client };
    record(txn, client, Seq(0), &Ok(outcome.clone()))?;
    Ok(outcome)
}

/// Stores the session's last request and its result, and files it under
/// this index in the expiry order.
fn record<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    client: ClientId,
    seq: Seq,
    result: &CommandResult,
) -> Result<(), StoreError> {
    let record = SessionRecord {
        last_seq: seq,
        last_index: txn.index,
        result: result.clone(),
    };
    stored::write(txn.store, keys::session(client), &record)?;
    txn.store.put(keys::expiry(txn.index, client), Vec::new())
}

/// Removes up to `expire_per_apply` sessions unused for longer than the
/// TTL. Reads the expiry order one key at a time from the floor and stops
/// at the first live session, so it never reads past what it needs.
pub fn expire<S: KvStore + ?Sized>(txn: &mut Txn<'_, S>) -> Result<(), StoreError> {
    let mut floor = txn.index;
    for n in 0..=txn.config.expire_per_apply {
        let Some((key, _)) = oldest_sessions(txn, 1)?.pop() else {
            break;
        };
        let (last_index, client) = parse(&key)?;
        if n == txn.config.expire_per_apply
            || last_index.saturating_add(txn.config.session_ttl_entries) >= txn.index
        {
            floor = last_index;
            break;
        }
        remove(txn, &key, client)?;
        txn.header.session_floor = last_index;
    }
    txn.header.session_floor = floor;
    Ok(())
}

/// The least recently used sessions' expiry keys, from the floor up.
fn oldest_sessions<S: KvStore + ?Sized>(
    txn: &Txn<'_, S>,
    limit: usize,
) -> Result<Vec<KvPair>, StoreError> {
    let prefix = [keys::EXPIRY];
    let from = keys::expiry(txn.header.session_floor, ClientId(0));
    txn.store.scan(&prefix, &from, limit)
}

fn evict_oldest<S: KvStore + ?Sized>(txn: &mut Txn<'_, S>) -> Result<(), StoreError> {
    if let Some((key, _)) = oldest_sessions(txn, 1)?.pop() {
        let (_, client) = parse(&key)?;
        remove(txn, &key, client)?;
    }
    Ok(())
}

fn remove<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    expiry_key: &[u8],
    client: ClientId,
) -> Result<(), StoreError> {
    txn.store.delete(expiry_key)?;
    txn.store.delete(&keys::session(client))?;
    txn.header.session_count -= 1;
    Ok(())
}

fn parse(key: &[u8]) -> Result<(u64, ClientId), StoreError> {
    keys::parse_expiry(key)
        .ok_or_else(|| StoreError::Backend(format!("malformed session expiry key {key:02x?}")))
}
