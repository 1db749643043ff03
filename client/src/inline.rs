//! Small files kept inline in the namespace (`Command::WriteInline`): a
//! put of at most [`MAX_INLINE_BYTES`] is one commit, no placement and no
//! upload; a read of one is the read plan's answer itself.
//!
//! A write of part of an inline file, or a truncation that grows it past
//! the cluster's limit, is refused by the state machine with
//! `InlineContent`; the client first moves the content to the file's
//! first chunk ([`Client::move_inline_to_chunk`]: an upload and a write
//! commit of the whole content, conditional on the version it read), then
//! does what it meant to.

use toastyfs_proto::namespace::{
    Command, FsError, InlineContent, Outcome, Query, QueryReply, WriteCommit, WriteInline,
    MAX_INLINE_BYTES,
};
use toastyfs_proto::{FsPath, Version};

use crate::chunks;
use crate::error::{ClientError, Result};
use crate::{version_of, Client, Progress, WriteOutcome};

impl Client {
    /// The inline content of the file at `path`, if it keeps one (`None`
    /// also for a missing file or a directory).
    pub(crate) async fn inline_content(&self, path: &FsPath) -> Result<Option<InlineContent>> {
        let query = Query::ReadPlan {
            path: path.clone(),
            offset: 0,
            length: 0,
        };
        match self.meta.read(query, false).await {
            Ok(QueryReply::Inline(inline)) => Ok(Some(inline)),
            Ok(_) => Ok(None),
            Err(ClientError::Refused(FsError::NotFound { .. } | FsError::IsADirectory { .. })) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Moves an inline file's content to its first chunk, so a write of
    /// part of it or a growth past the inline limit can follow. With
    /// `expect`, only from that version. Returns the file's version after
    /// (unchanged if it was not inline). Another writer changing the file
    /// meanwhile makes it read the file again (without `expect`).
    pub(crate) async fn move_inline_to_chunk(
        &self,
        path: &FsPath,
        expect: Option<Version>,
    ) -> Result<Option<Version>> {
        let started = std::time::Instant::now();
        loop {
            let Some(inline) = self.inline_content(path).await? else {
                return Ok(expect);
            };
            if let Some(expected) = expect.filter(|e| *e != inline.version) {
                return Err(FsError::VersionMismatch {
                    path: path.to_string(),
                    expected,
                    actual: inline.version,
                }
                .into());
            }
            let length = inline.content.len() as u64;
            let hashed = chunks::hash_all(vec![inline.content]).await?;
            let stored = chunks::store(&self.meta, &self.transport, &hashed, 1).await?;
            let commit = WriteCommit {
                path: path.clone(),
                offset: 0,
                length,
                chunks: hashed.iter().map(|(hash, _)| *hash).collect(),
                expect: Some(inline.version),
                create_with_chunk_size: None,
            };
            let command = chunks::placed(stored.placed_at, Command::WriteCommit(commit));
            let retry = started.elapsed() < self.config.retry_for;
            match self.meta.write(command).await {
                Ok(outcome) => return Ok(Some(version_of(&outcome))),
                // Collected after its placement: place and upload again.
                Err(ClientError::Refused(FsError::ChunkCollected { .. })) if retry => {}
                // Changed meanwhile: read it again, unless held to `expect`.
                Err(ClientError::Refused(FsError::VersionMismatch { .. }))
                    if expect.is_none() && retry => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Puts `content` (at most [`MAX_INLINE_BYTES`]) as the whole of
    /// `path` in one commit. `None` if the cluster keeps no file this
    /// large inline, or the file it replaces has too many chunks to
    /// release in one command: the caller then writes chunks.
    pub(crate) async fn put_inline(
        &self,
        path: &FsPath,
        content: Vec<u8>,
        no_clobber: bool,
        chunk_size: u32,
        progress: Option<&Progress>,
    ) -> Result<Option<WriteOutcome>> {
        if content.len() > MAX_INLINE_BYTES as usize {
            return Ok(None);
        }
        let write = WriteInline {
            path: path.clone(),
            content,
            expect: no_clobber.then_some(Version(0)),
            create_with_chunk_size: Some(chunk_size),
        };
        match self.meta.write(Command::WriteInline(write)).await {
            Ok(Outcome::Written {
                version,
                file_length,
                bytes_written,
                ..
            }) => {
                if let Some(progress) = progress {
                    progress(bytes_written);
                }
                Ok(Some(WriteOutcome {
                    version,
                    bytes_written,
                    bytes_uploaded: 0,
                    file_length,
                }))
            }
            Ok(_) => Err(ClientError::Protocol("expected Written".into())),
            Err(ClientError::Refused(
                FsError::InlineTooLarge { .. } | FsError::TooManyChunks { .. },
            )) => Ok(None),
            // Refused as malformed (400), as by a node of a version without
            // inline files: it never took effect; write chunks instead.
            Err(ClientError::Protocol(message)) => {
                tracing::debug!(%message, "an inline write was refused; writing chunks");
                Ok(None)
            }
            Err(ClientError::Refused(FsError::VersionMismatch { .. })) if no_clobber => {
                Err(FsError::AlreadyExists {
                    path: path.to_string(),
                }
                .into())
            }
            Err(e) => Err(e),
        }
    }
}
