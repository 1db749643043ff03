//! File contents: write commits, truncation, and chunk reference counts.
//!
//! A file's chunk list is one key per stored chunk (`C <inode> <index>`);
//! a missing key is a hole. Invariant: no chunk key lies at or beyond the
//! file's last chunk slot, and a stored chunk never holds bytes past the
//! file's length, so growing a file always exposes zeros. A small file may
//! instead keep its whole content inline (`inline.rs`), with no chunk key.

use toastyfs_proto::namespace::{
    EntryKind, FsError, Outcome, WriteCommit, MAX_CHUNKS_PER_OP, MAX_FILE_LENGTH,
};
use toastyfs_proto::{ChunkHash, FsPath, InodeId, Version};

use super::collect;
use super::create;
use super::inline;
use super::keys;
use super::kv::{KvStore, StoreError};
use super::stored::{self, ChunkRef, RefCount, StoredEntry};
use super::tree::{self, Found};
use super::{OpResult, Txn};

/// Applies a write commit (see [`WriteCommit`]). `expect` is checked against
/// the file; a missing file has version 0, so `Some(Version(0))` means
/// "create, and only if it does not exist".
pub fn write_commit<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    write: &WriteCommit,
) -> OpResult<Outcome> {
    let end = write
        .offset
        .checked_add(write.length)
        .filter(|end| *end <= MAX_FILE_LENGTH);
    let Some(end) = end else {
        return Err(FsError::FileTooLarge {
            length: write.offset.saturating_add(write.length),
        }
        .into());
    };
    let target = open_target(txn, &write.path, write.create_with_chunk_size)?;
    let actual = target.version();
    tree::check_expect(&write.path, write.expect, actual)?;
    let chunk_size = target.chunk_size;
    let slots = touched_slots(write.offset, write.length, chunk_size);
    if write.length == 0 && !write.chunks.is_empty() {
        return Err(FsError::EmptyWriteWithChunks.into());
    }
    if let Some((_, count)) = slots {
        if count > MAX_CHUNKS_PER_OP as u64 {
            return Err(FsError::TooManyChunks { count }.into());
        }
        if count != write.chunks.len() as u64 {
            return Err(FsError::ChunkCountMismatch {
                expected: count,
                got: write.chunks.len() as u64,
            }
            .into());
        }
    }
    if slots.is_none() && target.existing.is_some() {
        // A write of nothing to an existing file changes nothing.
        return Ok(Outcome::Written {
            version: actual,
            file_length: target.length(),
            bytes_written: 0,
            freed: vec![],
        });
    }
    let covers_inline = match &target.existing {
        Some(found) if inline::holds(txn.store, found.entry.inode)? => {
            if write.offset != 0 || end < found.entry.length {
                return Err(FsError::InlineContent {
                    path: write.path.to_string(),
                }
                .into());
            }
            true
        }
        _ => false,
    };
    collect::check_placed(txn, &write.chunks)?;
    let version = txn.bump_version();
    let mut file = match target.existing {
        Some(found) => found,
        None => create_for_write(txn, &write.path, chunk_size, version)?,
    };
    if covers_inline {
        // The chunks now hold the whole content.
        inline::drop_content(txn.store, file.entry.inode)?;
    }
    if let Some((first, _)) = slots {
        replace_chunks(txn, file.entry.inode, first, &write.chunks)?;
    }
    file.entry.length = file.entry.length.max(end);
    file.entry.version = version;
    file.entry.mtime_ms = txn.time_ms;
    tree::save(txn.store, &file.slot, &file.entry)?;
    Ok(Outcome::Written {
        version,
        file_length: file.entry.length,
        bytes_written: write.length,
        freed: txn.take_freed(),
    })
}

/// The file a write goes to: the existing one, or the chunk size it will
/// be created with.
pub struct WriteTarget {
    pub existing: Option<Found>,
    pub chunk_size: u32,
}

impl WriteTarget {
    fn length(&self) -> u64 {
        self.existing.as_ref().map_or(0, |f| f.entry.length)
    }

    /// The file's version; 0 for a file still to be created.
    pub fn version(&self) -> Version {
        self.existing
            .as_ref()
            .map_or(Version(0), |f| f.entry.version)
    }
}

/// The file at `path` to write, or (with `create_with_chunk_size`) the
/// file to create there; a directory or a missing file without a chunk
/// size is refused.
pub fn open_target<S: KvStore + ?Sized>(
    txn: &Txn<'_, S>,
    path: &FsPath,
    create_with_chunk_size: Option<u32>,
) -> OpResult<WriteTarget> {
    if path.is_root() {
        return Err(FsError::IsADirectory {
            path: "/".to_owned(),
        }
        .into());
    }
    match tree::lookup_opt(txn.store, path)? {
        Some(found) if found.entry.kind == EntryKind::Dir => Err(FsError::IsADirectory {
            path: path.to_string(),
        }
        .into()),
        Some(found) => Ok(WriteTarget {
            chunk_size: found.entry.chunk_size,
            existing: Some(found),
        }),
        None => match create_with_chunk_size {
            Some(size) => {
                create::check_chunk_size(size)?;
                Ok(WriteTarget {
                    existing: None,
                    chunk_size: size,
                })
            }
            None => Err(FsError::NotFound {
                path: path.to_string(),
            }
            .into()),
        },
    }
}

pub fn create_for_write<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    path: &FsPath,
    chunk_size: u32,
    version: Version,
) -> OpResult<Found> {
    let (parent_path, name) = create::split(path)?;
    let parent = tree::lookup_dir(txn.store, &parent_path)?;
    let entry = create::insert_file(txn, &parent, name, chunk_size, version)?;
    let slot = tree::Slot::Child {
        parent: parent.entry.inode,
        name: name.to_owned(),
    };
    create::touch(txn, parent, version)?;
    Ok(Found { slot, entry })
}

/// The first chunk index and the number of chunks `[offset, offset+len)`
/// touches; `None` for an empty range.
pub fn touched_slots(offset: u64, length: u64, chunk_size: u32) -> Option<(u64, u64)> {
    if length == 0 || chunk_size == 0 {
        return None;
    }
    let cs = u64::from(chunk_size);
    let first = offset / cs;
    let last = (offset + length - 1) / cs;
    Some((first, last - first + 1))
}

/// Puts `hashes` at consecutive chunk slots from `first`. New references
/// are counted before old ones are released, so a chunk that stays in use
/// is never reported freed.
fn replace_chunks<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    file: InodeId,
    first: u64,
    hashes: &[ChunkHash],
) -> Result<(), StoreError> {
    let mut released = Vec::new();
    for (i, hash) in hashes.iter().enumerate() {
        let key = keys::chunk(file, first + i as u64);
        if let Some(old) = stored::read::<ChunkRef, _>(txn.store, &key)?.map(|c| c.0) {
            released.push(old);
        }
        stored::write(txn.store, key, &ChunkRef(*hash))?;
        incref(txn, hash)?;
    }
    for hash in &released {
        decref(txn, hash)?;
    }
    Ok(())
}

/// Sets a file's length (see `Command::Truncate`). Shrinking releases at
/// most `MAX_CHUNKS_PER_OP` chunk slots per command; a larger shrink is
/// refused and done in steps by the client.
pub fn truncate<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    path: &FsPath,
    length: u64,
    cut_chunk: Option<ChunkHash>,
    expect: Option<Version>,
) -> OpResult<Outcome> {
    if length > MAX_FILE_LENGTH {
        return Err(FsError::FileTooLarge { length }.into());
    }
    let mut file = tree::lookup(txn.store, path)?;
    if file.entry.kind == EntryKind::Dir {
        return Err(FsError::IsADirectory {
            path: path.to_string(),
        }
        .into());
    }
    tree::check_expect(path, expect, file.entry.version)?;
    if let Some(content) = inline::content(txn.store, file.entry.inode)? {
        return inline::truncate(txn, path, file, content, length, cut_chunk.is_some());
    }
    let cs = u64::from(file.entry.chunk_size);
    let old_slots = file.entry.chunk_slots();
    let new_slots = length.div_ceil(cs);
    let released = old_slots.saturating_sub(new_slots);
    if released > MAX_CHUNKS_PER_OP as u64 {
        return Err(FsError::TooManyChunks { count: released }.into());
    }
    let cut_index =
        (length < file.entry.length && !length.is_multiple_of(cs)).then_some(length / cs);
    let cut_key = cut_index.map(|i| keys::chunk(file.entry.inode, i));
    let cut_exists = match &cut_key {
        Some(key) => txn.store.get(key)?.is_some(),
        None => false,
    };
    match (cut_exists, cut_chunk) {
        (true, None) => {
            return Err(FsError::TruncateNeedsCutChunk {
                path: path.to_string(),
                length,
            }
            .into())
        }
        (false, Some(_)) => {
            return Err(FsError::UnexpectedCutChunk {
                path: path.to_string(),
                length,
            }
            .into())
        }
        _ => {}
    }
    collect::check_placed(txn, cut_chunk.as_slice())?;
    let version = txn.bump_version();
    if let (Some(index), Some(hash)) = (cut_index, cut_chunk) {
        replace_chunks(txn, file.entry.inode, index, &[hash])?;
    }
    release_slots(txn, file.entry.inode, new_slots, old_slots)?;
    save_changed(txn, &mut file, length, version)?;
    Ok(Outcome::Truncated {
        version,
        freed: txn.take_freed(),
    })
}

/// Saves a file a command changed: its new length, the command's version
/// and the command's time.
pub fn save_changed<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    file: &mut Found,
    length: u64,
    version: Version,
) -> Result<(), StoreError> {
    file.entry.length = length;
    file.entry.version = version;
    file.entry.mtime_ms = txn.time_ms;
    tree::save(txn.store, &file.slot, &file.entry)
}

/// Drops the chunk keys of slots `from..to` of `file`.
fn release_slots<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    file: InodeId,
    from: u64,
    to: u64,
) -> Result<(), StoreError> {
    if from >= to {
        return Ok(());
    }
    let prefix = keys::chunk_prefix(file);
    let pairs = txn
        .store
        .scan(&prefix, &keys::chunk(file, from), (to - from) as usize)?;
    for (key, value) in pairs {
        let hash = stored::decode_value::<ChunkRef>(&key, &value)?.0;
        txn.store.delete(&key)?;
        decref(txn, &hash)?;
    }
    Ok(())
}

/// Releases up to `budget` chunk keys of `file`; returns how many it
/// released (fewer than `budget` means the file has none left).
pub fn release_file_chunks<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    file: InodeId,
    budget: usize,
) -> Result<usize, StoreError> {
    let prefix = keys::chunk_prefix(file);
    let pairs = txn.store.scan(&prefix, &prefix, budget)?;
    let n = pairs.len();
    for (key, value) in pairs {
        let hash = stored::decode_value::<ChunkRef>(&key, &value)?.0;
        txn.store.delete(&key)?;
        decref(txn, &hash)?;
    }
    Ok(n)
}

/// Counts one more reference to `hash`. A chunk this command freed is
/// live again; one condemned before it is not referenced here (the
/// command checked that with [`collect::check_placed`]), but should it be,
/// its condemnation is lifted.
pub fn incref<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    hash: &ChunkHash,
) -> Result<(), StoreError> {
    let key = keys::ref_count(hash);
    let count = stored::read::<RefCount, _>(txn.store, &key)?.map_or(0, |c| c.0);
    if count == 0 {
        collect::lift(txn, hash)?;
        txn.freed.retain(|h| h != hash);
    }
    stored::write(txn.store, key, &RefCount(count + 1))
}

/// Drops one reference to `hash`; at zero the chunk is condemned and
/// reported in the command's `freed` list.
pub fn decref<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    hash: &ChunkHash,
) -> Result<(), StoreError> {
    let key = keys::ref_count(hash);
    let count = stored::read::<RefCount, _>(txn.store, &key)?.map_or(0, |c| c.0);
    if count == 0 {
        // A fail-stop like any storage error, not a panic in the apply task.
        return Err(StoreError::Inconsistent(format!(
            "chunk {hash} is released but its reference count is already zero"
        )));
    }
    if count == 1 {
        txn.store.delete(&key)?;
        collect::condemn(txn, hash)?;
        txn.freed.push(*hash);
        Ok(())
    } else {
        stored::write(txn.store, key, &RefCount(count - 1))
    }
}

/// Number of chunk keys a file entry may own (for the eager-delete bound).
pub fn may_own_chunks(entry: &StoredEntry) -> u64 {
    entry.chunk_slots()
}
