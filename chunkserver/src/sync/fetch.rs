//! Healing copies: the leader's fetch orders, carried out in the background.
//!
//! Each order names a chunk and the servers that hold it, best first. The
//! [`Fetcher`] downloads it from each source in turn (`GET /chunks/{hash}`,
//! the body bounded by the largest chunk) and stores it with
//! [`ChunkStore::put`], which verifies the hash, so a source that sends bad
//! bytes is simply skipped. At most `parallelism` copies run at once and at
//! most [`MAX_QUEUED_FETCHES`] are queued; an order for a chunk already here,
//! already being fetched, or beyond the queue bound is skipped. An order that
//! fails on every source is logged and forgotten: the leader orders it again
//! while the chunk stays under-replicated.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use toastyfs_client::transport::{SendError, Transport};
use toastyfs_proto::chunks::FetchOrder;
use toastyfs_proto::hash::ChunkHash;
use tokio::sync::{Notify, Semaphore};

use crate::error::StoreError;
use crate::metrics;
use crate::store::{ChunkStore, PutOutcome, MAX_CHUNK_BYTES};

pub use crate::limits::MAX_QUEUED_FETCHES;

/// Why one source could not provide a chunk.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Download(#[from] SendError),
    #[error("storing the copy: {0}")]
    Store(#[from] StoreError),
    #[error("no source other than this server was named")]
    NoSource,
}

/// Carries out fetch orders. Cheap to clone; clones share the queue.
#[derive(Clone)]
pub struct Fetcher {
    store: Arc<ChunkStore>,
    transport: Transport,
    own_addr: String,
    permits: Arc<Semaphore>,
    queued: Arc<Mutex<BTreeSet<ChunkHash>>>,
    wake: Arc<Notify>,
}

/// Removes a hash from the queue when its task ends, however it ends.
struct Queued {
    queued: Arc<Mutex<BTreeSet<ChunkHash>>>,
    hash: ChunkHash,
}

impl Drop for Queued {
    fn drop(&mut self) {
        lock(&self.queued).remove(&self.hash);
    }
}

fn lock(set: &Mutex<BTreeSet<ChunkHash>>) -> std::sync::MutexGuard<'_, BTreeSet<ChunkHash>> {
    set.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Fetcher {
    /// A fetcher that copies into `store`, never from `own_addr`, runs at
    /// most `parallelism` copies at once and notifies `wake` after each.
    pub fn new(
        store: Arc<ChunkStore>,
        transport: Transport,
        own_addr: String,
        parallelism: usize,
        wake: Arc<Notify>,
    ) -> Fetcher {
        Fetcher {
            store,
            transport,
            own_addr,
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
            queued: Arc::default(),
            wake,
        }
    }

    /// Queues the orders that are not already here or under way; returns
    /// how many were queued.
    pub fn start(&self, orders: Vec<FetchOrder>) -> usize {
        let mut started = 0;
        for order in orders {
            if let Some(guard) = self.claim(order.hash) {
                let fetcher = self.clone();
                tokio::spawn(async move { fetcher.run(order, guard).await });
                started += 1;
            }
        }
        started
    }

    /// How many fetches are queued or running.
    pub fn queued(&self) -> usize {
        lock(&self.queued).len()
    }

    fn claim(&self, hash: ChunkHash) -> Option<Queued> {
        if self.store.contains(&[hash]) == [true] {
            return None;
        }
        let mut queued = lock(&self.queued);
        if queued.len() >= MAX_QUEUED_FETCHES || !queued.insert(hash) {
            return None;
        }
        Some(Queued {
            queued: Arc::clone(&self.queued),
            hash,
        })
    }

    async fn run(self, order: FetchOrder, _guard: Queued) {
        let Ok(_permit) = self.permits.acquire().await else {
            return;
        };
        let hash = order.hash;
        match self.copy(order).await {
            Ok((from, PutOutcome::Stored)) => {
                metrics::record_healing_copy();
                tracing::debug!(%hash, %from, "copied a chunk from another replica");
                self.wake.notify_one();
            }
            Ok((_, PutOutcome::AlreadyPresent)) => {}
            Err(e) => {
                tracing::warn!(%hash, error = %e, "could not fetch a chunk the leader ordered; waiting for the order to be repeated")
            }
        }
    }

    /// Tries each source in turn; the first good copy wins.
    async fn copy(&self, order: FetchOrder) -> Result<(String, PutOutcome), FetchError> {
        let mut last_error = FetchError::NoSource;
        for from in order.from.into_iter().filter(|a| *a != self.own_addr) {
            match self.copy_from(&from, order.hash).await {
                Ok(outcome) => return Ok((from, outcome)),
                Err(FetchError::Store(e)) if !matches!(e, StoreError::HashMismatch { .. }) => {
                    return Err(FetchError::Store(e));
                }
                Err(e) => {
                    tracing::debug!(hash = %order.hash, error = %e, "fetch source failed; trying the next");
                    last_error = e;
                }
            }
        }
        Err(last_error)
    }

    async fn copy_from(&self, from: &str, hash: ChunkHash) -> Result<PutOutcome, FetchError> {
        let bytes = self
            .transport
            .get_chunk(from, &hash, MAX_CHUNK_BYTES as usize)
            .await?;
        Ok(self.store.blocking(move |s| s.put(hash, &bytes)).await?)
    }
}
