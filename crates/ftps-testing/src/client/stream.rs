//! The control stream of the test client: [`Control`], plain TCP or TLS
//! (or detached while it changes shape), and the changes between the two:
//! [`Client::auth_tls`] / [`Client::auth`] / [`Client::start_tls`] (the
//! client handshake after `AUTH`), [`Client::clear_tls`] /
//! [`Client::clear_tls_then`] (back to plaintext after `CCC` or `REIN`,
//! RFC 4217 §5, §13).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::{tls_connect, Client, TlsData, REPLY_TIMEOUT};

/// The control connection in one of its shapes.
pub enum Control {
    /// Plain TCP: before AUTH, after CCC or REIN.
    Plain(TcpStream),
    /// TLS-protected.
    Tls(Box<TlsData>),
    /// Taken out while changing shape.
    Detached,
}

impl Control {
    fn detach(&mut self) -> Control {
        std::mem::replace(self, Control::Detached)
    }

    /// The TLS connection, when protected.
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match self {
            Control::Tls(tls) => Some(tls.get_ref().1),
            _ => None,
        }
    }
}

fn detached() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "control stream detached")
}

impl AsyncRead for Control {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Control::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Control::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Control::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl AsyncWrite for Control {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Control::Plain(s) => Pin::new(s).poll_write(cx, data),
            Control::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
            Control::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Control::Plain(s) => Pin::new(s).poll_flush(cx),
            Control::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Control::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Control::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Control::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Control::Detached => Poll::Ready(Ok(())),
        }
    }
}

impl Client {
    /// AUTH TLS (234) and the client handshake.
    pub async fn auth_tls(&mut self, config: &Arc<ClientConfig>) {
        self.auth("TLS", config).await;
    }

    /// `AUTH <mechanism>` (234) and the client handshake.
    pub async fn auth(&mut self, mechanism: &str, config: &Arc<ClientConfig>) {
        self.expect(&format!("AUTH {mechanism}"), 234).await;
        if let Err(e) = self.start_tls(config).await {
            panic!("TLS handshake after AUTH failed: {e}\n{}", self.dialogue());
        }
    }

    /// The client handshake on the (plain) control connection.
    pub async fn start_tls(&mut self, config: &Arc<ClientConfig>) -> io::Result<()> {
        assert_eq!(
            self.parser.buffered_len(),
            0,
            "plaintext bytes left before the TLS handshake\n{}",
            self.dialogue()
        );
        let Control::Plain(tcp) = self.stream.detach() else {
            panic!("start_tls on a stream that is not plain TCP");
        };
        let tls = tls_connect(tcp, config).await?;
        self.log.push(format!(
            "--- TLS established ({:?})",
            tls.get_ref().1.protocol_version()
        ));
        self.stream = Control::Tls(Box::new(tls));
        self.tls_config = Some(Arc::clone(config));
        Ok(())
    }

    /// After a 200 to CCC or a 220 to REIN: wait for the server's
    /// close_notify, send ours, and go on in plaintext on the same TCP
    /// connection (RFC 4217 §5, §13).
    pub async fn clear_tls(&mut self) {
        self.clear_tls_then(b"").await;
    }

    /// Like [`clear_tls`](Self::clear_tls), but `pipelined` plaintext bytes
    /// (e.g. the next command) go out in the same write as our close_notify,
    /// as a client that does not wait between the two would send them.
    pub async fn clear_tls_then(&mut self, pipelined: &[u8]) {
        let Control::Tls(mut tls) = self.stream.detach() else {
            panic!("clear_tls on a stream that is not TLS\n{}", self.dialogue());
        };
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(REPLY_TIMEOUT, tls.read(&mut buf)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => {
                    self.log.push(format!(
                        "S< (unexpected protected bytes before close_notify: {:?})",
                        String::from_utf8_lossy(&buf[..n])
                    ));
                    self.parser.push(&buf[..n]);
                }
                Ok(Err(e)) => panic!(
                    "waiting for the server's close_notify: {e}\n{}",
                    self.dialogue()
                ),
                Err(_) => panic!(
                    "no close_notify from the server within {REPLY_TIMEOUT:?}\n{}",
                    self.dialogue()
                ),
            }
        }
        self.log.push("--- server close_notify received".into());
        let (mut tcp, mut conn) = tls.into_inner();
        conn.send_close_notify();
        let mut bytes = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut bytes).unwrap();
        }
        bytes.extend_from_slice(pipelined);
        tokio::time::timeout(REPLY_TIMEOUT, tcp.write_all(&bytes))
            .await
            .unwrap()
            .unwrap();
        self.stream = Control::Plain(tcp);
        if pipelined.is_empty() {
            self.log
                .push("--- client close_notify sent; control now plaintext".into());
        } else {
            self.log.push(format!(
                "--- client close_notify sent; control now plaintext; in the same write: C> {}",
                String::from_utf8_lossy(pipelined).escape_debug()
            ));
        }
    }
}
