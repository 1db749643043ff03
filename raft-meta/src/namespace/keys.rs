//! The key layout of the namespace store. Every key starts with one tag
//! byte; integers are big-endian so byte order is numeric order.
//!
//! ```text
//! H                          state header (applied index, digest, counters)
//! R                          the root directory's entry
//! D <parent inode> <name>    directory entry -> StoredEntry
//! C <file inode> <chunk idx> chunk reference -> ChunkHash
//! I <file inode>             inline content of a small file -> InlineBytes
//! N <hash>                   reference count of a chunk (absent = 0)
//! G <hash>                   condemned: unreferenced, may be deleted -> since index
//! L <hash>                   a condemnation lifted (pardon, forget) -> at index
//! Y <index> <hash>           lift record expiry order (empty value)
//! F                          lift fence: every expired lift record was at or below it
//! T <inode>                  detached subtree awaiting reclaim -> kind
//! S <client>                 client session -> last seq, index, result
//! X <index> <client>         session expiry order (empty value)
//! P                          cluster settings (replication factor)
//! K <key id>                 client key -> StoredKey (secret hash, access)
//! ```

use toastyfs_proto::client_key::KeyId;
use toastyfs_proto::{ChunkHash, ClientId, InodeId};

pub const HEADER: &[u8] = b"H";
pub const ROOT: &[u8] = b"R";
pub const SETTINGS: &[u8] = b"P";
pub const COLLECT_FENCE: &[u8] = b"F";
pub const DIR_ENTRY: u8 = b'D';
pub const CHUNK: u8 = b'C';
pub const INLINE: u8 = b'I';
pub const REF_COUNT: u8 = b'N';
pub const GARBAGE: u8 = b'G';
pub const TRASH: u8 = b'T';
pub const SESSION: u8 = b'S';
pub const EXPIRY: u8 = b'X';
pub const LIFTED: u8 = b'L';
pub const LIFT_EXPIRY: u8 = b'Y';
pub const CLIENT_KEY: u8 = b'K';

/// The inode of the root directory.
pub const ROOT_INODE: InodeId = InodeId(1);

fn tagged(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut key = Vec::with_capacity(len);
    key.push(tag);
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

pub fn client_key(id: KeyId) -> Vec<u8> {
    tagged(CLIENT_KEY, &[&id.0.to_be_bytes()])
}

/// All entries of a directory share this prefix.
pub fn dir_prefix(dir: InodeId) -> Vec<u8> {
    tagged(DIR_ENTRY, &[&dir.0.to_be_bytes()])
}

pub fn dir_entry(dir: InodeId, name: &str) -> Vec<u8> {
    tagged(DIR_ENTRY, &[&dir.0.to_be_bytes(), name.as_bytes()])
}

/// The first key after `name` in its directory (names contain no NUL).
pub fn dir_entry_after(dir: InodeId, name: &str) -> Vec<u8> {
    tagged(DIR_ENTRY, &[&dir.0.to_be_bytes(), name.as_bytes(), &[0]])
}

/// The name part of a directory-entry key.
pub fn entry_name(key: &[u8]) -> &[u8] {
    key.get(9..).unwrap_or_default()
}

pub fn inline(file: InodeId) -> Vec<u8> {
    tagged(INLINE, &[&file.0.to_be_bytes()])
}

pub fn chunk_prefix(file: InodeId) -> Vec<u8> {
    tagged(CHUNK, &[&file.0.to_be_bytes()])
}

pub fn chunk(file: InodeId, index: u64) -> Vec<u8> {
    tagged(CHUNK, &[&file.0.to_be_bytes(), &index.to_be_bytes()])
}

/// The chunk index part of a chunk key.
pub fn chunk_index(key: &[u8]) -> Option<u64> {
    key.get(9..17)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

pub fn ref_count(hash: &ChunkHash) -> Vec<u8> {
    tagged(REF_COUNT, &[hash.as_bytes()])
}

pub fn garbage(hash: &ChunkHash) -> Vec<u8> {
    tagged(GARBAGE, &[hash.as_bytes()])
}

pub fn lifted(hash: &ChunkHash) -> Vec<u8> {
    tagged(LIFTED, &[hash.as_bytes()])
}

pub fn lift_expiry(index: u64, hash: &ChunkHash) -> Vec<u8> {
    tagged(LIFT_EXPIRY, &[&index.to_be_bytes(), hash.as_bytes()])
}

/// The (index, hash) of a lift expiry key.
pub fn parse_lift_expiry(key: &[u8]) -> Option<(u64, ChunkHash)> {
    let index = key.get(1..9)?.try_into().ok().map(u64::from_be_bytes)?;
    let hash = key.get(9..).and_then(ChunkHash::from_slice)?;
    Some((index, hash))
}

/// The first key after `<tag> <hash>` (for paging through `N` or `G`).
pub fn hash_key_after(tag: u8, hash: &ChunkHash) -> Vec<u8> {
    tagged(tag, &[hash.as_bytes(), &[0]])
}

/// The hash part of an `N` or `G` key.
pub fn key_hash(key: &[u8]) -> Option<ChunkHash> {
    key.get(1..).and_then(ChunkHash::from_slice)
}

pub fn trash(inode: InodeId) -> Vec<u8> {
    tagged(TRASH, &[&inode.0.to_be_bytes()])
}

/// The inode part of a trash key.
pub fn trash_inode(key: &[u8]) -> Option<InodeId> {
    key.get(1..9)
        .and_then(|b| b.try_into().ok())
        .map(|b| InodeId(u64::from_be_bytes(b)))
}

pub fn session(client: ClientId) -> Vec<u8> {
    tagged(SESSION, &[&client.0.to_be_bytes()])
}

pub fn expiry(index: u64, client: ClientId) -> Vec<u8> {
    tagged(EXPIRY, &[&index.to_be_bytes(), &client.0.to_be_bytes()])
}

/// The (index, client) of an expiry key.
pub fn parse_expiry(key: &[u8]) -> Option<(u64, ClientId)> {
    let index = key.get(1..9)?.try_into().ok().map(u64::from_be_bytes)?;
    let client = key.get(9..17)?.try_into().ok().map(u64::from_be_bytes)?;
    Some((index, ClientId(client)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_sort_by_directory_then_name() {
        let a = dir_entry(InodeId(2), "b");
        assert!(dir_entry(InodeId(1), "z") < a);
        assert!(dir_entry(InodeId(2), "a") < a);
        assert!(a < dir_entry_after(InodeId(2), "b"));
        assert!(dir_entry_after(InodeId(2), "b") < dir_entry(InodeId(2), "b0"));
        assert_eq!(entry_name(&a), b"b");
    }

    #[test]
    fn chunk_and_expiry_keys_parse_back() {
        assert_eq!(chunk_index(&chunk(InodeId(9), 300)), Some(300));
        assert_eq!(
            parse_expiry(&expiry(5, ClientId(7))),
            Some((5, ClientId(7)))
        );
        assert_eq!(trash_inode(&trash(InodeId(4))), Some(InodeId(4)));
        let hash = ChunkHash([3; 32]);
        assert_eq!(parse_lift_expiry(&lift_expiry(8, &hash)), Some((8, hash)));
        assert!(lift_expiry(8, &ChunkHash([9; 32])) < lift_expiry(9, &hash));
        assert_eq!(key_hash(&garbage(&hash)), Some(hash));
        assert!(garbage(&hash) < hash_key_after(GARBAGE, &hash));
        assert!(hash_key_after(GARBAGE, &hash) < garbage(&ChunkHash([4; 32])));
    }
}
