//! What WebDAV sees of an entry (its live properties: length, times,
//! entity tag from the version) and how a client failure reads to it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dav_server::fs::{DavDirEntry, DavMetaData, FsError, FsFuture, FsResult};
use futures::FutureExt;
use toastyfs_client::ClientError;
use toastyfs_proto::namespace::{EntryInfo, EntryKind, FsError as Refusal};
use toastyfs_proto::Version;

/// An entry's metadata as WebDAV reports it.
#[derive(Debug, Clone)]
pub struct Meta {
    pub dir: bool,
    pub length: u64,
    pub mtime_ms: u64,
    pub version: Version,
}

impl Meta {
    pub fn of(info: &EntryInfo) -> Meta {
        Meta {
            dir: info.kind == EntryKind::Dir,
            length: info.length,
            mtime_ms: info.mtime_ms,
            version: info.version,
        }
    }
}

impl DavMetaData for Meta {
    fn len(&self) -> u64 {
        self.length
    }

    fn modified(&self) -> FsResult<SystemTime> {
        Ok(UNIX_EPOCH + Duration::from_millis(self.mtime_ms))
    }

    fn is_dir(&self) -> bool {
        self.dir
    }

    fn is_symlink(&self) -> bool {
        false
    }

    /// The plain HTTP side's tag: a version names one content.
    fn etag(&self) -> Option<String> {
        Some(format!("v{}", self.version.0))
    }
}

/// One entry of a directory being listed.
pub struct DirEntry(pub EntryInfo);

impl DavDirEntry for DirEntry {
    fn name(&self) -> Vec<u8> {
        self.0.name.as_bytes().to_vec()
    }

    fn metadata(&self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let meta: Box<dyn DavMetaData> = Box::new(Meta::of(&self.0));
        futures::future::ready(Ok(meta)).boxed()
    }
}

/// The WebDAV error closest to a client failure. WebDAV's error set is
/// small: an unreachable cluster and an unknown outcome both become a
/// general failure (500), logged with the cause.
pub fn fs_error(e: ClientError) -> FsError {
    let mapped = match &e {
        ClientError::Refused(refusal) => match refusal {
            Refusal::NotFound { .. } => FsError::NotFound,
            Refusal::AlreadyExists { .. } | Refusal::RenameTargetExists { .. } => FsError::Exists,
            Refusal::NotEmpty { .. }
            | Refusal::NotADirectory { .. }
            | Refusal::IsADirectory { .. }
            | Refusal::RenameKindMismatch { .. }
            | Refusal::RenameIntoOwnSubtree { .. }
            | Refusal::RootNotAllowed { .. } => FsError::Forbidden,
            Refusal::FileTooLarge { .. } => FsError::TooLarge,
            _ => FsError::Forbidden,
        },
        _ => FsError::GeneralFailure,
    };
    if mapped == FsError::GeneralFailure {
        tracing::warn!(error = %e, "a WebDAV request failed");
    } else {
        tracing::debug!(error = %e, "a WebDAV request was refused");
    }
    mapped
}
