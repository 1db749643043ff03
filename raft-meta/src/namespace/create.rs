//! Creating directories (optionally with their parents) and empty files.

use toastyfs_proto::namespace::{EntryKind, FsError, Outcome};
use toastyfs_proto::{FsPath, InodeId, Version};

use super::keys;
use super::kv::KvStore;
use super::stored::{self, StoredEntry};
use super::tree::{self, Found, Slot};
use super::{OpResult, Txn};

/// `mkdir` / `mkdir -p`. `expect` is checked against the parent directory
/// (a missing parent has version 0).
pub fn create_dir<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    path: &FsPath,
    parents: bool,
    expect: Option<Version>,
) -> OpResult<Outcome> {
    let names: Vec<&str> = path.components().collect();
    let (existing, depth) = walk_existing(txn, &names)?;
    if depth == names.len() {
        // Everything exists already.
        return match (parents, existing.entry.kind) {
            (true, EntryKind::Dir) => Ok(Outcome::Created {
                version: existing.entry.version,
            }),
            (true, EntryKind::File) => Err(FsError::NotADirectory {
                path: path.to_string(),
            }
            .into()),
            (false, _) => Err(FsError::AlreadyExists {
                path: path.to_string(),
            }
            .into()),
        };
    }
    if !parents && depth + 1 < names.len() {
        return Err(FsError::NotFound {
            path: format!("/{}", names[..=depth].join("/")),
        }
        .into());
    }
    let parent_version = if depth + 1 == names.len() {
        existing.entry.version
    } else {
        Version(0)
    };
    if let Some((parent_path, _)) = path.split_last() {
        tree::check_expect(&parent_path, expect, parent_version)?;
    }
    let version = txn.bump_version();
    let mut dir = existing.entry.inode;
    for name in &names[depth..] {
        let inode = new_inode(txn);
        let entry = new_entry(inode, EntryKind::Dir, version, txn.time_ms, 0);
        stored::write(txn.store, keys::dir_entry(dir, name), &entry)?;
        dir = inode;
    }
    touch(txn, existing, version)?;
    Ok(Outcome::Created { version })
}

/// Creates an empty file. `expect` is checked against the parent directory.
pub fn create_file<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    path: &FsPath,
    chunk_size: u32,
    expect: Option<Version>,
) -> OpResult<Outcome> {
    check_chunk_size(chunk_size)?;
    let (parent, name) = split(path)?;
    let parent_found = tree::lookup_dir(txn.store, &parent)?;
    tree::check_expect(&parent, expect, parent_found.entry.version)?;
    if tree::child(txn.store, parent_found.entry.inode, name)?.is_some() {
        return Err(FsError::AlreadyExists {
            path: path.to_string(),
        }
        .into());
    }
    let version = txn.bump_version();
    insert_file(txn, &parent_found, name, chunk_size, version)?;
    touch(txn, parent_found, version)?;
    Ok(Outcome::Created { version })
}

/// Adds a new empty file entry to `parent` (which the caller touches).
pub fn insert_file<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    parent: &Found,
    name: &str,
    chunk_size: u32,
    version: Version,
) -> OpResult<StoredEntry> {
    let inode = new_inode(txn);
    let entry = new_entry(inode, EntryKind::File, version, txn.time_ms, chunk_size);
    stored::write(txn.store, keys::dir_entry(parent.entry.inode, name), &entry)?;
    Ok(entry)
}

pub fn check_chunk_size(size: u32) -> OpResult<()> {
    Ok(toastyfs_proto::namespace::check_chunk_size(size)?)
}

/// Splits a non-root path into parent and name.
pub fn split(path: &FsPath) -> OpResult<(FsPath, &str)> {
    path.split_last().ok_or_else(|| {
        FsError::AlreadyExists {
            path: "/".to_owned(),
        }
        .into()
    })
}

/// Stamps a directory whose contents changed with `version`.
pub fn touch<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    mut dir: Found,
    version: Version,
) -> OpResult<()> {
    dir.entry.version = version;
    dir.entry.mtime_ms = txn.time_ms;
    tree::save(txn.store, &dir.slot, &dir.entry)?;
    Ok(())
}

fn new_inode<S: KvStore + ?Sized>(txn: &mut Txn<'_, S>) -> InodeId {
    let inode = txn.header.next_inode;
    txn.header.next_inode = InodeId(inode.0 + 1);
    inode
}

fn new_entry(
    inode: InodeId,
    kind: EntryKind,
    version: Version,
    mtime_ms: u64,
    chunk_size: u32,
) -> StoredEntry {
    StoredEntry {
        inode,
        kind,
        version,
        mtime_ms,
        chunk_size,
        length: 0,
    }
}

/// Walks as far down `names` as exists; returns the deepest existing entry
/// and how many components it covers. A file on the way is refused.
fn walk_existing<S: KvStore + ?Sized>(
    txn: &Txn<'_, S>,
    names: &[&str],
) -> OpResult<(Found, usize)> {
    let mut found = Found {
        slot: Slot::Root,
        entry: tree::root_entry(txn.store)?,
    };
    for (depth, name) in names.iter().enumerate() {
        if found.entry.kind != EntryKind::Dir {
            let walked: Vec<&str> = names[..depth].to_vec();
            return Err(FsError::NotADirectory {
                path: format!("/{}", walked.join("/")),
            }
            .into());
        }
        match tree::child(txn.store, found.entry.inode, name)? {
            Some(entry) => {
                found = Found {
                    slot: Slot::Child {
                        parent: found.entry.inode,
                        name: (*name).to_owned(),
                    },
                    entry,
                }
            }
            None => return Ok((found, depth)),
        }
    }
    Ok((found, names.len()))
}
