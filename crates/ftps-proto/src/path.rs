//! Virtual pathnames as a client sees them.
//!
//! This module owns the server's view of RFC 959 pathnames (§3.1.1.1 leaves
//! their syntax to the server; here `/` separates components and absolute
//! paths start at the user's root). Resolution is purely lexical and
//! normalizing: `.` and empty components vanish and `..` never climbs above
//! the root, which is the path-traversal protection asked for by RFC 2577
//! §3 / §4 — no argument can name anything outside the root. Bytes other
//! than `/` and NUL have no special meaning (a backslash is an ordinary
//! byte), so non-UTF-8 names are kept as they are.

/// Longest component, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Longest path (as written by [`VirtualPath::to_bytes`]), in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

/// Why a pathname was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum PathError {
    /// The name contains a NUL byte.
    #[error("pathname contains a NUL byte")]
    Nul,
    /// A component is longer than [`MAX_COMPONENT_BYTES`].
    #[error("pathname component longer than {MAX_COMPONENT_BYTES} bytes")]
    ComponentTooLong,
    /// The path is longer than [`MAX_PATH_BYTES`].
    #[error("pathname longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    /// Not a valid single name (empty, `.`, `..` or containing `/`).
    #[error("invalid file name")]
    InvalidName,
}

/// A normalized absolute path below the user's root.
///
/// Components are never empty, `.` or `..`, never contain `/` or NUL, and
/// are at most [`MAX_COMPONENT_BYTES`] long. The root has no components.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VirtualPath {
    components: Vec<Vec<u8>>,
}

impl VirtualPath {
    /// The root directory, `/`.
    pub fn root() -> Self {
        Self::default()
    }

    /// Resolve a command argument against this path (the current
    /// directory).
    ///
    /// An argument starting with `/` is absolute, anything else relative.
    /// Empty and `.` components are dropped, `..` removes the previous
    /// component but never goes above the root, and a trailing `/` is
    /// ignored. An empty argument gives this path. Fails for NUL bytes,
    /// over-long components and over-long results.
    pub fn resolve(&self, arg: &[u8]) -> Result<VirtualPath, PathError> {
        if arg.contains(&0) {
            return Err(PathError::Nul);
        }
        let mut components = if arg.first() == Some(&b'/') {
            Vec::new()
        } else {
            self.components.clone()
        };
        for part in arg.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    components.pop();
                }
                _ if part.len() > MAX_COMPONENT_BYTES => return Err(PathError::ComponentTooLong),
                _ => components.push(part.to_vec()),
            }
        }
        let path = VirtualPath { components };
        if path.byte_len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        Ok(path)
    }

    /// The components, outermost first.
    pub fn components(&self) -> &[Vec<u8>] {
        &self.components
    }

    /// The containing directory, `None` for the root.
    pub fn parent(&self) -> Option<VirtualPath> {
        let (_, parent) = self.components.split_last()?;
        Some(VirtualPath {
            components: parent.to_vec(),
        })
    }

    /// The last component, `None` for the root.
    pub fn file_name(&self) -> Option<&[u8]> {
        self.components.last().map(Vec::as_slice)
    }

    /// This path with one more component. `name` must be a single valid
    /// name: not empty, `.` or `..`, without `/` or NUL.
    pub fn join(&self, name: &[u8]) -> Result<VirtualPath, PathError> {
        if name.contains(&0) {
            return Err(PathError::Nul);
        }
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
            return Err(PathError::InvalidName);
        }
        if name.len() > MAX_COMPONENT_BYTES {
            return Err(PathError::ComponentTooLong);
        }
        if self.byte_len() + 1 + name.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        let mut components = self.components.clone();
        components.push(name.to_vec());
        Ok(VirtualPath { components })
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// Whether `self` is `base` or lies below it.
    pub fn starts_with(&self, base: &VirtualPath) -> bool {
        self.components.starts_with(&base.components)
    }

    /// The path as bytes: `/` for the root, else `/a/b`.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.is_root() {
            return b"/".to_vec();
        }
        let mut out = Vec::with_capacity(self.byte_len());
        for c in &self.components {
            out.push(b'/');
            out.extend_from_slice(c);
        }
        out
    }

    /// The path as text, invalid UTF-8 replaced (for logs).
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.to_bytes()).into_owned()
    }

    /// Length of [`to_bytes`](Self::to_bytes).
    fn byte_len(&self) -> usize {
        self.components
            .iter()
            .map(|c| c.len() + 1)
            .sum::<usize>()
            .max(1)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> VirtualPath {
        VirtualPath::root().resolve(s.as_bytes()).unwrap()
    }

    #[test]
    fn root_is_slash() {
        assert_eq!(VirtualPath::root().to_bytes(), b"/");
        assert!(VirtualPath::root().is_root());
        assert_eq!(VirtualPath::root().parent(), None);
        assert_eq!(VirtualPath::root().file_name(), None);
    }

    #[test]
    fn rfc959_absolute_and_relative_arguments() {
        let cwd = p("/home/user");
        assert_eq!(
            cwd.resolve(b"docs/a.txt").unwrap().to_bytes(),
            b"/home/user/docs/a.txt"
        );
        assert_eq!(cwd.resolve(b"/etc").unwrap().to_bytes(), b"/etc");
        assert_eq!(cwd.resolve(b"").unwrap(), cwd);
    }

    #[test]
    fn dot_dropped_slashes_collapsed_trailing_slash_ignored() {
        assert_eq!(p("//a/./b//c/").to_bytes(), b"/a/b/c");
        assert_eq!(p("a/.").to_bytes(), b"/a");
        assert_eq!(p("/").to_bytes(), b"/");
    }

    #[test]
    fn rfc2577_dotdot_never_climbs_above_root() {
        assert_eq!(p("/../../etc/passwd").to_bytes(), b"/etc/passwd");
        assert_eq!(p("a/../../..").to_bytes(), b"/");
        assert_eq!(
            p("/a/b").resolve(b"../../../../x").unwrap().to_bytes(),
            b"/x"
        );
        assert_eq!(p("/a/b/..").to_bytes(), b"/a");
    }

    #[test]
    fn backslash_and_non_utf8_are_ordinary_bytes() {
        let v = p("a\\..\\b");
        assert_eq!(v.components(), &[b"a\\..\\b".to_vec()]);
        let n = VirtualPath::root().resolve(b"/\xff\xfe").unwrap();
        assert_eq!(n.to_bytes(), b"/\xff\xfe");
        assert_eq!(n.to_string_lossy(), "/\u{fffd}\u{fffd}");
    }

    #[test]
    fn nul_and_length_limits_are_errors() {
        let root = VirtualPath::root();
        assert_eq!(root.resolve(b"a\0b"), Err(PathError::Nul));
        assert_eq!(root.resolve(&[b'a'; 256]), Err(PathError::ComponentTooLong));
        assert!(root.resolve(&[b'a'; 255]).is_ok());
        let deep = "/abcdefg".repeat(512); // exactly 4096 bytes
        assert_eq!(p(&deep).to_bytes().len(), 4096);
        assert_eq!(
            root.resolve(format!("{deep}/x").as_bytes()),
            Err(PathError::TooLong)
        );
    }

    #[test]
    fn parent_file_name_join_and_starts_with() {
        let v = p("/a/b");
        assert_eq!(v.parent(), Some(p("/a")));
        assert_eq!(v.file_name(), Some(&b"b"[..]));
        assert_eq!(v.join(b"c").unwrap(), p("/a/b/c"));
        for bad in [&b""[..], b".", b"..", b"x/y", b"/"] {
            assert_eq!(v.join(bad), Err(PathError::InvalidName), "{bad:?}");
        }
        assert_eq!(v.join(b"a\0"), Err(PathError::Nul));
        assert_eq!(v.join(&[b'z'; 256]), Err(PathError::ComponentTooLong));
        assert_eq!(
            p(&"/abcdefg".repeat(512)).join(b"x"),
            Err(PathError::TooLong)
        );
        assert!(p("/a/b/c").starts_with(&v));
        assert!(v.starts_with(&v));
        assert!(!p("/a/bc").starts_with(&v));
        assert!(v.starts_with(&VirtualPath::root()));
    }

    proptest! {
        #[test]
        fn prop_resolve_never_escapes_and_stays_normalized(
            cwd in proptest::collection::vec(prop_oneof![Just(b'/'), Just(b'.'), any::<u8>()], 0..60),
            arg in proptest::collection::vec(prop_oneof![Just(b'/'), Just(b'.'), any::<u8>()], 0..300),
        ) {
            let base = VirtualPath::root().resolve(&cwd).unwrap_or_default();
            if let Ok(r) = base.resolve(&arg) {
                for c in r.components() {
                    prop_assert!(!c.is_empty() && c != b"." && c != b"..");
                    prop_assert!(!c.contains(&b'/') && !c.contains(&0));
                    prop_assert!(c.len() <= MAX_COMPONENT_BYTES);
                }
                prop_assert!(r.to_bytes().len() <= MAX_PATH_BYTES);
                // Normalized: resolving the printed form gives the same path.
                prop_assert_eq!(VirtualPath::root().resolve(&r.to_bytes()), Ok(r));
            }
        }
    }
}
