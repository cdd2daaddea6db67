//! A control connection under the checker's full control (RFC 959 §4,
//! RFC 4217 §4): commands sent byte for byte — pipelined or overlong if a
//! check wants — complete replies read with the protocol crate's parser
//! (RFC 959 §4.2 multi-line replies), TLS started with whatever
//! configuration the check chooses, and every step recorded as evidence.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::reply::{Reply, ReplyParser};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::tls::TlsInfo;
use super::{from_io, ProbeError};
use crate::evidence::{masked_command, Kind, Recorder};

/// The stream under a control connection.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
    /// Lost (a failed upgrade).
    Gone,
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ProbeError> {
        match self {
            Stream::Plain(s) => s.read(buf).await.map_err(from_io),
            Stream::Tls(s) => s.read(buf).await.map_err(from_io),
            Stream::Gone => Err(ProbeError::Closed),
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), ProbeError> {
        async fn go<S: AsyncWrite + AsyncRead + Unpin>(
            s: &mut S,
            bytes: &[u8],
        ) -> std::io::Result<()> {
            s.write_all(bytes).await?;
            s.flush().await
        }
        match self {
            Stream::Plain(s) => go(s, bytes).await.map_err(from_io),
            Stream::Tls(s) => go(s.as_mut(), bytes).await.map_err(from_io),
            Stream::Gone => Err(ProbeError::Closed),
        }
    }
}

/// One control connection.
#[derive(Debug)]
pub struct Conn {
    /// Its name in the evidence (`c1`, `c2`, …).
    pub label: String,
    stream: Stream,
    parser: ReplyParser,
    rec: Recorder,
    limit: Duration,
    /// The server's address.
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
}

impl Conn {
    /// Connect (plain TCP) and record it.
    pub async fn connect(
        addr: SocketAddr,
        label: String,
        rec: Recorder,
        limit: Duration,
    ) -> Result<Conn, ProbeError> {
        let tcp = match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                rec.push(&label, Kind::Note, format!("connect to {addr}: {e}"));
                return Err(ProbeError::Io(e));
            }
            Err(_) => {
                rec.push(&label, Kind::Note, format!("connect to {addr}: timed out"));
                return Err(ProbeError::Timeout("connecting"));
            }
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr()?;
        rec.push(&label, Kind::Note, format!("connected to {addr}"));
        Ok(Conn {
            label,
            stream: Stream::Plain(tcp),
            parser: ReplyParser::new(),
            rec,
            limit,
            peer: addr,
            local,
        })
    }

    /// The evidence recorder of this connection.
    pub fn recorder(&self) -> &Recorder {
        &self.rec
    }

    /// Record a note on this connection.
    pub fn note(&self, text: impl AsRef<str>) {
        self.rec.push(&self.label, Kind::Note, text);
    }

    /// Whether the control connection runs TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// The TLS connection, when protected.
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match &self.stream {
            Stream::Tls(s) => Some(s.get_ref().1),
            _ => None,
        }
    }

    /// Reply bytes received but not yet parsed.
    pub fn buffered(&self) -> usize {
        self.parser.buffered_len()
    }

    /// Run the TLS handshake (the FTP client is the TLS client, RFC 4217
    /// §4) and record what it showed.
    pub async fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<TlsInfo, ProbeError> {
        let tcp = match std::mem::replace(&mut self.stream, Stream::Gone) {
            Stream::Plain(tcp) => tcp,
            other => {
                self.stream = other;
                return Err(ProbeError::Local("TLS is already running".into()));
            }
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        match tokio::time::timeout(self.limit, connector.connect(name, tcp)).await {
            Ok(Ok(tls)) => {
                let info = TlsInfo::of(tls.get_ref().1);
                self.rec.push(&self.label, Kind::Tls, info.describe());
                self.stream = Stream::Tls(Box::new(tls));
                Ok(info)
            }
            Ok(Err(e)) => {
                let e = from_io(e);
                self.rec
                    .push(&self.label, Kind::Tls, format!("handshake failed: {e}"));
                Err(e)
            }
            Err(_) => {
                self.rec.push(&self.label, Kind::Tls, "handshake timed out");
                Err(ProbeError::Timeout("in the TLS handshake"))
            }
        }
    }

    /// Send one command line (CRLF appended), recorded with PASS masked.
    pub async fn send(&mut self, line: &str) -> Result<(), ProbeError> {
        self.rec.push(&self.label, Kind::Sent, masked_command(line));
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.write(&bytes).await
    }

    /// Send raw bytes, recorded as `shown`.
    pub async fn send_raw(&mut self, bytes: &[u8], shown: &str) -> Result<(), ProbeError> {
        self.rec.push(&self.label, Kind::Sent, shown);
        self.write(bytes).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ProbeError> {
        match tokio::time::timeout(self.limit, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.note(format!("sending failed: {e}"));
                Err(e)
            }
            Err(_) => Err(ProbeError::Timeout("sending")),
        }
    }

    /// Read one complete reply (within the reply limit).
    pub async fn reply(&mut self) -> Result<Reply, ProbeError> {
        match self.reply_within(self.limit).await? {
            Some(reply) => Ok(reply),
            None => {
                self.note(format!("no reply within {} s", self.limit.as_secs()));
                Err(ProbeError::Timeout("waiting for a reply"))
            }
        }
    }

    /// A complete reply if one arrives within `wait`; `None` otherwise.
    /// A closed connection is an error ([`ProbeError::Closed`]).
    pub async fn reply_within(&mut self, wait: Duration) -> Result<Option<Reply>, ProbeError> {
        let result = tokio::time::timeout(wait, self.next_reply()).await;
        match result {
            Ok(Ok(reply)) => {
                self.record_reply(&reply);
                Ok(Some(reply))
            }
            Ok(Err(e)) => {
                if e.is_closed() {
                    self.note("the server closed the connection");
                } else {
                    self.note(format!("reading a reply: {e}"));
                }
                Err(e)
            }
            Err(_) => Ok(None),
        }
    }

    fn record_reply(&self, reply: &Reply) {
        let n = reply.lines.len();
        for (i, line) in reply.lines.iter().enumerate() {
            let text = String::from_utf8_lossy(line);
            let shown = if n == 1 {
                format!("{} {text}", reply.code)
            } else if i == 0 {
                format!("{}-{text}", reply.code)
            } else if i + 1 == n {
                format!("{} {text}", reply.code)
            } else {
                text.into_owned()
            };
            self.rec.push(&self.label, Kind::Received, shown);
        }
    }

    async fn next_reply(&mut self) -> Result<Reply, ProbeError> {
        let mut buf = [0u8; 8192];
        loop {
            match self.parser.next_reply() {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(e) => return Err(ProbeError::BadReply(format!("{e:?}"))),
            }
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                return Err(ProbeError::Closed);
            }
            self.parser.push(buf.get(..n).unwrap_or_default());
        }
    }

    /// Send a command and read its reply.
    pub async fn cmd(&mut self, line: &str) -> Result<Reply, ProbeError> {
        self.send(line).await?;
        self.reply().await
    }

    /// Send a command and require a reply of the class `2xx`.
    pub async fn cmd_ok(&mut self, line: &str) -> Result<Reply, ProbeError> {
        let reply = self.cmd(line).await?;
        if reply.is_completion() {
            Ok(reply)
        } else {
            Err(refused(line, &reply))
        }
    }

    /// Whether the server closes the connection within `wait` (reading and
    /// discarding what it sends meanwhile; replies are recorded).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.reply_within(left).await {
                Ok(Some(_)) => continue,
                Ok(None) => return false,
                Err(_) => return true,
            }
        }
    }

    /// End TLS the way CCC and REIN do (RFC 4217 §5, §13): wait up to
    /// `wait` for the server's close_notify, answer with ours, and go on in
    /// plaintext on the same TCP connection. A timeout keeps TLS running.
    pub async fn clear_tls(&mut self, wait: Duration) -> Result<(), ProbeError> {
        let Stream::Tls(mut tls) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(ProbeError::Local("no TLS to clear".into()));
        };
        // The server's close_notify reads as end of stream.
        let mut buf = [0u8; 512];
        match tokio::time::timeout(wait, tls.read(&mut buf)).await {
            Ok(Ok(0)) => {
                self.rec
                    .push(&self.label, Kind::Tls, "server sent close_notify");
            }
            Ok(Ok(n)) => {
                self.parser.push(buf.get(..n).unwrap_or_default());
                self.stream = Stream::Tls(tls);
                self.rec.push(
                    &self.label,
                    Kind::Tls,
                    format!("{n} more bytes over TLS instead of close_notify"),
                );
                return Err(ProbeError::Local("no close_notify".into()));
            }
            Ok(Err(e)) => return Err(from_io(e)),
            Err(_) => {
                self.stream = Stream::Tls(tls);
                self.rec
                    .push(&self.label, Kind::Tls, "no close_notify: TLS goes on");
                return Err(ProbeError::Timeout("waiting for close_notify"));
            }
        }
        let (mut tcp, mut conn) = tls.into_inner();
        conn.send_close_notify();
        let mut out = Vec::new();
        while conn.wants_write() {
            if conn.write_tls(&mut out).is_err() {
                break;
            }
        }
        tcp.write_all(&out).await?;
        self.rec.push(
            &self.label,
            Kind::Tls,
            "sent close_notify; plaintext from here",
        );
        self.stream = Stream::Plain(tcp);
        Ok(())
    }

    /// The plain TCP stream, when TLS has not started (for raw TLS probes).
    pub fn into_plain(self) -> Option<TcpStream> {
        match self.stream {
            Stream::Plain(tcp) => Some(tcp),
            _ => None,
        }
    }

    /// Send QUIT and close, ignoring what happens (the check is over).
    pub async fn quit(mut self) {
        if self.send("QUIT").await.is_ok() {
            let _ = self.reply_within(Duration::from_secs(2)).await;
        }
        if let Stream::Tls(mut tls) = std::mem::replace(&mut self.stream, Stream::Gone) {
            let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
        }
    }
}

/// The error for a refused command.
pub fn refused(command: &str, reply: &Reply) -> ProbeError {
    ProbeError::Refused {
        command: masked_command(command),
        code: reply.code,
        text: reply.text().replace('\n', " "),
    }
}

/// `CODE text` of a reply on one line.
pub fn line_of(reply: &Reply) -> String {
    format!("{} {}", reply.code, reply.text().replace('\n', " | "))
}
