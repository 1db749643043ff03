//! Chunk tokens: how a chunk server knows a client may read or upload
//! chunks without knowing the client's key (as HDFS block tokens do).
//!
//! The metadata node that answers a placement (write) or locate (read)
//! request of an authenticated caller puts a token in the answer's
//! [`TOKEN_HEADER`]; the client sends it with every chunk request it makes
//! until it expires. A token names the key it was minted for, the access
//! it grants and when it expires, and carries an HMAC-SHA256 of those
//! under the cluster secret, which every metadata node and chunk server
//! holds. A chunk server refuses an expired token, one whose MAC does not
//! verify, a read token on an upload, and any token of a key the leader
//! told it was revoked (`ChunkOrders::revoked_keys`, every report). Pure:
//! the caller passes the time in.

use std::fmt;
use std::str::FromStr;

use hmac::Mac;

use crate::auth::Secret;
use crate::client_key::{Access, KeyId};

/// The header a token travels in, on answers and on chunk requests.
pub const TOKEN_HEADER: &str = "x-toastyfs-chunk-token";
/// How long a token is valid after it is minted.
pub const TOKEN_LIFETIME_MS: u64 = 5 * 60_000;
/// Clock difference between metadata nodes and chunk servers tolerated
/// when checking expiry.
pub const CLOCK_SLACK_MS: u64 = 30_000;
/// How long the leader keeps telling chunk servers of a revoked key: past
/// this, every token minted for it has expired.
pub const REVOCATION_NOTICE_MS: u64 = TOKEN_LIFETIME_MS + 2 * CLOCK_SLACK_MS;

const PREFIX: &str = "ct1";
const DOMAIN: &str = "TOASTYFS-CHUNK-TOKEN-V1";

/// What a token allows, and for whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkGrant {
    /// The client key it was minted for; `None`: for a holder of the
    /// cluster secret (an operator's CLI, the gateway), never revoked.
    pub key: Option<KeyId>,
    pub access: Access,
    pub expires_ms: u64,
}

/// A token: a grant and its MAC.
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkToken {
    pub grant: ChunkGrant,
    mac: [u8; 32],
}

impl fmt::Debug for ChunkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkToken({:?})", self.grant)
    }
}

/// Why a token was refused. Every variant is answered 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed chunk token")]
    Malformed,
    #[error("the chunk token does not verify under the cluster secret")]
    BadMac,
    #[error("the chunk token expired {ago_ms} ms ago: ask the metadata service again")]
    Expired { ago_ms: u64 },
    #[error("the chunk token was minted for key {0}, which is revoked")]
    Revoked(KeyId),
    #[error("a read-only chunk token cannot upload or change chunks")]
    ReadOnly,
}

impl TokenError {
    /// A short label for the refusal metric.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed_token",
            TokenError::BadMac => "bad_token",
            TokenError::Expired { .. } => "expired_token",
            TokenError::Revoked(_) => "revoked_key",
            TokenError::ReadOnly => "read_only",
        }
    }
}

fn access_letter(access: Access) -> &'static str {
    match access {
        Access::ReadOnly => "r",
        Access::ReadWrite => "w",
    }
}

fn compute_mac(secret: &Secret, grant: &ChunkGrant) -> [u8; 32] {
    let mut mac = secret.mac();
    let key = grant.key.map_or(0, |k| k.0);
    mac.update(
        format!(
            "{DOMAIN}\n{key}\n{}\n{}",
            access_letter(grant.access),
            grant.expires_ms
        )
        .as_bytes(),
    );
    mac.finalize().into_bytes().into()
}

impl ChunkToken {
    /// A token for `grant`, under `secret`.
    pub fn mint(secret: &Secret, grant: ChunkGrant) -> ChunkToken {
        ChunkToken {
            mac: compute_mac(secret, &grant),
            grant,
        }
    }

    /// The grant, if the MAC verifies under one of `accepted`, the token
    /// has not expired at `now_ms` and it allows `access`.
    pub fn verify(
        &self,
        accepted: &[Secret],
        now_ms: u64,
        access: Access,
    ) -> Result<ChunkGrant, TokenError> {
        let verifies = accepted.iter().any(|secret| {
            let expected = compute_mac(secret, &self.grant);
            expected
                .iter()
                .zip(&self.mac)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        });
        if !verifies {
            return Err(TokenError::BadMac);
        }
        let deadline = self.grant.expires_ms.saturating_add(CLOCK_SLACK_MS);
        if now_ms > deadline {
            return Err(TokenError::Expired {
                ago_ms: now_ms - self.grant.expires_ms,
            });
        }
        if access.may_write() && !self.grant.access.may_write() {
            return Err(TokenError::ReadOnly);
        }
        Ok(self.grant)
    }
}

impl fmt::Display for ChunkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}.{}.{}.{}.{}",
            self.grant.key.map_or(0, |k| k.0),
            access_letter(self.grant.access),
            self.grant.expires_ms,
            hex::encode(self.mac)
        )
    }
}

impl FromStr for ChunkToken {
    type Err = TokenError;

    fn from_str(text: &str) -> Result<ChunkToken, TokenError> {
        let parts: Vec<&str> = text.splitn(6, '.').collect();
        let [PREFIX, key, access, expires, mac] = parts[..] else {
            return Err(TokenError::Malformed);
        };
        let key = key.parse::<u64>().map_err(|_| TokenError::Malformed)?;
        let access = match access {
            "r" => Access::ReadOnly,
            "w" => Access::ReadWrite,
            _ => return Err(TokenError::Malformed),
        };
        let expires_ms = expires.parse().map_err(|_| TokenError::Malformed)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(mac, &mut bytes).map_err(|_| TokenError::Malformed)?;
        Ok(ChunkToken {
            grant: ChunkGrant {
                key: (key != 0).then_some(KeyId(key)),
                access,
                expires_ms,
            },
            mac: bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> Secret {
        Secret::from_bytes([byte; 32])
    }

    fn grant(access: Access) -> ChunkGrant {
        ChunkGrant {
            key: Some(KeyId(7)),
            access,
            expires_ms: 1_000_000,
        }
    }

    #[test]
    fn a_minted_token_round_trips_and_verifies() {
        let token = ChunkToken::mint(&secret(1), grant(Access::ReadWrite));
        let parsed: ChunkToken = token.to_string().parse().unwrap();
        assert_eq!(parsed, token);
        let granted = parsed
            .verify(&[secret(2), secret(1)], 999_000, Access::ReadWrite)
            .unwrap();
        assert_eq!(granted.key, Some(KeyId(7)));
    }

    #[test]
    fn wrong_secret_expiry_and_access_are_refused() {
        let token = ChunkToken::mint(&secret(1), grant(Access::ReadOnly));
        assert_eq!(
            token.verify(&[secret(2)], 0, Access::ReadOnly),
            Err(TokenError::BadMac)
        );
        assert!(matches!(
            token.verify(
                &[secret(1)],
                1_000_000 + CLOCK_SLACK_MS + 1,
                Access::ReadOnly
            ),
            Err(TokenError::Expired { .. })
        ));
        assert_eq!(
            token.verify(&[secret(1)], 0, Access::ReadWrite),
            Err(TokenError::ReadOnly)
        );
    }

    #[test]
    fn a_tampered_token_does_not_verify() {
        let token = ChunkToken::mint(&secret(1), grant(Access::ReadOnly)).to_string();
        let forged = token.replacen(".r.", ".w.", 1);
        let forged: ChunkToken = forged.parse().unwrap();
        assert_eq!(
            forged.verify(&[secret(1)], 0, Access::ReadWrite),
            Err(TokenError::BadMac)
        );
        for bad in [
            "",
            "ct1",
            "ct1.1.x.5.00",
            "ct2.1.r.5.00",
            &format!("{token}.x"),
        ] {
            assert!(bad.parse::<ChunkToken>().is_err(), "{bad}");
        }
    }
}
