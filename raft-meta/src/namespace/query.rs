//! Read-only queries: stat, one page of a directory, a read plan (or an
//! inline file's content).
//!
//! A list reads exactly one page of keys from the cursor, never the whole
//! directory, so listing a directory of millions of entries costs memory
//! proportional to the page.

use toastyfs_proto::namespace::{
    EntryInfo, EntryKind, FsError, InlineContent, Listing, Query, QueryReply, ReadPlan,
    MAX_CHUNKS_PER_OP, MAX_LIST_PAGE,
};
use toastyfs_proto::path::validate_component;
use toastyfs_proto::FsPath;

use super::chunks::touched_slots;
use super::inline;
use super::keys;
use super::kv::KvRead;
use super::stored::{self, ChunkRef, StoredEntry};
use super::tree;
use super::OpResult;

pub fn answer<S: KvRead + ?Sized>(store: &S, query: &Query) -> OpResult<QueryReply> {
    match query {
        Query::Stat { path } => stat(store, path).map(QueryReply::Stat),
        Query::List { path, after, limit } => {
            list(store, path, after.as_deref(), *limit).map(QueryReply::List)
        }
        Query::ReadPlan {
            path,
            offset,
            length,
        } => read_plan(store, path, *offset, *length),
        Query::Settings => Ok(QueryReply::Settings(super::settings::read(store)?)),
        Query::ListKeys => Ok(QueryReply::Keys(super::client_keys::all(store)?)),
    }
}

fn info(name: &str, entry: &StoredEntry) -> EntryInfo {
    EntryInfo {
        name: name.to_owned(),
        kind: entry.kind,
        version: entry.version,
        mtime_ms: entry.mtime_ms,
        length: entry.length,
        chunk_size: entry.chunk_size,
    }
}

fn stat<S: KvRead + ?Sized>(store: &S, path: &FsPath) -> OpResult<EntryInfo> {
    let found = tree::lookup(store, path)?;
    Ok(info(path.file_name().unwrap_or("/"), &found.entry))
}

fn list<S: KvRead + ?Sized>(
    store: &S,
    path: &FsPath,
    after: Option<&str>,
    limit: u32,
) -> OpResult<Listing> {
    if limit == 0 || limit > MAX_LIST_PAGE {
        return Err(FsError::InvalidPageSize { limit }.into());
    }
    if let Some(after) = after {
        validate_component(after).map_err(|_| FsError::InvalidCursor {
            after: after.to_owned(),
        })?;
    }
    let dir = tree::lookup_dir(store, path)?;
    let prefix = keys::dir_prefix(dir.entry.inode);
    let from = match after {
        Some(name) => keys::dir_entry_after(dir.entry.inode, name),
        None => prefix.clone(),
    };
    let mut pairs = store.scan(&prefix, &from, limit as usize + 1)?;
    let more = pairs.len() > limit as usize;
    pairs.truncate(limit as usize);
    let mut entries = Vec::with_capacity(pairs.len());
    for (key, value) in &pairs {
        let entry: StoredEntry = stored::decode_value(key, value)?;
        let name = String::from_utf8_lossy(keys::entry_name(key));
        entries.push(info(&name, &entry));
    }
    let next = if more {
        entries.last().map(|e| e.name.clone())
    } else {
        None
    };
    Ok(Listing {
        dir_version: dir.entry.version,
        entries,
        next,
    })
}

/// The chunks of a range of a file, or the whole content of an inline
/// one.
fn read_plan<S: KvRead + ?Sized>(
    store: &S,
    path: &FsPath,
    offset: u64,
    length: u64,
) -> OpResult<QueryReply> {
    let found = tree::lookup(store, path)?;
    let file = found.entry;
    if file.kind == EntryKind::Dir {
        return Err(FsError::IsADirectory {
            path: path.to_string(),
        }
        .into());
    }
    if let Some(content) = inline::content(store, file.inode)? {
        return Ok(QueryReply::Inline(InlineContent {
            version: file.version,
            chunk_size: file.chunk_size,
            content,
        }));
    }
    chunk_plan(store, &file, offset, length).map(QueryReply::ReadPlan)
}

fn chunk_plan<S: KvRead + ?Sized>(
    store: &S,
    file: &StoredEntry,
    offset: u64,
    length: u64,
) -> OpResult<ReadPlan> {
    let cs = u64::from(file.chunk_size);
    let mut end = offset.saturating_add(length).min(file.length);
    if offset < end {
        let max_end = (offset / cs + MAX_CHUNKS_PER_OP as u64) * cs;
        end = end.min(max_end);
    }
    let clipped = end.saturating_sub(offset);
    let mut plan = ReadPlan {
        version: file.version,
        chunk_size: file.chunk_size,
        file_length: file.length,
        offset,
        length: clipped,
        first_chunk: offset / cs,
        chunks: Vec::new(),
    };
    if let Some((first, count)) = touched_slots(offset, clipped, file.chunk_size) {
        plan.chunks = vec![None; count as usize];
        let prefix = keys::chunk_prefix(file.inode);
        for (key, value) in store.scan(&prefix, &keys::chunk(file.inode, first), count as usize)? {
            let Some(index) = keys::chunk_index(&key) else {
                continue;
            };
            if index >= first + count {
                break;
            }
            let hash = stored::decode_value::<ChunkRef>(&key, &value)?.0;
            plan.chunks[(index - first) as usize] = Some(hash);
        }
    }
    Ok(plan)
}
