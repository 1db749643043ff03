//! ToastyFS wire and on-disk types, shared by every crate.
//!
//! This crate is the bottom layer: plain types and their encoding, no async
//! and no I/O. Everything that crosses a wire or reaches a disk is one of
//! these types inside the [`record`] envelope.

pub mod addr;
pub mod admission;
pub mod auth;
pub mod byte_range;
pub mod chunk_token;
pub mod chunks;
pub mod client_key;
pub mod cluster;
#[cfg(any(test, feature = "fuzz-checks"))]
pub mod fuzz_checks;
pub mod hash;
pub mod ids;
pub mod namespace;
pub mod nesting;
pub mod path;
pub mod range;
pub mod record;
pub mod routes;

pub use hash::ChunkHash;
pub use ids::{ClientId, InodeId, Seq, SessionTag, Version};
pub use path::{FsPath, PathError};
pub use record::{decode, encode, Record, RecordError};
