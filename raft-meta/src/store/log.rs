//! The Raft log store (openraft storage v2): entries, vote, purge point.
//!
//! Every append is one RocksDB write batch with a synced WAL, and only then
//! is `log_io_completed` signalled, so an acknowledged entry survives
//! kill -9 and power loss. openraft hands over many entries per append when
//! the leader is busy, and RocksDB's group commit merges concurrent synced
//! writes, so a burst of proposals shares one fsync instead of paying one
//! each.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};

use super::{dec, enc, io_err, raft_keys, Db, CF_LOG, CF_RAFT};
use crate::limits::APPEND_ENTRIES_BUDGET_BYTES;
use crate::types::{
    Entry, EntryRecord, LogId, LogIdRecord, StorageError, TypeConfig, Vote, VoteRecord,
};

/// The log store; cheap to clone (readers share the database).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Db>,
    committed: Arc<AtomicU64>,
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

impl LogStore {
    pub fn new(db: Arc<Db>) -> LogStore {
        LogStore {
            db,
            committed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The highest log index known committed (0 before the first).
    pub fn committed_index(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    fn get_meta<T: toastyfs_proto::Record>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let raw = self
            .db
            .db
            .get_cf(self.db.cf(CF_RAFT), key)
            .map_err(|e| io_err(&e))?;
        raw.map(|bytes| dec::<T>(&bytes)).transpose()
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, StorageError> {
        let mut iter = self
            .db
            .db
            .iterator_cf(self.db.cf(CF_LOG), IteratorMode::End);
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (_, value) = item.map_err(|e| io_err(&e))?;
                Ok(Some(dec::<EntryRecord>(&value)?.0.log_id))
            }
        }
    }
}

impl LogStore {
    /// The entries in `range`, in order; with a `budget`, stops before the
    /// entry whose stored bytes would pass it (but returns at least one).
    fn read_entries<RB: RangeBounds<u64>>(
        &self,
        range: RB,
        budget: Option<usize>,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let from = start.to_be_bytes();
        for item in self.db.db.iterator_cf(
            self.db.cf(CF_LOG),
            IteratorMode::From(&from, Direction::Forward),
        ) {
            let (key, value) = item.map_err(|e| io_err(&e))?;
            let index = u64::from_be_bytes(key.as_ref().try_into().map_err(|_| {
                StorageError::from(openraft::StorageIOError::read_logs(
                    openraft::AnyError::error("bad log key"),
                ))
            })?);
            if !range.contains(&index) {
                break;
            }
            bytes = bytes.saturating_add(value.len());
            if budget.is_some_and(|budget| bytes > budget) && !out.is_empty() {
                break;
            }
            out.push(dec::<EntryRecord>(&value)?.0);
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.read_entries(range, None)
    }

    /// What replication sends: at most [`APPEND_ENTRIES_BUDGET_BYTES`] of
    /// entries (at least one), so one AppendEntries never grows with
    /// openraft's entry count alone.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        self.read_entries(start..end, Some(APPEND_ENTRIES_BUDGET_BYTES))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self
            .get_meta::<LogIdRecord>(raft_keys::PURGED)?
            .map(|r| r.0);
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let bytes = enc(&VoteRecord::from_ref(vote))?;
        self.db
            .db
            .put_cf_opt(self.db.cf(CF_RAFT), raft_keys::VOTE, bytes, &synced())
            .map_err(|e| io_err(&e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.get_meta::<VoteRecord>(raft_keys::VOTE)?.map(|r| r.0))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if let Some(id) = committed {
            self.committed.store(id.index, Ordering::Relaxed);
            // A hint for restart only (entries up to it are re-applied if
            // the state lags); not synced, losing it is harmless.
            let bytes = enc(&LogIdRecord::from_ref(&id))?;
            self.db
                .db
                .put_cf(self.db.cf(CF_RAFT), raft_keys::COMMITTED, bytes)
                .map_err(|e| io_err(&e))?;
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let id = self
            .get_meta::<LogIdRecord>(raft_keys::COMMITTED)?
            .map(|r| r.0);
        if let Some(id) = id {
            self.committed.store(id.index, Ordering::Relaxed);
        }
        Ok(id)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let cf = self.db.cf(CF_LOG);
        for entry in entries {
            let index = entry.log_id.index;
            batch.put_cf(
                cf,
                index.to_be_bytes(),
                enc(&EntryRecord::from_owned(entry))?,
            );
        }
        let result = self.db.db.write_opt(batch, &synced());
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io_err(&e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.db.cf(CF_LOG),
            log_id.index.to_be_bytes(),
            u64::MAX.to_be_bytes(),
        );
        self.db
            .db
            .write_opt(batch, &synced())
            .map_err(|e| io_err(&e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.db.cf(CF_RAFT),
            raft_keys::PURGED,
            enc(&LogIdRecord::from_ref(&log_id))?,
        );
        batch.delete_range_cf(
            self.db.cf(CF_LOG),
            0u64.to_be_bytes(),
            (log_id.index + 1).to_be_bytes(),
        );
        self.db
            .db
            .write_opt(batch, &synced())
            .map_err(|e| io_err(&e))
    }
}
