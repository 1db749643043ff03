//! The ToastyFS client library: every namespace operation, the write path
//! (build chunks → skip those the cluster holds → upload the rest in
//! parallel → commit with the expected version) and the read path (plan →
//! locate → fetch in parallel, verified, with replica fallback), streaming
//! from `AsyncRead` and to `AsyncWrite` in bounded memory. [`blocking`]
//! wraps it for synchronous callers.
//!
//! It finds the leader by itself from any list of metadata addresses and
//! retries across leader changes with the same session sequence number, so
//! a retried write is applied once; an operation whose outcome stays
//! unknown is reported as [`ClientError::Unknown`], not as a failure.
//!
//! [`admin`] operates the cluster (init, status, membership, settings);
//! [`transport`] is the one HTTP transport every ToastyFS process sends
//! with, and [`retry`] the one retry policy.

pub mod admin;
pub mod blocking;
mod chunks;
pub mod error;
mod inline;
mod layout;
pub mod limits;
mod meta;
mod read;
pub mod retry;
pub mod secret;
#[cfg(feature = "serve")]
pub mod serve;
pub mod tls;
pub mod transport;
mod write;

use std::sync::Arc;
use std::time::Duration;

use toastyfs_proto::chunks::{ChunkHealth, ChunkHealthRequest, MAX_HASHES_PER_MESSAGE};
use toastyfs_proto::namespace::{
    Command, EntryInfo, FsError, Listing, Outcome, Query, QueryReply, SlotCheck,
    DEFAULT_CHUNK_SIZE, MAX_INLINE_BYTES,
};
use toastyfs_proto::{ChunkHash, FsPath, Version};

pub use admin::Admin;
pub use error::{ClientError, Result};
pub use read::ReadOutcome;
pub use write::{WriteOptions, WriteOutcome};

/// A progress callback: bytes done so far.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// How a client connects and transfers.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Metadata node addresses (any subset of the cluster).
    pub meta: Vec<String>,
    /// Chunks transferred at once (also the write window, in chunks).
    pub parallelism: usize,
    /// Chunk size of files this client creates.
    pub chunk_size: u32,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// How long an operation retries across leader changes.
    pub retry_for: Duration,
    /// Give up this early when no metadata node accepts a connection.
    pub unreachable_after: Duration,
    /// Longest a connection may take to be made.
    pub connect_timeout: Duration,
    /// The cluster secret, for an operator's client: every request is
    /// signed with it (cluster management needs it when the cluster has
    /// one).
    pub secret: Option<toastyfs_proto::auth::Secret>,
    /// A client key (`cluster key create`), presented with every request:
    /// what a person or program that is not an operator connects with.
    pub key: Option<toastyfs_proto::client_key::ClientKey>,
    /// The CA the cluster's certificates chain to: the client speaks only
    /// https (none: plain HTTP).
    pub tls: Option<tls::ClientTls>,
    /// Deliberately unsafe, for the Jepsen harness to catch (test-only
    /// `unsafe-modes` feature): every retry of a write goes under a fresh
    /// session tag, so the cluster's session check cannot recognise it and
    /// a write whose answer was lost is applied again.
    #[cfg(feature = "unsafe-modes")]
    pub unsafe_fresh_tag_per_attempt: bool,
}

impl ClientConfig {
    pub fn new(meta: Vec<String>) -> ClientConfig {
        ClientConfig {
            meta,
            parallelism: limits::DEFAULT_PARALLELISM,
            chunk_size: DEFAULT_CHUNK_SIZE,
            request_timeout: limits::REQUEST_TIMEOUT,
            retry_for: limits::RETRY_BUDGET,
            unreachable_after: limits::UNREACHABLE_AFTER,
            connect_timeout: limits::CONNECT_TIMEOUT,
            secret: None,
            key: None,
            tls: None,
            #[cfg(feature = "unsafe-modes")]
            unsafe_fresh_tag_per_attempt: false,
        }
    }
}

/// A connection to a ToastyFS cluster.
pub struct Client {
    config: ClientConfig,
    meta: Arc<meta::Meta>,
    transport: transport::Transport,
}

pub(crate) fn version_of(outcome: &Outcome) -> Version {
    match outcome {
        Outcome::Created { version }
        | Outcome::Deleted { version, .. }
        | Outcome::Written { version, .. }
        | Outcome::Renamed { version, .. }
        | Outcome::Truncated { version, .. }
        | Outcome::SettingsChanged { version } => *version,
        Outcome::Reclaimed { .. }
        | Outcome::GarbageForgotten { .. }
        | Outcome::Condemned { .. }
        | Outcome::Pardoned { .. }
        | Outcome::Registered { .. }
        | Outcome::KeyCreated { .. }
        | Outcome::KeyRevoked { .. } => Version(0),
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Client {
        let transport = transport::Transport::with_connect_timeout(
            config.request_timeout,
            config.connect_timeout,
        )
        .signed_with(config.secret.clone())
        .with_key(config.key.clone())
        .with_tls(config.tls.clone());
        let policy = retry::RetryPolicy {
            unreachable_after: config.unreachable_after,
            ..retry::DEFAULT_POLICY
        }
        .with_budget(config.retry_for);
        #[allow(unused_mut)]
        let mut meta = meta::Meta::new(config.meta.clone(), transport.clone(), policy);
        #[cfg(feature = "unsafe-modes")]
        {
            meta.unsafe_fresh_tag_per_attempt = config.unsafe_fresh_tag_per_attempt;
        }
        let meta = Arc::new(meta);
        Client {
            config,
            meta,
            transport,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Cluster operations through this client's connection.
    pub fn admin(&self) -> Admin {
        Admin::from_meta(Arc::clone(&self.meta))
    }

    /// `mkdir` (`parents`: like `mkdir -p`). Returns the new version.
    pub async fn mkdir(&self, path: &FsPath, parents: bool) -> Result<Version> {
        let command = Command::CreateDir {
            path: path.clone(),
            parents,
            expect: None,
        };
        self.meta.write(command).await.map(|o| version_of(&o))
    }

    /// Creates an empty file with `chunk_size` (default: the client's).
    pub async fn create(
        &self,
        path: &FsPath,
        chunk_size: Option<u32>,
        expect: Option<Version>,
    ) -> Result<Version> {
        let chunk_size = chunk_size.unwrap_or(self.config.chunk_size);
        let command = Command::CreateFile {
            path: path.clone(),
            chunk_size,
            expect,
        };
        self.meta.write(command).await.map(|o| version_of(&o))
    }

    pub async fn delete(
        &self,
        path: &FsPath,
        recursive: bool,
        expect: Option<Version>,
    ) -> Result<Version> {
        let command = Command::Delete {
            path: path.clone(),
            recursive,
            expect,
        };
        self.meta.write(command).await.map(|o| version_of(&o))
    }

    pub async fn rename(
        &self,
        from: &FsPath,
        to: &FsPath,
        replace: bool,
        expect: Option<Version>,
    ) -> Result<Version> {
        let command = Command::Rename {
            from: from.clone(),
            to: to.clone(),
            replace,
            expect,
        };
        self.meta.write(command).await.map(|o| version_of(&o))
    }

    pub async fn stat(&self, path: &FsPath) -> Result<EntryInfo> {
        match self
            .meta
            .read(Query::Stat { path: path.clone() }, false)
            .await?
        {
            QueryReply::Stat(info) => Ok(info),
            _ => Err(ClientError::Protocol("expected a stat reply".into())),
        }
    }

    /// One page of a directory (`after`: the previous page's `next`).
    pub async fn list(&self, path: &FsPath, after: Option<String>, limit: u32) -> Result<Listing> {
        match self
            .meta
            .read(
                Query::List {
                    path: path.clone(),
                    after,
                    limit,
                },
                false,
            )
            .await?
        {
            QueryReply::List(listing) => Ok(listing),
            _ => Err(ClientError::Protocol("expected a listing".into())),
        }
    }

    /// Writes a whole file from `reader`, replacing any existing one
    /// atomically (it is written under a temporary name and renamed over
    /// the target; a source of at most `MAX_INLINE_BYTES` goes in one
    /// `WriteInline` commit instead, kept in the namespace if the cluster's
    /// limit allows). With `no_clobber` an existing target is refused.
    pub async fn put<R: tokio::io::AsyncRead + Unpin>(
        &self,
        path: &FsPath,
        reader: R,
        no_clobber: bool,
        chunk_size: Option<u32>,
        progress: Option<Progress>,
    ) -> Result<WriteOutcome> {
        let temp = upload_temp_path(path)?;
        self.put_via(path, &temp, reader, no_clobber, chunk_size, progress)
            .await
    }

    /// [`Client::put`] through the temporary `temp` (from
    /// [`upload_temp_path`]), so a caller that abandons the put (Ctrl-C)
    /// knows what to delete.
    pub async fn put_via<R: tokio::io::AsyncRead + Unpin>(
        &self,
        path: &FsPath,
        temp: &FsPath,
        reader: R,
        no_clobber: bool,
        chunk_size: Option<u32>,
        progress: Option<Progress>,
    ) -> Result<WriteOutcome> {
        if no_clobber && self.stat(path).await.is_ok() {
            return Err(FsError::AlreadyExists {
                path: path.to_string(),
            }
            .into());
        }
        let chunk_size = chunk_size.unwrap_or(self.config.chunk_size);
        // A source that ends within the inline limit is one commit.
        let mut reader = reader;
        let mut head = vec![0u8; MAX_INLINE_BYTES as usize + 1];
        let n = write::read_full(&mut reader, &mut head).await?;
        head.truncate(n);
        if n <= MAX_INLINE_BYTES as usize {
            let inline = self.put_inline(
                path,
                head.clone(),
                no_clobber,
                chunk_size,
                progress.as_ref(),
            );
            if let Some(written) = inline.await? {
                return Ok(written);
            }
        }
        let reader = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(head), reader);
        let temp = temp.clone();
        let options = WriteOptions {
            expect: Some(Version(0)),
            create_with_chunk_size: Some(chunk_size),
            progress,
        };
        let written = match self.write_at(&temp, 0, reader, options).await {
            Ok(written) => written,
            Err(e) => {
                let _ = self.delete(&temp, false, None).await;
                return Err(e);
            }
        };
        match self.rename(&temp, path, !no_clobber, None).await {
            Ok(version) => Ok(WriteOutcome { version, ..written }),
            Err(e) => {
                let _ = self.delete(&temp, false, None).await;
                Err(e)
            }
        }
    }

    /// Sets a file's length. Shrinking into a stored chunk uploads that
    /// chunk cut at the new length; very large shrinks go in steps.
    pub async fn truncate(
        &self,
        path: &FsPath,
        length: u64,
        expect: Option<Version>,
    ) -> Result<Version> {
        let info = self.stat(path).await?;
        let mut expect = expect;
        if info.length > 0 && info.length <= u64::from(MAX_INLINE_BYTES) {
            match self.truncate_inline(path, length, expect).await? {
                InlineTruncate::Done(version) => return Ok(version),
                InlineTruncate::Moved(version) => expect = expect.and(version),
                InlineTruncate::NotInline => {}
            }
        }
        let cs = u64::from(info.chunk_size.max(1));
        let step = cs * toastyfs_proto::namespace::MAX_CHUNKS_PER_OP as u64;
        let mut current = info.length;
        while current > length && current - length > step {
            current = (current - step).div_ceil(cs) * cs;
            let command = Command::Truncate {
                path: path.clone(),
                length: current,
                cut_chunk: None,
                expect,
            };
            let version = self.meta.write(command).await.map(|o| version_of(&o))?;
            expect = expect.map(|_| version);
        }
        // The cut chunk is a read-modify-write: guarded by what its slot
        // held, and redone if another writer changed it first.
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let (checks, cut) = if length < current && !length.is_multiple_of(cs) {
                let (check, cut) = self.cut_chunk(path, length, cs).await?;
                (vec![check], cut)
            } else {
                (Vec::new(), None)
            };
            let cut_chunk = cut.map(|(hash, _)| hash);
            let command = Command::Truncate {
                path: path.clone(),
                length,
                cut_chunk,
                expect,
            };
            let command = write::guard(checks, command);
            let command = match cut {
                Some((_, placed_at)) => chunks::placed(placed_at, command),
                None => command,
            };
            let outcome = self.meta.write(command).await;
            match self.redo(&outcome, started, attempt).await {
                write::Redo::Done => return outcome.map(|o| version_of(&o)),
                // Made inline meanwhile: truncated as a chunk once moved.
                write::Redo::MoveInline => {
                    self.move_inline_to_chunk(path, None).await?;
                }
                write::Redo::Repatch | write::Redo::Reupload => {}
            }
        }
    }

    /// A truncation of a file that may keep its content inline: done in
    /// place within the cluster's limit; past it, the content is moved to
    /// a chunk first (the caller then truncates as for any file).
    async fn truncate_inline(
        &self,
        path: &FsPath,
        length: u64,
        expect: Option<Version>,
    ) -> Result<InlineTruncate> {
        if self.inline_content(path).await?.is_none() {
            return Ok(InlineTruncate::NotInline);
        }
        let command = Command::Truncate {
            path: path.clone(),
            length,
            cut_chunk: None,
            expect,
        };
        match self.meta.write(command).await {
            Ok(outcome) => Ok(InlineTruncate::Done(version_of(&outcome))),
            Err(ClientError::Refused(FsError::InlineContent { .. })) => Ok(InlineTruncate::Moved(
                self.move_inline_to_chunk(path, expect).await?,
            )),
            Err(e) => Err(e),
        }
    }

    /// The chunk holding byte `length` cut at `length`, stored (with its
    /// placement index), and what its slot held; no cut chunk if that slot
    /// is a hole.
    async fn cut_chunk(
        &self,
        path: &FsPath,
        length: u64,
        cs: u64,
    ) -> Result<(SlotCheck, Option<(ChunkHash, u64)>)> {
        let index = length / cs;
        let chunk_size = u32::try_from(cs)
            .map_err(|_| ClientError::Protocol(format!("chunk size {cs} out of range")))?;
        let (holds, mut content) = self.old_chunk(path, index, chunk_size).await?;
        let check = SlotCheck { index, holds };
        if holds.is_none() {
            return Ok((check, None));
        }
        content.truncate((length - index * cs) as usize);
        let cut = ChunkHash::of(&content);
        let stored = chunks::store(
            &self.meta,
            &self.transport,
            &[(cut, bytes::Bytes::from(content))],
            1,
        )
        .await?;
        Ok((check, Some((cut, stored.placed_at))))
    }
}

/// What [`Client::truncate_inline`] did.
enum InlineTruncate {
    /// Truncated in place; the new version.
    Done(Version),
    /// Moved to a chunk, to be truncated as any file; its version then.
    Moved(Option<Version>),
    NotInline,
}

pub use toastyfs_proto::path::{is_upload_temp, UPLOAD_TEMP_MARK};

/// A fresh temporary beside `path` for a put to write before renaming it
/// over `path`: `.NAME.toastyfs-upload-<nonce>`.
pub fn upload_temp_path(path: &FsPath) -> Result<FsPath> {
    let (parent, name) = path
        .split_last()
        .ok_or_else(|| ClientError::Refused(FsError::IsADirectory { path: "/".into() }))?;
    let temp_name = format!(
        ".{name}{UPLOAD_TEMP_MARK}{:016x}",
        ChunkHash::of(name.as_bytes()).0[0] as u64 ^ nonce()
    );
    parent
        .join(&temp_name)
        .map_err(|e| ClientError::Protocol(e.to_string()))
}

fn nonce() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()).rotate_left(40)
}

impl Client {
    /// For `fsck`: a file's chunks counted by health, by the definition
    /// `cluster status` counts the whole cluster with.
    pub async fn file_health(&self, path: &FsPath) -> Result<FileHealth> {
        let mut health = FileHealth::default();
        let mut offset = 0;
        loop {
            let query = Query::ReadPlan {
                path: path.clone(),
                offset,
                length: u64::MAX,
            };
            let plan = match self.meta.read(query, false).await? {
                QueryReply::ReadPlan(plan) => plan,
                // Kept in the namespace: no chunk to be unhealthy.
                QueryReply::Inline(_) => return Ok(health),
                _ => return Err(ClientError::Protocol("expected a read plan".into())),
            };
            if plan.length == 0 {
                return Ok(health);
            }
            let hashes: Vec<ChunkHash> = plan.chunks.iter().flatten().copied().collect();
            for batch in hashes.chunks(MAX_HASHES_PER_MESSAGE) {
                let request = ChunkHealthRequest {
                    hashes: batch.to_vec(),
                };
                let reply = self.meta.chunk_health(&request).await?;
                if reply.health.len() != batch.len() {
                    return Err(ClientError::Protocol(
                        "chunk health answered a different number of chunks".into(),
                    ));
                }
                reply.health.into_iter().for_each(|h| health.add(h));
            }
            offset += plan.length;
        }
    }
}

/// A file's chunks by health ([`Client::file_health`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileHealth {
    pub chunks: u64,
    pub under_replicated: u64,
    pub pending: u64,
    pub lost: u64,
}

impl FileHealth {
    fn add(&mut self, health: ChunkHealth) {
        self.chunks += 1;
        match health {
            ChunkHealth::Healthy => {}
            ChunkHealth::UnderReplicated { .. } => self.under_replicated += 1,
            ChunkHealth::Pending => self.pending += 1,
            ChunkHealth::Lost => self.lost += 1,
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.under_replicated == 0 && self.pending == 0 && self.lost == 0
    }
}
