//! Snapshots: the namespace state streamed to and from a file, never held
//! whole in memory.
//!
//! Building takes a RocksDB checkpoint (hard links, a consistent cut taken
//! while the state machine is paused between entries), then streams its
//! state column family into a file of its own as records: one header (the
//! snapshot meta), chunks of at most ~1 MiB of key/value pairs, and an end
//! record with the pair count. Installing stages the received file, checks
//! its header against the meta, publishes it under its own name, marks the
//! state as installing, replaces the state column family chunk by chunk,
//! and clears the mark together with the new applied log id; a crash in
//! between finishes the load from the file the mark names at the next
//! start.
//!
//! Invariants: every snapshot has its own file,
//! `snap-<last applied index, 20 digits>-<id>.snap`, renamed into place
//! only once complete and synced, so a build and an install never write
//! the same name; the current snapshot is the one with the highest index
//! (a build that finishes after a newer install never replaces it); every
//! load compares the file's header with the meta it was asked for; and
//! while a load replaces the state, readers wait (the install gate), so
//! they see the old state or the new one, never a mix.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, Snapshot};
use openraft::{AnyError, StorageIOError};
use rocksdb::{IteratorMode, Options, WriteBatch, WriteOptions, DB};
use toastyfs_proto::record::{self, Framed, Record, HEADER_BYTES};

use super::{dec, enc, raft_keys, Db, CF_LOG, CF_RAFT, CF_STATE};
use crate::types::{
    kinds, LogId, LogIdRecord, MembershipRecord, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig,
};

pub(super) type HeaderRecord = Framed<{ kinds::SNAPSHOT_HEADER }, SnapshotMeta>;
pub(super) type ChunkRecord = Framed<{ kinds::SNAPSHOT_CHUNK }, Vec<(Vec<u8>, Vec<u8>)>>;
pub(super) type EndRecord = Framed<{ kinds::SNAPSHOT_END }, u64>;

use crate::limits::SNAPSHOT_CHUNK_BYTES as CHUNK_BYTES;

fn err(message: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_snapshot(None, AnyError::error(message.to_string())).into()
}

/// The file of the snapshot `meta` describes. Names sort by index.
pub(super) fn file_of(db: &Db, meta: &SnapshotMeta) -> PathBuf {
    let index = meta.last_log_id.map_or(0, |id| id.index);
    let id: String = meta
        .snapshot_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    db.snapshot_dir()
        .join(format!("snap-{index:020}-{id}.snap"))
}

/// The published snapshot files, newest (highest index) first.
fn published(db: &Db) -> Result<Vec<PathBuf>, StorageError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(db.snapshot_dir())
        .map_err(err)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap-") && n.ends_with(".snap"))
        })
        .collect();
    files.sort();
    files.reverse();
    Ok(files)
}

/// Renames a complete, synced snapshot file to its own name.
pub(super) fn publish(
    db: &Db,
    staged: &Path,
    meta: &SnapshotMeta,
) -> Result<PathBuf, StorageError> {
    let path = file_of(db, meta);
    std::fs::rename(staged, &path).map_err(err)?;
    sync_dir(&db.snapshot_dir())?;
    Ok(path)
}

/// Removes every snapshot file older than the newest, and a file left by
/// the format before one file per snapshot.
fn prune(db: &Db) -> Result<(), StorageError> {
    for old in published(db)?.into_iter().skip(1) {
        let _ = std::fs::remove_file(old);
    }
    let _ = std::fs::remove_file(db.snapshot_dir().join("current.snap"));
    Ok(())
}

/// Gives a snapshot written by the format before one file per snapshot
/// (`current.snap`) its own name.
pub(super) fn adopt_legacy(db: &Db) -> Result<(), StorageError> {
    let legacy = db.snapshot_dir().join("current.snap");
    let Ok(file) = std::fs::File::open(&legacy) else {
        return Ok(());
    };
    let meta = read_record::<HeaderRecord>(&mut BufReader::new(file))?.0;
    publish(db, &legacy, &meta)?;
    Ok(())
}

fn incoming_path(db: &Db) -> PathBuf {
    db.snapshot_dir().join("incoming.snap")
}

/// Builds a snapshot from a checkpoint taken when it was created.
pub struct SnapshotBuilder {
    db: Arc<Db>,
    checkpoint: Result<PathBuf, String>,
}

impl SnapshotBuilder {
    /// Takes the checkpoint now, while no entry is being applied.
    pub fn checkpoint(db: Arc<Db>) -> SnapshotBuilder {
        let dir = db
            .snapshot_dir()
            .join(format!("checkpoint-{}", unique_suffix()));
        let made = rocksdb::checkpoint::Checkpoint::new(&db.db)
            .and_then(|c| c.create_checkpoint(&dir))
            .map(|()| dir)
            .map_err(|e| e.to_string());
        SnapshotBuilder {
            db,
            checkpoint: made,
        }
    }
}

pub(super) fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let checkpoint = self
            .checkpoint
            .clone()
            .map_err(|e| err(format!("checkpoint failed: {e}")))?;
        let db = self.db.clone();
        let meta = tokio::task::spawn_blocking(move || {
            let built = write_from_checkpoint(&db, &checkpoint);
            let _ = std::fs::remove_dir_all(&checkpoint);
            built
        })
        .await
        .map_err(err)??;
        tracing::info!(last_log_id = ?meta.last_log_id, id = %meta.snapshot_id, "snapshot built");
        // Opened before pruning: a build older than a snapshot installed
        // meanwhile is pruned at once, and openraft keeps the newer one.
        let file = tokio::fs::File::open(file_of(&self.db, &meta))
            .await
            .map_err(err)?;
        prune(&self.db)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

fn write_from_checkpoint(db: &Db, checkpoint: &Path) -> Result<SnapshotMeta, StorageError> {
    let cut = Cut::open(checkpoint)?;
    let snapshot_id = match cut.applied {
        Some(id) => format!("{}-{}-{}", id.leader_id, id.index, unique_suffix()),
        None => format!("empty-{}", unique_suffix()),
    };
    let meta = cut.meta(snapshot_id);
    let building = db
        .snapshot_dir()
        .join(format!("building-{}.tmp", unique_suffix()));
    let file = std::fs::File::create(&building).map_err(err)?;
    let mut out = BufWriter::new(file);
    cut.write(&meta, &mut out)?;
    let file = out.into_inner().map_err(|e| err(e.error()))?;
    file.sync_all().map_err(err)?;
    publish(db, &building, &meta)?;
    Ok(meta)
}

/// A checkpoint of the store opened for reading: a consistent cut of the
/// state with the log id and membership applied up to it (every apply
/// group is written in one batch with its log id).
pub(super) struct Cut {
    db: DB,
    pub(super) applied: Option<LogId>,
    membership: StoredMembership,
}

impl Cut {
    pub(super) fn open(checkpoint: &Path) -> Result<Cut, StorageError> {
        let opts = Options::default();
        let db = DB::open_cf_for_read_only(&opts, checkpoint, [CF_LOG, CF_RAFT, CF_STATE], false)
            .map_err(err)?;
        let raft = db
            .cf_handle(CF_RAFT)
            .ok_or_else(|| err(format!("checkpoint lacks {CF_RAFT}")))?;
        let applied = db
            .get_cf(raft, raft_keys::APPLIED)
            .map_err(err)?
            .map(|b| dec::<LogIdRecord>(&b))
            .transpose()?
            .map(|r| r.0);
        let membership = db
            .get_cf(raft, raft_keys::MEMBERSHIP)
            .map_err(err)?
            .map(|b| dec::<MembershipRecord>(&b))
            .transpose()?
            .map(|m| m.0)
            .unwrap_or_default();
        Ok(Cut {
            db,
            applied,
            membership,
        })
    }

    /// The meta of a snapshot of this cut named `snapshot_id`.
    pub(super) fn meta(&self, snapshot_id: String) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        }
    }

    /// Writes the snapshot records of this cut under `meta`: the header,
    /// the state's pairs in chunks of about [`CHUNK_BYTES`], the end
    /// record with their count. Returns the count.
    pub(super) fn write(
        &self,
        meta: &SnapshotMeta,
        out: &mut impl Write,
    ) -> Result<u64, StorageError> {
        let state = self
            .db
            .cf_handle(CF_STATE)
            .ok_or_else(|| err(format!("checkpoint lacks {CF_STATE}")))?;
        write_record(out, &HeaderRecord::from_ref(meta))?;
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        let mut count = 0u64;
        for item in self.db.iterator_cf(state, IteratorMode::Start) {
            let (key, value) = item.map_err(err)?;
            chunk_bytes += key.len() + value.len();
            chunk.push((key.into_vec(), value.into_vec()));
            count += 1;
            if chunk_bytes >= CHUNK_BYTES {
                write_record(out, &ChunkRecord::from_owned(std::mem::take(&mut chunk)))?;
                chunk_bytes = 0;
            }
        }
        if !chunk.is_empty() {
            write_record(out, &ChunkRecord::from_owned(chunk))?;
        }
        write_record(out, &EndRecord::from_owned(count))?;
        Ok(count)
    }
}

pub(super) fn write_record<T: Record>(out: &mut impl Write, value: &T) -> Result<(), StorageError> {
    out.write_all(&enc(value)?).map_err(err)
}

pub(super) fn read_record<T: Record>(input: &mut impl Read) -> Result<T, StorageError> {
    let mut header = [0u8; HEADER_BYTES];
    input
        .read_exact(&mut header)
        .map_err(|e| err(format!("snapshot truncated: {e}")))?;
    let parsed = record::read_header(&header, T::MAX_BODY_BYTES).map_err(err)?;
    let mut bytes = header.to_vec();
    bytes.resize(HEADER_BYTES + parsed.body_len, 0);
    input
        .read_exact(&mut bytes[HEADER_BYTES..])
        .map_err(|e| err(format!("snapshot truncated: {e}")))?;
    dec(&bytes)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err)
}

/// The current snapshot's meta and path: the newest published file whose
/// header matches its name; `None` if there is none.
pub fn current(db: &Db) -> Result<Option<(SnapshotMeta, PathBuf)>, StorageError> {
    for path in published(db)? {
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        match read_record::<HeaderRecord>(&mut BufReader::new(file)) {
            Ok(header) if file_of(db, &header.0) == path => return Ok(Some((header.0, path))),
            Ok(_) => {
                tracing::warn!(path = %path.display(), "a snapshot file's header does not match its name; skipped")
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "an unreadable snapshot file; skipped")
            }
        }
    }
    Ok(None)
}

pub async fn open_current(db: &Arc<Db>) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
    let Some((meta, path)) = current(db)? else {
        return Ok(None);
    };
    let file = tokio::fs::File::open(path).await.map_err(err)?;
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(file),
    }))
}

pub async fn begin_receiving(db: &Db) -> Result<Box<tokio::fs::File>, StorageError> {
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(incoming_path(db))
        .await
        .map_err(err)?;
    Ok(Box::new(file))
}

/// Makes a received snapshot the current one and loads it into the state.
/// The data is copied from wherever `file` points (openraft may hand over
/// a file other than the one `begin_receiving` opened).
pub async fn install(
    db: &Arc<Db>,
    meta: &SnapshotMeta,
    mut file: tokio::fs::File,
) -> Result<(), StorageError> {
    use tokio::io::AsyncSeekExt;
    file.seek(std::io::SeekFrom::Start(0)).await.map_err(err)?;
    let staged = db
        .snapshot_dir()
        .join(format!("installing-{}.tmp", unique_suffix()));
    let mut out = tokio::fs::File::create(&staged).await.map_err(err)?;
    tokio::io::copy(&mut file, &mut out).await.map_err(err)?;
    out.sync_all().await.map_err(err)?;
    drop((file, out));
    let db = db.clone();
    let meta = meta.clone();
    tokio::task::spawn_blocking(move || {
        let stored = read_record::<HeaderRecord>(&mut BufReader::new(
            std::fs::File::open(&staged).map_err(err)?,
        ))?
        .0;
        if stored.snapshot_id != meta.snapshot_id || stored.last_log_id != meta.last_log_id {
            return Err(err(format!(
                "received snapshot {} does not match its meta {}",
                stored.snapshot_id, meta.snapshot_id
            )));
        }
        let path = publish(&db, &staged, &meta)?;
        let _ = std::fs::remove_file(incoming_path(&db));
        load(&db, &meta, &path)?;
        prune(&db)
    })
    .await
    .map_err(err)?
}

/// Replaces the namespace state with the snapshot at `path`, whose header
/// must be `meta`. The whole file is checked first (every record's
/// checksum and the pair count), so a corrupt file is refused while the
/// old state is still there. Readers wait at the install gate meanwhile.
pub fn load(db: &Db, meta: &SnapshotMeta, path: &Path) -> Result<(), StorageError> {
    read_pairs(path, meta, |_| Ok(()))?;
    let _gate = db.install_gate.write().unwrap_or_else(|p| p.into_inner());
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    let io = |e: rocksdb::Error| super::io_err(&e);
    db.db
        .put_cf_opt(
            db.cf(CF_RAFT),
            raft_keys::INSTALLING,
            enc(&HeaderRecord::from_ref(meta))?,
            &sync,
        )
        .map_err(io)?;
    db.db
        .delete_range_cf(db.cf(CF_STATE), [0u8].as_slice(), [0xffu8; 9].as_slice())
        .map_err(io)?;
    #[cfg(test)]
    pause::point(&db.dir);
    read_pairs(path, meta, |pairs| {
        let mut batch = WriteBatch::default();
        for (key, value) in pairs {
            batch.put_cf(db.cf(CF_STATE), key, value);
        }
        db.db.write(batch).map_err(io)
    })?;
    let mut done = WriteBatch::default();
    match meta.last_log_id {
        Some(id) => done.put_cf(
            db.cf(CF_RAFT),
            raft_keys::APPLIED,
            enc(&LogIdRecord::from_ref(&id))?,
        ),
        None => done.delete_cf(db.cf(CF_RAFT), raft_keys::APPLIED),
    }
    done.put_cf(
        db.cf(CF_RAFT),
        raft_keys::MEMBERSHIP,
        enc(&MembershipRecord::from_ref(&meta.last_membership))?,
    );
    done.delete_cf(db.cf(CF_RAFT), raft_keys::INSTALLING);
    db.db.write_opt(done, &sync).map_err(io)
}

/// Reads the snapshot file at `path`, whose header must be `meta`, and
/// hands each chunk record's pairs to `each` in order. Fails on a record
/// that is truncated or corrupt and on an end record whose pair count
/// disagrees.
fn read_pairs(
    path: &Path,
    meta: &SnapshotMeta,
    mut each: impl FnMut(Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut input = BufReader::new(std::fs::File::open(path).map_err(err)?);
    let stored = read_record::<HeaderRecord>(&mut input)?.0;
    if stored.snapshot_id != meta.snapshot_id || stored.last_log_id != meta.last_log_id {
        return Err(err(format!(
            "snapshot file {} holds snapshot {} at {:?}, not {} at {:?}",
            path.display(),
            stored.snapshot_id,
            stored.last_log_id,
            meta.snapshot_id,
            meta.last_log_id
        )));
    }
    let mut count = 0u64;
    loop {
        let (kind, bytes) = read_raw(&mut input)?;
        if kind == kinds::SNAPSHOT_END {
            let expected = dec::<EndRecord>(&bytes)?.0;
            if expected != count {
                return Err(err(format!(
                    "snapshot holds {count} pairs, its end record says {expected}"
                )));
            }
            return Ok(());
        }
        let pairs = dec::<ChunkRecord>(&bytes)?.0;
        count += pairs.len() as u64;
        each(pairs)?;
    }
}

/// The next record of a snapshot file: its kind and its bytes (header
/// included), its length bounded before anything is allocated.
pub(super) fn read_raw(input: &mut impl Read) -> Result<(u8, Vec<u8>), StorageError> {
    let mut header = [0u8; HEADER_BYTES];
    input
        .read_exact(&mut header)
        .map_err(|e| err(format!("snapshot truncated: {e}")))?;
    let kind = header[2];
    let parsed = record::read_header(&header, record::MAX_RECORD_BYTES).map_err(err)?;
    let mut bytes = header.to_vec();
    bytes.resize(HEADER_BYTES + parsed.body_len, 0);
    input
        .read_exact(&mut bytes[HEADER_BYTES..])
        .map_err(|e| err(format!("snapshot truncated: {e}")))?;
    Ok((kind, bytes))
}

/// A test-only pause inside [`load`], between deleting the old state and
/// writing the new one: the moment a reader must never see.
#[cfg(test)]
pub(super) mod pause {
    use std::path::{Path, PathBuf};
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::sync::Mutex;

    type Armed = (PathBuf, Sender<()>, Receiver<()>);
    static ARMED: Mutex<Option<Armed>> = Mutex::new(None);

    /// Arms the pause for the store in `dir`; the first receiver hears
    /// that a load reached it, the sender lets it go on.
    pub fn arm(dir: &Path) -> (Receiver<()>, Sender<()>) {
        let (reached, heard) = channel();
        let (release, released) = channel();
        *ARMED.lock().unwrap() = Some((dir.to_owned(), reached, released));
        (heard, release)
    }

    pub fn point(dir: &Path) {
        let armed = {
            let mut guard = ARMED.lock().unwrap();
            match guard.as_ref() {
                Some((armed_dir, _, _)) if armed_dir == dir => guard.take(),
                _ => None,
            }
        };
        if let Some((_, reached, released)) = armed {
            let _ = reached.send(());
            let _ = released.recv();
        }
    }
}
