//! The chunk protocol between chunk servers, clients and the metadata
//! leader: reports, orders, placement and location of chunks.
//!
//! Chunk locations are soft state on the leader (rebuilt from reports after
//! a leader change), so none of these types enters the Raft log.

use serde::{Deserialize, Serialize};

use crate::client_key::KeyId;
use crate::hash::ChunkHash;
use crate::record::{decode_body, Record, RecordError};

/// Most hashes one report, order list, placement or locate request carries.
pub const MAX_HASHES_PER_MESSAGE: usize = 100_000;

/// A chunk server's stable identity: chosen at random when its data
/// directory is created, and kept there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChunkServerId(pub u64);

/// Chunk server → leader: what it holds and how full it is. The first
/// report to a (new) leader is `full`, with the whole inventory in `added`;
/// later ones carry the chunks added and lost since the previous report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkReport {
    pub server: ChunkServerId,
    /// Address clients and peers use to reach this server's HTTP API.
    pub addr: String,
    pub full: bool,
    pub added: Vec<ChunkHash>,
    pub lost: Vec<ChunkHash>,
    pub chunks: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    /// Every chunk this server has a pending drop of (it may delete it
    /// soon, perhaps on an order the leader never sent): the leader does
    /// not count those copies as safe when it picks extra copies to drop.
    /// Every message of a split report carries the whole set.
    pub dropping: Vec<ChunkHash>,
    /// Which run of the server sent it (a random number drawn at start).
    pub boot: u64,
    /// The message's number in that run, from 1 (0: unnumbered, from a
    /// server before version 3). A message sent twice (a hedged report)
    /// carries the same number; the leader applies a message only if its
    /// number is above the last one it applied from the same run, so a
    /// copy delayed in a paused or cut-off node never undoes a newer one.
    pub seq: u64,
}

/// Version 2 of [`ChunkReport`]: before `boot` and `seq`.
#[derive(Deserialize)]
struct ChunkReportV2 {
    server: ChunkServerId,
    addr: String,
    full: bool,
    added: Vec<ChunkHash>,
    lost: Vec<ChunkHash>,
    chunks: u64,
    used_bytes: u64,
    free_bytes: u64,
    dropping: Vec<ChunkHash>,
}

/// Version 1 of [`ChunkReport`]: before `dropping`.
#[derive(Deserialize)]
struct ChunkReportV1 {
    server: ChunkServerId,
    addr: String,
    full: bool,
    added: Vec<ChunkHash>,
    lost: Vec<ChunkHash>,
    chunks: u64,
    used_bytes: u64,
    free_bytes: u64,
}

/// One chunk a server should fetch, and from whom.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FetchOrder {
    pub hash: ChunkHash,
    /// Addresses of servers that hold it, best first.
    pub from: Vec<String>,
}

/// Leader → chunk server, the answer to a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkOrders {
    /// Chunks to copy here.
    pub fetch: Vec<FetchOrder>,
    /// Chunks this server may delete (after its grace period).
    pub drop: Vec<ChunkHash>,
    /// The leader lost track of this server (e.g. it is new): send a full
    /// report next.
    pub full_report_wanted: bool,
    /// Client keys revoked recently: refuse every chunk token minted for
    /// them (`chunk_token`), even before it expires.
    pub revoked_keys: Vec<KeyId>,
}

/// Version 1 of [`ChunkOrders`]: before `revoked_keys`.
#[derive(Deserialize)]
struct ChunkOrdersV1 {
    fetch: Vec<FetchOrder>,
    drop: Vec<ChunkHash>,
    full_report_wanted: bool,
}

impl Record for ChunkOrders {
    const KIND: u8 = kinds::CHUNK_ORDERS;
    /// 2: `revoked_keys` joined the orders.
    const VERSION: u8 = 2;
    const MAX_BODY_BYTES: usize = 16 << 20;

    fn upgrade(version: u8, body: &[u8]) -> Result<Self, RecordError> {
        match version {
            1 => decode_body::<ChunkOrdersV1>(body).map(|old| ChunkOrders {
                fetch: old.fetch,
                drop: old.drop,
                full_report_wanted: old.full_report_wanted,
                revoked_keys: Vec::new(),
            }),
            found => Err(RecordError::UnknownVersion {
                kind: Self::KIND,
                found,
                supported: Self::VERSION,
            }),
        }
    }
}

/// Client → leader: where should these new chunks go? Also says which the
/// cluster already holds (deduplication: those are not uploaded again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementRequest {
    pub hashes: Vec<ChunkHash>,
}

/// Where one chunk goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub hash: ChunkHash,
    /// Some chunk server already holds it: do not upload.
    pub present: bool,
    /// Servers to upload to (distinct), best first; empty when present.
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementReply {
    pub placements: Vec<Placement>,
    /// Targets that must store a chunk before the write may commit it
    /// (the cluster's `min_copies`, capped at its replication factor).
    pub min_copies: u32,
    /// The leader had applied the log up to here when it decided which
    /// chunks are present: the commit carries it
    /// ([`crate::namespace::Command::Placed`]), so a chunk collected
    /// after this point is refused rather than committed.
    pub placed_at: u64,
}

/// Version 1 of [`PlacementReply`]: before `min_copies` (one copy was
/// enough).
#[derive(Deserialize)]
struct PlacementReplyV1 {
    placements: Vec<Placement>,
}

/// Version 2 of [`PlacementReply`]: before `placed_at`.
#[derive(Deserialize)]
struct PlacementReplyV2 {
    placements: Vec<Placement>,
    min_copies: u32,
}

/// Client → leader: who holds these chunks?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocateRequest {
    pub hashes: Vec<ChunkHash>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocateReply {
    /// One list of holder addresses per requested hash, live servers first.
    pub holders: Vec<Vec<String>>,
}

/// Client → leader: how many copies of these chunks are there?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkHealthRequest {
    pub hashes: Vec<ChunkHash>,
}

/// One referenced chunk's copies, by the one definition `cluster status`
/// and `fsck` share: live copies are those on up servers that reported
/// them to this leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkHealth {
    /// At least the replication factor of live copies.
    Healthy,
    /// Some live copies, fewer than the replication factor.
    UnderReplicated { copies: u32 },
    /// No live copy known yet, but one may exist: the leader is still in
    /// its warm-up (not every server has had time to report), or a recent
    /// placement sent the chunk to a server that is up and has not
    /// reported it yet.
    Pending,
    /// No known copy after every server has had time to report.
    Lost,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkHealthReply {
    /// One answer per requested hash, in order.
    pub health: Vec<ChunkHealth>,
}

/// `POST /chunks/exists` on a chunk server (JSON): which of these hashes
/// (hex) it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistsRequest {
    pub hashes: Vec<String>,
}

/// The answer to an [`ExistsRequest`]: one flag per hash, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistsReply {
    pub present: Vec<bool>,
}

/// Most chunk servers one upload's chain may name after its first
/// (the largest replication factor, less the first).
pub const MAX_CHAIN_LINKS: usize = 15;

/// The answer to a chunk upload (`PUT /chunks/{hash}`, JSON): which
/// servers of the chain hold a durable copy now (this one first, then
/// those down the chain that said so), and why any link further down did
/// not. A client with fewer durable copies than it needs uploads directly
/// to the targets not named in `durable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadReply {
    pub hash: String,
    #[serde(default)]
    pub durable: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain_errors: Vec<String>,
}

/// Record kinds of the chunk protocol.
pub mod kinds {
    pub const CHUNK_REPORT: u8 = 8;
    pub const CHUNK_ORDERS: u8 = 9;
    pub const PLACEMENT_REQUEST: u8 = 10;
    pub const PLACEMENT_REPLY: u8 = 11;
    pub const LOCATE_REQUEST: u8 = 12;
    pub const LOCATE_REPLY: u8 = 13;
    pub const CHUNK_CLUSTER_STATUS: u8 = 14;
    pub const CHUNK_HEALTH_REQUEST: u8 = 52;
    pub const CHUNK_HEALTH_REPLY: u8 = 53;
}

macro_rules! record {
    ($ty:ty, $kind:expr) => {
        impl Record for $ty {
            const KIND: u8 = $kind;
            const MAX_BODY_BYTES: usize = 16 << 20;
        }
    };
}

impl Record for ChunkReport {
    const KIND: u8 = kinds::CHUNK_REPORT;
    const VERSION: u8 = 3;
    const MAX_BODY_BYTES: usize = 16 << 20;

    /// A version-1 server names no pending drops; older servers number no
    /// messages (`seq` 0: applied in the order they arrive).
    fn upgrade(version: u8, body: &[u8]) -> Result<Self, RecordError> {
        match version {
            1 => decode_body::<ChunkReportV1>(body).map(|old| ChunkReport {
                server: old.server,
                addr: old.addr,
                full: old.full,
                added: old.added,
                lost: old.lost,
                chunks: old.chunks,
                used_bytes: old.used_bytes,
                free_bytes: old.free_bytes,
                dropping: Vec::new(),
                boot: 0,
                seq: 0,
            }),
            2 => decode_body::<ChunkReportV2>(body).map(|old| ChunkReport {
                server: old.server,
                addr: old.addr,
                full: old.full,
                added: old.added,
                lost: old.lost,
                chunks: old.chunks,
                used_bytes: old.used_bytes,
                free_bytes: old.free_bytes,
                dropping: old.dropping,
                boot: 0,
                seq: 0,
            }),
            found => Err(RecordError::UnknownVersion {
                kind: Self::KIND,
                found,
                supported: Self::VERSION,
            }),
        }
    }
}
record!(PlacementRequest, kinds::PLACEMENT_REQUEST);

impl Record for PlacementReply {
    const KIND: u8 = kinds::PLACEMENT_REPLY;
    const VERSION: u8 = 3;
    const MAX_BODY_BYTES: usize = 16 << 20;

    /// Older replies carry no `placed_at`: 0 is the conservative value
    /// (any collection since the log began refuses the commit).
    fn upgrade(version: u8, body: &[u8]) -> Result<Self, RecordError> {
        match version {
            1 => decode_body::<PlacementReplyV1>(body).map(|old| PlacementReply {
                placements: old.placements,
                min_copies: 1,
                placed_at: 0,
            }),
            2 => decode_body::<PlacementReplyV2>(body).map(|old| PlacementReply {
                placements: old.placements,
                min_copies: old.min_copies,
                placed_at: 0,
            }),
            found => Err(RecordError::UnknownVersion {
                kind: Self::KIND,
                found,
                supported: Self::VERSION,
            }),
        }
    }
}
record!(LocateRequest, kinds::LOCATE_REQUEST);
record!(LocateReply, kinds::LOCATE_REPLY);
record!(ChunkHealthRequest, kinds::CHUNK_HEALTH_REQUEST);
record!(ChunkHealthReply, kinds::CHUNK_HEALTH_REPLY);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::assert_tamper_evident;

    /// Every chunk-protocol record rejects every truncation and bit flip.
    #[test]
    fn chunk_records_are_tamper_evident() {
        let h = ChunkHash::of(b"c");
        assert_tamper_evident(&ChunkReport {
            server: ChunkServerId(7),
            addr: "127.0.0.1:9000".into(),
            full: true,
            added: vec![h],
            lost: vec![],
            chunks: 1,
            used_bytes: 10,
            free_bytes: 20,
            dropping: vec![h],
            boot: 1,
            seq: 2,
        });
        assert_tamper_evident(&ChunkOrders {
            fetch: vec![FetchOrder {
                hash: h,
                from: vec!["a:1".into()],
            }],
            drop: vec![h],
            full_report_wanted: false,
            revoked_keys: vec![],
        });
        assert_tamper_evident(&PlacementReply {
            placements: vec![Placement {
                hash: h,
                present: false,
                targets: vec!["a:1".into()],
            }],
            min_copies: 2,
            placed_at: 41,
        });
        assert_tamper_evident(&LocateReply {
            holders: vec![vec!["a:1".into()]],
        });
    }

    /// A version-1 placement reply (before `min_copies`) still decodes,
    /// as a reply that asks for one copy.
    #[test]
    fn a_version_1_placement_reply_upgrades_to_one_copy() {
        #[derive(Serialize, Deserialize)]
        struct V1 {
            placements: Vec<Placement>,
        }
        impl Record for V1 {
            const KIND: u8 = kinds::PLACEMENT_REPLY;
        }
        let placements = vec![Placement {
            hash: ChunkHash::of(b"p"),
            present: true,
            targets: vec![],
        }];
        let old = crate::record::encode(&V1 {
            placements: placements.clone(),
        })
        .expect("encode");
        let reply: PlacementReply = crate::record::decode(&old).expect("upgrades");
        assert_eq!(
            reply,
            PlacementReply {
                placements,
                min_copies: 1,
                placed_at: 0,
            }
        );
    }

    /// A version-2 placement reply (before `placed_at`) decodes as placed
    /// at 0, which refuses a commit of any chunk collected since.
    #[test]
    fn a_version_2_placement_reply_upgrades_to_placed_at_zero() {
        #[derive(Serialize, Deserialize)]
        struct V2 {
            placements: Vec<Placement>,
            min_copies: u32,
        }
        impl Record for V2 {
            const KIND: u8 = kinds::PLACEMENT_REPLY;
            const VERSION: u8 = 2;
        }
        let old = crate::record::encode(&V2 {
            placements: vec![],
            min_copies: 3,
        })
        .expect("encode");
        let reply: PlacementReply = crate::record::decode(&old).expect("upgrades");
        assert_eq!((reply.min_copies, reply.placed_at), (3, 0));
    }
}
