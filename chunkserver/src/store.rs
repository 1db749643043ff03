//! `ChunkStore`: content-addressed chunks on local disk.
//!
//! A chunk is a file named by the hex SHA-256 of its bytes (see
//! `layout.rs` for the directory layout). Writes go to a temporary file that
//! is fsynced, renamed into place, and the directory fsynced, so a crash
//! leaves either the whole chunk or a temporary file that the next
//! [`ChunkStore::open`] removes. The hash is checked when a chunk is stored
//! and every time it is read: a chunk whose file is missing or no longer
//! hashes to its name is dropped from the inventory, reported through
//! [`ChunkStore::take_lost`], and (if corrupt) moved to `quarantine/`, so it
//! is never served again.
//!
//! The in-memory inventory is the source of truth for what this server
//! serves: a file on disk that is not in it is never read. The store is
//! synchronous and every method may block on disk I/O; async callers run
//! them on tokio's blocking pool through [`ChunkStore::blocking`]. It is
//! shared through an `Arc`: one mutex guards the bookkeeping, and only
//! renames and unlinks (never reads, writes or fsyncs of chunk data) happen
//! while it is held.
//!
//! Deliberately absent: any notion of which chunks *should* be here (the
//! metadata leader decides) and any delete grace period (the sync module
//! delays deletes).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use toastyfs_proto::hash::ChunkHash;
use toastyfs_proto::namespace::MAX_CHUNK_SIZE;

use crate::error::StoreError;
use crate::layout::{Layout, FORMAT_MARKER, TEMP_SUFFIX};
use crate::sys;

/// Largest chunk, in bytes.
pub const MAX_CHUNK_BYTES: u64 = MAX_CHUNK_SIZE as u64;

/// Space used and available, as `/status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Chunks in the inventory.
    pub chunks: u64,
    /// Their total size.
    pub bytes: u64,
    /// The configured capacity; `None` means "the whole filesystem".
    pub capacity_bytes: Option<u64>,
    /// What may still be stored: the smaller of the capacity left and the
    /// filesystem's free space.
    pub free_bytes: u64,
}

/// What [`ChunkStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The chunk was written.
    Stored,
    /// The chunk was already here; nothing was written.
    AlreadyPresent,
}

/// One inventory entry. `generation` tells a stale reader (one that read a
/// file before it was replaced) not to quarantine the replacement;
/// `acked` is the acknowledgement clock of the latest upload of it that was
/// answered as stored (see [`ChunkStore::delete_unless_acked_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    size_bytes: u64,
    generation: u64,
    acked: u64,
    /// Its directory entry is synced (always, for chunks found at start).
    durable: bool,
}

/// What [`ChunkStore::delete_unless_acked_after`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// Not here (already deleted, lost, or never stored).
    Absent,
    /// Kept: an upload of it was acknowledged after the drop was ordered.
    AckedSince,
}

/// The bookkeeping behind the mutex. Invariants: `bytes` is the sum of the
/// entries' sizes, `added ⊆ chunks`, `lost ∩ chunks = ∅`.
#[derive(Debug, Default)]
struct State {
    chunks: BTreeMap<ChunkHash, Entry>,
    bytes: u64,
    /// Bytes of writes in progress, counted against the capacity.
    reserved_bytes: u64,
    next_generation: u64,
    /// Counts acknowledged uploads (new or already present); orders them
    /// against deletions, which happen under the same lock.
    ack_clock: u64,
    added: BTreeSet<ChunkHash>,
    lost: BTreeSet<ChunkHash>,
}

impl State {
    fn insert(&mut self, hash: ChunkHash, size_bytes: u64) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.chunks.insert(
            hash,
            Entry {
                size_bytes,
                generation,
                acked: 0,
                durable: false,
            },
        );
        self.bytes += size_bytes;
    }

    /// Records that an upload of `hash` is being acknowledged.
    fn ack(&mut self, hash: ChunkHash) {
        self.ack_clock += 1;
        let clock = self.ack_clock;
        if let Some(entry) = self.chunks.get_mut(&hash) {
            entry.acked = clock;
        }
        // Stored again: reported as added, which renews it (a pending drop
        // of it starts over; see the sync loop).
        self.added.insert(hash);
    }

    fn remove(&mut self, hash: ChunkHash) -> Option<Entry> {
        let entry = self.chunks.remove(&hash)?;
        self.bytes -= entry.size_bytes;
        self.added.remove(&hash);
        Some(entry)
    }
}

use crate::limits::PARALLEL_HASH_BYTES;

/// `Ok` if the body's hash is its name.
fn check_hash(expected: ChunkHash, actual: ChunkHash) -> Result<(), StoreError> {
    if actual == expected {
        Ok(())
    } else {
        Err(StoreError::HashMismatch { expected, actual })
    }
}

/// A chunk store rooted at one directory. See the module docs.
#[derive(Debug)]
pub struct ChunkStore {
    layout: Layout,
    capacity_bytes: Option<u64>,
    state: Mutex<State>,
    temp_seq: AtomicU64,
    /// Held open for the store's lifetime: the `flock` lives with it.
    _lock: File,
}

/// Space reserved for a write in progress; released when dropped.
struct Reservation<'a> {
    store: &'a ChunkStore,
    size_bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.store.state().reserved_bytes -= self.size_bytes;
    }
}

impl ChunkStore {
    /// Opens (creating if needed) the store under `root`: takes its lock,
    /// removes temporary files left by a crash, and scans the chunk files
    /// into the inventory. Hashes are not verified here (the scrubber does
    /// that); `capacity_bytes` caps the total size of stored chunks.
    pub fn open(
        root: impl Into<PathBuf>,
        capacity_bytes: Option<u64>,
    ) -> Result<ChunkStore, StoreError> {
        let layout = Layout::new(root.into());
        create_dirs(&layout)?;
        let lock = lock_root(&layout)?;
        check_format(&layout)?;
        let removed = remove_temp_files(&layout.temp_dir())?;
        let state = scan_chunks(&layout)?;
        tracing::info!(
            root = %layout.root().display(),
            chunks = state.chunks.len(),
            bytes = state.bytes,
            torn_writes_removed = removed,
            "chunk store opened"
        );
        Ok(ChunkStore {
            layout,
            capacity_bytes,
            state: Mutex::new(state),
            temp_seq: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// Runs `f` on tokio's blocking pool: the way async code calls the store.
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ChunkStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?
    }

    /// Stores `bytes` as chunk `hash`, durably, after checking that they hash
    /// to it, fit in a chunk and fit in the capacity. Storing a chunk that is
    /// already here is a no-op.
    ///
    /// A large new chunk is hashed on a second thread while it is written to
    /// its temporary file (which nothing reads until the hash has matched
    /// and it is renamed into place), so an upload costs about the longer of
    /// the two rather than their sum.
    pub fn put(&self, hash: ChunkHash, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        let size_bytes = bytes.len() as u64;
        check_size(size_bytes)?;
        if bytes.len() < PARALLEL_HASH_BYTES || self.contains(&[hash])[0] {
            check_hash(hash, ChunkHash::of(bytes))?;
            let Some(reservation) = self.reserve(hash, size_bytes)? else {
                return self.confirm_present(hash, bytes);
            };
            let temp = self.write_temp(hash, bytes)?;
            return self.install(hash, &temp, reservation, bytes);
        }
        let Some(reservation) = self.reserve(hash, size_bytes)? else {
            check_hash(hash, ChunkHash::of(bytes))?;
            return self.confirm_present(hash, bytes);
        };
        let (actual, temp) = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| ChunkHash::of(bytes));
            let temp = self.write_temp(hash, bytes);
            (hashing.join(), temp)
        });
        let temp = temp?;
        let verdict = actual
            .map_err(|_| StoreError::TaskFailed("the hashing thread panicked".into()))
            .and_then(|actual| check_hash(hash, actual));
        if let Err(e) = verdict {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        self.install(hash, &temp, reservation, bytes)
    }

    /// An upload of a chunk the inventory already lists, its `bytes`
    /// verified: acknowledged as present only if the file on disk holds
    /// exactly these bytes and is synced; a missing or corrupt file is
    /// replaced by them (so an acknowledged copy is always a verified,
    /// durable file).
    fn confirm_present(&self, hash: ChunkHash, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        if !self.copy_intact(hash) {
            tracing::warn!(%hash, "a stored chunk is missing or corrupt; replacing it with the uploaded copy");
            return self.replace(hash, bytes);
        }
        match self.acknowledge_present(hash)? {
            Some(outcome) => Ok(outcome),
            // Deleted meanwhile: store it anew.
            None => self.put(hash, bytes),
        }
    }

    /// Whether the file of listed chunk `hash` is there and hashes right
    /// (read in blocks, never held whole).
    fn copy_intact(&self, hash: ChunkHash) -> bool {
        hash_file(&self.layout.chunk_file(hash)).is_ok_and(|on_disk| on_disk == hash)
    }

    /// Acknowledges a listed chunk whose file is intact, syncing its
    /// directory first if its copy was not yet durable; `None` if it was
    /// deleted meanwhile.
    fn acknowledge_present(&self, hash: ChunkHash) -> Result<Option<PutOutcome>, StoreError> {
        if !self.entry(hash).is_some_and(|e| e.durable) {
            let dir = self.layout.fanout_dir(hash);
            sys::sync_dir(&dir).map_err(StoreError::io(dir))?;
        }
        let mut state = self.state();
        let Some(entry) = state.chunks.get_mut(&hash) else {
            return Ok(None);
        };
        entry.durable = true;
        state.ack(hash);
        Ok(Some(PutOutcome::AlreadyPresent))
    }

    /// Writes verified `bytes` over the file of a listed chunk whose copy
    /// is missing or corrupt; a new generation, so a reader that saw the
    /// bad file does not quarantine the good one.
    fn replace(&self, hash: ChunkHash, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        self.ensure_fanout_dir(&self.layout.fanout_dir(hash))?;
        let temp = self.write_temp(hash, bytes)?;
        self.replace_from(hash, &temp, bytes.len() as u64)
    }

    /// Renames the verified, fsynced temporary file `temp` over the file
    /// of listed chunk `hash` (a new generation).
    fn replace_from(
        &self,
        hash: ChunkHash,
        temp: &Path,
        size_bytes: u64,
    ) -> Result<PutOutcome, StoreError> {
        self.ensure_fanout_dir(&self.layout.fanout_dir(hash))?;
        let path = self.layout.chunk_file(hash);
        {
            let mut state = self.state();
            if let Err(e) = fs::rename(temp, &path) {
                let _ = fs::remove_file(temp);
                return Err(StoreError::io(path)(e));
            }
            state.remove(hash);
            state.insert(hash, size_bytes);
            state.lost.remove(&hash);
        }
        self.make_durable(hash)?;
        self.state().ack(hash);
        Ok(PutOutcome::Stored)
    }

    /// Fsyncs the directory of a just-renamed chunk file. If that fails the
    /// copy is not durable: it leaves the inventory (reported lost, never
    /// acknowledged or served) and the upload fails.
    fn make_durable(&self, hash: ChunkHash) -> Result<(), StoreError> {
        let dir = self.layout.fanout_dir(hash);
        match sys::sync_dir(&dir) {
            Ok(()) => {
                if let Some(entry) = self.state().chunks.get_mut(&hash) {
                    entry.durable = true;
                }
                Ok(())
            }
            Err(e) => {
                let mut state = self.state();
                state.remove(hash);
                state.lost.insert(hash);
                Err(StoreError::io(dir)(e))
            }
        }
    }

    /// The bytes of chunk `hash`, verified against the hash.
    pub fn get(&self, hash: ChunkHash) -> Result<Vec<u8>, StoreError> {
        let (entry, path, bytes) = self.read_listed(hash)?;
        let actual = ChunkHash::of(&bytes);
        if actual != hash {
            tracing::warn!(%hash, %actual, "chunk is corrupt on disk; quarantining it");
            self.mark_lost(hash, entry, Some(&path));
            return Err(StoreError::Corrupt(hash));
        }
        Ok(bytes)
    }

    /// The bytes of chunk `hash` as stored, not hashed: for a caller that
    /// hashes them itself and reports a mismatch ([`verify`]). A file
    /// missing, or of another length than was stored, is handled as in
    /// [`get`] (that much is checked without hashing).
    ///
    /// [`get`]: ChunkStore::get
    /// [`verify`]: ChunkStore::verify
    pub fn get_unverified(&self, hash: ChunkHash) -> Result<Vec<u8>, StoreError> {
        let (entry, path, bytes) = self.read_listed(hash)?;
        if bytes.len() as u64 != entry.size_bytes {
            tracing::warn!(%hash, stored = entry.size_bytes, found = bytes.len(), "chunk changed length on disk; quarantining it");
            self.mark_lost(hash, entry, Some(&path));
            return Err(StoreError::Corrupt(hash));
        }
        Ok(bytes)
    }

    /// The inventory entry, file and bytes of listed chunk `hash`; a
    /// listed chunk whose file is gone is reported lost.
    fn read_listed(&self, hash: ChunkHash) -> Result<(Entry, PathBuf, Vec<u8>), StoreError> {
        let entry = self.entry(hash).ok_or(StoreError::NotFound(hash))?;
        let path = self.layout.chunk_file(hash);
        match read_bounded(&path) {
            Ok(bytes) => Ok((entry, path, bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.mark_lost(hash, entry, None);
                Err(StoreError::NotFound(hash))
            }
            Err(e) => Err(StoreError::io(path)(e)),
        }
    }

    /// Reads and verifies chunk `hash`, returning its size: what the
    /// scrubber does to each chunk, and what a client's report of a bad
    /// copy triggers. Failures are handled as in [`get`].
    ///
    /// [`get`]: ChunkStore::get
    pub fn verify(&self, hash: ChunkHash) -> Result<u64, StoreError> {
        self.get(hash).map(|bytes| bytes.len() as u64)
    }

    /// Up to `len` bytes of chunk `hash` from `offset` (fewer at the end of
    /// the chunk). The whole chunk is verified first. An offset equal to the
    /// chunk's size gives no bytes; past it is an error.
    pub fn get_range(&self, hash: ChunkHash, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let mut bytes = self.get(hash)?;
        let size_bytes = bytes.len() as u64;
        if offset > size_bytes {
            return Err(StoreError::RangeNotSatisfiable { offset, size_bytes });
        }
        let end = offset.saturating_add(len).min(size_bytes);
        bytes.truncate(end as usize);
        bytes.drain(..offset as usize);
        Ok(bytes)
    }

    /// Stores a new chunk: chunk `source` with `bytes` written at `offset`
    /// (zero-filled between its end and `offset` if the offset is past it),
    /// and returns the new chunk's hash. The source chunk is kept.
    pub fn patch(
        &self,
        source: ChunkHash,
        offset: u64,
        bytes: &[u8],
    ) -> Result<ChunkHash, StoreError> {
        let end = offset.saturating_add(bytes.len() as u64);
        check_size(end)?;
        let mut content = self.get(source)?;
        write_at(&mut content, offset as usize, bytes);
        let hash = ChunkHash::of(&content);
        self.put(hash, &content)?;
        Ok(hash)
    }

    /// For each hash, whether it is in the inventory (not re-verified).
    pub fn contains(&self, hashes: &[ChunkHash]) -> Vec<bool> {
        let state = self.state();
        hashes
            .iter()
            .map(|h| state.chunks.contains_key(h))
            .collect()
    }

    /// The acknowledgement clock now: a drop ordered in answer to a report
    /// sent at this clock is older than every upload acknowledged later.
    pub fn ack_clock(&self) -> u64 {
        self.state().ack_clock
    }

    /// Removes chunk `hash` on a drop order as old as acknowledgement clock
    /// `clock`, unless an upload of it was acknowledged since: deciding and
    /// removing happen under the lock every acknowledgement takes, so an
    /// acknowledged copy is never deleted by an older order.
    pub fn delete_unless_acked_after(
        &self,
        hash: ChunkHash,
        clock: u64,
    ) -> Result<DeleteOutcome, StoreError> {
        let path = self.layout.chunk_file(hash);
        {
            let mut state = self.state();
            match state.chunks.get(&hash) {
                None => return Ok(DeleteOutcome::Absent),
                Some(entry) if entry.acked > clock => return Ok(DeleteOutcome::AckedSince),
                Some(_) => {}
            }
            ignore_not_found(fs::remove_file(&path)).map_err(StoreError::io(&path))?;
            state.remove(hash);
        }
        let dir = self.layout.fanout_dir(hash);
        sys::sync_dir(&dir).map_err(StoreError::io(dir))?;
        Ok(DeleteOutcome::Deleted)
    }

    /// Removes chunk `hash` whatever its acknowledgements; `Ok(false)` if
    /// it was not here.
    pub fn delete(&self, hash: ChunkHash) -> Result<bool, StoreError> {
        let outcome = self.delete_unless_acked_after(hash, u64::MAX)?;
        Ok(outcome == DeleteOutcome::Deleted)
    }

    /// Every chunk in the inventory, sorted.
    pub fn inventory(&self) -> Vec<ChunkHash> {
        self.state().chunks.keys().copied().collect()
    }

    /// Chunks stored, or stored again, since the previous call (still
    /// present), sorted.
    pub fn take_added_since_last(&self) -> Vec<ChunkHash> {
        std::mem::take(&mut self.state().added)
            .into_iter()
            .collect()
    }

    /// Chunks found missing or corrupt since the previous call (and not
    /// stored again since), sorted.
    pub fn take_lost(&self) -> Vec<ChunkHash> {
        std::mem::take(&mut self.state().lost).into_iter().collect()
    }

    /// Chunks, bytes and free space.
    pub fn usage(&self) -> Result<Usage, StoreError> {
        let fs_free =
            sys::free_bytes(self.layout.root()).map_err(StoreError::io(self.layout.root()))?;
        let state = self.state();
        let used = state.bytes + state.reserved_bytes;
        let capacity_free = self
            .capacity_bytes
            .map_or(u64::MAX, |c| c.saturating_sub(used));
        Ok(Usage {
            chunks: state.chunks.len() as u64,
            bytes: state.bytes,
            capacity_bytes: self.capacity_bytes,
            free_bytes: capacity_free.min(fs_free),
        })
    }

    /// Where chunk `hash` lives (or would live) on disk: for operators and
    /// fault-injection tests, never for serving.
    pub fn chunk_path(&self, hash: ChunkHash) -> PathBuf {
        self.layout.chunk_file(hash)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is consistent after every critical section (none of them
        // can panic half-way), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn entry(&self, hash: ChunkHash) -> Option<Entry> {
        self.state().chunks.get(&hash).copied()
    }

    /// Reserves room for a new chunk; `None` if it is already here.
    fn reserve(
        &self,
        hash: ChunkHash,
        size_bytes: u64,
    ) -> Result<Option<Reservation<'_>>, StoreError> {
        let mut state = self.state();
        if state.chunks.contains_key(&hash) {
            return Ok(None);
        }
        self.check_capacity(&state, size_bytes)?;
        state.reserved_bytes += size_bytes;
        Ok(Some(Reservation {
            store: self,
            size_bytes,
        }))
    }

    /// Refuses `size_bytes` more than the capacity leaves free.
    fn check_capacity(&self, state: &State, size_bytes: u64) -> Result<(), StoreError> {
        let Some(capacity) = self.capacity_bytes else {
            return Ok(());
        };
        let used = state.bytes + state.reserved_bytes;
        if used.saturating_add(size_bytes) > capacity {
            return Err(StoreError::CapacityExceeded {
                needed_bytes: size_bytes,
                free_bytes: capacity.saturating_sub(used),
            });
        }
        Ok(())
    }

    /// Writes `bytes` to a fresh, fsynced temporary file.
    fn write_temp(&self, hash: ChunkHash, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        let seq = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        let temp = self.layout.temp_file(hash, seq);
        if let Err(e) = sys::write_new_synced(&temp, bytes) {
            let _ = fs::remove_file(&temp);
            return Err(StoreError::io(temp)(e));
        }
        Ok(temp)
    }

    /// Renames a written temporary file into place and records the chunk.
    /// If the final directory fsync fails the chunk is already listed but
    /// the caller gets the error and must not acknowledge it; a retry then
    /// finds it present.
    fn install(
        &self,
        hash: ChunkHash,
        temp: &Path,
        reservation: Reservation<'_>,
        bytes: &[u8],
    ) -> Result<PutOutcome, StoreError> {
        let dir = self.layout.fanout_dir(hash);
        let result = self
            .ensure_fanout_dir(&dir)
            .and_then(|()| self.rename_into_place(hash, temp, reservation.size_bytes));
        if !matches!(result, Ok(PutOutcome::Stored)) {
            let _ = fs::remove_file(temp);
        }
        drop(reservation);
        match result? {
            PutOutcome::Stored => {
                self.make_durable(hash)?;
                self.state().ack(hash);
                Ok(PutOutcome::Stored)
            }
            // Another upload installed it first: check its copy like any.
            PutOutcome::AlreadyPresent => self.confirm_present(hash, bytes),
        }
    }

    fn rename_into_place(
        &self,
        hash: ChunkHash,
        temp: &Path,
        size_bytes: u64,
    ) -> Result<PutOutcome, StoreError> {
        let mut state = self.state();
        if state.chunks.contains_key(&hash) {
            return Ok(PutOutcome::AlreadyPresent);
        }
        let path = self.layout.chunk_file(hash);
        fs::rename(temp, &path).map_err(StoreError::io(path))?;
        state.insert(hash, size_bytes);
        state.lost.remove(&hash);
        Ok(PutOutcome::Stored)
    }

    /// Creates `chunks/ab/cd` if needed, fsyncing the parents it changed.
    fn ensure_fanout_dir(&self, dir: &Path) -> Result<(), StoreError> {
        if dir.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        let mut changed = dir.parent();
        while let Some(parent) = changed {
            sys::sync_dir(parent).map_err(StoreError::io(parent))?;
            if parent == self.layout.chunks_dir() {
                break;
            }
            changed = parent.parent();
        }
        Ok(())
    }

    /// Drops a chunk whose file is missing (`path` = `None`) or corrupt
    /// (moved from `path` to quarantine) and reports it lost, unless the
    /// entry was replaced since `seen` was read.
    fn mark_lost(&self, hash: ChunkHash, seen: Entry, path: Option<&Path>) {
        let mut state = self.state();
        if state.chunks.get(&hash).map(|e| e.generation) != Some(seen.generation) {
            return;
        }
        if let Some(path) = path {
            self.quarantine(hash, path);
        }
        state.remove(hash);
        state.lost.insert(hash);
    }

    /// Moves a corrupt chunk file aside. Failing to is logged, not returned:
    /// the chunk leaves the inventory either way, so it is not served again.
    fn quarantine(&self, hash: ChunkHash, path: &Path) {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let target = self.layout.quarantine_file(hash, stamp);
        if let Err(e) = fs::rename(path, &target) {
            tracing::error!(%hash, error = %e, "could not move a corrupt chunk to quarantine");
        }
    }
}

fn check_size(size_bytes: u64) -> Result<(), StoreError> {
    if size_bytes > MAX_CHUNK_BYTES {
        return Err(StoreError::TooLarge {
            size_bytes,
            max_bytes: MAX_CHUNK_BYTES,
        });
    }
    Ok(())
}

/// Writes `bytes` into `content` at `offset`, zero-filling any gap.
fn write_at(content: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    if content.len() < end {
        content.resize(end, 0);
    }
    content[offset..end].copy_from_slice(bytes);
}

/// The hash of a chunk file, read in blocks of 1 MiB, never more than one
/// byte past the largest chunk (a longer file cannot hash right).
fn hash_file(path: &Path) -> io::Result<ChunkHash> {
    let mut file = File::open(path)?.take(MAX_CHUNK_BYTES + 1);
    let mut hasher = toastyfs_proto::hash::ChunkHasher::default();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut block)?;
        if read == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&block[..read]);
    }
}

/// Reads a chunk file, never more than one byte past the largest chunk (a
/// longer file cannot hash right and is reported corrupt).
fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    // Sized from the file's length (bounded), so the read never regrows.
    let expected = file.metadata()?.len().min(MAX_CHUNK_BYTES + 1);
    let mut bytes = Vec::with_capacity(expected as usize);
    file.take(MAX_CHUNK_BYTES + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn ignore_not_found(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn create_dirs(layout: &Layout) -> Result<(), StoreError> {
    for dir in [
        layout.chunks_dir(),
        layout.temp_dir(),
        layout.quarantine_dir(),
    ] {
        fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
    }
    Ok(())
}

fn lock_root(layout: &Layout) -> Result<File, StoreError> {
    let path = layout.lock_file();
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(StoreError::io(&path))?;
    match sys::try_lock_exclusive(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(StoreError::Locked(path)),
        Err(e) => Err(StoreError::io(path)(e)),
    }
}

/// Checks the layout marker, writing it into a store that has none yet.
fn check_format(layout: &Layout) -> Result<(), StoreError> {
    let path = layout.format_file();
    match fs::read_to_string(&path) {
        Ok(found) if found == FORMAT_MARKER => Ok(()),
        Ok(found) => Err(StoreError::UnsupportedFormat {
            path,
            found,
            expected: FORMAT_MARKER,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            sys::write_new_synced(&path, FORMAT_MARKER.as_bytes())
                .map_err(StoreError::io(&path))?;
            sys::sync_dir(layout.root()).map_err(StoreError::io(layout.root()))
        }
        Err(e) => Err(StoreError::io(path)(e)),
    }
}

/// Removes `*.tmp` files (torn writes) and returns how many there were.
fn remove_temp_files(dir: &Path) -> Result<usize, StoreError> {
    let mut removed = 0;
    for entry in read_dir(dir)? {
        let path = entry.path();
        if path.to_string_lossy().ends_with(TEMP_SUFFIX) && path.is_file() {
            fs::remove_file(&path).map_err(StoreError::io(&path))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sys::sync_dir(dir).map_err(StoreError::io(dir))?;
    }
    Ok(removed)
}

/// Builds the inventory from `chunks/ab/cd/<hex>`. Anything else found there
/// is logged and ignored, never served.
fn scan_chunks(layout: &Layout) -> Result<State, StoreError> {
    let mut state = State::default();
    for level1 in read_dir(&layout.chunks_dir())? {
        for level2 in read_dir(&level1.path())? {
            for file in read_dir(&level2.path())? {
                scan_one(layout, &file.path(), &mut state)?;
            }
        }
    }
    Ok(state)
}

fn scan_one(layout: &Layout, path: &Path, state: &mut State) -> Result<(), StoreError> {
    let hash = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse::<ChunkHash>().ok());
    match hash {
        Some(hash) if layout.chunk_file(hash) == path => {
            let meta = fs::metadata(path).map_err(StoreError::io(path))?;
            state.insert(hash, meta.len());
            // It survived the restart: on disk is durable.
            if let Some(entry) = state.chunks.get_mut(&hash) {
                entry.durable = true;
            }
        }
        _ => tracing::warn!(path = %path.display(), "ignoring a stray file in the chunk directory"),
    }
    Ok(())
}

/// The entries of `dir`; empty if `dir` is not a directory (a stray file
/// where a fan-out directory should be is ignored).
fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, StoreError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries = fs::read_dir(dir).map_err(StoreError::io(dir))?;
    entries
        .collect::<io::Result<Vec<_>>>()
        .map_err(StoreError::io(dir))
}

mod upload;

#[cfg(test)]
mod tests;
