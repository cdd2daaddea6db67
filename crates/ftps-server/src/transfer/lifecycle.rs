//! The life cycle of one transfer, in the order of RFC 959 §3.2-3.3 and
//! RFC 4217 §7, §10.2: open (a failure is answered before any 1xx), for an
//! upload whose data connection already started TLS complete that handshake
//! so its session tickets precede the 150, report "started" (the control
//! task sends 150), get the data connection, protect it, move the bytes,
//! report the outcome and log the transfer.

use std::sync::atomic::Ordering;
use std::time::Instant;

use ftps_proto::command::TransferType;
use ftps_proto::session::{
    DataEndpoint, DataProtection, ListFormat, StoreMode, TransferKind, TransferOutcome,
    TransferRequest,
};
use tracing::{info, warn};

use super::context::{TransferContext, TransferEvent};
use super::data::{connect_data, early_upload_tickets, handshake, TlsInfo, EARLY_FINISHED_WAIT};
use super::open::{open, Source};
use super::{download, listing, upload};
use crate::passive::Arrival;
use crate::stream::DataStream;
use crate::tls::Direction;

/// Run one transfer to its end and report it.
pub async fn run(mut ctx: TransferContext, request: TransferRequest) {
    let started_at = Instant::now();
    let mut tls_info = TlsInfo::default();
    let outcome = run_inner(&mut ctx, &request, &mut tls_info).await;
    let bytes = ctx.progress.load(Ordering::Relaxed);
    let (verb, path) = describe(&request.kind);
    info!(
        target: "ftps::transfer",
        user = %ctx.user,
        peer = %ctx.peer_ip,
        verb,
        path = %String::from_utf8_lossy(&path),
        bytes,
        seconds = format!("{:.3}", started_at.elapsed().as_secs_f64()),
        tls = if request.protection == DataProtection::Private { tls_info.version.as_str() } else { "none" },
        cipher = %tls_info.cipher,
        resumed = if tls_info.resumed { "yes" } else { "no" },
        outcome = ?outcome,
        "transfer"
    );
    // The control task may be gone (connection closed); nothing to report then.
    let _ = ctx.events.send(TransferEvent::Done(outcome)).await;
}

/// The command verb and path, for the log.
fn describe(kind: &TransferKind) -> (&'static str, Vec<u8>) {
    match kind {
        TransferKind::Retrieve { path, .. } => ("RETR", path.to_bytes()),
        TransferKind::Store { path, mode } => (
            match mode {
                StoreMode::Append => "APPE",
                StoreMode::Unique => "STOU",
                _ => "STOR",
            },
            path.to_bytes(),
        ),
        TransferKind::List { path, format } => (
            match format {
                ListFormat::List => "LIST",
                ListFormat::Nlst => "NLST",
                ListFormat::Mlsd => "MLSD",
            },
            path.to_bytes(),
        ),
    }
}

async fn run_inner(
    ctx: &mut TransferContext,
    request: &TransferRequest,
    tls_info: &mut TlsInfo,
) -> TransferOutcome {
    let (source, started) = match open(ctx.storage.as_ref(), request).await {
        Ok(opened) => opened,
        Err(error) => return TransferOutcome::OpenFailed(error),
    };
    // Uploads receive: their data connection carries no session tickets
    // unless the client finished its handshake early (see crate::tls).
    let direction = match source {
        Source::Upload(_) => Direction::Receive,
        _ => Direction::Send,
    };
    let arrived = early_upload(ctx, request, direction).await;
    if ctx
        .events
        .send(TransferEvent::Started(started))
        .await
        .is_err()
    {
        return abandon(source, TransferOutcome::ConnectionLost).await;
    }
    let (data, held) = match protected_data(ctx, request, direction, arrived, tls_info).await {
        Ok(data) => data,
        Err(outcome) => return abandon(source, outcome).await,
    };
    let ascii = request.transfer_type == TransferType::Ascii;
    match source {
        Source::Download(file) => download::send(ctx, file, data, ascii).await,
        Source::Upload(file) => upload::receive(ctx, file, data, ascii, held).await,
        Source::Listing(entries) => listing::send(ctx, request, entries, data).await,
    }
}

/// An upload whose data connection is already here, TLS started early:
/// its tickets must reach the client before the 150 reply (see
/// [`early_upload_tickets`]).
async fn early_upload(
    ctx: &mut TransferContext,
    request: &TransferRequest,
    direction: Direction,
) -> Option<Arrival> {
    let wanted = direction == Direction::Receive
        && request.protection == DataProtection::Private
        && request.endpoint == DataEndpoint::Passive;
    if !wanted {
        return None;
    }
    let port = ctx.passive.take()?;
    match port.take_started(EARLY_FINISHED_WAIT).await {
        Ok(arrival) => Some(early_upload_tickets(ctx, arrival).await),
        Err(port) => {
            ctx.passive = Some(port);
            None
        }
    }
}

/// The data connection (the one that `arrived` early, or the passive or
/// active one), protected as the request says, with the TLS records an
/// upload holds back until it is complete (see [`handshake`]).
async fn protected_data(
    ctx: &mut TransferContext,
    request: &TransferRequest,
    direction: Direction,
    arrived: Option<Arrival>,
    tls_info: &mut TlsInfo,
) -> Result<(DataStream, Vec<u8>), TransferOutcome> {
    let cancel = ctx.cancel.clone();
    let tcp = match arrived {
        Some(arrival) => Some(arrival),
        None => tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(TransferOutcome::Aborted),
            tcp = connect_data(ctx, request.endpoint) => tcp,
        },
    };
    let (tcp, early) = match tcp {
        None => return Err(TransferOutcome::DataConnectionFailed),
        Some(Arrival::Tcp(tcp)) => (tcp, None),
        Some(Arrival::TlsStarted(tcp, conn, data_tls)) => (tcp, Some((conn, data_tls))),
        Some(Arrival::TlsFailed(error)) => {
            warn!(peer = %ctx.peer_ip, %error, "data connection TLS handshake failed");
            return Err(TransferOutcome::TlsFailed);
        }
    };
    match request.protection {
        // The client started TLS although PROT C is in force now.
        DataProtection::Clear if early.is_some() => Err(TransferOutcome::DataConnectionFailed),
        DataProtection::Clear => Ok((DataStream::Plain(tcp), Vec::new())),
        DataProtection::Private => {
            let reuse = request.require_session_reuse;
            let (tls, held) = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(TransferOutcome::Aborted),
                h = handshake(ctx, tcp, early, direction, reuse, tls_info) => h?,
            };
            Ok((DataStream::Tls(Box::new(tls)), held))
        }
    }
}

/// The transfer ends before its data moved.
async fn abandon(source: Source, outcome: TransferOutcome) -> TransferOutcome {
    source.abandon().await;
    outcome
}
