//! Small identifier newtypes: versions, clients, sessions, nodes, inodes.
//!
//! Each is a `u64` with its own type so one can never be passed for another.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A value of the cluster-wide version counter. Every change bumps the
    /// counter and stamps the changed entities with the new value (the
    /// original design's "generation").
    Version
);
id_type!(
    /// A client's session identity, assigned by the cluster when the client
    /// registers (`Command::RegisterClient`).
    ClientId
);
id_type!(
    /// A client's per-session request sequence number, starting at 1.
    Seq
);
id_type!(
    /// The stable identity of a directory or file inside the namespace
    /// store; names map to inodes, so a rename moves one key.
    InodeId
);

/// The session tag a mutating request carries so that retries are applied
/// at most once.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct SessionTag {
    pub client: ClientId,
    pub seq: Seq,
}
