//! Bulk binary downloads under PROT P sent from a blocking thread (RFC 959
//! §3.4 stream mode, TYPE I; RFC 4217 §10.2 protected data).
//!
//! The counterpart of [`super::receive_thread`]: for a download of at least
//! 1 MiB from a back-end that reads directly
//! ([`crate::storage::Download::read_blocking`]), one thread of tokio's
//! blocking pool reads 256 KiB pieces, encrypts them with the data
//! connection's `rustls::ServerConnection` and writes the records with
//! blocking writes, instead of a read hand-off to the blocking pool per
//! piece and a wake-up through epoll whenever the socket has room. The
//! transfer task waits; ABOR (or the task going away) shuts the socket down
//! under the thread. A write that cannot go on for the stall limit fails the
//! transfer. The thread ends with the TLS close_notify; closing the TCP
//! connection is the caller's.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::threads::Canceller;
use crate::storage::Download;

/// Bytes read from storage and encrypted at a time.
const CHUNK_BYTES: usize = 256 * 1024;

/// How the sending ended.
#[derive(Debug)]
pub(super) enum Sent {
    /// Every byte and the close_notify are written to the socket.
    Complete,
    /// The connection failed, was shut down (ABOR) or stalled.
    Lost(io::Error),
    /// Reading from storage failed.
    Storage(io::Error),
}

/// The download's pieces, owned by the sending thread while it runs.
pub(super) struct Sender {
    /// The data connection, in blocking mode.
    pub(super) tcp: TcpStream,
    tls: rustls::ServerConnection,
    download: Box<dyn Download>,
    progress: Arc<AtomicU64>,
    /// Each chunk must leave within this (the stall limit).
    stall: Duration,
}

impl Sender {
    /// Prepare the socket: blocking writes that give up after `stall`.
    pub(super) fn new(
        tcp: TcpStream,
        mut tls: rustls::ServerConnection,
        download: Box<dyn Download>,
        progress: Arc<AtomicU64>,
        stall: Duration,
    ) -> io::Result<Sender> {
        tcp.set_nonblocking(false)?;
        tcp.set_write_timeout(Some(stall.max(Duration::from_millis(1))))?;
        // Room for a whole chunk's records, so each chunk is one write.
        tls.set_buffer_limit(Some(2 * CHUNK_BYTES));
        Ok(Sender {
            tcp,
            tls,
            download,
            progress,
            stall: stall.max(Duration::from_millis(1)),
        })
    }

    /// A handle that can shut the connection down while [`Sender::run`]
    /// blocks on it (ABOR).
    pub(super) fn canceller(&self) -> io::Result<Canceller> {
        Canceller::new(&self.tcp)
    }

    /// Send the rest of the file, then close_notify. Blocks.
    ///
    /// Reads and sends in turn on this one thread: a read-ahead thread
    /// (tried) cost more in hand-offs than the overlap gained.
    pub(super) fn run(&mut self) -> Sent {
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut total = self.progress.load(Ordering::Relaxed);
        if let Err(error) = self.flush() {
            return Sent::Lost(error);
        }
        loop {
            let n = match self.download.read_blocking(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Sent::Storage(error),
            };
            let mut chunk = buf.get(..n).unwrap_or_default();
            while !chunk.is_empty() {
                let taken = match self.tls.writer().write(chunk) {
                    Ok(taken) => taken,
                    Err(error) => return Sent::Lost(error),
                };
                chunk = chunk.get(taken..).unwrap_or_default();
                if let Err(error) = self.flush() {
                    return Sent::Lost(error);
                }
            }
            total += n as u64;
            self.progress.store(total, Ordering::Relaxed);
        }
        self.tls.send_close_notify();
        match self.flush() {
            Ok(()) => Sent::Complete,
            Err(error) => Sent::Lost(error),
        }
    }

    /// Write every encrypted record to the socket within the stall limit.
    ///
    /// The limit holds for the whole of what is queued (a chunk), not for
    /// each write: a client that stops reading still takes a little now and
    /// then while the socket buffers between us fill, and a limit per write
    /// would let it hold the transfer several times the stall limit.
    fn flush(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.stall;
        let mut tcp = &self.tcp;
        while self.tls.wants_write() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.tcp
                .set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
            match self.tls.write_tls(&mut tcp) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}
