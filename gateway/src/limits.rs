//! Every limit of the gateway, named once.

/// The header that chooses a new file's chunk size on PUT (bytes).
pub const CHUNK_SIZE_HEADER: &str = "x-toastyfs-chunk-size";
/// Bytes buffered between a GET's read and its response body.
pub const STREAM_BUFFER: usize = 1 << 20;
/// Largest block of a GET's body: one read of the pipe (tokio's default
/// of 4 KiB made a 1 GiB body a quarter of a million frames).
pub const STREAM_BLOCK: usize = 256 << 10;
/// Entries in one page of a directory listing unless `?limit=` says.
pub const DEFAULT_LIST_PAGE: u32 = 1_000;
