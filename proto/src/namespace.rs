//! Namespace commands, queries, their results and errors: what a client
//! asks of the metadata service and what it gets back.
//!
//! A [`Proposal`] (a mutating [`Command`] plus its session tag and the
//! leader's clock reading) is what goes into the Raft log; a [`Query`] is
//! answered from the applied state without touching the log. Failed
//! operations are values ([`FsError`]), applied identically everywhere.

use serde::{Deserialize, Serialize};

use crate::client_key::{Access, KeyId, KeyInfo, MAX_KEYS};
use crate::hash::ChunkHash;
use crate::ids::{ClientId, Seq, SessionTag, Version};
use crate::path::FsPath;
use crate::record::Record;

/// Smallest chunk size a file may be created with (4 KiB).
pub const MIN_CHUNK_SIZE: u32 = 4 << 10;
/// Largest chunk size a file may be created with (64 MiB).
pub const MAX_CHUNK_SIZE: u32 = 64 << 20;

/// A chunk size a file may have: [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`].
/// One rule for the state machine, the client and the CLI.
pub fn check_chunk_size(size: u32) -> Result<(), FsError> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size) {
        return Err(FsError::InvalidChunkSize { size });
    }
    Ok(())
}
/// Chunk size used when the caller does not choose one (4 MiB).
pub const DEFAULT_CHUNK_SIZE: u32 = 4 << 20;
/// Most chunk hashes one write commit or one read plan carries.
pub const MAX_CHUNKS_PER_OP: usize = 4096;
/// Largest file length (2^50 bytes, 1 PiB).
pub const MAX_FILE_LENGTH: u64 = 1 << 50;
/// Largest page a list query returns.
pub const MAX_LIST_PAGE: u32 = 10_000;

/// A mutating namespace operation. `expect`, where present, makes the
/// operation conditional on the current version of the entity it names (for
/// creations: of the parent directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create a directory; with `parents`, create missing ancestors too and
    /// succeed if the directory already exists (like `mkdir -p`).
    CreateDir {
        path: FsPath,
        parents: bool,
        expect: Option<Version>,
    },
    /// Create an empty file whose chunk size is fixed from now on.
    CreateFile {
        path: FsPath,
        chunk_size: u32,
        expect: Option<Version>,
    },
    /// Delete a file or an empty directory; a non-empty directory only
    /// with `recursive` (its contents are reclaimed by later `Reclaim`s).
    Delete {
        path: FsPath,
        recursive: bool,
        expect: Option<Version>,
    },
    /// Replace the chunks covering a byte range with new ones.
    WriteCommit(WriteCommit),
    /// Move `from` to `to` atomically. An existing `to` is replaced only
    /// with `replace`, only by the same kind, and only if it is a file or
    /// an empty directory.
    Rename {
        from: FsPath,
        to: FsPath,
        replace: bool,
        expect: Option<Version>,
    },
    /// Set a file's length. Shrinking to the middle of a stored chunk needs
    /// `cut_chunk`: the hash of that chunk cut at the new length, so bytes
    /// past the end can never reappear when the file grows again.
    Truncate {
        path: FsPath,
        length: u64,
        cut_chunk: Option<ChunkHash>,
        expect: Option<Version>,
    },
    /// Do a bounded amount of the deferred work of recursive deletes.
    Reclaim,
    /// Set the cluster's replication factor (copies of every chunk the
    /// leader keeps); `expect` is checked against the settings' version.
    SetReplicationFactor {
        factor: u32,
        expect: Option<Version>,
    },
    /// Forget garbage chunks no chunk server holds any more (proposed by
    /// the leader once their copies are deleted). A hash that is not
    /// garbage (referenced again, or unknown) is left alone. At most
    /// [`MAX_CHUNKS_PER_OP`] hashes.
    ForgetGarbage { hashes: Vec<ChunkHash> },
    /// Apply `command` (a [`Command::WriteCommit`] or a
    /// [`Command::Truncate`]) only if every slot named in `checks` of its
    /// file still holds the chunk the command was built from; otherwise
    /// refuse with [`FsError::ChunkChanged`] and change nothing. This is how
    /// a read-modify-write of part of a chunk (an unaligned write, a
    /// truncation's cut chunk) stays correct beside other writers without
    /// locking the whole file: disjoint writes to one chunk are serialised
    /// by the log, and the loser redoes its patch on the winner's chunk.
    /// At most [`MAX_GUARD_CHECKS`] checks.
    Guarded {
        checks: Vec<SlotCheck>,
        #[serde(deserialize_with = "crate::nesting::deserialize")]
        command: Box<Command>,
    },
    /// Set how many chunk servers must hold a durable copy of a chunk
    /// before a write that uses it is acknowledged (1..=16; a write needs
    /// the smaller of this and the replication factor); `expect` is checked
    /// against the settings' version.
    SetMinCopies {
        copies: u32,
        expect: Option<Version>,
    },
    /// Decide that these chunks may be deleted (proposed by the leader for
    /// chunks that chunk servers hold but no file references, once no
    /// recent placement protects them). A hash that is referenced or
    /// already condemned is left alone. Chunk servers delete only
    /// condemned chunks (and extra copies of referenced ones). At most
    /// [`MAX_CHUNKS_PER_OP`] hashes.
    Condemn { hashes: Vec<ChunkHash> },
    /// Lift the condemnation of unreferenced chunks a client is about to
    /// upload again (proposed by the leader before it answers such a
    /// placement). Commits placed before the pardon are still refused for
    /// them: copies from before it may be deleted by earlier orders. At
    /// most [`MAX_CHUNKS_PER_OP`] hashes.
    Pardon { hashes: Vec<ChunkHash> },
    /// Apply `command` (a [`Command::WriteCommit`], a [`Command::Truncate`]
    /// or a [`Command::Guarded`] one of them) whose new chunks were placed
    /// when the leader had applied the log up to `placed_at` (from the
    /// [`crate::chunks::PlacementReply`]). A chunk the command references
    /// that no file references now is accepted only if it was not
    /// condemned, pardoned or forgotten after `placed_at`; otherwise the
    /// command is refused with [`FsError::ChunkCollected`] and the client
    /// places and uploads it again. An unwrapped write is checked as if
    /// placed at 0.
    Placed {
        placed_at: u64,
        #[serde(deserialize_with = "crate::nesting::deserialize")]
        command: Box<Command>,
    },
    /// Open a client session (Raft thesis §6.3): the state records a new
    /// session under the client id it assigns (the namespace index of this
    /// command) and answers [`Outcome::Registered`]. Requests tagged with
    /// any id the state does not hold are refused with
    /// [`FsError::SessionExpired`], so a request can never start a session
    /// by itself and a session evicted after its request was applied can
    /// never apply that request again. Sent without a session tag; a
    /// registration whose answer is lost only leaves an idle session that
    /// expires.
    RegisterClient,
    /// Create a client key (`client_key`) under the id this command's log
    /// index gives it, keeping only the hash of its secret. Needs the
    /// cluster secret. At most [`crate::client_key::MAX_KEYS`] keys.
    CreateKey {
        name: String,
        access: Access,
        secret_hash: [u8; 32],
    },
    /// Revoke a client key: refused everywhere from now on. Its record
    /// stays, marked with the time, so the leader can tell chunk servers
    /// to refuse the tokens minted for it. Needs the cluster secret.
    RevokeKey { id: KeyId },
    /// Replace a file's whole content with `content`, kept in the namespace
    /// itself (no chunk), creating the file if needed. At most the
    /// cluster's `inline_max_bytes`; the chunks the file held are released.
    WriteInline(WriteInline),
    /// Set the largest file content kept inline (0 ..= [`MAX_INLINE_BYTES`];
    /// 0 turns inline files off); `expect` is checked against the
    /// settings' version. Files already inline stay so.
    SetInlineMax { bytes: u32, expect: Option<Version> },
}

/// The largest `inline_max_bytes` a cluster accepts: one smallest chunk,
/// so inline content always fits in the first chunk of any file when it
/// has to move to a chunk.
pub const MAX_INLINE_BYTES: u32 = MIN_CHUNK_SIZE;
/// Inline files unless the cluster is told otherwise.
pub const DEFAULT_INLINE_MAX_BYTES: u32 = 4 << 10;

/// A whole-content write of a small file (see [`Command::WriteInline`]).
/// `expect` is checked against the file (a missing file has version 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteInline {
    pub path: FsPath,
    #[serde(with = "serde_bytes_vec")]
    pub content: Vec<u8>,
    pub expect: Option<Version>,
    /// Create the file with this chunk size if it does not exist (the
    /// size its content gets if it later outgrows inline).
    pub create_with_chunk_size: Option<u32>,
}

/// Bytes as one length-prefixed block, not a sequence of numbers.
mod serde_bytes_vec {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(Visit)
    }
}

/// Most slot checks one [`Command::Guarded`] carries (a write patches at
/// most its first and last chunk; a truncation one).
pub const MAX_GUARD_CHECKS: usize = 16;

/// What one chunk slot of a file held when a client read it to patch it:
/// `holds` is the chunk's hash, or `None` for a hole or a slot past the end
/// (and for every slot of a file that does not exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotCheck {
    pub index: u64,
    pub holds: Option<ChunkHash>,
}

/// Copies of every chunk unless the cluster is told otherwise.
pub const DEFAULT_REPLICATION_FACTOR: u32 = 3;
/// The largest replication factor a cluster accepts.
pub const MAX_REPLICATION_FACTOR: u32 = 16;

/// Durable copies a write waits for unless the cluster is told otherwise.
pub const DEFAULT_MIN_COPIES: u32 = 2;

/// Cluster-wide settings kept in the namespace state (so every node, and
/// every leader after it, agrees on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSettings {
    pub replication_factor: u32,
    /// Chunk servers that must hold a durable copy of every new chunk
    /// before its write is acknowledged (see [`ClusterSettings::copies_to_acknowledge`]).
    pub min_copies: u32,
    /// The version of the last change (0: never changed).
    pub version: Version,
    /// Files of at most this many bytes written whole keep their content
    /// in the namespace ([`Command::WriteInline`]); 0: none.
    pub inline_max_bytes: u32,
}

impl ClusterSettings {
    /// Copies a write waits for: `min_copies`, but never more than the
    /// replication factor (the cluster would not keep them).
    pub fn copies_to_acknowledge(&self) -> u32 {
        self.min_copies.min(self.replication_factor).max(1)
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            replication_factor: DEFAULT_REPLICATION_FACTOR,
            min_copies: DEFAULT_MIN_COPIES,
            version: Version(0),
            inline_max_bytes: DEFAULT_INLINE_MAX_BYTES,
        }
    }
}

/// A write of the byte range `[offset, offset + length)`.
///
/// `chunks` holds the new hash of every chunk the range touches, in order,
/// from chunk `offset / chunk_size` to chunk `(offset + length - 1) /
/// chunk_size`; the client built each one (a partial chunk is the old chunk
/// patched). A write past the end extends the file; the chunks between the
/// old end and `offset` become holes that read as zeros.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCommit {
    pub path: FsPath,
    pub offset: u64,
    pub length: u64,
    pub chunks: Vec<ChunkHash>,
    pub expect: Option<Version>,
    /// Create the file with this chunk size if it does not exist.
    pub create_with_chunk_size: Option<u32>,
}

/// What goes into the Raft log: a command, who sent it, and the wall-clock
/// time the leader's proposer stamped on it (whatever the sender put there
/// is overwritten; the state machine reads no clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub session: Option<SessionTag>,
    pub time_ms: u64,
    pub command: Command,
}

/// A read-only question about the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    Stat {
        path: FsPath,
    },
    /// Up to `limit` entries of a directory, in byte order of their names,
    /// starting after `after`.
    List {
        path: FsPath,
        after: Option<String>,
        limit: u32,
    },
    /// The chunks covering `[offset, offset + length)`, clipped at the end
    /// of the file and at [`MAX_CHUNKS_PER_OP`] chunks.
    ReadPlan {
        path: FsPath,
        offset: u64,
        length: u64,
    },
    /// The cluster settings.
    Settings,
    /// Every client key, valid and revoked (never their secrets).
    ListKeys,
}

/// Directory or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EntryKind {
    Dir,
    File,
}

/// What `stat` and `list` say about one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryInfo {
    pub name: String,
    pub kind: EntryKind,
    pub version: Version,
    pub mtime_ms: u64,
    /// Bytes, for files; 0 for directories.
    pub length: u64,
    /// For files; 0 for directories.
    pub chunk_size: u32,
}

/// One page of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub dir_version: Version,
    pub entries: Vec<EntryInfo>,
    /// Pass as `after` to get the next page; `None` when this was the last.
    pub next: Option<String>,
}

/// Which chunks hold a byte range of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPlan {
    pub version: Version,
    pub chunk_size: u32,
    pub file_length: u64,
    /// The range actually covered: `offset` as asked, `length` clipped.
    pub offset: u64,
    pub length: u64,
    /// Index of the first chunk in `chunks`.
    pub first_chunk: u64,
    /// One per chunk of the range; `None` is a hole (reads as zeros).
    pub chunks: Vec<Option<ChunkHash>>,
}

/// A successful command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// An entry was created (or, for `mkdir -p`, already existed).
    Created { version: Version },
    Deleted {
        version: Version,
        freed: Vec<ChunkHash>,
    },
    Written {
        version: Version,
        file_length: u64,
        bytes_written: u64,
        freed: Vec<ChunkHash>,
    },
    Renamed {
        version: Version,
        freed: Vec<ChunkHash>,
    },
    Truncated {
        version: Version,
        freed: Vec<ChunkHash>,
    },
    /// `pending` is true while detached subtrees remain to be reclaimed.
    Reclaimed {
        freed: Vec<ChunkHash>,
        pending: bool,
    },
    /// The cluster settings changed.
    SettingsChanged { version: Version },
    /// This many garbage records were forgotten.
    GarbageForgotten { count: u64 },
    /// This many chunks were condemned (may now be deleted).
    Condemned { count: u64 },
    /// This many condemned chunks were pardoned.
    Pardoned { count: u64 },
    /// A session was opened under this client id; its first request
    /// carries sequence 1.
    Registered { client: ClientId },
    /// A client key was created under this id.
    KeyCreated { id: KeyId },
    /// A client key was revoked.
    KeyRevoked { id: KeyId },
}

impl Outcome {
    /// Chunks whose reference count dropped to zero in this command.
    pub fn freed(&self) -> &[ChunkHash] {
        match self {
            Outcome::Created { .. }
            | Outcome::SettingsChanged { .. }
            | Outcome::GarbageForgotten { .. }
            | Outcome::Condemned { .. }
            | Outcome::Pardoned { .. }
            | Outcome::Registered { .. }
            | Outcome::KeyCreated { .. }
            | Outcome::KeyRevoked { .. } => &[],
            Outcome::Deleted { freed, .. }
            | Outcome::Written { freed, .. }
            | Outcome::Renamed { freed, .. }
            | Outcome::Truncated { freed, .. }
            | Outcome::Reclaimed { freed, .. } => freed,
        }
    }
}

/// A namespace operation that was refused. Every variant is a final answer
/// for that request: retrying the same request gets the same error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum FsError {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: already exists")]
    AlreadyExists { path: String },
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error("{path}: is a directory")]
    IsADirectory { path: String },
    #[error("{path}: directory not empty (delete it recursively)")]
    NotEmpty { path: String },
    #[error("{path}: version is {actual}, the request expected {expected}")]
    VersionMismatch {
        path: String,
        expected: Version,
        actual: Version,
    },
    #[error("the root directory cannot be {action}")]
    RootNotAllowed { action: String },
    #[error("cannot move {from} into its own subtree {to}")]
    RenameIntoOwnSubtree { from: String, to: String },
    #[error("{to}: exists (pass replace to overwrite it)")]
    RenameTargetExists { to: String },
    #[error("cannot replace {to} with {from}: one is a file, the other a directory")]
    RenameKindMismatch { from: String, to: String },
    #[error("chunk size {size} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}")]
    InvalidChunkSize { size: u32 },
    #[error("the write covers {expected} chunks but carries {got} hashes")]
    ChunkCountMismatch { expected: u64, got: u64 },
    #[error(
        "the operation touches {count} chunks; the limit per operation is {MAX_CHUNKS_PER_OP}"
    )]
    TooManyChunks { count: u64 },
    #[error("a file may be at most {MAX_FILE_LENGTH} bytes; the operation asks for {length}")]
    FileTooLarge { length: u64 },
    #[error(
        "{path}: shrinking to {length} cuts a chunk; the request must carry the cut chunk's hash"
    )]
    TruncateNeedsCutChunk { path: String, length: u64 },
    #[error("{path}: a cut chunk was given but the new length {length} cuts no stored chunk")]
    UnexpectedCutChunk { path: String, length: u64 },
    #[error("list page size {limit} is outside 1..={MAX_LIST_PAGE}")]
    InvalidPageSize { limit: u32 },
    #[error("list cursor {after:?} is not a valid entry name")]
    InvalidCursor { after: String },
    #[error("a write of 0 bytes must carry no chunks")]
    EmptyWriteWithChunks,
    #[error("client session {client} is unknown to the cluster (expired, evicted or never registered); register a new session")]
    SessionExpired { client: ClientId },
    #[error("client {client} sent sequence {seq}, but {last} was already applied and only its result is kept")]
    StaleSequence {
        client: ClientId,
        seq: Seq,
        last: Seq,
    },
    #[error("replication factor {factor} is outside 1..={MAX_REPLICATION_FACTOR}")]
    InvalidReplicationFactor { factor: u32 },
    #[error("min copies {copies} is outside 1..={MAX_REPLICATION_FACTOR}")]
    InvalidMinCopies { copies: u32 },
    /// A guarded command's slot no longer holds the chunk it was built
    /// from (another writer changed it): read it again and redo the patch.
    #[error("chunk {index} of {path} changed since it was read; redo the write")]
    ChunkChanged { path: String, index: u64 },
    #[error("invalid guarded command: {reason}")]
    InvalidGuard { reason: String },
    /// A chunk the command references may have been deleted as garbage
    /// since it was placed: place and upload it again, then commit again.
    #[error("chunk {hash} was collected as garbage after this write placed it; upload it again and commit again")]
    ChunkCollected { hash: ChunkHash },
    #[error("no client key {id}")]
    NoSuchKey { id: KeyId },
    #[error("client key {id} is already revoked")]
    KeyAlreadyRevoked { id: KeyId },
    #[error("invalid key name: {reason}")]
    InvalidKeyName { reason: String },
    #[error("the cluster holds {MAX_KEYS} client keys already; revoke some first")]
    TooManyKeys,
    /// The file keeps its content inline: a write must cover all of it
    /// (the client moves the content to a chunk first, then writes).
    #[error("{path}: its content is kept inline; move it to a chunk before writing part of it")]
    InlineContent { path: String },
    #[error("{length} bytes is more than this cluster keeps inline ({max})")]
    InlineTooLarge { length: u64, max: u32 },
    #[error("inline limit {bytes} is outside 0..={MAX_INLINE_BYTES}")]
    InvalidInlineMax { bytes: u32 },
}

/// What applying a proposal produced.
pub type CommandResult = Result<Outcome, FsError>;

/// A successful query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryReply {
    Stat(EntryInfo),
    List(Listing),
    ReadPlan(ReadPlan),
    Settings(ClusterSettings),
    Keys(Vec<KeyInfo>),
    /// The answer to a `ReadPlan` of a file whose content is inline: all
    /// of it (at most [`MAX_INLINE_BYTES`]), whatever range was asked.
    Inline(InlineContent),
}

/// A file whose content the namespace keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineContent {
    pub version: Version,
    pub chunk_size: u32,
    #[serde(with = "serde_bytes_vec")]
    pub content: Vec<u8>,
}

/// What answering a query produced.
pub type QueryResult = Result<QueryReply, FsError>;

/// Record kinds of the namespace types (see docs/architecture.md).
pub mod kinds {
    pub const PROPOSAL: u8 = 1;
    pub const COMMAND_RESULT: u8 = 2;
    pub const QUERY: u8 = 3;
    pub const QUERY_RESULT: u8 = 4;
}

impl Record for Proposal {
    const KIND: u8 = kinds::PROPOSAL;
    /// A write commit of the most chunks and the longest paths fits.
    const MAX_BODY_BYTES: usize = 1 << 20;
}

impl Record for CommandResult {
    const KIND: u8 = kinds::COMMAND_RESULT;
    const MAX_BODY_BYTES: usize = 1 << 20;
}

impl Record for Query {
    const KIND: u8 = kinds::QUERY;
    const MAX_BODY_BYTES: usize = 64 << 10;
}

impl Record for QueryResult {
    const KIND: u8 = kinds::QUERY_RESULT;
    /// A full list page of the longest names fits.
    const MAX_BODY_BYTES: usize = 8 << 20;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{assert_tamper_evident, decode, encode};
    use crate::FsPath;

    fn p(s: &str) -> FsPath {
        FsPath::new(s).unwrap()
    }

    /// Every namespace record type rejects every truncation and bit flip
    /// (proposals of every command: `tests/formats.rs`).
    #[test]
    fn namespace_records_are_tamper_evident() {
        let freed = vec![ChunkHash::of(b"z")];
        assert_tamper_evident::<CommandResult>(&Ok(Outcome::Deleted {
            version: Version(4),
            freed,
        }));
        assert_tamper_evident::<CommandResult>(&Err(FsError::NotFound { path: "/x".into() }));
        assert_tamper_evident(&Query::List {
            path: p("/"),
            after: Some("b".into()),
            limit: 100,
        });
        let info = EntryInfo {
            name: "f".into(),
            kind: EntryKind::File,
            version: Version(2),
            mtime_ms: 7,
            length: 9,
            chunk_size: MIN_CHUNK_SIZE,
        };
        let listing = Listing {
            dir_version: Version(3),
            entries: vec![info],
            next: Some("f".into()),
        };
        assert_tamper_evident::<QueryResult>(&Ok(QueryReply::List(listing)));
    }

    /// A path that breaks the rules never decodes, even inside a record
    /// with a valid checksum.
    #[test]
    fn invalid_paths_do_not_decode() {
        let query = Query::Stat { path: p("/ab") };
        let mut bytes = encode(&query).unwrap();
        let at = bytes.windows(3).position(|w| w == b"/ab").unwrap();
        bytes[at + 1] = b'.';
        bytes[at + 2] = b'.';
        let body_crc = {
            let mut h = crc32fast::Hasher::new();
            h.update(&bytes[2..8]);
            h.update(&bytes[12..]);
            h.finalize()
        };
        bytes[8..12].copy_from_slice(&body_crc.to_le_bytes());
        assert!(matches!(
            decode::<Query>(&bytes),
            Err(crate::RecordError::Malformed(_))
        ));
    }
}
