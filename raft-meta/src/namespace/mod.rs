//! The namespace state machine: directories, files, chunk lists, chunk
//! reference counts and client sessions, as a pure function of the log.
//!
//! `Namespace::apply(store, index, proposal)` validates and applies one
//! proposal and returns its result; `Namespace::query` answers reads. Both
//! see the state only through [`kv::KvStore`], so the same code runs over an
//! in-memory map and over a RocksDB write batch.
//!
//! Architecture invariant: nothing here reads a clock, draws a random
//! number, iterates a hash map, does I/O or awaits. Everything that is not
//! a function of the log (wall-clock time, client ids) arrives inside the
//! proposal, so every replica and every replay reaches byte-identical
//! state. A refused operation is a successful apply with an error result;
//! a [`kv::StoreError`] is not a result and must stop the node.
//!
//! Work per command is bounded: lists read one page, a recursive delete
//! detaches the subtree and later [`Command::Reclaim`] commands free it in
//! steps of `reclaim_budget` keys, and truncation or a write touches at most
//! `MAX_CHUNKS_PER_OP` chunk slots.
//!
//! The key layout (`keys`) and the stored records (`stored`) are private
//! to this module: the rest of the node reads the state only through the
//! read-only queries re-exported here ([`header`], [`is_referenced`],
//! [`is_condemned`],
//! [`referenced_chunks_page`], [`garbage_page`], [`trash_pending`],
//! [`settings::read`]), each taking any [`kv::KvRead`].

mod chunks;
pub mod client_keys;
mod collect;
mod create;
mod guard;
mod inline;
pub mod invariants;
mod keys;
pub mod kv;
mod query;
mod reads;
mod remove;
mod rename;
mod sessions;
pub mod settings;
mod stored;
mod tree;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::formats::stored_record_samples;

pub use reads::{garbage_page, is_condemned, is_referenced, referenced_chunks_page, trash_pending};
pub use stored::StateHeader;

/// The key of the [`StateHeader`] (applied index and digest) in the state.
pub const HEADER_KEY: &[u8] = keys::HEADER;

use sha2::{Digest, Sha256};
use toastyfs_proto::namespace::{
    Command, CommandResult, FsError, Outcome, Proposal, Query, QueryResult,
};
use toastyfs_proto::{ChunkHash, Version};

use kv::{KvRead, KvStore, StoreError};

/// Limits that shape how the state evolves. Every replica must use the same
/// values (they are part of the replicated behaviour), so the metadata
/// service uses [`NamespaceConfig::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceConfig {
    /// A session unused for this many log entries expires.
    pub session_ttl_entries: u64,
    /// At most this many sessions are kept; the least recently used goes.
    pub max_sessions: u64,
    /// Keys one `Reclaim` (or one eager file delete) may touch.
    pub reclaim_budget: usize,
    /// Expired sessions (and expired lift records) removed per applied
    /// entry.
    pub expire_per_apply: usize,
    /// A lift record (a chunk's condemnation lifted) is kept for this many
    /// log entries; a write placed before an expired one is refused for
    /// every unreferenced chunk.
    pub lift_ttl_entries: u64,
}

impl Default for NamespaceConfig {
    fn default() -> Self {
        NamespaceConfig {
            session_ttl_entries: 10_000_000,
            max_sessions: 100_000,
            reclaim_budget: 4096,
            expire_per_apply: 4,
            lift_ttl_entries: 10_000_000,
        }
    }
}

/// Why an operation did not produce an outcome: refused (a result) or the
/// store failed (fail-stop).
#[derive(Debug)]
pub(crate) enum OpError {
    Refused(FsError),
    Store(StoreError),
}

impl From<FsError> for OpError {
    fn from(e: FsError) -> Self {
        OpError::Refused(e)
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Store(e)
    }
}

pub(crate) type OpResult<T> = Result<T, OpError>;

/// One entry's application in progress: the store, the header it will
/// write back, and the chunks freed so far.
pub(crate) struct Txn<'a, S: KvStore + ?Sized> {
    pub store: &'a mut S,
    pub header: StateHeader,
    pub index: u64,
    pub time_ms: u64,
    pub config: &'a NamespaceConfig,
    pub freed: Vec<ChunkHash>,
    /// The applied index at which the command's chunks were placed
    /// ([`Command::Placed`]; 0 when it names none).
    pub placed_at: u64,
}

impl<S: KvStore + ?Sized> Txn<'_, S> {
    /// Bumps the cluster-wide version counter and returns the new value,
    /// which the command stamps on everything it changes.
    pub fn bump_version(&mut self) -> Version {
        self.header.version = Version(self.header.version.0 + 1);
        self.header.version
    }

    pub fn take_freed(&mut self) -> Vec<ChunkHash> {
        std::mem::take(&mut self.freed)
    }
}

/// The namespace state machine.
#[derive(Debug, Clone, Default)]
pub struct Namespace {
    config: NamespaceConfig,
}

impl Namespace {
    pub fn new(config: NamespaceConfig) -> Namespace {
        Namespace { config }
    }

    pub fn config(&self) -> &NamespaceConfig {
        &self.config
    }

    /// Applies the proposal at log `index` (greater than any applied
    /// before) and returns its result.
    pub fn apply<S: KvStore + ?Sized>(
        &self,
        store: &mut S,
        index: u64,
        proposal: &Proposal,
    ) -> Result<CommandResult, StoreError> {
        let header = header(store)?;
        if index <= header.applied_index {
            return Err(StoreError::OutOfOrder {
                index,
                applied: header.applied_index,
            });
        }
        let mut txn = Txn {
            store,
            header,
            index,
            time_ms: proposal.time_ms,
            config: &self.config,
            freed: Vec::new(),
            placed_at: 0,
        };
        let result = match proposal.session {
            Some(tag) => sessions::run(&mut txn, tag, |txn| execute(txn, &proposal.command))?,
            None => finish(execute(&mut txn, &proposal.command))?,
        };
        sessions::expire(&mut txn)?;
        collect::expire_lifts(&mut txn)?;
        txn.header.digest = chain_digest(&txn.header.digest, index, proposal, &result)?;
        txn.header.applied_index = index;
        stored::write(txn.store, keys::HEADER.to_vec(), &txn.header)?;
        Ok(result)
    }

    /// Answers a read-only query from the current state.
    pub fn query<S: KvRead + ?Sized>(
        &self,
        store: &S,
        query: &Query,
    ) -> Result<QueryResult, StoreError> {
        finish(query::answer(store, query))
    }
}

/// The state header: applied index, digest and counters.
pub fn header<S: KvRead + ?Sized>(store: &S) -> Result<StateHeader, StoreError> {
    Ok(stored::read(store, keys::HEADER)?.unwrap_or_default())
}

/// Splits an operation's error into a refused result or a storage failure.
pub(crate) fn finish<T>(result: OpResult<T>) -> Result<Result<T, FsError>, StoreError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(OpError::Refused(e)) => Ok(Err(e)),
        Err(OpError::Store(e)) => Err(e),
    }
}

fn execute<S: KvStore + ?Sized>(txn: &mut Txn<'_, S>, command: &Command) -> OpResult<Outcome> {
    match command {
        Command::CreateDir {
            path,
            parents,
            expect,
        } => create::create_dir(txn, path, *parents, *expect),
        Command::CreateFile {
            path,
            chunk_size,
            expect,
        } => create::create_file(txn, path, *chunk_size, *expect),
        Command::Delete {
            path,
            recursive,
            expect,
        } => remove::delete(txn, path, *recursive, *expect),
        Command::WriteCommit(write) => chunks::write_commit(txn, write),
        Command::Rename {
            from,
            to,
            replace,
            expect,
        } => rename::rename(txn, from, to, *replace, *expect),
        Command::Truncate {
            path,
            length,
            cut_chunk,
            expect,
        } => chunks::truncate(txn, path, *length, *cut_chunk, *expect),
        Command::Reclaim => remove::reclaim(txn),
        Command::SetReplicationFactor { factor, expect } => {
            settings::set_replication_factor(txn, *factor, *expect)
        }
        Command::ForgetGarbage { hashes } => collect::forget(txn, hashes),
        Command::Guarded { checks, command } => guard::guarded(txn, checks, command),
        Command::SetMinCopies { copies, expect } => settings::set_min_copies(txn, *copies, *expect),
        Command::Condemn { hashes } => collect::condemn_unreferenced(txn, hashes),
        Command::Pardon { hashes } => collect::pardon(txn, hashes),
        Command::Placed { placed_at, command } => collect::placed(txn, *placed_at, command),
        Command::RegisterClient => sessions::register(txn),
        Command::CreateKey {
            name,
            access,
            secret_hash,
        } => client_keys::create(txn, name, *access, *secret_hash),
        Command::RevokeKey { id } => client_keys::revoke(txn, *id),
        Command::WriteInline(write) => inline::write_inline(txn, write),
        Command::SetInlineMax { bytes, expect } => settings::set_inline_max(txn, *bytes, *expect),
    }
}

/// The next link of the chained digest: SHA-256 over the previous digest,
/// the index, and the postcard encodings of the proposal and the result
/// (the bodies of their records).
pub fn chain_digest(
    previous: &[u8; 32],
    index: u64,
    proposal: &Proposal,
    result: &CommandResult,
) -> Result<[u8; 32], StoreError> {
    let encode_failed =
        |e: postcard::Error| StoreError::Encode(toastyfs_proto::RecordError::Encode(e.to_string()));
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(previous);
    buf.extend_from_slice(&index.to_le_bytes());
    let buf = postcard::to_extend(proposal, buf).map_err(encode_failed)?;
    let buf = postcard::to_extend(result, buf).map_err(encode_failed)?;
    Ok(Sha256::digest(&buf).into())
}
