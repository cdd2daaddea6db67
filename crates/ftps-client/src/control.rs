//! The client's control connection: plaintext or TLS, commands out, complete
//! replies in (RFC 959 §4.2 multi-line replies through the protocol crate's
//! incremental parser), every read bounded by a timeout, the dialogue logged
//! with the password masked.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ftps_proto::reply::{Reply, ReplyParser};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tracing::debug;

use crate::Error;

/// A TCP stream, plain or TLS (the FTP client is always the TLS client, RFC 4217 §7).
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS.
    Tls(Box<TlsStream<TcpStream>>),
    /// Taken out during an upgrade.
    Detached,
}

impl Stream {
    /// Run the TLS client handshake over a plain stream.
    pub async fn connect_tls(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        limit: Duration,
    ) -> Result<TlsStream<TcpStream>, Error> {
        let connector = tokio_rustls::TlsConnector::from(config);
        match tokio::time::timeout(limit, connector.connect(name, tcp)).await {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(tls_error(e)),
            Err(_) => Err(Error::Timeout("in the TLS handshake")),
        }
    }

    /// The TLS connection, when protected.
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match self {
            Stream::Tls(tls) => Some(tls.get_ref().1),
            _ => None,
        }
    }
}

/// Turn an I/O error from tokio-rustls into the TLS error inside it, if any.
pub fn tls_error(e: io::Error) -> Error {
    let is_tls = e
        .get_ref()
        .map(|inner| inner.is::<rustls::Error>())
        .unwrap_or(false);
    if is_tls {
        if let Some(inner) = e.into_inner() {
            if let Ok(tls) = inner.downcast::<rustls::Error>() {
                return Error::Tls(*tls);
            }
        }
        return Error::Protocol("TLS failure".into());
    }
    Error::Io(e)
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Detached => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, b),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, b),
            Stream::Detached => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Detached => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Detached => Poll::Ready(Ok(())),
        }
    }
}

/// The control connection.
#[derive(Debug)]
pub struct Control {
    /// The stream (plain or TLS).
    pub stream: Stream,
    parser: ReplyParser,
    reply_timeout: Duration,
    last_reply_time: Duration,
}

impl Control {
    /// Wrap a connected stream.
    pub fn new(stream: Stream, reply_timeout: Duration) -> Control {
        Control {
            stream,
            parser: ReplyParser::new(),
            reply_timeout,
            last_reply_time: Duration::ZERO,
        }
    }

    /// Bytes received but not yet parsed (must be none when upgrading to TLS).
    pub fn buffered(&self) -> usize {
        self.parser.buffered_len()
    }

    /// Send one command line (CRLF appended).
    pub async fn send(&mut self, line: &[u8]) -> Result<(), Error> {
        if line.contains(&b'\r') || line.contains(&b'\n') {
            return Err(Error::InvalidArgument(
                "a command must not contain CR or LF".into(),
            ));
        }
        debug!(target: "ftps::dialogue", "> {}", masked(line));
        let mut out = Vec::with_capacity(line.len() + 2);
        // RFC 854: a 0xFF byte is sent as IAC IAC.
        for &b in line {
            out.push(b);
            if b == 0xFF {
                out.push(0xFF);
            }
        }
        out.extend_from_slice(b"\r\n");
        let write = async {
            self.stream.write_all(&out).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.reply_timeout, write).await {
            Ok(r) => r.map_err(Error::Io),
            Err(_) => Err(Error::Timeout("sending a command")),
        }
    }

    /// Read one complete reply.
    pub async fn read_reply(&mut self) -> Result<Reply, Error> {
        let limit = self.reply_timeout;
        match tokio::time::timeout(limit, self.read_reply_inner()).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout("waiting for a reply")),
        }
    }

    async fn read_reply_inner(&mut self) -> Result<Reply, Error> {
        let mut buf = [0u8; 4096];
        loop {
            match self.parser.next_reply() {
                Ok(Some(reply)) => {
                    debug!(target: "ftps::dialogue", "< {} {}", reply.code, reply.text());
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(Error::Protocol(format!("bad reply: {e:?}"))),
            }
            let n = self.stream.read(&mut buf).await.map_err(tls_error)?;
            if n == 0 {
                return Err(Error::ConnectionClosed);
            }
            self.parser.push(buf.get(..n).unwrap_or_default());
        }
    }

    /// Send a command and read its reply.
    pub async fn command(&mut self, line: &[u8]) -> Result<Reply, Error> {
        let sent = tokio::time::Instant::now();
        self.send(line).await?;
        let reply = self.read_reply().await;
        self.last_reply_time = sent.elapsed();
        reply
    }

    /// How long the last [`Control::command`] waited for its reply (a
    /// measure of the round trip to the server).
    pub fn last_reply_time(&self) -> Duration {
        self.last_reply_time
    }
}

fn masked(line: &[u8]) -> String {
    if line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"PASS ") {
        "PASS ****".into()
    } else {
        String::from_utf8_lossy(line).into_owned()
    }
}
