//! Bulk binary uploads received on a blocking thread (RFC 959 §3.4 stream
//! mode, TYPE I; RFC 4217 §10.2 protected data).
//!
//! An upload spends its CPU in the kernel (socket receive, page-cache write)
//! and in AES; what the async path adds on top — a wake-up through epoll for
//! every 16–64 KiB that arrives, a hand-off to tokio's blocking pool and a
//! copy into `tokio::fs`'s buffer for every storage write — cost about a
//! quarter of the total (docs/performance.md, optimization 9). Once an
//! upload has brought 1 MiB and its back-end writes directly
//! ([`crate::storage::Upload::begin_blocking`]), [`super::upload`] hands it
//! here: one blocking thread owns the data connection and the upload for the
//! rest of it, reads the socket in 256 KiB pieces that wait for a receive
//! low-water mark ([`Socket`]), decrypts with the connection's
//! `rustls::ServerConnection` and hands 256 KiB batches
//! ([`super::batch::Batch`]) to the storage. The transfer task stays async
//! and waits; ABOR (or the task going away) shuts the socket down under the
//! thread (`super::threads::Canceller`).
//!
//! The rules are those of the async path: a protected upload is complete
//! only after the client's TLS close_notify (a bare TCP close is a possible
//! truncation), a plain one at the TCP close; no byte for the stall limit
//! fails it; every byte that arrived reaches the storage before an abort, so
//! a partial new file holds all of it. Committing or aborting the upload
//! afterwards is the caller's.

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::Batch;
use crate::storage::{FsError, Upload};

/// Bytes read from the socket at a time.
const RECEIVE_BYTES: usize = 256 * 1024;
/// The socket's receive low-water mark (`SO_RCVLOWAT`).
const LOW_WATER: i32 = 128 * 1024;
/// Longest a read waits for the low-water mark before it takes what is
/// there: the most an upload's last piece (and its close_notify) waits.
const LOW_WATER_WAIT: Duration = Duration::from_millis(5);

/// How the receiving ended.
#[derive(Debug)]
pub(super) enum Received {
    /// The client closed the data (TLS close_notify under PROT P, TCP close
    /// under PROT C) and every byte is in storage.
    Complete,
    /// The connection ended early (reset, shut down by ABOR) or broke the
    /// TLS rules.
    Lost(io::Error),
    /// A protected upload's TCP connection closed without the client's TLS
    /// close_notify; every byte that arrived is in the batch or in storage.
    NoCloseNotify,
    /// No byte for the stall limit.
    Stalled,
    /// Writing to storage failed.
    Storage(FsError),
}

/// The upload's pieces, owned by the receiving thread while it runs.
pub(super) struct Receiver {
    /// The data connection, in blocking mode.
    pub(super) tcp: TcpStream,
    /// Its TLS state (PROT P), handshake complete.
    pub(super) tls: Option<rustls::ServerConnection>,
    /// Where the bytes go (after `begin_blocking`).
    pub(super) upload: Box<dyn Upload>,
    /// Bytes received so far (for STAT); the receiving adds to it.
    progress: Arc<AtomicU64>,
    /// The batch being filled (it may be partly filled when the upload
    /// started on the async path).
    batch: Batch,
    stall: Duration,
    /// TLS records held back until the client has closed (the upload's
    /// session tickets, see `super::data::handshake`); written before
    /// anything else this side sends.
    pub(super) held: Vec<u8>,
}

/// Prepare a data connection for [`Receiver`]: blocking reads that wait for
/// a low-water mark (see [`Socket`]) and give up after `stall` without a
/// byte.
pub(super) fn prepare_socket(tcp: &TcpStream, stall: Duration) -> io::Result<()> {
    let stall = stall.max(Duration::from_millis(1));
    tcp.set_nonblocking(false)?;
    ftps_os::socket::set_receive_low_water(tcp, LOW_WATER)?;
    tcp.set_read_timeout(Some(LOW_WATER_WAIT.min(stall)))?;
    // What this side writes (alerts, KeyUpdate answers) must not wait
    // forever on a client that does not read either.
    tcp.set_write_timeout(Some(stall))
}

impl Receiver {
    /// The receiving side of an upload whose socket [`prepare_socket`] set up.
    pub(super) fn new(
        tcp: TcpStream,
        tls: Option<rustls::ServerConnection>,
        upload: Box<dyn Upload>,
        batch: Batch,
        progress: Arc<AtomicU64>,
        stall: Duration,
        held: Vec<u8>,
    ) -> Receiver {
        Receiver {
            tcp,
            tls,
            upload,
            progress,
            batch,
            stall: stall.max(Duration::from_millis(1)),
            held,
        }
    }

    /// Receive until the client closes or something fails. Blocks.
    pub(super) fn run(&mut self) -> Received {
        let mut sink = Sink {
            batch: &mut self.batch,
            upload: self.upload.as_mut(),
            total: self.progress.load(Ordering::Relaxed),
            progress: &self.progress,
        };
        let mut socket = Socket {
            tcp: &self.tcp,
            stall: self.stall,
            last_data: Instant::now(),
        };
        let outcome = match self.tls.as_mut() {
            Some(tls) => receive_tls(&mut socket, tls, &mut sink, &mut self.held),
            None => receive_plain(&mut socket, &mut sink),
        };
        match outcome {
            Received::Complete => sink
                .write_out()
                .map_or_else(Received::Storage, |()| outcome),
            // Keep every byte that arrived (see `Upload::abort`).
            Received::Lost(_) | Received::Stalled | Received::NoCloseNotify => {
                let _ = sink.write_out();
                outcome
            }
            Received::Storage(_) => outcome,
        }
    }
}

/// Received bytes on their way to storage.
struct Sink<'a> {
    batch: &'a mut Batch,
    upload: &'a mut dyn Upload,
    total: u64,
    progress: &'a AtomicU64,
}

impl Sink<'_> {
    /// `n` more bytes are in the batch's space; writes the batch when full.
    fn received(&mut self, n: usize) -> Result<(), FsError> {
        self.batch.received(n);
        self.total += n as u64;
        self.progress.store(self.total, Ordering::Relaxed);
        if self.batch.is_full() {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<(), FsError> {
        let result = match self.batch.contents() {
            [] => Ok(()),
            contents => self.upload.write_blocking(contents),
        };
        self.batch.clear();
        result
    }
}

/// The data connection's reading side.
///
/// Each read that returns wakes this thread; a bulk upload arrives in
/// 16–64 KiB pieces, so most of the kernel's work for it would be waking up.
/// The socket's low-water mark makes a read wait until [`LOW_WATER`] bytes
/// are there — or [`LOW_WATER_WAIT`] has passed, then it takes what has
/// arrived: a client that waits for our close_notify after sending its own
/// (ftplib) is answered that much later, no more. A read that times out
/// with nothing is retried until the stall limit has passed since the last
/// byte.
struct Socket<'a> {
    tcp: &'a TcpStream,
    stall: Duration,
    last_data: Instant,
}

impl Socket<'_> {
    /// Read some bytes; `Ok(0)` at the end of the stream.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Received> {
        loop {
            match (&mut &*self.tcp).read(buf) {
                Ok(n) => {
                    self.last_data = Instant::now();
                    return Ok(n);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.last_data.elapsed() >= self.stall {
                        return Err(Received::Stalled);
                    }
                }
                Err(error) => return Err(Received::Lost(error)),
            }
        }
    }
}

fn receive_plain(socket: &mut Socket<'_>, sink: &mut Sink<'_>) -> Received {
    loop {
        match socket.read(sink.batch.space()) {
            Ok(0) => return Received::Complete,
            Ok(n) => {
                if let Err(error) = sink.received(n) {
                    return Received::Storage(error);
                }
            }
            Err(outcome) => return outcome,
        }
    }
}

fn receive_tls(
    socket: &mut Socket<'_>,
    tls: &mut rustls::ServerConnection,
    sink: &mut Sink<'_>,
    held: &mut Vec<u8>,
) -> Received {
    let mut tcp = socket.tcp;
    let mut incoming = vec![0u8; RECEIVE_BYTES];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        // Plaintext first: the handshake may have left some behind.
        loop {
            match tls.reader().read(sink.batch.space()) {
                Ok(0) => return Received::Complete,
                Ok(n) => {
                    if let Err(error) = sink.received(n) {
                        return Received::Storage(error);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                // TCP closed without close_notify.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    return Received::NoCloseNotify
                }
                Err(error) => return Received::Lost(error),
            }
        }
        if start == end {
            match socket.read(&mut incoming) {
                Ok(n) => (start, end) = (0, n),
                Err(outcome) => return outcome,
            }
        }
        // An empty slice tells rustls the connection has ended.
        let mut pending = incoming.get(start..end).unwrap_or_default();
        match tls.read_tls(&mut pending) {
            Ok(n) => start += n,
            Err(error) => return Received::Lost(error),
        }
        if let Err(error) = tls.process_new_packets() {
            // Tell the client why (an alert), then give up.
            let _ = tls.write_tls(&mut tcp);
            return Received::Lost(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        // A TLS 1.3 KeyUpdate asks for one in return; records held back
        // come first (their sequence numbers are lower).
        if tls.wants_write() && !held.is_empty() {
            if let Err(error) = io::Write::write_all(&mut tcp, held) {
                return Received::Lost(error);
            }
            held.clear();
        }
        while tls.wants_write() {
            if let Err(error) = tls.write_tls(&mut tcp) {
                return Received::Lost(error);
            }
        }
    }
}
