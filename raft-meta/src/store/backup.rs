//! Backups of the namespace, and restoring one as the first node of a new
//! cluster.
//!
//! A backup is written while the node serves: a RocksDB checkpoint (hard
//! links; a consistent cut, since every apply group is one write batch
//! with its log id) streamed in the snapshot file's records: a header
//! (the applied log id and membership), the state's pairs, an end record
//! with their count, each record checksummed. Chunk data is not in it: it
//! lives on the chunk servers.
//!
//! A restore checks the whole file before it writes anything, refuses a
//! directory that already holds a node's data, then makes the backup the
//! node's snapshot under a new membership naming only the restored node,
//! with its log starting after the backup and its vote in the backup's
//! last term, so its first election moves past every term the backup
//! was written in. The other nodes then join it with `add-node`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, Membership};

use super::snapshot::{self, ChunkRecord, Cut, EndRecord, HeaderRecord};
use super::{dec, Db, OpenError};
use crate::namespace::StateHeader;
use crate::types::{kinds, NodeId, SnapshotMeta, StorageError, StoredMembership, Vote};

/// What a backup holds, as its records say (checked on the way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// The log index of the last entry applied to the backed-up state.
    pub applied_index: u64,
    /// That entry's term.
    pub applied_term: u64,
    /// The namespace digest (hex) at `applied_index`: equal to every
    /// node's digest at that index.
    pub digest: String,
    /// Key/value pairs of namespace state.
    pub pairs: u64,
    /// Bytes of the backup.
    pub bytes: u64,
}

/// Why a backup could not be written, read or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("reading the metadata store: {0}")]
    Store(Box<StorageError>),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Truncated, a checksum that does not match, pairs missing: not a
    /// backup to trust. Nothing was restored.
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error("the backup holds no applied entry (taken from a cluster that was never formed?)")]
    Empty,
    #[error("{0} already holds a metadata node's data; restore only into a new, empty directory (nothing was changed)")]
    Occupied(PathBuf),
    #[error(transparent)]
    Open(Box<OpenError>),
}

impl From<StorageError> for BackupError {
    fn from(e: StorageError) -> Self {
        BackupError::Store(Box::new(e))
    }
}

impl From<OpenError> for BackupError {
    fn from(e: OpenError) -> Self {
        BackupError::Open(Box::new(e))
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a backup of the node's state as it is now to `out`.
pub fn write(db: &Db, out: &mut impl Write) -> Result<u64, BackupError> {
    let checkpoint = db
        .snapshot_dir()
        .join(format!("backup-{}", snapshot::unique_suffix()));
    {
        // Not in the middle of a snapshot install (which replaces the
        // state in several batches).
        let _gate = db.install_gate.read().unwrap_or_else(|p| p.into_inner());
        rocksdb::checkpoint::Checkpoint::new(&db.db)
            .and_then(|c| c.create_checkpoint(&checkpoint))
            .map_err(|e| BackupError::from(super::io_err(&e)))?;
    }
    let written = (|| {
        let cut = Cut::open(&checkpoint)?;
        if cut.applied.is_none() {
            return Err(BackupError::Empty);
        }
        let meta = cut.meta(format!("backup-{}", snapshot::unique_suffix()));
        Ok(cut.write(&meta, out)?)
    })();
    let _ = std::fs::remove_dir_all(&checkpoint);
    written
}

/// Reads a backup from `input`, checking every record, and copies it to
/// `out` as it goes; what it holds, or what is wrong with it.
pub fn verify(input: impl Read, mut out: impl Write) -> Result<BackupSummary, BackupError> {
    let mut input = BufReader::new(input);
    let damaged = |e: StorageError| BackupError::Damaged(e.to_string());
    let (kind, bytes) = snapshot::read_raw(&mut input).map_err(damaged)?;
    if kind != kinds::SNAPSHOT_HEADER {
        return Err(BackupError::Damaged(
            "it does not start with a snapshot header".into(),
        ));
    }
    let meta = dec::<HeaderRecord>(&bytes).map_err(damaged)?.0;
    let last = meta.last_log_id.ok_or(BackupError::Empty)?;
    let copy = |out: &mut dyn Write, bytes: &[u8]| {
        out.write_all(bytes)
            .map_err(|e| BackupError::Damaged(format!("cannot copy it: {e}")))
    };
    copy(&mut out, &bytes)?;
    let mut total = bytes.len() as u64;
    let mut pairs = 0u64;
    let mut header = None;
    loop {
        let (kind, bytes) = snapshot::read_raw(&mut input).map_err(damaged)?;
        copy(&mut out, &bytes)?;
        total += bytes.len() as u64;
        if kind == kinds::SNAPSHOT_END {
            let expected = dec::<EndRecord>(&bytes).map_err(damaged)?.0;
            if expected != pairs {
                return Err(BackupError::Damaged(format!(
                    "it holds {pairs} pairs, its end record says {expected}"
                )));
            }
            break;
        }
        for (key, value) in dec::<ChunkRecord>(&bytes).map_err(damaged)?.0 {
            pairs += 1;
            if key == crate::namespace::HEADER_KEY {
                let decoded = toastyfs_proto::record::decode::<StateHeader>(&value)
                    .map_err(|e| BackupError::Damaged(format!("its namespace header: {e}")))?;
                header = Some(decoded);
            }
        }
    }
    let header = header.ok_or_else(|| BackupError::Damaged("it has no namespace header".into()))?;
    Ok(BackupSummary {
        applied_index: last.index,
        applied_term: last.leader_id.term,
        digest: hex::encode(header.digest),
        pairs,
        bytes: total,
    })
}

/// Checks the backup file at `path` whole.
pub fn verify_file(path: &Path) -> Result<BackupSummary, BackupError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    verify(file, std::io::sink())
}

/// Makes `dir` the data directory of node `id`, reached at `addr`, the
/// only voter of a new cluster holding the backup at `file`. Start it
/// with `toastyfs meta --id ID --data-dir DIR --advertise ADDR`.
pub async fn restore(
    file: &Path,
    dir: &Path,
    id: NodeId,
    addr: &str,
) -> Result<BackupSummary, BackupError> {
    if dir.join("FORMAT").exists() || dir.join("db").exists() {
        return Err(BackupError::Occupied(dir.to_owned()));
    }
    let summary = verify_file(file)?;
    let mut input = BufReader::new(std::fs::File::open(file).map_err(io(file))?);
    let (_, header) = snapshot::read_raw(&mut input)?;
    let old = dec::<HeaderRecord>(&header)?.0;
    let last = old.last_log_id.ok_or(BackupError::Empty)?;
    let (mut log, _state) = super::open(dir)?;
    let db = log.db().clone();
    let membership = Membership::new(
        vec![BTreeSet::from([id])],
        BTreeMap::from([(id, BasicNode::new(addr))]),
    );
    let meta = SnapshotMeta {
        last_log_id: Some(last),
        last_membership: StoredMembership::new(Some(last), membership),
        snapshot_id: format!("restored-{}", snapshot::unique_suffix()),
    };
    let staged = db
        .snapshot_dir()
        .join(format!("restoring-{}.tmp", snapshot::unique_suffix()));
    {
        let out = std::fs::File::create(&staged).map_err(io(&staged))?;
        let mut out = BufWriter::new(out);
        snapshot::write_record(&mut out, &HeaderRecord::from_ref(&meta))?;
        std::io::copy(&mut input, &mut out).map_err(io(&staged))?;
        let out = out.into_inner().map_err(|e| io(&staged)(e.into_error()))?;
        out.sync_all().map_err(io(&staged))?;
    }
    let path = snapshot::publish(&db, &staged, &meta)?;
    snapshot::load(&db, &meta, &path)?;
    // The log starts after the backup, and the first vote here is in a
    // term after every term of the old cluster's log.
    log.purge(last).await?;
    log.save_vote(&Vote::new(last.leader_id.term, id)).await?;
    Ok(summary)
}
