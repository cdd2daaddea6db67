//! Bulk binary uploads received on a blocking thread (RFC 959 §3.4 stream
//! mode, TYPE I; RFC 4217 §10.2 protected data).
//!
//! An upload spends its CPU in the kernel (socket receive, page-cache write)
//! and in AES; what the async path adds on top — a wake-up through epoll for
//! every 16–64 KiB that arrives, a hand-off to tokio's blocking pool and a
//! copy into `tokio::fs`'s buffer for every storage write — cost about a
//! quarter of the total (docs/performance.md, optimization 9). Once an
//! upload has brought 1 MiB, [`crate::transfer`] hands it here: one blocking
//! thread owns the data connection and a descriptor of the file for the
//! rest of it, reads the socket in 256 KiB pieces that wait for a receive
//! low-water mark ([`Socket`]), decrypts with the connection's
//! `rustls::ServerConnection` and writes 256 KiB batches to the file
//! itself, starting the disk's write-back as it goes so that the fsync
//! before the 226 finds little left ([`crate::disk`]). The transfer task
//! stays async and waits; ABOR (or the task going away) shuts the socket
//! down under the thread ([`Canceller`]).
//!
//! The rules are those of the async path: a protected upload is complete
//! only after the client's TLS close_notify (a bare TCP close is a possible
//! truncation), a plain one at the TCP close; no byte for the stall limit
//! fails it; every byte that arrived reaches the file before an abort, so a
//! partial new file holds all of it. What to do with the file afterwards
//! (commit, keep, discard) is the caller's, through
//! [`crate::storage::Upload`].
//!
//! At most [`MAX_THREADS`] transfers run this way at a time, uploads here and
//! downloads in [`crate::send`] together ([`Slot`]; the blocking pool also
//! serves every session's file-system calls); more stay on the async path.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::disk::WriteBack;

/// Most transfers on blocking threads at once (uploads and downloads).
pub const MAX_THREADS: usize = 32;
/// Bytes read from the socket at a time.
const RECEIVE_BYTES: usize = 256 * 1024;
/// The socket's receive low-water mark (`SO_RCVLOWAT`).
const LOW_WATER: i32 = 128 * 1024;
/// Longest a read waits for the low-water mark before it takes what is
/// there: the most an upload's last piece (and its close_notify) waits.
const LOW_WATER_WAIT: Duration = Duration::from_millis(5);

static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// A place among the [`MAX_THREADS`]; released on drop.
#[derive(Debug)]
pub struct Slot(());

impl Slot {
    /// Take a place, or `None` when all are in use.
    pub fn take() -> Option<Slot> {
        let taken = ACTIVE.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_THREADS).then_some(n + 1)
        });
        taken.ok().map(|_| Slot(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How the receiving ended.
#[derive(Debug)]
pub enum Received {
    /// The client closed the data (TLS close_notify under PROT P, TCP close
    /// under PROT C) and every byte is in the file.
    Complete,
    /// The connection ended early (reset, close without close_notify,
    /// shut down by ABOR) or broke the TLS rules.
    Lost(io::Error),
    /// No byte for the stall limit.
    Stalled,
    /// Writing the file failed.
    Storage(io::Error),
}

/// The upload's pieces, owned by the receiving thread while it runs.
pub struct Receiver {
    /// The data connection, in blocking mode.
    pub tcp: TcpStream,
    /// Its TLS state (PROT P), handshake complete.
    pub tls: Option<rustls::ServerConnection>,
    /// The file, positioned where the upload's bytes go.
    file: std::fs::File,
    /// Bytes received so far (for STAT); the receiving adds to it.
    progress: Arc<AtomicU64>,
    /// The batch being filled and how much of it is filled.
    batch: (Vec<u8>, usize),
    stall: Duration,
}

impl Receiver {
    /// Prepare the socket: blocking reads that wait for a low-water mark
    /// (see [`Socket`]) and give up after `stall` without a byte. `batch`
    /// is the batch being filled and how much of it is (it may be partly
    /// filled when the upload started elsewhere).
    pub fn new(
        tcp: TcpStream,
        tls: Option<rustls::ServerConnection>,
        file: std::fs::File,
        batch: (Vec<u8>, usize),
        progress: Arc<AtomicU64>,
        stall: Duration,
    ) -> io::Result<Receiver> {
        let stall = stall.max(Duration::from_millis(1));
        tcp.set_nonblocking(false)?;
        set_receive_low_water(&tcp, LOW_WATER)?;
        tcp.set_read_timeout(Some(LOW_WATER_WAIT.min(stall)))?;
        // What this side writes (alerts, KeyUpdate answers) must not wait
        // forever on a client that does not read either.
        tcp.set_write_timeout(Some(stall))?;
        Ok(Receiver {
            tcp,
            tls,
            file,
            progress,
            batch,
            stall,
        })
    }

    /// A handle that can shut the connection down while [`Receiver::run`]
    /// blocks on it (ABOR).
    pub fn canceller(&self) -> io::Result<Canceller> {
        Canceller::new(&self.tcp)
    }

    /// Receive until the client closes or something fails. Blocks.
    pub fn run(&mut self) -> Received {
        let (mut buf, filled) = std::mem::take(&mut self.batch);
        if buf.len() < super::transfer::UPLOAD_BATCH_BYTES {
            buf.resize(super::transfer::UPLOAD_BATCH_BYTES, 0);
        }
        let mut batch = Batch {
            buf,
            filled,
            file: &self.file,
            total: self.progress.load(Ordering::Relaxed),
            progress: &self.progress,
            write_back: WriteBack::default(),
        };
        let mut socket = Socket {
            tcp: &self.tcp,
            stall: self.stall,
            last_data: Instant::now(),
        };
        let outcome = match self.tls.as_mut() {
            Some(tls) => receive_tls(&mut socket, tls, &mut batch),
            None => receive_plain(&mut socket, &mut batch),
        };
        match outcome {
            Received::Complete => batch
                .write_out()
                .map_or_else(Received::Storage, |()| outcome),
            // Keep every byte that arrived (see `Upload::abort`).
            Received::Lost(_) | Received::Stalled => {
                let _ = batch.write_out();
                outcome
            }
            Received::Storage(_) => outcome,
        }
    }
}

/// Shuts a [`Receiver`]'s connection down from another thread: on
/// [`Canceller::cancel`], and when dropped before [`Canceller::disarm`] (the
/// task waiting for the thread went away), so the thread never outlives its
/// transfer by more than a read.
pub struct Canceller(Option<TcpStream>);

impl Canceller {
    /// A canceller for the connection `tcp` (a second descriptor of it).
    pub fn new(tcp: &TcpStream) -> io::Result<Canceller> {
        Ok(Canceller(Some(tcp.try_clone()?)))
    }

    /// Make the thread's read or write on the connection return at once.
    pub fn cancel(&self) {
        if let Some(tcp) = &self.0 {
            let _ = tcp.shutdown(Shutdown::Both);
        }
    }

    /// The thread has finished: nothing to stop any more.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Canceller {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Received bytes on their way to the file.
struct Batch<'a> {
    buf: Vec<u8>,
    filled: usize,
    file: &'a std::fs::File,
    total: u64,
    progress: &'a AtomicU64,
    write_back: WriteBack,
}

impl Batch<'_> {
    /// The unfilled part of the batch.
    fn space(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.filled..).unwrap_or_default()
    }

    /// `n` more bytes are in [`Batch::space`]; writes the batch when full.
    fn filled(&mut self, n: usize) -> io::Result<()> {
        self.filled += n;
        self.total += n as u64;
        if self.filled >= self.buf.len() {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> io::Result<()> {
        let pending = self.buf.get(..self.filled).unwrap_or_default();
        let result = (&*self.file).write_all(pending);
        let written = pending.len() as u64;
        self.filled = 0;
        self.progress.store(self.total, Ordering::Relaxed);
        result?;
        self.write_back.wrote(self.file, written);
        Ok(())
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

/// `setsockopt(SO_RCVLOWAT)`: neither std, socket2, rustix nor nix (0.29)
/// offers it.
#[allow(unsafe_code)]
fn set_receive_low_water(tcp: &TcpStream, bytes: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value: libc::c_int = bytes;
    // SAFETY: the descriptor is open for the borrow of `tcp`; the option
    // value points to a live c_int and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn receive_plain(socket: &mut Socket<'_>, batch: &mut Batch<'_>) -> Received {
    loop {
        match socket.read(batch.space()) {
            Ok(0) => return Received::Complete,
            Ok(n) => {
                if let Err(error) = batch.filled(n) {
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
    batch: &mut Batch<'_>,
) -> Received {
    let mut tcp = socket.tcp;
    let mut incoming = vec![0u8; RECEIVE_BYTES];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        // Plaintext first: the handshake may have left some behind.
        loop {
            match tls.reader().read(batch.space()) {
                Ok(0) => return Received::Complete,
                Ok(n) => {
                    if let Err(error) = batch.filled(n) {
                        return Received::Storage(error);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                // UnexpectedEof: TCP closed without close_notify.
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
        // A TLS 1.3 KeyUpdate asks for one in return.
        while tls.wants_write() {
            if let Err(error) = tls.write_tls(&mut tcp) {
                return Received::Lost(error);
            }
        }
    }
}
