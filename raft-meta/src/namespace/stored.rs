//! The values stored under the keys of [`super::keys`], each a record in
//! the envelope (kinds 16 and up), and typed access to them. Their samples
//! (tamper evidence, golden fixtures) are in `tests/formats.rs`.

use serde::{Deserialize, Serialize};
use toastyfs_proto::client_key::Access;
use toastyfs_proto::namespace::{
    ClusterSettings, CommandResult, EntryKind, DEFAULT_INLINE_MAX_BYTES, DEFAULT_MIN_COPIES,
};
use toastyfs_proto::record::{self, decode_body, Record, RecordError};
use toastyfs_proto::{ChunkHash, InodeId, Seq, Version};

use super::kv::{KvRead, KvStore, StoreError};

/// Counters and the chained digest: the part of the state that every
/// applied entry changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateHeader {
    /// Log index of the last applied proposal (0: none yet).
    pub applied_index: u64,
    /// SHA-256 chained over (index, proposal, result) of every applied entry.
    pub digest: [u8; 32],
    /// The cluster-wide version counter.
    pub version: Version,
    /// The next inode to hand out.
    pub next_inode: InodeId,
    /// Live client sessions.
    pub session_count: u64,
    /// No session expiry key lies below this index: scans of the expiry
    /// order start here, so they never wade through the deletion
    /// tombstones a log-structured store leaves behind.
    pub session_floor: u64,
}

impl Default for StateHeader {
    fn default() -> Self {
        StateHeader {
            applied_index: 0,
            digest: [0; 32],
            version: Version(0),
            next_inode: InodeId(2),
            session_count: 0,
            session_floor: 0,
        }
    }
}

/// A directory entry: the named inode and its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    pub inode: InodeId,
    pub kind: EntryKind,
    pub version: Version,
    pub mtime_ms: u64,
    /// Files only (0 for directories).
    pub chunk_size: u32,
    /// Files only (0 for directories).
    pub length: u64,
}

impl StoredEntry {
    /// Number of chunk slots the file's length covers.
    pub fn chunk_slots(&self) -> u64 {
        if self.chunk_size == 0 {
            0
        } else {
            self.length.div_ceil(u64::from(self.chunk_size))
        }
    }
}

/// A detached subtree awaiting reclaim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrashEntry {
    pub kind: EntryKind,
}

/// One client's session: its last sequence number and that request's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub last_seq: Seq,
    pub last_index: u64,
    pub result: CommandResult,
}

/// The chunk stored at one slot of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef(pub ChunkHash);

/// The content of a small file kept in the namespace (`I` key): the
/// whole file, `length` bytes, no chunk keys beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineBytes(pub Vec<u8>);

/// A chunk reference count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefCount(pub u64);

/// When (log index) a chunk was condemned (became garbage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GarbageSince(pub u64);

/// When (log index) a chunk's condemnation was lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifted(pub u64);

/// The lift fence: the highest index of an expired lift record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectFence(pub u64);

/// The cluster settings (`P` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSettings(pub ClusterSettings);

/// A client key (`K` key): everything but the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub name: String,
    pub access: Access,
    pub secret_hash: [u8; 32],
    pub created_ms: u64,
    pub revoked_ms: Option<u64>,
}

macro_rules! stored_record {
    ($ty:ty, $kind:expr) => {
        impl Record for $ty {
            const KIND: u8 = $kind;
            const MAX_BODY_BYTES: usize = 2 << 20;
        }
    };
}

stored_record!(StateHeader, 16);
stored_record!(StoredEntry, 17);
stored_record!(ChunkRef, 18);
stored_record!(RefCount, 19);
stored_record!(GarbageSince, 20);
stored_record!(TrashEntry, 21);
stored_record!(SessionRecord, 22);
stored_record!(Lifted, 24);
stored_record!(CollectFence, 25);
stored_record!(StoredKey, 26);
stored_record!(InlineBytes, 27);

impl Record for StoredSettings {
    const KIND: u8 = 23;
    /// 2: `min_copies` joined the settings; 3: `inline_max_bytes`.
    const VERSION: u8 = 3;
    const MAX_BODY_BYTES: usize = 2 << 20;

    fn upgrade(version: u8, body: &[u8]) -> Result<Self, RecordError> {
        match version {
            1 => decode_body::<StoredSettingsV1>(body).map(|old| {
                StoredSettings(ClusterSettings {
                    replication_factor: old.replication_factor,
                    min_copies: DEFAULT_MIN_COPIES,
                    version: old.version,
                    inline_max_bytes: DEFAULT_INLINE_MAX_BYTES,
                })
            }),
            2 => decode_body::<StoredSettingsV2>(body).map(|old| {
                StoredSettings(ClusterSettings {
                    replication_factor: old.replication_factor,
                    min_copies: old.min_copies,
                    version: old.version,
                    inline_max_bytes: DEFAULT_INLINE_MAX_BYTES,
                })
            }),
            found => Err(RecordError::UnknownVersion {
                kind: Self::KIND,
                found,
                supported: Self::VERSION,
            }),
        }
    }
}

/// Version 1 of [`StoredSettings`]: the replication factor and version.
#[derive(Deserialize)]
struct StoredSettingsV1 {
    replication_factor: u32,
    version: Version,
}

/// Version 2 of [`StoredSettings`]: before `inline_max_bytes`.
#[derive(Deserialize)]
struct StoredSettingsV2 {
    replication_factor: u32,
    min_copies: u32,
    version: Version,
}

/// Reads and decodes the value under `key`; a value that does not decode
/// is a [`StoreError::Corrupt`].
pub fn read<T: Record, S: KvRead + ?Sized>(store: &S, key: &[u8]) -> Result<Option<T>, StoreError> {
    match store.get(key)? {
        None => Ok(None),
        Some(bytes) => decode_value(key, &bytes).map(Some),
    }
}

/// Decodes a value read under `key`.
pub fn decode_value<T: Record>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    record::decode(bytes).map_err(|source| StoreError::Corrupt {
        key: hex::encode(key),
        source,
    })
}

/// Encodes and stores `value` under `key`.
pub fn write<T: Record, S: KvStore + ?Sized>(
    store: &mut S,
    key: Vec<u8>,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = record::encode(value).map_err(StoreError::Encode)?;
    store.put(key, bytes)
}
