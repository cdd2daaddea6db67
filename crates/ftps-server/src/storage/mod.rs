//! Storage back-ends: where the bytes behind the FTP name space live.
//!
//! This module owns the [`Storage`] trait, the only way the rest of the
//! server reaches data. It serves the RFC 959 file commands:
//!
//! * `RETR` (with `REST` offsets, RFC 3659 §5) → [`Storage::read`], a
//!   [`Download`]
//! * `STOR`, `STOU`, `APPE`, `REST`+`STOR` → [`Storage::write`] with a
//!   [`WriteMode`], an [`Upload`] finished by [`Upload::commit`] or
//!   [`Upload::abort`]
//! * `LIST`, `NLST`, `MLSD` → [`Storage::list`]; `SIZE`, `MDTM`, `MLST`,
//!   `CWD` checks → [`Storage::metadata`]
//! * `MKD`, `RMD`, `DELE`, `RNFR`/`RNTO` → [`Storage::create_dir`],
//!   [`Storage::remove_dir`], [`Storage::remove_file`], [`Storage::rename`]
//! * `MFMT` (draft-somers-ftp-mfxx) → [`Storage::set_modified`] (optional:
//!   by default [`FsError::Unsupported`]); `HASH` reads through
//!   [`Storage::read`] like `RETR`
//!
//! Every failure is an [`FsError`] ([`error`] maps operating-system errors
//! to it; the session maps it to the reply).
//!
//! The trait is small so that an object store can implement it as well as
//! the local file system ([`local::LocalFs`]) — as the object store of
//! [`s3::S3Fs`] does: reads come in chunks from an
//! offset, writes go into an upload that is either committed or aborted,
//! listings stream entries through a bounded channel, and nothing assumes
//! that `rename` is atomic. A back-end's fast paths stay behind the trait as
//! optional capabilities with portable defaults, so the transfer code never
//! knows which back-end it talks to:
//!
//! * [`Download::copy_to_socket`]: zero-copy sending (`sendfile(2)` for the
//!   local disk) when the data connection is not encrypted;
//! * [`Download::read_blocking`] and [`Upload::write_blocking`]: direct
//!   blocking I/O for the bulk transfers that run on a thread of their own
//!   (the local disk writes there, starting its write-back as it goes).
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

pub mod error;
pub mod local;
pub mod s3;

use std::io;
use std::os::fd::BorrowedFd;

use ftps_proto::entry::Entry;
use ftps_proto::path::VirtualPath;

pub use error::FsError;
pub use local::LocalFs;

/// Prefix of the names of in-progress upload files. Such names are hidden
/// from listings and refused ([`FsError::InvalidName`]) as operands.
pub const UPLOAD_TEMP_PREFIX: &[u8] = b".ftps-upload.";

/// Capacity of the channel behind an [`EntryStream`].
pub const LIST_CHANNEL_CAPACITY: usize = 64;

/// Whether `name` (one path component) is reserved for upload temp files.
pub fn is_reserved_name(name: &[u8]) -> bool {
    name.starts_with(UPLOAD_TEMP_PREFIX)
}

/// How [`Storage::write`] treats an existing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// `STOR`: the new content replaces the file, but only on commit.
    Create,
    /// `STOU`: fail with [`FsError::AlreadyExists`] if the name exists;
    /// the commit never overwrites a file that appeared meanwhile.
    CreateNew,
    /// `APPE`: add to the end of the file (creating it if missing).
    Append,
    /// `REST n` + `STOR`: keep the first `n` bytes of the existing file and
    /// write from offset `n`. `n` greater than the file length fails with
    /// [`FsError::OffsetBeyondEnd`].
    Resume(u64),
}

/// A directory listing in progress: entries arrive through a bounded channel
/// (capacity [`LIST_CHANNEL_CAPACITY`]) so that a huge directory streams with
/// bounded memory. The channel closes after the last entry; an `Err` item
/// ends the listing early. Dropping the receiver stops the producer.
pub type EntryStream = tokio::sync::mpsc::Receiver<Result<Entry, FsError>>;

/// A file-system view rooted at some storage root. Paths are
/// [`VirtualPath`]s, relative to that root.
///
/// Implementations must not let any operation reach outside the root, and
/// callers must not assume that [`Storage::rename`] is atomic.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Facts about `path`. `Entry::name` is the last component (`b"/"` for
    /// the root). Symbolic links are followed, but only inside the root.
    async fn metadata(&self, path: &VirtualPath) -> Result<Entry, FsError>;

    /// Stream the entries of directory `dir` ([`FsError::NotADirectory`]
    /// if it is a file). Names are exactly the stored bytes. A symbolic link
    /// is described by its target when that stays inside the root, otherwise
    /// it is listed as [`ftps_proto::entry::EntryKind::Symlink`] with the
    /// link's own size. Upload temp files are never listed.
    async fn list(&self, dir: &VirtualPath) -> Result<EntryStream, FsError>;

    /// Open the regular file `path` for reading from byte `offset` (an offset
    /// at or past the end reads nothing). [`FsError::IsADirectory`] for a
    /// directory, [`FsError::NotAFile`] for a FIFO, socket or device.
    async fn read(&self, path: &VirtualPath, offset: u64) -> Result<Box<dyn Download>, FsError>;

    /// Start an upload to `path`. Fails before any data is accepted when the
    /// parent directory does not exist ([`FsError::NotFound`]), `path`
    /// is a directory ([`FsError::IsADirectory`]), the name is taken for
    /// [`WriteMode::CreateNew`] ([`FsError::AlreadyExists`]), and so on.
    async fn write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>, FsError>;

    /// Create directory `path` (its parent must exist).
    async fn create_dir(&self, path: &VirtualPath) -> Result<(), FsError>;

    /// Remove the empty directory `path`
    /// ([`FsError::DirectoryNotEmpty`] otherwise).
    async fn remove_dir(&self, path: &VirtualPath) -> Result<(), FsError>;

    /// Remove the file (or symbolic link) `path`.
    async fn remove_file(&self, path: &VirtualPath) -> Result<(), FsError>;

    /// Rename `from` to `to`. An existing file at `to` is replaced; an
    /// existing directory at `to` is an error. Not necessarily atomic.
    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), FsError>;

    /// Set the modification time of the file or directory `path` to
    /// `unix_secs` seconds since the Unix epoch (MFMT,
    /// draft-somers-ftp-mfxx). The default, for back-ends that cannot, is
    /// [`FsError::Unsupported`] (the client gets 502).
    async fn set_modified(&self, path: &VirtualPath, unix_secs: i64) -> Result<(), FsError> {
        let _ = (path, unix_secs);
        Err(FsError::Unsupported)
    }

    /// Reclaim the in-progress upload files that servers sharing this
    /// storage abandoned (killed mid-upload): never one that a live upload,
    /// of this or another server, still writes, and none changed within
    /// `unchanged_for` (`server.abandoned_upload_secs`). A new file's
    /// abandoned upload becomes its resumable partial where the name is
    /// free. The server calls it at start-up and then periodically. The
    /// default, for back-ends that leave nothing behind, does nothing; the
    /// local back-end's rules are in `local::reclaim`.
    async fn reclaim_abandoned_uploads(
        &self,
        unchanged_for: std::time::Duration,
    ) -> Result<Reclaimed, FsError> {
        let _ = unchanged_for;
        Ok(Reclaimed::default())
    }
}

/// What [`Storage::reclaim_abandoned_uploads`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Abandoned upload files removed.
    pub removed: usize,
    /// Abandoned uploads of new files kept as their resumable partials.
    pub kept: usize,
}

fn not_offered() -> io::Error {
    io::Error::from(io::ErrorKind::Unsupported)
}

/// A file being read, obtained from [`Storage::read`], positioned at the
/// offset asked for.
#[async_trait::async_trait]
pub trait Download: Send {
    /// Bytes from the read position to the end of the file as it was when
    /// opened (`None` if the back-end cannot tell): the size announced in the
    /// 150 reply.
    fn remaining(&self) -> Option<u64>;

    /// The next piece of the file: `buf` (emptied first, its allocation
    /// reused) filled with up to `max` bytes. An empty buffer means the end
    /// of the file. The caller may write the previous piece to the network
    /// while this runs.
    async fn read_chunk(&mut self, buf: Vec<u8>, max: usize) -> Result<Vec<u8>, FsError>;

    /// Whether [`Download::read_blocking`] reads directly, so that a bulk
    /// download is worth a blocking thread of its own. Default: no.
    fn reads_blocking(&self) -> bool {
        false
    }

    /// Read the next bytes into `buf` from a blocking thread (`Ok(0)` at the
    /// end). Called only when [`Download::reads_blocking`] is true.
    fn read_blocking(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let _ = buf;
        Err(not_offered())
    }

    /// Copy up to `max` bytes straight from storage into the connected,
    /// non-blocking socket `socket`, without passing them through this
    /// process (`sendfile(2)`): `Some(Ok(0))` at the end, `Some(Err(_))` as a
    /// write would fail (`WouldBlock` when the socket is full). `None` (the
    /// default): not offered; use [`Download::read_chunk`].
    fn copy_to_socket(&mut self, socket: BorrowedFd<'_>, max: usize) -> Option<io::Result<usize>> {
        let _ = (socket, max);
        None
    }
}

/// An upload in progress, obtained from [`Storage::write`]. Write the data
/// with [`Upload::write`] (or, after [`Upload::begin_blocking`] said yes,
/// [`Upload::write_blocking`]), then call exactly one of [`Upload::commit`]
/// or [`Upload::abort`]. Dropping an upload without either behaves like a
/// (background, best-effort) abort.
#[async_trait::async_trait]
pub trait Upload: Send {
    /// Write all of `data` after what was written so far. When it returns
    /// the back-end holds the bytes: an abort that follows undoes them.
    async fn write(&mut self, data: &[u8]) -> Result<(), FsError>;

    /// Get ready for [`Upload::write_blocking`] from a blocking thread: true
    /// when this back-end writes directly there (what earlier writes left
    /// pending is finished first), so a bulk upload is worth a thread of its
    /// own; false (the default): keep using [`Upload::write`].
    async fn begin_blocking(&mut self) -> Result<bool, FsError> {
        Ok(false)
    }

    /// Write all of `data` from a blocking thread, after
    /// [`Upload::begin_blocking`] returned true.
    fn write_blocking(&mut self, data: &[u8]) -> Result<(), FsError> {
        let _ = data;
        Err(FsError::Unsupported)
    }

    /// Make the written bytes visible at the target path; returns the total
    /// size of the target afterwards. On failure the upload is aborted (as by
    /// [`Upload::abort`]) and the error is returned.
    async fn commit(self: Box<Self>) -> Result<u64, FsError>;

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names() {
        assert!(is_reserved_name(b".ftps-upload.abc.tmp"));
        assert!(!is_reserved_name(b".ftps-upload"));
        assert!(!is_reserved_name(b"file"));
    }
}
