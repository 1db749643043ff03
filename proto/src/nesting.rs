//! Decoding a command inside a command ([`Command::Guarded`],
//! [`Command::Placed`]) with bounded depth. Deserialization recurses once
//! per level, so without a bound a 1 MiB request of a few hundred thousand
//! nested commands overflows the decoding thread's stack and aborts the
//! node: a crash on network input, and a crash on every replay if it ever
//! reached the log. Legitimate commands nest two deep
//! (`Placed { Guarded { WriteCommit } }`).
//!
//! [`Command::Guarded`]: crate::namespace::Command::Guarded
//! [`Command::Placed`]: crate::namespace::Command::Placed

use std::cell::Cell;

use serde::de::Error;
use serde::{Deserialize, Deserializer};

use crate::namespace::Command;

/// Most commands a command may nest inside it, however wrapped.
pub const MAX_COMMAND_NESTING: u32 = 4;

thread_local! {
    /// Nested commands being decoded on this thread right now.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Leaves one level when dropped, also when decoding failed.
struct Level;

impl Drop for Level {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// `deserialize_with` for a nested `Box<Command>` field.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Box<Command>, D::Error> {
    let depth = DEPTH.with(|d| {
        d.set(d.get() + 1);
        d.get()
    });
    let _level = Level;
    if depth > MAX_COMMAND_NESTING {
        return Err(D::Error::custom(format!(
            "commands nest more than {MAX_COMMAND_NESTING} deep"
        )));
    }
    Box::<Command>::deserialize(deserializer)
}

#[cfg(test)]
mod tests {
    use crate::namespace::{Command, Proposal};

    /// The postcard body of a proposal whose command is `depth` guarded
    /// commands around a `Reclaim` (variant indexes 9 and 6), built by
    /// hand: encoding it with serde would recurse just as deep.
    fn nested_body(depth: usize) -> Vec<u8> {
        let mut body = vec![0u8, 0u8]; // no session, time 0
        for _ in 0..depth {
            body.extend_from_slice(&[9, 0]); // Guarded, no checks
        }
        body.push(6); // Reclaim
        body
    }

    #[test]
    fn a_deeply_nested_command_is_refused_not_a_stack_overflow() {
        // 800 KB, under a proposal's 1 MiB: this aborted the process.
        let error = postcard::from_bytes::<Proposal>(&nested_body(400_000)).expect_err("refused");
        assert_eq!(error, postcard::Error::SerdeDeCustom);
        // The depth count is back to zero: the next decode is unaffected.
        let ok: Proposal = postcard::from_bytes(&nested_body(4)).expect("four deep decodes");
        assert!(matches!(ok.command, Command::Guarded { .. }));
        assert!(postcard::from_bytes::<Proposal>(&nested_body(5)).is_err());
    }
}
