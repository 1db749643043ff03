//! Uploads streamed to disk: an upload's body goes into a temporary file
//! as it arrives, hashed on the way ([`crate::api`] does the receiving),
//! and only then is the file checked against its name and installed, so
//! a chunk server never holds a whole chunk body in memory to store it.
//!
//! The same rules as [`ChunkStore::put`]: a body that does not hash to its
//! name, or is too large, is refused and leaves nothing; a chunk already
//! listed is acknowledged only if its file is intact (else the upload
//! replaces it); a new chunk is renamed into place and its directory
//! fsynced before it is acknowledged.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use toastyfs_proto::hash::ChunkHash;

use super::{check_hash, check_size, ChunkStore, PutOutcome};
use crate::error::StoreError;

impl ChunkStore {
    /// A fresh temporary file for an upload of `hash` whose body may be
    /// `announced` bytes long (refused early when too large or beyond
    /// the free capacity).
    pub fn begin_upload(
        &self,
        hash: ChunkHash,
        announced: Option<u64>,
    ) -> Result<(File, PathBuf), StoreError> {
        if let Some(size_bytes) = announced {
            check_size(size_bytes)?;
            self.check_room(hash, size_bytes)?;
        }
        let seq = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        let temp = self.layout.temp_file(hash, seq);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(StoreError::io(temp.clone()))?;
        Ok((file, temp))
    }

    /// Stores the written and fsynced temporary file `temp` of
    /// `size_bytes`, whose content hashes to `actual`, as chunk `hash`. The
    /// temporary file is gone afterwards whatever the outcome.
    pub fn finish_upload(
        &self,
        hash: ChunkHash,
        temp: &Path,
        size_bytes: u64,
        actual: ChunkHash,
    ) -> Result<PutOutcome, StoreError> {
        let result = check_size(size_bytes)
            .and_then(|()| check_hash(hash, actual))
            .and_then(|()| self.install_upload(hash, temp, size_bytes));
        // Already renamed into place when stored: then nothing to remove.
        let _ = fs::remove_file(temp);
        result
    }

    fn install_upload(
        &self,
        hash: ChunkHash,
        temp: &Path,
        size_bytes: u64,
    ) -> Result<PutOutcome, StoreError> {
        let Some(reservation) = self.reserve(hash, size_bytes)? else {
            return self.confirm_present_upload(hash, temp, size_bytes);
        };
        let dir = self.layout.fanout_dir(hash);
        let placed = self
            .ensure_fanout_dir(&dir)
            .and_then(|()| self.rename_into_place(hash, temp, size_bytes));
        drop(reservation);
        match placed? {
            PutOutcome::Stored => {
                self.make_durable(hash)?;
                self.state().ack(hash);
                Ok(PutOutcome::Stored)
            }
            // Another upload installed it first: check its copy like any.
            PutOutcome::AlreadyPresent => self.confirm_present_upload(hash, temp, size_bytes),
        }
    }

    /// [`ChunkStore::put`]'s rule for a chunk already listed, with the
    /// upload in `temp` as the replacement for a missing or corrupt copy.
    fn confirm_present_upload(
        &self,
        hash: ChunkHash,
        temp: &Path,
        size_bytes: u64,
    ) -> Result<PutOutcome, StoreError> {
        if !self.copy_intact(hash) {
            tracing::warn!(%hash, "a stored chunk is missing or corrupt; replacing it with the uploaded copy");
            return self.replace_from(hash, temp, size_bytes);
        }
        match self.acknowledge_present(hash)? {
            Some(outcome) => Ok(outcome),
            // Deleted meanwhile: store it anew.
            None => self.install_upload(hash, temp, size_bytes),
        }
    }

    /// Refuses an upload that cannot fit in the capacity (a chunk already
    /// here always fits).
    fn check_room(&self, hash: ChunkHash, size_bytes: u64) -> Result<(), StoreError> {
        let state = self.state();
        if state.chunks.contains_key(&hash) {
            return Ok(());
        }
        self.check_capacity(&state, size_bytes)
    }
}
