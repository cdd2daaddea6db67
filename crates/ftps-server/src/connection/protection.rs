//! Protecting and unprotecting the control connection: the AUTH TLS
//! handshake (RFC 4217 §4, §10.1) — plaintext pipelined after AUTH is never
//! executed (STARTTLS command injection), a client that sends no TLS record
//! gets an unprotected 421, a failure mid-handshake drops the connection —
//! and CCC/REIN (§5, §13): close_notify, the client's awaited one record at
//! a time (bounded), then plaintext.

use std::sync::Arc;

use ftps_proto::session::TlsFailure;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use super::{client_certificate, control_handshake, now, Connection, Flow, CLEAR_TLS_WAIT};
use crate::stream::ControlStream;

impl Connection {
    /// AUTH accepted: the TLS handshake (RFC 4217 §4, §10.1).
    pub(super) async fn upgrade_tls(&mut self) -> Flow {
        if self.reader.buffered_len() > 0 {
            // Bytes sent in plaintext after AUTH must never become commands.
            warn!(peer = %self.peer, "plaintext pipelined after AUTH (STARTTLS injection): closing");
            return Flow::Close;
        }
        let ControlStream::Plain(tcp) = self.stream.detach() else {
            return Flow::Close;
        };
        let limit = self.live.config.server.tls_handshake_timeout();
        let mut first = [0u8; 1];
        match tokio::time::timeout(limit, tcp.peek(&mut first)).await {
            Ok(Ok(1)) if first[0] == 0x16 => {}
            Ok(Ok(1)) => {
                // Not a TLS record at all: nothing was negotiated, the
                // connection is still plaintext: unprotected 421.
                warn!(peer = %self.peer, "client did not start TLS after AUTH");
                self.stream = ControlStream::Plain(tcp);
                self.session.handle_tls_failed(TlsFailure::Complete);
                return Flow::Continue;
            }
            _ => return Flow::Close,
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&self.tls.control));
        match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                let (version, cipher, _) = crate::tls::describe(tls.get_ref().1);
                debug!(peer = %self.peer, %version, %cipher, "AUTH TLS established");
                control_handshake(&self.shared, tls.get_ref().1);
                self.stream = ControlStream::Tls(Box::new(tls));
                self.client_cert = self.stream.tls().and_then(client_certificate);
                self.session
                    .set_client_certificate(self.client_cert.is_some());
                self.session.handle_tls_established(now());
            }
            Ok(Err(error)) => {
                warn!(peer = %self.peer, %error, "TLS handshake failed on the control connection");
                self.session.handle_tls_failed(TlsFailure::MidHandshake);
            }
            Err(_) => {
                warn!(peer = %self.peer, "TLS handshake timed out on the control connection");
                self.session.handle_tls_failed(TlsFailure::MidHandshake);
            }
        }
        Flow::Continue
    }

    /// CCC or REIN: close_notify, wait (bounded) for the client's, go on in plaintext.
    pub(super) async fn clear_tls(&mut self) -> Flow {
        let ControlStream::Tls(mut tls) = self.stream.detach() else {
            return Flow::Close;
        };
        tls.get_mut().1.send_close_notify();
        if !matches!(
            tokio::time::timeout(CLEAR_TLS_WAIT, tls.flush()).await,
            Ok(Ok(()))
        ) {
            return Flow::Close;
        }
        let (mut tcp, mut conn) = tls.into_inner();
        // Read the client's close_notify one TLS record at a time, straight
        // from the socket: the plaintext command that may follow it at once
        // must stay in the socket, not vanish into the TLS buffer.
        let _ = tokio::time::timeout(CLEAR_TLS_WAIT, await_close_notify(&mut tcp, &mut conn)).await;
        self.stream = ControlStream::Plain(tcp);
        info!(peer = %self.peer, "control connection cleared, continuing in plaintext");
        Flow::Continue
    }
}

/// Largest TLS record (2^14 plus expansion, RFC 8446 §5.2).
const MAX_TLS_RECORD_BYTES: usize = 16_384 + 256;

/// Feed the peer's TLS records to `conn`, one at a time, until its
/// close_notify has arrived (or anything goes wrong).
async fn await_close_notify(tcp: &mut TcpStream, conn: &mut rustls::ServerConnection) {
    for _ in 0..8 {
        // A client may skip its close_notify and go on in plaintext at once
        // (curl's default CCC mode): only consume what is a TLS record.
        let mut peek = [0u8; 2];
        match tcp.peek(&mut peek).await {
            Ok(2) if (0x14..=0x17).contains(&peek[0]) && peek[1] == 0x03 => {}
            _ => return,
        }
        let mut header = [0u8; 5];
        if tcp.read_exact(&mut header).await.is_err() {
            return;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len > MAX_TLS_RECORD_BYTES {
            return;
        }
        let mut record = header.to_vec();
        record.resize(5 + len, 0);
        if tcp.read_exact(&mut record[5..]).await.is_err() {
            return;
        }
        let mut cursor = std::io::Cursor::new(record);
        if conn.read_tls(&mut cursor).is_err() {
            return;
        }
        match conn.process_new_packets() {
            Ok(state) if state.peer_has_closed() => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}
