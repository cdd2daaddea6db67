//! [`LocalFs`]: the local file-system back-end of [`Storage`].
//!
//! The storage root is opened once as a [`cap_std::fs::Dir`] and every access
//! goes through that handle, so paths are confined beneath it by cap-std:
//! absolute paths, `..` and symbolic links leading outside the root are
//! refused ([`StorageError::OutsideRoot`]). Symbolic links that stay inside
//! the root work normally. [`VirtualPath`] components are mapped to relative
//! paths byte for byte, so non-UTF-8 names round-trip unchanged.
//!
//! Blocking file-system calls run on tokio's blocking pool; file contents
//! stream through [`tokio::fs::File`].
//!
//! Uploads follow the no-partial-replace rule of the [`super`] module:
//!
//! * [`WriteMode::Create`] / [`WriteMode::CreateNew`] write to a temp file
//!   `.ftps-upload.<random hex>.tmp` next to the target; commit syncs it and
//!   renames it over the target (atomic on POSIX), or for `CreateNew` links it
//!   without replacing anything. Abort deletes the temp file, or, for a new
//!   target that received data, moves the partial file to the target name if
//!   that name is still free.
//! * [`WriteMode::Append`] and [`WriteMode::Resume`] at the current end of the
//!   file write in place; abort truncates back to the original length.
//! * [`WriteMode::Resume`] before the end copies the kept prefix into a temp
//!   file and continues like `Create`, so the old bytes survive a failure.
//!
//! A symbolic link at the target of a `Create` upload is replaced by the new
//! file rather than written through.

use super::{
    is_reserved_name, EntryStream, Storage, StorageError, Upload, WriteMode, LIST_CHANNEL_CAPACITY,
    UPLOAD_TEMP_PREFIX,
};
use cap_std::fs::{Dir, Metadata, MetadataExt, OpenOptions};
use ftps_proto::entry::{Entry, EntryKind};
use ftps_proto::path::VirtualPath;
use std::ffi::OsStr;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// How many random temp names to try before giving up.
const TEMP_NAME_ATTEMPTS: usize = 16;

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
    pub fn open(root: &Path) -> Result<LocalFs, StorageError> {
        let dir = Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
        Ok(LocalFs {
            root: Arc::new(dir),
            root_path: root.to_path_buf(),
        })
    }

    /// Open a regular file for reading, positioned at `offset` (at most its length).
    async fn open_for_read(
        &self,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<std::fs::File, StorageError> {
        check_names(path)?;
        let rel = rel_path(path);
        let root = Arc::clone(&self.root);
        blocking(move || {
            // Check the type first: opening a FIFO would block.
            check_regular_file(&root.metadata(&rel)?)?;
            let mut file = root.open(&rel)?.into_std();
            let len = {
                let md = file.metadata()?;
                if md.is_dir() {
                    return Err(StorageError::IsADirectory);
                }
                if !md.is_file() {
                    return Err(StorageError::NotAFile);
                }
                md.len()
            };
            if offset > 0 {
                file.seek(SeekFrom::Start(offset.min(len)))?;
            }
            Ok(file)
        })
        .await
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
fn check_names(path: &VirtualPath) -> Result<(), StorageError> {
    for c in path.components() {
        if c.is_empty()
            || c.as_slice() == b"."
            || c.as_slice() == b".."
            || c.contains(&b'/')
            || c.contains(&0)
            || is_reserved_name(c)
        {
            return Err(StorageError::InvalidName);
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
async fn blocking<T, F>(f: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(StorageError::Io(io::Error::other(e))),
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

#[async_trait::async_trait]
impl Storage for LocalFs {
    async fn metadata(&self, path: &VirtualPath) -> Result<Entry, StorageError> {
        check_names(path)?;
        let rel = rel_path(path);
        let name = match path.file_name() {
            Some(n) => n.to_vec(),
            None => b"/".to_vec(),
        };
        let root = Arc::clone(&self.root);
        blocking(move || {
            let md = root.metadata(&rel)?;
            Ok(entry_from(name, &md))
        })
        .await
    }

    async fn list(&self, dir: &VirtualPath) -> Result<EntryStream, StorageError> {
        check_names(dir)?;
        let rel = rel_path(dir);
        let root = Arc::clone(&self.root);
        let (read_dir, root, rel) = blocking(move || {
            let rd = root.read_dir(&rel)?;
            Ok((rd, root, rel))
        })
        .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(LIST_CHANNEL_CAPACITY);
        tokio::task::spawn_blocking(move || list_worker(&root, &rel, read_dir, &tx));
        Ok(rx)
    }

    async fn read(
        &self,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Unpin>, StorageError> {
        let file = self.open_for_read(path, offset).await?;
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn read_os_file(
        &self,
        path: &VirtualPath,
        offset: u64,
    ) -> Result<Option<std::fs::File>, StorageError> {
        self.open_for_read(path, offset).await.map(Some)
    }

    async fn write(
        &self,
        path: &VirtualPath,
        mode: WriteMode,
    ) -> Result<Box<dyn Upload>, StorageError> {
        check_names(path)?;
        if path.is_root() {
            return Err(StorageError::IsADirectory);
        }
        let target = rel_path(path);
        let parent = parent_rel_path(path);
        let root = Arc::clone(&self.root);
        let (file, finish) = blocking(move || prepare_upload(&root, parent, target, mode)).await?;
        Ok(Box::new(LocalUpload {
            inner: Some(Inner {
                file: tokio::fs::File::from_std(file),
                finish,
            }),
            root: Arc::clone(&self.root),
            written: 0,
        }))
    }

    async fn create_dir(&self, path: &VirtualPath) -> Result<(), StorageError> {
        check_names(path)?;
        if path.is_root() {
            return Err(StorageError::AlreadyExists);
        }
        let rel = rel_path(path);
        let root = Arc::clone(&self.root);
        blocking(move || Ok(root.create_dir(&rel)?)).await
    }

    async fn remove_dir(&self, path: &VirtualPath) -> Result<(), StorageError> {
        check_names(path)?;
        if path.is_root() {
            return Err(StorageError::PermissionDenied);
        }
        let rel = rel_path(path);
        let root = Arc::clone(&self.root);
        blocking(move || Ok(root.remove_dir(&rel)?)).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> Result<(), StorageError> {
        check_names(path)?;
        if path.is_root() {
            return Err(StorageError::IsADirectory);
        }
        let rel = rel_path(path);
        let root = Arc::clone(&self.root);
        blocking(move || Ok(root.remove_file(&rel)?)).await
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), StorageError> {
        check_names(from)?;
        check_names(to)?;
        if from.is_root() || to.is_root() {
            return Err(StorageError::PermissionDenied);
        }
        let same = from.components() == to.components();
        let from = rel_path(from);
        let to = rel_path(to);
        let root = Arc::clone(&self.root);
        blocking(move || {
            let src = root.symlink_metadata(&from)?;
            if same {
                return Ok(());
            }
            match root.symlink_metadata(&to) {
                Ok(dst) if dst.is_dir() => {
                    // POSIX would replace an empty directory; FTP must not.
                    return Err(if src.is_dir() {
                        StorageError::AlreadyExists
                    } else {
                        StorageError::IsADirectory
                    });
                }
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(root.rename(&from, &root, &to)?)
        })
        .await
    }
}

fn check_regular_file(md: &Metadata) -> Result<(), StorageError> {
    if md.is_dir() {
        Err(StorageError::IsADirectory)
    } else if !md.is_file() {
        Err(StorageError::NotAFile)
    } else {
        Ok(())
    }
}

/// Producer side of [`Storage::list`]: runs on the blocking pool and feeds
/// the bounded channel until the directory is exhausted or the receiver is
/// dropped.
fn list_worker(
    root: &Dir,
    rel: &Path,
    read_dir: cap_std::fs::ReadDir,
    tx: &tokio::sync::mpsc::Sender<Result<Entry, StorageError>>,
) {
    for item in read_dir {
        let dirent = match item {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.blocking_send(Err(e.into()));
                return;
            }
        };
        let name = dirent.file_name();
        let name = name.as_bytes();
        if is_reserved_name(name) {
            continue;
        }
        let entry = match dirent.metadata() {
            // `DirEntry::metadata` does not follow symlinks.
            Ok(lmd) if lmd.is_symlink() => match root.metadata(rel.join(OsStr::from_bytes(name))) {
                Ok(md) => entry_from(name.to_vec(), &md),
                // Dangling, looping or leading outside the root: describe the
                // link itself and never follow it.
                Err(_) => entry_from(name.to_vec(), &lmd),
            },
            Ok(lmd) => entry_from(name.to_vec(), &lmd),
            Err(e) if is_not_found(&e) => continue, // removed meanwhile
            Err(e) => {
                // Cannot stat (e.g. no search permission): still list the name.
                tracing::debug!(error = %e, "cannot stat directory entry");
                let kind = match dirent.file_type() {
                    Ok(ft) if ft.is_dir() => EntryKind::Dir,
                    Ok(ft) if ft.is_file() => EntryKind::File,
                    Ok(ft) if ft.is_symlink() => EntryKind::Symlink,
                    _ => EntryKind::Other,
                };
                Entry {
                    name: name.to_vec(),
                    kind,
                    size: 0,
                    modified: None,
                    mode: None,
                    owner: None,
                    group: None,
                    unique: None,
                }
            }
        };
        if tx.blocking_send(Ok(entry)).is_err() {
            return; // receiver dropped: stop listing
        }
    }
}

/// How an upload is finished.
enum Finish {
    /// Data goes to a temp file that replaces (or, with `no_replace`, is
    /// linked to) the target on commit.
    Temp {
        temp: PathBuf,
        target: PathBuf,
        parent: PathBuf,
        target_existed: bool,
        no_replace: bool,
    },
    /// Data is appended in place; abort truncates back to `original_len`.
    InPlace { original_len: u64 },
}

/// Check the target and open the file the upload writes to.
fn prepare_upload(
    root: &Dir,
    parent: PathBuf,
    target: PathBuf,
    mode: WriteMode,
) -> Result<(std::fs::File, Finish), StorageError> {
    let parent_md = root.metadata(&parent)?;
    if !parent_md.is_dir() {
        return Err(StorageError::NotADirectory);
    }
    let existing = match root.metadata(&target) {
        Ok(md) => {
            check_regular_file(&md)?;
            Some(md)
        }
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(e.into()),
    };
    let Some(existing) = existing else {
        return match mode {
            WriteMode::Resume(n) if n > 0 => Err(StorageError::OffsetBeyondEnd),
            WriteMode::CreateNew => new_temp(root, parent, target, false, true, None),
            _ => new_temp(root, parent, target, false, false, None),
        };
    };
    match mode {
        WriteMode::CreateNew => Err(StorageError::AlreadyExists),
        WriteMode::Create => {
            // Probe write permission on the existing file, as an in-place
            // overwrite would: a read-only file is not silently replaced.
            drop(open_for_write(root, &target)?);
            new_temp(root, parent, target, true, false, Some(existing.mode()))
        }
        WriteMode::Append => {
            let mut file = open_for_write(root, &target)?;
            let len = file.metadata()?.len();
            file.seek(SeekFrom::Start(len))?;
            Ok((file, Finish::InPlace { original_len: len }))
        }
        WriteMode::Resume(n) => {
            let mut file = open_for_write(root, &target)?;
            let len = file.metadata()?.len();
            if n > len {
                return Err(StorageError::OffsetBeyondEnd);
            }
            if n == len {
                file.seek(SeekFrom::Start(len))?;
                return Ok((file, Finish::InPlace { original_len: len }));
            }
            drop(file);
            let src = root.open(&target)?.into_std();
            let (mut tmp, finish) =
                new_temp(root, parent, target, true, false, Some(existing.mode()))?;
            let copied = match io::copy(&mut (&src).take(n), &mut tmp) {
                Ok(c) => c,
                Err(e) => {
                    discard_temp(root, &finish);
                    return Err(e.into());
                }
            };
            if copied != n {
                // The file shrank meanwhile.
                discard_temp(root, &finish);
                return Err(StorageError::OffsetBeyondEnd);
            }
            Ok((tmp, finish))
        }
    }
}

fn open_for_write(root: &Dir, target: &Path) -> Result<std::fs::File, StorageError> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    let file = root.open_with(target, &opts)?.into_std();
    let md = file.metadata()?;
    if md.is_dir() {
        return Err(StorageError::IsADirectory);
    }
    if !md.is_file() {
        return Err(StorageError::NotAFile);
    }
    Ok(file)
}

/// Create a fresh temp file next to `target`.
fn new_temp(
    root: &Dir,
    parent: PathBuf,
    target: PathBuf,
    target_existed: bool,
    no_replace: bool,
    mode: Option<u32>,
) -> Result<(std::fs::File, Finish), StorageError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let mut name = UPLOAD_TEMP_PREFIX.to_vec();
        name.extend_from_slice(format!("{:016x}.tmp", rand::random::<u64>()).as_bytes());
        let temp = parent.join(OsStr::from_bytes(&name));
        match root.open_with(&temp, &opts) {
            Ok(file) => {
                let file = file.into_std();
                if let Some(mode) = mode {
                    // Keep the permissions of the file being replaced.
                    let perms = std::fs::Permissions::from_mode(mode & 0o777);
                    if let Err(e) = file.set_permissions(perms) {
                        tracing::debug!(error = %e, "cannot copy permissions to upload");
                    }
                }
                let finish = Finish::Temp {
                    temp,
                    target,
                    parent,
                    target_existed,
                    no_replace,
                };
                return Ok((file, finish));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StorageError::AlreadyExists)
}

fn discard_temp(root: &Dir, finish: &Finish) {
    if let Finish::Temp { temp, .. } = finish {
        if let Err(e) = root.remove_file(temp) {
            if !is_not_found(&e) {
                tracing::warn!(error = %e, temp = ?temp, "cannot remove upload temp file");
            }
        }
    }
}

/// Move `from` to `to` without ever replacing an existing `to`.
fn link_no_replace(root: &Dir, from: &Path, to: &Path) -> Result<(), StorageError> {
    match root.hard_link(from, root, to) {
        Ok(()) => {
            if let Err(e) = root.remove_file(from) {
                tracing::warn!(error = %e, temp = ?from, "cannot remove upload temp file");
            }
            Ok(())
        }
        Err(e) => match StorageError::from(e) {
            StorageError::AlreadyExists => Err(StorageError::AlreadyExists),
            // Hard links unsupported here: check, then rename (racy, but the
            // best a plain POSIX interface offers).
            StorageError::PermissionDenied | StorageError::Unsupported | StorageError::Io(_) => {
                match root.symlink_metadata(to) {
                    Ok(_) => Err(StorageError::AlreadyExists),
                    Err(e) if is_not_found(&e) => Ok(root.rename(from, root, to)?),
                    Err(e) => Err(e.into()),
                }
            }
            other => Err(other),
        },
    }
}

/// fsync a directory so a rename in it is durable.
///
/// Opened for reading: `Dir::open_dir` gives an `O_PATH` descriptor on
/// Linux, and fsync on one fails with `EBADF`.
fn sync_dir(root: &Dir, dir: &Path) -> io::Result<()> {
    root.open(dir)?.into_std().sync_all()
}

fn commit_blocking(root: &Dir, file: &std::fs::File, finish: &Finish) -> Result<u64, StorageError> {
    file.sync_all()?;
    let size = file.metadata()?.len();
    match finish {
        Finish::InPlace { .. } => {}
        Finish::Temp {
            temp,
            target,
            parent,
            no_replace,
            ..
        } => {
            if *no_replace {
                link_no_replace(root, temp, target)?;
            } else {
                root.rename(temp, root, target)?;
            }
            if let Err(e) = sync_dir(root, parent) {
                // The data is on disk; only the rename may not be yet.
                tracing::warn!(error = %e, "cannot sync the upload's directory");
            }
        }
    }
    Ok(size)
}

/// Undo an upload; returns whether partial content was kept under the
/// target name.
fn abort_blocking(root: &Dir, file: std::fs::File, finish: Finish, written: u64) -> bool {
    match finish {
        Finish::InPlace { original_len } => {
            if let Err(e) = file.set_len(original_len).and_then(|()| file.sync_all()) {
                tracing::warn!(error = %e, "cannot truncate aborted append");
            }
            false
        }
        Finish::Temp {
            ref temp,
            ref target,
            target_existed,
            ..
        } => {
            drop(file);
            if !target_existed && written > 0 {
                match link_no_replace(root, temp, target) {
                    Ok(()) => return true,
                    Err(e) => tracing::debug!(error = %e, "partial upload not kept"),
                }
            }
            discard_temp(root, &finish);
            false
        }
    }
}

struct Inner {
    file: tokio::fs::File,
    finish: Finish,
}

/// An upload to a [`LocalFs`].
struct LocalUpload {
    inner: Option<Inner>,
    root: Arc<Dir>,
    written: u64,
}

fn finished_error() -> io::Error {
    io::Error::other("upload already finished")
}

impl AsyncWrite for LocalUpload {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Err(finished_error()));
        };
        let res = Pin::new(&mut inner.file).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res {
            this.written += *n as u64;
        }
        res
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().inner.as_mut() {
            Some(inner) => Pin::new(&mut inner.file).poll_flush(cx),
            None => Poll::Ready(Err(finished_error())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().inner.as_mut() {
            Some(inner) => Pin::new(&mut inner.file).poll_shutdown(cx),
            None => Poll::Ready(Err(finished_error())),
        }
    }
}

/// Finish the tokio file (waiting for its buffered writes) and undo.
async fn abort_inner(root: Arc<Dir>, inner: Inner, written: u64) -> bool {
    let Inner { mut file, finish } = inner;
    if let Err(e) = file.flush().await {
        tracing::debug!(error = %e, "flush failed during abort");
    }
    let file = file.into_std().await;
    blocking(move || Ok(abort_blocking(&root, file, finish, written)))
        .await
        .unwrap_or(false)
}

#[async_trait::async_trait]
impl Upload for LocalUpload {
    async fn commit(mut self: Box<Self>) -> Result<u64, StorageError> {
        let Some(inner) = self.inner.take() else {
            return Err(StorageError::Io(finished_error()));
        };
        let root = Arc::clone(&self.root);
        let written = self.written;
        let Inner { mut file, finish } = inner;
        if let Err(e) = file.flush().await {
            abort_inner(root, Inner { file, finish }, written).await;
            return Err(e.into());
        }
        let file = file.into_std().await;
        blocking(move || match commit_blocking(&root, &file, &finish) {
            Ok(size) => Ok(size),
            Err(e) => {
                abort_blocking(&root, file, finish, written);
                Err(e)
            }
        })
        .await
    }

    async fn abort(mut self: Box<Self>) -> bool {
        match self.inner.take() {
            Some(inner) => abort_inner(Arc::clone(&self.root), inner, self.written).await,
            None => false,
        }
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }

    fn os_file(&self) -> Option<std::fs::File> {
        use std::os::fd::AsFd;
        // A second descriptor of the same open file: it shares the offset
        // (and O_APPEND), so its writes land where the upload's would.
        let inner = self.inner.as_ref()?;
        let fd = inner.file.as_fd().try_clone_to_owned().ok()?;
        Some(std::fs::File::from(fd))
    }

    fn wrote_directly(&mut self, bytes: u64) {
        self.written += bytes;
    }
}

impl Drop for LocalUpload {
    /// Neither committed nor aborted (e.g. the session went away): abort in
    /// the background so no temp file or half append is left behind.
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let root = Arc::clone(&self.root);
        let written = self.written;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    abort_inner(root, inner, written).await;
                });
            }
            Err(_) => {
                let Inner { file, finish } = inner;
                match file.try_into_std() {
                    Ok(file) => {
                        abort_blocking(&root, file, finish, written);
                    }
                    Err(_) => discard_temp(&root, &finish),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use tokio::io::AsyncReadExt;

    fn vp(s: &[u8]) -> VirtualPath {
        match VirtualPath::root().resolve(s) {
            Ok(p) => p,
            Err(_) => panic!("bad test path"),
        }
    }

    fn err<T>(r: Result<T, StorageError>) -> StorageError {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    fn setup() -> (tempfile::TempDir, LocalFs) {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::open(dir.path()).unwrap();
        (dir, fs)
    }

    /// An upload's 226 (RFC 959 §4.2) is sent once the file and its name
    /// are on disk, so the directory holding the renamed upload must really
    /// be synced: an `O_PATH` descriptor, as `Dir::open_dir` returns, fails
    /// with EBADF.
    #[test]
    fn upload_directories_can_be_synced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let root = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
        sync_dir(&root, Path::new(".")).unwrap();
        sync_dir(&root, Path::new("sub")).unwrap();
        assert!(sync_dir(&root, Path::new("missing")).is_err());
        // What the old code did, to show the test would catch it.
        let path_only = root.open_dir("sub").unwrap().into_std_file();
        assert!(path_only.sync_all().is_err());
    }

    async fn read_all(fs: &LocalFs, path: &[u8], offset: u64) -> Result<Vec<u8>, StorageError> {
        let mut r = fs.read(&vp(path), offset).await?;
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).await?;
        Ok(buf)
    }

    async fn list_entries(fs: &LocalFs, path: &[u8]) -> Vec<Entry> {
        let mut rx = fs.list(&vp(path)).await.unwrap();
        let mut out = Vec::new();
        while let Some(e) = rx.recv().await {
            out.push(e.unwrap());
        }
        out
    }

    async fn list_names(fs: &LocalFs, path: &[u8]) -> Vec<Vec<u8>> {
        let mut names: Vec<Vec<u8>> = list_entries(fs, path)
            .await
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        names
    }

    /// Names on disk (std, not through the storage) in directory `dir`.
    fn disk_names(dir: &Path) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        v.sort();
        v
    }

    fn temp_files(dir: &Path) -> usize {
        disk_names(dir)
            .iter()
            .filter(|n| n.starts_with(UPLOAD_TEMP_PREFIX))
            .count()
    }

    async fn upload(fs: &LocalFs, path: &[u8], mode: WriteMode, data: &[u8]) -> Box<dyn Upload> {
        let mut up = fs.write(&vp(path), mode).await.unwrap();
        up.write_all(data).await.unwrap();
        up.flush().await.unwrap();
        up
    }

    #[tokio::test]
    async fn local_fs_is_usable_as_dyn_storage() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let storage: Arc<dyn Storage> = Arc::new(fs);
        assert_eq!(storage.metadata(&vp(b"/f")).await.unwrap().size, 1);
        assert!(format!("{storage:?}").contains("LocalFs"));
    }

    #[tokio::test]
    async fn symlink_pointing_outside_root_is_refused() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(outer.path().join("secret.txt"), b"secret").unwrap();
        std::fs::create_dir(outer.path().join("outdir")).unwrap();
        std::fs::write(outer.path().join("outdir/inner.txt"), b"x").unwrap();
        symlink("../secret.txt", root.join("rel")).unwrap();
        symlink(outer.path().join("secret.txt"), root.join("abs")).unwrap();
        symlink("../outdir", root.join("dirlink")).unwrap();
        let fs = LocalFs::open(&root).unwrap();

        for name in [&b"/rel"[..], b"/abs"] {
            assert!(matches!(
                err(read_all(&fs, name, 0).await),
                StorageError::OutsideRoot
            ));
            assert!(matches!(
                err(fs.metadata(&vp(name)).await),
                StorageError::OutsideRoot
            ));
            for mode in [
                WriteMode::Create,
                WriteMode::CreateNew,
                WriteMode::Append,
                WriteMode::Resume(0),
                WriteMode::Resume(3),
            ] {
                let e = err(fs.write(&vp(name), mode).await);
                assert!(matches!(e, StorageError::OutsideRoot), "{mode:?}: {e:?}");
            }
        }
        // Listing through, reading through and writing into an outside dir.
        assert!(matches!(
            err(fs.list(&vp(b"/dirlink")).await),
            StorageError::OutsideRoot
        ));
        assert!(matches!(
            err(read_all(&fs, b"/dirlink/inner.txt", 0).await),
            StorageError::OutsideRoot
        ));
        assert!(matches!(
            err(fs.write(&vp(b"/dirlink/new.txt"), WriteMode::Create).await),
            StorageError::OutsideRoot
        ));
        assert!(matches!(
            err(fs.create_dir(&vp(b"/dirlink/newdir")).await),
            StorageError::OutsideRoot
        ));
        assert!(matches!(
            err(fs.remove_file(&vp(b"/dirlink/inner.txt")).await),
            StorageError::OutsideRoot
        ));
        // Listing the root shows the links themselves, never followed.
        let entries = list_entries(&fs, b"/").await;
        assert_eq!(entries.len(), 3);
        for e in &entries {
            assert!(matches!(e.kind, EntryKind::Symlink), "{:?}", e.name);
            let target = std::fs::read_link(root.join(OsStr::from_bytes(&e.name))).unwrap();
            assert_eq!(e.size, target.as_os_str().len() as u64);
        }
        // Nothing outside changed.
        assert_eq!(
            std::fs::read(outer.path().join("secret.txt")).unwrap(),
            b"secret"
        );
        assert_eq!(
            disk_names(&outer.path().join("outdir")),
            vec![b"inner.txt".to_vec()]
        );
    }

    #[tokio::test]
    async fn symlink_inside_root_works() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("data.txt"), b"hello").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        symlink("../data.txt", dir.path().join("sub/link")).unwrap();
        symlink("sub", dir.path().join("dirlink")).unwrap();

        assert_eq!(read_all(&fs, b"/sub/link", 0).await.unwrap(), b"hello");
        assert_eq!(read_all(&fs, b"/dirlink/link", 1).await.unwrap(), b"ello");
        let md = fs.metadata(&vp(b"/sub/link")).await.unwrap();
        assert!(matches!(md.kind, EntryKind::File));
        assert_eq!(md.size, 5);
        assert_eq!(md.name, b"link");

        let entries = list_entries(&fs, b"/sub").await;
        assert_eq!(entries.len(), 1);
        assert!(matches!(entries[0].kind, EntryKind::File));
        assert_eq!(entries[0].size, 5);
        assert_eq!(list_names(&fs, b"/dirlink").await, vec![b"link".to_vec()]);
        let root_entries = list_entries(&fs, b"/").await;
        let dl = root_entries.iter().find(|e| e.name == b"dirlink").unwrap();
        assert!(matches!(dl.kind, EntryKind::Dir));

        // Appending through an inside link writes the link target.
        let up = upload(&fs, b"/sub/link", WriteMode::Append, b"!").await;
        assert_eq!(up.commit().await.unwrap(), 6);
        assert_eq!(
            std::fs::read(dir.path().join("data.txt")).unwrap(),
            b"hello!"
        );
    }

    #[tokio::test]
    async fn dangling_symlink_is_listed_not_followed() {
        let (dir, fs) = setup();
        symlink("nowhere", dir.path().join("dangling")).unwrap();
        symlink("loop", dir.path().join("loop")).unwrap();
        let entries = list_entries(&fs, b"/").await;
        assert_eq!(entries.len(), 2);
        for e in &entries {
            assert!(matches!(e.kind, EntryKind::Symlink));
        }
        assert!(matches!(
            err(fs.metadata(&vp(b"/dangling")).await),
            StorageError::NotFound
        ));
        assert!(fs.metadata(&vp(b"/loop")).await.is_err());
    }

    #[tokio::test]
    async fn non_utf8_file_names_round_trip() {
        let (dir, fs) = setup();
        let name: &[u8] = b"caf\xe9.txt";
        std::fs::write(dir.path().join(OsStr::from_bytes(name)), b"latin-1").unwrap();

        let names = list_names(&fs, b"/").await;
        assert_eq!(names, vec![name.to_vec()]);
        let path = vp(b"/caf\xe9.txt");
        let mut r = fs.read(&path, 0).await.unwrap();
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, b"latin-1");
        assert_eq!(fs.metadata(&path).await.unwrap().name, name);

        // And the other way round: written through the storage.
        let other: &[u8] = b"\xff\xfe-\x80";
        let mut up = fs.write(&vp(other), WriteMode::Create).await.unwrap();
        up.write_all(b"raw").await.unwrap();
        up.commit().await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(OsStr::from_bytes(other))).unwrap(),
            b"raw"
        );
        let names = list_names(&fs, b"/").await;
        assert!(names.contains(&other.to_vec()));
    }

    #[tokio::test]
    async fn create_replaces_atomically_only_on_commit() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"old content").unwrap();
        let up = upload(&fs, b"/f", WriteMode::Create, b"new").await;
        assert_eq!(up.bytes_written(), 3);
        // During the upload readers see the old content; the temp is hidden.
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"old content");
        assert_eq!(temp_files(dir.path()), 1);
        assert_eq!(list_names(&fs, b"/").await, vec![b"f".to_vec()]);
        assert_eq!(up.commit().await.unwrap(), 3);
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"new");
        assert_eq!(temp_files(dir.path()), 0);
    }

    #[tokio::test]
    async fn create_keeps_permissions_of_replaced_file() {
        let (dir, fs) = setup();
        let p = dir.path().join("f");
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let up = upload(&fs, b"/f", WriteMode::Create, b"new").await;
        up.commit().await.unwrap();
        let md = fs.metadata(&vp(b"/f")).await.unwrap();
        assert_eq!(md.mode, Some(0o640));
    }

    #[tokio::test]
    async fn abort_of_create_keeps_old_content_and_leaves_no_temp() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"old content").unwrap();
        let up = upload(&fs, b"/f", WriteMode::Create, b"partial").await;
        assert!(!up.abort().await);
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"old content");
        assert_eq!(disk_names(dir.path()), vec![b"f".to_vec()]);
    }

    #[tokio::test]
    async fn abort_of_create_on_new_name_with_zero_bytes_leaves_nothing() {
        let (dir, fs) = setup();
        for mode in [
            WriteMode::Create,
            WriteMode::CreateNew,
            WriteMode::Append,
            WriteMode::Resume(0),
        ] {
            let up = fs.write(&vp(b"/new"), mode).await.unwrap();
            assert!(!up.abort().await);
            assert!(disk_names(dir.path()).is_empty(), "{mode:?}");
        }
    }

    #[tokio::test]
    async fn abort_of_create_on_new_name_with_data_keeps_partial() {
        let (dir, fs) = setup();
        let up = upload(&fs, b"/new", WriteMode::Create, b"part").await;
        assert!(up.abort().await);
        assert_eq!(read_all(&fs, b"/new", 0).await.unwrap(), b"part");
        assert_eq!(disk_names(dir.path()), vec![b"new".to_vec()]);

        // ...but never over a file that appeared meanwhile.
        let up = upload(&fs, b"/other", WriteMode::Create, b"part").await;
        std::fs::write(dir.path().join("other"), b"theirs").unwrap();
        assert!(!up.abort().await);
        assert_eq!(read_all(&fs, b"/other", 0).await.unwrap(), b"theirs");
        assert_eq!(temp_files(dir.path()), 0);
    }

    #[tokio::test]
    async fn create_new_refuses_existing_name() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"old").unwrap();
        assert!(matches!(
            err(fs.write(&vp(b"/f"), WriteMode::CreateNew).await),
            StorageError::AlreadyExists
        ));
        assert_eq!(disk_names(dir.path()), vec![b"f".to_vec()]);

        // Commit does not overwrite a file created during the upload.
        let up = upload(&fs, b"/g", WriteMode::CreateNew, b"mine").await;
        std::fs::write(dir.path().join("g"), b"theirs").unwrap();
        assert!(matches!(
            err(up.commit().await),
            StorageError::AlreadyExists
        ));
        assert_eq!(read_all(&fs, b"/g", 0).await.unwrap(), b"theirs");
        assert_eq!(temp_files(dir.path()), 0);

        let up = upload(&fs, b"/h", WriteMode::CreateNew, b"mine").await;
        assert_eq!(up.commit().await.unwrap(), 4);
        assert_eq!(read_all(&fs, b"/h", 0).await.unwrap(), b"mine");
        assert_eq!(temp_files(dir.path()), 0);
    }

    #[tokio::test]
    async fn append_commit_and_abort() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"abc").unwrap();
        let up = upload(&fs, b"/f", WriteMode::Append, b"def").await;
        assert_eq!(up.commit().await.unwrap(), 6);
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"abcdef");

        let up = upload(&fs, b"/f", WriteMode::Append, b"XYZ").await;
        assert!(!up.abort().await);
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"abcdef");

        // APPE to a missing file creates it.
        let up = upload(&fs, b"/g", WriteMode::Append, b"new").await;
        assert_eq!(up.commit().await.unwrap(), 3);
        assert_eq!(read_all(&fs, b"/g", 0).await.unwrap(), b"new");
        assert_eq!(temp_files(dir.path()), 0);
    }

    #[tokio::test]
    async fn resume_at_end_of_file_appends_in_place() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"12345").unwrap();
        let up = upload(&fs, b"/f", WriteMode::Resume(5), b"678").await;
        assert_eq!(up.commit().await.unwrap(), 8);
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"12345678");

        let up = upload(&fs, b"/f", WriteMode::Resume(8), b"zzz").await;
        assert!(!up.abort().await);
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"12345678");
        assert_eq!(temp_files(dir.path()), 0);
    }

    #[tokio::test]
    async fn resume_before_end_keeps_old_bytes_on_abort() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
        let up = upload(&fs, b"/f", WriteMode::Resume(4), b"ab").await;
        assert_eq!(up.bytes_written(), 2);
        // Until commit the whole old content is intact.
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"0123456789");
        assert!(!up.abort().await);
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"0123456789");
        assert_eq!(temp_files(dir.path()), 0);

        let up = upload(&fs, b"/f", WriteMode::Resume(4), b"ab").await;
        assert_eq!(up.commit().await.unwrap(), 6);
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"0123ab");
        assert_eq!(temp_files(dir.path()), 0);
    }

    #[tokio::test]
    async fn resume_beyond_end_is_an_error() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"abc").unwrap();
        assert!(matches!(
            err(fs.write(&vp(b"/f"), WriteMode::Resume(4)).await),
            StorageError::OffsetBeyondEnd
        ));
        assert!(matches!(
            err(fs.write(&vp(b"/missing"), WriteMode::Resume(1)).await),
            StorageError::OffsetBeyondEnd
        ));
        assert_eq!(disk_names(dir.path()), vec![b"f".to_vec()]);
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"abc");

        // Resume(0) on a missing file is a plain create.
        let up = upload(&fs, b"/missing", WriteMode::Resume(0), b"x").await;
        assert_eq!(up.commit().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn list_streams_more_than_a_thousand_entries() {
        let (dir, fs) = setup();
        let n = 1500;
        for i in 0..n {
            std::fs::write(dir.path().join(format!("file{i:05}")), b"x").unwrap();
        }
        let mut rx = fs.list(&vp(b"/")).await.unwrap();
        assert_eq!(rx.max_capacity(), LIST_CHANNEL_CAPACITY);
        let mut count = 0;
        while let Some(e) = rx.recv().await {
            let e = e.unwrap();
            assert!(matches!(e.kind, EntryKind::File));
            assert_eq!(e.size, 1);
            count += 1;
        }
        assert_eq!(count, n);

        // Dropping the receiver early stops the producer without error.
        let mut rx = fs.list(&vp(b"/")).await.unwrap();
        assert!(rx.recv().await.is_some());
        drop(rx);
    }

    #[tokio::test]
    async fn list_has_facts_and_no_dot_entries() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"12345").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let entries = list_entries(&fs, b"/").await;
        assert_eq!(entries.len(), 2);
        let f = entries.iter().find(|e| e.name == b"f").unwrap();
        assert!(matches!(f.kind, EntryKind::File));
        assert_eq!(f.size, 5);
        assert!(f.modified.unwrap() > 1_600_000_000);
        assert!(f.mode.is_some());
        let std_md = std::fs::metadata(dir.path().join("f")).unwrap();
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(
            f.unique.as_deref().unwrap(),
            format!("{:x}g{:x}", std_md.dev(), std_md.ino())
        );
        let d = entries.iter().find(|e| e.name == b"d").unwrap();
        assert!(matches!(d.kind, EntryKind::Dir));
    }

    #[tokio::test]
    async fn temp_files_are_hidden_and_reserved() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join(".ftps-upload.0123.tmp"), b"x").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        let _up = upload(&fs, b"/f", WriteMode::Create, b"abc").await;
        assert_eq!(list_names(&fs, b"/").await, vec![b".hidden".to_vec()]);
        let reserved = vp(b"/.ftps-upload.0123.tmp");
        assert!(matches!(
            err(fs.metadata(&reserved).await),
            StorageError::InvalidName
        ));
        assert!(matches!(
            err(fs.read(&reserved, 0).await),
            StorageError::InvalidName
        ));
        assert!(matches!(
            err(fs.write(&reserved, WriteMode::Create).await),
            StorageError::InvalidName
        ));
        assert!(matches!(
            err(fs.remove_file(&reserved).await),
            StorageError::InvalidName
        ));
        assert!(matches!(
            err(fs.rename(&reserved, &vp(b"/g")).await),
            StorageError::InvalidName
        ));
        assert!(matches!(
            err(fs.rename(&vp(b"/.hidden"), &reserved).await),
            StorageError::InvalidName
        ));
        assert!(matches!(
            err(fs.create_dir(&vp(b"/.ftps-upload.d")).await),
            StorageError::InvalidName
        ));
    }

    #[tokio::test]
    async fn dropped_upload_is_aborted() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"old").unwrap();
        let up = upload(&fs, b"/f", WriteMode::Create, b"new").await;
        drop(up);
        let up = upload(&fs, b"/f", WriteMode::Append, b"more").await;
        drop(up);
        for _ in 0..200 {
            if temp_files(dir.path()) == 0 && std::fs::read(dir.path().join("f")).unwrap() == b"old"
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(temp_files(dir.path()), 0);
        assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"old");
    }

    #[tokio::test]
    async fn write_to_missing_parent_is_not_found() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        for mode in [
            WriteMode::Create,
            WriteMode::CreateNew,
            WriteMode::Append,
            WriteMode::Resume(0),
        ] {
            assert!(matches!(
                err(fs.write(&vp(b"/nodir/f"), mode).await),
                StorageError::NotFound
            ));
            assert!(matches!(
                err(fs.write(&vp(b"/d"), mode).await),
                StorageError::IsADirectory
            ));
            assert!(matches!(
                err(fs.write(&vp(b"/file/f"), mode).await),
                StorageError::NotADirectory
            ));
        }
        assert!(matches!(
            err(fs.write(&VirtualPath::root(), WriteMode::Create).await),
            StorageError::IsADirectory
        ));
        assert_eq!(
            disk_names(dir.path()),
            vec![b"d".to_vec(), b"file".to_vec()]
        );
        assert!(disk_names(&dir.path().join("d")).is_empty());
    }

    #[tokio::test]
    async fn create_over_read_only_file_is_refused() {
        let (dir, fs) = setup();
        let p = dir.path().join("ro");
        std::fs::write(&p, b"keep").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
        if std::fs::OpenOptions::new().write(true).open(&p).is_ok() {
            return; // running with privileges that bypass permissions
        }
        assert!(matches!(
            err(fs.write(&vp(b"/ro"), WriteMode::Create).await),
            StorageError::PermissionDenied
        ));
        assert_eq!(disk_names(dir.path()), vec![b"ro".to_vec()]);
    }

    #[tokio::test]
    async fn read_from_offset_and_errors() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        assert_eq!(read_all(&fs, b"/f", 7).await.unwrap(), b"789");
        assert_eq!(read_all(&fs, b"/f", 10).await.unwrap(), b"");
        assert_eq!(read_all(&fs, b"/f", 1000).await.unwrap(), b"");
        assert_eq!(read_all(&fs, b"/f", u64::MAX).await.unwrap(), b"");
        assert!(matches!(
            err(read_all(&fs, b"/d", 0).await),
            StorageError::IsADirectory
        ));
        assert!(matches!(
            err(read_all(&fs, b"/", 0).await),
            StorageError::IsADirectory
        ));
        assert!(matches!(
            err(read_all(&fs, b"/missing", 0).await),
            StorageError::NotFound
        ));
        assert!(matches!(
            err(read_all(&fs, b"/f/x", 0).await),
            StorageError::NotADirectory
        ));
    }

    #[tokio::test]
    async fn metadata_of_root_and_list_of_file() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let md = fs.metadata(&VirtualPath::root()).await.unwrap();
        assert_eq!(md.name, b"/");
        assert!(matches!(md.kind, EntryKind::Dir));
        assert!(matches!(
            err(fs.list(&vp(b"/f")).await),
            StorageError::NotADirectory
        ));
        assert!(matches!(
            err(fs.list(&vp(b"/missing")).await),
            StorageError::NotFound
        ));
        assert!(matches!(
            err(fs.metadata(&vp(b"/missing")).await),
            StorageError::NotFound
        ));
    }

    #[tokio::test]
    async fn mkdir_and_remove_error_mapping() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        fs.create_dir(&vp(b"/d")).await.unwrap();
        fs.create_dir(&vp(b"/d/sub")).await.unwrap();
        assert!(matches!(
            err(fs.create_dir(&vp(b"/d")).await),
            StorageError::AlreadyExists
        ));
        assert!(matches!(
            err(fs.create_dir(&vp(b"/f")).await),
            StorageError::AlreadyExists
        ));
        assert!(matches!(
            err(fs.create_dir(&VirtualPath::root()).await),
            StorageError::AlreadyExists
        ));
        assert!(matches!(
            err(fs.create_dir(&vp(b"/nodir/x")).await),
            StorageError::NotFound
        ));
        assert!(matches!(
            err(fs.remove_dir(&vp(b"/d")).await),
            StorageError::DirectoryNotEmpty
        ));
        assert!(matches!(
            err(fs.remove_dir(&vp(b"/f")).await),
            StorageError::NotADirectory
        ));
        assert!(matches!(
            err(fs.remove_dir(&vp(b"/missing")).await),
            StorageError::NotFound
        ));
        assert!(matches!(
            err(fs.remove_dir(&VirtualPath::root()).await),
            StorageError::PermissionDenied
        ));
        assert!(matches!(
            err(fs.remove_file(&vp(b"/d")).await),
            StorageError::IsADirectory
        ));
        assert!(matches!(
            err(fs.remove_file(&vp(b"/missing")).await),
            StorageError::NotFound
        ));
        fs.remove_dir(&vp(b"/d/sub")).await.unwrap();
        fs.remove_dir(&vp(b"/d")).await.unwrap();
        fs.remove_file(&vp(b"/f")).await.unwrap();
        assert!(disk_names(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn rename_error_mapping() {
        let (dir, fs) = setup();
        std::fs::write(dir.path().join("a"), b"a").unwrap();
        std::fs::write(dir.path().join("b"), b"b").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::create_dir(dir.path().join("e")).unwrap();
        std::fs::create_dir(dir.path().join("d/sub")).unwrap();

        assert!(matches!(
            err(fs.rename(&vp(b"/missing"), &vp(b"/x")).await),
            StorageError::NotFound
        ));
        assert!(matches!(
            err(fs.rename(&vp(b"/a"), &vp(b"/d")).await),
            StorageError::IsADirectory
        ));
        // Even an empty directory is not replaced.
        assert!(matches!(
            err(fs.rename(&vp(b"/d"), &vp(b"/e")).await),
            StorageError::AlreadyExists
        ));
        assert!(matches!(
            err(fs.rename(&vp(b"/d"), &vp(b"/d/sub/inner")).await),
            StorageError::InvalidName
        ));
        assert!(matches!(
            err(fs.rename(&vp(b"/d"), &vp(b"/a")).await),
            StorageError::NotADirectory
        ));
        assert!(matches!(
            err(fs.rename(&vp(b"/a"), &vp(b"/nodir/a")).await),
            StorageError::NotFound
        ));
        assert!(matches!(
            err(fs.rename(&VirtualPath::root(), &vp(b"/x")).await),
            StorageError::PermissionDenied
        ));
        // File onto file replaces; file into a directory; dir rename.
        fs.rename(&vp(b"/a"), &vp(b"/b")).await.unwrap();
        assert_eq!(read_all(&fs, b"/b", 0).await.unwrap(), b"a");
        fs.rename(&vp(b"/b"), &vp(b"/d/b")).await.unwrap();
        fs.rename(&vp(b"/d"), &vp(b"/moved")).await.unwrap();
        fs.rename(&vp(b"/moved"), &vp(b"/moved")).await.unwrap();
        assert_eq!(read_all(&fs, b"/moved/b", 0).await.unwrap(), b"a");
        assert_eq!(
            disk_names(dir.path()),
            vec![b"e".to_vec(), b"moved".to_vec()]
        );
    }
}
