//! ToastyFS chunk server library.
//!
//! [`store`] keeps content-addressed chunks on local disk and verifies every
//! byte it serves; [`scrub`] re-verifies the whole store in the background at
//! a bounded rate; [`api`] is the HTTP server over the store; [`metrics`]
//! holds the Prometheus series. The store's bookkeeping of chunks added and
//! lost since the last report ([`ChunkStore::take_added_since_last`],
//! [`ChunkStore::take_lost`]) is what the sync with the metadata leader sends.
//!
//! Deliberately absent: any knowledge of files, the namespace or Raft (this
//! crate never depends on `toastyfs-raft-meta`), the leader sync loop and the
//! command-line entry point, which live in their own modules and binary.

pub mod api;
pub mod error;
mod layout;
pub mod metrics;
pub mod scrub;
pub mod store;
mod sys;

pub use error::StoreError;
pub use store::{ChunkStore, PutOutcome, Usage};
