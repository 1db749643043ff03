//! Moving chunk bytes: fetching a chunk from any live holder (verifying
//! its hash, falling back to the next holder on error or corruption) and
//! uploading new chunks where the leader places them (sent once, down a
//! chain of the targets), skipping those the cluster already holds.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt, TryStreamExt};
use toastyfs_proto::chunks::{LocateRequest, PlacementRequest};
use toastyfs_proto::namespace::{Command, MAX_CHUNK_SIZE};
use toastyfs_proto::ChunkHash;

use crate::error::{ClientError, Result};
use crate::meta::Meta;
use crate::transport::{ChainedUpload, Transport};

/// Where the chunks of one read live.
pub async fn locate(
    meta: &Meta,
    hashes: Vec<ChunkHash>,
) -> Result<BTreeMap<ChunkHash, Vec<String>>> {
    if hashes.is_empty() {
        return Ok(BTreeMap::new());
    }
    let reply = meta
        .locate(&LocateRequest {
            hashes: hashes.clone(),
        })
        .await?;
    if reply.holders.len() != hashes.len() {
        return Err(ClientError::Protocol(
            "locate answered a different number of chunks".into(),
        ));
    }
    Ok(hashes.into_iter().zip(reply.holders).collect())
}

/// Downloads `hash` from the first holder that returns intact bytes. The
/// holders send without hashing (this side hashes every chunk anyway); a
/// holder whose bytes do not match is told so, and checks and
/// quarantines its copy, before the next holder is asked.
pub async fn fetch(transport: &Transport, hash: ChunkHash, holders: &[String]) -> Result<Vec<u8>> {
    let mut errors = Vec::new();
    for addr in holders {
        match transport
            .get_chunk_to_verify(addr, &hash, MAX_CHUNK_SIZE as usize + 1)
            .await
        {
            Ok(bytes) => match verified(hash, bytes).await {
                Some(bytes) => return Ok(bytes),
                None => errors.push(format!(
                    "{addr}: {}",
                    report_bad_copy(transport, addr, hash).await
                )),
            },
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    if holders.is_empty() {
        errors.push("no live chunk server holds it".into());
    }
    Err(ClientError::ChunkUnavailable {
        hash,
        detail: errors.join("; "),
    })
}

/// Reports a copy that did not match its hash to its holder; what the
/// holder found, for the error a read ends in if no holder has it intact.
async fn report_bad_copy(transport: &Transport, addr: &str, hash: ChunkHash) -> String {
    let found = transport.report_bad_copy(addr, &hash).await;
    tracing::warn!(%hash, addr, ?found, "a chunk copy did not match its hash");
    match found {
        Ok(true) => {
            "bytes did not match the hash; the copy was corrupt and is now quarantined".into()
        }
        Ok(false) => {
            "bytes did not match the hash, though the stored copy checks out (damaged on the way?)"
                .into()
        }
        Err(e) => format!("bytes did not match the hash (reporting it failed: {e})"),
    }
}

/// `bytes` if they hash to `hash`. Hashing runs on the blocking pool, so
/// chunks fetched in parallel are verified on every core and never stall
/// the transfers' event loop.
async fn verified(hash: ChunkHash, bytes: Vec<u8>) -> Option<Vec<u8>> {
    tokio::task::spawn_blocking(move || (ChunkHash::of(&bytes) == hash).then_some(bytes))
        .await
        .ok()
        .flatten()
}

/// Hashes chunk contents on the blocking pool, all at once.
pub async fn hash_all(contents: Vec<Vec<u8>>) -> Result<Vec<(ChunkHash, bytes::Bytes)>> {
    let tasks = contents.into_iter().map(|content| {
        tokio::task::spawn_blocking(move || (ChunkHash::of(&content), bytes::Bytes::from(content)))
    });
    futures::future::try_join_all(tasks)
        .await
        .map_err(|e| ClientError::Io(std::io::Error::other(e)))
}

/// Stores new chunks: asks the leader which the cluster already holds
/// (those are skipped) and where the rest go, then uploads them, `parallel`
/// at a time, to every target. A chunk counts as stored once the cluster's
/// `min_copies` targets (named in the placement reply) hold a durable copy;
/// the leader's replication manager brings it to the replication factor.
/// Returns the bytes actually uploaded and the placement's index, which
/// the commit carries ([`placed`]).
pub async fn store(
    meta: &Meta,
    transport: &Transport,
    chunks: &[(ChunkHash, bytes::Bytes)],
    parallel: usize,
) -> Result<Stored> {
    let mut unique: BTreeMap<ChunkHash, bytes::Bytes> = BTreeMap::new();
    for (hash, bytes) in chunks {
        unique.entry(*hash).or_insert_with(|| bytes.clone());
    }
    let request = PlacementRequest {
        hashes: unique.keys().copied().collect(),
    };
    let reply = meta.placement(&request).await?;
    let needed = reply.min_copies.max(1) as usize;
    let placed_at = reply.placed_at;
    let uploads: Vec<(ChunkHash, bytes::Bytes, Vec<String>)> = reply
        .placements
        .into_iter()
        .filter(|p| !p.present)
        .filter_map(|p| unique.get(&p.hash).map(|b| (p.hash, b.clone(), p.targets)))
        .collect();
    // The harness stops a client process at this line (between placement
    // and commit); an operator sees where a slow put spends its time.
    tracing::debug!(
        placed_at,
        chunks = unique.len(),
        uploads = uploads.len(),
        "placed; uploading"
    );
    let sizes = stream::iter(uploads)
        .map(|(hash, bytes, targets)| async move {
            upload_one(transport, hash, bytes, &targets, needed).await
        })
        .buffer_unordered(parallel.max(1))
        .try_collect::<Vec<u64>>()
        .await?;
    Ok(Stored {
        uploaded: sizes.iter().sum(),
        placed_at,
    })
}

/// What [`store`] did.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    /// Bytes uploaded (chunks the cluster already held are not).
    pub uploaded: u64,
    /// The placement's index: the commit is refused for a chunk collected
    /// after it.
    pub placed_at: u64,
}

/// `command` (a write or truncation) carrying the placement of its chunks.
pub fn placed(placed_at: u64, command: Command) -> Command {
    Command::Placed {
        placed_at,
        command: Box::new(command),
    }
}

/// Stores one chunk on its targets: sent once, to the first, which passes
/// it down the rest of them as it arrives (chain replication,
/// `chunkserver/src/chain.rs`); the targets the chain did not make
/// durable get it directly from here, in parallel. Enough copies are
/// `needed` (min_copies); the ones the chain missed beyond that are left
/// to the leader's replication. Returns the bytes this client delivered
/// to servers that stored them.
async fn upload_one(
    transport: &Transport,
    hash: ChunkHash,
    bytes: bytes::Bytes,
    targets: &[String],
    needed: usize,
) -> Result<u64> {
    let Some((first, rest)) = targets.split_first() else {
        return Err(ClientError::UploadFailed {
            hash,
            detail: "no chunk server is up to take it".into(),
        });
    };
    let mut durable = BTreeSet::new();
    let mut failures = Vec::new();
    let mut sent = 0u64;
    if !rest.is_empty() {
        let upload = ChainedUpload {
            chain: rest,
            token: None,
            length: Some(bytes.len() as u64),
            hop: false,
        };
        match transport
            .put_chunk_chained(first, &hash, bytes.clone(), upload)
            .await
        {
            Ok(reply) => {
                sent += bytes.len() as u64;
                durable.insert(first.clone());
                let down_the_chain = reply.durable.into_iter().filter(|a| rest.contains(a));
                durable.extend(down_the_chain);
                failures.extend(reply.chain_errors);
            }
            Err(e) => failures.push(format!("{first}: {e}")),
        }
    }
    let missing: Vec<&String> = targets.iter().filter(|t| !durable.contains(*t)).collect();
    if durable.len() < needed.min(targets.len()) || rest.is_empty() {
        let direct = futures::future::join_all(missing.iter().map(|addr| {
            let bytes = bytes.clone();
            async move {
                transport
                    .put_chunk(addr, &hash, bytes)
                    .await
                    .map(|()| (*addr).clone())
                    .map_err(|e| format!("{addr}: {e}"))
            }
        }))
        .await;
        for result in direct {
            match result {
                Ok(addr) => {
                    sent += bytes.len() as u64;
                    durable.insert(addr);
                }
                Err(e) => failures.push(e),
            }
        }
    }
    if durable.len() < needed {
        let detail = format!(
            "{} of the {needed} copies a write needs were stored (min_copies): {}",
            durable.len(),
            failures.join("; ")
        );
        return Err(ClientError::UploadFailed { hash, detail });
    }
    Ok(sent)
}
