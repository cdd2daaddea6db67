//! One data transfer, in its own task (RFC 959 §3.2-3.3, RFC 4217 §7, §10.2).
//!
//! Order of events: open the file (a failure is answered before any 1xx),
//! for an upload whose data connection already started TLS, complete that
//! handshake so its session tickets precede the 150 (`early_upload_tickets`),
//! report "started" (the control task sends 150), get the data connection
//! (accept on the passive listener, only from the control connection's peer
//! address, or connect for PORT/EPRT), run the TLS handshake as the TLS
//! server — the FTP client is always the TLS client — and require it to
//! resume this control connection's session when the policy says so, then
//! move the bytes. The task can be cancelled (ABOR) at any await point and
//! counts bytes for STAT. A protected upload must end with the client's TLS
//! close_notify; a bare TCP close is a possible truncation and fails the
//! upload, which then never replaces the existing file.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftps_proto::ascii;
use ftps_proto::command::TransferType;
use ftps_proto::entry::{Entry, EntryKind};
use ftps_proto::session::{
    DataEndpoint, DataProtection, FsError, ListFormat, StoreMode, TransferKind, TransferOutcome,
    TransferRequest, TransferStarted,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::passive::{Arrival, PassivePort};
use crate::storage::{Storage, StorageError, Upload, WriteMode};
use crate::stream::DataStream;

/// Size of the buffer a transfer moves data through.
pub const TRANSFER_BUFFER_BYTES: usize = 64 * 1024;
/// Bytes collected from an upload before they are written to storage.
pub(crate) const UPLOAD_BATCH_BYTES: usize = 256 * 1024;
/// A binary upload moves to a blocking thread after this many bytes (see
/// [`crate::receive`]); smaller ones stay here, where starting a thread
/// would cost more than it saves.
const THREAD_AFTER_BYTES: u64 = 1024 * 1024;
/// How long a finished data connection waits for the client's close before it is dropped.
const LINGER_AFTER_CLOSE: Duration = Duration::from_secs(5);
/// How long an upload command waits for the client's TLS Finished on a data
/// connection whose handshake started early (see `early_upload_tickets`).
const EARLY_FINISHED_WAIT: Duration = Duration::from_millis(200);
/// How many times STOU tries a fresh name.
const STOU_ATTEMPTS: usize = 16;

/// Events a transfer reports to its control connection, in order.
#[derive(Debug)]
pub enum TransferEvent {
    /// The file is open; send 150.
    Started(TransferStarted),
    /// The transfer ended.
    Done(TransferOutcome),
}

/// Everything a transfer task needs besides the request.
pub struct TransferContext {
    /// The user's storage.
    pub storage: Arc<dyn Storage>,
    /// This data connection's TLS configuration (sessions staged until accepted).
    pub tls: crate::tls::DataTls,
    /// The control connection's client certificate: the data connection must
    /// present the same one (RFC 4217 §15.1.2).
    pub control_cert: Option<rustls_pki_types::CertificateDer<'static>>,
    /// The passive port, for [`DataEndpoint::Passive`].
    pub passive: Option<PassivePort>,
    /// The control connection's peer: the only address allowed on the data connection.
    pub peer_ip: IpAddr,
    /// The control connection's local address (active connections leave from it).
    pub local_ip: IpAddr,
    /// Limits.
    pub data_connect_timeout: Duration,
    /// TLS handshake limit.
    pub handshake_timeout: Duration,
    /// A transfer that moves no byte for this long fails.
    pub stall_timeout: Duration,
    /// The wall clock for LIST dates.
    pub now_unix: i64,
    /// Where events go.
    pub events: mpsc::Sender<TransferEvent>,
    /// Cancelled by ABOR.
    pub cancel: CancellationToken,
    /// Bytes moved so far (for STAT).
    pub progress: Arc<AtomicU64>,
    /// For the log line.
    pub user: String,
}

/// Map a storage error to the protocol's view of it.
pub fn fs_error(error: &StorageError) -> FsError {
    match error {
        StorageError::NotFound => FsError::NotFound,
        StorageError::PermissionDenied | StorageError::OutsideRoot => FsError::PermissionDenied,
        StorageError::AlreadyExists => FsError::AlreadyExists,
        StorageError::NotADirectory => FsError::NotADirectory,
        StorageError::IsADirectory => FsError::IsADirectory,
        StorageError::NotAFile => FsError::NotAFile,
        StorageError::DirectoryNotEmpty => FsError::DirectoryNotEmpty,
        StorageError::NoSpace => FsError::NoSpace,
        StorageError::InvalidName => FsError::InvalidName,
        StorageError::OffsetBeyondEnd => FsError::OffsetBeyondEnd,
        StorageError::Unsupported => FsError::Unsupported,
        StorageError::Io(e) => FsError::Other(e.to_string()),
    }
}

/// What was opened before the 150 reply.
enum Source {
    File(Box<dyn AsyncRead + Send + Unpin>),
    /// An operating-system file (TYPE I) and the bytes from its position to
    /// its end, when known: sent with `sendfile(2)` under PROT C, from a
    /// thread when large and encrypted, else read in chunks.
    OsFile(std::fs::File, Option<u64>),
    Upload(Box<dyn Upload>),
    Listing(Listing),
}

enum Listing {
    Stream(crate::storage::EntryStream),
    Single(Entry),
}

/// TLS details for the log line.
#[derive(Default)]
struct TlsInfo {
    version: String,
    cipher: String,
    resumed: bool,
}

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
    let (source, started) = match open(ctx, request).await {
        Ok(opened) => opened,
        Err(error) => return TransferOutcome::OpenFailed(error),
    };
    // An upload whose data connection is already here, TLS started early:
    // its tickets must reach the client before the 150 reply (see
    // `early_upload_tickets`).
    let mut arrived = None;
    if matches!(source, Source::Upload(_))
        && request.protection == DataProtection::Private
        && request.endpoint == DataEndpoint::Passive
    {
        if let Some(port) = ctx.passive.take() {
            match port.take_started(EARLY_FINISHED_WAIT).await {
                Ok(arrival) => arrived = Some(early_upload_tickets(ctx, arrival).await),
                Err(port) => ctx.passive = Some(port),
            }
        }
    }
    if ctx
        .events
        .send(TransferEvent::Started(started))
        .await
        .is_err()
    {
        return abandon(source, TransferOutcome::ConnectionLost).await;
    }
    let cancel = ctx.cancel.clone();
    let tcp = match arrived {
        Some(arrival) => Some(arrival),
        None => tokio::select! {
            biased;
            _ = cancel.cancelled() => return abandon(source, TransferOutcome::Aborted).await,
            tcp = connect_data(ctx, request.endpoint) => tcp,
        },
    };
    let (tcp, early) = match tcp {
        None => return abandon(source, TransferOutcome::DataConnectionFailed).await,
        Some(Arrival::Tcp(tcp)) => (tcp, None),
        Some(Arrival::TlsStarted(tcp, conn, data_tls)) => (tcp, Some((conn, data_tls))),
        Some(Arrival::TlsFailed(error)) => {
            warn!(peer = %ctx.peer_ip, %error, "data connection TLS handshake failed");
            return abandon(source, TransferOutcome::TlsFailed).await;
        }
    };
    let direction = match source {
        Source::Upload(_) => crate::tls::Direction::Receive,
        _ => crate::tls::Direction::Send,
    };
    let data = match request.protection {
        // The client started TLS although PROT C is in force now.
        DataProtection::Clear if early.is_some() => {
            return abandon(source, TransferOutcome::DataConnectionFailed).await
        }
        DataProtection::Clear => DataStream::Plain(tcp),
        DataProtection::Private => {
            let handshake = tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => return abandon(source, TransferOutcome::Aborted).await,
                h = handshake(ctx, tcp, early, direction, request.require_session_reuse, tls_info) => h,
            };
            match handshake {
                Ok(tls) => DataStream::Tls(Box::new(tls)),
                Err(outcome) => return abandon(source, outcome).await,
            }
        }
    };
    let ascii = request.transfer_type == TransferType::Ascii;
    match (source, data) {
        (Source::OsFile(file, _), DataStream::Plain(tcp)) if !ascii => {
            send_os_file(ctx, file, tcp).await
        }
        (Source::OsFile(file, left), data) if !ascii => match (data, bulk_download(left)) {
            (DataStream::Tls(tls), Some(slot)) => send_on_thread(ctx, file, *tls, slot).await,
            (data, _) => send_os_file_buffered(ctx, file, data, left).await,
        },
        (Source::OsFile(file, _), data) => {
            let reader = Box::new(tokio::fs::File::from_std(file));
            send_file(ctx, reader, data, ascii).await
        }
        (Source::File(reader), data) => send_file(ctx, reader, data, ascii).await,
        (Source::Upload(upload), data) => receive_file(ctx, upload, data, ascii).await,
        (Source::Listing(listing), data) => send_listing(ctx, request, listing, data).await,
    }
}

/// Abort an upload that never got its data, then return the outcome.
async fn abandon(source: Source, outcome: TransferOutcome) -> TransferOutcome {
    if let Source::Upload(upload) = source {
        upload.abort().await;
    }
    outcome
}

async fn open(
    ctx: &TransferContext,
    request: &TransferRequest,
) -> Result<(Source, TransferStarted), FsError> {
    let storage = &ctx.storage;
    match &request.kind {
        TransferKind::Retrieve { path, offset } => {
            let image = request.transfer_type == TransferType::Image;
            // An operating-system file comes with everything the 150 needs
            // (opening it checked that it is a regular file): one trip to
            // the blocking pool instead of two.
            if image {
                if let Some(file) = storage
                    .read_os_file(path, *offset)
                    .await
                    .map_err(|e| fs_error(&e))?
                {
                    let size = bytes_left(&file);
                    let started = TransferStarted {
                        unique_name: None,
                        size,
                    };
                    return Ok((Source::OsFile(file, size), started));
                }
            }
            let meta = storage.metadata(path).await.map_err(|e| fs_error(&e))?;
            if meta.kind == EntryKind::Dir {
                return Err(FsError::IsADirectory);
            }
            let source = Source::File(
                storage
                    .read(path, *offset)
                    .await
                    .map_err(|e| fs_error(&e))?,
            );
            let size = image.then(|| meta.size.saturating_sub(*offset));
            Ok((
                source,
                TransferStarted {
                    unique_name: None,
                    size,
                },
            ))
        }
        TransferKind::Store {
            path,
            mode: StoreMode::Unique,
        } => {
            for attempt in 0..STOU_ATTEMPTS {
                let name = format!("stou.{:08x}{}", rand::random::<u32>(), attempt);
                let target = path
                    .join(name.as_bytes())
                    .map_err(|_| FsError::InvalidName)?;
                match storage.write(&target, WriteMode::CreateNew).await {
                    Ok(upload) => {
                        return Ok((
                            Source::Upload(upload),
                            TransferStarted {
                                unique_name: Some(name.into_bytes()),
                                size: None,
                            },
                        ))
                    }
                    Err(StorageError::AlreadyExists) => continue,
                    Err(e) => return Err(fs_error(&e)),
                }
            }
            Err(FsError::AlreadyExists)
        }
        TransferKind::Store { path, mode } => {
            let mode = match mode {
                StoreMode::Create | StoreMode::Unique => WriteMode::Create,
                StoreMode::Resume(n) => WriteMode::Resume(*n),
                StoreMode::Append => WriteMode::Append,
            };
            let upload = storage.write(path, mode).await.map_err(|e| fs_error(&e))?;
            Ok((Source::Upload(upload), TransferStarted::default()))
        }
        TransferKind::List { path, format } => {
            let meta = storage.metadata(path).await.map_err(|e| fs_error(&e))?;
            let listing = if meta.kind == EntryKind::Dir {
                Listing::Stream(storage.list(path).await.map_err(|e| fs_error(&e))?)
            } else if *format == ListFormat::Mlsd {
                return Err(FsError::NotADirectory);
            } else {
                Listing::Single(meta)
            };
            Ok((Source::Listing(listing), TransferStarted::default()))
        }
    }
}

/// Take the passive connection (accepted only from the control peer's
/// address, see [`crate::passive`]) or connect (active).
async fn connect_data(ctx: &mut TransferContext, endpoint: DataEndpoint) -> Option<Arrival> {
    let deadline = tokio::time::Instant::now() + ctx.data_connect_timeout;
    match endpoint {
        DataEndpoint::Passive => {
            let port = ctx.passive.take()?;
            tokio::time::timeout_at(deadline, port.take())
                .await
                .ok()
                .flatten()
        }
        DataEndpoint::Active(addr) => {
            let socket = match addr {
                SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
                SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
            }
            .ok()?;
            // Leave from the address the client talks to, when it is of the same family.
            if ctx.local_ip.is_ipv4() == addr.is_ipv4() {
                let _ = socket.bind(SocketAddr::new(ctx.local_ip, 0));
            }
            match tokio::time::timeout_at(deadline, socket.connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    Some(Arrival::Tcp(stream))
                }
                _ => None,
            }
        }
    }
}

/// Session tickets for an upload whose TLS handshake started early.
///
/// A TLS 1.3 client whose session cache uses each ticket once (curl with
/// OpenSSL) needs a fresh ticket from every upload to resume on the next
/// data connection, but it reads its upload connection only once, just
/// before it closes it; a ticket still in flight then is left unread, and
/// the kernel's reset on close discards the tail of the upload. So tickets
/// are issued on an upload only when the client's handshake is complete on
/// its side when the upload command arrives: its Finished is here (or
/// arrives within [`EARLY_FINISHED_WAIT`]), the handshake completes now, the
/// tickets are written before the 150 reply, and they wait in the client's
/// socket before it sends a byte of the file. Otherwise (the client finishes
/// its handshake only after the 150, like ftplib and lftp) the upload
/// carries no tickets.
async fn early_upload_tickets(ctx: &TransferContext, arrival: Arrival) -> Arrival {
    let Arrival::TlsStarted(mut tcp, mut conn, data_tls) = arrival else {
        return arrival;
    };
    data_tls.allow_tickets(true);
    let advanced = tokio::time::timeout(
        EARLY_FINISHED_WAIT,
        crate::passive::drive_handshake(&mut tcp, &mut conn),
    )
    .await
    .map_or(Ok(false), |driven| driven.map(|()| true));
    if !matches!(advanced, Ok(true)) {
        data_tls.allow_tickets(false);
    }
    let flushed = tokio::time::timeout(
        ctx.handshake_timeout,
        crate::passive::flush(&mut tcp, &mut conn),
    )
    .await;
    match (advanced, flushed) {
        (Err(error), _) => Arrival::TlsFailed(error),
        (_, Ok(Err(error))) => Arrival::TlsFailed(error.to_string()),
        (_, Err(_)) => Arrival::TlsFailed("TLS handshake timed out".into()),
        (Ok(_), Ok(Ok(()))) => Arrival::TlsStarted(tcp, conn, data_tls),
    }
}

/// The TLS server handshake on the data connection (RFC 4217 §7, §10.2).
/// `early` is a handshake the passive port already started (its
/// connection state and configuration), to be finished here.
async fn handshake(
    ctx: &TransferContext,
    tcp: TcpStream,
    early: Option<(Box<rustls::ServerConnection>, crate::tls::DataTls)>,
    direction: crate::tls::Direction,
    require_reuse: bool,
    info: &mut TlsInfo,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, TransferOutcome> {
    // Read the client's records here rather than inside tokio-rustls' accept,
    // so that each piece of its flight is acknowledged at once (see
    // `passive::feed_once`); the accept then only sends the tickets.
    let deadline = tokio::time::Instant::now() + ctx.handshake_timeout;
    let mut tcp = tcp;
    let (mut conn, data_tls) = match early {
        Some((conn, data_tls)) => {
            if conn.is_handshaking() {
                data_tls.allow_tickets(direction == crate::tls::Direction::Send);
            }
            (conn, data_tls)
        }
        None => {
            let started =
                tokio::time::timeout_at(deadline, crate::passive::start_tls(&mut tcp, &ctx.tls))
                    .await;
            (handshake_step(ctx, started)?, ctx.tls.clone())
        }
    };
    finish_handshake(ctx, deadline, &mut tcp, &mut conn).await?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&data_tls.config));
    let accept = acceptor.accept_with(tcp, move |fresh| *fresh = *conn);
    // The accept future flushes the session tickets right after the
    // handshake (OpenSSL clients need the fresh ticket for the next data
    // connection: TLS 1.3 tickets are single-use on their side).
    let tls = handshake_step(ctx, tokio::time::timeout_at(deadline, accept).await)?;
    let (version, cipher, resumed) = crate::tls::describe(tls.get_ref().1);
    *info = TlsInfo {
        version,
        cipher,
        resumed,
    };
    if require_reuse && !resumed {
        warn!(peer = %ctx.peer_ip, "data connection did not resume the control connection's TLS session: refused");
        return Err(TransferOutcome::SessionReuseRequired);
    }
    let data_cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    if data_cert != ctx.control_cert.as_ref() {
        warn!(peer = %ctx.peer_ip, "data connection's client certificate differs from the control connection's: refused");
        return Err(TransferOutcome::TlsFailed);
    }
    data_tls.accept();
    if direction == crate::tls::Direction::Receive {
        // The client's Finished waits for its ACK, and an upload gets no
        // session tickets to carry one: a client whose socket holds back
        // small writes (Nagle; Python's ftplib) would send the file only
        // when the kernel's delayed ACK fires, ~40 ms later. Acknowledge now.
        let _ = socket2::SockRef::from(tls.get_ref().0).set_tcp_quickack(true);
    }
    Ok(tls)
}

/// Complete a data connection's TLS handshake whose first flight is sent
/// (see [`crate::passive::drive_handshake`]); on a TLS error, send rustls'
/// alert as tokio-rustls would have. The session tickets, if any, are left
/// for the accept that follows.
async fn finish_handshake(
    ctx: &TransferContext,
    deadline: tokio::time::Instant,
    tcp: &mut TcpStream,
    conn: &mut rustls::ServerConnection,
) -> Result<(), TransferOutcome> {
    let driven =
        tokio::time::timeout_at(deadline, crate::passive::drive_handshake(tcp, conn)).await;
    if matches!(driven, Ok(Err(_))) {
        let _ = crate::passive::flush(tcp, conn).await;
    }
    handshake_step(ctx, driven)
}

/// One bounded step of a data connection's TLS handshake: a failure or the
/// deadline is logged and refuses the transfer.
fn handshake_step<T, E: std::fmt::Display>(
    ctx: &TransferContext,
    step: Result<Result<T, E>, tokio::time::error::Elapsed>,
) -> Result<T, TransferOutcome> {
    match step {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            warn!(peer = %ctx.peer_ip, %error, "data connection TLS handshake failed");
            Err(TransferOutcome::TlsFailed)
        }
        Err(_) => {
            warn!(peer = %ctx.peer_ip, "data connection TLS handshake timed out");
            Err(TransferOutcome::TlsFailed)
        }
    }
}

/// Close the data connection cleanly: TLS close_notify and TCP FIN, then let
/// the client's own close arrive in the background so it does not meet a reset.
async fn finish(mut data: DataStream, stall: Duration) -> std::io::Result<()> {
    tokio::time::timeout(stall, data.shutdown())
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    tokio::spawn(async move {
        let mut sink = [0u8; 512];
        let _ = tokio::time::timeout(LINGER_AFTER_CLOSE, async {
            while matches!(data.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    });
    Ok(())
}

/// Largest piece handed to one `sendfile(2)` call.
const SENDFILE_CHUNK_BYTES: usize = 1 << 20;

/// Send an operating-system file over a plain data connection with
/// `sendfile(2)`: the kernel copies from the page cache to the socket, the
/// bytes never pass through this process (PROT C, TYPE I only).
async fn send_os_file(
    ctx: &TransferContext,
    file: std::fs::File,
    tcp: TcpStream,
) -> TransferOutcome {
    use tokio::io::Interest;
    let mut total = 0u64;
    loop {
        let ready = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return TransferOutcome::Aborted,
            r = tokio::time::timeout(ctx.stall_timeout, tcp.writable()) => r,
        };
        if !matches!(ready, Ok(Ok(()))) {
            return TransferOutcome::ConnectionLost;
        }
        let sent = tcp.try_io(Interest::WRITABLE, || {
            nix::sys::sendfile::sendfile(&tcp, &file, None, SENDFILE_CHUNK_BYTES)
                .map_err(std::io::Error::from)
        });
        match sent {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                ctx.progress.store(total, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) => {
                warn!(peer = %ctx.peer_ip, %error, sent = total, "sendfile failed");
                return TransferOutcome::ConnectionLost;
            }
        }
    }
    match finish(DataStream::Plain(tcp), ctx.stall_timeout).await {
        Ok(()) => TransferOutcome::Complete { bytes: total },
        Err(_) => TransferOutcome::ConnectionLost,
    }
}

/// Bytes read from the file per blocking call when the data connection is
/// encrypted (see [`send_os_file_buffered`]).
const FILE_CHUNK_BYTES: usize = 256 * 1024;
/// The smallest chunk an encrypted download reads at a time.
const SMALL_CHUNK_BYTES: usize = 4096;

/// Run a bulk transfer's blocking `work` on a thread of the blocking pool,
/// holding `slot`. ABOR shuts the connection down under it through
/// `canceller`, and so does dropping this future (the canceller's drop), so
/// the thread never outlives its transfer by more than one read or write.
/// `None` if the thread panicked.
async fn on_thread<T: Send + 'static>(
    ctx: &TransferContext,
    slot: crate::receive::Slot,
    canceller: crate::receive::Canceller,
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

/// Bytes from the file's position to its end (`None` if it cannot be told).
fn bytes_left(file: &std::fs::File) -> Option<u64> {
    use std::io::Seek;
    let size = file.metadata().ok()?.len();
    let position = (&*file).stream_position().ok()?;
    Some(size.saturating_sub(position))
}

/// A thread for an encrypted download of at least [`THREAD_AFTER_BYTES`]
/// still to send (`left`), when one is free.
fn bulk_download(left: Option<u64>) -> Option<crate::receive::Slot> {
    if left? < THREAD_AFTER_BYTES {
        return None;
    }
    crate::receive::Slot::take()
}

/// Send a bulk download from a blocking thread (see [`crate::send`]).
async fn send_on_thread(
    ctx: &TransferContext,
    file: std::fs::File,
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    slot: crate::receive::Slot,
) -> TransferOutcome {
    use crate::send::{Sender, Sent};
    let (tcp, tls) = tls.into_inner();
    let prepared = tcp.into_std().and_then(|tcp| {
        let sender = Sender::new(tcp, tls, file, Arc::clone(&ctx.progress), ctx.stall_timeout)?;
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
        Sent::Lost(error) => {
            warn!(peer = %ctx.peer_ip, %error, "download data connection failed");
            return TransferOutcome::ConnectionLost;
        }
        Sent::Storage(error) => {
            return TransferOutcome::StorageFailed(fs_error(&StorageError::from(error)))
        }
    }
    let total = ctx.progress.load(Ordering::Relaxed);
    // The thread has sent the close_notify.
    match close_after_thread(ctx, sender.tcp, &[]).await {
        Ok(()) => TransferOutcome::Complete { bytes: total },
        Err(_) => TransferOutcome::ConnectionLost,
    }
}

/// Close a data connection a thread has finished with: back to tokio, send
/// `close_notify` (the encoded alert, if the thread has not), then as
/// [`finish`] does.
async fn close_after_thread(
    ctx: &TransferContext,
    tcp: std::net::TcpStream,
    close_notify: &[u8],
) -> std::io::Result<()> {
    tcp.set_nonblocking(true)?;
    let mut tcp = TcpStream::from_std(tcp)?;
    if !close_notify.is_empty() {
        tokio::time::timeout(ctx.stall_timeout, tcp.write_all(close_notify))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    }
    finish(DataStream::Plain(tcp), ctx.stall_timeout).await
}

/// Send an operating-system file over an encrypted data connection: the
/// next chunk is read on a blocking thread while the current one is
/// encrypted and sent, in large chunks straight into the buffer the TLS
/// layer encrypts from (no intermediate copy, few thread hand-offs).
async fn send_os_file_buffered(
    ctx: &TransferContext,
    file: std::fs::File,
    mut data: DataStream,
    left: Option<u64>,
) -> TransferOutcome {
    use std::io::Read;
    // A small file (`left` bytes to send) gets a buffer its size:
    // allocating and zeroing 256 KiB for a 4 KiB file cost more than
    // sending it.
    let chunk_bytes = left
        .and_then(|left| usize::try_from(left).ok())
        .map_or(FILE_CHUNK_BYTES, |left| {
            left.clamp(SMALL_CHUNK_BYTES, FILE_CHUNK_BYTES)
        });
    let file = Arc::new(file);
    let read_chunk = |mut buf: Vec<u8>| {
        let file = Arc::clone(&file);
        tokio::task::spawn_blocking(move || {
            buf.resize(chunk_bytes, 0);
            let n = (&*file).read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>(buf)
        })
    };
    // A file that fits in one chunk is sent as it was when opened, the size
    // the 150 announced: no second trip to the blocking pool to look for more.
    let one_chunk = left.filter(|&left| left <= chunk_bytes as u64);
    let mut pending = Some(read_chunk(Vec::with_capacity(chunk_bytes)));
    let mut spare = Vec::with_capacity(chunk_bytes);
    let mut total = 0u64;
    while let Some(mut reading) = pending.take() {
        let chunk = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return TransferOutcome::Aborted,
            r = &mut reading => r,
        };
        let chunk = match chunk {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(e)) => return TransferOutcome::StorageFailed(fs_error(&StorageError::from(e))),
            Err(e) => return TransferOutcome::StorageFailed(FsError::Other(e.to_string())),
        };
        if chunk.is_empty() {
            break;
        }
        total += chunk.len() as u64;
        let more = match one_chunk {
            Some(left) => total < left,
            None => true,
        };
        if more {
            pending = Some(read_chunk(std::mem::take(&mut spare)));
        }
        if !write_chunk(ctx, &mut data, &chunk).await {
            return interrupted(ctx);
        }
        ctx.progress.store(total, Ordering::Relaxed);
        spare = chunk;
    }
    match finish(data, ctx.stall_timeout).await {
        Ok(()) => TransferOutcome::Complete { bytes: total },
        Err(_) => TransferOutcome::ConnectionLost,
    }
}

async fn send_file(
    ctx: &TransferContext,
    mut reader: Box<dyn AsyncRead + Send + Unpin>,
    mut data: DataStream,
    ascii: bool,
) -> TransferOutcome {
    let mut buf = vec![0u8; TRANSFER_BUFFER_BYTES];
    let mut converted = Vec::new();
    let mut converter = ascii::ToNetwork::default();
    let mut total = 0u64;
    loop {
        let read = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return TransferOutcome::Aborted,
            r = reader.read(&mut buf) => r,
        };
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return TransferOutcome::StorageFailed(fs_error(&StorageError::from(e))),
        };
        let chunk = match buf.get(..n) {
            Some(chunk) => chunk,
            None => return TransferOutcome::StorageFailed(FsError::Other("short read".into())),
        };
        let out: &[u8] = if ascii {
            converted.clear();
            converter.convert(chunk, &mut converted);
            &converted
        } else {
            chunk
        };
        let written = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return TransferOutcome::Aborted,
            w = tokio::time::timeout(ctx.stall_timeout, data.write_all(out)) => w,
        };
        if !matches!(written, Ok(Ok(()))) {
            return TransferOutcome::ConnectionLost;
        }
        total += out.len() as u64;
        ctx.progress.store(total, Ordering::Relaxed);
    }
    match finish(data, ctx.stall_timeout).await {
        Ok(()) => TransferOutcome::Complete { bytes: total },
        Err(_) => TransferOutcome::ConnectionLost,
    }
}

/// Abort an upload, first handing storage what was received but not yet
/// written: a new file's partial content is kept for REST+STOR/APPE (see
/// [`Upload::abort`]) and must contain every byte that arrived.
async fn abort_upload(mut upload: Box<dyn Upload>, batch: &[u8]) {
    if !batch.is_empty() {
        let _ = upload.write_all(batch).await;
        let _ = upload.flush().await;
    }
    upload.abort().await;
}

/// An upload handed from [`receive_file`] to a blocking thread.
struct Handover {
    slot: crate::receive::Slot,
    file: std::fs::File,
    /// The batch being filled, with its first `filled` bytes received.
    batch: Vec<u8>,
    filled: usize,
    /// Bytes already written through the upload's `AsyncWrite`.
    written: u64,
}

/// Receive the rest of a bulk binary upload on a blocking thread (see
/// [`crate::receive`]).
async fn receive_on_thread(
    ctx: &TransferContext,
    mut upload: Box<dyn Upload>,
    data: DataStream,
    handover: Handover,
) -> TransferOutcome {
    use crate::receive::{Received, Receiver};
    let Handover {
        slot,
        file,
        batch,
        filled,
        written,
    } = handover;
    let (tcp, tls) = match data {
        DataStream::Tls(stream) => {
            let (tcp, tls) = stream.into_inner();
            (tcp, Some(tls))
        }
        DataStream::Plain(tcp) => (tcp, None),
        DataStream::Detached => {
            upload.abort().await;
            return TransferOutcome::ConnectionLost;
        }
    };
    let prepared = tcp.into_std().and_then(|tcp| {
        let receiver = Receiver::new(
            tcp,
            tls,
            file,
            (batch, filled),
            Arc::clone(&ctx.progress),
            ctx.stall_timeout,
        )?;
        let canceller = receiver.canceller()?;
        Ok((receiver, canceller))
    });
    let (mut receiver, canceller) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            warn!(peer = %ctx.peer_ip, %error, "cannot prepare the upload's data connection");
            upload.abort().await;
            return TransferOutcome::ConnectionLost;
        }
    };
    let joined = on_thread(ctx, slot, canceller, move || {
        let received = receiver.run();
        (receiver, received)
    })
    .await;
    let Some((receiver, received)) = joined else {
        upload.abort().await;
        return TransferOutcome::ConnectionLost;
    };
    let total = ctx.progress.load(Ordering::Relaxed);
    upload.wrote_directly(total.saturating_sub(written));
    if ctx.cancel.is_cancelled() {
        upload.abort().await;
        return TransferOutcome::Aborted;
    }
    match received {
        Received::Complete => {}
        Received::Lost(error) => {
            warn!(peer = %ctx.peer_ip, %error, received = total, "upload data connection failed");
            upload.abort().await;
            return TransferOutcome::ConnectionLost;
        }
        Received::Stalled => {
            warn!(peer = %ctx.peer_ip, received = total, "upload stalled");
            upload.abort().await;
            return TransferOutcome::ConnectionLost;
        }
        Received::Storage(error) => {
            upload.abort().await;
            return TransferOutcome::StorageFailed(fs_error(&StorageError::from(error)));
        }
    }
    if let Err(e) = upload.commit().await {
        return TransferOutcome::StorageFailed(fs_error(&e));
    }
    // Answer the client's close_notify with ours, then close as the async path does.
    let Receiver { tcp, tls, .. } = receiver;
    let mut close = Vec::new();
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

async fn receive_file(
    ctx: &TransferContext,
    mut upload: Box<dyn Upload>,
    mut data: DataStream,
    ascii: bool,
) -> TransferOutcome {
    // Received bytes are handed to storage in large batches: one blocking
    // write per batch instead of one per TLS record. Binary data is read
    // straight into the batch; TYPE A data is converted on its way there.
    let mut batch = vec![0u8; UPLOAD_BATCH_BYTES];
    let mut filled = 0usize;
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
            batch.get_mut(filled..).unwrap_or_default()
        };
        let read = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {
                abort_upload(upload, batch.get(..filled).unwrap_or_default()).await;
                return TransferOutcome::Aborted;
            }
            r = tokio::time::timeout(ctx.stall_timeout, data.read(space)) => r,
        };
        let n = match read {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => n,
            // A TLS stream that ends without close_notify reads as an error
            // (UnexpectedEof): a possibly truncated upload.
            Ok(Err(error)) => {
                warn!(peer = %ctx.peer_ip, %error, received = total, "upload data connection failed");
                abort_upload(upload, batch.get(..filled).unwrap_or_default()).await;
                return TransferOutcome::ConnectionLost;
            }
            Err(_) => {
                warn!(peer = %ctx.peer_ip, received = total, "upload stalled");
                abort_upload(upload, batch.get(..filled).unwrap_or_default()).await;
                return TransferOutcome::ConnectionLost;
            }
        };
        total += n as u64;
        ctx.progress.store(total, Ordering::Relaxed);
        let mut pending: &[u8] = &[];
        if ascii {
            converted.clear();
            converter.convert(buf.get(..n).unwrap_or_default(), &mut converted);
            pending = &converted;
        } else {
            filled += n;
        }
        loop {
            // Move converted bytes into the batch; write it out when full.
            let room = UPLOAD_BATCH_BYTES - filled;
            let (now, later) = pending.split_at(pending.len().min(room));
            if let Some(dest) = batch.get_mut(filled..filled + now.len()) {
                dest.copy_from_slice(now);
                filled += now.len();
            }
            pending = later;
            if filled >= UPLOAD_BATCH_BYTES {
                if let Err(e) = upload.write_all(&batch).await {
                    upload.abort().await;
                    return TransferOutcome::StorageFailed(fs_error(&StorageError::from(e)));
                }
                filled = 0;
            }
            if pending.is_empty() {
                break;
            }
        }
        if !ascii && !tried_thread && total >= THREAD_AFTER_BYTES {
            // A bulk upload: the rest goes faster on a blocking thread.
            tried_thread = true;
            if let (Some(slot), Some(file)) = (crate::receive::Slot::take(), upload.os_file()) {
                if let Err(e) = upload.flush().await {
                    upload.abort().await;
                    return TransferOutcome::StorageFailed(fs_error(&StorageError::from(e)));
                }
                let handover = Handover {
                    slot,
                    file,
                    batch,
                    filled,
                    written: total - filled as u64,
                };
                return receive_on_thread(ctx, upload, data, handover).await;
            }
        }
    }
    batch.truncate(filled);
    if ascii {
        converter.finish(&mut batch);
    }
    if let Err(e) = upload.write_all(&batch).await {
        upload.abort().await;
        return TransferOutcome::StorageFailed(fs_error(&StorageError::from(e)));
    }
    if let Err(e) = upload.flush().await {
        upload.abort().await;
        return TransferOutcome::StorageFailed(fs_error(&StorageError::from(e)));
    }
    if let Err(e) = upload.commit().await {
        return TransferOutcome::StorageFailed(fs_error(&e));
    }
    // Answer the client's close_notify with ours (ftplib's unwrap() waits for it).
    let _ = finish(data, ctx.stall_timeout).await;
    TransferOutcome::Complete { bytes: total }
}

async fn send_listing(
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
                Some(Err(e)) => return TransferOutcome::StorageFailed(fs_error(&e)),
            }
            if out.len() >= TRANSFER_BUFFER_BYTES {
                if !write_chunk(ctx, &mut data, &out).await {
                    return interrupted(ctx);
                }
                total += out.len() as u64;
                ctx.progress.store(total, Ordering::Relaxed);
                out.clear();
            }
        },
    }
    if !write_chunk(ctx, &mut data, &out).await {
        return interrupted(ctx);
    }
    total += out.len() as u64;
    ctx.progress.store(total, Ordering::Relaxed);
    match finish(data, ctx.stall_timeout).await {
        Ok(()) => TransferOutcome::Complete { bytes: total },
        Err(_) => TransferOutcome::ConnectionLost,
    }
}

/// Why a write stopped: ABOR, or the connection.
fn interrupted(ctx: &TransferContext) -> TransferOutcome {
    if ctx.cancel.is_cancelled() {
        TransferOutcome::Aborted
    } else {
        TransferOutcome::ConnectionLost
    }
}

async fn write_chunk(ctx: &TransferContext, data: &mut DataStream, bytes: &[u8]) -> bool {
    tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => false,
        w = tokio::time::timeout(ctx.stall_timeout, data.write_all(bytes)) => matches!(w, Ok(Ok(()))),
    }
}
