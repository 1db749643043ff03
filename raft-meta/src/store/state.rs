//! The Raft state machine (openraft storage v2): a thin adapter that
//! decodes entries, runs [`Namespace::apply`] through an overlay, and writes
//! the namespace changes together with the applied log id in one atomic
//! RocksDB batch.
//!
//! A storage error while applying is fatal: openraft stops the node
//! (fail-stop); an entry is never skipped.

use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend};
use rocksdb::WriteBatch;
use toastyfs_proto::namespace::{Query, QueryResult};

use super::snapshot::{self, SnapshotBuilder};
use super::{dec, enc, io_err, raft_keys, Db, CF_RAFT, CF_STATE};
use crate::limits::APPLY_GROUP_ENTRIES;
use crate::namespace::kv::{KvPair, KvRead, Overlay, StoreError};
use crate::namespace::{self, Namespace, StateHeader};
use crate::types::{
    ApplyReply, Entry, LogId, LogIdRecord, MembershipRecord, SnapshotMeta, StorageError,
    StoredMembership, TypeConfig,
};

/// The state machine; reads go through [`DbReader`].
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Db>,
    namespace: Namespace,
}

/// A consistent read view of the namespace state (a RocksDB snapshot).
pub struct DbReader<'a> {
    db: &'a Db,
    snapshot: rocksdb::Snapshot<'a>,
}

impl<'a> DbReader<'a> {
    /// A view of the state as it is now; waits while a snapshot install
    /// replaces it, so a view is never of a half-loaded state.
    pub fn new(db: &'a Db) -> DbReader<'a> {
        let _gate = db.install_gate.read().unwrap_or_else(|p| p.into_inner());
        DbReader {
            db,
            snapshot: db.db.snapshot(),
        }
    }
}

fn backend(e: rocksdb::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl KvRead for DbReader<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.snapshot
            .get_cf(self.db.cf(CF_STATE), key)
            .map_err(backend)
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        let start = if from < prefix { prefix } else { from };
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        // A raw iterator, advanced only when another pair is wanted: the
        // convenience iterator steps ahead after each item, and one step can
        // walk a long run of deleted keys (tombstones) for nothing.
        let mut iter = self.snapshot.raw_iterator_cf(self.db.cf(CF_STATE));
        iter.seek(start);
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.to_vec(), value.to_vec()));
            if out.len() >= limit {
                break;
            }
            iter.next();
        }
        iter.status().map_err(backend)?;
        Ok(out)
    }
}

/// Answers a namespace query from the node's current state.
pub fn query(db: &Db, namespace: &Namespace, query: &Query) -> Result<QueryResult, StoreError> {
    namespace.query(&DbReader::new(db), query)
}

/// The namespace's applied index and digest.
pub fn state_header(db: &Db) -> Result<StateHeader, StoreError> {
    namespace::header(&DbReader::new(db))
}

fn corrupt(message: &str) -> StorageError {
    StorageError::from(openraft::StorageIOError::read(openraft::AnyError::error(
        message,
    )))
}

impl StateMachine {
    /// Opens the state machine, finishing an interrupted snapshot install.
    pub fn open(db: Arc<Db>) -> Result<StateMachine, StorageError> {
        snapshot::adopt_legacy(&db)?;
        let sm = StateMachine {
            db,
            namespace: Namespace::default(),
        };
        if sm
            .db
            .db
            .get_cf(sm.db.cf(CF_RAFT), raft_keys::INSTALLING)
            .map_err(|e| io_err(&e))?
            .is_some()
        {
            tracing::warn!("finishing a snapshot install interrupted by a crash");
            let meta = sm
                .read_meta::<snapshot::HeaderRecord>(raft_keys::INSTALLING)?
                .map(|h| h.0)
                .ok_or_else(|| corrupt("the snapshot install mark does not decode"))?;
            let path = snapshot::file_of(&sm.db, &meta);
            if !path.exists() {
                return Err(corrupt(
                    "a snapshot install was interrupted and its snapshot file is gone",
                ));
            }
            snapshot::load(&sm.db, &meta, &path)?;
        }
        Ok(sm)
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    fn read_meta<T: toastyfs_proto::Record>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let raw = self
            .db
            .db
            .get_cf(self.db.cf(CF_RAFT), key)
            .map_err(|e| io_err(&e))?;
        raw.map(|bytes| dec::<T>(&bytes)).transpose()
    }

    /// Applies a batch's proposals in order. Each gets the next namespace
    /// index (one per proposal, counted by the state itself), so session
    /// expiry and the digest count proposals, not log entries.
    fn apply_proposals(
        &self,
        overlay: &mut Overlay<'_, DbReader<'_>>,
        proposals: &[toastyfs_proto::namespace::Proposal],
    ) -> Result<Vec<toastyfs_proto::namespace::CommandResult>, StoreError> {
        let mut results = Vec::with_capacity(proposals.len());
        for proposal in proposals {
            let index = namespace::header(&*overlay)?.applied_index + 1;
            results.push(self.namespace.apply(overlay, index, proposal)?);
            if index % crate::metrics::DIGEST_CHECKPOINT_EVERY == 0 {
                let digest = namespace::header(&*overlay)?.digest;
                crate::metrics::record_digest_checkpoint(index, &digest);
            }
        }
        Ok(results)
    }

    /// Applies committed entries in groups of at most
    /// [`APPLY_GROUP_ENTRIES`], each written atomically with its last
    /// applied log id: openraft may hand over a whole committed range at
    /// once, and one overlay over all of it would hold every change in
    /// memory.
    fn apply_batch(&self, entries: Vec<Entry>) -> Result<Vec<ApplyReply>, StorageError> {
        let mut replies = Vec::with_capacity(entries.len());
        for group in entries.chunks(APPLY_GROUP_ENTRIES) {
            replies.extend(self.apply_group(group)?);
        }
        Ok(replies)
    }

    fn apply_group(&self, entries: &[Entry]) -> Result<Vec<ApplyReply>, StorageError> {
        let reader = DbReader::new(&self.db);
        let mut overlay = Overlay::new(&reader);
        let mut replies = Vec::with_capacity(entries.len());
        let mut last: Option<LogId> = None;
        let mut membership: Option<StoredMembership> = None;
        for entry in entries {
            let index = entry.log_id.index;
            let result = match &entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), m.clone()));
                    Vec::new()
                }
                EntryPayload::Normal(batch) => self.apply_proposals(&mut overlay, &batch.proposals).map_err(|e| {
                    tracing::error!(index, error = %e, "fail-stop: the namespace store failed while applying");
                    StorageError::from(openraft::StorageIOError::apply(entry.log_id, &e))
                })?,
            };
            last = Some(entry.log_id);
            replies.push(ApplyReply {
                log_index: index,
                results: result,
            });
        }
        let writes = overlay.into_writes();
        drop(reader);
        let mut batch = WriteBatch::default();
        let state = self.db.cf(CF_STATE);
        for (key, value) in writes {
            match value {
                Some(value) => batch.put_cf(state, key, value),
                None => batch.delete_cf(state, key),
            }
        }
        let raft = self.db.cf(CF_RAFT);
        if let Some(last) = last {
            batch.put_cf(
                raft,
                raft_keys::APPLIED,
                enc(&LogIdRecord::from_ref(&last))?,
            );
        }
        if let Some(m) = membership {
            batch.put_cf(
                raft,
                raft_keys::MEMBERSHIP,
                enc(&MembershipRecord::from_owned(m))?,
            );
        }
        self.db.db.write(batch).map_err(|e| {
            tracing::error!(error = %e, "fail-stop: writing applied entries failed");
            io_err(&e)
        })?;
        Ok(replies)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self
            .read_meta::<LogIdRecord>(raft_keys::APPLIED)?
            .map(|r| r.0);
        let membership = self
            .read_meta::<MembershipRecord>(raft_keys::MEMBERSHIP)?
            .map(|r| r.0)
            .unwrap_or_default();
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyReply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let started = std::time::Instant::now();
        let n = entries.len();
        // Applying is synchronous RocksDB work (a catching-up follower may
        // apply thousands of entries at once): off the async workers, so
        // heartbeats and requests keep being answered meanwhile.
        let machine = self.clone();
        let replies = tokio::task::spawn_blocking(move || machine.apply_batch(entries))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "fail-stop: the apply task failed");
                StorageError::from(openraft::StorageIOError::write(&e))
            })??;
        crate::metrics::record_apply(n, started.elapsed());
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder::checkpoint(self.db.clone())
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        snapshot::begin_receiving(&self.db).await
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        data: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        tracing::info!(last_log_id = ?meta.last_log_id, id = %meta.snapshot_id, "installing snapshot");
        snapshot::install(&self.db, meta, *data).await?;
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        snapshot::open_current(&self.db).await
    }
}
