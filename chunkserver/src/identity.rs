//! The chunk server's stable identity: a random [`ChunkServerId`] chosen the
//! first time a data directory is used and kept in `<data dir>/server-id`,
//! so the metadata leader recognises the server across restarts and address
//! changes.
//!
//! The file is one record (the envelope of `toastyfs_proto::record`, kind
//! [`SERVER_ID_KIND`]), so a torn or corrupt file is a clear error, never a
//! silently new identity. It is written to `server-id.tmp`, fsynced, renamed
//! into place and the directory fsynced. Call [`load_or_create`] only while
//! holding the store lock (after [`crate::ChunkStore::open`]), so two
//! processes never race to create it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use toastyfs_proto::chunks::ChunkServerId;
use toastyfs_proto::record::{self, Framed, RecordError};

use crate::sys;

/// Name of the identity file inside the data directory.
pub const SERVER_ID_FILE: &str = "server-id";
/// Record kind of the identity file.
pub const SERVER_ID_KIND: u8 = 48;

type IdRecord = Framed<SERVER_ID_KIND, ChunkServerId>;

/// Why the identity could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot access the chunk server id file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the chunk server id file {path} is corrupt ({source}); restore it from a backup, or remove it only if this directory should join the cluster as a new server")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: RecordError,
    },
    #[error("cannot encode the chunk server id: {0}")]
    Encode(#[source] RecordError),
}

/// The id stored in `data_dir`, creating (and durably writing) a random one
/// if there is none yet.
pub fn load_or_create(data_dir: &Path) -> Result<ChunkServerId, IdentityError> {
    let path = data_dir.join(SERVER_ID_FILE);
    match fs::read(&path) {
        Ok(bytes) => decode(&path, &bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = random_id();
            write(data_dir, &path, id)?;
            tracing::info!(server_id = id.0, path = %path.display(), "chose a new chunk server id");
            Ok(id)
        }
        Err(source) => Err(IdentityError::Io { path, source }),
    }
}

fn decode(path: &Path, bytes: &[u8]) -> Result<ChunkServerId, IdentityError> {
    record::decode::<IdRecord>(bytes)
        .map(|framed| framed.0)
        .map_err(|source| IdentityError::Corrupt {
            path: path.to_owned(),
            source,
        })
}

/// A random non-zero id (zero is kept free as an obviously-unset value).
fn random_id() -> ChunkServerId {
    loop {
        let id = rand::random::<u64>();
        if id != 0 {
            return ChunkServerId(id);
        }
    }
}

fn write(data_dir: &Path, path: &Path, id: ChunkServerId) -> Result<(), IdentityError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| IdentityError::Io { path, source }
    };
    let bytes = record::encode(&IdRecord::from_owned(id)).map_err(IdentityError::Encode)?;
    let temp = data_dir.join(format!("{SERVER_ID_FILE}.tmp"));
    if let Err(e) = fs::remove_file(&temp) {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(io_error(&temp)(e));
        }
    }
    sys::write_new_synced(&temp, &bytes).map_err(io_error(&temp))?;
    fs::rename(&temp, path).map_err(io_error(path))?;
    sys::sync_dir(data_dir).map_err(io_error(data_dir))
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;

    use super::*;

    /// The id is chosen once and read back unchanged on every restart.
    #[test]
    fn the_id_survives_a_restart() {
        let dir = TempDir::new().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert_ne!(first.0, 0);
        assert!(dir.path().join(SERVER_ID_FILE).is_file());
        assert!(!dir.path().join("server-id.tmp").exists());
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
    }

    /// Two fresh directories get different ids.
    #[test]
    fn fresh_directories_get_distinct_ids() {
        let (a, b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        assert_ne!(
            load_or_create(a.path()).unwrap(),
            load_or_create(b.path()).unwrap()
        );
    }

    /// A flipped bit or a truncated file is an error, never a new identity.
    #[test]
    fn a_corrupt_file_is_a_clear_error() {
        let dir = TempDir::new().unwrap();
        load_or_create(dir.path()).unwrap();
        let path = dir.path().join(SERVER_ID_FILE);
        let good = fs::read(&path).unwrap();
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        for bad in [flipped, good[..good.len() - 1].to_vec(), b"hello".to_vec()] {
            fs::write(&path, &bad).unwrap();
            let err = load_or_create(dir.path()).unwrap_err();
            assert!(matches!(err, IdentityError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains("corrupt"), "{err}");
        }
    }

    /// A temporary file left by a crash before the rename is ignored and
    /// replaced.
    #[test]
    fn a_leftover_temp_file_is_replaced() {
        let dir = TempDir::new().unwrap();
        fs::write(dir.path().join("server-id.tmp"), b"torn").unwrap();
        let id = load_or_create(dir.path()).unwrap();
        assert_eq!(load_or_create(dir.path()).unwrap(), id);
    }
}
