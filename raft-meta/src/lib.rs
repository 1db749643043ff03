//! ToastyFS metadata node.
//!
//! [`namespace`] is the pure, deterministic state machine every node
//! applies. Around it: [`types`] (openraft configuration), [`store`]
//! (RocksDB: log, vote, state, snapshots), [`network`] (Raft RPCs over
//! [`transport`]), [`api`] (the HTTP server), [`node`] (a running node) and
//! [`client`] (the leader-finding client the CLI and tests use).
//! [`chunk_map`] is the leader's soft state about chunk locations and its
//! replication rules; [`replication`] runs them in a node.

pub mod api;
pub mod chunk_map;
pub mod client;
pub mod metrics;
pub mod namespace;
pub mod network;
pub mod node;
pub mod proposer;
pub mod replication;
pub mod store;
pub mod transport;
pub mod types;
