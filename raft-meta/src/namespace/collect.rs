//! Garbage collection of chunks, decided in the log: which unreferenced
//! chunks are condemned (may be deleted by chunk servers), which
//! condemnations were lifted and when, and the check every write makes so
//! that no commit references a chunk that may have been deleted.
//!
//! Records (see `keys`):
//! - `G <hash>`: condemned since this index. Written when a chunk's
//!   reference count falls to zero, and by [`Command::Condemn`] for a chunk
//!   that was never referenced (an upload whose write never committed).
//!   Never present while the chunk is referenced.
//! - `L <hash>`: the condemnation was lifted (pardoned or forgotten) at
//!   this index; with its expiry order key `Y <index> <hash>`.
//! - `F`: the lift fence; every lift record that expired was at or below it.
//!
//! The commit rule ([`check_placed`]): a write whose placement was decided
//! at applied index `placed_at` may reference a chunk no file references
//! only if that chunk is not condemned now, its condemnation was not lifted
//! after `placed_at`, and no expired lift record could hide such a lift
//! (`F <= placed_at`). docs/architecture.md argues why this means every
//! committed chunk has a copy that no deletion order covers.

use toastyfs_proto::namespace::{Command, FsError, Outcome, MAX_CHUNKS_PER_OP};
use toastyfs_proto::ChunkHash;

use super::keys;
use super::kv::{KvStore, StoreError};
use super::stored::{self, CollectFence, GarbageSince, Lifted};
use super::{execute, OpResult, Txn};

/// `Placed`: runs a write (or truncation, guarded or not) with the
/// placement index its chunk checks are made against.
pub fn placed<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    placed_at: u64,
    command: &Command,
) -> OpResult<Outcome> {
    let writes_chunks = match command {
        Command::WriteCommit(_) | Command::Truncate { .. } => true,
        Command::Guarded { command, .. } => {
            matches!(
                **command,
                Command::WriteCommit(_) | Command::Truncate { .. }
            )
        }
        _ => false,
    };
    if !writes_chunks {
        return Err(FsError::InvalidGuard {
            reason: "only a write commit or a truncation carries a placement".into(),
        }
        .into());
    }
    txn.placed_at = placed_at;
    execute(txn, command)
}

/// Refuses with [`FsError::ChunkCollected`] the first of `hashes` that no
/// file references and that may have been deleted since the placement
/// (`txn.placed_at`). Changes nothing.
pub fn check_placed<S: KvStore + ?Sized>(txn: &Txn<'_, S>, hashes: &[ChunkHash]) -> OpResult<()> {
    let fence = read_fence(txn.store)?;
    for hash in hashes {
        if txn.store.get(&keys::ref_count(hash))?.is_some() {
            continue;
        }
        let condemned = txn.store.get(&keys::garbage(hash))?.is_some();
        let lifted = stored::read::<Lifted, _>(txn.store, &keys::lifted(hash))?
            .is_some_and(|l| l.0 > txn.placed_at);
        if condemned || lifted || fence > txn.placed_at {
            return Err(FsError::ChunkCollected { hash: *hash }.into());
        }
    }
    Ok(())
}

/// Condemns `hash` (its reference count just fell to zero, or it was
/// never referenced) from this entry on.
pub fn condemn<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    hash: &ChunkHash,
) -> Result<(), StoreError> {
    stored::write(txn.store, keys::garbage(hash), &GarbageSince(txn.index))
}

/// Lifts the condemnation of `hash` if it has one, leaving a lift record;
/// returns whether it had one.
pub fn lift<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    hash: &ChunkHash,
) -> Result<bool, StoreError> {
    let key = keys::garbage(hash);
    if txn.store.get(&key)?.is_none() {
        return Ok(false);
    }
    txn.store.delete(&key)?;
    let lifted_key = keys::lifted(hash);
    if let Some(old) = stored::read::<Lifted, _>(txn.store, &lifted_key)? {
        txn.store.delete(&keys::lift_expiry(old.0, hash))?;
    }
    stored::write(txn.store, lifted_key, &Lifted(txn.index))?;
    txn.store
        .put(keys::lift_expiry(txn.index, hash), Vec::new())?;
    Ok(true)
}

fn check_batch(hashes: &[ChunkHash]) -> OpResult<()> {
    if hashes.len() > MAX_CHUNKS_PER_OP {
        return Err(FsError::TooManyChunks {
            count: hashes.len() as u64,
        }
        .into());
    }
    Ok(())
}

/// `Condemn`: condemns each hash no file references that is not condemned
/// yet.
pub fn condemn_unreferenced<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    hashes: &[ChunkHash],
) -> OpResult<Outcome> {
    check_batch(hashes)?;
    let mut count = 0;
    for hash in hashes {
        let referenced = txn.store.get(&keys::ref_count(hash))?.is_some();
        if !referenced && txn.store.get(&keys::garbage(hash))?.is_none() {
            condemn(txn, hash)?;
            count += 1;
        }
    }
    Ok(Outcome::Condemned { count })
}

/// `Pardon`: lifts each hash's condemnation.
pub fn pardon<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    hashes: &[ChunkHash],
) -> OpResult<Outcome> {
    let count = lift_each(txn, hashes)?;
    Ok(Outcome::Pardoned { count })
}

/// `ForgetGarbage`: the leader saw every copy deleted; lifts each hash's
/// condemnation (the record would otherwise stay forever).
pub fn forget<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    hashes: &[ChunkHash],
) -> OpResult<Outcome> {
    let count = lift_each(txn, hashes)?;
    Ok(Outcome::GarbageForgotten { count })
}

/// Lifts each condemned hash of a bounded batch; returns how many were.
fn lift_each<S: KvStore + ?Sized>(txn: &mut Txn<'_, S>, hashes: &[ChunkHash]) -> OpResult<u64> {
    check_batch(hashes)?;
    let mut count = 0;
    for hash in hashes {
        count += u64::from(lift(txn, hash)?);
    }
    Ok(count)
}

/// Removes up to `expire_per_apply` lift records older than
/// `lift_ttl_entries`, raising the fence to each one's index. Scans from
/// the fence, below which no expiry key is left.
pub fn expire_lifts<S: KvStore + ?Sized>(txn: &mut Txn<'_, S>) -> Result<(), StoreError> {
    let mut fence = read_fence(txn.store)?;
    let start = fence;
    let ttl = txn.config.lift_ttl_entries;
    let prefix = [keys::LIFT_EXPIRY];
    let from = keys::lift_expiry(fence, &ChunkHash([0; 32]));
    let oldest = txn
        .store
        .scan(&prefix, &from, txn.config.expire_per_apply)?;
    for (key, _) in oldest {
        let (index, hash) = keys::parse_lift_expiry(&key)
            .ok_or_else(|| StoreError::Backend(format!("malformed lift expiry key {key:02x?}")))?;
        if index.saturating_add(ttl) >= txn.index {
            break;
        }
        txn.store.delete(&key)?;
        txn.store.delete(&keys::lifted(&hash))?;
        fence = fence.max(index);
    }
    if fence != start {
        stored::write(
            txn.store,
            keys::COLLECT_FENCE.to_vec(),
            &CollectFence(fence),
        )?;
    }
    Ok(())
}

fn read_fence<S: super::kv::KvRead + ?Sized>(store: &S) -> Result<u64, StoreError> {
    Ok(stored::read::<CollectFence, _>(store, keys::COLLECT_FENCE)?.map_or(0, |f| f.0))
}
