//! ToastyFS metadata node.
//!
//! [`namespace`] is the pure, deterministic state machine every node
//! applies; the Raft replication, RocksDB storage and HTTP API around it
//! come in their own modules.

pub mod namespace;
