//! The `Range` header of a gateway GET (RFC 9110, 14.2): one byte range of
//! a file of known length, or none. Several ranges are answered with the
//! whole file, as the RFC allows; an unsatisfiable one is a 416. Pure, so
//! it lives here, where a fuzz target reaches it without the gateway's
//! dependencies.

/// What a `Range` header asks of a file of `length` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// No usable range: the whole file, 200.
    Whole,
    /// Bytes `[start, start + len)`, 206.
    Part { start: u64, len: u64 },
    /// No byte of the range exists: 416 with `Content-Range: bytes */length`.
    Unsatisfiable,
}

/// Parses `header` for a file of `length` bytes. A header that is not a
/// single `bytes=` range (other units, several ranges, garbage) is
/// ignored, as RFC 9110 lets a server do.
pub fn parse(header: Option<&str>, length: u64) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    match (first.parse::<u64>(), last.parse::<u64>()) {
        // bytes=-N: the last N bytes.
        (Err(_), Ok(suffix)) if first.is_empty() => {
            if suffix == 0 || length == 0 {
                return Wanted::Unsatisfiable;
            }
            let len = suffix.min(length);
            Wanted::Part {
                start: length - len,
                len,
            }
        }
        // bytes=A- : from A to the end; `part` clips the end once it has
        // ruled out an empty file (for which `length - 1` would underflow).
        (Ok(start), Err(_)) if last.is_empty() => part(start, u64::MAX, length),
        (Ok(start), Ok(end)) if start <= end => part(start, end, length),
        _ => Wanted::Whole,
    }
}

/// Bytes `start..=end` of the file, clipped at its end; `start <= end`.
fn part(start: u64, end: u64, length: u64) -> Wanted {
    if start >= length {
        return Wanted::Unsatisfiable;
    }
    let end = end.min(length - 1);
    Wanted::Part {
        start,
        len: end - start + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_of_every_form() {
        assert_eq!(
            parse(Some("bytes=0-9"), 100),
            Wanted::Part { start: 0, len: 10 }
        );
        assert_eq!(
            parse(Some("bytes=90-"), 100),
            Wanted::Part { start: 90, len: 10 }
        );
        assert_eq!(
            parse(Some("bytes=-5"), 100),
            Wanted::Part { start: 95, len: 5 }
        );
        assert_eq!(
            parse(Some("bytes=-500"), 100),
            Wanted::Part { start: 0, len: 100 }
        );
        assert_eq!(
            parse(Some("bytes=50-500"), 100),
            Wanted::Part { start: 50, len: 50 }
        );
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(parse(Some("bytes=100-"), 100), Wanted::Unsatisfiable);
        assert_eq!(parse(Some("bytes=100-200"), 100), Wanted::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 100), Wanted::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-0"), 0), Wanted::Unsatisfiable);
    }

    /// Found by the fuzzer (`fuzz/regressions/range_header/`): an open
    /// range of an empty file computed its end as `0 - 1`, a panic in a
    /// debug build.
    #[test]
    fn an_open_range_of_an_empty_file_is_unsatisfiable() {
        assert_eq!(parse(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
        assert_eq!(parse(Some("bytes=7-"), 0), Wanted::Unsatisfiable);
        assert_eq!(
            parse(Some("bytes=0-"), 1),
            Wanted::Part { start: 0, len: 1 }
        );
    }

    #[test]
    fn anything_else_is_the_whole_file() {
        for header in [
            None,
            Some("items=0-1"),
            Some("bytes=0-1,5-6"),
            Some("bytes=9-2"),
            Some("bytes=x"),
        ] {
            assert_eq!(parse(header, 100), Wanted::Whole, "{header:?}");
        }
    }
}
