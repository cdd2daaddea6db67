//! [`S3Fs`]: a [`Storage`] on an object store reached over the S3 API,
//! through Apache OpenDAL's `Operator`. One user sees one bucket below one key
//! prefix as `/`.
//!
//! What each FTP command means on objects (the full table, with the reasons,
//! is in `docs/storage.md`):
//!
//! * A file is an object `PREFIX/a/b`. A directory is a key prefix
//!   `PREFIX/a/b/`: it exists when its marker object (the empty object
//!   `PREFIX/a/b/`, which MKD writes) or any key below it exists. The root
//!   always exists.
//! * `LIST`/`NLST`/`MLSD` (RFC 959, RFC 3659 §7) list one level with the `/`
//!   delimiter: objects are files, common prefixes are directories; the pages
//!   of the listing stream through the bounded channel of every listing
//!   ([`list`]).
//! * `RETR` with `REST` (RFC 3659 §5) is a ranged read pinned to the
//!   object's ETag ([`download`]); `STOR`/`STOU`/`APPE`/`REST`+`STOR` are
//!   multipart uploads completed only on commit ([`upload`]).
//! * `RMD` deletes the marker of an empty directory only; `DELE` deletes an
//!   object; `RNFR`/`RNTO` of a file is a server-side copy, then a delete of
//!   the source; renaming a directory is refused (`FsError::Unsupported`, 502):
//!   it would copy every object below it one by one, visible half-done to
//!   every other session and not undoable on failure.
//!
//! Connection settings and the operators, one per bucket, are in [`store`];
//! the mapping of paths to keys is in [`keys`], of errors in [`error`];
//! the reclaiming of abandoned multipart uploads is in [`reclaim`].

mod download;
mod error;
mod keys;
mod list;
pub mod reclaim;
pub mod store;
mod upload;

use ftps_proto::entry::{Entry, EntryKind};
use ftps_proto::path::VirtualPath;
use futures_util::TryStreamExt;
use opendal::Operator;

use self::error::{from_opendal, is_not_found};
use self::keys::Keys;
use super::{Download, EntryStream, FsError, Storage, Upload, WriteMode};

pub use store::S3Stores;

/// The permission bits listings show for objects and directories.
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// How transfers use the store: part size and parts in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Bytes per part of an upload and per ranged read of a download.
    pub(crate) part_bytes: usize,
    /// Parts (ranges) of one transfer in flight at once.
    pub(crate) concurrent: usize,
}

/// One user's view of a bucket: the keys below a prefix.
#[derive(Clone)]
pub struct S3Fs {
    op: Operator,
    bucket: String,
    keys: Keys,
    tuning: Tuning,
    uploads: std::sync::Arc<reclaim::NodeUploads>,
    label: String,
}

impl std::fmt::Debug for S3Fs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Fs").field("at", &self.label).finish()
    }
}

/// What a key holds.
enum Found {
    File(opendal::Metadata),
    Dir,
    Nothing,
}

fn name_of(path: &VirtualPath) -> Vec<u8> {
    path.file_name()
        .map_or_else(|| b"/".to_vec(), <[u8]>::to_vec)
}

/// A directory entry (no time: a prefix has none).
fn dir_entry(name: Vec<u8>) -> Entry {
    Entry {
        mode: Some(DIR_MODE),
        ..Entry::new(name, EntryKind::Dir)
    }
}

/// A file entry from an object's metadata.
fn file_entry(name: Vec<u8>, md: &opendal::Metadata) -> Entry {
    Entry {
        size: md.content_length(),
        modified: md.last_modified().map(|t| t.into_inner().as_second()),
        mode: Some(FILE_MODE),
        ..Entry::new(name, EntryKind::File)
    }
}

impl S3Fs {
    /// The file or directory at `path`.
    async fn find(&self, path: &VirtualPath) -> Result<Found, FsError> {
        if path.is_root() {
            return Ok(Found::Dir);
        }
        let key = self.keys.file(path)?;
        match self.op.stat(&key).await {
            Ok(md) if md.is_file() => return Ok(Found::File(md)),
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(from_opendal(e)),
        }
        if self.dir_exists(path).await? {
            Ok(Found::Dir)
        } else {
            Ok(Found::Nothing)
        }
    }

    /// Whether the directory `path` exists: its marker or any key below it.
    async fn dir_exists(&self, path: &VirtualPath) -> Result<bool, FsError> {
        if path.is_root() {
            return Ok(true);
        }
        let dir = self.keys.dir(path)?;
        let mut lister = self
            .op
            .lister_with(&dir)
            .limit(1)
            .await
            .map_err(from_opendal)?;
        Ok(lister.try_next().await.map_err(from_opendal)?.is_some())
    }

    /// The parent of `path` must be a directory that exists.
    async fn check_parent(&self, path: &VirtualPath) -> Result<(), FsError> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        match self.find(&parent).await? {
            Found::Dir => Ok(()),
            Found::File(_) => Err(FsError::NotADirectory),
            Found::Nothing => Err(FsError::NotFound),
        }
    }

    /// Whether the directory with key `dir` has anything but its marker.
    async fn has_children(&self, dir: &str) -> Result<bool, FsError> {
        let mut lister = self
            .op
            .lister_with(dir)
            .limit(2)
            .await
            .map_err(from_opendal)?;
        while let Some(entry) = lister.try_next().await.map_err(from_opendal)? {
            if entry.path() != dir {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[async_trait::async_trait]
impl Storage for S3Fs {
    async fn metadata(&self, path: &VirtualPath) -> Result<Entry, FsError> {
        match self.find(path).await? {
            Found::File(md) => Ok(file_entry(name_of(path), &md)),
            Found::Dir => Ok(dir_entry(name_of(path))),
            Found::Nothing => Err(FsError::NotFound),
        }
    }

    async fn list(&self, dir: &VirtualPath) -> Result<EntryStream, FsError> {
        match self.find(dir).await? {
            Found::Dir => {}
            Found::File(_) => return Err(FsError::NotADirectory),
            Found::Nothing => return Err(FsError::NotFound),
        }
        list::start(&self.op, self.keys.dir(dir)?).await
    }

    async fn read(&self, path: &VirtualPath, offset: u64) -> Result<Box<dyn Download>, FsError> {
        let md = match self.find(path).await? {
            Found::File(md) => md,
            Found::Dir => return Err(FsError::IsADirectory),
            Found::Nothing => return Err(FsError::NotFound),
        };
        let key = self.keys.file(path)?;
        let download = download::open(&self.op, key, &md, offset, self.tuning).await?;
        Ok(Box::new(download))
    }

    async fn write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>, FsError> {
        if path.is_root() {
            return Err(FsError::IsADirectory);
        }
        let key = self.keys.file(path)?;
        self.check_parent(path).await?;
        let existing = match self.find(path).await? {
            Found::File(md) => Some(md),
            Found::Dir => return Err(FsError::IsADirectory),
            Found::Nothing => None,
        };
        let target = upload::Target {
            op: &self.op,
            bucket: &self.bucket,
            key,
            existing,
            tuning: self.tuning,
            uploads: &self.uploads,
        };
        Ok(Box::new(upload::start(target, mode).await?))
    }

    async fn create_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        if path.is_root() {
            return Err(FsError::AlreadyExists);
        }
        let dir = self.keys.dir(path)?;
        self.check_parent(path).await?;
        match self.find(path).await? {
            Found::Nothing => self.op.create_dir(&dir).await.map_err(from_opendal),
            Found::File(_) | Found::Dir => Err(FsError::AlreadyExists),
        }
    }

    async fn remove_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        if path.is_root() {
            return Err(FsError::PermissionDenied);
        }
        let dir = self.keys.dir(path)?;
        match self.find(path).await? {
            Found::Dir => {}
            Found::File(_) => return Err(FsError::NotADirectory),
            Found::Nothing => return Err(FsError::NotFound),
        }
        if self.has_children(&dir).await? {
            return Err(FsError::DirectoryNotEmpty);
        }
        self.op.delete(&dir).await.map_err(from_opendal)
    }

    async fn remove_file(&self, path: &VirtualPath) -> Result<(), FsError> {
        if path.is_root() {
            return Err(FsError::IsADirectory);
        }
        let key = self.keys.file(path)?;
        match self.find(path).await? {
            Found::File(_) => self.op.delete(&key).await.map_err(from_opendal),
            Found::Dir => Err(FsError::IsADirectory),
            Found::Nothing => Err(FsError::NotFound),
        }
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), FsError> {
        if from.is_root() || to.is_root() {
            return Err(FsError::PermissionDenied);
        }
        let (from_key, to_key) = (self.keys.file(from)?, self.keys.file(to)?);
        match self.find(from).await? {
            Found::File(_) => {}
            // Renaming a directory would copy every object below it, one by
            // one, half-done for every other session and not undoable.
            Found::Dir => return Err(FsError::Unsupported),
            Found::Nothing => return Err(FsError::NotFound),
        }
        if from.components() == to.components() {
            return Ok(());
        }
        self.check_parent(to).await?;
        if let Found::Dir = self.find(to).await? {
            return Err(FsError::IsADirectory);
        }
        self.op
            .copy(&from_key, &to_key)
            .await
            .map_err(from_opendal)?;
        self.op.delete(&from_key).await.map_err(from_opendal)
    }
}
