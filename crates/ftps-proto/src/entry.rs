//! One directory entry as the listing formats see it.
//!
//! This module owns the data model shared by the machine-readable listings of
//! RFC 3659 §7 (`MLST`/`MLSD`, see [`crate::facts`]) and the human-readable
//! `LIST`/`NLST` listings of RFC 959 §4.1.3 (see [`crate::list`]). It holds
//! no protocol text itself.

/// What kind of file system object an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
    /// Anything else: device, socket, pipe, ...
    Other,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name (one path component, or a full path for `MLST`), as bytes.
    pub name: Vec<u8>,
    /// The kind of object.
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time in seconds since the Unix epoch, UTC.
    pub modified: Option<i64>,
    /// Unix mode bits; listings use the permission part (`mode & 0o7777`)
    /// and take the file type from `kind`.
    pub mode: Option<u32>,
    /// Owner name shown by `LIST`.
    pub owner: Option<String>,
    /// Group name shown by `LIST`.
    pub group: Option<String>,
    /// A value identifying the object on the server (RFC 3659 §7.5.2).
    pub unique: Option<String>,
}

impl Entry {
    /// An entry with the given name and kind, size 0 and nothing else known.
    pub fn new(name: impl Into<Vec<u8>>, kind: EntryKind) -> Entry {
        Entry {
            name: name.into(),
            kind,
            size: 0,
            modified: None,
            mode: None,
            owner: None,
            group: None,
            unique: None,
        }
    }
}

/// What the current user may do with an entry; drives the `perm` fact of
/// RFC 3659 §7.5.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// The user may read the file or list the directory.
    pub read: bool,
    /// The user may change, delete or rename the object, or create entries
    /// in the directory.
    pub write: bool,
}

/// Replace CR and LF in a name by `?` so that a name cannot split a
/// listing line in two (shared by the listing formats).
pub(crate) fn push_listing_name(out: &mut Vec<u8>, name: &[u8]) {
    out.extend(
        name.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b'?' } else { b }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_new_has_nothing_but_name_and_kind() {
        let e = Entry::new(*b"a", EntryKind::File);
        assert_eq!(e.name, b"a");
        assert_eq!(e.size, 0);
        assert_eq!(e.modified, None);
        assert_eq!(
            Permissions::default(),
            Permissions {
                read: false,
                write: false
            }
        );
    }

    #[test]
    fn listing_names_cannot_contain_line_breaks() {
        let mut out = Vec::new();
        push_listing_name(&mut out, b"a\r\nb");
        assert_eq!(out, b"a??b");
    }
}
