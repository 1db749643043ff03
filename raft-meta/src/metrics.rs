//! Prometheus metrics of a metadata node: Raft term, role, commit and
//! applied index, apply latency, and client requests by outcome.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::types::NodeId;

/// Installs the process-wide recorder on the first call and returns its
/// handle to every caller, so servers and tests sharing a process render the
/// same series; `None` only if another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

pub fn record_apply(entries: usize, took: Duration) {
    counter!("toastyfs_meta_applied_entries_total").increment(entries as u64);
    histogram!("toastyfs_meta_apply_batch_seconds").record(took.as_secs_f64());
}

/// One client request finished with `outcome` (ok, refused, forwarded,
/// not_leader, error).
pub fn record_request(kind: &'static str, outcome: &'static str) {
    counter!("toastyfs_meta_requests_total", "kind" => kind, "outcome" => outcome).increment(1);
}

/// One read index round served `reads` linearizable reads.
pub fn record_read_index_round(reads: usize) {
    counter!("toastyfs_meta_read_index_rounds_total").increment(1);
    histogram!("toastyfs_meta_reads_per_round").record(reads as f64);
}

pub fn record_raft(
    term: u64,
    is_leader: bool,
    leader: Option<NodeId>,
    commit: u64,
    applied: u64,
    last_log: u64,
) {
    gauge!("toastyfs_meta_term").set(term as f64);
    gauge!("toastyfs_meta_is_leader").set(if is_leader { 1.0 } else { 0.0 });
    gauge!("toastyfs_meta_leader_id").set(leader.map_or(-1.0, |l| l as f64));
    gauge!("toastyfs_meta_commit_index").set(commit as f64);
    gauge!("toastyfs_meta_applied_index").set(applied as f64);
    gauge!("toastyfs_meta_last_log_index").set(last_log as f64);
}

/// What the last replication scan found, and how many chunk servers are
/// up of those the leader knows.
pub fn record_replication(
    summary: &crate::chunk_map::ScanSummary,
    servers_up: usize,
    servers_known: usize,
) {
    gauge!("toastyfs_meta_chunk_servers_known").set(servers_known as f64);
    gauge!("toastyfs_meta_chunks_located").set(summary.chunks as f64);
    gauge!("toastyfs_meta_chunks_under_replicated").set(summary.under_replicated as f64);
    gauge!("toastyfs_meta_chunks_over_replicated").set(summary.over_replicated as f64);
    gauge!("toastyfs_meta_chunks_garbage").set(summary.garbage as f64);
    gauge!("toastyfs_meta_chunk_servers_up").set(servers_up as f64);
    counter!("toastyfs_meta_chunk_copies_ordered_total").increment(summary.copies_ordered);
}

/// On a node that does not lead: the figures only a leader's scan keeps
/// are zero here, so a deposed leader's last values do not linger (the
/// alerts take the maximum over the nodes, which is the leader's).
pub fn clear_leader_figures() {
    for name in [
        "toastyfs_meta_chunks_located",
        "toastyfs_meta_chunks_under_replicated",
        "toastyfs_meta_chunks_over_replicated",
        "toastyfs_meta_chunks_garbage",
        "toastyfs_meta_chunk_servers_up",
        "toastyfs_meta_chunk_servers_known",
    ] {
        gauge!(name).set(0.0);
    }
}

/// Garbage records dropped because every copy of their chunk was deleted.
pub fn record_garbage_forgotten(count: u64) {
    counter!("toastyfs_meta_garbage_forgotten_total").increment(count);
}

/// How many entries each follower's log is behind the leader's (set on
/// the leader; 0 for every other member elsewhere, so a deposed leader
/// does not keep reporting lags it no longer knows).
pub fn record_follower_lag(lags: &[(NodeId, u64)]) {
    for (follower, lag) in lags {
        gauge!("toastyfs_meta_follower_lag_entries", "follower" => follower.to_string())
            .set(*lag as f64);
    }
}

/// Every [`DIGEST_CHECKPOINT_EVERY`]th proposal a node applies, the
/// digest after it: every replica passes the same proposal indexes, so
/// at the same checkpoint index the fingerprints must be equal (the
/// `ToastyFSDigestsDiffer` alert compares them).
pub const DIGEST_CHECKPOINT_EVERY: u64 = 100;

/// Records the digest at a checkpoint index: the index, and the digest's
/// first 48 bits (exact in a Prometheus float).
pub fn record_digest_checkpoint(index: u64, digest: &[u8; 32]) {
    let mut first = [0u8; 8];
    first[2..].copy_from_slice(&digest[..6]);
    let mut fingerprint = u64::from_be_bytes(first);
    if crate::unsafe_modes::skewed_digest_fingerprint() {
        fingerprint ^= 1;
    }
    gauge!("toastyfs_meta_digest_checkpoint_index").set(index as f64);
    gauge!("toastyfs_meta_digest_checkpoint_fingerprint").set(fingerprint as f64);
}
