//! Client credentials: the keys an operator creates with `toastyfs
//! cluster key create` and hands to people and programs, and what each
//! may do.
//!
//! A key is `tfk1.<id>.<secret>`: the id the cluster assigned (the log
//! index of the command that created it) and 32 random bytes in hex. The
//! replicated state keeps only the SHA-256 of the secret ([`secret_hash`]),
//! so a copy of a node's data directory does not hand out working keys.
//! A client sends its key as a bearer token (`Authorization: Bearer …`);
//! with TLS that is as safe as any API key, without it anyone on the path
//! can copy it (docs/operations.md, "Security model").

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The prefix (and format version) of every client key.
pub const KEY_PREFIX: &str = "tfk1";
/// Bytes of randomness in a key's secret.
pub const KEY_SECRET_LEN: usize = 32;
/// Longest name a key may be given.
pub const MAX_KEY_NAME: usize = 128;
/// Most keys one cluster holds (created and not revoked).
pub const MAX_KEYS: u64 = 10_000;

/// A key's id: the log index of the command that created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyId(pub u64);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Access {
    /// Stat, list, read files and chunks; nothing that changes anything.
    ReadOnly,
    /// Everything a read-only key may, and change the namespace (create,
    /// write, delete, rename). Never cluster changes: those need the
    /// cluster secret.
    ReadWrite,
}

impl Access {
    pub fn may_write(self) -> bool {
        self == Access::ReadWrite
    }

    /// The name the CLI and the JSON answers use.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ReadOnly => "read-only",
            Access::ReadWrite => "read-write",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Access {
    type Err = String;

    fn from_str(text: &str) -> Result<Access, String> {
        match text {
            "read-only" | "ro" => Ok(Access::ReadOnly),
            "read-write" | "rw" => Ok(Access::ReadWrite),
            other => Err(format!(
                "unknown access {other:?}: expected read-only (ro) or read-write (rw)"
            )),
        }
    }
}

/// What the state keeps of a key, and what `cluster key list` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: KeyId,
    pub name: String,
    pub access: Access,
    /// When the leader stamped the creating command (Unix ms).
    pub created_ms: u64,
    /// When it was revoked; `None` while it is valid.
    pub revoked_ms: Option<u64>,
}

/// Who a metadata node took the caller for (`GET /v1/whoami`, JSON): a
/// client key and its access, or (`key: None`) a holder of the cluster
/// secret or anyone, on a cluster without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whoami {
    pub key: Option<KeyId>,
    pub access: Access,
}

/// The SHA-256 of a key's secret: all the cluster keeps of it.
pub fn secret_hash(secret: &[u8; KEY_SECRET_LEN]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// A whole client key: id and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKey {
    pub id: KeyId,
    pub secret: [u8; KEY_SECRET_LEN],
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({KEY_PREFIX}.{}.<redacted>)", self.id)
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}.{}.{}", self.id, hex::encode(self.secret))
    }
}

/// Why a text is not a client key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a ToastyFS client key (expected {KEY_PREFIX}.<id>.<64 hex digits>)")]
pub struct KeyFormatError;

impl FromStr for ClientKey {
    type Err = KeyFormatError;

    fn from_str(text: &str) -> Result<ClientKey, KeyFormatError> {
        let mut parts = text.trim().split('.');
        let (Some(KEY_PREFIX), Some(id), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyFormatError);
        };
        let id = id.parse::<u64>().map_err(|_| KeyFormatError)?;
        let mut bytes = [0u8; KEY_SECRET_LEN];
        hex::decode_to_slice(secret, &mut bytes).map_err(|_| KeyFormatError)?;
        Ok(ClientKey {
            id: KeyId(id),
            secret: bytes,
        })
    }
}

impl ClientKey {
    /// Whether `hash` (from the state) is this key's secret hash, compared
    /// in constant time.
    pub fn matches(&self, hash: &[u8; 32]) -> bool {
        let ours = secret_hash(&self.secret);
        ours.iter().zip(hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// The `Authorization` header value that presents this key.
    pub fn bearer(&self) -> String {
        format!("Bearer {self}")
    }
}

/// The key in an `Authorization: Bearer …` (or Basic, password part)
/// header value; `None` when the header holds no key at all.
pub fn from_authorization(value: &str) -> Option<Result<ClientKey, KeyFormatError>> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.parse());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASE64.decode(rest.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.parse());
    }
    None
}

#[cfg(test)]
mod tests;
