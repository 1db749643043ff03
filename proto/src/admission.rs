//! The limits of a command that need no state, checked by a metadata node
//! before it proposes (answered 400) and again by the state machine when
//! it applies (a refusal in the log): a command that cannot be applied for
//! its size alone never takes room in the log. Paths are bounded when they
//! decode ([`crate::path`]), nesting when commands decode
//! ([`crate::nesting`]), and a proposal's whole encoding by its record's
//! `MAX_BODY_BYTES`.

use crate::client_key::MAX_KEY_NAME;
use crate::namespace::{Command, FsError, MAX_CHUNKS_PER_OP, MAX_GUARD_CHECKS, MAX_INLINE_BYTES};

/// Refuses a command whose lists exceed their limits, with the error the
/// state machine would give.
pub fn check(command: &Command) -> Result<(), FsError> {
    match command {
        Command::WriteCommit(write) => at_most_chunks(write.chunks.len()),
        Command::ForgetGarbage { hashes }
        | Command::Condemn { hashes }
        | Command::Pardon { hashes } => at_most_chunks(hashes.len()),
        Command::Guarded { checks, command } => {
            if checks.len() > MAX_GUARD_CHECKS {
                return Err(FsError::InvalidGuard {
                    reason: format!("{} slot checks; at most {MAX_GUARD_CHECKS}", checks.len()),
                });
            }
            check(command)
        }
        Command::Placed { command, .. } => check(command),
        Command::CreateDir { .. }
        | Command::CreateFile { .. }
        | Command::Delete { .. }
        | Command::Rename { .. }
        | Command::Truncate { .. }
        | Command::Reclaim
        | Command::SetReplicationFactor { .. }
        | Command::SetMinCopies { .. }
        | Command::RegisterClient
        | Command::SetInlineMax { .. }
        | Command::RevokeKey { .. } => Ok(()),
        Command::WriteInline(write) => at_most_inline(write.content.len()),
        Command::CreateKey { name, .. } => check_key_name(name),
    }
}

/// A key name: 1..=[`MAX_KEY_NAME`] printable characters.
pub fn check_key_name(name: &str) -> Result<(), FsError> {
    let reason = if name.is_empty() {
        "empty".to_owned()
    } else if name.len() > MAX_KEY_NAME {
        format!("{} bytes; at most {MAX_KEY_NAME}", name.len())
    } else if name.chars().any(char::is_control) {
        "contains a control character".to_owned()
    } else {
        return Ok(());
    };
    Err(FsError::InvalidKeyName { reason })
}

/// Inline content no cluster would keep ([`MAX_INLINE_BYTES`]); the
/// cluster's own, lower, limit is the state machine's to check.
fn at_most_inline(length: usize) -> Result<(), FsError> {
    if length > MAX_INLINE_BYTES as usize {
        return Err(FsError::InlineTooLarge {
            length: length as u64,
            max: MAX_INLINE_BYTES,
        });
    }
    Ok(())
}

fn at_most_chunks(count: usize) -> Result<(), FsError> {
    if count > MAX_CHUNKS_PER_OP {
        return Err(FsError::TooManyChunks {
            count: count as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::SlotCheck;
    use crate::ChunkHash;

    fn hashes(n: usize) -> Vec<ChunkHash> {
        (0..n as u64)
            .map(|i| ChunkHash::of(&i.to_be_bytes()))
            .collect()
    }

    #[test]
    fn lists_over_their_limits_are_refused_wherever_they_are_wrapped() {
        assert!(check(&Command::Condemn {
            hashes: hashes(MAX_CHUNKS_PER_OP)
        })
        .is_ok());
        let over = Command::ForgetGarbage {
            hashes: hashes(MAX_CHUNKS_PER_OP + 1),
        };
        assert!(matches!(check(&over), Err(FsError::TooManyChunks { count }) if count == 4097));
        let wrapped = Command::Placed {
            placed_at: 1,
            command: Box::new(Command::Guarded {
                checks: vec![],
                command: Box::new(over),
            }),
        };
        assert!(matches!(
            check(&wrapped),
            Err(FsError::TooManyChunks { .. })
        ));
        let checks = vec![
            SlotCheck {
                index: 0,
                holds: None
            };
            MAX_GUARD_CHECKS + 1
        ];
        let guarded = Command::Guarded {
            checks,
            command: Box::new(Command::Reclaim),
        };
        assert!(matches!(check(&guarded), Err(FsError::InvalidGuard { .. })));
    }
}
