//! Where a store keeps things under its root directory:
//!
//! ```text
//! <root>/FORMAT                   "toastyfs-chunks 1": the layout version
//! <root>/LOCK                     held (flock) by the serving process
//! <root>/chunks/ab/cd/<hex>       a chunk, named by the hex SHA-256 of its bytes
//! <root>/tmp/<hex>.<n>.tmp        a chunk being written (removed at open)
//! <root>/quarantine/<hex>.<t>     a chunk found corrupt, kept for inspection
//! ```
//!
//! The two-level fan-out keeps directories small (65 536 leaves). This module
//! only computes paths; it does no I/O.

use std::path::{Path, PathBuf};

use toastyfs_proto::hash::ChunkHash;

/// Contents of `<root>/FORMAT` for this layout. A future layout gets a new
/// number and an upgrade step in `ChunkStore::open`.
pub const FORMAT_MARKER: &str = "toastyfs-chunks 1\n";

/// Suffix of temporary files; anything else in `tmp/` is left alone.
pub const TEMP_SUFFIX: &str = ".tmp";

/// The paths of one store.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: PathBuf) -> Layout {
        Layout { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn format_file(&self) -> PathBuf {
        self.root.join("FORMAT")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join("LOCK")
    }

    pub fn chunks_dir(&self) -> PathBuf {
        self.root.join("chunks")
    }

    pub fn temp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    /// `chunks/ab/cd` for a hash whose hex starts `abcd`.
    pub fn fanout_dir(&self, hash: ChunkHash) -> PathBuf {
        let hex = hash.to_string();
        self.chunks_dir().join(&hex[0..2]).join(&hex[2..4])
    }

    pub fn chunk_file(&self, hash: ChunkHash) -> PathBuf {
        self.fanout_dir(hash).join(hash.to_string())
    }

    pub fn temp_file(&self, hash: ChunkHash, seq: u64) -> PathBuf {
        self.temp_dir().join(format!("{hash}.{seq}{TEMP_SUFFIX}"))
    }

    pub fn quarantine_file(&self, hash: ChunkHash, stamp: u128) -> PathBuf {
        self.quarantine_dir().join(format!("{hash}.{stamp}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_files_fan_out_on_the_first_four_hex_digits() {
        let layout = Layout::new(PathBuf::from("/r"));
        let hash = ChunkHash::of(b"");
        assert_eq!(
            layout.chunk_file(hash),
            PathBuf::from(format!("/r/chunks/e3/b0/{hash}"))
        );
    }
}
