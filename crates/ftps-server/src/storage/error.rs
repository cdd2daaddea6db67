//! What a storage failure means to the protocol: operating-system errors
//! mapped to [`FsError`], the one error type of every back-end, which the
//! session turns into its reply (RFC 959 §4.2: 550 for a file that is
//! unavailable, 552 for exceeded storage, 553 for a name not allowed, 451 for
//! a local error; see `ftps_proto::session::replies::fs_error_reply`).

use std::io;

pub use ftps_proto::session::FsError;

/// The message of cap-std's error for a path escaping its directory.
const CAP_STD_ESCAPE: &str = "a path led outside of the filesystem";

/// Classify an I/O error: by its `errno` where it has one, else by its kind.
pub fn from_io(e: io::Error) -> FsError {
    if let Some(code) = e.raw_os_error() {
        return match code {
            libc::ENOENT => FsError::NotFound,
            libc::EACCES | libc::EPERM | libc::EROFS => FsError::PermissionDenied,
            libc::EEXIST => FsError::AlreadyExists,
            libc::ENOTDIR => FsError::NotADirectory,
            libc::EISDIR => FsError::IsADirectory,
            libc::ENOTEMPTY => FsError::DirectoryNotEmpty,
            libc::ENOSPC | libc::EDQUOT | libc::EFBIG => FsError::NoSpace,
            libc::EINVAL | libc::ENAMETOOLONG => FsError::InvalidName,
            // A symlink loop, or a symlink met where none may be followed.
            libc::ELOOP => FsError::PermissionDenied,
            // Rename across mount points inside the root.
            libc::EXDEV => FsError::Unsupported,
            _ => FsError::Other(e.to_string()),
        };
    }
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            let escaped = e
                .get_ref()
                .is_some_and(|inner| inner.to_string().contains(CAP_STD_ESCAPE));
            if escaped {
                FsError::OutsideRoot
            } else {
                FsError::PermissionDenied
            }
        }
        io::ErrorKind::NotFound => FsError::NotFound,
        io::ErrorKind::AlreadyExists => FsError::AlreadyExists,
        io::ErrorKind::InvalidInput => FsError::InvalidName,
        io::ErrorKind::Unsupported => FsError::Unsupported,
        _ => FsError::Other(e.to_string()),
    }
}

/// `?` on an I/O result inside a back-end: `.fs()?` classifies the error.
pub trait IoResultExt<T> {
    /// The result with its error mapped by [`from_io`].
    fn fs(self) -> Result<T, FsError>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn fs(self) -> Result<T, FsError> {
        self.map_err(from_io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(code: i32) -> FsError {
        from_io(io::Error::from_raw_os_error(code))
    }

    #[test]
    fn io_errors_map_to_storage_errors() {
        assert_eq!(map(libc::ENOENT), FsError::NotFound);
        assert_eq!(map(libc::EACCES), FsError::PermissionDenied);
        assert_eq!(map(libc::EPERM), FsError::PermissionDenied);
        assert_eq!(map(libc::EEXIST), FsError::AlreadyExists);
        assert_eq!(map(libc::ENOTDIR), FsError::NotADirectory);
        assert_eq!(map(libc::EISDIR), FsError::IsADirectory);
        assert_eq!(map(libc::ENOTEMPTY), FsError::DirectoryNotEmpty);
        assert_eq!(map(libc::ENOSPC), FsError::NoSpace);
        assert_eq!(map(libc::EDQUOT), FsError::NoSpace);
        assert_eq!(map(libc::ELOOP), FsError::PermissionDenied);
        assert_eq!(map(libc::EXDEV), FsError::Unsupported);
        assert_eq!(map(libc::ENAMETOOLONG), FsError::InvalidName);
        assert!(matches!(map(libc::EIO), FsError::Other(_)));
        let escape = io::Error::new(io::ErrorKind::PermissionDenied, CAP_STD_ESCAPE);
        assert_eq!(from_io(escape), FsError::OutsideRoot);
        let denied = io::Error::new(io::ErrorKind::PermissionDenied, "nope");
        assert_eq!(from_io(denied), FsError::PermissionDenied);
        assert_eq!(
            from_io(io::Error::from(io::ErrorKind::NotFound)),
            FsError::NotFound
        );
    }

    #[test]
    fn std_error_kinds_agree_with_libc_constants() {
        // The errno values come from libc; std classifies the same codes.
        let kinds = [
            (libc::ENOENT, io::ErrorKind::NotFound),
            (libc::EACCES, io::ErrorKind::PermissionDenied),
            (libc::EEXIST, io::ErrorKind::AlreadyExists),
            (libc::EINVAL, io::ErrorKind::InvalidInput),
        ];
        for (code, kind) in kinds {
            assert_eq!(io::Error::from_raw_os_error(code).kind(), kind);
        }
        for (code, text) in [
            (libc::ENOTEMPTY, "not empty"),
            (libc::ELOOP, "symbolic links"),
            (libc::ENAMETOOLONG, "too long"),
            (libc::EDQUOT, "quota"),
        ] {
            let msg = io::Error::from_raw_os_error(code)
                .to_string()
                .to_lowercase();
            assert!(msg.contains(text), "{code}: {msg}");
        }
    }
}
