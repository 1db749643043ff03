//! Read-only queries for the rest of the node (the replication scan, the
//! reclaim task): the only way code outside `namespace/` looks at the
//! namespace state, so the key layout stays private to this module.
//!
//! Pages are in ascending hash order; a page that came back full names the
//! hash to continue after, one that came back short ends the walk.

use toastyfs_proto::ChunkHash;

use super::keys;
use super::kv::{KvRead, StoreError};

/// Whether the namespace references `hash` (its reference count is above
/// zero).
pub fn is_referenced<S: KvRead + ?Sized>(store: &S, hash: &ChunkHash) -> Result<bool, StoreError> {
    Ok(store.get(&keys::ref_count(hash))?.is_some())
}

/// Whether the log condemned `hash`: no file references it and chunk
/// servers may delete it.
pub fn is_condemned<S: KvRead + ?Sized>(store: &S, hash: &ChunkHash) -> Result<bool, StoreError> {
    Ok(store.get(&keys::garbage(hash))?.is_some())
}

/// Up to `limit` referenced chunks after `after` (from the first with
/// `None`), and the cursor for the next page: `Some` when the page is full.
pub fn referenced_chunks_page<S: KvRead + ?Sized>(
    store: &S,
    after: Option<ChunkHash>,
    limit: usize,
) -> Result<(Vec<ChunkHash>, Option<ChunkHash>), StoreError> {
    hash_page(store, keys::REF_COUNT, after, limit)
}

/// Up to `limit` condemned chunks (reference count fell to zero, or
/// condemned unreferenced; not yet pardoned or forgotten) after `after` (from the first with `None`), and the
/// cursor for the next page: `Some` when the page is full.
pub fn garbage_page<S: KvRead + ?Sized>(
    store: &S,
    after: Option<ChunkHash>,
    limit: usize,
) -> Result<(Vec<ChunkHash>, Option<ChunkHash>), StoreError> {
    hash_page(store, keys::GARBAGE, after, limit)
}

/// Whether detached subtrees are queued for `Reclaim`.
pub fn trash_pending<S: KvRead + ?Sized>(store: &S) -> Result<bool, StoreError> {
    Ok(!store.scan(&[keys::TRASH], &[keys::TRASH], 1)?.is_empty())
}

/// One page of the keys `<tag> <hash>`. A key whose hash part does not
/// parse is skipped (it still counts towards the page being full).
fn hash_page<S: KvRead + ?Sized>(
    store: &S,
    tag: u8,
    after: Option<ChunkHash>,
    limit: usize,
) -> Result<(Vec<ChunkHash>, Option<ChunkHash>), StoreError> {
    let prefix = [tag];
    let from = match after {
        None => prefix.to_vec(),
        Some(hash) => keys::hash_key_after(tag, &hash),
    };
    let page = store.scan(&prefix, &from, limit)?;
    let hashes: Vec<ChunkHash> = page
        .iter()
        .filter_map(|(key, _)| keys::key_hash(key))
        .collect();
    let next = if page.len() == limit {
        page.last().and_then(|(key, _)| keys::key_hash(key))
    } else {
        None
    };
    Ok((hashes, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::kv::{KvStore, MemStore};

    fn h(i: u8) -> ChunkHash {
        ChunkHash([i; 32])
    }

    #[test]
    fn pages_walk_every_hash_once_and_end_short() {
        let mut store = MemStore::new();
        for i in 1..=5 {
            store.put(keys::garbage(&h(i)), Vec::new()).unwrap();
            store.put(keys::ref_count(&h(i + 10)), Vec::new()).unwrap();
        }
        store
            .put(keys::trash(toastyfs_proto::InodeId(3)), Vec::new())
            .unwrap();
        let (first, next) = garbage_page(&store, None, 2).unwrap();
        assert_eq!((first, next), (vec![h(1), h(2)], Some(h(2))));
        let (second, next) = garbage_page(&store, next, 2).unwrap();
        assert_eq!((second, next), (vec![h(3), h(4)], Some(h(4))));
        let (last, next) = garbage_page(&store, next, 2).unwrap();
        assert_eq!((last, next), (vec![h(5)], None));
        let (refs, next) = referenced_chunks_page(&store, None, 10).unwrap();
        assert_eq!((refs, next), ((11..=15).map(h).collect(), None));
        assert!(is_referenced(&store, &h(12)).unwrap());
        assert!(!is_referenced(&store, &h(2)).unwrap());
        assert!(trash_pending(&store).unwrap());
        assert!(!trash_pending(&MemStore::new()).unwrap());
    }
}
