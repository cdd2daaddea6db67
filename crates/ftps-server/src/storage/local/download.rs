//! Downloads from the local disk (RFC 959 RETR, RFC 3659 §5 REST STREAM).
//!
//! A file is opened once, on the blocking pool: the open checks that it is a
//! regular file (a FIFO would block), gives the size for the 150 reply and
//! seeks to the restart offset, in one trip. Then, behind [`Download`]:
//! chunks are read on the blocking pool straight into the caller's buffer
//! (a small file in one read), a plain data connection gets the file with
//! `sendfile(2)` (the bytes never pass through this process), and a bulk
//! transfer on its own thread reads the file directly.

use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::Arc;

use cap_std::fs::Dir;

use super::check_regular_file;
use crate::storage::error::{from_io, IoResultExt};
use crate::storage::{Download, FsError};

/// A regular file of the local disk, open for reading.
pub(super) struct LocalDownload {
    /// Shared with the blocking task that reads the next chunk.
    file: Arc<std::fs::File>,
    /// Bytes from the offset to the end when the file was opened.
    remaining: u64,
}

/// Open `rel` below `root` for reading from `offset` (blocking).
pub(super) fn open(root: &Dir, rel: &Path, offset: u64) -> Result<LocalDownload, FsError> {
    // Check the type first: opening a FIFO would block.
    check_regular_file(&root.metadata(rel).fs()?)?;
    let mut file = root.open(rel).fs()?.into_std();
    let md = file.metadata().fs()?;
    if md.is_dir() {
        return Err(FsError::IsADirectory);
    }
    if !md.is_file() {
        return Err(FsError::NotAFile);
    }
    let len = md.len();
    if offset > 0 {
        file.seek(SeekFrom::Start(offset.min(len))).fs()?;
    }
    Ok(LocalDownload {
        file: Arc::new(file),
        remaining: len.saturating_sub(offset),
    })
}

#[async_trait::async_trait]
impl Download for LocalDownload {
    fn remaining(&self) -> Option<u64> {
        Some(self.remaining)
    }

    async fn read_chunk(&mut self, mut buf: Vec<u8>, max: usize) -> Result<Vec<u8>, FsError> {
        let file = Arc::clone(&self.file);
        let read = tokio::task::spawn_blocking(move || {
            // Only the part beyond the previous content is zeroed.
            buf.resize(max, 0);
            let n = (&*file).read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, io::Error>(buf)
        })
        .await;
        match read {
            Ok(Ok(buf)) => Ok(buf),
            Ok(Err(e)) => Err(from_io(e)),
            Err(e) => Err(FsError::Other(e.to_string())),
        }
    }

    fn reads_blocking(&self) -> bool {
        true
    }

    fn read_blocking(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.file).read(buf)
    }

    fn copy_to_socket(&mut self, socket: BorrowedFd<'_>, max: usize) -> Option<io::Result<usize>> {
        Some(nix::sys::sendfile::sendfile(socket, &*self.file, None, max).map_err(io::Error::from))
    }
}
