//! FTP paths as object keys: a [`VirtualPath`] below the user's root becomes
//! the key `PREFIX/a/b` (a file) or `PREFIX/a/b/` (a directory: its marker
//! object and the prefix of its contents). Names must be valid UTF-8 (S3 keys
//! are UTF-8) and the whole key at most [`MAX_KEY_BYTES`]; anything else is
//! [`FsError::InvalidName`] (553), never a lossy conversion.

use ftps_proto::path::VirtualPath;

use crate::storage::{is_reserved_name, FsError};

/// The longest key S3 accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The user's key prefix and the mapping of paths below it.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    /// `""` (the whole bucket) or `"a/b/"`.
    prefix: String,
}

impl Keys {
    /// Keys below `prefix` (normalised: no leading or trailing `/`).
    pub(super) fn new(prefix: &str) -> Keys {
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Keys { prefix }
    }

    /// The key of the file `path` (not the root).
    pub(super) fn file(&self, path: &VirtualPath) -> Result<String, FsError> {
        let mut key = self.prefix.clone();
        for (i, c) in path.components().iter().enumerate() {
            if i > 0 {
                key.push('/');
            }
            key.push_str(checked_name(c)?);
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(FsError::InvalidName);
        }
        Ok(key)
    }

    /// The key of the directory `path`: its marker object and the prefix of
    /// everything in it (the user's prefix for the root; `""` for a whole
    /// bucket's root).
    pub(super) fn dir(&self, path: &VirtualPath) -> Result<String, FsError> {
        if path.is_root() {
            return Ok(self.prefix.clone());
        }
        let mut key = self.file(path)?;
        key.push('/');
        if key.len() > MAX_KEY_BYTES {
            return Err(FsError::InvalidName);
        }
        Ok(key)
    }
}

/// One path component as a key segment: UTF-8, not empty, no `/`, `\`, NUL
/// or other control character, not `.`/`..`, not reserved for upload temp
/// files. (Some stores, SeaweedFS among them, read `\` as `/`: a name with
/// it could address another key.)
fn checked_name(c: &[u8]) -> Result<&str, FsError> {
    let name = std::str::from_utf8(c).map_err(|_| FsError::InvalidName)?;
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\\')
        || name.chars().any(char::is_control)
        || is_reserved_name(c)
    {
        return Err(FsError::InvalidName);
    }
    Ok(name)
}

/// The last segment of `key` below `dir_key`, without a trailing `/`
/// (`None` for the directory's own marker or a key outside `dir_key`).
pub(super) fn child_name<'k>(dir_key: &str, key: &'k str) -> Option<&'k str> {
    let rest = key.strip_prefix(dir_key)?;
    let name = rest.strip_suffix('/').unwrap_or(rest);
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn path(s: &str) -> VirtualPath {
        VirtualPath::root().resolve(s.as_bytes()).unwrap()
    }

    #[test]
    fn paths_map_to_keys_below_the_prefix() {
        let keys = Keys::new("partners/alice");
        assert_eq!(
            keys.file(&path("/a/b.txt")).unwrap(),
            "partners/alice/a/b.txt"
        );
        assert_eq!(keys.dir(&path("/a")).unwrap(), "partners/alice/a/");
        assert_eq!(keys.dir(&VirtualPath::root()).unwrap(), "partners/alice/");
        let whole = Keys::new("");
        assert_eq!(whole.file(&path("x")).unwrap(), "x");
        assert_eq!(whole.dir(&VirtualPath::root()).unwrap(), "");
    }

    #[test]
    fn names_s3_cannot_hold_are_invalid() {
        let keys = Keys::new("p");
        let bad = VirtualPath::root().resolve(b"/caf\xe9").unwrap();
        assert_eq!(keys.file(&bad), Err(FsError::InvalidName));
        assert_eq!(keys.file(&path("/a\tb")), Err(FsError::InvalidName));
        assert_eq!(keys.file(&path("/..\\x")), Err(FsError::InvalidName));
        assert_eq!(
            keys.file(&path("/.ftps-upload.x")),
            Err(FsError::InvalidName)
        );
        let long = vec!["n".repeat(200); 6].join("/");
        assert_eq!(keys.file(&path(&long)), Err(FsError::InvalidName));
        assert_eq!(keys.file(&path("/é ü")).unwrap(), "p/é ü");
    }

    #[test]
    fn child_names_come_from_listing_keys() {
        assert_eq!(child_name("p/d/", "p/d/f.txt"), Some("f.txt"));
        assert_eq!(child_name("p/d/", "p/d/sub/"), Some("sub"));
        assert_eq!(child_name("p/d/", "p/d/"), None);
        assert_eq!(child_name("p/d/", "p/e/f"), None);
        assert_eq!(child_name("", "top"), Some("top"));
    }
}
