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

/// Held by the tests that run whole clusters under heavy load (the
/// Jepsen-style runs, the budgets test): they take both cores, so they run
/// one at a time and leave the other tests their timing.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts `n` metadata nodes of the binary under test and forms the cluster.
pub async fn start(n: u64, extra_args: &[&str]) -> Cluster {
    Cluster::start(binary(), n, extra_args).await
}

/// Deterministic, incompressible-looking bytes (different in every chunk).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
