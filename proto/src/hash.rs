//! `ChunkHash`: the SHA-256 name of a chunk's bytes.
//!
//! Chunks are content-addressed: the hash is the chunk's identity on every
//! chunk server, in every file's chunk list and in every reference count.
//! Displayed and parsed as 64 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The SHA-256 of a chunk's bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChunkHash(pub [u8; 32]);

impl ChunkHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> ChunkHash {
        ChunkHash(Sha256::digest(bytes).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Builds a hash from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<ChunkHash> {
        bytes.try_into().ok().map(ChunkHash)
    }
}

/// A [`ChunkHash`] computed piece by piece, as a streamed body arrives.
#[derive(Clone, Default)]
pub struct ChunkHasher(Sha256);

impl ChunkHasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> ChunkHash {
        ChunkHash(self.0.finalize().into())
    }
}

impl fmt::Display for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkHash({})", hex::encode(&self.0[..6]))
    }
}

/// Why a string is not a chunk hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkHashParseError {
    #[error("a chunk hash is 64 hex digits, got {0} characters")]
    WrongLength(usize),
    #[error("a chunk hash is hex digits only (0-9, a-f)")]
    NotHex,
}

impl FromStr for ChunkHash {
    type Err = ChunkHashParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(ChunkHashParseError::WrongLength(s.len()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ChunkHashParseError::NotHex)?;
        Ok(ChunkHash(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_in_pieces_is_the_hash_of_the_whole() {
        let mut hasher = ChunkHasher::default();
        hasher.update(b"hello, ");
        hasher.update(b"world");
        assert_eq!(hasher.finish(), ChunkHash::of(b"hello, world"));
    }

    #[test]
    fn empty_input_hashes_to_the_known_sha256() {
        let h = ChunkHash::of(b"");
        assert_eq!(
            h.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn display_and_parse_round_trip() {
        let h = ChunkHash::of(b"toasty");
        assert_eq!(h.to_string().parse::<ChunkHash>(), Ok(h));
        assert_eq!(h.to_string().to_uppercase().parse::<ChunkHash>(), Ok(h));
    }

    #[test]
    fn parse_rejects_bad_text() {
        assert_eq!(
            "abc".parse::<ChunkHash>(),
            Err(ChunkHashParseError::WrongLength(3))
        );
        let bad = "g".repeat(64);
        assert_eq!(bad.parse::<ChunkHash>(), Err(ChunkHashParseError::NotHex));
    }
}
