//! The record envelope: the one framing for everything ToastyFS encodes,
//! on a wire or on a disk.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "TF"
//! 2       1     record kind (which type the body is)
//! 3       1     format version of that kind
//! 4       4     body length, little-endian u32
//! 8       4     CRC32 (IEEE, crc32fast) of bytes 2..8 followed by the body, little-endian
//! 12      n     body: postcard encoding of the record
//! ```
//!
//! Decoding checks every field and the length bound *before* it allocates
//! or parses, and rejects trailing bytes, so a torn, truncated, corrupt or
//! foreign record is always a typed [`RecordError`], never a panic or a
//! silently wrong value. Postcard is a documented, endian-independent
//! format (varints, length-prefixed sequences).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The envelope's first two bytes.
pub const MAGIC: [u8; 2] = *b"TF";
/// Size of the fixed header in front of every body.
pub const HEADER_BYTES: usize = 12;
/// No record of any kind may be larger than this (64 MiB).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// A type that travels inside the envelope. Each has its own kind byte, a
/// format version and a size bound.
pub trait Record: Serialize + DeserializeOwned {
    /// Distinct for every record type (see the table in docs/architecture.md).
    const KIND: u8;
    /// Bumped when the body's encoding changes; a body of any other
    /// version is handed to [`Record::upgrade`].
    const VERSION: u8 = 1;
    /// Largest body accepted for this kind.
    const MAX_BODY_BYTES: usize = MAX_RECORD_BYTES;

    /// The one path from a body in another format `version` to today's
    /// value: [`decode`] calls it (after checking framing, checksum and
    /// kind) for every version other than [`Record::VERSION`]. An
    /// implementation decodes the old body with [`decode_body`] into the
    /// old type and converts it; the default knows no other version.
    fn upgrade(version: u8, body: &[u8]) -> Result<Self, RecordError> {
        let _ = body;
        Err(RecordError::UnknownVersion {
            kind: Self::KIND,
            found: version,
            supported: Self::VERSION,
        })
    }
}

/// Any serde type framed as a record of kind `KIND`: for types defined
/// outside ToastyFS (Raft messages, log entries) that travel in the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Framed<const KIND: u8, T>(pub T);

impl<const KIND: u8, T: Serialize + DeserializeOwned> Record for Framed<KIND, T> {
    const KIND: u8 = KIND;
}

impl<const KIND: u8, T: Clone> Framed<KIND, T> {
    pub fn from_ref(value: &T) -> Self {
        Framed(value.clone())
    }
}

impl<const KIND: u8, T> Framed<KIND, T> {
    pub fn from_owned(value: T) -> Self {
        Framed(value)
    }
}

/// Why bytes could not be decoded as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record truncated: need {needed} bytes, have {have}")]
    Truncated { needed: usize, have: usize },
    #[error("not a ToastyFS record (bad magic bytes {found:02x?})")]
    BadMagic { found: [u8; 2] },
    #[error("expected a record of kind {expected}, found kind {found}")]
    WrongKind { expected: u8, found: u8 },
    #[error("record kind {kind} has format version {found}, this build reads version {supported}")]
    UnknownVersion { kind: u8, found: u8, supported: u8 },
    #[error("record body of {len} bytes exceeds the {max}-byte limit for kind {kind}")]
    TooLarge { kind: u8, len: usize, max: usize },
    #[error("record checksum mismatch (stored {stored:08x}, computed {computed:08x}): the record is corrupt")]
    BadChecksum { stored: u32, computed: u32 },
    #[error("{trailing} unexpected bytes after the record")]
    TrailingBytes { trailing: usize },
    #[error("record body is malformed: {0}")]
    Malformed(String),
    #[error("record could not be encoded: {0}")]
    Encode(String),
}

/// Encodes `record` in the envelope.
pub fn encode<T: Record>(record: &T) -> Result<Vec<u8>, RecordError> {
    let mut out = vec![0u8; HEADER_BYTES];
    let body = postcard::to_extend(record, std::mem::take(&mut out))
        .map_err(|e| RecordError::Encode(e.to_string()))?;
    out = body;
    finish_header(T::KIND, T::VERSION, T::MAX_BODY_BYTES, &mut out)?;
    Ok(out)
}

fn finish_header(kind: u8, version: u8, max: usize, out: &mut [u8]) -> Result<(), RecordError> {
    let len = out.len() - HEADER_BYTES;
    if len > max {
        return Err(RecordError::TooLarge { kind, len, max });
    }
    out[0..2].copy_from_slice(&MAGIC);
    out[2] = kind;
    out[3] = version;
    out[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    let crc = checksum(&out[2..8], &out[HEADER_BYTES..]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn checksum(header: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(body);
    hasher.finalize()
}

/// The header fields of an envelope, checked for magic, length and bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub version: u8,
    pub body_len: usize,
}

/// Reads and checks the fixed header; `max_body` bounds the length field.
pub fn read_header(bytes: &[u8], max_body: usize) -> Result<Header, RecordError> {
    if bytes.len() < HEADER_BYTES {
        return Err(RecordError::Truncated {
            needed: HEADER_BYTES,
            have: bytes.len(),
        });
    }
    let found = [bytes[0], bytes[1]];
    if found != MAGIC {
        return Err(RecordError::BadMagic { found });
    }
    let kind = bytes[2];
    let version = bytes[3];
    let body_len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if body_len > max_body {
        return Err(RecordError::TooLarge {
            kind,
            len: body_len,
            max: max_body,
        });
    }
    Ok(Header {
        kind,
        version,
        body_len,
    })
}

/// Checks the framing and checksum of one envelope without decoding its
/// body (for verifying stored records of any kind).
pub fn verify_checksum(bytes: &[u8]) -> Result<(), RecordError> {
    let header = read_header(bytes, MAX_RECORD_BYTES)?;
    let needed = HEADER_BYTES + header.body_len;
    if bytes.len() != needed {
        return Err(RecordError::Truncated {
            needed,
            have: bytes.len(),
        });
    }
    let stored = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let computed = checksum(&bytes[2..8], &bytes[HEADER_BYTES..]);
    if stored != computed {
        return Err(RecordError::BadChecksum { stored, computed });
    }
    Ok(())
}

/// Decodes one record of type `T`, checking everything; `bytes` must hold
/// exactly one envelope.
pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, RecordError> {
    let header = read_header(bytes, T::MAX_BODY_BYTES)?;
    let needed = HEADER_BYTES + header.body_len;
    if bytes.len() < needed {
        return Err(RecordError::Truncated {
            needed,
            have: bytes.len(),
        });
    }
    if bytes.len() > needed {
        return Err(RecordError::TrailingBytes {
            trailing: bytes.len() - needed,
        });
    }
    let stored = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let computed = checksum(&bytes[2..8], &bytes[HEADER_BYTES..]);
    if stored != computed {
        return Err(RecordError::BadChecksum { stored, computed });
    }
    if header.kind != T::KIND {
        return Err(RecordError::WrongKind {
            expected: T::KIND,
            found: header.kind,
        });
    }
    let body = &bytes[HEADER_BYTES..];
    if header.version != T::VERSION {
        return T::upgrade(header.version, body);
    }
    decode_body(body)
}

/// Parses a record body (postcard, nothing after it): for today's version
/// in [`decode`], and for an older body type in a [`Record::upgrade`].
pub fn decode_body<B: DeserializeOwned>(body: &[u8]) -> Result<B, RecordError> {
    let (value, rest) =
        postcard::take_from_bytes::<B>(body).map_err(|e| RecordError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(RecordError::TrailingBytes {
            trailing: rest.len(),
        });
    }
    Ok(value)
}

/// Asserts that `value` round-trips and that every truncation and every
/// single-bit flip of its encoding is rejected. For tests of every record
/// type, in this crate and the ones above it.
#[doc(hidden)]
pub fn assert_tamper_evident<T: Record + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = encode(value).expect("encodes");
    assert_eq!(&decode::<T>(&bytes).expect("decodes"), value);
    for cut in 0..bytes.len() {
        assert!(
            decode::<T>(&bytes[..cut]).is_err(),
            "truncation to {cut} bytes accepted"
        );
    }
    let mut flipped = bytes.clone();
    for bit in 0..bytes.len() * 8 {
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(decode::<T>(&flipped).is_err(), "flip of bit {bit} accepted");
        flipped[bit / 8] ^= 1 << (bit % 8);
    }
}

/// A sample value of some record type under a fixture name, type-erased so
/// samples of different types share one list: the golden fixtures and the
/// tamper-evidence checks then cover the same values. For tests, in this
/// crate and the ones above it.
#[doc(hidden)]
pub struct Sample {
    pub name: String,
    record: Box<dyn ErasedSample>,
}

trait ErasedSample {
    fn encode(&self) -> Result<Vec<u8>, RecordError>;
    fn decodes_back(&self, bytes: &[u8]) -> Result<(), String>;
    fn assert_tamper_evident(&self);
}

impl<T: Record + PartialEq + std::fmt::Debug> ErasedSample for T {
    fn encode(&self) -> Result<Vec<u8>, RecordError> {
        encode(self)
    }

    fn decodes_back(&self, bytes: &[u8]) -> Result<(), String> {
        match decode::<T>(bytes) {
            Ok(value) if value == *self => Ok(()),
            Ok(value) => Err(format!("decodes to {value:?}, not to the sample {self:?}")),
            Err(e) => Err(format!("does not decode: {e}")),
        }
    }

    fn assert_tamper_evident(&self) {
        assert_tamper_evident(self)
    }
}

impl Sample {
    pub fn new<T: Record + PartialEq + std::fmt::Debug + 'static>(
        name: impl Into<String>,
        value: T,
    ) -> Sample {
        Sample {
            name: name.into(),
            record: Box::new(value),
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        self.record.encode()
    }

    /// Whether `bytes` decode to this sample.
    pub fn decodes_back(&self, bytes: &[u8]) -> Result<(), String> {
        self.record.decodes_back(bytes)
    }

    /// [`assert_tamper_evident`] on the sample.
    pub fn assert_tamper_evident(&self) {
        self.record.assert_tamper_evident()
    }

    /// The text of this sample's golden fixture: its encoding in lowercase
    /// hex and a newline.
    pub fn golden_text(&self) -> Result<String, RecordError> {
        Ok(format!("{}\n", hex::encode(self.encode()?)))
    }
}

/// Checks golden fixtures against samples: `fixtures` maps a fixture name
/// to its text (hex, surrounding whitespace ignored). Every sample must
/// have a distinct name and a fixture equal to its encoding that decodes
/// back to it, and every fixture a sample. Returns the problems found.
/// The caller does the file I/O (and rewrites the files to bless changes).
#[doc(hidden)]
pub fn check_golden(
    samples: &[Sample],
    fixtures: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for sample in samples {
        let name = &sample.name;
        if !names.insert(name.as_str()) {
            problems.push(format!("{name}: two samples have this name"));
        }
        let encoded = match sample.encode() {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(format!("{name}: the sample does not encode: {e}"));
                continue;
            }
        };
        let Some(text) = fixtures.get(name) else {
            problems.push(format!("{name}: no golden fixture"));
            continue;
        };
        let golden = match hex::decode(text.trim()) {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(format!("{name}: the fixture is not hex: {e}"));
                continue;
            }
        };
        if golden != encoded {
            problems.push(format!(
                "{name}: the encoding changed\n  fixture: {}\n  now:     {}",
                hex::encode(&golden),
                hex::encode(&encoded)
            ));
        }
        if let Err(e) = sample.decodes_back(&golden) {
            problems.push(format!("{name}: the fixture {e}"));
        }
    }
    for name in fixtures.keys() {
        if !names.contains(name.as_str()) {
            problems.push(format!("{name}: a fixture without a sample"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u64,
        b: String,
    }
    impl Record for Sample {
        const KIND: u8 = 250;
        const MAX_BODY_BYTES: usize = 64;
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Other(u8);
    impl Record for Other {
        const KIND: u8 = 251;
    }

    fn sample() -> Sample {
        Sample {
            a: 7,
            b: "seven".into(),
        }
    }

    #[test]
    fn round_trips() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(&bytes[..2], b"TF");
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample());
    }

    /// Golden fixture: the version-1 envelope layout must never change
    /// silently, or old logs and snapshots stop decoding.
    #[test]
    fn golden_bytes_of_version_1() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(hex_of(&bytes), "5446fa010700000097d537580705736576656e");
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Version 1 of a record of kind 252, as an old build wrote it.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct OldShape {
        a: u64,
    }
    impl Record for OldShape {
        const KIND: u8 = 252;
    }

    /// Version 2 of kind 252: a field was added.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct NewShape {
        a: u64,
        b: Option<String>,
    }
    impl Record for NewShape {
        const KIND: u8 = 252;
        const VERSION: u8 = 2;

        fn upgrade(version: u8, body: &[u8]) -> Result<Self, RecordError> {
            match version {
                1 => decode_body::<OldShape>(body).map(|old| NewShape { a: old.a, b: None }),
                _ => Err(RecordError::UnknownVersion {
                    kind: Self::KIND,
                    found: version,
                    supported: Self::VERSION,
                }),
            }
        }
    }

    /// An older version is decoded through the kind's one upgrade path;
    /// a version the upgrade does not know is still refused.
    #[test]
    fn older_versions_go_through_upgrade() {
        let old = encode(&OldShape { a: 5 }).unwrap();
        assert_eq!(
            decode::<NewShape>(&old).unwrap(),
            NewShape { a: 5, b: None }
        );
        let new = NewShape {
            a: 6,
            b: Some("x".into()),
        };
        assert_eq!(decode::<NewShape>(&encode(&new).unwrap()).unwrap(), new);
        assert!(matches!(
            decode::<OldShape>(&encode(&new).unwrap()),
            Err(RecordError::UnknownVersion {
                found: 2,
                supported: 1,
                ..
            })
        ));
        let mut with_trailing = old.clone();
        with_trailing.push(0);
        assert!(decode::<NewShape>(&with_trailing).is_err());
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = encode(&sample()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode::<Sample>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let bytes = encode(&sample()).unwrap();
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(decode::<Sample>(&b).is_err(), "flip of bit {bit}");
        }
    }

    #[test]
    fn typed_errors() {
        let bytes = encode(&sample()).unwrap();
        assert!(matches!(
            decode::<Other>(&bytes),
            Err(RecordError::WrongKind { .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode::<Sample>(&trailing),
            Err(RecordError::TrailingBytes { .. })
        ));
        let big = Sample {
            a: 1,
            b: "x".repeat(100),
        };
        assert!(matches!(encode(&big), Err(RecordError::TooLarge { .. })));
        let mut lying = bytes.clone();
        lying[4..8].copy_from_slice(&(1u32 << 30).to_le_bytes());
        assert!(matches!(
            decode::<Sample>(&lying),
            Err(RecordError::TooLarge { .. })
        ));
        let mut newer = bytes.clone();
        newer[3] = 9;
        let crc = checksum(&newer[2..8], &newer[HEADER_BYTES..]);
        newer[8..12].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            decode::<Sample>(&newer),
            Err(RecordError::UnknownVersion { found: 9, .. })
        ));
    }
}
