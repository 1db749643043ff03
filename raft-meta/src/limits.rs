//! Every limit and timeout of a metadata node, named once. Timeouts that
//! meet a client's are chosen against the client crate's: a node that
//! forwards for a client gives up before the client does, so the client
//! hears why instead of timing out itself.

use std::time::Duration;

/// Largest request body (a Raft append batch or snapshot chunk).
pub const MAX_REQUEST_BYTES: usize = 32 << 20;
/// Client requests (namespace, placement, locate, status) a node works on
/// at once; more wait their turn before their body is read. Peers' Raft
/// RPCs and chunk reports are not counted, so a crowd of clients cannot
/// starve replication or elections.
pub const MAX_CLIENT_REQUESTS_IN_FLIGHT: usize = 512;

/// Encoded proposals one log entry gathers at most (its first proposal
/// always goes; one is at most its record's 1 MiB, a real one about
/// 140 KiB).
pub const MAX_ENTRY_PROPOSAL_BYTES: usize = 256 << 10;
/// Stored entries one AppendEntries carries at most (at least one entry
/// always goes; the log reader stops there, and the network refuses more
/// with `PayloadTooLarge`). openraft 0.9 gives an AppendEntries the
/// heartbeat interval (100 ms) to be encoded, sent, decoded, re-encoded
/// into the follower's log, synced and answered; measured on the 2-core
/// development machine with three nodes busy, 1 MiB requests missed it
/// again and again and 512 KiB ones did not.
pub const APPEND_ENTRIES_BUDGET_BYTES: usize = 512 << 10;
// The largest AppendEntries (one entry of a full batch, or the budget)
// stays well under what a node accepts.
const _: () = assert!(
    MAX_ENTRY_PROPOSAL_BYTES + (1 << 20) <= MAX_REQUEST_BYTES / 4
        && APPEND_ENTRIES_BUDGET_BYTES <= MAX_REQUEST_BYTES / 4
);

/// A forwarded write, read or chunk request waits this long for the
/// leader: under the client's 30 s per-request timeout
/// (`toastyfs_client::limits::REQUEST_TIMEOUT`).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(25);
/// A forwarded add-node waits this long for the leader, which answers once
/// the new node caught up: under the client's
/// `toastyfs_client::limits::ADD_NODE_TIMEOUT` (310 s).
pub const ADD_NODE_FORWARD_TIMEOUT: Duration = Duration::from_secs(300);
/// A forwarded remove-node: under the client's
/// `toastyfs_client::limits::REMOVE_NODE_TIMEOUT` (70 s).
pub const REMOVE_NODE_FORWARD_TIMEOUT: Duration = Duration::from_secs(60);
/// A forwarded chunk status: the client's status timeout is 10 s.
pub const CHUNK_STATUS_FORWARD_TIMEOUT: Duration = Duration::from_secs(8);

/// How often the leader checks for detached subtrees to reclaim.
pub const RECLAIM_INTERVAL: Duration = Duration::from_millis(200);

/// An upload temporary nobody has written for this long is an abandoned
/// put's, and the leader deletes it ([`crate::upload_sweep`]).
pub const DEFAULT_UPLOAD_TEMP_TTL: Duration = Duration::from_secs(3600);
/// The upload sweep lists one page this often...
pub const UPLOAD_SWEEP_INTERVAL: Duration = Duration::from_millis(200);
/// ...of at most this many entries (5,000 entries a second)...
pub const UPLOAD_SWEEP_PAGE: u32 = 1_000;
/// ...and rests at most this long between passes over the namespace.
pub const UPLOAD_SWEEP_MAX_REST: Duration = Duration::from_secs(300);

/// Raft timing defaults (milliseconds, as openraft takes them).
pub const HEARTBEAT_MS: u64 = 100;
pub const ELECTION_MIN_MS: u64 = 300;
pub const ELECTION_MAX_MS: u64 = 600;
/// Take a snapshot (and compact the log) after this many entries.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 20_000;
/// Log entries kept behind a snapshot for lagging followers.
pub const KEEP_LOGS_BEHIND_SNAPSHOT: u64 = 1_000;
/// Most log entries in one AppendEntries.
pub const MAX_PAYLOAD_ENTRIES: u64 = 1000;

/// Proposals waiting for a batch on the leader.
pub const PROPOSALS_QUEUED: usize = 8192;
/// Longest a proposal waits to commit before it is answered "outcome
/// unknown" (a leader cut off from its quorum keeps believing it leads):
/// under [`FORWARD_TIMEOUT`], so a forwarding node hears why.
pub const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(10);
const _: () = assert!(PROPOSAL_TIMEOUT.as_millis() < FORWARD_TIMEOUT.as_millis());
/// Log entries the proposer keeps in flight at once. One: openraft 0.9's
/// core appends each entry to the leader's log and awaits its fsync
/// before it replicates it, so a second entry in flight overlaps nothing
/// and only splits the batch into more appends and fsyncs. Measured
/// (docs/benchmarks.md, 2026-12-04): 1 entry gave 8,372 to 8,933
/// commits/s at 64 clients, 2 gave 7,849 to 8,374 and 4 gave 6,570 to
/// 7,848, with the lowest p99 at 1.
pub const PROPOSER_ENTRIES_IN_FLIGHT: usize = 1;

/// Bytes of key/value pairs per record of a snapshot file.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Bytes of a snapshot file per InstallSnapshot RPC (openraft's default
/// is 3 MiB): small enough that one RPC finishes well inside
/// [`INSTALL_SNAPSHOT_TIMEOUT_MS`] on a loaded machine.
pub const SNAPSHOT_RPC_BYTES: u64 = 1 << 20;
/// How long the leader waits for one InstallSnapshot RPC, the last of
/// which also loads the snapshot (openraft's default, 200 ms, made a
/// leader hang up and resend chunks of large snapshots again and again).
pub const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 5_000;

/// The chunk endpoints trust a quorum's confirmation of this node's lead
/// for at most this long, and never for more than half the shortest
/// election timeout, so no other node can have been elected meanwhile.
pub const LEADER_LEASE: Duration = Duration::from_millis(150);
/// Longest a chunk request waits for a quorum to confirm the lead; an
/// isolated leader answers 503 after it and the caller tries another node.
pub const CONFIRM_LEAD_TIMEOUT: Duration = Duration::from_secs(1);
const _: () = assert!(LEADER_LEASE.as_millis() <= ELECTION_MIN_MS as u128 / 2);

/// How often the leader's replication scan runs.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(1);
/// Chunks the replication scan looks at per hold of the map's lock (two
/// point reads of the namespace each): a few milliseconds, so reports,
/// placements and reads are never held up for a whole scan.
pub const SCAN_PAGE: usize = 4_096;
/// Reference-count keys read per page when counting unhealthy chunks for
/// `cluster status` (read outside the map's lock, counted under it).
pub const REF_PAGE: usize = 10_000;
/// Garbage records looked at per scan for `ForgetGarbage`.
pub const FORGET_PAGE: usize = 1_000;

/// Chunk servers with less free space than this get no new chunks.
pub const MIN_FREE_BYTES: u64 = 1 << 20;
/// Copies of every referenced chunk before the cluster setting is read.
pub const DEFAULT_REPLICATION_FACTOR: u32 = 3;
/// Silence after which a chunk server is down.
pub const DEFAULT_SERVER_TIMEOUT: Duration = Duration::from_secs(20);
/// Time a fetch order has to be confirmed before it is re-issued.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Time an unconfirmed placement is remembered.
pub const DEFAULT_PLACEMENT_TTL: Duration = Duration::from_secs(120);

// The forward timeouts stay under the client's, checked at compile time.
const _: () = assert!(
    FORWARD_TIMEOUT.as_millis() < toastyfs_client::limits::REQUEST_TIMEOUT.as_millis()
        && ADD_NODE_FORWARD_TIMEOUT.as_millis()
            < toastyfs_client::limits::ADD_NODE_TIMEOUT.as_millis()
        && REMOVE_NODE_FORWARD_TIMEOUT.as_millis()
            < toastyfs_client::limits::REMOVE_NODE_TIMEOUT.as_millis()
        && CHUNK_STATUS_FORWARD_TIMEOUT.as_millis()
            < toastyfs_client::limits::STATUS_TIMEOUT.as_millis()
);
/// A chunk server that reported a chunk lost within this is suspect: its
/// extra copies are dropped before healthy servers' ones.
pub const SUSPECT_FOR: Duration = Duration::from_secs(600);

/// Committed entries applied (and written) as one group: bounds the
/// in-memory overlay however large a range openraft hands over.
pub const APPLY_GROUP_ENTRIES: usize = 64;
