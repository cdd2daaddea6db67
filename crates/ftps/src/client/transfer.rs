//! `get` and `put`, and the transfer steps `mirror` shares with them.
//!
//! A download goes to `DEST.part` and is renamed to `DEST` only after the
//! server's 226, the TLS close_notify and the announced size all check out
//! (`RetrStream::finish`), so an interrupted download never leaves a
//! truncated `DEST` that looks complete; the rename waits for the file's
//! fsync, so a crash cannot leave a `DEST` without its content either
//! (its write-back starts during the download: [`Writer`]). That
//! local end runs on a blocking thread ([`Commit`]), which `mirror` leaves
//! running while it fetches the next files. `-c` continues `DEST.part` (or
//! `DEST`) with REST. An upload with `-c` asks SIZE and continues with
//! REST + STOR when the server announces REST STREAM, else with APPE. A
//! binary upload is checked with SIZE afterwards when the server has it.
//!
//! Here: what transfers share — how they end ([`Outcome`]), where `-c`
//! continues ([`resume_point`]) — and a download's data path, from the
//! data connection ([`read_some`]) through the TYPE A conversion
//! ([`copy_data`]) to the thread that writes it ([`Writer`]). Downloads
//! into a file are in `download`, the commands in `get` and `put`.

pub mod checks;
mod download;
mod get;
mod put;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ftps_client::control::tls_error;
use ftps_client::{Error, RetrStream};
use ftps_os::WriteBack;
use ftps_proto::ascii::FromNetwork;
use tokio::io::AsyncReadExt;

use super::progress::Bar;
use super::Failure;

pub use download::{download, Commit, DownloadOptions, Downloaded};
pub use get::get;
pub use put::{put, send, verify_size};

/// How a transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This many bytes moved.
    Done(u64),
    /// `-c` found nothing left to move.
    AlreadyComplete,
}

/// `DEST.part`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// How a `-c` transfer goes on with `have` bytes at its destination of
/// the `whole` source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Every byte is there: nothing to move.
    Complete,
    /// More bytes than the source has (this many): another file, not
    /// resumed.
    Longer(u64),
    /// Continue after this many bytes (0: from the start).
    From(u64),
}

/// Where a `-c` transfer continues, `have` bytes of `whole` being there.
pub fn resume_point(have: u64, whole: u64) -> Resume {
    match have.cmp(&whole) {
        std::cmp::Ordering::Equal => Resume::Complete,
        std::cmp::Ordering::Greater => Resume::Longer(have),
        std::cmp::Ordering::Less => Resume::From(have),
    }
}

/// A local I/O error with the path it happened on.
fn local_error(path: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |e| Failure::new(format!("{}: {e}", path.display()))
}

/// One read from the data connection, bounded by the idle timeout. A close
/// without TLS close_notify is a truncation.
async fn read_some(
    stream: &mut RetrStream<'_>,
    idle: Duration,
    buf: &mut [u8],
) -> Result<usize, Failure> {
    match tokio::time::timeout(idle, stream.read(buf)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => {
            let (received, expected) = (stream.received(), stream.expected());
            Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Truncated { received, expected }
            } else {
                tls_error(e)
            }
            .into())
        }
        Err(_) => Err(Error::Timeout("reading the data connection").into()),
    }
}

/// Bytes the download hands to its [`Writer`] at a time.
const WRITE_BYTES: usize = 256 * 1024;
/// Buffers in circulation between a download and its [`Writer`].
const WRITE_BUFFERS: usize = 3;

/// A download's destination, owned by a blocking thread that writes whole
/// buffers to it. The data is copied once, out of the TLS stream into a
/// buffer that then changes hands (tokio's `File` and `Stdout` copy every
/// write into a buffer of their own before handing it to the blocking pool,
/// and our batching added another copy). Into a file, the thread also starts
/// the disk's write-back every 8 MiB ([`WriteBack`]), waiting for the previous
/// one, so the fsync before the rename finds little left
/// ([`ftps_os::write_back`]); that wait holds the download back when the disk
/// is the slower end.
struct Writer {
    /// The buffer being filled and how much of it is.
    current: (Vec<u8>, usize),
    full: tokio::sync::mpsc::Sender<(Vec<u8>, usize)>,
    empty: tokio::sync::mpsc::Receiver<Vec<u8>>,
    thread: tokio::task::JoinHandle<std::io::Result<std::fs::File>>,
}

impl Writer {
    /// Write to `file` (`DEST.part` positioned where the bytes go, or
    /// standard output); `write_back` for a file on disk.
    fn start(file: std::fs::File, write_back: bool) -> Writer {
        let (full, full_rx) = tokio::sync::mpsc::channel(WRITE_BUFFERS);
        let (empty_tx, empty) = tokio::sync::mpsc::channel(WRITE_BUFFERS);
        for _ in 1..WRITE_BUFFERS {
            let _ = empty_tx.try_send(vec![0; WRITE_BYTES]);
        }
        let thread = tokio::task::spawn_blocking(move || {
            write_buffers(&file, write_back, full_rx, &empty_tx).map(|()| file)
        });
        Writer {
            current: (vec![0; WRITE_BYTES], 0),
            full,
            empty,
            thread,
        }
    }

    /// The unfilled part of the current buffer.
    fn space(&mut self) -> &mut [u8] {
        let (buf, filled) = &mut self.current;
        buf.get_mut(*filled..).unwrap_or_default()
    }

    /// `n` more bytes are in [`Writer::space`]; hands the buffer over when
    /// full. False when the thread has stopped ([`Writer::finish`] says why).
    async fn filled(&mut self, n: usize) -> bool {
        self.current.1 += n;
        if self.current.1 < self.current.0.len() {
            return true;
        }
        self.hand_over().await
    }

    /// Copy `bytes` in.
    async fn push(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            let space = self.space();
            let n = space.len().min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if !self.filled(n).await {
                return false;
            }
        }
        true
    }

    /// Hand `data` over as it is (a small download's bytes held in memory).
    async fn push_owned(&mut self, data: Vec<u8>) -> bool {
        let len = data.len();
        self.full.send((data, len)).await.is_ok()
    }

    async fn hand_over(&mut self) -> bool {
        let mut next = match self.empty.recv().await {
            Some(buf) => buf,
            None => return false,
        };
        if next.len() < WRITE_BYTES {
            next.resize(WRITE_BYTES, 0);
        }
        let done = std::mem::replace(&mut self.current, (next, 0));
        self.full.send(done).await.is_ok()
    }

    /// Hand over what is left and wait until it is all written; the file
    /// back, or the first write error.
    async fn finish(mut self) -> std::io::Result<std::fs::File> {
        if self.current.1 > 0 {
            let done = std::mem::take(&mut self.current);
            let _ = self.full.send(done).await;
        }
        drop(self.full);
        joined(self.thread.await)
    }
}

/// The [`Writer`]'s thread.
fn write_buffers(
    file: &std::fs::File,
    write_back: bool,
    mut full: tokio::sync::mpsc::Receiver<(Vec<u8>, usize)>,
    empty: &tokio::sync::mpsc::Sender<Vec<u8>>,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut write_back = write_back.then(WriteBack::default);
    while let Some((buf, filled)) = full.blocking_recv() {
        (&mut &*file).write_all(buf.get(..filled).unwrap_or_default())?;
        if let Some(write_back) = write_back.as_mut() {
            write_back.wrote(file, filled as u64);
        }
        // The download may have finished already: then nobody needs it.
        let _ = empty.try_send(buf);
    }
    Ok(())
}

/// Copy the rest of a download into `out` (TYPE A line ends become LF).
/// Stops early, without an error, when `out` has failed: its
/// [`Writer::finish`] says why.
async fn copy_data(
    stream: &mut RetrStream<'_>,
    idle: Duration,
    ascii: bool,
    out: &mut Writer,
    bar: &Bar,
) -> Result<(), Failure> {
    if ascii {
        let mut buf = vec![0u8; 64 * 1024];
        let mut converter = FromNetwork::default();
        let mut converted = Vec::new();
        loop {
            let n = read_some(stream, idle, &mut buf).await?;
            if n == 0 {
                break;
            }
            converted.clear();
            converter.convert(&buf[..n], &mut converted);
            if !out.push(&converted).await {
                return Ok(());
            }
            bar.inc(n as u64);
        }
        converted.clear();
        converter.finish(&mut converted);
        out.push(&converted).await;
    } else {
        loop {
            let n = read_some(stream, idle, out.space()).await?;
            if n == 0 {
                break;
            }
            if !out.filled(n).await {
                return Ok(());
            }
            bar.inc(n as u64);
        }
    }
    Ok(())
}

/// Read a whole download into `data`, unless it grows past `limit`: returns
/// false then, with the rest still to read.
async fn read_to_memory(
    stream: &mut RetrStream<'_>,
    idle: Duration,
    data: &mut Vec<u8>,
    limit: usize,
    bar: &Bar,
) -> Result<bool, Failure> {
    let mut buf = vec![0u8; 16 * 1024];
    while data.len() <= limit {
        let n = read_some(stream, idle, &mut buf).await?;
        if n == 0 {
            return Ok(true);
        }
        data.extend_from_slice(&buf[..n]);
        bar.inc(n as u64);
    }
    Ok(false)
}

/// The outcome of a blocking job that does I/O; its panic as an error.
fn joined<T>(job: Result<std::io::Result<T>, tokio::task::JoinError>) -> std::io::Result<T> {
    job.unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_with_every_byte_there_is_complete() {
        assert_eq!(resume_point(10, 10), Resume::Complete);
        assert_eq!(resume_point(0, 0), Resume::Complete);
    }

    #[test]
    fn resume_with_more_bytes_than_the_source_is_refused() {
        assert_eq!(resume_point(11, 10), Resume::Longer(11));
    }

    #[test]
    fn resume_continues_after_the_bytes_there() {
        assert_eq!(resume_point(4, 10), Resume::From(4));
        assert_eq!(resume_point(0, 10), Resume::From(0));
    }

    #[test]
    fn part_file_is_dest_with_part_appended() {
        assert_eq!(part_path(Path::new("a/b.txt")), Path::new("a/b.txt.part"));
    }
}
