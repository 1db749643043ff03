//! Small files whose content the namespace keeps (`I <inode>`): written
//! whole by `WriteInline` in one command with no chunk and no upload, and
//! read with the entry (a `ReadPlan` of one answers `Inline`).
//!
//! Invariant: a file with an inline key has no chunk keys, its content is
//! not empty, its length is the content's length, and that length is at
//! most `MAX_INLINE_BYTES` (the cluster's own limit when it was written;
//! lowering the limit later leaves it inline). A write commit to an inline
//! file must cover `[0, length)` (its chunks then hold the whole content
//! and the key goes); a truncation stays inline while the new length is
//! within the cluster's limit and is refused beyond it. In both refused
//! cases the client first moves the content to a chunk (a write commit of
//! the whole content), then does what it meant to.

use toastyfs_proto::namespace::{FsError, Outcome, WriteInline, MAX_CHUNKS_PER_OP};
use toastyfs_proto::{FsPath, InodeId, Version};

use super::chunks;
use super::keys;
use super::kv::{KvRead, KvStore, StoreError};
use super::settings;
use super::stored::{self, InlineBytes};
use super::tree::{self, Found};
use super::{OpResult, Txn};

/// The inline content of file `inode`, if it keeps one.
pub fn content<S: KvRead + ?Sized>(
    store: &S,
    inode: InodeId,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(stored::read::<InlineBytes, _>(store, &keys::inline(inode))?.map(|c| c.0))
}

/// Whether file `inode` keeps its content inline.
pub fn holds<S: KvRead + ?Sized>(store: &S, inode: InodeId) -> Result<bool, StoreError> {
    Ok(store.get(&keys::inline(inode))?.is_some())
}

/// Drops the inline content of `inode`, if any.
pub fn drop_content<S: KvStore + ?Sized>(store: &mut S, inode: InodeId) -> Result<(), StoreError> {
    store.delete(&keys::inline(inode))
}

/// Keeps `content` as the whole of `inode` (none when empty).
fn keep<S: KvStore + ?Sized>(
    store: &mut S,
    inode: InodeId,
    content: &[u8],
) -> Result<(), StoreError> {
    if content.is_empty() {
        drop_content(store, inode)
    } else {
        stored::write(store, keys::inline(inode), &InlineBytes(content.to_vec()))
    }
}

/// Applies a `WriteInline`: the file's whole content becomes `content`
/// (see the module doc); `expect` is checked against the file.
pub fn write_inline<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    write: &WriteInline,
) -> OpResult<Outcome> {
    let limit = settings::read(txn.store)?.inline_max_bytes;
    let length = write.content.len() as u64;
    if length > u64::from(limit) {
        return Err(FsError::InlineTooLarge { length, max: limit }.into());
    }
    let target = chunks::open_target(txn, &write.path, write.create_with_chunk_size)?;
    let actual = target.version();
    tree::check_expect(&write.path, write.expect, actual)?;
    if let Some(found) = &target.existing {
        // The chunks it releases are bounded like a truncation's.
        let slots = found.entry.chunk_slots();
        if slots > MAX_CHUNKS_PER_OP as u64 {
            return Err(FsError::TooManyChunks { count: slots }.into());
        }
    }
    let version = txn.bump_version();
    let mut file = match target.existing {
        Some(found) => found,
        None => chunks::create_for_write(txn, &write.path, target.chunk_size, version)?,
    };
    chunks::release_file_chunks(txn, file.entry.inode, usize::MAX)?;
    keep(txn.store, file.entry.inode, &write.content)?;
    chunks::save_changed(txn, &mut file, length, version)?;
    Ok(Outcome::Written {
        version,
        file_length: length,
        bytes_written: length,
        freed: txn.take_freed(),
    })
}

/// A truncation of an inline file (already checked to exist, be a file
/// and match `expect`): cut or zero-extended in place while within the
/// cluster's limit.
pub fn truncate<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    path: &FsPath,
    mut file: Found,
    content: Vec<u8>,
    length: u64,
    cut_given: bool,
) -> OpResult<Outcome> {
    if cut_given {
        return Err(FsError::UnexpectedCutChunk {
            path: path.to_string(),
            length,
        }
        .into());
    }
    let limit = settings::read(txn.store)?.inline_max_bytes;
    if length > content.len() as u64 && length > u64::from(limit) {
        return Err(FsError::InlineContent {
            path: path.to_string(),
        }
        .into());
    }
    let mut content = content;
    content.resize(length as usize, 0);
    let version: Version = txn.bump_version();
    keep(txn.store, file.entry.inode, &content)?;
    chunks::save_changed(txn, &mut file, length, version)?;
    Ok(Outcome::Truncated {
        version,
        freed: txn.take_freed(),
    })
}
