//! Deliberately unsafe behaviours for the Jepsen harness to catch (issue
//! 12, "teeth"): compiled only with the test-only `unsafe-modes` feature
//! and, even then, off unless the process is started with
//! `TOASTYFS_UNSAFE_MODES=<mode>,...`. A build without the feature has no
//! unsafe path at all: every switch below is the constant `false`.
//!
//! - `local-reads`: every node answers linearizable reads from its own
//!   state, without a read index (a follower or deposed leader serves
//!   stale data).
//! - `unfenced-drops`: the leader orders every chunk no file references
//!   dropped at once, as if the log had condemned it, skipping the
//!   condemnation, its placement wait and so the commit check that fences
//!   a late commit off a deleted chunk.
//! - `skewed-digest-fingerprint`: the node's digest checkpoint metric
//!   reports a fingerprint not its own, as a diverged replica would (the
//!   state itself is untouched).

/// The environment variable naming the modes a test process turns on.
pub const ENV: &str = "TOASTYFS_UNSAFE_MODES";

/// Whether linearizable reads skip the read index and are answered here.
pub fn local_reads() -> bool {
    enabled("local-reads")
}

/// Whether this node reports a digest checkpoint fingerprint that is not
/// its own (a replica that diverged, for the digest alert's test).
pub fn skewed_digest_fingerprint() -> bool {
    enabled("skewed-digest-fingerprint")
}

/// Whether the collector drops unreferenced chunks without a condemnation.
pub fn unfenced_drops() -> bool {
    enabled("unfenced-drops")
}

#[cfg(feature = "unsafe-modes")]
fn enabled(mode: &str) -> bool {
    static MODES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    MODES
        .get_or_init(|| {
            let modes: Vec<String> = std::env::var(ENV)
                .unwrap_or_default()
                .split(',')
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect();
            if !modes.is_empty() {
                tracing::warn!(
                    ?modes,
                    "UNSAFE MODES ON: this node may lose or misreport data"
                );
            }
            modes
        })
        .iter()
        .any(|m| m == mode)
}

#[cfg(not(feature = "unsafe-modes"))]
fn enabled(_mode: &str) -> bool {
    false
}
