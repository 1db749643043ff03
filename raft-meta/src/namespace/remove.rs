//! Deleting entries and reclaiming detached subtrees in bounded steps.
//!
//! Deleting a file with few chunks releases them at once. A non-empty
//! directory (recursive delete) or a file with more chunks than the reclaim
//! budget is detached: its entry disappears from the namespace in the same
//! command, and a `T <inode>` key queues it. Each `Reclaim` command then
//! frees up to `reclaim_budget` keys, so no single command does unbounded
//! work; the leader proposes `Reclaim` while the queue is non-empty.

use toastyfs_proto::namespace::{EntryKind, FsError, Outcome};
use toastyfs_proto::{FsPath, InodeId, Version};

use super::chunks;
use super::create;
use super::inline;
use super::keys;
use super::kv::{KvStore, StoreError};
use super::stored::{self, StoredEntry, TrashEntry};
use super::tree::{self, Slot};
use super::{OpResult, Txn};

/// Deletes `path`; `expect` is checked against the entry itself.
pub fn delete<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    path: &FsPath,
    recursive: bool,
    expect: Option<Version>,
) -> OpResult<Outcome> {
    if path.is_root() {
        return Err(FsError::RootNotAllowed {
            action: "deleted".to_owned(),
        }
        .into());
    }
    let found = tree::lookup(txn.store, path)?;
    tree::check_expect(path, expect, found.entry.version)?;
    if found.entry.kind == EntryKind::Dir
        && !recursive
        && !tree::is_empty_dir(txn.store, found.entry.inode)?
    {
        return Err(FsError::NotEmpty {
            path: path.to_string(),
        }
        .into());
    }
    let version = txn.bump_version();
    let Slot::Child { parent, name } = &found.slot else {
        unreachable!("only the root lives in the root slot");
    };
    txn.store.delete(&keys::dir_entry(*parent, name))?;
    drop_entry(txn, &found.entry)?;
    let (parent_path, _) = create::split(path)?;
    let parent_found = tree::lookup_dir(txn.store, &parent_path)?;
    create::touch(txn, parent_found, version)?;
    Ok(Outcome::Deleted {
        version,
        freed: txn.take_freed(),
    })
}

/// Releases what an entry owned, now or (if large) by queueing it.
pub fn drop_entry<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    entry: &StoredEntry,
) -> Result<(), StoreError> {
    match entry.kind {
        EntryKind::File if chunks::may_own_chunks(entry) <= txn.config.reclaim_budget as u64 => {
            inline::drop_content(txn.store, entry.inode)?;
            chunks::release_file_chunks(txn, entry.inode, usize::MAX)?;
            Ok(())
        }
        EntryKind::Dir if tree::is_empty_dir(txn.store, entry.inode)? => Ok(()),
        kind => stored::write(txn.store, keys::trash(entry.inode), &TrashEntry { kind }),
    }
}

/// Frees up to `reclaim_budget` keys of queued subtrees.
pub fn reclaim<S: KvStore + ?Sized>(txn: &mut Txn<'_, S>) -> OpResult<Outcome> {
    let mut budget = txn.config.reclaim_budget;
    let trash_prefix = [keys::TRASH];
    while budget > 0 {
        let Some((key, value)) = txn.store.scan(&trash_prefix, &trash_prefix, 1)?.pop() else {
            break;
        };
        let inode = keys::trash_inode(&key)
            .ok_or_else(|| StoreError::Backend(format!("bad trash key {key:?}")))?;
        let item: TrashEntry = stored::decode_value(&key, &value)?;
        let (used, done) = match item.kind {
            EntryKind::File => reclaim_file(txn, inode, budget)?,
            EntryKind::Dir => reclaim_dir(txn, inode, budget)?,
        };
        budget = budget.saturating_sub(used.max(1));
        if done {
            txn.store.delete(&key)?;
        }
    }
    let pending = !txn.store.scan(&trash_prefix, &trash_prefix, 1)?.is_empty();
    Ok(Outcome::Reclaimed {
        freed: txn.take_freed(),
        pending,
    })
}

fn reclaim_file<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    file: InodeId,
    budget: usize,
) -> Result<(usize, bool), StoreError> {
    inline::drop_content(txn.store, file)?;
    let used = chunks::release_file_chunks(txn, file, budget)?;
    Ok((used, used < budget))
}

/// Detaches up to `budget` children of a queued directory, queueing them in
/// turn; the directory is done when it has no children left.
fn reclaim_dir<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    dir: InodeId,
    budget: usize,
) -> Result<(usize, bool), StoreError> {
    let prefix = keys::dir_prefix(dir);
    let children = txn.store.scan(&prefix, &prefix, budget)?;
    let used = children.len();
    for (key, value) in children {
        let entry: StoredEntry = stored::decode_value(&key, &value)?;
        txn.store.delete(&key)?;
        let kind = entry.kind;
        if kind == EntryKind::File || !tree::is_empty_dir(txn.store, entry.inode)? {
            stored::write(txn.store, keys::trash(entry.inode), &TrashEntry { kind })?;
        }
    }
    Ok((used, used < budget))
}
