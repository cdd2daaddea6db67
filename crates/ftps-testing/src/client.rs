//! A raw FTPS test client for protocol-level tests.
//!
//! It speaks the control protocol byte for byte (RFC 959 §4, RFC 4217) with
//! no cleverness of its own: commands are sent exactly as given, every reply
//! is parsed with [`ftps_proto::reply::ReplyParser`] and every wait is bounded
//! by a timeout. The control stream can be plaintext or TLS and can change
//! between the two (AUTH TLS, CCC, REIN). The FTP client is always the TLS
//! client, also on data connections (RFC 4217 §7); data connections resume the
//! control connection's TLS session when they use the same
//! `Arc<ClientConfig>` (its in-memory session store is shared).
//!
//! Every command and reply is recorded so that a failed assertion can show
//! the whole dialogue.
//!
//! * [`Client`]: the control connection: [`Client::connect`] (explicit),
//!   [`Client::connect_implicit`], commands with or without a check of the
//!   reply code ([`Client::expect`], [`Client::cmd`], [`Client::send_raw`]),
//!   TLS on and off ([`Client::auth_tls`], [`Client::clear_tls`]) and
//!   transfers over passive PROT P data connections ([`Client::download`],
//!   [`Client::upload`], [`Client::retr`], [`Client::stor`]).
//! * Set-ups in one call: [`Client::open`] with a [`Setup`] (explicit or
//!   implicit FTPS, login, `PBSZ 0` + `PROT P` or `PROT C`, `TYPE I`),
//!   [`Client::session`] for a [`TestServer`], [`Client::secure`].
//! * Tables of command and expected reply code: [`Client::expect_replies`];
//!   a failing row names the command and the reply it got, and shows the
//!   dialogue.
//! * TLS client configurations ([`config_default`], [`config_tls12`],
//!   [`config_no_resumption`], ...), data-connection helpers
//!   ([`tcp_connect`], [`data_tls`], [`read_all`], [`write_all_and_close`])
//!   and [`within`], a deadline for a whole test.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ftps_proto::reply::{Reply, ReplyError, ReplyParser};
use rustls::client::Resumption;
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::TestServer;

/// Bound on reading one reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on connecting and on one TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on moving the bytes of one data transfer.
pub const DATA_TIMEOUT: Duration = Duration::from_secs(60);
/// The name the client checks the server certificate against.
pub const SERVER_NAME: &str = "localhost";

/// A TLS data (or control) stream, client side.
pub type TlsData = tokio_rustls::client::TlsStream<TcpStream>;

/// Run `f`, panicking if it takes longer than `secs` seconds.
pub async fn within<F: Future>(secs: u64, f: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(out) => out,
        Err(_) => panic!("test did not finish within {secs} s"),
    }
}

// ---------------------------------------------------------------------------
// TLS client configurations
// ---------------------------------------------------------------------------

fn roots(cert_pem: &Path) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

/// A client configuration trusting `cert_pem`, limited to `versions`, with
/// rustls' default in-memory session store or with resumption disabled.
pub fn tls_config(
    cert_pem: &Path,
    versions: &[&'static SupportedProtocolVersion],
    resumption: bool,
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots(cert_pem))
        .with_no_client_auth();
    if !resumption {
        config.resumption = Resumption::disabled();
    }
    Arc::new(config)
}

/// TLS 1.2 and 1.3, session resumption on (rustls' default store).
pub fn config_default(cert_pem: &Path) -> Arc<ClientConfig> {
    tls_config(
        cert_pem,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        true,
    )
}

/// TLS 1.2 and 1.3, session resumption disabled: every handshake is a full one.
pub fn config_no_resumption(cert_pem: &Path) -> Arc<ClientConfig> {
    tls_config(
        cert_pem,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        false,
    )
}

/// TLS 1.3 whose first key share is for a group the server does not offer
/// (pure ML-KEM-768, before X25519), and which never remembers the group the
/// server chose: every handshake, control and data, goes through a
/// HelloRetryRequest. Resumption on.
pub fn config_hello_retry(cert_pem: &Path) -> Arc<ClientConfig> {
    use rustls::crypto::aws_lc_rs::{default_provider, kx_group};
    let provider = rustls::crypto::CryptoProvider {
        kx_groups: vec![kx_group::MLKEM768, kx_group::X25519],
        ..default_provider()
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(cert_pem))
        .with_no_client_auth();
    config.resumption = Resumption::store(Arc::new(NoKxHint(
        rustls::client::ClientSessionMemoryCache::new(64),
    )));
    Arc::new(config)
}

/// A session store that forgets which key-exchange group a server chose.
#[derive(Debug)]
struct NoKxHint(rustls::client::ClientSessionMemoryCache);

impl rustls::client::ClientSessionStore for NoKxHint {
    fn set_kx_hint(&self, _: ServerName<'static>, _: rustls::NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }

    fn set_tls12_session(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.0.set_tls12_session(name, value);
    }

    fn tls12_session(
        &self,
        name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.0.tls12_session(name)
    }

    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.0.remove_tls12_session(name);
    }

    fn insert_tls13_ticket(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.0.insert_tls13_ticket(name, value);
    }

    fn take_tls13_ticket(
        &self,
        name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.0.take_tls13_ticket(name)
    }
}

/// TLS 1.2 only, resumption on.
pub fn config_tls12(cert_pem: &Path) -> Arc<ClientConfig> {
    tls_config(cert_pem, &[&rustls::version::TLS12], true)
}

/// TLS 1.3 only, resumption on.
pub fn config_tls13(cert_pem: &Path) -> Arc<ClientConfig> {
    tls_config(cert_pem, &[&rustls::version::TLS13], true)
}

fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).unwrap()
}

/// Client TLS handshake on an open TCP connection (control or data), bounded.
pub async fn tls_connect(tcp: TcpStream, config: &Arc<ClientConfig>) -> io::Result<TlsData> {
    let connector = TlsConnector::from(Arc::clone(config));
    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server_name(), tcp)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}

/// Client TLS handshake on a data connection with the given configuration
/// (share the control connection's `Arc` to resume its session).
pub async fn data_tls(tcp: TcpStream, config: &Arc<ClientConfig>) -> io::Result<TlsData> {
    tls_connect(tcp, config).await
}

/// TCP connect, bounded.
pub async fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .unwrap_or_else(|_| panic!("connect to {addr} timed out"))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    tcp.set_nodelay(true).unwrap();
    tcp
}

/// Read everything until the peer closes, bounded by [`DATA_TIMEOUT`].
pub async fn read_all<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(DATA_TIMEOUT, stream.read_to_end(&mut out)).await {
        Ok(Ok(_)) => Ok(out),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "data read timed out",
        )),
    }
}

/// Write everything and close cleanly (TLS close_notify, then TCP FIN), bounded.
pub async fn write_all_and_close<S: AsyncWrite + Unpin>(
    stream: &mut S,
    data: &[u8],
) -> io::Result<()> {
    let work = async {
        stream.write_all(data).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(DATA_TIMEOUT, work).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "data write timed out",
        )),
    }
}

// ---------------------------------------------------------------------------
// Session set-ups
// ---------------------------------------------------------------------------

/// How [`Client::open`] sets a session up: how TLS starts, then a table of
/// commands and expected replies ([`Setup::steps`]).
///
/// [`Setup::explicit`] and [`Setup::implicit`] are the usual secure session
/// (the test account logged in, `PBSZ 0`, `PROT P`); the other methods
/// change one step each:
///
/// ```ignore
/// let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
/// let mut c = Client::session(&server, Setup::implicit().no_prot()).await;
/// let mut c = Client::open(addr, &config, Setup::explicit().tls_only()).await;
/// ```
#[derive(Clone, Debug)]
pub struct Setup {
    implicit: bool,
    login: Option<(String, String)>,
    prot: Option<&'static str>,
    type_i: bool,
}

impl Setup {
    /// Explicit FTPS: the 220 greeting, `AUTH TLS` (234) and the handshake;
    /// then `USER` (331) and `PASS` (230) of the test account, `PBSZ 0`
    /// (200), `PROT P` (200).
    pub fn explicit() -> Setup {
        Setup {
            implicit: false,
            login: Some((crate::USER.to_string(), crate::PASSWORD.to_string())),
            prot: Some("P"),
            type_i: false,
        }
    }

    /// Implicit FTPS: the handshake first, the 220 greeting over TLS; then
    /// the same steps as [`Setup::explicit`].
    pub fn implicit() -> Setup {
        Setup {
            implicit: true,
            ..Setup::explicit()
        }
    }

    /// Stop once the control connection is protected: no login, no
    /// `PBSZ`/`PROT`, no `TYPE`.
    pub fn tls_only(self) -> Setup {
        Setup {
            login: None,
            prot: None,
            type_i: false,
            ..self
        }
    }

    /// Log in as `user` with `password` instead of the test account.
    pub fn user(self, user: &str, password: &str) -> Setup {
        Setup {
            login: Some((user.to_string(), password.to_string())),
            ..self
        }
    }

    /// No `PBSZ`/`PROT`: the data protection stays what the session starts
    /// with (Clear after `AUTH TLS`, Private on an implicit connection).
    pub fn no_prot(self) -> Setup {
        Setup { prot: None, ..self }
    }

    /// `PBSZ 0` (200) and `PROT C` (200) instead of `PROT P`.
    pub fn prot_c(self) -> Setup {
        Setup {
            prot: Some("C"),
            ..self
        }
    }

    /// `TYPE I` (200) last.
    pub fn type_i(self) -> Setup {
        Setup {
            type_i: true,
            ..self
        }
    }

    /// Whether TLS starts from the first byte (implicit FTPS).
    pub fn is_implicit(&self) -> bool {
        self.implicit
    }

    /// The steps after TLS is up, in order: command and expected reply code.
    pub fn steps(&self) -> Vec<(String, u16)> {
        let mut steps = Vec::new();
        if let Some((user, password)) = &self.login {
            steps.push((format!("USER {user}"), 331));
            steps.push((format!("PASS {password}"), 230));
        }
        if let Some(level) = self.prot {
            steps.push(("PBSZ 0".to_string(), 200));
            steps.push((format!("PROT {level}"), 200));
        }
        if self.type_i {
            steps.push(("TYPE I".to_string(), 200));
        }
        steps
    }
}

// ---------------------------------------------------------------------------
// The control stream
// ---------------------------------------------------------------------------

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

/// A command line as the dialogue and failure messages show it: the
/// password of `PASS` masked, long lines shortened.
fn shown(line: &[u8]) -> String {
    if line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"PASS ") {
        "PASS ****".to_string()
    } else if line.len() > 200 {
        format!(
            "{}... ({} bytes)",
            String::from_utf8_lossy(&line[..60]),
            line.len()
        )
    } else {
        String::from_utf8_lossy(line).escape_debug().to_string()
    }
}

/// What came next on the control connection.
#[derive(Debug)]
pub enum Next {
    /// One complete reply.
    Reply(Reply),
    /// The server closed the connection (TCP FIN or TLS close_notify).
    Eof,
    /// A read error (reset, TLS error, ...).
    Error(io::Error),
    /// Nothing complete arrived in time.
    Timeout,
    /// The bytes were not an FTP reply.
    Malformed(ReplyError),
}

/// A raw FTPS client on one control connection.
pub struct Client {
    /// The control stream.
    pub stream: Control,
    parser: ReplyParser,
    log: Vec<String>,
    /// The server's control address.
    pub peer: SocketAddr,
    /// The configuration used for the control connection's TLS (and, by
    /// default, for data connections, so that they resume its session).
    pub tls_config: Option<Arc<ClientConfig>>,
}

impl Client {
    /// Connect to an explicit FTPS port and read the 220 greeting.
    pub async fn connect(addr: SocketAddr) -> Client {
        let tcp = tcp_connect(addr).await;
        let mut client = Client::from_stream(Control::Plain(tcp), addr, None);
        client.expect_reply(220).await;
        client
    }

    /// Connect to an implicit FTPS port: TLS from the first byte, then the
    /// 220 greeting over TLS.
    pub async fn connect_implicit(addr: SocketAddr, config: &Arc<ClientConfig>) -> Client {
        let tcp = tcp_connect(addr).await;
        let tls = tls_connect(tcp, config)
            .await
            .unwrap_or_else(|e| panic!("implicit TLS handshake with {addr}: {e}"));
        let mut client =
            Client::from_stream(Control::Tls(Box::new(tls)), addr, Some(Arc::clone(config)));
        client.expect_reply(220).await;
        client
    }

    /// Explicit FTPS, AUTH TLS, USER/PASS, PBSZ 0, PROT P: the same as
    /// [`Client::open`] with [`Setup::explicit`].
    pub async fn secure(addr: SocketAddr, config: &Arc<ClientConfig>) -> Client {
        Client::open(addr, config, Setup::explicit()).await
    }

    /// Connect to `addr` and set the session up as `setup` says, with
    /// `config` for the control connection's TLS (and, by default, for data
    /// connections). Every step checks its reply code; a wrong one panics
    /// with the step, the reply and the dialogue.
    pub async fn open(addr: SocketAddr, config: &Arc<ClientConfig>, setup: Setup) -> Client {
        let mut client = if setup.implicit {
            Client::connect_implicit(addr, config).await
        } else {
            let mut client = Client::connect(addr).await;
            client.auth_tls(config).await;
            client
        };
        let steps = setup.steps();
        let rows: Vec<(&str, u16)> = steps.iter().map(|(l, code)| (l.as_str(), *code)).collect();
        client.expect_replies(&rows).await;
        client
    }

    /// [`Client::open`] on a [`TestServer`]: its first explicit or implicit
    /// listener (as `setup` says), with a TLS configuration of its own
    /// ([`config_default`] for the server's certificate: its own session
    /// store), which [`Client::config`] returns.
    pub async fn session(server: &TestServer, setup: Setup) -> Client {
        let config = config_default(&server.cert_pem);
        let addr = if setup.implicit {
            server.implicit
        } else {
            server.explicit
        };
        Client::open(addr, &config, setup).await
    }

    /// A client on an already open stream (no greeting is read).
    pub fn from_stream(
        stream: Control,
        peer: SocketAddr,
        tls_config: Option<Arc<ClientConfig>>,
    ) -> Client {
        Client {
            stream,
            parser: ReplyParser::new(),
            log: Vec::new(),
            peer,
            tls_config,
        }
    }

    /// The dialogue so far, one line per command or reply line.
    pub fn dialogue(&self) -> String {
        self.log.join("\n")
    }

    /// Add a note to the dialogue.
    pub fn note(&mut self, note: impl Into<String>) {
        self.log.push(format!("--- {}", note.into()));
    }

    /// Whether the control connection is TLS-protected right now.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Control::Tls(_))
    }

    /// Send bytes as they are (no CRLF added).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.log.push(format!(
            "C> {}",
            String::from_utf8_lossy(bytes).escape_debug()
        ));
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(REPLY_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("send failed: {e}\n{}", self.dialogue()),
            Err(_) => panic!("send timed out\n{}", self.dialogue()),
        }
    }

    /// Send bytes, reporting failure instead of panicking.
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.log.push(format!(
            "C> {}",
            String::from_utf8_lossy(bytes).escape_debug()
        ));
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        tokio::time::timeout(REPLY_TIMEOUT, write)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "send timed out")))
    }

    /// Send one command line (CRLF appended).
    pub async fn send(&mut self, line: &str) {
        self.send_line_bytes(line.as_bytes()).await;
    }

    /// Send one command line given as bytes (CRLF appended).
    pub async fn send_line_bytes(&mut self, line: &[u8]) {
        let mut bytes = line.to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.log.push(format!("C> {}", shown(line)));
        let write = async {
            self.stream.write_all(&bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(REPLY_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("send failed: {e}\n{}", self.dialogue()),
            Err(_) => panic!("send timed out\n{}", self.dialogue()),
        }
    }

    /// What comes next: a reply, EOF, an error or nothing within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = [0u8; 8192];
        loop {
            match self.parser.next_reply() {
                Ok(Some(reply)) => {
                    for (i, line) in reply.lines.iter().enumerate() {
                        let sep = if i + 1 == reply.lines.len() { ' ' } else { '-' };
                        self.log.push(format!(
                            "S< {}{sep}{}",
                            reply.code,
                            String::from_utf8_lossy(line).escape_debug()
                        ));
                    }
                    return Next::Reply(reply);
                }
                Ok(None) => {}
                Err(e) => {
                    self.log.push(format!("S< (malformed: {e})"));
                    return Next::Malformed(e);
                }
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => {
                    self.log.push("S< (timeout)".into());
                    return Next::Timeout;
                }
                Ok(Ok(0)) => {
                    self.log.push("S< (EOF)".into());
                    return Next::Eof;
                }
                Ok(Ok(n)) => self.parser.push(&buf[..n]),
                Ok(Err(e)) => {
                    self.log.push(format!("S< (error: {e})"));
                    return Next::Error(e);
                }
            }
        }
    }

    /// What comes next, within [`REPLY_TIMEOUT`].
    pub async fn next(&mut self) -> Next {
        self.next_within(REPLY_TIMEOUT).await
    }

    /// Read one complete reply (panics on EOF, error or timeout).
    pub async fn read_reply(&mut self) -> Reply {
        match self.next().await {
            Next::Reply(reply) => reply,
            other => panic!("expected a reply, got {other:?}\n{}", self.dialogue()),
        }
    }

    /// Read one reply and check its code.
    pub async fn expect_reply(&mut self, code: u16) -> Reply {
        let reply = self.read_reply().await;
        if reply.code != code {
            panic!(
                "expected {code}, got {} {:?}\n--- dialogue:\n{}",
                reply.code,
                reply.text(),
                self.dialogue()
            );
        }
        reply
    }

    /// Send a command and read one complete reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send(line).await;
        self.read_reply().await
    }

    /// Send a command given as bytes and read one complete reply.
    pub async fn cmd_bytes(&mut self, line: &[u8]) -> Reply {
        self.send_line_bytes(line).await;
        self.read_reply().await
    }

    /// Send a command and check the code of its reply (a wrong one panics
    /// with the command, the reply and the dialogue).
    pub async fn expect(&mut self, line: &str, code: u16) -> Reply {
        self.send(line).await;
        let reply = self.read_reply().await;
        if reply.code != code {
            panic!(
                "{}: expected {code}, got {} {:?}\n--- dialogue:\n{}",
                shown(line.as_bytes()),
                reply.code,
                reply.text(),
                self.dialogue()
            );
        }
        reply
    }

    /// A table of commands and the reply code each must get, sent in order
    /// (one reply read per command). A wrong code panics naming the row,
    /// the command and the reply, with the dialogue so far. Returns the
    /// replies.
    ///
    /// ```ignore
    /// c.expect_replies(&[("PBSZ 0", 200), ("PROT S", 536), ("PROT P", 200)]).await;
    /// ```
    pub async fn expect_replies(&mut self, rows: &[(&str, u16)]) -> Vec<Reply> {
        let mut replies = Vec::with_capacity(rows.len());
        for (i, (line, code)) in rows.iter().enumerate() {
            self.send(line).await;
            let reply = self.read_reply().await;
            if reply.code != *code {
                panic!(
                    "row {} of {}: {}: expected {code}, got {} {:?}\n--- dialogue:\n{}",
                    i + 1,
                    rows.len(),
                    shown(line.as_bytes()),
                    reply.code,
                    reply.text(),
                    self.dialogue()
                );
            }
            replies.push(reply);
        }
        replies
    }

    /// Panic (with the dialogue) unless `cond` holds.
    pub fn check(&self, cond: bool, what: &str) {
        if !cond {
            panic!("{what}\n--- dialogue:\n{}", self.dialogue());
        }
    }

    /// Expect the server to close the control connection with no further
    /// reply. A reset counts as a close.
    pub async fn expect_closed(&mut self) {
        match self.next().await {
            Next::Eof | Next::Error(_) => {}
            other => panic!(
                "expected the server to close the connection, got {other:?}\n{}",
                self.dialogue()
            ),
        }
    }

    /// Read raw bytes until the server closes (or `limit` passes). Returns
    /// the bytes and whether the connection was closed (EOF or error).
    pub async fn read_raw_until_closed(&mut self, limit: Duration) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => {
                    self.log.push(format!("S< (raw {out:02x?}, timeout)"));
                    return (out, false);
                }
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.log.push(format!("S< (raw {out:02x?}, closed)"));
                    return (out, true);
                }
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

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

    /// USER/PASS with the test account.
    pub async fn login(&mut self) {
        self.login_as(crate::USER, crate::PASSWORD).await;
    }

    /// USER/PASS (331, 230).
    pub async fn login_as(&mut self, user: &str, password: &str) {
        self.expect(&format!("USER {user}"), 331).await;
        self.expect(&format!("PASS {password}"), 230).await;
    }

    /// PBSZ 0 and PROT P.
    pub async fn pbsz_prot_p(&mut self) {
        self.expect("PBSZ 0", 200).await;
        self.expect("PROT P", 200).await;
    }

    /// PASV (227) and the address it announces.
    pub async fn pasv(&mut self) -> SocketAddr {
        let reply = self.expect("PASV", 227).await;
        let addr: SocketAddrV4 = ftps_proto::address::parse_pasv_reply_text(&reply.text())
            .unwrap_or_else(|e| panic!("bad 227 text: {e:?}\n{}", self.dialogue()));
        SocketAddr::V4(addr)
    }

    /// EPSV (229) and the address to connect to (the control peer's address).
    pub async fn epsv(&mut self) -> SocketAddr {
        let reply = self.expect("EPSV", 229).await;
        let port = ftps_proto::address::parse_epsv_reply_text(&reply.text())
            .unwrap_or_else(|e| panic!("bad 229 text: {e:?}\n{}", self.dialogue()));
        SocketAddr::new(self.peer.ip(), port)
    }

    /// The configuration the control connection uses (data connections
    /// resume its session with it).
    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(
            self.tls_config
                .as_ref()
                .expect("the control connection has no TLS configuration"),
        )
    }

    /// EPSV, `command` (150), connect, TLS (resuming the control session),
    /// read to the end, 226. Returns the data.
    pub async fn download(&mut self, command: &[u8]) -> Vec<u8> {
        let config = self.config();
        self.download_with(command, &config).await
    }

    /// Like [`download`](Self::download) with a given data TLS configuration.
    pub async fn download_with(&mut self, command: &[u8], config: &Arc<ClientConfig>) -> Vec<u8> {
        let addr = self.epsv().await;
        self.send_line_bytes(command).await;
        self.expect_reply(150).await;
        let tcp = tcp_connect(addr).await;
        let mut tls = match data_tls(tcp, config).await {
            Ok(tls) => tls,
            Err(e) => panic!("data TLS handshake: {e}\n{}", self.dialogue()),
        };
        let data = match read_all(&mut tls).await {
            Ok(data) => data,
            Err(e) => panic!("data read: {e}\n{}", self.dialogue()),
        };
        self.note(format!("data: {} bytes received", data.len()));
        self.expect_reply(226).await;
        data
    }

    /// EPSV, `command` (150), connect, TLS with `config`, read what comes,
    /// then the final reply, whatever it is. Never panics on the data side.
    pub async fn try_download_with(
        &mut self,
        command: &[u8],
        config: &Arc<ClientConfig>,
    ) -> (Vec<u8>, Reply) {
        let addr = self.epsv().await;
        self.send_line_bytes(command).await;
        self.expect_reply(150).await;
        let tcp = tcp_connect(addr).await;
        let mut data = Vec::new();
        match data_tls(tcp, config).await {
            Ok(mut tls) => {
                let kind = tls.get_ref().1.handshake_kind();
                match read_all(&mut tls).await {
                    Ok(d) => data = d,
                    Err(e) => self.note(format!("data ({kind:?} handshake): {e}")),
                }
            }
            Err(e) => self.note(format!("data TLS handshake: {e}")),
        }
        let reply = self.read_reply().await;
        (data, reply)
    }

    /// Download a listing over a plain (PROT C) data connection.
    pub async fn download_clear(&mut self, command: &[u8]) -> Vec<u8> {
        let addr = self.epsv().await;
        self.send_line_bytes(command).await;
        self.expect_reply(150).await;
        let mut tcp = tcp_connect(addr).await;
        let data = read_all(&mut tcp).await.unwrap();
        self.expect_reply(226).await;
        data
    }

    /// RETR over a passive PROT P data connection.
    pub async fn retr(&mut self, path: &str) -> Vec<u8> {
        self.download(format!("RETR {path}").as_bytes()).await
    }

    /// EPSV, `command` (150), connect, TLS (resuming the control session),
    /// write `data`, close_notify, 226. Returns the 150 reply.
    pub async fn upload(&mut self, command: &[u8], data: &[u8]) -> Reply {
        let config = self.config();
        self.upload_with(command, data, &config).await
    }

    /// Like [`upload`](Self::upload) with a given data TLS configuration.
    pub async fn upload_with(
        &mut self,
        command: &[u8],
        data: &[u8],
        config: &Arc<ClientConfig>,
    ) -> Reply {
        let addr = self.epsv().await;
        self.send_line_bytes(command).await;
        let started = self.expect_reply(150).await;
        let tcp = tcp_connect(addr).await;
        let mut tls = match data_tls(tcp, config).await {
            Ok(tls) => tls,
            Err(e) => panic!("data TLS handshake: {e}\n{}", self.dialogue()),
        };
        if let Err(e) = write_all_and_close(&mut tls, data).await {
            panic!("data write: {e}\n{}", self.dialogue());
        }
        // The server answers our close_notify with its own; drain it.
        let _ = read_all(&mut tls).await;
        self.note(format!("data: {} bytes sent", data.len()));
        self.expect_reply(226).await;
        started
    }

    /// STOR over a passive PROT P data connection.
    pub async fn stor(&mut self, path: &str, data: &[u8]) {
        self.upload(format!("STOR {path}").as_bytes(), data).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(steps: &[(String, u16)]) -> Vec<(&str, u16)> {
        steps.iter().map(|(l, code)| (l.as_str(), *code)).collect()
    }

    #[test]
    fn setups_are_the_secure_session_with_one_step_changed_per_option() {
        let pass = format!("PASS {}", crate::PASSWORD);
        let user = format!("USER {}", crate::USER);
        let secure = vec![
            (user.as_str(), 331),
            (pass.as_str(), 230),
            ("PBSZ 0", 200),
            ("PROT P", 200),
        ];
        assert_eq!(rows(&Setup::explicit().steps()), secure);
        assert!(!Setup::explicit().is_implicit());
        assert_eq!(rows(&Setup::implicit().steps()), secure);
        assert!(Setup::implicit().is_implicit());
        let mut binary = secure.clone();
        binary.push(("TYPE I", 200));
        assert_eq!(rows(&Setup::explicit().type_i().steps()), binary);
        let mut clear = secure.clone();
        clear[3] = ("PROT C", 200);
        assert_eq!(rows(&Setup::explicit().prot_c().steps()), clear);
        assert_eq!(rows(&Setup::implicit().no_prot().steps()), secure[..2]);
        assert!(Setup::explicit().type_i().tls_only().steps().is_empty());
        assert_eq!(
            rows(&Setup::explicit().user("bob", "pw").no_prot().steps()),
            vec![("USER bob", 331), ("PASS pw", 230)]
        );
    }

    /// A plaintext server that greets and then answers each command line
    /// with the next of `replies`.
    async fn scripted_server(replies: &'static [&'static str]) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (read, mut write) = tcp.into_split();
            write.write_all(b"220 ready\r\n").await.unwrap();
            let mut lines = tokio::io::BufReader::new(read);
            for reply in replies {
                let mut line = String::new();
                if tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line)
                    .await
                    .unwrap()
                    == 0
                {
                    return;
                }
                write.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_failing_table_row_names_its_command_and_the_reply_with_the_dialogue() {
        let addr = scripted_server(&["200 ok\r\n", "503 PBSZ first\r\n", "200 ok\r\n"]).await;
        let run = tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            c.expect_replies(&[("NOOP", 200), ("PROT P", 200), ("NOOP", 200)])
                .await;
        });
        let message = crate::hostile::panic_text(run.await.unwrap_err());
        assert!(
            message.starts_with("row 2 of 3: PROT P: expected 200, got 503 \"PBSZ first\""),
            "{message}"
        );
        assert!(
            message.contains(
                "--- dialogue:\nS< 220 ready\nC> NOOP\nS< 200 ok\nC> PROT P\nS< 503 PBSZ first"
            ),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_wrong_reply_names_the_command_but_never_the_password() {
        let addr = scripted_server(&["331 password\r\n", "530 no\r\n"]).await;
        let run = tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            c.login_as("alice", "s3cret").await;
        });
        let message = crate::hostile::panic_text(run.await.unwrap_err());
        assert!(
            message.starts_with("PASS ****: expected 230, got 530 \"no\""),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }
}
