//! The data connection of one transfer: getting it, protecting it, closing
//! it (RFC 959 §3.2-3.3, RFC 2428, RFC 4217 §7, §10.2, §15.1.2).
//!
//! Passive connections come from the passive port, which accepts only the
//! control connection's peer address (RFC 2577 §8, port stealing); active
//! ones leave from the control connection's local address. The TLS
//! handshake runs with the FTP client as the TLS client (RFC 4217 §7) and,
//! when the policy says so, must resume this control connection's session
//! (§10.2); the client certificate must be the control connection's
//! (§15.1.2). A finished connection closes with TLS close_notify and TCP FIN
//! and waits for the client's close in the background.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::session::{DataEndpoint, ReuseRefusal, TransferOutcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::warn;

use super::context::TransferContext;
use crate::passive::Arrival;
use crate::stream::DataStream;

/// How a finished data connection waits for the client's close before it is dropped.
const LINGER_AFTER_CLOSE: Duration = Duration::from_secs(5);
/// How long an upload command waits for the client's TLS Finished on a data
/// connection whose handshake started early (see [`early_upload_tickets`]).
pub(super) const EARLY_FINISHED_WAIT: Duration = Duration::from_millis(200);

/// TLS details for the transfer's log line.
#[derive(Default)]
pub(super) struct TlsInfo {
    pub(super) version: String,
    pub(super) cipher: String,
    pub(super) resumed: bool,
}

/// Take the passive connection (accepted only from the control peer's
/// address, see [`crate::passive`]) or connect (active).
pub(super) async fn connect_data(
    ctx: &mut TransferContext,
    endpoint: DataEndpoint,
) -> Option<Arrival> {
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
/// the kernel's reset on close discards the tail of the upload. So when the
/// client's handshake is complete on its side when the upload command
/// arrives (its Finished is here, or arrives within
/// [`EARLY_FINISHED_WAIT`]), the handshake completes now and the tickets are
/// written before the 150 reply: they wait in the client's socket before it
/// sends a byte of the file. Otherwise (the client finishes its handshake
/// only after the 150, like ftplib, lftp and PHP) the tickets are held back
/// until the upload is complete (see [`handshake`]).
pub(super) async fn early_upload_tickets(ctx: &TransferContext, arrival: Arrival) -> Arrival {
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
///
/// An upload's TLS 1.3 session tickets are not sent now but returned, to be
/// written once the client has closed its side (its close_notify) and every
/// byte of the upload has arrived: a client that closes its upload
/// connection with a ticket unread (curl, lftp) makes its kernel answer
/// with a reset, which would destroy the end of the upload still in flight,
/// while a client that reads to the server's close_notify (PHP's ftp
/// extension, ftplib's `unwrap`) gets fresh tickets for its next transfer.
pub(super) async fn handshake(
    ctx: &TransferContext,
    tcp: TcpStream,
    early: Option<(Box<rustls::ServerConnection>, crate::tls::DataTls)>,
    direction: crate::tls::Direction,
    require_reuse: bool,
    info: &mut TlsInfo,
) -> Result<(tokio_rustls::server::TlsStream<TcpStream>, Vec<u8>), TransferOutcome> {
    // Read the client's records here rather than inside tokio-rustls' accept,
    // so that each piece of its flight is acknowledged at once (see
    // `passive::feed_once`); the accept then only sends the tickets.
    let deadline = tokio::time::Instant::now() + ctx.handshake_timeout;
    let mut tcp = tcp;
    let (mut conn, data_tls) = match early {
        Some((conn, data_tls)) => (conn, data_tls),
        None => {
            let started =
                tokio::time::timeout_at(deadline, crate::passive::start_tls(&mut tcp, &ctx.tls))
                    .await;
            (handshake_step(ctx, started)?, ctx.tls.clone())
        }
    };
    finish_handshake(ctx, deadline, &mut tcp, &mut conn).await?;
    let mut held = Vec::new();
    if direction == crate::tls::Direction::Receive {
        while conn.wants_write() {
            if conn.write_tls(&mut held).is_err() {
                break;
            }
        }
    }
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
        let reason = data_tls.refusal();
        warn!(peer = %ctx.peer_ip, reason = reason.key(), "data connection did not resume the control connection's TLS session: refused");
        return Err(TransferOutcome::SessionReuseRequired(reason));
    }
    let data_cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    if data_cert != ctx.control_cert.as_ref() {
        let reason = ReuseRefusal::CertificateMismatch;
        warn!(peer = %ctx.peer_ip, reason = reason.key(), "data connection's client certificate differs from the control connection's: refused");
        return Err(TransferOutcome::SessionReuseRequired(reason));
    }
    data_tls.accept();
    if direction == crate::tls::Direction::Receive {
        // The client's Finished waits for its ACK, and an upload gets no
        // session tickets to carry one: a client whose socket holds back
        // small writes (Nagle; Python's ftplib) would send the file only
        // when the kernel's delayed ACK fires, ~40 ms later. Acknowledge now.
        let _ = socket2::SockRef::from(tls.get_ref().0).set_tcp_quickack(true);
    }
    Ok((tls, held))
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
pub(super) async fn finish(mut data: DataStream, stall: Duration) -> std::io::Result<()> {
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
