//! Receiving an upload (RFC 959 STOR, STOU, APPE; RFC 4217 §10.2 protected
//! data; TYPE A line endings converted per RFC 959 §3.1.1.1).
//!
//! Bytes are read from the data connection into a [`Batch`] and handed to
//! the storage's [`Upload`] a batch at a time. A binary upload that has
//! brought [`THREAD_AFTER_BYTES`] moves to a blocking thread of its own
//! ([`super::receive_thread`]) when a thread is free and the back-end writes
//! directly from one. A protected upload is complete only after the client's
//! TLS close_notify: a bare TCP close is a possible truncation, the upload
//! is aborted and never replaces the existing file. Every byte that arrived
//! reaches storage before an abort, so a new file's kept partial content
//! holds all of it (see [`Upload::abort`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ftps_proto::ascii;
use ftps_proto::session::TransferOutcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::warn;

use super::batch::Batch;
use super::context::{TransferContext, TRANSFER_BUFFER_BYTES};
use super::data::finish;
use super::receive_thread::{prepare_socket, Received, Receiver};
use super::threads::{close_after_thread, on_thread, Canceller, Slot, THREAD_AFTER_BYTES};
use crate::storage::{FsError, Upload};
use crate::stream::DataStream;

/// Write the batch's contents to storage and empty it.
async fn write_batch(upload: &mut dyn Upload, batch: &mut Batch) -> Result<(), FsError> {
    let result = match batch.contents() {
        [] => Ok(()),
        contents => upload.write(contents).await,
    };
    batch.clear();
    result
}

/// Put converted bytes into the batch, writing each batch that fills.
async fn push_all(upload: &mut dyn Upload, batch: &mut Batch, bytes: &[u8]) -> Result<(), FsError> {
    let mut pending = bytes;
    while !pending.is_empty() {
        pending = batch.push(pending);
        if batch.is_full() {
            write_batch(upload, batch).await?;
        }
    }
    Ok(())
}

/// Abort an upload, first handing storage what was received but not yet
/// written: a new file's partial content is kept for REST+STOR/APPE and
/// must contain every byte that arrived.
async fn abort_upload(mut upload: Box<dyn Upload>, mut batch: Batch) {
    let _ = write_batch(upload.as_mut(), &mut batch).await;
    upload.abort().await;
}

/// Receive an upload on `data` into `upload` until the client closes.
/// `held` are TLS records (session tickets) to send only once the client
/// has closed: see [`super::data::handshake`].
pub(super) async fn receive(
    ctx: &TransferContext,
    mut upload: Box<dyn Upload>,
    mut data: DataStream,
    ascii: bool,
    held: Vec<u8>,
) -> TransferOutcome {
    let mut batch = Batch::new();
    // Binary data is read straight into the batch; TYPE A data is
    // converted on its way there.
    let mut buf = if ascii {
        vec![0u8; TRANSFER_BUFFER_BYTES]
    } else {
        Vec::new()
    };
    let mut converted = Vec::new();
    let mut converter = ascii::FromNetwork::default();
    let mut total = 0u64;
    let mut tried_thread = false;
    loop {
        let space = if ascii {
            buf.as_mut_slice()
        } else {
            batch.space()
        };
        let read = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {
                abort_upload(upload, batch).await;
                return TransferOutcome::Aborted;
            }
            r = tokio::time::timeout(ctx.stall_timeout, data.read(space)) => r,
        };
        let n = match read_outcome(ctx, read, total) {
            Read::Data(n) => n,
            Read::End => break,
            Read::Failed(outcome) => {
                abort_upload(upload, batch).await;
                return outcome;
            }
        };
        total += n as u64;
        ctx.progress.store(total, Ordering::Relaxed);
        let stored = if ascii {
            converted.clear();
            converter.convert(buf.get(..n).unwrap_or_default(), &mut converted);
            push_all(upload.as_mut(), &mut batch, &converted).await
        } else {
            batch.received(n);
            match batch.is_full() {
                true => write_batch(upload.as_mut(), &mut batch).await,
                false => Ok(()),
            }
        };
        if let Err(error) = stored {
            upload.abort().await;
            return TransferOutcome::StorageFailed(error);
        }
        if !ascii && !tried_thread && total >= THREAD_AFTER_BYTES {
            // A bulk upload: the rest goes faster on a blocking thread.
            tried_thread = true;
            if let Some(slot) = Slot::take() {
                match upload.begin_blocking().await {
                    Ok(true) => {
                        return receive_on_thread(ctx, upload, data, batch, slot, held).await
                    }
                    Ok(false) => {}
                    Err(error) => {
                        upload.abort().await;
                        return TransferOutcome::StorageFailed(error);
                    }
                }
            }
        }
    }
    if ascii {
        let mut tail = Vec::new();
        converter.finish(&mut tail);
        if let Err(error) = push_all(upload.as_mut(), &mut batch, &tail).await {
            upload.abort().await;
            return TransferOutcome::StorageFailed(error);
        }
    }
    commit_upload(ctx, upload, batch, data, held, total).await
}

/// What one read of the data connection means for the upload.
enum Read {
    /// `n` bytes arrived.
    Data(usize),
    /// The client closed cleanly (or without close_notify, where the policy
    /// accepts that).
    End,
    /// The upload failed: abort it and answer this.
    Failed(TransferOutcome),
}

fn read_outcome(
    ctx: &TransferContext,
    read: Result<std::io::Result<usize>, tokio::time::error::Elapsed>,
    total: u64,
) -> Read {
    match read {
        Ok(Ok(0)) => Read::End,
        Ok(Ok(n)) => Read::Data(n),
        // A TLS stream that ends without close_notify reads as an error
        // (UnexpectedEof): a possibly truncated upload, kept only when
        // the policy says so.
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            if ctx.accept_upload_without_close_notify {
                warn!(peer = %ctx.peer_ip, received = total, "upload ended without TLS close_notify: kept (accept_upload_without_close_notify)");
                return Read::End;
            }
            warn!(peer = %ctx.peer_ip, received = total, "upload ended without TLS close_notify: possible truncation, not kept");
            Read::Failed(TransferOutcome::NoCloseNotify)
        }
        Ok(Err(error)) => {
            warn!(peer = %ctx.peer_ip, %error, received = total, "upload data connection failed");
            Read::Failed(TransferOutcome::ConnectionLost)
        }
        Err(_) => {
            warn!(peer = %ctx.peer_ip, received = total, "upload stalled");
            Read::Failed(TransferOutcome::Stalled)
        }
    }
}

/// Every byte of a cleanly ended upload arrived: write what the batch
/// holds, commit, then release the held tickets and close the data
/// connection.
async fn commit_upload(
    ctx: &TransferContext,
    mut upload: Box<dyn Upload>,
    mut batch: Batch,
    mut data: DataStream,
    held: Vec<u8>,
    total: u64,
) -> TransferOutcome {
    if let Err(error) = write_batch(upload.as_mut(), &mut batch).await {
        upload.abort().await;
        return TransferOutcome::StorageFailed(error);
    }
    if let Err(error) = upload.commit().await {
        return TransferOutcome::StorageFailed(error);
    }
    // Every byte is in: the held tickets can no longer cost any, even if the
    // client has closed and answers them with a reset.
    if let (DataStream::Tls(tls), false) = (&mut data, held.is_empty()) {
        let tcp = &mut tls.get_mut().0;
        let _ = tokio::time::timeout(ctx.stall_timeout, tcp.write_all(&held)).await;
    }
    // Answer the client's close_notify with ours (ftplib's unwrap() waits for it).
    let _ = finish(data, ctx.stall_timeout).await;
    TransferOutcome::Complete { bytes: total }
}

/// Receive the rest of a bulk binary upload on a blocking thread (see
/// [`super::receive_thread`]); `batch` holds what arrived but was not yet
/// written.
async fn receive_on_thread(
    ctx: &TransferContext,
    upload: Box<dyn Upload>,
    data: DataStream,
    batch: Batch,
    slot: Slot,
    held: Vec<u8>,
) -> TransferOutcome {
    let (tcp, tls) = match data {
        DataStream::Tls(stream) => {
            let (tcp, tls) = stream.into_inner();
            (tcp, Some(tls))
        }
        DataStream::Plain(tcp) => (tcp, None),
        DataStream::Detached => {
            abort_upload(upload, batch).await;
            return TransferOutcome::ConnectionLost;
        }
    };
    let prepared = tcp.into_std().and_then(|tcp| {
        prepare_socket(&tcp, ctx.stall_timeout)?;
        let canceller = Canceller::new(&tcp)?;
        Ok((tcp, canceller))
    });
    let (tcp, canceller) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            warn!(peer = %ctx.peer_ip, %error, "cannot prepare the upload's data connection");
            abort_upload(upload, batch).await;
            return TransferOutcome::ConnectionLost;
        }
    };
    let progress = Arc::clone(&ctx.progress);
    let mut receiver = Receiver::new(tcp, tls, upload, batch, progress, ctx.stall_timeout, held);
    let joined = on_thread(ctx, slot, canceller, move || {
        let received = receiver.run();
        (receiver, received)
    })
    .await;
    // A thread that panicked dropped the upload: its drop aborts it.
    let Some((receiver, received)) = joined else {
        return TransferOutcome::ConnectionLost;
    };
    let Receiver {
        tcp,
        tls,
        upload,
        held,
        ..
    } = receiver;
    if let Some(outcome) = failed(ctx, received) {
        upload.abort().await;
        return outcome;
    }
    let total = ctx.progress.load(Ordering::Relaxed);
    if let Err(error) = upload.commit().await {
        return TransferOutcome::StorageFailed(error);
    }
    // The held tickets (every byte is in now), then our close_notify in
    // answer to the client's; then close as the async path does.
    let mut close = held;
    if let Some(mut tls) = tls {
        tls.send_close_notify();
        while tls.wants_write() {
            if tls.write_tls(&mut close).is_err() {
                break;
            }
        }
    }
    // The upload is committed: a failing close no longer changes the outcome.
    let _ = close_after_thread(ctx, tcp, &close).await;
    TransferOutcome::Complete { bytes: total }
}

/// The outcome of a receiving thread that did not complete (ABOR first).
fn failed(ctx: &TransferContext, received: Received) -> Option<TransferOutcome> {
    if ctx.cancel.is_cancelled() {
        return Some(TransferOutcome::Aborted);
    }
    let total = ctx.progress.load(Ordering::Relaxed);
    match received {
        Received::Complete => None,
        Received::Lost(error) => {
            warn!(peer = %ctx.peer_ip, %error, received = total, "upload data connection failed");
            Some(TransferOutcome::ConnectionLost)
        }
        Received::Stalled => {
            warn!(peer = %ctx.peer_ip, received = total, "upload stalled");
            Some(TransferOutcome::Stalled)
        }
        Received::NoCloseNotify if ctx.accept_upload_without_close_notify => {
            warn!(peer = %ctx.peer_ip, received = total, "upload ended without TLS close_notify: kept (accept_upload_without_close_notify)");
            None
        }
        Received::NoCloseNotify => {
            warn!(peer = %ctx.peer_ip, received = total, "upload ended without TLS close_notify: possible truncation, not kept");
            Some(TransferOutcome::NoCloseNotify)
        }
        Received::Storage(error) => Some(TransferOutcome::StorageFailed(error)),
    }
}
