//! Sending a file (RFC 959 RETR in stream mode, TYPE A converted per RFC 959
//! §3.1.1.1, from a REST offset per RFC 3659 §5; RFC 4217 §10.2 protected
//! data).
//!
//! Three ways, chosen by what the data connection is and what the storage's
//! [`Download`] offers, never by which back-end it is:
//! * zero copy ([`Download::copy_to_socket`]) for TYPE I over a plain data
//!   connection (PROT C);
//! * a blocking thread of its own ([`super::send_thread`]) for TYPE I of at
//!   least [`THREAD_AFTER_BYTES`] over TLS, when the back-end reads directly
//!   ([`Download::reads_blocking`]) and a thread is free;
//! * otherwise in chunks: the next chunk is read while the current one is
//!   encrypted and sent, a small file in one chunk of its size.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ftps_proto::ascii;
use ftps_proto::session::TransferOutcome;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tracing::warn;

use super::context::{TransferContext, TRANSFER_BUFFER_BYTES};
use super::data::finish;
use super::send_thread::{Sender, Sent};
use super::threads::{close_after_thread, on_thread, Slot, THREAD_AFTER_BYTES};
use crate::storage::error::from_io;
use crate::storage::Download;
use crate::stream::DataStream;

/// Bytes read from storage per chunk for TYPE I.
const FILE_CHUNK_BYTES: usize = 256 * 1024;
/// The smallest chunk a TYPE I download reads at a time.
const SMALL_CHUNK_BYTES: usize = 4096;
/// Largest piece handed to one zero-copy call.
const ZERO_COPY_BYTES: usize = 1 << 20;

/// Send `download` over `data` to its end.
pub(super) async fn send(
    ctx: &TransferContext,
    mut download: Box<dyn Download>,
    data: DataStream,
    ascii: bool,
) -> TransferOutcome {
    if ascii {
        return send_chunks(ctx, download, data, Some(ascii::ToNetwork::default())).await;
    }
    let data = match data {
        DataStream::Plain(tcp) => match zero_copy(ctx, download.as_mut(), tcp).await {
            Ok(outcome) => return outcome,
            Err(tcp) => DataStream::Plain(tcp),
        },
        DataStream::Tls(tls) if download.reads_blocking() => match bulk_slot(&*download) {
            Some(slot) => return send_on_thread(ctx, download, *tls, slot).await,
            None => DataStream::Tls(tls),
        },
        other => other,
    };
    send_chunks(ctx, download, data, None).await
}

/// A thread for a download of at least [`THREAD_AFTER_BYTES`] still to
/// send, when one is free.
fn bulk_slot(download: &dyn Download) -> Option<Slot> {
    if download.remaining()? < THREAD_AFTER_BYTES {
        return None;
    }
    Slot::take()
}

/// Send in chunks, reading the next one while the current one is written;
/// `ascii` converts line endings on the way.
async fn send_chunks(
    ctx: &TransferContext,
    mut download: Box<dyn Download>,
    mut data: DataStream,
    mut ascii: Option<ascii::ToNetwork>,
) -> TransferOutcome {
    let left = download.remaining();
    // A small file gets a buffer its size: allocating and zeroing 256 KiB
    // for a 4 KiB file cost more than sending it.
    let chunk_bytes = match ascii {
        Some(_) => TRANSFER_BUFFER_BYTES,
        None => left
            .and_then(|left| usize::try_from(left).ok())
            .map_or(FILE_CHUNK_BYTES, |left| {
                left.clamp(SMALL_CHUNK_BYTES, FILE_CHUNK_BYTES)
            }),
    };
    // A file that fits in one chunk is sent as it was when opened, the size
    // the 150 announced: no second trip to storage to look for more.
    let one_chunk = left.filter(|&left| left <= chunk_bytes as u64);
    let first = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => return TransferOutcome::Aborted,
        r = download.read_chunk(Vec::with_capacity(chunk_bytes), chunk_bytes) => r,
    };
    let mut chunk = match first {
        Ok(chunk) => chunk,
        Err(error) => return TransferOutcome::StorageFailed(error),
    };
    let mut spare = Vec::with_capacity(chunk_bytes);
    let mut converted = Vec::new();
    let (mut read, mut sent) = (0u64, 0u64);
    while !chunk.is_empty() {
        read += chunk.len() as u64;
        let more = one_chunk.is_none_or(|left| read < left);
        let out: &[u8] = match &mut ascii {
            Some(converter) => {
                converted.clear();
                converter.convert(&chunk, &mut converted);
                &converted
            }
            None => &chunk,
        };
        let (next, written) = if more {
            let reading = download.read_chunk(std::mem::take(&mut spare), chunk_bytes);
            let (next, written) = tokio::join!(reading, ctx.write(&mut data, out));
            (Some(next), written)
        } else {
            (None, ctx.write(&mut data, out).await)
        };
        if let Err(outcome) = written {
            return outcome;
        }
        sent += out.len() as u64;
        ctx.progress.store(sent, Ordering::Relaxed);
        match next {
            None => break,
            Some(Ok(next)) => spare = std::mem::replace(&mut chunk, next),
            Some(Err(error)) => return TransferOutcome::StorageFailed(error),
        }
    }
    match finish(data, ctx.stall_timeout).await {
        Ok(()) => TransferOutcome::Complete { bytes: sent },
        Err(_) => TransferOutcome::ConnectionLost,
    }
}

/// Send with [`Download::copy_to_socket`] over a plain data connection:
/// the bytes never pass through this process. `Err(tcp)` when the download
/// does not offer it (nothing was sent).
async fn zero_copy(
    ctx: &TransferContext,
    download: &mut dyn Download,
    tcp: TcpStream,
) -> Result<TransferOutcome, TcpStream> {
    let mut total = 0u64;
    loop {
        let ready = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Ok(TransferOutcome::Aborted),
            r = tokio::time::timeout(ctx.stall_timeout, tcp.writable()) => r,
        };
        match ready {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Ok(TransferOutcome::ConnectionLost),
            Err(_) => return Ok(TransferOutcome::Stalled),
        }
        let mut offered = true;
        let sent = tcp.try_io(Interest::WRITABLE, || {
            download
                .copy_to_socket(tcp.as_fd(), ZERO_COPY_BYTES)
                .unwrap_or_else(|| {
                    offered = false;
                    Ok(0)
                })
        });
        if !offered {
            return Err(tcp);
        }
        match sent {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                ctx.progress.store(total, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) => {
                warn!(peer = %ctx.peer_ip, %error, sent = total, "zero-copy send failed");
                return Ok(TransferOutcome::ConnectionLost);
            }
        }
    }
    Ok(
        match finish(DataStream::Plain(tcp), ctx.stall_timeout).await {
            Ok(()) => TransferOutcome::Complete { bytes: total },
            Err(_) => TransferOutcome::ConnectionLost,
        },
    )
}

/// A blocking write that gave up at the stall limit.
fn is_stall(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// Send a bulk download from a blocking thread (see [`super::send_thread`]).
async fn send_on_thread(
    ctx: &TransferContext,
    download: Box<dyn Download>,
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    slot: Slot,
) -> TransferOutcome {
    let (tcp, tls) = tls.into_inner();
    let prepared = tcp.into_std().and_then(|tcp| {
        let progress = Arc::clone(&ctx.progress);
        let sender = Sender::new(tcp, tls, download, progress, ctx.stall_timeout)?;
        let canceller = sender.canceller()?;
        Ok((sender, canceller))
    });
    let (mut sender, canceller) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            warn!(peer = %ctx.peer_ip, %error, "cannot prepare the download's data connection");
            return TransferOutcome::ConnectionLost;
        }
    };
    let joined = on_thread(ctx, slot, canceller, move || {
        let sent = sender.run();
        (sender, sent)
    })
    .await;
    if ctx.cancel.is_cancelled() {
        return TransferOutcome::Aborted;
    }
    let Some((sender, sent)) = joined else {
        return TransferOutcome::ConnectionLost;
    };
    match sent {
        Sent::Complete => {}
        Sent::Lost(error) if is_stall(&error) => {
            warn!(peer = %ctx.peer_ip, "download stalled");
            return TransferOutcome::Stalled;
        }
        Sent::Lost(error) => {
            warn!(peer = %ctx.peer_ip, %error, "download data connection failed");
            return TransferOutcome::ConnectionLost;
        }
        Sent::Storage(error) => return TransferOutcome::StorageFailed(from_io(error)),
    }
    let total = ctx.progress.load(Ordering::Relaxed);
    // The thread has sent the close_notify.
    match close_after_thread(ctx, sender.tcp, &[]).await {
        Ok(()) => TransferOutcome::Complete { bytes: total },
        Err(_) => TransferOutcome::ConnectionLost,
    }
}
