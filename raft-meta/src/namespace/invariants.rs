//! `check_invariants`: a full walk of the store that asserts the state's
//! structural rules. Tests call it after every step; it reads everything,
//! so it is not for production paths.

use std::collections::{BTreeMap, BTreeSet};

use toastyfs_proto::namespace::{EntryKind, MAX_INLINE_BYTES};
use toastyfs_proto::{ChunkHash, InodeId};

use super::keys::{self, ROOT_INODE};
use super::kv::{KvRead, StoreError};
use super::stored::{self, ChunkRef, RefCount, StoredEntry, TrashEntry};

/// Returns a description of the first broken rule, if any:
/// every entry hangs under a live or queued directory and is reached once;
/// no cycles; chunk keys belong to files and lie within their length;
/// inline content belongs to a file without chunk keys and is its length;
/// reference counts equal the references; garbage chunks have none;
/// the session count matches the sessions and their expiry keys.
pub fn check_invariants<S: KvRead + ?Sized>(store: &S) -> Result<Result<(), String>, StoreError> {
    let all = |tag: u8| store.scan(&[tag], &[tag], usize::MAX);
    let header = super::header(store)?;
    let trash: BTreeMap<InodeId, EntryKind> = all(keys::TRASH)?
        .iter()
        .map(|(k, v)| {
            Ok((
                keys::trash_inode(k).unwrap_or_default(),
                stored::decode_value::<TrashEntry>(k, v)?.kind,
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    let mut children: BTreeMap<InodeId, Vec<StoredEntry>> = BTreeMap::new();
    for (k, v) in all(keys::DIR_ENTRY)? {
        let parent = InodeId(u64::from_be_bytes(k[1..9].try_into().unwrap_or_default()));
        children
            .entry(parent)
            .or_default()
            .push(stored::decode_value(&k, &v)?);
    }
    // Walk from the root and from every queued directory.
    let mut files: BTreeMap<InodeId, Option<StoredEntry>> = BTreeMap::new();
    let mut seen: BTreeSet<InodeId> = BTreeSet::new();
    let mut stack: Vec<InodeId> = vec![ROOT_INODE];
    for (inode, kind) in &trash {
        match kind {
            EntryKind::Dir => stack.push(*inode),
            EntryKind::File => {
                files.insert(*inode, None);
            }
        }
    }
    while let Some(dir) = stack.pop() {
        if !seen.insert(dir) {
            return Ok(Err(format!(
                "directory inode {dir} is reached twice (cycle or shared)"
            )));
        }
        for entry in children.remove(&dir).unwrap_or_default() {
            if entry.inode.0 >= header.next_inode.0 {
                return Ok(Err(format!("inode {} was never handed out", entry.inode)));
            }
            match entry.kind {
                EntryKind::Dir => stack.push(entry.inode),
                EntryKind::File => {
                    if files.insert(entry.inode, Some(entry.clone())).is_some() {
                        return Ok(Err(format!("file inode {} is reached twice", entry.inode)));
                    }
                }
            }
        }
    }
    if let Some(orphan) = children.keys().next() {
        return Ok(Err(format!(
            "entries under inode {orphan}, which is neither live nor queued"
        )));
    }
    let mut counted: BTreeMap<ChunkHash, u64> = BTreeMap::new();
    for (k, v) in all(keys::CHUNK)? {
        let file = InodeId(u64::from_be_bytes(k[1..9].try_into().unwrap_or_default()));
        let index = keys::chunk_index(&k).unwrap_or_default();
        match files.get(&file) {
            None => {
                return Ok(Err(format!(
                    "chunk key of inode {file}, which is not a file"
                )))
            }
            Some(Some(entry)) if index >= entry.chunk_slots() => {
                return Ok(Err(format!(
                    "chunk {index} of inode {file} lies past its length {}",
                    entry.length
                )))
            }
            _ => {}
        }
        *counted
            .entry(stored::decode_value::<ChunkRef>(&k, &v)?.0)
            .or_default() += 1;
    }
    if let Err(e) = check_inline(&all(keys::INLINE)?, &all(keys::CHUNK)?, &files)? {
        return Ok(Err(e));
    }
    let mut stored_counts: BTreeMap<ChunkHash, u64> = BTreeMap::new();
    for (k, v) in all(keys::REF_COUNT)? {
        let hash = ChunkHash::from_slice(&k[1..]).unwrap_or(ChunkHash([0; 32]));
        stored_counts.insert(hash, stored::decode_value::<RefCount>(&k, &v)?.0);
    }
    if counted != stored_counts {
        return Ok(Err(format!(
            "reference counts {stored_counts:?} differ from references {counted:?}"
        )));
    }
    for (k, _) in all(keys::GARBAGE)? {
        let hash = ChunkHash::from_slice(&k[1..]).unwrap_or(ChunkHash([0; 32]));
        if counted.contains_key(&hash) {
            return Ok(Err(format!("chunk {hash} is garbage but still referenced")));
        }
    }
    if let Err(e) = check_lifts(&all(keys::LIFTED)?, &all(keys::LIFT_EXPIRY)?, store)? {
        return Ok(Err(e));
    }
    for (k, _) in all(keys::EXPIRY)? {
        let (index, _) = keys::parse_expiry(&k).unwrap_or_default();
        if index < header.session_floor {
            return Ok(Err(format!(
                "expiry key at {index} lies below the floor {}",
                header.session_floor
            )));
        }
    }
    let sessions = all(keys::SESSION)?.len() as u64;
    let expiries = all(keys::EXPIRY)?.len() as u64;
    if sessions != header.session_count || expiries != sessions {
        return Ok(Err(format!(
            "session count {} but {sessions} sessions and {expiries} expiry keys",
            header.session_count
        )));
    }
    Ok(Ok(()))
}

/// Every inline content belongs to a file with no chunk keys, is not
/// empty, fits [`MAX_INLINE_BYTES`] and (for a live file) is its length.
fn check_inline(
    inline: &[(Vec<u8>, Vec<u8>)],
    chunk_keys: &[(Vec<u8>, Vec<u8>)],
    files: &BTreeMap<InodeId, Option<StoredEntry>>,
) -> Result<Result<(), String>, StoreError> {
    let inode_of = |k: &[u8]| InodeId(u64::from_be_bytes(k[1..9].try_into().unwrap_or_default()));
    let chunked: BTreeSet<InodeId> = chunk_keys.iter().map(|(k, _)| inode_of(k)).collect();
    for (k, v) in inline {
        let file = inode_of(k);
        let content = stored::decode_value::<stored::InlineBytes>(k, v)?.0;
        let problem = match files.get(&file) {
            None => Some("is not a file".to_owned()),
            _ if chunked.contains(&file) => Some("also has chunk keys".to_owned()),
            _ if content.is_empty() => Some("is empty".to_owned()),
            _ if content.len() > MAX_INLINE_BYTES as usize => {
                Some(format!("holds {} bytes", content.len()))
            }
            Some(Some(entry)) if entry.length != content.len() as u64 => Some(format!(
                "holds {} bytes but the file's length is {}",
                content.len(),
                entry.length
            )),
            _ => None,
        };
        if let Some(problem) = problem {
            return Ok(Err(format!("inline content of inode {file} {problem}")));
        }
    }
    Ok(Ok(()))
}

/// Every lift record has its expiry key at the same index and no other;
/// none lies at or below the fence.
fn check_lifts<S: KvRead + ?Sized>(
    lifted: &[(Vec<u8>, Vec<u8>)],
    expiries: &[(Vec<u8>, Vec<u8>)],
    store: &S,
) -> Result<Result<(), String>, StoreError> {
    let fence =
        stored::read::<stored::CollectFence, _>(store, keys::COLLECT_FENCE)?.map_or(0, |f| f.0);
    let mut by_hash = BTreeMap::new();
    for (k, v) in lifted {
        let hash = ChunkHash::from_slice(&k[1..]).unwrap_or(ChunkHash([0; 32]));
        by_hash.insert(hash, stored::decode_value::<stored::Lifted>(k, v)?.0);
    }
    let mut from_expiry = BTreeMap::new();
    for (k, _) in expiries {
        let Some((index, hash)) = keys::parse_lift_expiry(k) else {
            return Ok(Err(format!("malformed lift expiry key {k:02x?}")));
        };
        if index < fence {
            return Ok(Err(format!(
                "lift of {hash} at {index} lies below the fence {fence}"
            )));
        }
        if from_expiry.insert(hash, index).is_some() {
            return Ok(Err(format!("chunk {hash} has two lift expiry keys")));
        }
    }
    if by_hash != from_expiry {
        return Ok(Err(format!(
            "lift records {by_hash:?} differ from their expiry keys {from_expiry:?}"
        )));
    }
    Ok(Ok(()))
}
