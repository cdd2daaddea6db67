//! [`LocalFs`]: the local file-system back-end of [`Storage`].
//!
//! The storage root is opened once as a [`cap_std::fs::Dir`] and every access
//! goes through that handle, so paths are confined beneath it by cap-std:
//! absolute paths, `..` and symbolic links leading outside the root are
//! refused ([`FsError::OutsideRoot`]). Symbolic links that stay inside
//! the root work normally. [`VirtualPath`] components are mapped to relative
//! paths byte for byte, so non-UTF-8 names round-trip unchanged.
//!
//! Blocking file-system calls run on tokio's blocking pool. Behind the
//! trait this back-end offers the local disk's fast paths: downloads read a
//! file opened once ([`download`]: one open and one read for a small file,
//! `sendfile(2)` to a plain socket, direct reads from a transfer's own
//! thread), uploads write directly from such a thread and start the disk's
//! write-back as they go ([`upload`]). Listings stream from a blocking task
//! ([`list`]). Uploads follow the no-partial-replace rule of the [`super`]
//! module (see [`upload`]).

mod download;
mod list;
mod reclaim;
mod temp;
mod upload;

#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::{Dir, Metadata, MetadataExt};
use ftps_proto::entry::{Entry, EntryKind};
use ftps_proto::path::VirtualPath;

use super::error::IoResultExt;
use super::{
    is_reserved_name, Download, EntryStream, FsError, Storage, Upload, Usage, WriteMode,
    LIST_CHANNEL_CAPACITY,
};

/// A [`Storage`] on the local file system, confined beneath one directory.
#[derive(Clone)]
pub struct LocalFs {
    root: Arc<Dir>,
    root_path: PathBuf,
}

impl std::fmt::Debug for LocalFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalFs")
            .field("root", &self.root_path)
            .finish()
    }
}

impl LocalFs {
    /// Open the directory `root` as the storage root. All later accesses go
    /// through this one handle, so renaming or replacing `root` afterwards
    /// does not change which directory is served.
    pub fn open(root: &Path) -> Result<LocalFs, FsError> {
        let dir = Dir::open_ambient_dir(root, cap_std::ambient_authority()).fs()?;
        Ok(LocalFs {
            root: Arc::new(dir),
            root_path: root.to_path_buf(),
        })
    }

    /// Whether this handle still is the directory at `path` (same device and
    /// inode): a handle shared between sessions is reused only while the
    /// root has not been replaced.
    pub fn is_at(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let (Ok(open), Ok(now)) = (self.root.dir_metadata(), std::fs::metadata(path)) else {
            return false;
        };
        cap_std::fs::MetadataExt::dev(&open) == now.dev()
            && cap_std::fs::MetadataExt::ino(&open) == now.ino()
    }

    /// The path `root` was opened from (for logging).
    pub fn root_path(&self) -> &Path {
        &self.root_path
    }
}

/// Refuse components that are reserved for upload temp files, and (as a
/// second line of defence) anything that is not a plain single name.
fn check_names(path: &VirtualPath) -> Result<(), FsError> {
    for c in path.components() {
        if c.is_empty()
            || c.as_slice() == b"."
            || c.as_slice() == b".."
            || c.contains(&b'/')
            || c.contains(&0)
            || is_reserved_name(c)
        {
            return Err(FsError::InvalidName);
        }
    }
    Ok(())
}

/// The path relative to the root, byte for byte; `.` for the root itself.
fn rel_path(path: &VirtualPath) -> PathBuf {
    if path.is_root() {
        return PathBuf::from(".");
    }
    let mut p = PathBuf::new();
    for c in path.components() {
        p.push(OsStr::from_bytes(c));
    }
    p
}

/// The relative path of the parent directory (`.` for top-level names).
fn parent_rel_path(path: &VirtualPath) -> PathBuf {
    match path.parent() {
        Some(p) => rel_path(&p),
        None => PathBuf::from("."),
    }
}

/// Run a blocking file-system job on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, FsError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, FsError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(FsError::Other(e.to_string())),
    }
}

fn kind_of(md: &Metadata) -> EntryKind {
    let ft = md.file_type();
    if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    }
}

fn entry_from(name: Vec<u8>, md: &Metadata) -> Entry {
    Entry {
        name,
        kind: kind_of(md),
        size: md.len(),
        modified: Some(md.mtime()),
        mode: Some(md.mode() & 0o7777),
        owner: None,
        group: None,
        unique: Some(format!("{:x}g{:x}", md.dev(), md.ino())),
    }
}

fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

fn check_regular_file(md: &Metadata) -> Result<(), FsError> {
    if md.is_dir() {
        Err(FsError::IsADirectory)
    } else if !md.is_file() {
        Err(FsError::NotAFile)
    } else {
        Ok(())
    }
}

#[async_trait::async_trait]
impl Storage for LocalFs {
    async fn metadata(&self, path: &VirtualPath) -> Result<Entry, FsError> {
        check_names(path)?;
        let rel = rel_path(path);
        let name = match path.file_name() {
            Some(n) => n.to_vec(),
            None => b"/".to_vec(),
        };
        let root = Arc::clone(&self.root);
        blocking(move || {
            let md = root.metadata(&rel).fs()?;
            Ok(entry_from(name, &md))
        })
        .await
    }

    async fn list(&self, dir: &VirtualPath) -> Result<EntryStream, FsError> {
        check_names(dir)?;
        let rel = rel_path(dir);
        let root = Arc::clone(&self.root);
        let (read_dir, root, rel) = blocking(move || {
            let rd = root.read_dir(&rel).fs()?;
            Ok((rd, root, rel))
        })
        .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(LIST_CHANNEL_CAPACITY);
        tokio::task::spawn_blocking(move || list::list_worker(&root, &rel, read_dir, &tx));
        Ok(rx)
    }

    async fn read(&self, path: &VirtualPath, offset: u64) -> Result<Box<dyn Download>, FsError> {
        check_names(path)?;
        let rel = rel_path(path);
        let root = Arc::clone(&self.root);
        let download = blocking(move || download::open(&root, &rel, offset)).await?;
        Ok(Box::new(download))
    }

    async fn write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>, FsError> {
        check_names(path)?;
        if path.is_root() {
            return Err(FsError::IsADirectory);
        }
        let target = rel_path(path);
        let parent = parent_rel_path(path);
        let root = Arc::clone(&self.root);
        let prepared = {
            let root = Arc::clone(&root);
            blocking(move || upload::prepare(&root, parent, target, mode)).await?
        };
        Ok(Box::new(upload::LocalUpload::new(root, prepared)))
    }

    async fn create_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        check_names(path)?;
        if path.is_root() {
            return Err(FsError::AlreadyExists);
        }
        let rel = rel_path(path);
        let root = Arc::clone(&self.root);
        blocking(move || root.create_dir(&rel).fs()).await
    }

    async fn remove_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        check_names(path)?;
        if path.is_root() {
            return Err(FsError::PermissionDenied);
        }
        let rel = rel_path(path);
        let root = Arc::clone(&self.root);
        blocking(move || root.remove_dir(&rel).fs()).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> Result<(), FsError> {
        check_names(path)?;
        if path.is_root() {
            return Err(FsError::IsADirectory);
        }
        let rel = rel_path(path);
        let root = Arc::clone(&self.root);
        blocking(move || root.remove_file(&rel).fs()).await
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), FsError> {
        check_names(from)?;
        check_names(to)?;
        if from.is_root() || to.is_root() {
            return Err(FsError::PermissionDenied);
        }
        let same = from.components() == to.components();
        let from = rel_path(from);
        let to = rel_path(to);
        let root = Arc::clone(&self.root);
        blocking(move || {
            let src = root.symlink_metadata(&from).fs()?;
            if same {
                return Ok(());
            }
            match root.symlink_metadata(&to) {
                Ok(dst) if dst.is_dir() => {
                    // POSIX would replace an empty directory; FTP must not.
                    return Err(if src.is_dir() {
                        FsError::AlreadyExists
                    } else {
                        FsError::IsADirectory
                    });
                }
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(super::error::from_io(e)),
            }
            root.rename(&from, &root, &to).fs()
        })
        .await
    }

    /// Regular files only: symbolic links are neither followed nor counted.
    async fn usage(&self) -> Result<Usage, FsError> {
        let root = Arc::clone(&self.root);
        blocking(move || measure(&root)).await
    }

    async fn reclaim_abandoned_uploads(
        &self,
        unchanged_for: std::time::Duration,
    ) -> Result<super::Reclaimed, FsError> {
        let root = Arc::clone(&self.root);
        blocking(move || Ok(reclaim::reclaim(&root, unchanged_for))).await
    }

    async fn set_modified(&self, path: &VirtualPath, unix_secs: i64) -> Result<(), FsError> {
        check_names(path)?;
        let rel = rel_path(path);
        let root = Arc::clone(&self.root);
        let when = system_time(unix_secs);
        blocking(move || {
            // Opened read-only through the root handle (so confined like
            // every other access); futimens needs no write access.
            let file = if path_is_dir(&root, &rel)? {
                root.open_dir(&rel).fs()?.into_std_file()
            } else {
                root.open(&rel).fs()?.into_std()
            };
            file.set_times(std::fs::FileTimes::new().set_modified(when))
                .fs()
        })
        .await
    }
}

/// Whether `rel` is a directory (following links inside the root).
fn path_is_dir(root: &Dir, rel: &Path) -> Result<bool, FsError> {
    Ok(root.metadata(rel).fs()?.is_dir())
}

/// `unix_secs` seconds from the Unix epoch (before it for a negative value).
fn system_time(unix_secs: i64) -> std::time::SystemTime {
    let offset = std::time::Duration::from_secs(unix_secs.unsigned_abs());
    let moved = if unix_secs >= 0 {
        std::time::UNIX_EPOCH.checked_add(offset)
    } else {
        std::time::UNIX_EPOCH.checked_sub(offset)
    };
    moved.unwrap_or(std::time::UNIX_EPOCH)
}

/// Walk the tree under `root` without following symbolic links.
fn measure(root: &Dir) -> Result<Usage, FsError> {
    let mut usage = Usage::default();
    let mut pending = vec![PathBuf::from(".")];
    while let Some(dir) = pending.pop() {
        let entries = match root.read_dir(&dir) {
            Ok(entries) => entries,
            // Removed meanwhile.
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(super::error::from_io(e)),
        };
        for entry in entries {
            let entry = entry.fs()?;
            let name = entry.file_name();
            if is_reserved_name(name.as_bytes()) {
                continue;
            }
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                pending.push(dir.join(&name));
            } else if file_type.is_file() {
                let size = entry.metadata().map(|md| md.len()).unwrap_or(0);
                usage.bytes = usage.bytes.saturating_add(size);
                usage.files = usage.files.saturating_add(1);
            }
        }
    }
    Ok(usage)
}
