//! Guarded commands: a write commit or truncation applied only while the
//! chunk slots it was built from still hold what the client read
//! ([`Command::Guarded`]). A mismatch is refused with
//! [`FsError::ChunkChanged`] before anything is written, so the client can
//! redo its read-modify-write on the current chunk; disjoint writes into
//! one chunk then both survive instead of the later one reverting the
//! earlier.

use toastyfs_proto::namespace::{
    Command, EntryKind, FsError, Outcome, SlotCheck, MAX_GUARD_CHECKS,
};
use toastyfs_proto::{ChunkHash, FsPath, InodeId};

use super::keys;
use super::kv::KvStore;
use super::stored::{self, ChunkRef};
use super::tree;
use super::{execute, OpError, OpResult, Txn};

/// Checks every slot, then applies `command`.
pub fn guarded<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    checks: &[SlotCheck],
    command: &Command,
) -> OpResult<Outcome> {
    let path = guarded_path(command)?;
    if checks.len() > MAX_GUARD_CHECKS {
        return Err(FsError::InvalidGuard {
            reason: format!("{} slot checks; at most {MAX_GUARD_CHECKS}", checks.len()),
        }
        .into());
    }
    let inode = file_inode(txn, path)?;
    for check in checks {
        if slot(txn, inode, check.index)? != check.holds {
            return Err(FsError::ChunkChanged {
                path: path.to_string(),
                index: check.index,
            }
            .into());
        }
    }
    execute(txn, command)
}

/// The file a guardable command changes.
fn guarded_path(command: &Command) -> OpResult<&FsPath> {
    match command {
        Command::WriteCommit(write) => Ok(&write.path),
        Command::Truncate { path, .. } => Ok(path),
        _ => Err(FsError::InvalidGuard {
            reason: "only a write commit or a truncation can be guarded".into(),
        }
        .into()),
    }
}

/// The file's inode; `None` when no file is there. Every slot of a file
/// that does not exist is empty; a path that cannot be resolved (or names
/// a directory) is left for the command itself to refuse precisely.
fn file_inode<S: KvStore + ?Sized>(txn: &Txn<'_, S>, path: &FsPath) -> OpResult<Option<InodeId>> {
    match tree::lookup_opt(txn.store, path) {
        Ok(found) => Ok(found
            .filter(|found| found.entry.kind == EntryKind::File)
            .map(|found| found.entry.inode)),
        Err(OpError::Refused(_)) => Ok(None),
        Err(e @ OpError::Store(_)) => Err(e),
    }
}

/// What slot `index` of the file holds.
fn slot<S: KvStore + ?Sized>(
    txn: &Txn<'_, S>,
    inode: Option<InodeId>,
    index: u64,
) -> OpResult<Option<ChunkHash>> {
    let Some(inode) = inode else {
        return Ok(None);
    };
    let stored: Option<ChunkRef> = stored::read(txn.store, &keys::chunk(inode, index))?;
    Ok(stored.map(|chunk| chunk.0))
}
