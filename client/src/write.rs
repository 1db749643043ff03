//! The write path: the source stream is cut into windows of at most
//! `parallelism` chunks; for each window the client reads the old chunks it
//! only partly overwrites, builds the new chunks, stores those the cluster
//! lacks, and commits the window with the expected version. Memory stays at
//! about chunk size × parallelism whatever the file size.

use std::collections::BTreeMap;

use toastyfs_proto::namespace::{Command, EntryKind, Outcome, Query, QueryReply, WriteCommit};
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

/// Fills `buf` from `reader` as far as it goes; returns the bytes read.
async fn read_full<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
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
    /// The file's chunk size, or the one it will be created with.
    async fn chunk_size_for(&self, path: &FsPath, options: &WriteOptions) -> Result<u32> {
        match self.stat(path).await {
            Ok(info) if info.kind == EntryKind::Dir => {
                Err(toastyfs_proto::namespace::FsError::IsADirectory {
                    path: path.to_string(),
                }
                .into())
            }
            Ok(info) => Ok(info.chunk_size),
            Err(ClientError::Refused(toastyfs_proto::namespace::FsError::NotFound { .. })) => {
                Ok(options
                    .create_with_chunk_size
                    .unwrap_or(self.config.chunk_size))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes everything `reader` yields at byte `offset` of `path`.
    pub async fn write_at<R: AsyncRead + Unpin>(
        &self,
        path: &FsPath,
        offset: u64,
        mut reader: R,
        options: WriteOptions,
    ) -> Result<WriteOutcome> {
        let cs = self.chunk_size_for(path, &options).await?;
        let csu = u64::from(cs);
        let window_chunks = self.config.parallelism.max(1) as u64;
        let mut outcome = WriteOutcome {
            version: Version(0),
            bytes_written: 0,
            bytes_uploaded: 0,
            file_length: 0,
        };
        let mut expect = options.expect;
        let mut at = offset;
        let mut first = true;
        loop {
            // The window: from `at` to the end of the window's last chunk.
            let window_end = (at / csu + window_chunks) * csu;
            let mut data = vec![0u8; (window_end - at) as usize];
            let n = read_full(&mut reader, &mut data).await?;
            data.truncate(n);
            if n == 0 && !first {
                break;
            }
            let committed = self
                .write_window(path, at, &data, cs, expect, &options)
                .await?;
            if let Outcome::Written {
                version,
                file_length,
                ..
            } = committed.0
            {
                outcome.version = version;
                outcome.file_length = file_length;
                if options.expect.is_some() {
                    expect = Some(version);
                }
            }
            outcome.bytes_written += n as u64;
            outcome.bytes_uploaded += committed.1;
            if let Some(progress) = &options.progress {
                progress(outcome.bytes_written);
            }
            first = false;
            at += n as u64;
            if (n as u64) < window_end - (at - n as u64) {
                break;
            }
        }
        Ok(outcome)
    }

    /// Builds, stores and commits the chunks of `data` written at `at`.
    async fn write_window(
        &self,
        path: &FsPath,
        at: u64,
        data: &[u8],
        cs: u32,
        expect: Option<Version>,
        options: &WriteOptions,
    ) -> Result<(Outcome, u64)> {
        let csu = u64::from(cs);
        let mut new_chunks: Vec<(ChunkHash, bytes::Bytes)> = Vec::new();
        if !data.is_empty() {
            let old = self.old_edges(path, at, data.len() as u64, cs).await?;
            let mut pos = at;
            let end = at + data.len() as u64;
            while pos < end {
                let index = pos / csu;
                let chunk_start = index * csu;
                let piece_end = end.min(chunk_start + csu);
                let piece = &data[(pos - at) as usize..(piece_end - at) as usize];
                let base = old.get(&index).map(Vec::as_slice).unwrap_or(&[]);
                let content = patch_chunk(base, chunk_start, pos, piece);
                new_chunks.push((ChunkHash::of(&content), bytes::Bytes::from(content)));
                pos = piece_end;
            }
        }
        let uploaded = chunks::store(
            &self.meta,
            &self.transport,
            &new_chunks,
            self.config.parallelism,
        )
        .await?;
        let commit = WriteCommit {
            path: path.clone(),
            offset: at,
            length: data.len() as u64,
            chunks: new_chunks.iter().map(|(h, _)| *h).collect(),
            expect,
            create_with_chunk_size: Some(options.create_with_chunk_size.unwrap_or(cs)),
        };
        let outcome = self.meta.write(Command::WriteCommit(commit)).await?;
        Ok((outcome, uploaded))
    }

    /// The old contents of the first and last chunk of a write that covers
    /// them only in part (the rest of such a chunk must be kept).
    async fn old_edges(
        &self,
        path: &FsPath,
        at: u64,
        len: u64,
        cs: u32,
    ) -> Result<BTreeMap<u64, Vec<u8>>> {
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
            let query = Query::ReadPlan {
                path: path.clone(),
                offset: index * csu,
                length: csu,
            };
            let plan = match self.meta.read(query, false).await {
                Ok(QueryReply::ReadPlan(plan)) => plan,
                Err(ClientError::Refused(toastyfs_proto::namespace::FsError::NotFound {
                    ..
                })) => continue,
                Ok(_) => return Err(ClientError::Protocol("expected a read plan".into())),
                Err(e) => return Err(e),
            };
            if let Some(Some(hash)) = plan.chunks.first() {
                let holders = chunks::locate(&self.meta, vec![*hash]).await?;
                let bytes = chunks::fetch(
                    &self.transport,
                    *hash,
                    holders.get(hash).map(Vec::as_slice).unwrap_or(&[]),
                )
                .await?;
                out.insert(index, bytes);
            }
        }
        Ok(out)
    }
}
