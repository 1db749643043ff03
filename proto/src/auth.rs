//! How one ToastyFS process proves to another that it holds the cluster
//! secret: the signature scheme of node-to-node requests (Raft RPCs,
//! chunk server reports, cluster management), and the replay guard a
//! receiver keeps.
//!
//! A signed request carries four headers: the sender's clock
//! ([`DATE_HEADER`], Unix milliseconds), a random nonce
//! ([`NONCE_HEADER`]), the SHA-256 of its body ([`CONTENT_SHA256_HEADER`],
//! or [`UNSIGNED_PAYLOAD`] for a streamed body whose content authenticates
//! itself, as a chunk does by its hash) and an HMAC-SHA256 under the
//! secret ([`SIGNATURE_HEADER`]) of [`canonical`]: the scheme, method,
//! path and query, body hash, date and nonce, one per line.
//!
//! A receiver accepts a request when its signature verifies under one of
//! the secrets it accepts (two during a rotation), its date is within
//! the window of the receiver's clock, its body hashes to what it claims
//! and its nonce was not seen before ([`ReplayGuard`]). The guard's
//! memory is bounded: when full, it forgets its oldest nonces and from
//! then on refuses anything not newer than them, so a forgotten nonce can
//! never be replayed. Pure: the caller passes the time in.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The sender's clock when it signed, in Unix milliseconds.
pub const DATE_HEADER: &str = "x-toastyfs-date";
/// 16 random bytes in hex, never sent twice.
pub const NONCE_HEADER: &str = "x-toastyfs-nonce";
/// The body's SHA-256 in hex, or [`UNSIGNED_PAYLOAD`].
pub const CONTENT_SHA256_HEADER: &str = "x-toastyfs-content-sha256";
/// The HMAC-SHA256 of [`canonical`] in hex.
pub const SIGNATURE_HEADER: &str = "x-toastyfs-signature";
/// The body is not covered by the signature (a streamed chunk upload,
/// which the receiver checks against its hash anyway).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Names the scheme in the signed text, so a signature can never be
/// taken for one of another scheme or version.
pub const SCHEME: &str = "TOASTYFS-HMAC-SHA256-V1";
/// Bytes in a cluster secret.
pub const SECRET_LEN: usize = 32;

/// How far a request's date may be from the receiver's clock.
pub const DEFAULT_WINDOW_MS: u64 = 30_000;
/// How many nonces a receiver remembers at most (at 16 bytes and set
/// overhead, a few MiB): about 3,000 requests a second over the window.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

type HmacSha256 = Hmac<Sha256>;

/// The cluster secret: 32 random bytes, written as 64 hex digits. Its
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; SECRET_LEN]);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a secret's text is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a cluster secret is 64 hex digits; this text has {0} characters")]
    Length(usize),
    #[error("a cluster secret is hex digits only (0-9, a-f)")]
    NotHex,
}

impl Secret {
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Secret {
        Secret(bytes)
    }

    /// Parses the file format: 64 hex digits, surrounding whitespace
    /// ignored.
    pub fn from_hex(text: &str) -> Result<Secret, SecretError> {
        let text = text.trim();
        if text.len() != SECRET_LEN * 2 {
            return Err(SecretError::Length(text.len()));
        }
        let mut bytes = [0u8; SECRET_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| SecretError::NotHex)?;
        Ok(Secret(bytes))
    }

    /// The file format (one line).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub(crate) fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length; 32 bytes is always accepted.
        <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }
}

/// The SHA-256 of a body, as [`CONTENT_SHA256_HEADER`] carries it.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// What a signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParts<'a> {
    pub method: &'a str,
    /// The path and query exactly as sent (`/raft/append`).
    pub path_and_query: &'a str,
    pub content_sha256: &'a str,
    pub date_ms: u64,
    pub nonce: &'a str,
}

/// The signed text: the scheme and every part, one per line.
pub fn canonical(parts: &SignedParts<'_>) -> String {
    format!(
        "{SCHEME}\n{}\n{}\n{}\n{}\n{}",
        parts.method, parts.path_and_query, parts.content_sha256, parts.date_ms, parts.nonce
    )
}

/// The signature of `parts` under `secret`, in hex.
pub fn sign(secret: &Secret, parts: &SignedParts<'_>) -> String {
    let mut mac = secret.mac();
    mac.update(canonical(parts).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Why a request was refused. Every variant is answered 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the request is not signed: header {0} is missing")]
    Missing(&'static str),
    #[error("header {0} is malformed")]
    Malformed(&'static str),
    #[error("the request's date is {skew_ms} ms away from this node's clock (at most {window_ms} ms allowed): a stale or replayed request, or a clock out of sync")]
    Stale { skew_ms: u64, window_ms: u64 },
    #[error(
        "the signature does not verify under the cluster secret (a wrong or rotated-out secret?)"
    )]
    BadSignature,
    #[error("the body does not hash to the signed {CONTENT_SHA256_HEADER}")]
    BodyMismatch,
    #[error("this route needs its body signed, not {UNSIGNED_PAYLOAD}")]
    UnsignedBody,
    #[error("this nonce was seen before: a replayed request")]
    Replayed,
}

impl AuthError {
    /// A short label for the refusal metric.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing(_) => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::Stale { .. } => "stale",
            AuthError::BadSignature => "bad_signature",
            AuthError::BodyMismatch => "body_mismatch",
            AuthError::UnsignedBody => "unsigned_body",
            AuthError::Replayed => "replayed",
        }
    }
}

/// The four signature headers as received (`None`: absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceivedHeaders<'a> {
    pub date: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub content_sha256: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// The four signature headers, looked up by name with `header`.
pub fn received<'a>(header: impl Fn(&str) -> Option<&'a str>) -> ReceivedHeaders<'a> {
    ReceivedHeaders {
        date: header(DATE_HEADER),
        nonce: header(NONCE_HEADER),
        content_sha256: header(CONTENT_SHA256_HEADER),
        signature: header(SIGNATURE_HEADER),
    }
}

/// A request whose signature verified: what is left to check, once its
/// body is in, before it is admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub date_ms: u64,
    pub nonce: [u8; 16],
    /// The body's signed hash; `None` for [`UNSIGNED_PAYLOAD`].
    pub content_sha256: Option<String>,
}

impl Verified {
    /// Whether `body` is the body that was signed.
    pub fn check_body(&self, body: &[u8]) -> Result<(), AuthError> {
        match &self.content_sha256 {
            None => Err(AuthError::UnsignedBody),
            Some(claimed) if *claimed == body_digest(body) => Ok(()),
            Some(_) => Err(AuthError::BodyMismatch),
        }
    }
}

/// Checks the signature and date of a request against the secrets a
/// receiver accepts; the body and the nonce are checked after
/// ([`Verified::check_body`], [`ReplayGuard::admit`]), so a forged
/// request never costs a body read or a slot in the replay guard.
pub fn verify(
    accepted: &[Secret],
    method: &str,
    path_and_query: &str,
    headers: ReceivedHeaders<'_>,
    now_ms: u64,
    window_ms: u64,
) -> Result<Verified, AuthError> {
    let date = headers.date.ok_or(AuthError::Missing(DATE_HEADER))?;
    let nonce_text = headers.nonce.ok_or(AuthError::Missing(NONCE_HEADER))?;
    let content_sha256 = headers
        .content_sha256
        .ok_or(AuthError::Missing(CONTENT_SHA256_HEADER))?;
    let signature = headers
        .signature
        .ok_or(AuthError::Missing(SIGNATURE_HEADER))?;
    let date_ms: u64 = date
        .parse()
        .map_err(|_| AuthError::Malformed(DATE_HEADER))?;
    let mut nonce = [0u8; 16];
    hex::decode_to_slice(nonce_text, &mut nonce).map_err(|_| AuthError::Malformed(NONCE_HEADER))?;
    let signed_body = content_sha256 != UNSIGNED_PAYLOAD;
    if signed_body && (content_sha256.len() != 64 || hex::decode(content_sha256).is_err()) {
        return Err(AuthError::Malformed(CONTENT_SHA256_HEADER));
    }
    let mut tag = [0u8; 32];
    hex::decode_to_slice(signature, &mut tag)
        .map_err(|_| AuthError::Malformed(SIGNATURE_HEADER))?;
    let parts = SignedParts {
        method,
        path_and_query,
        content_sha256,
        date_ms,
        nonce: nonce_text,
    };
    let text = canonical(&parts);
    let verifies = accepted.iter().any(|secret| {
        let mut mac = secret.mac();
        mac.update(text.as_bytes());
        mac.verify_slice(&tag).is_ok()
    });
    if !verifies {
        return Err(AuthError::BadSignature);
    }
    let skew_ms = now_ms.abs_diff(date_ms);
    if skew_ms > window_ms {
        return Err(AuthError::Stale { skew_ms, window_ms });
    }
    Ok(Verified {
        date_ms,
        nonce,
        content_sha256: signed_body.then(|| content_sha256.to_ascii_lowercase()),
    })
}

/// A receiver's whole check of signed requests: the secrets it accepts,
/// its window and its replay guard. Shared by every server.
#[derive(Debug)]
pub struct Verifier {
    accepted: Vec<Secret>,
    window_ms: u64,
    replay: std::sync::Mutex<ReplayGuard>,
}

impl Verifier {
    /// Accepts `accepted` (two during a rotation) within the default
    /// window and replay capacity.
    pub fn new(accepted: Vec<Secret>) -> Verifier {
        Verifier {
            accepted,
            window_ms: DEFAULT_WINDOW_MS,
            replay: std::sync::Mutex::new(ReplayGuard::new(
                DEFAULT_WINDOW_MS,
                DEFAULT_REPLAY_CAPACITY,
            )),
        }
    }

    pub fn accepted(&self) -> &[Secret] {
        &self.accepted
    }

    /// Checks signature, date, body and nonce, and admits the nonce once.
    /// `body` is `None` on routes whose body authenticates itself (a
    /// chunk, named by its hash): its signed hash is then not checked.
    pub fn check(
        &self,
        method: &str,
        path_and_query: &str,
        headers: ReceivedHeaders<'_>,
        body: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<(), AuthError> {
        let verified = verify(
            &self.accepted,
            method,
            path_and_query,
            headers,
            now_ms,
            self.window_ms,
        )?;
        if let Some(body) = body {
            verified.check_body(body)?;
        }
        self.replay
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(&verified, now_ms)
    }
}

/// The nonces a receiver saw within the window, bounded in memory.
#[derive(Debug)]
pub struct ReplayGuard {
    window_ms: u64,
    capacity: usize,
    /// (date, nonce) in date order, to forget the oldest first.
    by_date: BTreeSet<(u64, [u8; 16])>,
    seen: HashSet<[u8; 16]>,
    /// Requests dated at or before this were forgotten (or may have
    /// been): refused as stale.
    floor_ms: u64,
}

impl ReplayGuard {
    pub fn new(window_ms: u64, capacity: usize) -> ReplayGuard {
        ReplayGuard {
            window_ms,
            capacity: capacity.max(1),
            by_date: BTreeSet::new(),
            seen: HashSet::new(),
            floor_ms: 0,
        }
    }

    /// Admits a verified request once: a nonce seen before is a replay.
    pub fn admit(&mut self, request: &Verified, now_ms: u64) -> Result<(), AuthError> {
        self.forget_before(now_ms.saturating_sub(self.window_ms));
        if request.date_ms <= self.floor_ms && self.floor_ms > 0 {
            return Err(AuthError::Stale {
                skew_ms: now_ms.abs_diff(request.date_ms),
                window_ms: now_ms.saturating_sub(self.floor_ms),
            });
        }
        if !self.seen.insert(request.nonce) {
            return Err(AuthError::Replayed);
        }
        self.by_date.insert((request.date_ms, request.nonce));
        while self.by_date.len() > self.capacity {
            if let Some((date, nonce)) = self.by_date.pop_first() {
                self.seen.remove(&nonce);
                self.floor_ms = self.floor_ms.max(date);
            }
        }
        Ok(())
    }

    /// Forgets nonces dated before `cutoff_ms`: the window refuses those
    /// dates anyway.
    fn forget_before(&mut self, cutoff_ms: u64) {
        while let Some(&(date, nonce)) = self.by_date.first() {
            if date >= cutoff_ms {
                break;
            }
            self.by_date.pop_first();
            self.seen.remove(&nonce);
        }
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests;
