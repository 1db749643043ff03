//! The cluster secret on disk: created once (`toastyfs cluster secret`,
//! `toastyfs dev`) with mode 0600, read by every node, chunk server and
//! operator command, and refused when anyone but its owner could read it.
//! [`ClusterKeys`] is what a process holds: the secret it signs with and,
//! during a rotation, one more it also accepts.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use toastyfs_proto::auth::{Secret, SecretError, SECRET_LEN};

/// Why a secret file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read the cluster secret {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the cluster secret {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("the cluster secret {path} is not one: {source}")]
    Invalid { path: PathBuf, source: SecretError },
    #[error("{path} exists already; a new cluster secret is never written over one")]
    Exists { path: PathBuf },
    #[error("cannot write the cluster secret {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads a secret file, refusing one that its group or others can read.
pub fn load(path: &Path) -> Result<Secret, SecretFileError> {
    let read_error = |source| SecretFileError::Read {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    Secret::from_hex(&text).map_err(|source| SecretFileError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// Writes a new random secret to `path` (mode 0600), never over an
/// existing file.
pub fn create(path: &Path) -> Result<Secret, SecretFileError> {
    let mut bytes = [0u8; SECRET_LEN];
    rand::fill(&mut bytes);
    let secret = Secret::from_bytes(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => SecretFileError::Exists {
                path: path.to_owned(),
            },
            _ => SecretFileError::Write {
                path: path.to_owned(),
                source,
            },
        })?;
    let write_error = |source| SecretFileError::Write {
        path: path.to_owned(),
        source,
    };
    writeln!(file, "{}", secret.to_hex()).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(secret)
}

/// The secrets one process holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterKeys {
    /// Every request this process sends is signed with it.
    pub sign_with: Secret,
    /// Accepted besides `sign_with` (the other secret of a rotation).
    pub also_accept: Option<Secret>,
}

impl ClusterKeys {
    /// Reads the signing secret and, when given, the other accepted one.
    pub fn load(sign_with: &Path, also_accept: Option<&Path>) -> Result<Self, SecretFileError> {
        Ok(ClusterKeys {
            sign_with: load(sign_with)?,
            also_accept: also_accept.map(load).transpose()?,
        })
    }

    /// Every secret a request may be signed with.
    pub fn accepted(&self) -> Vec<Secret> {
        std::iter::once(self.sign_with.clone())
            .chain(self.also_accept.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_secret_is_private_reads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        let secret = create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(&path).expect("load"), secret);
        assert!(matches!(create(&path), Err(SecretFileError::Exists { .. })));
    }

    #[test]
    fn a_secret_others_can_read_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        create(&path).expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let error = load(&path).expect_err("group-readable");
        assert!(matches!(
            error,
            SecretFileError::Exposed { mode: 0o640, .. }
        ));
        assert!(error.to_string().contains("chmod 600"), "{error}");
    }

    #[test]
    fn a_file_that_is_no_secret_says_why() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "hunter2\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let error = load(&path).expect_err("not a secret");
        assert!(error.to_string().contains("64 hex digits"), "{error}");
    }
}
