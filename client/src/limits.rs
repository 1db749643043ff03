//! Every limit and timeout of the client crate, named once. The metadata
//! node's forward timeouts (`raft-meta/src/limits.rs`) are chosen under
//! these, so a node that forwards for a client answers before the client
//! gives up on it.

use std::time::Duration;

use crate::retry::Backoff;

/// Per-request timeout of the file API (`ClientConfig::request_timeout`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one file operation retries across leader changes
/// (`ClientConfig::retry_for`).
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);
/// Give up this early when no metadata node accepts a connection at all.
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(5);
/// First wait after a round over every address failed; doubles up to
/// [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(50);
pub const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// A metadata request unanswered this long is also sent to the next
/// address (a hedge): far above a healthy answer (milliseconds), far
/// below a request timeout, so a paused or cut-off node costs about this.
pub const HEDGE_AFTER: Duration = Duration::from_millis(400);
/// A write unanswered this long is also sent to the next address. A bit
/// longer than for reads: a copy that reaches the leader while the first
/// is in flight joins it (one log entry), but a merely slow write under
/// load would still be sent, and forwarded, twice.
pub const HEDGE_WRITES_AFTER: Duration = Duration::from_millis(600);
/// Most attempts of one metadata request in flight at once (the first and
/// its hedges).
pub const MAX_HEDGED: usize = 4;
/// Chunks transferred at once by default (also the write window).
pub const DEFAULT_PARALLELISM: usize = 8;
/// Most writes one client has in flight (each on its own session).
pub const MAX_SESSIONS: usize = 64;

/// Largest response body accepted from a metadata node (a list page, a
/// snapshot chunk or a report answer fits), plus room for the envelope.
pub const MAX_RESPONSE_BYTES: usize = (16 << 20) + 4096;
/// Longest a TCP connection may take to be made; past it the request was
/// never sent.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept per host, so bursts reuse connections.
pub const MAX_IDLE_PER_HOST: usize = 64;
/// An idle pooled connection is dropped after this long: well before a
/// ToastyFS server closes it (its header read timeout, 10 s by default,
/// also runs on idle keep-alive connections), so a request is never sent
/// on a connection the server is closing, which would make its outcome
/// unknown.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Most bytes of an error body quoted in an error.
pub const MAX_QUOTED_ERROR: usize = 1 << 10;

/// How long a status or chunk-status request may take.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a whole backup may take to arrive (about 10 GB of namespace
/// at a slow 3 MB/s).
pub const BACKUP_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long `cluster init` may take on one node.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long adding a node may take: the leader answers once the new node
/// has caught up with the log (a forwarding node gives up after 300 s).
pub const ADD_NODE_TIMEOUT: Duration = Duration::from_secs(310);
/// How long removing a node may take (a forwarding node: 60 s).
pub const REMOVE_NODE_TIMEOUT: Duration = Duration::from_secs(70);
/// Default retry budget of administrative operations.
pub const ADMIN_RETRY_BUDGET: Duration = Duration::from_secs(20);

/// Wait before redoing a read-modify-write whose chunk another writer
/// changed first (spreads out writers racing for one chunk).
pub const REPATCH_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(5),
    max: Duration::from_millis(200),
};
