//! Cluster-wide settings kept in the namespace state, under the `P` key:
//! today the replication factor. Being in the replicated state, every node
//! and every later leader reads the same value; an absent key means the
//! defaults.

use toastyfs_proto::namespace::{ClusterSettings, FsError, Outcome, MAX_REPLICATION_FACTOR};
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
    let current = read(txn.store)?;
    if let Some(expected) = expect.filter(|e| *e != current.version) {
        return Err(FsError::VersionMismatch {
            path: "cluster settings".into(),
            expected,
            actual: current.version,
        }
        .into());
    }
    let version = txn.bump_version();
    let settings = ClusterSettings {
        replication_factor: factor,
        version,
    };
    stored::write(
        txn.store,
        keys::SETTINGS.to_vec(),
        &StoredSettings(settings),
    )?;
    Ok(Outcome::SettingsChanged { version })
}
