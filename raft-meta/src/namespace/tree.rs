//! Path resolution: from a path to the stored entry and the slot it lives
//! in (the root's own key, or a key in its parent directory).

use toastyfs_proto::namespace::{EntryKind, FsError};
use toastyfs_proto::{FsPath, InodeId, Version};

use super::keys::{self, ROOT_INODE};
use super::kv::{KvRead, KvStore, StoreError};
use super::stored::{self, StoredEntry};
use super::OpResult;

/// Where an entry is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Root,
    Child { parent: InodeId, name: String },
}

/// A resolved entry.
#[derive(Debug, Clone)]
pub struct Found {
    pub slot: Slot,
    pub entry: StoredEntry,
}

pub fn root_entry<S: KvRead + ?Sized>(store: &S) -> Result<StoredEntry, StoreError> {
    Ok(stored::read(store, keys::ROOT)?.unwrap_or(StoredEntry {
        inode: ROOT_INODE,
        kind: EntryKind::Dir,
        version: Version(0),
        mtime_ms: 0,
        chunk_size: 0,
        length: 0,
    }))
}

/// The entry named `name` in directory `dir`, if any.
pub fn child<S: KvRead + ?Sized>(
    store: &S,
    dir: InodeId,
    name: &str,
) -> Result<Option<StoredEntry>, StoreError> {
    stored::read(store, &keys::dir_entry(dir, name))
}

/// Resolves `path`; `Ok(None)` when only the last component is missing.
/// A missing or non-directory ancestor is refused.
pub fn lookup_opt<S: KvRead + ?Sized>(store: &S, path: &FsPath) -> OpResult<Option<Found>> {
    let mut found = Found {
        slot: Slot::Root,
        entry: root_entry(store)?,
    };
    let mut walked = String::new();
    let mut components = path.components().peekable();
    while let Some(name) = components.next() {
        if found.entry.kind != EntryKind::Dir {
            return Err(FsError::NotADirectory {
                path: or_root(&walked),
            }
            .into());
        }
        walked.push('/');
        walked.push_str(name);
        match child(store, found.entry.inode, name)? {
            Some(entry) => {
                found = Found {
                    slot: Slot::Child {
                        parent: found.entry.inode,
                        name: name.to_owned(),
                    },
                    entry,
                }
            }
            None if components.peek().is_none() => return Ok(None),
            None => return Err(FsError::NotFound { path: walked }.into()),
        }
    }
    Ok(Some(found))
}

/// Resolves `path`, which must exist.
pub fn lookup<S: KvRead + ?Sized>(store: &S, path: &FsPath) -> OpResult<Found> {
    lookup_opt(store, path)?.ok_or_else(|| {
        FsError::NotFound {
            path: path.to_string(),
        }
        .into()
    })
}

/// Resolves `path`, which must be an existing directory.
pub fn lookup_dir<S: KvRead + ?Sized>(store: &S, path: &FsPath) -> OpResult<Found> {
    let found = lookup(store, path)?;
    if found.entry.kind != EntryKind::Dir {
        return Err(FsError::NotADirectory {
            path: path.to_string(),
        }
        .into());
    }
    Ok(found)
}

/// Writes `entry` back into its slot.
pub fn save<S: KvStore + ?Sized>(
    store: &mut S,
    slot: &Slot,
    entry: &StoredEntry,
) -> Result<(), StoreError> {
    match slot {
        Slot::Root => stored::write(store, keys::ROOT.to_vec(), entry),
        Slot::Child { parent, name } => stored::write(store, keys::dir_entry(*parent, name), entry),
    }
}

/// True if the directory has no entries.
pub fn is_empty_dir<S: KvRead + ?Sized>(store: &S, dir: InodeId) -> Result<bool, StoreError> {
    let prefix = keys::dir_prefix(dir);
    Ok(store.scan(&prefix, &prefix, 1)?.is_empty())
}

/// Refuses when `expect` is set and differs from `actual`.
pub fn check_expect(path: &FsPath, expect: Option<Version>, actual: Version) -> OpResult<()> {
    match expect {
        Some(expected) if expected != actual => Err(FsError::VersionMismatch {
            path: path.to_string(),
            expected,
            actual,
        }
        .into()),
        _ => Ok(()),
    }
}

fn or_root(walked: &str) -> String {
    if walked.is_empty() {
        "/".to_owned()
    } else {
        walked.to_owned()
    }
}
