//! The chunk server's strict rule for one HTTP byte range (`Range:
//! bytes=first-last`, `bytes=first-`, `bytes=-suffix`): parsing the header
//! and resolving it against a body size. Pure functions, no I/O. Multiple
//! ranges are deliberately not supported (our clients read one span at a
//! time), and anything else is refused rather than ignored, so client bugs
//! are loud; the gateway's lenient rule for browsers is [`crate::range`].

/// A parsed single byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` (inclusive).
    FromTo { first: u64, last: u64 },
    /// `bytes=first-`: to the end.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a `Range` header value; `None` if it is not one well-formed
    /// byte range.
    pub fn parse(value: &str) -> Option<ByteRange> {
        let spec = value.trim().strip_prefix("bytes=")?;
        let (first, last) = spec.trim().split_once('-')?;
        match (first.trim(), last.trim()) {
            ("", "") => None,
            ("", n) => digits(n).map(ByteRange::Suffix),
            (a, "") => digits(a).map(ByteRange::From),
            (a, b) => {
                let (first, last) = (digits(a)?, digits(b)?);
                (first <= last).then_some(ByteRange::FromTo { first, last })
            }
        }
    }

    /// The inclusive `(first, last)` byte positions within a body of
    /// `size_bytes`, or `None` if the range selects nothing (416).
    pub fn resolve(self, size_bytes: u64) -> Option<(u64, u64)> {
        let end = size_bytes.checked_sub(1)?;
        match self {
            ByteRange::FromTo { first, last } => (first <= end).then_some((first, last.min(end))),
            ByteRange::From(first) => (first <= end).then_some((first, end)),
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(n) => Some((size_bytes.saturating_sub(n), end)),
        }
    }
}

/// A non-empty run of ASCII digits as a number (no sign, no overflow).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three single-range forms parse; lists, reversed and signed ranges do not.
    #[test]
    fn parse_accepts_single_ranges_only() {
        assert_eq!(
            ByteRange::parse("bytes=2-5"),
            Some(ByteRange::FromTo { first: 2, last: 5 })
        );
        assert_eq!(ByteRange::parse("bytes=7-"), Some(ByteRange::From(7)));
        assert_eq!(ByteRange::parse("bytes=-3"), Some(ByteRange::Suffix(3)));
        for bad in [
            "bytes=5-2",
            "bytes=0-1,3-4",
            "bytes=-",
            "items=0-1",
            "bytes=+1-2",
            "bytes=a-b",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(ByteRange::parse(bad), None, "{bad}");
        }
    }

    /// Resolution clamps to the body and refuses ranges that select nothing.
    #[test]
    fn resolve_clamps_and_refuses_empty_selections() {
        assert_eq!(
            ByteRange::FromTo {
                first: 2,
                last: 100
            }
            .resolve(10),
            Some((2, 9))
        );
        assert_eq!(ByteRange::From(9).resolve(10), Some((9, 9)));
        assert_eq!(ByteRange::From(10).resolve(10), None);
        assert_eq!(ByteRange::Suffix(3).resolve(10), Some((7, 9)));
        assert_eq!(ByteRange::Suffix(30).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::Suffix(0).resolve(10), None);
        assert_eq!(ByteRange::From(0).resolve(0), None);
    }
}
