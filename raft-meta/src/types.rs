//! The openraft type configuration of the metadata service and the record
//! kinds of the Raft data we put in the envelope.

use serde::{Deserialize, Serialize};
use toastyfs_proto::namespace::{CommandResult, Proposal};
use toastyfs_proto::record::Framed;
use toastyfs_proto::record::Record;

/// A metadata node's Raft id (the wire type of the cluster API).
pub use toastyfs_proto::cluster::NodeId;

openraft::declare_raft_types!(
    /// ToastyFS's Raft types: log entries carry namespace proposals, and
    /// snapshots are files streamed from and into RocksDB.
    pub TypeConfig:
        D = ProposalBatch,
        R = ApplyReply,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The payload of one log entry: proposals gathered while the previous
/// entries were being written (group commit), applied in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalBatch {
    pub proposals: Vec<Proposal>,
}

/// Most proposals one log entry carries.
pub const MAX_BATCH_PROPOSALS: usize = 512;

/// What applying one log entry produced: one namespace result per
/// proposal (none for Raft's own blank and membership entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReply {
    pub log_index: u64,
    pub results: Vec<CommandResult>,
}

pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type Raft = openraft::Raft<TypeConfig>;

/// Record kinds of Raft data (32 and up; see docs/architecture.md).
pub mod kinds {
    pub const LOG_ENTRY: u8 = 32;
    pub const VOTE: u8 = 33;
    pub const LOG_ID: u8 = 34;
    pub const MEMBERSHIP: u8 = 35;
    pub const SNAPSHOT_HEADER: u8 = 36;
    pub const SNAPSHOT_CHUNK: u8 = 37;
    pub const SNAPSHOT_END: u8 = 38;
    pub const RPC_APPEND: u8 = 40;
    pub const RPC_APPEND_REPLY: u8 = 41;
    pub const RPC_VOTE: u8 = 42;
    pub const RPC_VOTE_REPLY: u8 = 43;
    pub const RPC_SNAPSHOT: u8 = 44;
    pub const RPC_SNAPSHOT_REPLY: u8 = 45;
    pub const RPC_PRE_VOTE: u8 = 46;
    pub const RPC_PRE_VOTE_REPLY: u8 = 47;
    pub const RPC_CAMPAIGN: u8 = 50;
    pub const RPC_CAMPAIGN_REPLY: u8 = 51;
}

/// A stored log entry; a batch of the largest proposals fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntryRecord(pub Entry);

impl Record for EntryRecord {
    const KIND: u8 = kinds::LOG_ENTRY;
    const MAX_BODY_BYTES: usize = 64 << 20;
}

impl EntryRecord {
    pub fn from_owned(entry: Entry) -> EntryRecord {
        EntryRecord(entry)
    }
}
pub type VoteRecord = Framed<{ kinds::VOTE }, Vote>;
pub type LogIdRecord = Framed<{ kinds::LOG_ID }, LogId>;
pub type MembershipRecord = Framed<{ kinds::MEMBERSHIP }, StoredMembership>;
