//! The control connection's byte stream, which changes shape during a
//! session: plaintext TCP, TLS after AUTH (or from the first byte on an
//! implicit listener), and plaintext again after CCC or REIN (RFC 4217 §5, §13).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A control connection in one of its states.
#[derive(Debug)]
pub enum ControlStream {
    /// Plain TCP (before AUTH, after CCC/REIN).
    Plain(TcpStream),
    /// TLS-protected.
    Tls(Box<TlsStream<TcpStream>>),
    /// Taken out during an upgrade or downgrade; any I/O fails.
    Detached,
}

impl ControlStream {
    /// Take the stream out, leaving [`ControlStream::Detached`].
    pub fn detach(&mut self) -> ControlStream {
        std::mem::replace(self, ControlStream::Detached)
    }

    /// The TLS connection, when protected.
    pub fn tls(&self) -> Option<&rustls::ServerConnection> {
        match self {
            ControlStream::Tls(tls) => Some(tls.get_ref().1),
            _ => None,
        }
    }
}

fn detached() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "control stream detached")
}

impl AsyncRead for ControlStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControlStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ControlStream::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl AsyncWrite for ControlStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ControlStream::Plain(s) => Pin::new(s).poll_write(cx, data),
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
            ControlStream::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControlStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ControlStream::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControlStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ControlStream::Detached => Poll::Ready(Ok(())),
        }
    }
}

/// A data connection: plain TCP (PROT C) or TLS (PROT P); the same shape as
/// the control connection's stream (never `Detached`).
pub type DataStream = ControlStream;
