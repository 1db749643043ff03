//! Cluster-wide settings kept in the namespace state, under the `P` key:
//! the replication factor, the copies a write waits for and the largest
//! content kept inline. Being in the replicated state, every node
//! and every later leader reads the same value; an absent key means the
//! defaults.

use toastyfs_proto::namespace::{
    ClusterSettings, FsError, Outcome, MAX_INLINE_BYTES, MAX_REPLICATION_FACTOR,
};
use toastyfs_proto::Version;

use super::kv::{KvRead, KvStore, StoreError};
use super::stored::{self, StoredSettings};
use super::{keys, OpResult, Txn};

/// The current settings (the defaults if never set).
pub fn read<S: KvRead + ?Sized>(store: &S) -> Result<ClusterSettings, StoreError> {
    Ok(stored::read::<StoredSettings, _>(store, keys::SETTINGS)?
        .map(|s| s.0)
        .unwrap_or_default())
}

/// `SetReplicationFactor`: 1..=16 copies; `expect` is checked against the
/// settings' version.
pub(crate) fn set_replication_factor<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    factor: u32,
    expect: Option<Version>,
) -> OpResult<Outcome> {
    if factor == 0 || factor > MAX_REPLICATION_FACTOR {
        return Err(FsError::InvalidReplicationFactor { factor }.into());
    }
    check_version(txn, expect)?;
    save(txn, |settings| settings.replication_factor = factor)
}

/// `SetMinCopies`: 1..=16 durable copies before a write is acknowledged;
/// `expect` is checked against the settings' version.
pub(crate) fn set_min_copies<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    copies: u32,
    expect: Option<Version>,
) -> OpResult<Outcome> {
    if copies == 0 || copies > MAX_REPLICATION_FACTOR {
        return Err(FsError::InvalidMinCopies { copies }.into());
    }
    check_version(txn, expect)?;
    save(txn, |settings| settings.min_copies = copies)
}

/// `SetInlineMax`: 0..=[`MAX_INLINE_BYTES`] bytes kept inline; `expect` is
/// checked against the settings' version.
pub(crate) fn set_inline_max<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    bytes: u32,
    expect: Option<Version>,
) -> OpResult<Outcome> {
    if bytes > MAX_INLINE_BYTES {
        return Err(FsError::InvalidInlineMax { bytes }.into());
    }
    check_version(txn, expect)?;
    save(txn, |settings| settings.inline_max_bytes = bytes)
}

/// Refuses unless the settings are at version `expect` (when given).
fn check_version<S: KvStore + ?Sized>(txn: &Txn<'_, S>, expect: Option<Version>) -> OpResult<()> {
    let current = read(txn.store)?;
    if let Some(expected) = expect.filter(|e| *e != current.version) {
        return Err(FsError::VersionMismatch {
            path: "cluster settings".into(),
            expected,
            actual: current.version,
        }
        .into());
    }
    Ok(())
}

/// Applies `change` to the settings under a new version.
fn save<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    change: impl FnOnce(&mut ClusterSettings),
) -> OpResult<Outcome> {
    let mut settings = read(txn.store)?;
    let version = txn.bump_version();
    change(&mut settings);
    settings.version = version;
    stored::write(
        txn.store,
        keys::SETTINGS.to_vec(),
        &StoredSettings(settings),
    )?;
    Ok(Outcome::SettingsChanged { version })
}
