//! ToastyFS chunk server library.
//!
//! [`store`] keeps content-addressed chunks on local disk and verifies every
//! byte it serves; [`scrub`] re-verifies the whole store in the background at
//! a bounded rate; [`api`] is the HTTP server over the store; [`metrics`]
//! holds the Prometheus series. [`sync`] reports the store's inventory and
//! its changes ([`ChunkStore::take_added_since_last`],
//! [`ChunkStore::take_lost`]) to the metadata leader and carries out its
//! fetch and drop orders; [`identity`] keeps the server's stable id;
//! [`chain`] passes uploads on down the chain of servers they name;
//! [`server`] wires all of them into one running chunk server; [`limits`]
//! names every limit and timeout. What it sends goes through the client
//! crate's one transport.
//!
//! Deliberately absent: any knowledge of files, the namespace or Raft (this
//! crate never depends on `toastyfs-raft-meta`) and flag parsing (the
//! `toastyfs chunk` subcommand in the binary).

pub mod access;
pub mod api;
pub mod chain;
pub mod error;
pub mod identity;
mod layout;
pub mod limits;
pub mod metrics;
pub mod scrub;
pub mod server;
pub mod store;
pub mod sync;
mod sys;

pub use error::StoreError;
pub use server::{run, ChunkServerConfig, ChunkServerError};
pub use store::{ChunkStore, PutOutcome, Usage};
