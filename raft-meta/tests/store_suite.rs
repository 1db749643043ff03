//! openraft's own storage test suite against our RocksDB log store and
//! state machine (storage v2).

use openraft::testing::{StoreBuilder, Suite};
use toastyfs_raft_meta::store::{self, LogStore, StateMachine};
use toastyfs_raft_meta::types::{StorageError, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, state) = store::open(dir.path()).expect("open store");
        Ok((dir, log, state))
    }
}

/// Runs every case of `openraft::testing::Suite` (it starts its own runtime).
#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft storage suite failed: {e}");
    }
}
