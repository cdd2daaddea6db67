//! Getting written files onto the disk early.
//!
//! Whoever makes a received file durable (fsync) before reporting it
//! complete — the server before its 226 reply, the client before it renames
//! `DEST.part` — would otherwise find all of a large transfer's pages still
//! dirty at its end (the kernel's background write-back starts at 10 % of
//! memory by default) and write them all while the peer or the user waits:
//! 0.50–0.62 s of a 1.7 s upload of 1 GiB on the development machine. The
//! writer tells a [`WriteBack`] what it wrote, which calls
//! [`start_write_back`] every [`WRITE_BACK_BYTES`], so the disk works while
//! the network does, the fsync finds little left, and a transfer holds about
//! twice that much dirty page cache however fast it arrives
//! (docs/performance.md, optimization 16).

/// Bytes written to a file between two calls of [`start_write_back`].
pub const WRITE_BACK_BYTES: u64 = 8 * 1024 * 1024;

/// Counts what is written to one file and starts its write-back every
/// [`WRITE_BACK_BYTES`].
#[derive(Debug, Default)]
pub struct WriteBack {
    unstarted: u64,
}

impl WriteBack {
    /// `bytes` more were written to `file`. Blocks while the previous
    /// write-back runs (see [`start_write_back`]).
    pub fn wrote(&mut self, file: &std::fs::File, bytes: u64) {
        self.unstarted += bytes;
        if self.unstarted >= WRITE_BACK_BYTES {
            self.unstarted = 0;
            start_write_back(file);
        }
    }
}

/// Wait for the write-back of `file` started by the previous call, then
/// start writing all its dirty pages (`sync_file_range`). Blocks while the
/// previous write-back runs: call it on a thread that may block. A failure
/// only costs speed — the fsync afterwards still reports any write error.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
pub fn start_write_back(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE;
    // SAFETY: the descriptor is open for the borrow of `file`; offset 0 and
    // length 0 mean the whole file; the call reads no memory of ours.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot start write-back");
    }
}

/// Elsewhere the fsync at the end writes the whole file.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn start_write_back(_file: &std::fs::File) {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn write_back_starts_every_step_and_keeps_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut write_back = WriteBack::default();
        let piece = vec![7u8; 1024 * 1024];
        for _ in 0..(2 * WRITE_BACK_BYTES / piece.len() as u64 + 1) {
            file.write_all(&piece).unwrap();
            write_back.wrote(&file, piece.len() as u64);
            assert!(write_back.unstarted < WRITE_BACK_BYTES);
        }
        file.sync_all().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(
            len,
            (2 * WRITE_BACK_BYTES / piece.len() as u64 + 1) * piece.len() as u64
        );
    }
}
