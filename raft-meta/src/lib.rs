//! ToastyFS metadata node.
//!
//! [`namespace`] is the pure, deterministic state machine every node
//! applies. Around it: [`types`] (openraft configuration), [`store`]
//! (RocksDB: log, vote, state, snapshots), [`network`] (Raft RPCs over the
//! client crate's one transport), [`proposer`] (group commit), [`read_index`] (batched read
//! index rounds), [`node`]
//! (the shared handle of a running node and its queries), [`server`]
//! (starting a node and its background tasks), [`api`] (the HTTP server),
//! [`cluster`] (forming the cluster, adding and removing nodes), [`election`]
//! (campaigning only after a pre-vote), [`handover`] (leadership handed
//! over before a planned stop) and
//! [`limits`] (every limit and timeout). [`unsafe_modes`] are the
//! deliberately unsafe behaviours the Jepsen harness must catch (test-only). [`chunk_map`] is the leader's
//! soft state about chunk locations and its replication rules;
//! [`replication`] runs them in a node; [`snapshot_receiver`] takes the
//! leader's snapshot chunks. `lifecycle_check` (tests) explores
//! every interleaving of the chunk lifecycle protocol over both.

pub mod api;
pub mod auth;
pub mod callers;
pub mod chunk_map;
pub mod cluster;
pub mod election;
pub mod handover;
pub mod limits;
pub mod metrics;
pub mod namespace;
pub mod network;
pub mod node;
pub mod proposer;
pub mod read_index;
pub mod replication;
pub mod server;
pub mod snapshot_receiver;
pub mod store;
pub mod types;
pub mod unsafe_modes;
pub mod upload_sweep;

#[cfg(test)]
mod lifecycle_check;
