//! The write path: the source stream is cut into windows of at most
//! `parallelism` chunks; for each window the client reads the old chunks it
//! only partly overwrites, builds the new chunks, stores those the cluster
//! lacks, and commits the window with the expected version; the next window
//! is read and hashed meanwhile. Memory stays at about 2 × chunk size ×
//! parallelism whatever the file size.
//!
//! A chunk the write covers only in part is a read-modify-write: the
//! commit is [`Command::Guarded`] by what each patched slot held when it
//! was read, so a concurrent writer's change to the same chunk is never
//! silently reverted. When the cluster answers `ChunkChanged`, the window
//! reads those chunks again, patches them anew and commits again, within
//! the client's retry budget.
//!
//! Every commit carries the index its chunks were placed at
//! ([`Command::Placed`]). When the cluster answers `ChunkCollected` (a
//! chunk no file referenced was condemned as garbage after the
//! placement), the window places and uploads its chunks again and commits
//! again, within the same budget.
//!
//! A file that keeps its content inline (`inline.rs`) has it moved to a
//! chunk before any of this; should another writer make it inline while
//! a window is on its way, the commit is refused with `InlineContent` and
//! the window moves it and patches anew.

use std::collections::BTreeMap;

use toastyfs_proto::namespace::{
    Command, EntryKind, FsError, Outcome, Query, QueryReply, SlotCheck, WriteCommit,
    MAX_INLINE_BYTES,
};
use toastyfs_proto::{ChunkHash, FsPath, Version};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::chunks;
use crate::error::{ClientError, Result};
use crate::layout::patch_chunk;
use crate::{Client, Progress};

/// How a write behaves.
#[derive(Clone, Default)]
pub struct WriteOptions {
    /// Refuse unless the file's version is this (0: the file must not exist).
    /// Later windows of the same write then expect the version the previous
    /// window produced, so no other writer can interleave.
    pub expect: Option<Version>,
    /// Create the file with this chunk size if it does not exist.
    pub create_with_chunk_size: Option<u32>,
    /// Called with the bytes written so far.
    pub progress: Option<Progress>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    pub version: Version,
    pub bytes_written: u64,
    /// Bytes sent to chunk servers (0 for content the cluster already held).
    pub bytes_uploaded: u64,
    pub file_length: u64,
}

/// One window of a write, read and hashed, waiting to be stored.
struct Window {
    at: u64,
    length: u64,
    /// The source ended inside this window.
    last: bool,
    chunks: Vec<(ChunkHash, bytes::Bytes)>,
    /// The chunks this window covers only in part, to patch again if
    /// another writer changes them first.
    edges: Vec<Edge>,
}

/// A chunk a window covers only in part: its new bytes and what its slot
/// held when the old chunk was read.
struct Edge {
    /// Position in the window's chunks.
    position: usize,
    index: u64,
    /// File offset of the new bytes.
    at: u64,
    piece: Vec<u8>,
    holds: Option<ChunkHash>,
}

impl Window {
    /// What the commit must find in each patched slot.
    fn checks(&self) -> Vec<SlotCheck> {
        self.edges
            .iter()
            .map(|e| SlotCheck {
                index: e.index,
                holds: e.holds,
            })
            .collect()
    }
}

/// The old chunk of one slot: its hash (`None`: a hole, past the end, or
/// no file) and its bytes.
type OldChunk = (Option<ChunkHash>, Vec<u8>);

/// Fills `buf` from `reader` as far as it goes; returns the bytes read.
pub(crate) async fn read_full<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

impl Client {
    /// The file's chunk size, or the one it will be created with. A small
    /// file that keeps its content inline has it moved to a chunk first
    /// (a write of part of it could not apply); with `options.expect`,
    /// later windows then expect the version that move made.
    async fn chunk_size_for(&self, path: &FsPath, options: &mut WriteOptions) -> Result<u32> {
        match self.stat(path).await {
            Ok(info) if info.kind == EntryKind::Dir => {
                Err(toastyfs_proto::namespace::FsError::IsADirectory {
                    path: path.to_string(),
                }
                .into())
            }
            Ok(info) => {
                if info.length > 0 && info.length <= u64::from(MAX_INLINE_BYTES) {
                    let moved = self.move_inline_to_chunk(path, options.expect).await?;
                    options.expect = options.expect.and(moved);
                }
                Ok(info.chunk_size)
            }
            Err(ClientError::Refused(toastyfs_proto::namespace::FsError::NotFound { .. })) => {
                Ok(options
                    .create_with_chunk_size
                    .unwrap_or(self.config.chunk_size))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes everything `reader` yields at byte `offset` of `path`.
    ///
    /// Two stages overlap: while one window's chunks are uploaded and
    /// committed, the next window is read and hashed (so at most two
    /// windows are in memory).
    pub async fn write_at<R: AsyncRead + Unpin>(
        &self,
        path: &FsPath,
        offset: u64,
        mut reader: R,
        mut options: WriteOptions,
    ) -> Result<WriteOutcome> {
        let cs = self.chunk_size_for(path, &mut options).await?;
        // Refused before anything is read or divided by it.
        toastyfs_proto::namespace::check_chunk_size(cs)?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Window>(1);
        let produce = async move {
            let mut at = offset;
            let mut first = true;
            loop {
                let window = self.build_window(path, at, &mut reader, cs).await?;
                if window.length == 0 && !first {
                    return Ok(());
                }
                let last = window.last;
                at += window.length;
                first = false;
                if tx.send(window).await.is_err() || last {
                    return Ok(());
                }
            }
        };
        let consume = async {
            let mut outcome = WriteOutcome {
                version: Version(0),
                bytes_written: 0,
                bytes_uploaded: 0,
                file_length: 0,
            };
            let mut expect = options.expect;
            while let Some(window) = rx.recv().await {
                let length = window.length;
                let (committed, uploaded) = self
                    .commit_window(path, window, cs, expect, &options)
                    .await?;
                if let Outcome::Written {
                    version,
                    file_length,
                    ..
                } = committed
                {
                    outcome.version = version;
                    outcome.file_length = file_length;
                    if options.expect.is_some() {
                        expect = Some(version);
                    }
                }
                outcome.bytes_written += length;
                outcome.bytes_uploaded += uploaded;
                if let Some(progress) = &options.progress {
                    progress(outcome.bytes_written);
                }
            }
            Ok::<WriteOutcome, ClientError>(outcome)
        };
        let ((), outcome) = futures::try_join!(produce, consume)?;
        Ok(outcome)
    }

    /// Reads the next window (from `at` to the end of the window's last
    /// chunk) and builds its chunks: the edge chunks it covers only in part
    /// are the old chunks patched.
    async fn build_window<R: AsyncRead + Unpin>(
        &self,
        path: &FsPath,
        at: u64,
        reader: &mut R,
        cs: u32,
    ) -> Result<Window> {
        let csu = u64::from(cs);
        let window_chunks = self.config.parallelism.max(1) as u64;
        let window_end = (at / csu + window_chunks) * csu;
        let mut data = vec![0u8; (window_end - at) as usize];
        let n = read_full(reader, &mut data).await?;
        data.truncate(n);
        let mut contents: Vec<Vec<u8>> = Vec::new();
        let mut edges = Vec::new();
        if !data.is_empty() {
            let mut old = self.old_edges(path, at, data.len() as u64, cs).await?;
            let mut pos = at;
            let end = at + data.len() as u64;
            while pos < end {
                let index = pos / csu;
                let chunk_start = index * csu;
                let piece_end = end.min(chunk_start + csu);
                let piece = &data[(pos - at) as usize..(piece_end - at) as usize];
                match old.remove(&index) {
                    Some((holds, base)) => {
                        contents.push(patch_chunk(&base, chunk_start, pos, piece));
                        edges.push(Edge {
                            position: contents.len() - 1,
                            index,
                            at: pos,
                            piece: piece.to_vec(),
                            holds,
                        });
                    }
                    None => contents.push(patch_chunk(&[], chunk_start, pos, piece)),
                }
                pos = piece_end;
            }
        }
        Ok(Window {
            at,
            length: n as u64,
            last: (n as u64) < window_end - at,
            chunks: chunks::hash_all(contents).await?,
            edges,
        })
    }

    /// Reads the window's partly covered chunks again and patches them
    /// anew (another writer changed one since they were read).
    async fn repatch(&self, path: &FsPath, window: &mut Window, cs: u32) -> Result<()> {
        let csu = u64::from(cs);
        for edge in &mut window.edges {
            let (holds, base) = self.old_chunk(path, edge.index, cs).await?;
            let content = patch_chunk(&base, edge.index * csu, edge.at, &edge.piece);
            let mut hashed = chunks::hash_all(vec![content]).await?;
            if let Some(chunk) = hashed.pop() {
                window.chunks[edge.position] = chunk;
            }
            edge.holds = holds;
        }
        Ok(())
    }

    /// Stores the window's chunks the cluster lacks and commits the window.
    async fn commit_window(
        &self,
        path: &FsPath,
        window: Window,
        cs: u32,
        expect: Option<Version>,
        options: &WriteOptions,
    ) -> Result<(Outcome, u64)> {
        let mut window = window;
        let mut uploaded = 0;
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let stored = chunks::store(
                &self.meta,
                &self.transport,
                &window.chunks,
                self.config.parallelism,
            )
            .await?;
            uploaded += stored.uploaded;
            let commit = WriteCommit {
                path: path.clone(),
                offset: window.at,
                length: window.length,
                chunks: window.chunks.iter().map(|(h, _)| *h).collect(),
                expect,
                create_with_chunk_size: Some(options.create_with_chunk_size.unwrap_or(cs)),
            };
            let command = guard(window.checks(), Command::WriteCommit(commit));
            let outcome = self
                .meta
                .write(chunks::placed(stored.placed_at, command))
                .await;
            match self.redo(&outcome, started, attempt).await {
                Redo::Done => return Ok((outcome?, uploaded)),
                Redo::Repatch => self.repatch(path, &mut window, cs).await?,
                Redo::Reupload => {}
                Redo::MoveInline => {
                    self.move_inline_to_chunk(path, None).await?;
                    self.repatch(path, &mut window, cs).await?;
                }
            }
        }
    }

    /// The old contents of the first and last chunk of a write that covers
    /// them only in part (the rest of such a chunk must be kept).
    async fn old_edges(
        &self,
        path: &FsPath,
        at: u64,
        len: u64,
        cs: u32,
    ) -> Result<BTreeMap<u64, OldChunk>> {
        let csu = u64::from(cs);
        let first = at / csu;
        let last = (at + len - 1) / csu;
        let mut wanted = Vec::new();
        if !at.is_multiple_of(csu) {
            wanted.push(first);
        }
        if !(at + len).is_multiple_of(csu) && !wanted.contains(&last) {
            wanted.push(last);
        }
        let mut out = BTreeMap::new();
        for index in wanted {
            out.insert(index, self.old_chunk(path, index, cs).await?);
        }
        Ok(out)
    }

    /// What slot `index` of the file holds now, and its bytes.
    pub(crate) async fn old_chunk(&self, path: &FsPath, index: u64, cs: u32) -> Result<OldChunk> {
        let csu = u64::from(cs);
        let query = Query::ReadPlan {
            path: path.clone(),
            offset: index * csu,
            length: csu,
        };
        let plan = match self.meta.read(query, false).await {
            Ok(QueryReply::ReadPlan(plan)) => plan,
            // Made inline since the write began: the commit will say so
            // (`InlineContent`) and the write moves it to a chunk.
            Ok(QueryReply::Inline(_)) => return Ok((None, Vec::new())),
            Err(ClientError::Refused(FsError::NotFound { .. })) => return Ok((None, Vec::new())),
            Ok(_) => return Err(ClientError::Protocol("expected a read plan".into())),
            Err(e) => return Err(e),
        };
        let Some(Some(hash)) = plan.chunks.first().copied() else {
            return Ok((None, Vec::new()));
        };
        let holders = chunks::locate(&self.meta, vec![hash]).await?;
        let bytes = chunks::fetch(
            &self.transport,
            hash,
            holders.get(&hash).map(Vec::as_slice).unwrap_or(&[]),
        )
        .await?;
        Ok((Some(hash), bytes))
    }
}

/// What to do after a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redo {
    /// Nothing: it applied, or failed for good.
    Done,
    /// Another writer changed a patched chunk first: read it again,
    /// patch anew, store and commit.
    Repatch,
    /// A chunk was collected after its placement: store and commit again.
    Reupload,
    /// Another writer made the file inline meanwhile: move its content to
    /// a chunk, patch anew, store and commit.
    MoveInline,
}

impl Client {
    /// Whether a commit that ended with `outcome` should be redone, and
    /// how, while the retry budget (counted from `started`) is not spent.
    /// Waits before saying to redo.
    pub(crate) async fn redo(
        &self,
        outcome: &Result<Outcome>,
        started: std::time::Instant,
        attempt: u32,
    ) -> Redo {
        let redo = match outcome {
            Err(ClientError::Refused(FsError::ChunkChanged { .. })) => Redo::Repatch,
            Err(ClientError::Refused(FsError::InlineContent { .. })) => Redo::MoveInline,
            Err(ClientError::Refused(FsError::ChunkCollected { hash })) => {
                tracing::debug!(%hash, "a chunk was collected after its placement; uploading it again");
                Redo::Reupload
            }
            _ => return Redo::Done,
        };
        if started.elapsed() >= self.config.retry_for {
            return Redo::Done;
        }
        tokio::time::sleep(crate::limits::REPATCH_BACKOFF.delay(attempt)).await;
        redo
    }
}

/// `command` guarded by `checks`, or as it is when there is nothing to
/// check.
pub(crate) fn guard(checks: Vec<SlotCheck>, command: Command) -> Command {
    if checks.is_empty() {
        command
    } else {
        Command::Guarded {
            checks,
            command: Box::new(command),
        }
    }
}
