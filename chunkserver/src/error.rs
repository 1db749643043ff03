//! `StoreError`: every way a chunk-store operation can fail, each variant a
//! situation the caller can act on (send the right bytes, try another
//! replica, free space, retry later). HTTP status mapping lives in
//! [`crate::api`], not here.

use std::io;
use std::path::PathBuf;

use toastyfs_proto::hash::ChunkHash;

/// Why a chunk-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bytes offered do not hash to the name they were offered under;
    /// the sender must send the right bytes (nothing was stored).
    #[error("the body hashes to {actual}, not to its name {expected}")]
    HashMismatch {
        expected: ChunkHash,
        actual: ChunkHash,
    },
    /// A chunk (or the result of a patch) would be larger than any chunk may
    /// be; nothing was stored.
    #[error("a chunk of {size_bytes} bytes exceeds the {max_bytes}-byte maximum")]
    TooLarge { size_bytes: u64, max_bytes: u64 },
    /// Storing the chunk would exceed the configured capacity; place it on
    /// another chunk server or raise the capacity.
    #[error("storing {needed_bytes} bytes would exceed this server's capacity ({free_bytes} bytes free)")]
    CapacityExceeded { needed_bytes: u64, free_bytes: u64 },
    /// The filesystem itself ran out of space while writing.
    #[error("the disk is full: {0}")]
    DiskFull(#[source] io::Error),
    /// This server does not hold the chunk (or held it and its file has
    /// vanished, in which case it is now reported lost); try another replica.
    #[error("chunk {0} is not on this server")]
    NotFound(ChunkHash),
    /// The chunk's file no longer hashes to its name. It was moved to
    /// quarantine and reported lost, and is never served again; try another
    /// replica.
    #[error("chunk {0} is corrupt on this server; it was quarantined and reported lost")]
    Corrupt(ChunkHash),
    /// A read or patch starts past the end of the chunk.
    #[error("offset {offset} is past the end of the {size_bytes}-byte chunk")]
    RangeNotSatisfiable { offset: u64, size_bytes: u64 },
    /// The directory holds a store of a layout this build does not know
    /// (written by a newer version, or not a chunk store at all).
    #[error("{path} says {found:?}; this build reads only the layout {expected:?}")]
    UnsupportedFormat {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    /// Another process already serves this store directory.
    #[error("another process holds the store lock {0}; is a chunk server already running on this directory?")]
    Locked(PathBuf),
    /// Any other I/O failure, with the path it happened on.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A blocking store task panicked or was cancelled.
    #[error("a blocking store task failed: {0}")]
    TaskFailed(String),
}

impl StoreError {
    /// Wraps an I/O error on `path`, singling out a full disk.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| match source.kind() {
            io::ErrorKind::StorageFull => StoreError::DiskFull(source),
            _ => StoreError::Io { path, source },
        }
    }

    /// A short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::HashMismatch { .. } => "hash_mismatch",
            StoreError::TooLarge { .. } => "too_large",
            StoreError::CapacityExceeded { .. } | StoreError::DiskFull(_) => "no_space",
            StoreError::NotFound(_) => "not_found",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::RangeNotSatisfiable { .. } => "bad_range",
            StoreError::Locked(_) | StoreError::UnsupportedFormat { .. } => "unusable_store",
            StoreError::Io { .. } | StoreError::TaskFailed(_) => "error",
        }
    }
}
