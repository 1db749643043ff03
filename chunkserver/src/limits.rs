//! Every limit and timeout of a chunk server, named once.

use std::time::Duration;

/// Default time between reports to the metadata leader.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Default delay between the leader's drop order and the deletion.
pub const DEFAULT_DROP_GRACE: Duration = Duration::from_secs(30 * 60);
/// Default number of healing copies running at once.
pub const DEFAULT_FETCH_PARALLELISM: usize = 4;
/// A drop order is acted on only while the latest answer is at most this
/// many report intervals old.
pub const FRESH_ANSWER_INTERVALS: u32 = 3;
/// A report unanswered this long also goes to the next metadata node.
pub const REPORT_HEDGE_AFTER: Duration = Duration::from_millis(500);
/// A node that refused a report at once while another still has not
/// answered is asked again after this long, within the same round.
pub const RETRY_REFUSED_AFTER: Duration = Duration::from_millis(100);
/// Bound on one report round trip to one metadata node.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one healing copy from one source.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an upload passed down its chain may take at the next link
/// (its whole body and the answer of the links after it).
pub const CHAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// First wait after every metadata node failed; doubles up to the cap (kept
/// short: after a leader election every server must re-register quickly).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Most fetches queued or running at once; further orders wait for a later
/// answer.
pub const MAX_QUEUED_FETCHES: usize = 256;

/// Chunk bodies (uploads and patches) read at once; more wait their turn
/// before their body is read. Uploads stream to disk, so this bounds the
/// disk writes at once; patches are read whole, so it also keeps their
/// buffers under this many times the largest chunk (1 GiB at 64 MiB).
pub const MAX_CHUNK_BODIES_IN_FLIGHT: usize = 16;
/// Most uploads passed on by another server's chain at once. A chain hop
/// never waits for room: with none it is answered 503 at once, so servers
/// passing uploads to each other can never wait on each other's slots (the
/// client sends that copy directly instead).
pub const MAX_CHAIN_HOPS_IN_FLIGHT: usize = 16;
/// Most reported copies being re-hashed at once (`POST /chunks/{hash}/verify`).
pub const MAX_VERIFIES_IN_FLIGHT: usize = 2;
/// Room for request framing beyond the largest chunk body.
pub const BODY_SLACK_BYTES: usize = 64 << 10;
/// Most hashes one `POST /chunks/exists` may ask about.
pub const MAX_EXISTS_HASHES: usize = 10_000;
/// Body limit of `POST /chunks/exists`: the hashes, quoted, plus slack.
pub const MAX_EXISTS_BODY_BYTES: usize = 1 << 20;
/// Chunks at least this large are hashed while they are written.
pub const PARALLEL_HASH_BYTES: usize = 1 << 20;

/// Default scrub rate: 32 MiB/s.
pub const DEFAULT_SCRUB_RATE_BYTES_PER_SEC: u64 = 32 << 20;
/// Default rest between scrub passes: one hour.
pub const DEFAULT_SCRUB_PAUSE: Duration = Duration::from_secs(3600);
