//! The small ordered key-value interface the namespace state lives behind.
//!
//! The same `apply` runs over [`MemStore`] (a `BTreeMap`, for tests and
//! benchmarks) and over RocksDB (through [`Overlay`], which collects one
//! entry's writes so they reach the disk in one atomic batch). Contract for
//! implementors: `scan` returns keys in ascending byte order, only keys
//! that start with `prefix` and are `>= from`, at most `limit` of them, and
//! reads see every earlier write made through the same value.

use std::collections::BTreeMap;

/// A failure of the storage underneath the state machine. Unlike a
/// refused operation this is not a result: the node must stop (fail-stop)
/// rather than skip or half-apply an entry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend failed: {0}")]
    Backend(String),
    #[error("stored value under key {key} is corrupt: {source}")]
    Corrupt {
        key: String,
        source: toastyfs_proto::RecordError,
    },
    #[error("entry {index} applied out of order: the state has already applied {applied}")]
    OutOfOrder { index: u64, applied: u64 },
    #[error("value could not be encoded: {0}")]
    Encode(toastyfs_proto::RecordError),
    /// The state contradicts itself (e.g. a chunk referenced more often
    /// than its count says): applying cannot go on without diverging.
    #[error("the namespace state is inconsistent: {0}")]
    Inconsistent(String),
}

/// Read access to an ordered key-value store.
pub trait KvRead {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` pairs whose keys start with `prefix` and are `>= from`,
    /// in ascending key order.
    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError>;
}

/// Read and write access to an ordered key-value store.
pub trait KvStore: KvRead {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), StoreError>;
    fn delete(&mut self, key: &[u8]) -> Result<(), StoreError>;
}

/// One key and its value.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// An in-memory store.
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash)]
pub struct MemStore {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Every pair, in key order (a snapshot of the state).
    pub fn pairs(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.map.iter()
    }

    /// Builds a store from pairs (restoring a snapshot).
    pub fn from_pairs(pairs: impl IntoIterator<Item = KvPair>) -> MemStore {
        MemStore {
            map: pairs.into_iter().collect(),
        }
    }

    /// Total bytes of keys and values.
    pub fn payload_bytes(&self) -> usize {
        self.map.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl KvRead for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.get(key).cloned())
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        let start = if from < prefix { prefix } else { from };
        Ok(self
            .map
            .range::<[u8], _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl KvStore for MemStore {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), StoreError> {
        self.map.insert(key, value);
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.map.remove(key);
        Ok(())
    }
}

/// Writes buffered over a read-only base: reads see the buffered writes
/// first. The Raft store applies an entry into an overlay over RocksDB and
/// then writes [`Overlay::into_writes`] and the applied index as one batch.
pub struct Overlay<'a, R: KvRead + ?Sized> {
    base: &'a R,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a, R: KvRead + ?Sized> Overlay<'a, R> {
    pub fn new(base: &'a R) -> Self {
        Overlay {
            base,
            writes: BTreeMap::new(),
        }
    }

    /// The buffered writes in key order: `Some` is a put, `None` a delete.
    pub fn into_writes(self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.writes
    }
}

impl<R: KvRead + ?Sized> KvRead for Overlay<'_, R> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.base.get(key),
        }
    }

    /// Reads the base page by page, only as far as `limit` results need:
    /// the base may hold long runs of deleted keys (tombstones) that a
    /// wider read would have to wade through.
    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        let mut start = if from < prefix {
            prefix.to_vec()
        } else {
            from.to_vec()
        };
        let mut out: Vec<KvPair> = Vec::new();
        while out.len() < limit {
            let page = self.base.scan(prefix, &start, limit - out.len())?;
            let exhausted = page.len() < limit - out.len();
            // The page covers keys from `start` up to its last key (or to
            // the end of the prefix when the base has no more).
            let end = if exhausted {
                None
            } else {
                page.last().map(|(k, _)| successor(k))
            };
            let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = page.into_iter().collect();
            let upper = match &end {
                Some(end) => std::ops::Bound::Excluded(end.as_slice()),
                None => std::ops::Bound::Unbounded,
            };
            for (k, v) in self
                .writes
                .range::<[u8], _>((std::ops::Bound::Included(start.as_slice()), upper))
                .take_while(|(k, _)| k.starts_with(prefix))
            {
                match v {
                    Some(v) => merged.insert(k.clone(), v.clone()),
                    None => merged.remove(k),
                };
            }
            out.extend(merged);
            match end {
                Some(end) => start = end,
                None => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

/// The smallest key greater than `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

impl<R: KvRead + ?Sized> KvStore for Overlay<'_, R> {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), StoreError> {
        self.writes.insert(key, Some(value));
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.writes.insert(key.to_vec(), None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scan_respects_prefix_from_and_limit() {
        let mut s = MemStore::new();
        for k in ["a1", "a2", "a3", "b1"] {
            s.put(k.as_bytes().to_vec(), vec![1]).unwrap();
        }
        let keys = |v: Vec<KvPair>| {
            v.into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(s.scan(b"a", b"", 10).unwrap()), ["a1", "a2", "a3"]);
        assert_eq!(keys(s.scan(b"a", b"a2", 10).unwrap()), ["a2", "a3"]);
        assert_eq!(keys(s.scan(b"a", b"a", 2).unwrap()), ["a1", "a2"]);
        assert!(s.scan(b"c", b"", 10).unwrap().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// An overlay over a base reads exactly like the base with the
        /// overlay's writes applied.
        #[test]
        fn overlay_reads_like_the_merged_store(
            base in proptest::collection::btree_map(proptest::collection::vec(0u8..4, 0..4), any::<u8>(), 0..20),
            writes in proptest::collection::vec((proptest::collection::vec(0u8..4, 0..4), proptest::option::of(any::<u8>())), 0..20),
            prefix in proptest::collection::vec(0u8..4, 0..2),
            from in proptest::collection::vec(0u8..4, 0..3),
            limit in 0usize..8,
        ) {
            let base = MemStore::from_pairs(base.into_iter().map(|(k, v)| (k, vec![v])));
            let mut merged = base.clone();
            let mut overlay = Overlay::new(&base);
            for (k, v) in writes {
                match v {
                    Some(v) => { overlay.put(k.clone(), vec![v]).unwrap(); merged.put(k, vec![v]).unwrap(); }
                    None => { overlay.delete(&k).unwrap(); merged.delete(&k).unwrap(); }
                }
            }
            prop_assert_eq!(overlay.scan(&prefix, &from, limit).unwrap(), merged.scan(&prefix, &from, limit).unwrap());
            prop_assert_eq!(overlay.get(&from).unwrap(), merged.get(&from).unwrap());
        }
    }
}
