//! `FsPath`: a validated absolute path in the ToastyFS namespace.
//!
//! Rules (SPEC "Path rules"): UTF-8, absolute, `/`-separated, no empty, `.`
//! or `..` component, no NUL, each component at most 255 bytes, the whole
//! path at most 4096 bytes. The root is `/`. A value of this type always
//! obeys the rules: construction, and deserialisation from the wire, check
//! them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest allowed component, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Longest allowed path, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

/// Why a string is not a valid ToastyFS path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty; use \"/\" for the root")]
    Empty,
    #[error("the path {0:?} is not absolute: it must start with '/'")]
    NotAbsolute(String),
    #[error("the path {0:?} has an empty component ('//' or a trailing '/')")]
    EmptyComponent(String),
    #[error("the path {0:?} has a '.' or '..' component, which ToastyFS does not resolve")]
    DotComponent(String),
    #[error("the path contains a NUL byte")]
    NulByte,
    #[error("a path component is {len} bytes long; the limit is {MAX_COMPONENT_BYTES}")]
    ComponentTooLong { len: usize },
    #[error("the path is {len} bytes long; the limit is {MAX_PATH_BYTES}")]
    PathTooLong { len: usize },
    #[error("the path is not valid UTF-8")]
    NotUtf8,
}

/// A validated absolute path.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FsPath(String);

impl FsPath {
    /// The root directory, `/`.
    pub fn root() -> FsPath {
        FsPath("/".to_owned())
    }

    /// Validates `s` as a path.
    pub fn new(s: &str) -> Result<FsPath, PathError> {
        validate(s)?;
        Ok(FsPath(s.to_owned()))
    }

    /// Validates raw bytes as a path (they must be UTF-8).
    pub fn from_bytes(bytes: &[u8]) -> Result<FsPath, PathError> {
        let s = std::str::from_utf8(bytes).map_err(|_| PathError::NotUtf8)?;
        FsPath::new(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The components from the root down; empty for the root.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// The parent directory and the last component; `None` for the root.
    pub fn split_last(&self) -> Option<(FsPath, &str)> {
        if self.is_root() {
            return None;
        }
        let cut = self.0.rfind('/').unwrap_or(0);
        let parent = if cut == 0 { "/" } else { &self.0[..cut] };
        Some((FsPath(parent.to_owned()), &self.0[cut + 1..]))
    }

    /// The last component; `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.split_last().map(|(_, name)| name)
    }

    /// This path with `name` appended (`name` must be a valid component).
    pub fn join(&self, name: &str) -> Result<FsPath, PathError> {
        if self.is_root() {
            FsPath::new(&format!("/{name}"))
        } else {
            FsPath::new(&format!("{}/{name}", self.0))
        }
    }

    /// True if `self` is `other` or one of its ancestors.
    pub fn is_ancestor_or_self_of(&self, other: &FsPath) -> bool {
        if self.is_root() || self.0 == other.0 {
            return true;
        }
        other.0.starts_with(&self.0) && other.0.as_bytes().get(self.0.len()) == Some(&b'/')
    }
}

/// Marks a name as a put's temporary: `ls` hides them, and the metadata
/// leader deletes one nobody has written for a long while (an abandoned
/// put's).
pub const UPLOAD_TEMP_MARK: &str = ".toastyfs-upload-";

/// Whether `name` is a put's temporary, exactly as a put names one:
/// `.NAME.toastyfs-upload-` and 16 hex digits.
pub fn is_upload_temp(name: &str) -> bool {
    let Some((stem, nonce)) = name
        .strip_prefix('.')
        .and_then(|rest| rest.rsplit_once(UPLOAD_TEMP_MARK))
    else {
        return false;
    };
    !stem.is_empty() && nonce.len() == 16 && nonce.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod upload_temp_tests {
    use super::*;

    #[test]
    fn only_a_puts_own_temporary_names_count() {
        assert!(is_upload_temp(".f.toastyfs-upload-00000000000000ab"));
        assert!(is_upload_temp(".a.b.toastyfs-upload-0123456789abcdef"));
        for other in [
            "f.toastyfs-upload-00000000000000ab",
            "..toastyfs-upload-00000000000000ab",
            ".f.toastyfs-upload-00ab",
            ".f.toastyfs-upload-00000000000000ab.bak",
            ".notes about .toastyfs-upload- files",
        ] {
            assert!(!is_upload_temp(other), "{other}");
        }
    }
}

/// Validates one name (a single component).
pub fn validate_component(name: &str) -> Result<(), PathError> {
    if name.is_empty() {
        return Err(PathError::EmptyComponent(name.to_owned()));
    }
    if name == "." || name == ".." {
        return Err(PathError::DotComponent(name.to_owned()));
    }
    if name.contains('\0') {
        return Err(PathError::NulByte);
    }
    if name.contains('/') {
        return Err(PathError::EmptyComponent(name.to_owned()));
    }
    if name.len() > MAX_COMPONENT_BYTES {
        return Err(PathError::ComponentTooLong { len: name.len() });
    }
    Ok(())
}

fn validate(s: &str) -> Result<(), PathError> {
    if s.is_empty() {
        return Err(PathError::Empty);
    }
    if s.len() > MAX_PATH_BYTES {
        return Err(PathError::PathTooLong { len: s.len() });
    }
    if s.contains('\0') {
        return Err(PathError::NulByte);
    }
    let Some(rest) = s.strip_prefix('/') else {
        return Err(PathError::NotAbsolute(s.to_owned()));
    };
    if rest.is_empty() {
        return Ok(());
    }
    for component in rest.split('/') {
        if component.is_empty() {
            return Err(PathError::EmptyComponent(s.to_owned()));
        }
        if component == "." || component == ".." {
            return Err(PathError::DotComponent(s.to_owned()));
        }
        if component.len() > MAX_COMPONENT_BYTES {
            return Err(PathError::ComponentTooLong {
                len: component.len(),
            });
        }
    }
    Ok(())
}

impl fmt::Display for FsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::str::FromStr for FsPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FsPath::new(s)
    }
}

impl Serialize for FsPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FsPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        FsPath::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_root_and_ordinary_paths() {
        assert!(FsPath::new("/").unwrap().is_root());
        let p = FsPath::new("/a/b c/ünï").unwrap();
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b c", "ünï"]);
    }

    #[test]
    fn each_rule_has_its_own_error() {
        assert_eq!(FsPath::new(""), Err(PathError::Empty));
        assert!(matches!(FsPath::new("a/b"), Err(PathError::NotAbsolute(_))));
        assert!(matches!(
            FsPath::new("/a//b"),
            Err(PathError::EmptyComponent(_))
        ));
        assert!(matches!(
            FsPath::new("/a/"),
            Err(PathError::EmptyComponent(_))
        ));
        assert!(matches!(
            FsPath::new("/a/./b"),
            Err(PathError::DotComponent(_))
        ));
        assert!(matches!(
            FsPath::new("/.."),
            Err(PathError::DotComponent(_))
        ));
        assert_eq!(FsPath::new("/a\0b"), Err(PathError::NulByte));
        let long = format!("/{}", "x".repeat(256));
        assert_eq!(
            FsPath::new(&long),
            Err(PathError::ComponentTooLong { len: 256 })
        );
        let ok = format!("/{}", "x".repeat(255));
        assert!(FsPath::new(&ok).is_ok());
        let huge = "/abcdefg".repeat(600);
        assert_eq!(
            FsPath::new(&huge),
            Err(PathError::PathTooLong { len: 4800 })
        );
        assert_eq!(FsPath::from_bytes(&[b'/', 0xff]), Err(PathError::NotUtf8));
    }

    #[test]
    fn split_and_join() {
        let p = FsPath::new("/a/b").unwrap();
        let (parent, name) = p.split_last().unwrap();
        assert_eq!((parent.as_str(), name), ("/a", "b"));
        let (root, top) = FsPath::new("/a")
            .unwrap()
            .split_last()
            .map(|(p, n)| (p, n.to_owned()))
            .unwrap();
        assert_eq!((root.as_str(), top.as_str()), ("/", "a"));
        assert_eq!(FsPath::root().join("x").unwrap().as_str(), "/x");
        assert_eq!(parent.join("c").unwrap().as_str(), "/a/c");
        assert!(FsPath::root().split_last().is_none());
    }

    #[test]
    fn ancestry_respects_component_boundaries() {
        let a = FsPath::new("/a").unwrap();
        assert!(a.is_ancestor_or_self_of(&FsPath::new("/a/b").unwrap()));
        assert!(a.is_ancestor_or_self_of(&a));
        assert!(!a.is_ancestor_or_self_of(&FsPath::new("/ab").unwrap()));
        assert!(FsPath::root().is_ancestor_or_self_of(&a));
    }
}
