//! Uploads to the local disk (RFC 959 STOR, STOU, APPE; RFC 3659 §5 REST
//! before STOR), under the no-partial-replace rule of the storage module:
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
//!
//! Writes from the async path go through a [`tokio::fs::File`] on the
//! blocking pool; a bulk upload's own thread writes through a second
//! descriptor of the same open file and starts the disk's write-back every
//! few MiB ([`ftps_os::WriteBack`]), so the fsync before the commit finds
//! little left to do.

use std::ffi::OsStr;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::{Dir, MetadataExt, OpenOptions};
use tokio::io::AsyncWriteExt;

use super::temp::link_no_replace;
use super::{blocking, check_regular_file, is_not_found};
use crate::storage::error::{from_io, IoResultExt};
use crate::storage::{FsError, Upload, WriteMode};

/// How many random temp names to try before giving up.
const TEMP_NAME_ATTEMPTS: usize = 16;

/// The file an upload writes to and how the upload is finished.
pub(super) type Prepared = (std::fs::File, Finish);

/// How an upload is finished.
pub(super) enum Finish {
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
pub(super) fn prepare(
    root: &Dir,
    parent: PathBuf,
    target: PathBuf,
    mode: WriteMode,
) -> Result<Prepared, FsError> {
    let parent_md = root.metadata(&parent).fs()?;
    if !parent_md.is_dir() {
        return Err(FsError::NotADirectory);
    }
    let existing = match root.metadata(&target) {
        Ok(md) => {
            check_regular_file(&md)?;
            Some(md)
        }
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(from_io(e)),
    };
    let Some(existing) = existing else {
        return match mode {
            WriteMode::Resume(n) if n > 0 => Err(FsError::OffsetBeyondEnd),
            WriteMode::CreateNew => new_temp(root, parent, target, false, true, None),
            _ => new_temp(root, parent, target, false, false, None),
        };
    };
    match mode {
        WriteMode::CreateNew => Err(FsError::AlreadyExists),
        WriteMode::Create => {
            // Probe write permission on the existing file, as an in-place
            // overwrite would: a read-only file is not silently replaced.
            drop(open_for_write(root, &target)?);
            new_temp(root, parent, target, true, false, Some(existing.mode()))
        }
        WriteMode::Append => {
            let mut file = open_for_write(root, &target)?;
            let len = file.metadata().fs()?.len();
            file.seek(SeekFrom::Start(len)).fs()?;
            Ok((file, Finish::InPlace { original_len: len }))
        }
        WriteMode::Resume(n) => {
            let mut file = open_for_write(root, &target)?;
            let len = file.metadata().fs()?.len();
            if n > len {
                return Err(FsError::OffsetBeyondEnd);
            }
            if n == len {
                file.seek(SeekFrom::Start(len)).fs()?;
                return Ok((file, Finish::InPlace { original_len: len }));
            }
            drop(file);
            let src = root.open(&target).fs()?.into_std();
            let (mut tmp, finish) =
                new_temp(root, parent, target, true, false, Some(existing.mode()))?;
            let copied = match io::copy(&mut (&src).take(n), &mut tmp) {
                Ok(c) => c,
                Err(e) => {
                    discard_temp(root, &finish);
                    return Err(from_io(e));
                }
            };
            if copied != n {
                // The file shrank meanwhile.
                discard_temp(root, &finish);
                return Err(FsError::OffsetBeyondEnd);
            }
            Ok((tmp, finish))
        }
    }
}

fn open_for_write(root: &Dir, target: &Path) -> Result<std::fs::File, FsError> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    let file = root.open_with(target, &opts).fs()?.into_std();
    let md = file.metadata().fs()?;
    if md.is_dir() {
        return Err(FsError::IsADirectory);
    }
    if !md.is_file() {
        return Err(FsError::NotAFile);
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
) -> Result<Prepared, FsError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    let target_name = target.file_name().map(OsStr::as_bytes).unwrap_or_default();
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let name = super::temp::temp_name(rand::random(), target_existed, target_name);
        let temp = parent.join(OsStr::from_bytes(&name));
        match root.open_with(&temp, &opts) {
            Ok(file) => {
                let file = file.into_std();
                // Held until the upload is committed or aborted, and gone
                // with the process: what tells a live upload from an
                // abandoned one (see `super::reclaim`).
                if let Err(e) = file.lock() {
                    tracing::debug!(error = %e, "cannot lock the upload temp file");
                }
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
            Err(e) => return Err(from_io(e)),
        }
    }
    Err(FsError::AlreadyExists)
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

/// fsync a directory so a rename in it is durable.
///
/// Opened for reading: `Dir::open_dir` gives an `O_PATH` descriptor on
/// Linux, and fsync on one fails with `EBADF`.
pub(super) fn sync_dir(root: &Dir, dir: &Path) -> io::Result<()> {
    root.open(dir)?.into_std().sync_all()
}

fn commit_blocking(root: &Dir, file: &std::fs::File, finish: &Finish) -> Result<u64, FsError> {
    file.sync_all().fs()?;
    let size = file.metadata().fs()?.len();
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
                root.rename(temp, root, target).fs()?;
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
            // A partial new file is kept only when it holds bytes and they
            // are on disk: after a failed write-back (a full disk found at
            // fsync) it could be empty or hold less than it claims.
            let durable = !target_existed
                && written > 0
                && file.sync_all().is_ok()
                && file.metadata().is_ok_and(|m| m.len() > 0);
            drop(file);
            if durable {
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

/// Writes from a transfer's own blocking thread.
struct Direct {
    /// A second descriptor of the upload's file: it shares the offset (and
    /// O_APPEND), so its writes land where the async ones would.
    file: std::fs::File,
    write_back: ftps_os::WriteBack,
}

/// An upload to a [`LocalFs`](super::LocalFs).
pub(super) struct LocalUpload {
    inner: Option<Inner>,
    direct: Option<Direct>,
    root: Arc<Dir>,
    written: u64,
}

impl LocalUpload {
    /// The upload into the file [`prepare`] opened.
    pub(super) fn new(root: Arc<Dir>, (file, finish): Prepared) -> LocalUpload {
        LocalUpload {
            inner: Some(Inner {
                file: tokio::fs::File::from_std(file),
                finish,
            }),
            direct: None,
            root,
            written: 0,
        }
    }
}

fn finished() -> FsError {
    FsError::Other("upload already finished".into())
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
    async fn write(&mut self, data: &[u8]) -> Result<(), FsError> {
        let inner = self.inner.as_mut().ok_or_else(finished)?;
        // Flushed at once: when it returns, the bytes are with the system,
        // so an abort or a drop right after it finds them to undo.
        inner.file.write_all(data).await.fs()?;
        inner.file.flush().await.fs()?;
        self.written += data.len() as u64;
        Ok(())
    }

    async fn begin_blocking(&mut self) -> Result<bool, FsError> {
        use std::os::fd::AsFd;
        let inner = self.inner.as_mut().ok_or_else(finished)?;
        // What the tokio file still holds goes first.
        inner.file.flush().await.fs()?;
        let fd = inner.file.as_fd().try_clone_to_owned().fs()?;
        self.direct = Some(Direct {
            file: std::fs::File::from(fd),
            write_back: ftps_os::WriteBack::default(),
        });
        Ok(true)
    }

    fn write_blocking(&mut self, data: &[u8]) -> Result<(), FsError> {
        let direct = self.direct.as_mut().ok_or(FsError::Unsupported)?;
        (&direct.file).write_all(data).fs()?;
        self.written += data.len() as u64;
        direct.write_back.wrote(&direct.file, data.len() as u64);
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, FsError> {
        self.direct = None;
        let Some(inner) = self.inner.take() else {
            return Err(finished());
        };
        let root = Arc::clone(&self.root);
        let written = self.written;
        let Inner { mut file, finish } = inner;
        if let Err(e) = file.flush().await {
            abort_inner(root, Inner { file, finish }, written).await;
            return Err(from_io(e));
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
        self.direct = None;
        match self.inner.take() {
            Some(inner) => abort_inner(Arc::clone(&self.root), inner, self.written).await,
            None => false,
        }
    }

    async fn discard(mut self: Box<Self>) -> bool {
        self.direct = None;
        match self.inner.take() {
            // As if nothing had been written: no partial file is kept.
            Some(inner) => abort_inner(Arc::clone(&self.root), inner, 0).await,
            None => false,
        }
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }
}

impl Drop for LocalUpload {
    /// Neither committed nor aborted (e.g. the session went away): abort in
    /// the background so no temp file or half append is left behind.
    fn drop(&mut self) {
        self.direct = None;
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
