//! The e2e tests' view of the harness: the cluster control of
//! `toastyfs-jepsen`, started with the binary under test.

use std::path::PathBuf;

pub use toastyfs_jepsen::cluster::{wait_for, Cluster};

/// The binary under test; `TOASTYFS_BIN` overrides it to test another build.
pub fn binary() -> PathBuf {
    std::env::var_os("TOASTYFS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_toastyfs")))
}

/// Starts `n` metadata nodes of the binary under test and forms the cluster.
pub async fn start(n: u64, extra_args: &[&str]) -> Cluster {
    Cluster::start(binary(), n, extra_args).await
}
