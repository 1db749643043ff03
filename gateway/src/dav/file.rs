//! The files WebDAV opens. A [`ReadFile`] streams one version of a file
//! from wherever the handler seeks to; a [`WriteFile`] pipes a PUT's body
//! into a put through a temporary: `flush` commits it (the temporary is
//! renamed over the target), and a file dropped before `flush` (the
//! request failed or the client went away) abandons the put, which then
//! deletes its temporary. A reader never sees half a file.

use std::fmt;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};
use dav_server::fs::{DavFile, DavMetaData, FsError, FsFuture};
use futures::stream::{self, Stream, StreamExt};
use futures::FutureExt;
use toastyfs_client::{ClientError, WriteOutcome};
use toastyfs_proto::FsPath;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::io::StreamReader;

use super::meta::{fs_error, Meta};
use crate::{pipe, Gateway};

type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// An open file being read: one version, from `pos` on.
pub struct ReadFile {
    gateway: Arc<Gateway>,
    path: FsPath,
    meta: Meta,
    pos: u64,
    /// The read from `pos`, started at the first `read_bytes` after a
    /// seek. In a mutex only to be `Sync`; reached through `&mut self`.
    stream: Mutex<Option<(ByteStream, Bytes)>>,
}

impl ReadFile {
    pub fn new(gateway: Arc<Gateway>, path: FsPath, meta: Meta) -> ReadFile {
        ReadFile {
            gateway,
            path,
            meta,
            pos: 0,
            stream: Mutex::new(None),
        }
    }

    async fn read(&mut self, count: usize) -> Result<Bytes, FsError> {
        let want =
            count.min(usize::try_from(self.meta.length.saturating_sub(self.pos)).unwrap_or(count));
        let slot = self.stream.get_mut().unwrap_or_else(|p| p.into_inner());
        let (stream, held) = slot.get_or_insert_with(|| {
            let read = pipe::read_stream(
                Arc::clone(&self.gateway),
                self.path.clone(),
                self.meta.version,
                self.pos,
                None,
            );
            (Box::pin(read) as ByteStream, Bytes::new())
        });
        let mut out = BytesMut::with_capacity(want);
        while out.len() < want {
            if held.is_empty() {
                match stream.next().await {
                    Some(Ok(block)) => *held = block,
                    Some(Err(e)) => {
                        tracing::warn!(path = %self.path, error = %e, "a WebDAV read failed");
                        return Err(FsError::GeneralFailure);
                    }
                    None => return Err(FsError::GeneralFailure),
                }
            }
            let take = held.len().min(want - out.len());
            out.extend_from_slice(&held.split_to(take));
        }
        self.pos += out.len() as u64;
        Ok(out.freeze())
    }
}

impl fmt::Debug for ReadFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadFile")
            .field("path", &self.path)
            .field("version", &self.meta.version)
            .field("pos", &self.pos)
            .finish()
    }
}

impl DavFile for ReadFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let meta: Box<dyn DavMetaData> = Box::new(self.meta.clone());
        futures::future::ready(Ok(meta)).boxed()
    }

    fn write_buf(&mut self, _buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn write_bytes(&mut self, _buf: Bytes) -> FsFuture<'_, ()> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn read_bytes(&mut self, count: usize) -> FsFuture<'_, Bytes> {
        self.read(count).boxed()
    }

    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        let target = match pos {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(back) => self.meta.length.checked_add_signed(back),
            SeekFrom::Current(by) => self.pos.checked_add_signed(by),
        };
        let answer = match target {
            Some(at) if at <= self.meta.length => {
                if at != self.pos {
                    self.pos = at;
                    *self.stream.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
                }
                Ok(at)
            }
            _ => Err(FsError::GeneralFailure),
        };
        futures::future::ready(answer).boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        futures::future::ready(Ok(())).boxed()
    }
}

/// An open file being written: a put running in its own task, fed the
/// request body through a bounded channel.
pub struct WriteFile {
    gateway: Arc<Gateway>,
    path: FsPath,
    blocks: Option<mpsc::Sender<Bytes>>,
    /// Set by `flush` before it closes the channel: the end of the body,
    /// not an abandoned request.
    complete: Arc<AtomicBool>,
    put: Option<JoinHandle<Result<WriteOutcome, ClientError>>>,
    written: u64,
    committed: Option<Meta>,
}

/// Blocks queued between the request body and the put.
const QUEUED_BLOCKS: usize = 16;

impl WriteFile {
    /// Starts the put of `path`; `create_only` refuses an existing file.
    pub fn start(
        gateway: Arc<Gateway>,
        path: FsPath,
        create_only: bool,
    ) -> Result<WriteFile, FsError> {
        let temp = toastyfs_client::upload_temp_path(&path).map_err(fs_error)?;
        let (blocks, queue) = mpsc::channel(QUEUED_BLOCKS);
        let complete = Arc::new(AtomicBool::new(false));
        let body = body_stream(queue, Arc::clone(&complete));
        let put = {
            let gateway = Arc::clone(&gateway);
            let path = path.clone();
            tokio::spawn(async move {
                let reader = StreamReader::new(body);
                gateway
                    .client
                    .put_via(&path, &temp, reader, create_only, None, None)
                    .await
            })
        };
        Ok(WriteFile {
            gateway,
            path,
            blocks: Some(blocks),
            complete,
            put: Some(put),
            written: 0,
            committed: None,
        })
    }

    async fn write(&mut self, block: Bytes) -> Result<(), FsError> {
        let len = block.len() as u64;
        let sent = match &self.blocks {
            Some(blocks) => blocks.send(block).await.is_ok(),
            None => false,
        };
        if !sent {
            // The put ended before the body did: say why.
            return Err(self.finish().await.err().unwrap_or(FsError::GeneralFailure));
        }
        self.written += len;
        Ok(())
    }

    /// Ends the body and waits for the put's outcome.
    async fn finish(&mut self) -> Result<(), FsError> {
        if self.committed.is_some() {
            return Ok(());
        }
        self.complete.store(true, Ordering::SeqCst);
        self.blocks = None;
        let put = self.put.take().ok_or(FsError::GeneralFailure)?;
        let outcome = match put.await {
            Ok(outcome) => outcome.map_err(fs_error)?,
            Err(e) => {
                tracing::warn!(path = %self.path, error = %e, "a WebDAV put stopped");
                return Err(FsError::GeneralFailure);
            }
        };
        let mtime_ms = match self.gateway.client.stat(&self.path).await {
            Ok(info) if info.version == outcome.version => info.mtime_ms,
            _ => now_ms(),
        };
        self.committed = Some(Meta {
            dir: false,
            length: outcome.file_length,
            mtime_ms,
            version: outcome.version,
        });
        Ok(())
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The body as the put reads it: the blocks, then the end if `flush`
/// marked the body complete, or an error if the sender went away first,
/// so an abandoned request never commits a short file.
fn body_stream(
    queue: mpsc::Receiver<Bytes>,
    complete: Arc<AtomicBool>,
) -> impl Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static {
    Box::pin(stream::unfold(Some(queue), move |queue| {
        let complete = Arc::clone(&complete);
        async move {
            let mut queue = queue?;
            match queue.recv().await {
                Some(block) => Some((Ok(block), Some(queue))),
                None if complete.load(Ordering::SeqCst) => None,
                None => Some((
                    Err(io::Error::other("the request ended before its body did")),
                    None,
                )),
            }
        }
    }))
}

impl fmt::Debug for WriteFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteFile")
            .field("path", &self.path)
            .field("written", &self.written)
            .finish()
    }
}

impl DavFile for WriteFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let meta = self.committed.clone().unwrap_or(Meta {
            dir: false,
            length: self.written,
            mtime_ms: now_ms(),
            version: toastyfs_proto::Version(0),
        });
        let meta: Box<dyn DavMetaData> = Box::new(meta);
        futures::future::ready(Ok(meta)).boxed()
    }

    fn write_buf(&mut self, mut buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        let block = buf.copy_to_bytes(buf.remaining());
        self.write(block).boxed()
    }

    fn write_bytes(&mut self, buf: Bytes) -> FsFuture<'_, ()> {
        self.write(buf).boxed()
    }

    fn read_bytes(&mut self, _count: usize) -> FsFuture<'_, Bytes> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    /// Only where the file already is: a put writes from the start on.
    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        let answer = match pos {
            SeekFrom::Start(at) if at == self.written => Ok(at),
            SeekFrom::Current(0) => Ok(self.written),
            _ => Err(FsError::NotImplemented),
        };
        futures::future::ready(answer).boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        self.finish().boxed()
    }
}
