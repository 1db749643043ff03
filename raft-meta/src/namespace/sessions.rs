//! Client sessions: at-most-once application of mutating requests.
//!
//! A proposal tagged (client, seq) is applied only if `seq` is newer than
//! the session's last one; a repeat of the last seq returns the stored
//! result and changes nothing. A client starts a session with seq 1; a
//! session unknown to the state with any other seq has expired, and the
//! client must start a new one. Sessions expire deterministically by log
//! index (`session_ttl_entries` after their last use) and by count (the
//! least recently used goes beyond `max_sessions`), never by time.

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
        None if tag.seq != Seq(1) => {
            return Ok(Err(FsError::SessionExpired { client: tag.client }))
        }
        _ => {}
    }
    let result = finish(op(txn))?;
    match existing {
        Some(old) => txn
            .store
            .delete(&keys::expiry(old.last_index, tag.client))?,
        None => {
            if txn.header.session_count >= txn.config.max_sessions {
                evict_oldest(txn)?;
            }
            txn.header.session_count += 1;
        }
    }
    let record = SessionRecord {
        last_seq: tag.seq,
        last_index: txn.index,
        result: result.clone(),
    };
    stored::write(txn.store, key, &record)?;
    txn.store
        .put(keys::expiry(txn.index, tag.client), Vec::new())?;
    Ok(result)
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
