//! Data connections (RFC 959 §3.2, RFC 2428, RFC 4217 §7, §10.2): EPSV with a
//! fall-back to PASV, a private PASV address replaced by the control
//! connection's, active mode with EPRT (falling back to PORT), and the
//! download stream that checks a transfer's end. The TLS handshake on the
//! data connection — the FTP client as the TLS client in both directions,
//! resuming the control connection's session — is started by
//! `client/data_start.rs` when the server needs it.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use ftps_proto::address;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::control::Stream;
use crate::{Client, DataMode, Error};

/// A data connection being set up: connected (passive) or listening (active).
#[derive(Debug)]
pub enum PendingData {
    /// Passive: already connected to the server.
    Connected(TcpStream),
    /// Active: waiting for the server to connect.
    Listening(TcpListener),
}

/// Is this an address nobody outside the server's network can reach?
fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    }
}

/// The address to connect to for a PASV reply: a private or unspecified
/// address announced by a server reached at a public one is replaced by the
/// control connection's address.
pub fn pasv_target(announced: SocketAddr, control_peer: IpAddr) -> SocketAddr {
    let ip = announced.ip();
    let unreachable = ip != control_peer && is_private(ip) && !is_private(control_peer);
    if unreachable || ip.is_unspecified() {
        SocketAddr::new(control_peer, announced.port())
    } else {
        announced
    }
}

impl Client {
    /// Set up the data connection for the next transfer command.
    pub(crate) async fn open_data(&mut self) -> Result<PendingData, Error> {
        match self.options.data_mode {
            DataMode::Passive => self.open_passive().await,
            DataMode::Active => self.open_active().await,
        }
    }

    async fn open_passive(&mut self) -> Result<PendingData, Error> {
        let peer = self.peer.ip();
        let mut target = None;
        if !self.epsv_refused {
            let reply = self.control.command(b"EPSV").await?;
            if reply.code == 229 {
                let port = address::parse_epsv_reply_text(&reply.text())
                    .map_err(|e| Error::Protocol(format!("bad EPSV reply: {e:?}")))?;
                target = Some(SocketAddr::new(peer, port));
            } else if reply.code >= 500 {
                self.epsv_refused = true;
            } else {
                return Err(self.unexpected("EPSV", "229", reply));
            }
        }
        let target = match target {
            Some(t) => t,
            None => {
                let reply = self.control.command(b"PASV").await?;
                if reply.code != 227 {
                    return Err(self.unexpected("PASV", "227", reply));
                }
                let announced = address::parse_pasv_reply_text(&reply.text())
                    .map_err(|e| Error::Protocol(format!("bad PASV reply: {e:?}")))?;
                pasv_target(SocketAddr::V4(announced), peer)
            }
        };
        let connect = TcpStream::connect(target);
        match tokio::time::timeout(self.options.connect_timeout, connect).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                Ok(PendingData::Connected(tcp))
            }
            Ok(Err(e)) => Err(Error::Io(e)),
            Err(_) => Err(Error::Timeout("connecting the data connection")),
        }
    }

    async fn open_active(&mut self) -> Result<PendingData, Error> {
        let ip = self.local.ip().to_canonical();
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = listener.local_addr()?;
        if !self.eprt_refused {
            let line = format!("EPRT {}", address::format_eprt_arg(addr));
            let reply = self.control.command(line.as_bytes()).await?;
            if reply.is_completion() {
                return Ok(PendingData::Listening(listener));
            }
            if reply.code != 500 && reply.code != 502 {
                return Err(self.unexpected("EPRT", "200", reply));
            }
            self.eprt_refused = true;
        }
        let SocketAddr::V4(v4) = addr else {
            return Err(Error::Protocol(
                "the server refuses EPRT and PORT cannot carry IPv6".into(),
            ));
        };
        let line = format!("PORT {}", address::format_port_arg(v4));
        let reply = self.control.command(line.as_bytes()).await?;
        if !reply.is_completion() {
            return Err(self.unexpected("PORT", "200", reply));
        }
        Ok(PendingData::Listening(listener))
    }
}

/// A download in progress: read it like a file, then call
/// [`RetrStream::finish`], which checks the clean TLS close and the 226.
pub struct RetrStream<'a> {
    pub(crate) client: &'a mut Client,
    pub(crate) data: Stream,
    pub(crate) received: u64,
    pub(crate) expected: Option<u64>,
    /// After REST: the announced size minus the offset, also accepted.
    pub(crate) expected_alternative: Option<u64>,
    pub(crate) eof: bool,
    /// Fires when the data connection moves nothing for the idle limit.
    pub(crate) idle: Pin<Box<tokio::time::Sleep>>,
    pub(crate) idle_limit: std::time::Duration,
}

impl std::fmt::Debug for RetrStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrStream")
            .field("received", &self.received)
            .field("expected", &self.expected)
            .finish()
    }
}

impl RetrStream<'_> {
    /// Bytes read so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The size announced by the server, when known.
    pub fn expected(&self) -> Option<u64> {
        self.expected
    }

    /// Read the final reply. Fails when the data ended without TLS
    /// close_notify or short of the announced size (truncation).
    pub async fn finish(mut self) -> Result<u64, Error> {
        if !self.eof {
            // Drain what is left so the server can finish.
            let mut sink = vec![0u8; 64 * 1024];
            loop {
                use tokio::io::AsyncReadExt;
                match self.data.read(&mut sink).await {
                    Ok(0) => break,
                    Ok(n) => self.received += n as u64,
                    Err(_) => {
                        return Err(Error::Truncated {
                            received: self.received,
                            expected: self.expected,
                        })
                    }
                }
            }
        }
        drop(std::mem::replace(&mut self.data, Stream::Detached));
        let reply = self.client.control.read_reply().await?;
        if !matches!(reply.code, 226 | 250) {
            return Err(self.client.unexpected("RETR", "226", reply));
        }
        if let Some(expected) = self.expected {
            if self.received != expected && Some(self.received) != self.expected_alternative {
                return Err(Error::Truncated {
                    received: self.received,
                    expected: Some(expected),
                });
            }
        }
        Ok(self.received)
    }
}

impl AsyncRead for RetrStream<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.data).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n == 0 {
                    this.eof = true;
                }
                this.received += n as u64;
                let next = tokio::time::Instant::now() + this.idle_limit;
                this.idle.as_mut().reset(next);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the data connection moved nothing for too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
            // rustls reports a TCP close without close_notify as UnexpectedEof:
            // a possibly truncated download.
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_pasv_address_of_a_public_server_is_replaced() {
        let announced: SocketAddr = "10.0.0.5:5000".parse().unwrap_or_else(|_| unreachable!());
        let public: IpAddr = "203.0.113.7".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(
            pasv_target(announced, public),
            SocketAddr::new(public, 5000)
        );
        let private_peer: IpAddr = "10.0.0.9".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(pasv_target(announced, private_peer), announced);
        let unspecified: SocketAddr = "0.0.0.0:7".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(pasv_target(unspecified, public), SocketAddr::new(public, 7));
    }
}
