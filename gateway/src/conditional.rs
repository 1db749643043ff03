//! Conditional requests (RFC 9110, 13): a file's entity tag is its
//! version, `"v<version>"`, strong, since a version names exactly one
//! content; `Last-Modified` is its modified time to the second.

use toastyfs_proto::Version;

/// The strong entity tag of a version.
pub fn etag(version: Version) -> String {
    format!("\"v{}\"", version.0)
}

/// The version an entity tag names, if it is one of ours.
pub fn version_of(tag: &str) -> Option<Version> {
    let tag = tag.trim().strip_prefix("W/").unwrap_or(tag.trim());
    tag.strip_prefix("\"v")?
        .strip_suffix('"')?
        .parse()
        .ok()
        .map(Version)
}

/// Whether an `If-Match` / `If-None-Match` list matches the current
/// version (`*` matches any existing entry; `None`: the entry is absent).
pub fn list_matches(list: &str, current: Option<Version>) -> bool {
    list.split(',').any(|tag| match tag.trim() {
        "*" => current.is_some(),
        tag => current.is_some() && version_of(tag) == current,
    })
}

/// What the preconditions of a request decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// 304 for a GET or HEAD.
    NotModified,
    /// 412.
    Failed,
}

/// The request's preconditions, in RFC 9110's order (13.2.2).
#[derive(Debug, Default, Clone, Copy)]
pub struct Preconditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

impl Preconditions<'_> {
    /// Evaluates them against the entry's version and modified time
    /// (`None`: absent); `read` is a GET or HEAD.
    pub fn evaluate(&self, current: Option<(Version, u64)>, read: bool) -> Verdict {
        let version = current.map(|(v, _)| v);
        let mtime_secs = current.map(|(_, ms)| ms / 1000);
        if let Some(list) = self.if_match {
            if !list_matches(list, version) {
                return Verdict::Failed;
            }
        } else if let (Some(since), Some(mtime)) = (self.if_unmodified_since, mtime_secs) {
            if seconds(since).is_some_and(|since| mtime > since) {
                return Verdict::Failed;
            }
        }
        if let Some(list) = self.if_none_match {
            if list_matches(list, version) {
                return if read {
                    Verdict::NotModified
                } else {
                    Verdict::Failed
                };
            }
        } else if let (true, Some(since), Some(mtime)) = (read, self.if_modified_since, mtime_secs)
        {
            if seconds(since).is_some_and(|since| mtime <= since) {
                return Verdict::NotModified;
            }
        }
        Verdict::Proceed
    }
}

/// An HTTP date as seconds since the epoch.
fn seconds(date: &str) -> Option<u64> {
    let at = httpdate::parse_http_date(date.trim()).ok()?;
    at.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// A modified time (ms since the epoch) as an HTTP date.
pub fn http_date(mtime_ms: u64) -> String {
    // httpdate panics past year 9999: clamp.
    let ms = mtime_ms.min(253_402_300_799_000);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V7: Option<(Version, u64)> = Some((Version(7), 1_000_000_000));

    #[test]
    fn tags_are_versions() {
        assert_eq!(etag(Version(7)), "\"v7\"");
        assert_eq!(version_of("\"v7\""), Some(Version(7)));
        assert_eq!(version_of("W/\"v7\""), Some(Version(7)));
        assert_eq!(version_of("\"7\""), None);
    }

    #[test]
    fn if_match_and_if_none_match() {
        let matching = Preconditions {
            if_match: Some("\"v1\", \"v7\""),
            ..Default::default()
        };
        assert_eq!(matching.evaluate(V7, false), Verdict::Proceed);
        assert_eq!(matching.evaluate(None, false), Verdict::Failed);
        let other = Preconditions {
            if_match: Some("\"v8\""),
            ..Default::default()
        };
        assert_eq!(other.evaluate(V7, false), Verdict::Failed);
        let fresh = Preconditions {
            if_none_match: Some("\"v7\""),
            ..Default::default()
        };
        assert_eq!(fresh.evaluate(V7, true), Verdict::NotModified);
        assert_eq!(fresh.evaluate(V7, false), Verdict::Failed);
        let create_only = Preconditions {
            if_none_match: Some("*"),
            ..Default::default()
        };
        assert_eq!(create_only.evaluate(None, false), Verdict::Proceed);
        assert_eq!(create_only.evaluate(V7, false), Verdict::Failed);
    }

    #[test]
    fn dates_to_the_second() {
        let at = http_date(1_000_000_000);
        let same = Preconditions {
            if_modified_since: Some(&at),
            ..Default::default()
        };
        assert_eq!(same.evaluate(V7, true), Verdict::NotModified);
        let earlier = http_date(999_000_000);
        let older = Preconditions {
            if_modified_since: Some(&earlier),
            ..Default::default()
        };
        assert_eq!(older.evaluate(V7, true), Verdict::Proceed);
        let unmodified = Preconditions {
            if_unmodified_since: Some(&earlier),
            ..Default::default()
        };
        assert_eq!(unmodified.evaluate(V7, false), Verdict::Failed);
    }
}
