//! The pieces shared by bulk downloads ([`super::send_thread`]) and bulk
//! uploads ([`super::receive_thread`]) that run on a blocking thread of
//! their own: the bound on such threads ([`Slot`]), stopping one from the
//! async side ([`Canceller`], for ABOR), running one ([`on_thread`]) and
//! handing the connection back to tokio to close it ([`close_after_thread`]).
//!
//! At most [`MAX_THREADS`] transfers run this way at a time, uploads and
//! downloads together (the blocking pool also serves every session's
//! file-system calls); more stay on the async path.

use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::context::TransferContext;
use super::data::finish;
use crate::stream::DataStream;

/// Most transfers on blocking threads at once (uploads and downloads).
pub const MAX_THREADS: usize = 32;
/// A transfer moves to a blocking thread after (uploads) or when it has at
/// least (downloads) this many bytes; smaller ones stay async, where
/// starting a thread would cost more than it saves.
pub const THREAD_AFTER_BYTES: u64 = 1024 * 1024;

static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// A place among the [`MAX_THREADS`]; released on drop.
#[derive(Debug)]
pub(super) struct Slot(());

impl Slot {
    /// Take a place, or `None` when all are in use.
    pub(super) fn take() -> Option<Slot> {
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

/// Shuts a thread's connection down from another thread: on
/// [`Canceller::cancel`], and when dropped before [`Canceller::disarm`] (the
/// task waiting for the thread went away), so the thread never outlives its
/// transfer by more than a read or a write.
pub(super) struct Canceller(Option<std::net::TcpStream>);

impl Canceller {
    /// A canceller for the connection `tcp` (a second descriptor of it).
    pub(super) fn new(tcp: &std::net::TcpStream) -> io::Result<Canceller> {
        Ok(Canceller(Some(tcp.try_clone()?)))
    }

    /// Make the thread's read or write on the connection return at once.
    pub(super) fn cancel(&self) {
        if let Some(tcp) = &self.0 {
            let _ = tcp.shutdown(Shutdown::Both);
        }
    }

    /// The thread has finished: nothing to stop any more.
    pub(super) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Canceller {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Run a bulk transfer's blocking `work` on a thread of the blocking pool,
/// holding `slot`. ABOR shuts the connection down under it through
/// `canceller`, and so does dropping this future (the canceller's drop), so
/// the thread never outlives its transfer by more than one read or write.
/// `None` if the thread panicked.
pub(super) async fn on_thread<T: Send + 'static>(
    ctx: &TransferContext,
    slot: Slot,
    canceller: Canceller,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let mut job = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    });
    let joined = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => {
            canceller.cancel();
            (&mut job).await
        }
        joined = &mut job => joined,
    };
    canceller.disarm();
    joined.ok()
}

/// Close a data connection a thread has finished with: back to tokio, send
/// `close_notify` (the encoded alert, if the thread has not), then as
/// [`finish`] does.
pub(super) async fn close_after_thread(
    ctx: &TransferContext,
    tcp: std::net::TcpStream,
    close_notify: &[u8],
) -> io::Result<()> {
    tcp.set_nonblocking(true)?;
    let mut tcp = TcpStream::from_std(tcp)?;
    if !close_notify.is_empty() {
        tokio::time::timeout(ctx.stall_timeout, tcp.write_all(close_notify))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    }
    finish(DataStream::Plain(tcp), ctx.stall_timeout).await
}
