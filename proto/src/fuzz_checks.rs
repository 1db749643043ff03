//! The properties the fuzz targets check, one function per target, shared
//! by the fuzzer (`fuzz/`, which turns on the `fuzz-checks` feature) and by
//! this crate's tests, which feed every committed seed and regression input
//! (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through the
//! same function, so `cargo test` covers what the fuzzer found without a
//! fuzzer. Each function takes arbitrary bytes, must never panic on its
//! own, and panics (an `assert!`) only when a property is broken: that
//! panic is what the fuzzer reports as a crash.
//!
//! Targets: [`record_decode`] (every record type in the envelope),
//! [`path_parse`] ([`FsPath`]), [`json_bodies`] (the JSON bodies the
//! metadata servers accept), [`range_header`] (the gateway's `Range`
//! header) and [`auth_headers`] (the request-signature headers).

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::{self, ReceivedHeaders, ReplayGuard, Secret, SignedParts};
use crate::byte_range::ByteRange;
use crate::chunks::{
    ChunkHealthReply, ChunkHealthRequest, ChunkOrders, ChunkReport, ExistsRequest, LocateReply,
    LocateRequest, PlacementReply, PlacementRequest,
};
use crate::cluster::{AddNodeRequest, ChunkClusterStatus, InitRequest, RemoveNodeRequest};
use crate::namespace::{CommandResult, Proposal, Query, QueryResult};
use crate::path::{validate_component, FsPath, MAX_PATH_BYTES};
use crate::range::{self, Wanted};
use crate::record::{self, Record, HEADER_BYTES, MAGIC};

/// One fuzz target: its name (the directory of its corpus) and its check.
pub struct Target {
    pub name: &'static str,
    pub check: fn(&[u8]),
}

/// Every target, in the order `scripts/fuzz.sh` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "record_decode",
        check: record_decode,
    },
    Target {
        name: "path_parse",
        check: path_parse,
    },
    Target {
        name: "json_bodies",
        check: json_bodies,
    },
    Target {
        name: "range_header",
        check: range_header,
    },
    Target {
        name: "auth_headers",
        check: auth_headers,
    },
];

/// How many record types [`record_decode`] knows (the selector byte of a
/// sealed input is taken modulo this).
const RECORD_TYPES: u8 = 13;

/// The record decoder. `data` is first decoded as a whole envelope as
/// every record type; then, so the fuzzer gets past the checksum, it is
/// read as `[type selector, version, body…]` and the body is sealed in a
/// valid envelope of that type and version and decoded. Anything that
/// decodes must re-encode and decode to the same value.
pub fn record_decode(data: &[u8]) {
    for selector in 0..RECORD_TYPES {
        decode_as(selector, data);
    }
    if let [selector, version, body @ ..] = data {
        let selector = selector % RECORD_TYPES;
        decode_as(selector, &seal(record_kind(selector), *version, body));
    }
}

fn decode_as(selector: u8, bytes: &[u8]) {
    match selector {
        0 => round_trip::<Proposal>(bytes),
        1 => round_trip::<CommandResult>(bytes),
        2 => round_trip::<Query>(bytes),
        3 => round_trip::<QueryResult>(bytes),
        4 => round_trip::<ChunkReport>(bytes),
        5 => round_trip::<ChunkOrders>(bytes),
        6 => round_trip::<PlacementRequest>(bytes),
        7 => round_trip::<PlacementReply>(bytes),
        8 => round_trip::<LocateRequest>(bytes),
        9 => round_trip::<LocateReply>(bytes),
        10 => round_trip::<ChunkHealthRequest>(bytes),
        11 => round_trip::<ChunkHealthReply>(bytes),
        _ => round_trip::<ChunkClusterStatus>(bytes),
    }
}

fn record_kind(selector: u8) -> u8 {
    match selector {
        0 => Proposal::KIND,
        1 => CommandResult::KIND,
        2 => Query::KIND,
        3 => QueryResult::KIND,
        4 => ChunkReport::KIND,
        5 => ChunkOrders::KIND,
        6 => PlacementRequest::KIND,
        7 => PlacementReply::KIND,
        8 => LocateRequest::KIND,
        9 => LocateReply::KIND,
        10 => ChunkHealthRequest::KIND,
        11 => ChunkHealthReply::KIND,
        _ => ChunkClusterStatus::KIND,
    }
}

/// `body` in a valid envelope of `kind` and `version` (the layout in
/// [`crate::record`]); a body too long for the length field is cut.
fn seal(kind: u8, version: u8, body: &[u8]) -> Vec<u8> {
    let body = &body[..body.len().min(u32::MAX as usize)];
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(kind);
    out.push(version);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out[2..8]);
    crc.update(body);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Whatever decodes re-encodes, and the re-encoding decodes to the same
/// value; the envelope checks agree with the decoder.
fn round_trip<T: Record + PartialEq + Debug>(bytes: &[u8]) {
    let Ok(value) = record::decode::<T>(bytes) else {
        return;
    };
    assert!(
        record::verify_checksum(bytes).is_ok(),
        "decoded a record whose checksum does not verify"
    );
    let again = match record::encode(&value) {
        Ok(again) => again,
        Err(e) => panic!("a decoded {value:?} does not re-encode: {e}"),
    };
    assert_eq!(
        record::decode::<T>(&again).as_ref(),
        Ok(&value),
        "re-encoding changed the value"
    );
}

/// The path parser. Whatever parses obeys every path rule and survives
/// its own operations; the parser and the wire (JSON, postcard) agree on
/// what is a path.
pub fn path_parse(data: &[u8]) {
    let parsed = FsPath::from_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let json = serde_json::to_string(text).unwrap_or_default();
        let from_json = serde_json::from_str::<FsPath>(&json);
        assert_eq!(
            from_json.is_ok(),
            parsed.is_ok(),
            "JSON and FsPath::new disagree on {text:?}"
        );
        let bytes = postcard::to_stdvec(text).unwrap_or_default();
        let from_postcard = postcard::from_bytes::<FsPath>(&bytes);
        assert_eq!(
            from_postcard.is_ok(),
            parsed.is_ok(),
            "postcard and FsPath::new disagree on {text:?}"
        );
    }
    let Ok(path) = parsed else {
        return;
    };
    let text = path.as_str();
    assert!(
        text.starts_with('/') && text.len() <= MAX_PATH_BYTES,
        "{text:?}"
    );
    assert_eq!(FsPath::new(text).as_ref(), Ok(&path));
    let mut rebuilt = FsPath::root();
    for name in path.components() {
        assert_eq!(
            validate_component(name),
            Ok(()),
            "component {name:?} of {text:?}"
        );
        rebuilt = match rebuilt.join(name) {
            Ok(next) => next,
            Err(e) => panic!("joining {name:?} while rebuilding {text:?}: {e}"),
        };
        assert!(rebuilt.is_ancestor_or_self_of(&path));
    }
    assert_eq!(rebuilt, path, "components do not join back");
    match path.split_last() {
        None => assert!(path.is_root()),
        Some((parent, name)) => {
            assert_eq!(parent.join(name).as_ref(), Ok(&path));
            assert!(parent.is_ancestor_or_self_of(&path));
            assert!(!path.is_ancestor_or_self_of(&parent));
        }
    }
    let json = serde_json::to_vec(&path).unwrap_or_default();
    assert_eq!(
        serde_json::from_slice::<FsPath>(&json).ok().as_ref(),
        Some(&path)
    );
}

/// The JSON bodies the servers accept: the metadata servers' cluster API
/// (`init`, `add-node`, `remove-node`) and the chunk server's `exists`.
/// Any bytes are parsed or refused without a panic, and what parses
/// serialises and parses back the same.
pub fn json_bodies(data: &[u8]) {
    json_round_trip::<InitRequest>(data);
    json_round_trip::<AddNodeRequest>(data);
    json_round_trip::<RemoveNodeRequest>(data);
    json_round_trip::<ExistsRequest>(data);
}

fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let text = match serde_json::to_vec(&value) {
        Ok(text) => text,
        Err(e) => panic!("a parsed {value:?} does not serialise: {e}"),
    };
    assert_eq!(
        serde_json::from_slice::<T>(&text).ok().as_ref(),
        Some(&value)
    );
}

/// The `Range` header. `data` is an 8-byte little-endian file length
/// followed by the header text, or, when it starts with `b` (`bytes=…`)
/// or is too short, just the header text for a length picked by the
/// input's size from 0, 1, 10 and `u64::MAX` (so tiny files are common). A part lies inside the file and is
/// not empty; only a `bytes=` header can be unsatisfiable.
pub fn range_header(data: &[u8]) {
    let (length, header) = match data.split_first_chunk::<8>() {
        Some((length, rest)) if data.len() > 8 && data[0] != b'b' => {
            (u64::from_le_bytes(*length), rest)
        }
        _ => ([0, 1, 10, u64::MAX][data.len() % 4], data),
    };
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    match range::parse(Some(header), length) {
        Wanted::Whole => {}
        Wanted::Part { start, len } => {
            assert!(len > 0, "an empty part of {header:?}");
            let end = start.checked_add(len);
            assert!(
                end.is_some_and(|end| end <= length),
                "part {start}+{len} of {header:?} passes the end of {length} bytes"
            );
        }
        Wanted::Unsatisfiable => {
            assert!(header.trim().starts_with("bytes="), "{header:?}")
        }
    }
    assert_eq!(range::parse(None, length), Wanted::Whole);
    strict_range(header, length);
}

/// The chunk server's strict rule ([`ByteRange`]) on the same header: a
/// resolved range is non-empty and inside the body.
fn strict_range(header: &str, length: u64) {
    let Some(range) = ByteRange::parse(header) else {
        return;
    };
    if let Some((first, last)) = range.resolve(length) {
        assert!(
            first <= last && last < length,
            "{header:?} resolved to {first}..={last} of {length} bytes"
        );
    }
}

/// The request-signature headers. `data` is split at newlines into
/// method, path, date, nonce, body hash and signature (a missing line is a
/// missing header). Verifying them under a fixed secret never panics and,
/// a forgery being out of reach, accepts only what [`auth::sign`] made.
/// Then the same parts, when well formed, are signed for real: that must
/// verify, and the replay guard must admit it once and refuse it after.
pub fn auth_headers(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or("");
    let path = lines.next().unwrap_or("");
    let headers = ReceivedHeaders {
        date: lines.next(),
        nonce: lines.next(),
        content_sha256: lines.next(),
        signature: lines.next(),
    };
    let secret = Secret::from_bytes([7; auth::SECRET_LEN]);
    let window = auth::DEFAULT_WINDOW_MS;
    let now = headers.date.and_then(|d| d.parse().ok()).unwrap_or(0);
    if let Ok(verified) = auth::verify(
        std::slice::from_ref(&secret),
        method,
        path,
        headers,
        now,
        window,
    ) {
        let parts = SignedParts {
            method,
            path_and_query: path,
            content_sha256: headers.content_sha256.unwrap_or(""),
            date_ms: verified.date_ms,
            nonce: headers.nonce.unwrap_or(""),
        };
        assert_eq!(
            headers.signature.map(str::to_ascii_lowercase),
            Some(auth::sign(&secret, &parts)),
            "a signature nobody made verified"
        );
    }
    let (Some(date), Some(nonce), Some(content_sha256)) =
        (headers.date, headers.nonce, headers.content_sha256)
    else {
        return;
    };
    let Ok(date_ms) = date.parse::<u64>() else {
        return;
    };
    let parts = SignedParts {
        method,
        path_and_query: path,
        content_sha256,
        date_ms,
        nonce,
    };
    let signature = auth::sign(&secret, &parts);
    let signed = ReceivedHeaders {
        signature: Some(&signature),
        ..headers
    };
    let Ok(verified) = auth::verify(&[secret], method, path, signed, date_ms, window) else {
        return;
    };
    assert_eq!(verified.date_ms, date_ms);
    let mut guard = ReplayGuard::new(window, 4);
    assert_eq!(
        guard.admit(&verified, date_ms),
        Ok(()),
        "a fresh request was refused"
    );
    assert!(
        guard.admit(&verified, date_ms).is_err(),
        "a replay was admitted"
    );
}

#[cfg(test)]
mod tests;
