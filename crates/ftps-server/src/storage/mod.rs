//! Storage back-ends: where the bytes behind the FTP name space live.
//!
//! This module owns the [`Storage`] trait, the file-system view the session
//! layer talks to. It serves the RFC 959 file commands:
//!
//! * `RETR` (with `REST` offsets) → [`Storage::read`]
//! * `STOR`, `STOU`, `APPE`, `REST`+`STOR` → [`Storage::write`] with a
//!   [`WriteMode`], finished by [`Upload::commit`] or [`Upload::abort`]
//! * `LIST`, `NLST`, `MLSD` → [`Storage::list`]; `SIZE`, `MDTM`, `MLST`,
//!   `CWD` checks → [`Storage::metadata`]
//! * `MKD`, `RMD`, `DELE`, `RNFR`/`RNTO` → [`Storage::create_dir`],
//!   [`Storage::remove_dir`], [`Storage::remove_file`], [`Storage::rename`]
//!
//! The trait is deliberately small so that an object store can implement it
//! as well as the local file system ([`local::LocalFs`]): reads stream from
//! an offset, writes stream into an [`Upload`] that is either committed or
//! aborted, listings stream entries with size and modification time through a
//! bounded channel, and nothing assumes that `rename` is atomic.
//!
//! # No partial replace
//!
//! An upload never leaves a half-written mix of old and new content under the
//! target name. Until [`Upload::commit`] succeeds, an existing target keeps its
//! previous content (an append or resume in place is undone by truncating back
//! to the original length). The only partial content that may become visible
//! is that of a *new* file whose transfer failed after some bytes arrived, so
//! that the user can see it and resume it (see [`Upload::abort`]). A transfer
//! refused before any data arrived leaves no file behind.
//!
//! Names starting with [`UPLOAD_TEMP_PREFIX`] are reserved for in-progress
//! uploads: they are never listed and cannot be operated on directly.

pub mod local;

use ftps_proto::entry::Entry;
use ftps_proto::path::VirtualPath;
use std::io;

pub use local::LocalFs;

/// Prefix of the names of in-progress upload files. Such names are hidden
/// from listings and refused ([`StorageError::InvalidName`]) as operands.
pub const UPLOAD_TEMP_PREFIX: &[u8] = b".ftps-upload.";

/// Capacity of the channel behind an [`EntryStream`].
pub const LIST_CHANNEL_CAPACITY: usize = 64;

/// Whether `name` (one path component) is reserved for upload temp files.
pub fn is_reserved_name(name: &[u8]) -> bool {
    name.starts_with(UPLOAD_TEMP_PREFIX)
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The path (or its parent directory) does not exist.
    #[error("not found")]
    NotFound,
    /// The operation is not permitted.
    #[error("permission denied")]
    PermissionDenied,
    /// The target name is already taken.
    #[error("already exists")]
    AlreadyExists,
    /// A directory was expected.
    #[error("not a directory")]
    NotADirectory,
    /// A file was expected but the path is a directory.
    #[error("is a directory")]
    IsADirectory,
    /// A regular file was expected but the path is a FIFO, socket or device.
    #[error("not a regular file")]
    NotAFile,
    /// The directory still has entries.
    #[error("directory not empty")]
    DirectoryNotEmpty,
    /// Disk full or quota exceeded.
    #[error("no space left")]
    NoSpace,
    /// The name is not acceptable (reserved, too long, or refused by the
    /// back-end).
    #[error("invalid name")]
    InvalidName,
    /// The path (through a symbolic link) leads outside the storage root.
    #[error("outside the root")]
    OutsideRoot,
    /// The back-end cannot do this.
    #[error("not supported")]
    Unsupported,
    /// A resume offset (`REST`) lies beyond the end of the existing file.
    #[error("offset beyond end of file")]
    OffsetBeyondEnd,
    /// Any other I/O failure.
    #[error("i/o error: {0}")]
    Io(io::Error),
}

/// Raw `errno` values used to classify I/O errors without depending on newer
/// `std::io::ErrorKind` variants. Values below 35 are the same on every Unix.
mod errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EACCES: i32 = 13;
    pub const EEXIST: i32 = 17;
    pub const EXDEV: i32 = 18;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const EFBIG: i32 = 27;
    pub const ENOSPC: i32 = 28;
    pub const EROFS: i32 = 30;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    mod os {
        pub const ENAMETOOLONG: i32 = 36;
        pub const ENOTEMPTY: i32 = 39;
        pub const ELOOP: i32 = 40;
        pub const EDQUOT: i32 = 122;
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    mod os {
        // BSD family, including macOS.
        pub const ENAMETOOLONG: i32 = 63;
        pub const ENOTEMPTY: i32 = 66;
        pub const ELOOP: i32 = 62;
        pub const EDQUOT: i32 = 69;
    }
    pub use os::*;
}

/// The message of cap-std's error for a path escaping its directory.
const CAP_STD_ESCAPE: &str = "a path led outside of the filesystem";

impl From<io::Error> for StorageError {
    fn from(e: io::Error) -> Self {
        if let Some(code) = e.raw_os_error() {
            return match code {
                errno::ENOENT => StorageError::NotFound,
                errno::EACCES | errno::EPERM | errno::EROFS => StorageError::PermissionDenied,
                errno::EEXIST => StorageError::AlreadyExists,
                errno::ENOTDIR => StorageError::NotADirectory,
                errno::EISDIR => StorageError::IsADirectory,
                errno::ENOTEMPTY => StorageError::DirectoryNotEmpty,
                errno::ENOSPC | errno::EDQUOT | errno::EFBIG => StorageError::NoSpace,
                errno::EINVAL | errno::ENAMETOOLONG => StorageError::InvalidName,
                // A symlink loop, or a symlink met where none may be followed.
                errno::ELOOP => StorageError::PermissionDenied,
                // Rename across mount points inside the root.
                errno::EXDEV => StorageError::Unsupported,
                _ => StorageError::Io(e),
            };
        }
        match e.kind() {
            io::ErrorKind::PermissionDenied => {
                let escaped = e
                    .get_ref()
                    .is_some_and(|inner| inner.to_string().contains(CAP_STD_ESCAPE));
                if escaped {
                    StorageError::OutsideRoot
                } else {
                    StorageError::PermissionDenied
                }
            }
            io::ErrorKind::NotFound => StorageError::NotFound,
            io::ErrorKind::AlreadyExists => StorageError::AlreadyExists,
            io::ErrorKind::InvalidInput => StorageError::InvalidName,
            io::ErrorKind::Unsupported => StorageError::Unsupported,
            _ => StorageError::Io(e),
        }
    }
}

/// How [`Storage::write`] treats an existing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// `STOR`: the new content replaces the file, but only on commit.
    Create,
    /// `STOU`: fail with [`StorageError::AlreadyExists`] if the name exists;
    /// the commit never overwrites a file that appeared meanwhile.
    CreateNew,
    /// `APPE`: add to the end of the file (creating it if missing).
    Append,
    /// `REST n` + `STOR`: keep the first `n` bytes of the existing file and
    /// write from offset `n`. `n` greater than the file length fails with
    /// [`StorageError::OffsetBeyondEnd`].
    Resume(u64),
}

/// A directory listing in progress: entries arrive through a bounded channel
/// (capacity [`LIST_CHANNEL_CAPACITY`]) so that a huge directory streams with
/// bounded memory. The channel closes after the last entry; an `Err` item
/// ends the listing early. Dropping the receiver stops the producer.
pub type EntryStream = tokio::sync::mpsc::Receiver<Result<Entry, StorageError>>;

/// A file-system view rooted at some storage root. Paths are
/// [`VirtualPath`]s, relative to that root.
///
/// Implementations must not let any operation reach outside the root, and
/// callers must not assume that [`Storage::rename`] is atomic.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Facts about `path`. `Entry::name` is the last component (`b"/"` for
    /// the root). Symbolic links are followed, but only inside the root.
    async fn metadata(&self, path: &VirtualPath) -> Result<Entry, StorageError>;

    /// Stream the entries of directory `dir` ([`StorageError::NotADirectory`]
    /// if it is a file). Names are exactly the on-disk bytes. A symbolic link
    /// is described by its target when that stays inside the root, otherwise
    /// it is listed as [`ftps_proto::entry::EntryKind::Symlink`] with the
    /// link's own size. Upload temp files are never listed.
    async fn list(&self, dir: &VirtualPath) -> Result<EntryStream, StorageError>;

    /// Stream the content of file `path` starting at byte `offset` (an offset
    /// at or past the end yields nothing). [`StorageError::IsADirectory`] for
    /// a directory.
    async fn read(
        &self,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Unpin>, StorageError>;

    /// The same file as [`Storage::read`], as an operating-system file
    /// positioned at `offset`, for backends that have one: the server then
    /// sends it with `sendfile(2)` when the data connection is not encrypted
    /// (PROT C, TYPE I). `None` (the default): use [`Storage::read`].
    async fn read_os_file(
        &self,
        _path: &VirtualPath,
        _offset: u64,
    ) -> Result<Option<std::fs::File>, StorageError> {
        Ok(None)
    }

    /// Start an upload to `path`. Fails before any data is accepted when the
    /// parent directory does not exist ([`StorageError::NotFound`]), `path`
    /// is a directory ([`StorageError::IsADirectory`]), the name is taken for
    /// [`WriteMode::CreateNew`] ([`StorageError::AlreadyExists`]), and so on.
    async fn write(
        &self,
        path: &VirtualPath,
        mode: WriteMode,
    ) -> Result<Box<dyn Upload>, StorageError>;

    /// Create directory `path` (its parent must exist).
    async fn create_dir(&self, path: &VirtualPath) -> Result<(), StorageError>;

    /// Remove the empty directory `path`
    /// ([`StorageError::DirectoryNotEmpty`] otherwise).
    async fn remove_dir(&self, path: &VirtualPath) -> Result<(), StorageError>;

    /// Remove the file (or symbolic link) `path`.
    async fn remove_file(&self, path: &VirtualPath) -> Result<(), StorageError>;

    /// Rename `from` to `to`. An existing file at `to` is replaced; an
    /// existing directory at `to` is an error. Not necessarily atomic.
    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), StorageError>;
}

/// An upload in progress, obtained from [`Storage::write`]. Write the data
/// through [`tokio::io::AsyncWrite`], then call exactly one of
/// [`Upload::commit`] or [`Upload::abort`]. Dropping an upload without either
/// behaves like a (background, best-effort) abort.
#[async_trait::async_trait]
pub trait Upload: tokio::io::AsyncWrite + Send + Unpin {
    /// Make the written bytes visible at the target path; returns total size
    /// of the target afterwards. On failure the upload is aborted (as by
    /// [`Upload::abort`]) and the error is returned.
    async fn commit(self: Box<Self>) -> Result<u64, StorageError>;

    /// The transfer failed or was aborted. The target keeps its previous
    /// content (or does not exist if it did not exist before) — except that
    /// for a NEW file (target did not exist when the upload began) with >0
    /// bytes written, the partial content may be kept under the target name
    /// so the user can see and resume it (return value tells which: true =
    /// partial kept).
    async fn abort(self: Box<Self>) -> bool;

    /// Number of bytes accepted by this upload so far (not counting bytes
    /// kept from an existing file).
    fn bytes_written(&self) -> u64;

    /// The operating-system file behind this upload, positioned where the
    /// next byte goes, for a transfer that writes it directly from a
    /// blocking thread instead of through [`tokio::io::AsyncWrite`]. Only
    /// before any `AsyncWrite` call; report what was written with
    /// [`Upload::wrote_directly`] before `commit` or `abort`. `None` (the
    /// default): write through `AsyncWrite`.
    fn os_file(&self) -> Option<std::fs::File> {
        None
    }

    /// `bytes` were written through the file from [`Upload::os_file`].
    fn wrote_directly(&mut self, bytes: u64) {
        let _ = bytes;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(code: i32) -> StorageError {
        StorageError::from(io::Error::from_raw_os_error(code))
    }

    #[test]
    fn io_errors_map_to_storage_errors() {
        assert!(matches!(map(errno::ENOENT), StorageError::NotFound));
        assert!(matches!(map(errno::EACCES), StorageError::PermissionDenied));
        assert!(matches!(map(errno::EPERM), StorageError::PermissionDenied));
        assert!(matches!(map(errno::EEXIST), StorageError::AlreadyExists));
        assert!(matches!(map(errno::ENOTDIR), StorageError::NotADirectory));
        assert!(matches!(map(errno::EISDIR), StorageError::IsADirectory));
        assert!(matches!(
            map(errno::ENOTEMPTY),
            StorageError::DirectoryNotEmpty
        ));
        assert!(matches!(map(errno::ENOSPC), StorageError::NoSpace));
        assert!(matches!(map(errno::EDQUOT), StorageError::NoSpace));
        assert!(matches!(map(errno::ELOOP), StorageError::PermissionDenied));
        assert!(matches!(map(errno::EXDEV), StorageError::Unsupported));
        assert!(matches!(
            map(errno::ENAMETOOLONG),
            StorageError::InvalidName
        ));
        assert!(matches!(map(5 /* EIO */), StorageError::Io(_)));
        let escape = io::Error::new(io::ErrorKind::PermissionDenied, CAP_STD_ESCAPE);
        assert!(matches!(
            StorageError::from(escape),
            StorageError::OutsideRoot
        ));
        let denied = io::Error::new(io::ErrorKind::PermissionDenied, "nope");
        assert!(matches!(
            StorageError::from(denied),
            StorageError::PermissionDenied
        ));
        assert!(matches!(
            StorageError::from(io::Error::from(io::ErrorKind::NotFound)),
            StorageError::NotFound
        ));
    }

    #[test]
    fn std_error_kinds_agree_with_errno_table() {
        // Guards the hand-written errno values against the platform's.
        let kinds = [
            (errno::ENOENT, io::ErrorKind::NotFound),
            (errno::EACCES, io::ErrorKind::PermissionDenied),
            (errno::EEXIST, io::ErrorKind::AlreadyExists),
            (errno::EINVAL, io::ErrorKind::InvalidInput),
        ];
        for (code, kind) in kinds {
            assert_eq!(io::Error::from_raw_os_error(code).kind(), kind);
        }
        for (code, text) in [
            (errno::ENOTEMPTY, "not empty"),
            (errno::ELOOP, "symbolic links"),
            (errno::ENAMETOOLONG, "too long"),
            (errno::EDQUOT, "quota"),
        ] {
            let msg = io::Error::from_raw_os_error(code)
                .to_string()
                .to_lowercase();
            assert!(msg.contains(text), "{code}: {msg}");
        }
    }

    #[test]
    fn reserved_names() {
        assert!(is_reserved_name(b".ftps-upload.abc.tmp"));
        assert!(!is_reserved_name(b".ftps-upload"));
        assert!(!is_reserved_name(b"file"));
    }
}
