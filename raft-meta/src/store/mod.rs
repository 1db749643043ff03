//! One RocksDB per metadata node: the Raft log, the vote and Raft metadata,
//! and the namespace state, each in its own column family.
//!
//! Durability rules: log appends, truncations and votes are written with a
//! synced WAL before openraft hears they are done; an applied entry's
//! namespace changes and the applied log id land in one atomic batch, so a
//! restarted node resumes exactly after the last applied entry.

// openraft's storage traits fix the error type (`StorageError`, ~224 bytes);
// our helpers return it unchanged rather than boxing and unboxing.
#![allow(clippy::result_large_err)]

pub mod backup;
#[cfg(test)]
mod formats;
#[cfg(test)]
mod install_gate;
mod log;
mod snapshot;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DBRecoveryMode, Options, DB};
use toastyfs_proto::record::{self, Record};

pub use log::LogStore;
pub use state::{DbReader, StateMachine};

use crate::types::StorageError;

pub const CF_LOG: &str = "log";
pub const CF_RAFT: &str = "raft";
pub const CF_STATE: &str = "state";

/// Keys of the `raft` column family.
pub mod raft_keys {
    pub const VOTE: &[u8] = b"vote";
    pub const PURGED: &[u8] = b"purged";
    pub const COMMITTED: &[u8] = b"committed";
    pub const APPLIED: &[u8] = b"applied";
    pub const MEMBERSHIP: &[u8] = b"membership";
    /// Present while a snapshot is being loaded into the state.
    pub const INSTALLING: &[u8] = b"installing";
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the metadata store in {dir}: {source}")]
    Db {
        dir: PathBuf,
        source: rocksdb::Error,
    },
    #[error("the metadata store in {dir} is corrupt: {detail}")]
    Corrupt { dir: PathBuf, detail: String },
    #[error("cannot prepare {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// Written by a newer ToastyFS: this build would misread it. Nothing
    /// was changed; run the newer version (a downgrade is not supported).
    #[error("{dir} holds metadata format {found}, written by a newer ToastyFS; this build reads format {FORMAT} and older. Run the version that wrote it; nothing was changed")]
    NewerFormat { dir: PathBuf, found: u32 },
}

/// The on-disk format of a metadata data directory, named in its
/// `FORMAT` file (`toastyfs-meta 1`). A change a previous version would
/// misread bumps it; the golden fixtures (`store/formats.rs`) keep every
/// record's encoding from changing by accident.
pub const FORMAT: u32 = 1;

const FORMAT_FILE: &str = "FORMAT";

/// Refuses a directory written by a newer format; marks a new (or
/// pre-marker) one with this build's.
fn check_format(dir: &Path) -> Result<(), OpenError> {
    let path = dir.join(FORMAT_FILE);
    let io = |source| OpenError::Io {
        dir: dir.to_owned(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let found = text
                .trim()
                .strip_prefix("toastyfs-meta ")
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| OpenError::Corrupt {
                    dir: dir.to_owned(),
                    detail: format!(
                        "{} says {:?}, not `toastyfs-meta N`",
                        path.display(),
                        text.trim()
                    ),
                })?;
            if found > FORMAT {
                return Err(OpenError::NewerFormat {
                    dir: dir.to_owned(),
                    found,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io)?;
            let staged = dir.join("FORMAT.tmp");
            std::fs::write(&staged, format!("toastyfs-meta {FORMAT}\n")).map_err(io)?;
            std::fs::File::open(&staged)
                .and_then(|f| f.sync_all())
                .map_err(io)?;
            std::fs::rename(&staged, &path).map_err(io)
        }
        Err(e) => Err(io(e)),
    }
}

/// The open database, shared by the log store, the state machine and readers.
pub struct Db {
    pub db: DB,
    /// Kept for its statistics (WAL syncs).
    pub options: Options,
    pub dir: PathBuf,
    /// Held for writing while a snapshot load replaces the state, and for
    /// reading while a reader takes its view (see `snapshot`).
    pub install_gate: std::sync::RwLock<()>,
}

impl Db {
    pub fn cf(&self, name: &str) -> &ColumnFamily {
        // Every column family is created at open; a missing one is a bug.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} missing"))
    }

    /// How many times RocksDB has synced its WAL since open.
    pub fn wal_syncs(&self) -> u64 {
        self.options
            .get_ticker_count(rocksdb::statistics::Ticker::WalFileSynced)
    }

    pub fn snapshot_dir(&self) -> PathBuf {
        self.dir.join("snapshots")
    }
}

/// Opens (creating if needed) the store under `dir` and checks that every
/// record it holds in the log and Raft metadata decodes.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine), OpenError> {
    check_format(dir)?;
    let db = Arc::new(open_db(dir)?);
    verify(&db)?;
    let log = LogStore::new(db.clone());
    let state = StateMachine::open(db).map_err(|e| OpenError::Corrupt {
        dir: dir.to_owned(),
        detail: e.to_string(),
    })?;
    Ok((log, state))
}

fn open_db(dir: &Path) -> Result<Db, OpenError> {
    let io = |source| OpenError::Io {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir.join("db")).map_err(io)?;
    std::fs::create_dir_all(dir.join("snapshots")).map_err(io)?;
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_paranoid_checks(true);
    // A torn last record (a write cut short by a crash; never acknowledged,
    // since every append is reported only after its WAL sync) is dropped;
    // a corrupt record before the tail stops the open with an error rather
    // than silently replaying only a prefix.
    options.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
    options.enable_statistics();
    let cfs = [CF_LOG, CF_RAFT, CF_STATE]
        .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
    let db =
        DB::open_cf_descriptors(&options, dir.join("db"), cfs).map_err(|source| OpenError::Db {
            dir: dir.to_owned(),
            source,
        })?;
    Ok(Db {
        db,
        options,
        dir: dir.to_owned(),
        install_gate: std::sync::RwLock::new(()),
    })
}

/// Reads every record of the log and Raft metadata once: a corrupt byte
/// refuses the start with the key that holds it.
fn verify(db: &Db) -> Result<(), OpenError> {
    for cf in [CF_LOG, CF_RAFT] {
        for item in db.db.iterator_cf(db.cf(cf), rocksdb::IteratorMode::Start) {
            let (key, value) = item.map_err(|e| OpenError::Corrupt {
                dir: db.dir.clone(),
                detail: e.to_string(),
            })?;
            if let Err(e) = record::read_header(&value, record::MAX_RECORD_BYTES)
                .and_then(|_| check_crc(&value))
            {
                return Err(OpenError::Corrupt {
                    dir: db.dir.clone(),
                    detail: format!(
                        "record under {cf}/{} does not verify: {e}",
                        hex::encode(&key)
                    ),
                });
            }
        }
    }
    Ok(())
}

fn check_crc(bytes: &[u8]) -> Result<(), toastyfs_proto::RecordError> {
    record::verify_checksum(bytes)
}

/// Encodes a record, mapping failure to a storage error.
pub fn enc<T: Record>(value: &T) -> Result<Vec<u8>, StorageError> {
    record::encode(value).map_err(|e| openraft::StorageIOError::write(&e).into())
}

/// Decodes a record read from the store, mapping failure to a storage error.
pub fn dec<T: Record>(bytes: &[u8]) -> Result<T, StorageError> {
    record::decode(bytes).map_err(|e| openraft::StorageIOError::read(&e).into())
}

pub fn io_err(e: &rocksdb::Error) -> StorageError {
    openraft::StorageIOError::write(e).into()
}
