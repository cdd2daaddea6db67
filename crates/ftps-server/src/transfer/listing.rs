//! Sending a directory listing over the data connection: RFC 959 LIST (the
//! `ls -l` style lines of `ftps_proto::list`) and NLST (names only), RFC
//! 3659 §7 MLSD (fact lines of `ftps_proto::facts`). Entries stream from
//! the storage through a bounded channel and leave in 64 KiB writes, so a
//! directory of any size is listed with bounded memory.

use std::sync::atomic::Ordering;

use ftps_proto::entry::Entry;
use ftps_proto::session::{ListFormat, TransferKind, TransferOutcome, TransferRequest};

use super::context::{TransferContext, TRANSFER_BUFFER_BYTES};
use super::data::finish;
use crate::storage::EntryStream;
use crate::stream::DataStream;

/// What a listing sends: a directory's entries, or one file's (LIST/NLST
/// of a file).
pub(super) enum Listing {
    /// The entries of a directory, as the storage streams them.
    Stream(EntryStream),
    /// A single file.
    Single(Entry),
}

/// Send `listing` in the request's format over `data`.
pub(super) async fn send(
    ctx: &TransferContext,
    request: &TransferRequest,
    listing: Listing,
    mut data: DataStream,
) -> TransferOutcome {
    let format = match &request.kind {
        TransferKind::List { format, .. } => *format,
        _ => ListFormat::List,
    };
    let line = |entry: &Entry| -> Vec<u8> {
        let mut line = match format {
            ListFormat::List => ftps_proto::list::format_list_line(entry, ctx.now_unix),
            ListFormat::Nlst => ftps_proto::list::format_nlst_line(entry),
            ListFormat::Mlsd => {
                ftps_proto::facts::format_entry(entry, request.permissions, &request.facts, None)
            }
        };
        line.extend_from_slice(b"\r\n");
        line
    };
    let mut total = 0u64;
    let mut out = Vec::with_capacity(TRANSFER_BUFFER_BYTES);
    match listing {
        Listing::Single(entry) => out.extend(line(&entry)),
        Listing::Stream(mut entries) => loop {
            let next = tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => return TransferOutcome::Aborted,
                e = entries.recv() => e,
            };
            match next {
                None => break,
                Some(Ok(entry)) => out.extend(line(&entry)),
                Some(Err(e)) => return TransferOutcome::StorageFailed(e),
            }
            if out.len() >= TRANSFER_BUFFER_BYTES {
                if let Err(outcome) = ctx.write(&mut data, &out).await {
                    return outcome;
                }
                total += out.len() as u64;
                ctx.progress.store(total, Ordering::Relaxed);
                out.clear();
            }
        },
    }
    if let Err(outcome) = ctx.write(&mut data, &out).await {
        return outcome;
    }
    total += out.len() as u64;
    ctx.progress.store(total, Ordering::Relaxed);
    match finish(data, ctx.stall_timeout).await {
        Ok(()) => TransferOutcome::Complete { bytes: total },
        Err(_) => TransferOutcome::ConnectionLost,
    }
}
