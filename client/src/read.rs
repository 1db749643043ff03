//! The read path: read plan → locate holders → fetch up to `parallelism`
//! chunks at once (in order, each verified, falling back to other replicas)
//! → write the wanted bytes to the destination stream; holes and short
//! chunks read as zeros, and a read past the end returns what exists. A
//! small file kept inline is read in the plan's answer itself.

use futures::stream::{self, StreamExt};
use toastyfs_proto::namespace::{InlineContent, Query, QueryReply, ReadPlan};
use toastyfs_proto::{FsPath, Version};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::chunks;
use crate::error::{ClientError, Result};
use crate::layout::slice_chunk;
use crate::{Client, Progress};

/// What a read did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOutcome {
    /// The file's version when the read began.
    pub version: Version,
    pub bytes_read: u64,
    pub file_length: u64,
}

/// What a read plan query answered: the chunks of the range, or (for a
/// file the namespace keeps inline) the range's bytes themselves.
struct Planned {
    plan: ReadPlan,
    inline: Option<Vec<u8>>,
}

impl Planned {
    /// An inline file's content seen as a plan of `[offset, offset +
    /// length)` clipped at its end, with the bytes of that range.
    fn inline(inline: InlineContent, offset: u64, length: u64) -> Planned {
        let file_length = inline.content.len() as u64;
        let from = offset.min(file_length);
        let to = offset.saturating_add(length).min(file_length).max(from);
        Planned {
            plan: ReadPlan {
                version: inline.version,
                chunk_size: inline.chunk_size,
                file_length,
                offset,
                length: to - from,
                first_chunk: 0,
                chunks: Vec::new(),
            },
            inline: Some(inline.content[from as usize..to as usize].to_vec()),
        }
    }
}

impl Client {
    async fn plan(&self, path: &FsPath, offset: u64, length: u64) -> Result<Planned> {
        match self
            .meta
            .read(
                Query::ReadPlan {
                    path: path.clone(),
                    offset,
                    length,
                },
                false,
            )
            .await?
        {
            QueryReply::ReadPlan(plan) => Ok(Planned { plan, inline: None }),
            QueryReply::Inline(inline) => Ok(Planned::inline(inline, offset, length)),
            _ => Err(ClientError::Protocol("expected a read plan".into())),
        }
    }

    /// Copies `length` bytes (or to the end of the file) from `offset` of
    /// `path` into `out`, all of one version of the file: the first read
    /// plan fixes the version and, without `length`, the end (the file's
    /// length then); a later plan of another version (the file changed
    /// meanwhile) ends the read with [`ClientError::ChangedDuringRead`]
    /// rather than deliver bytes of two versions.
    pub async fn read_to<W: AsyncWrite + Unpin>(
        &self,
        path: &FsPath,
        offset: u64,
        length: Option<u64>,
        out: W,
        progress: Option<Progress>,
    ) -> Result<ReadOutcome> {
        self.read_version_to(path, None, offset, length, out, progress)
            .await
    }

    /// [`Client::read_to`] of one given version: if the file is no longer
    /// at `version` when the read begins, nothing is written and the read
    /// ends with [`ClientError::ChangedDuringRead`] (the gateway promised
    /// that version's entity tag before the first byte).
    pub async fn read_version_to<W: AsyncWrite + Unpin>(
        &self,
        path: &FsPath,
        version: Option<Version>,
        offset: u64,
        length: Option<u64>,
        mut out: W,
        progress: Option<Progress>,
    ) -> Result<ReadOutcome> {
        let mut done = 0u64;
        let mut outcome = ReadOutcome {
            version: Version(0),
            bytes_read: 0,
            file_length: 0,
        };
        let mut first = true;
        let mut length = length;
        loop {
            let want = length.map_or(u64::MAX, |l| l - done);
            if want == 0 {
                break;
            }
            let Planned { plan, inline } = self.plan(path, offset + done, want).await?;
            if first {
                if let Some(wanted) = version.filter(|v| *v != plan.version) {
                    return Err(ClientError::ChangedDuringRead {
                        path: path.to_string(),
                        from: wanted,
                        to: plan.version,
                    });
                }
                outcome.version = plan.version;
                outcome.file_length = plan.file_length;
                // To the end as it is now, not as it may become.
                length.get_or_insert(plan.file_length.saturating_sub(offset));
                first = false;
            } else if plan.version != outcome.version {
                return Err(ClientError::ChangedDuringRead {
                    path: path.to_string(),
                    from: outcome.version,
                    to: plan.version,
                });
            }
            if plan.length == 0 {
                break;
            }
            match inline {
                Some(bytes) => out.write_all(&bytes).await?,
                None => self.copy_plan(&plan, &mut out).await?,
            }
            done += plan.length;
            outcome.bytes_read = done;
            if let Some(progress) = &progress {
                progress(done);
            }
        }
        out.flush().await?;
        Ok(outcome)
    }

    /// Fetches the plan's chunks (in order, `parallelism` at a time) and
    /// writes the planned range.
    async fn copy_plan<W: AsyncWrite + Unpin>(&self, plan: &ReadPlan, out: &mut W) -> Result<()> {
        let hashes: Vec<_> = plan.chunks.iter().flatten().copied().collect();
        let holders = chunks::locate(&self.meta, hashes).await?;
        let cs = u64::from(plan.chunk_size);
        let end = plan.offset + plan.length;
        // Futures of an async fn, not closures returning async blocks: a
        // read stays `Send` for callers that spawn it (the gateway).
        let pieces: Vec<_> = plan
            .chunks
            .iter()
            .enumerate()
            .map(|(i, hash)| {
                let index = plan.first_chunk + i as u64;
                let chunk_start = index * cs;
                let from = plan.offset.max(chunk_start);
                let to = end.min(chunk_start + cs);
                let holders = hash
                    .and_then(|h| holders.get(&h).cloned())
                    .unwrap_or_default();
                self.fetch_piece(*hash, holders, chunk_start, from, (to - from) as usize)
            })
            .collect();
        let mut fetched = stream::iter(pieces).buffered(self.config.parallelism.max(1));
        while let Some(piece) = fetched.next().await {
            out.write_all(&piece?).await?;
        }
        Ok(())
    }

    /// The wanted bytes `[from, from + len)` of one planned chunk (a hole
    /// reads as zeros).
    async fn fetch_piece(
        &self,
        hash: Option<toastyfs_proto::ChunkHash>,
        holders: Vec<String>,
        chunk_start: u64,
        from: u64,
        len: usize,
    ) -> Result<Vec<u8>> {
        let content = match hash {
            Some(hash) => Some(chunks::fetch(&self.transport, hash, &holders).await?),
            None => None,
        };
        // The whole chunk wanted, as stored: pass it on uncopied.
        Ok(match content {
            Some(content) if from == chunk_start && content.len() == len => content,
            content => slice_chunk(content.as_deref(), chunk_start, from, len),
        })
    }
}
