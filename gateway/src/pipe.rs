//! A read of one file version as a stream of byte blocks, for anything
//! that hands the bytes on (a GET's body, a WebDAV read, a COPY's put).
//! The read runs in its own task into a bounded pipe; if it fails, the
//! stream ends with that error rather than just ending, so no consumer
//! can mistake a failed read for a short file.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use toastyfs_proto::{FsPath, Version};
use tokio_util::io::ReaderStream;

use crate::limits::{STREAM_BLOCK, STREAM_BUFFER};
use crate::Gateway;

/// The bytes `[start, start + len)` (`len` `None`: to the end) of
/// `version` of `path`, in blocks; an error item if the read failed.
pub fn read_stream(
    gateway: Arc<Gateway>,
    path: FsPath,
    version: Version,
    start: u64,
    len: Option<u64>,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let (writer, reader) = tokio::io::duplex(STREAM_BUFFER);
    let read = tokio::spawn(async move {
        gateway
            .client
            .read_version_to(&path, Some(version), start, len, writer, None)
            .await
            .map_err(|e| (path, e))
    });
    let outcome = stream::once(async move {
        match read.await {
            Ok(Ok(_)) => None,
            Ok(Err((path, e))) => {
                tracing::warn!(%path, error = %e, "a read ended early");
                Some(Err(io::Error::other(format!("reading {path}: {e}"))))
            }
            Err(e) => Some(Err(io::Error::other(format!("the read stopped: {e}")))),
        }
    })
    .filter_map(futures::future::ready);
    ReaderStream::with_capacity(reader, STREAM_BLOCK).chain(outcome)
}
