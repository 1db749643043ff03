//! Prometheus series of a chunk server: space gauges, uploads, downloads and
//! patches by outcome, scrubber progress, and healing copies. Recording is
//! process-wide through the `metrics` facade; rendering is done by
//! [`crate::api`] with the handle from [`install`].

use std::sync::OnceLock;

use metrics::{counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::store::Usage;

/// Installs the process-wide recorder on the first call and returns its
/// handle to every caller, so servers and tests sharing a process render the
/// same series; `None` only if another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// One upload finished with `outcome` (stored, already_present, or an error
/// kind from [`crate::StoreError::kind`]).
pub fn record_upload(outcome: &'static str) {
    counter!("toastyfs_chunk_uploads_total", "outcome" => outcome).increment(1);
}

/// One download (whole or ranged) finished with `outcome`.
pub fn record_download(outcome: &'static str) {
    counter!("toastyfs_chunk_downloads_total", "outcome" => outcome).increment(1);
}

/// One request to verify a copy (a client's report of bad bytes)
/// finished with `outcome`: `intact`, `corrupt`, `not_found`...
pub fn record_verify_request(outcome: &'static str) {
    counter!("toastyfs_chunk_verify_requests_total", "outcome" => outcome).increment(1);
}

/// One patch finished with `outcome`.
pub fn record_patch(outcome: &'static str) {
    counter!("toastyfs_chunk_patches_total", "outcome" => outcome).increment(1);
}

/// A chunk was copied here from another replica to heal under-replication.
/// Called by the sync module, which does the copying.
pub fn record_healing_copy() {
    counter!("toastyfs_chunk_healing_copies_total").increment(1);
}

/// The scrubber verified `bytes` bytes and found `corrupt` bad chunks.
pub fn record_scrub(bytes: u64, corrupt: u64) {
    counter!("toastyfs_chunk_scrubbed_bytes_total").increment(bytes);
    counter!("toastyfs_chunk_scrub_corrupt_total").increment(corrupt);
}

/// Sets the space gauges.
pub fn record_usage(usage: &Usage) {
    gauge!("toastyfs_chunk_chunks").set(usage.chunks as f64);
    gauge!("toastyfs_chunk_bytes").set(usage.bytes as f64);
    gauge!("toastyfs_chunk_free_bytes").set(usage.free_bytes as f64);
}
