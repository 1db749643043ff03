//! Every limit of the gateway, named once.

/// The header that chooses a new file's chunk size on PUT (bytes).
pub const CHUNK_SIZE_HEADER: &str = "x-toastyfs-chunk-size";
/// Bytes buffered between a GET's read and its response body.
pub const STREAM_BUFFER: usize = 1 << 20;
/// Entries in one page of a directory listing unless `?limit=` says.
pub const DEFAULT_LIST_PAGE: u32 = 1_000;
