//! A blocking wrapper over [`Client`](crate::Client) for synchronous
//! callers: it owns a small tokio runtime and runs each call to completion.

use std::io::{Read, Write};

use toastyfs_proto::namespace::{EntryInfo, Listing};
use toastyfs_proto::{FsPath, Version};

use crate::{ClientConfig, ReadOutcome, Result, WriteOptions, WriteOutcome};

pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: crate::Client,
}

impl Client {
    pub fn new(config: ClientConfig) -> std::io::Result<Client> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(Client {
            runtime,
            inner: crate::Client::new(config),
        })
    }

    pub fn mkdir(&self, path: &FsPath, parents: bool) -> Result<Version> {
        self.runtime.block_on(self.inner.mkdir(path, parents))
    }

    pub fn create(&self, path: &FsPath, chunk_size: Option<u32>) -> Result<Version> {
        self.runtime
            .block_on(self.inner.create(path, chunk_size, None))
    }

    pub fn delete(&self, path: &FsPath, recursive: bool) -> Result<Version> {
        self.runtime
            .block_on(self.inner.delete(path, recursive, None))
    }

    pub fn rename(&self, from: &FsPath, to: &FsPath, replace: bool) -> Result<Version> {
        self.runtime
            .block_on(self.inner.rename(from, to, replace, None))
    }

    pub fn stat(&self, path: &FsPath) -> Result<EntryInfo> {
        self.runtime.block_on(self.inner.stat(path))
    }

    pub fn list(&self, path: &FsPath, after: Option<String>, limit: u32) -> Result<Listing> {
        self.runtime.block_on(self.inner.list(path, after, limit))
    }

    pub fn truncate(&self, path: &FsPath, length: u64) -> Result<Version> {
        self.runtime
            .block_on(self.inner.truncate(path, length, None))
    }

    /// Writes `bytes` at `offset` (creating the file if needed).
    pub fn write_at(
        &self,
        path: &FsPath,
        offset: u64,
        bytes: &[u8],
        options: WriteOptions,
    ) -> Result<WriteOutcome> {
        self.runtime
            .block_on(self.inner.write_at(path, offset, bytes, options))
    }

    /// Writes a whole file from a reader (read fully first into memory in
    /// pieces by the async side; the reader is adapted, not buffered whole).
    pub fn put(
        &self,
        path: &FsPath,
        mut reader: impl Read,
        no_clobber: bool,
    ) -> Result<WriteOutcome> {
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf)?;
        self.runtime
            .block_on(self.inner.put(path, buf.as_slice(), no_clobber, None, None))
    }

    /// Reads a range (or to the end) into `out`.
    pub fn read(
        &self,
        path: &FsPath,
        offset: u64,
        length: Option<u64>,
        mut out: impl Write,
    ) -> Result<ReadOutcome> {
        let mut buf = Vec::new();
        let outcome = self
            .runtime
            .block_on(self.inner.read_to(path, offset, length, &mut buf, None))?;
        out.write_all(&buf)?;
        Ok(outcome)
    }
}
