//! The CLI's own limits: a person waits at the terminal, so an
//! unreachable cluster is reported sooner than the library's default.

use std::time::Duration;

/// Give up when no metadata node accepted a connection for this long.
pub const CLI_UNREACHABLE_AFTER: Duration = Duration::from_millis(1_500);
/// A connection to one node not made within this is not coming.
pub const CLI_CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
/// After a signal, removing the temporaries in flight may take this long.
pub const CLI_CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Chunks a copy of several files moves at once, over all its files:
/// each file gets its share, so memory stays bounded whatever
/// `--parallelism` says.
pub const CLI_CHUNKS_IN_FLIGHT: usize = 16;
