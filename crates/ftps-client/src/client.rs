//! The client: connect and set up the session (through the protocol crate's
//! [`ClientLogin`]), then commands and transfers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::client::{ClientLogin, LoginOptions, LoginStep, Security};
use ftps_proto::command::TransferType;
use ftps_proto::entry::Entry;
use ftps_proto::reply::Reply;
use ftps_proto::session::DataProtection;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::control::{tls_error, Control, Stream};
use crate::data::RetrStream;
use crate::tls::{client_config_with_store, server_name, SessionStore, TlsOptions};
use crate::{listing, Error};

/// Passive (the client connects) or active (the server connects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataMode {
    /// EPSV, falling back to PASV.
    #[default]
    Passive,
    /// EPRT, falling back to PORT.
    Active,
}

/// How an upload treats the remote file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// STOR: create or replace.
    Replace,
    /// APPE: append.
    Append,
    /// REST n + STOR: resume at byte n (the remote file holds exactly the
    /// first n bytes); where the server refuses restarted uploads, APPE.
    Resume(u64),
}

/// Everything needed to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host name or IP address.
    pub host: String,
    /// Control port.
    pub port: u16,
    /// Session set-up: security, credentials, RFC 4217 §10.3 timing options.
    pub login: LoginOptions,
    /// Certificate verification and client certificate.
    pub tls: TlsOptions,
    /// Passive or active data connections.
    pub data_mode: DataMode,
    /// PROT level for listings, when it should differ from file transfers (RFC 4217 §10.4).
    pub listing_protection: Option<DataProtection>,
    /// Limit on TCP connects and TLS handshakes.
    pub connect_timeout: Duration,
    /// Limit on each reply.
    pub reply_timeout: Duration,
    /// Limit on a data connection that moves nothing.
    pub idle_data_timeout: Duration,
}

impl ConnectOptions {
    /// Defaults: explicit FTPS with PROT P, passive mode, verified certificates.
    pub fn new(host: impl Into<String>, port: u16, user: &str, password: &str) -> ConnectOptions {
        ConnectOptions {
            host: host.into(),
            port,
            login: LoginOptions::new(user, password),
            tls: TlsOptions::default(),
            data_mode: DataMode::Passive,
            listing_protection: None,
            connect_timeout: Duration::from_secs(30),
            reply_timeout: Duration::from_secs(60),
            idle_data_timeout: Duration::from_secs(120),
        }
    }
}

/// Features from FEAT (RFC 2389).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// The raw feature lines.
    pub lines: Vec<String>,
    /// MLST/MLSD (RFC 3659 §7).
    pub mlst: bool,
    /// REST STREAM (RFC 3659 §5).
    pub rest_stream: bool,
    /// SIZE.
    pub size: bool,
    /// MDTM.
    pub mdtm: bool,
    /// UTF8 (RFC 2640).
    pub utf8: bool,
    /// CCC (RFC 4217 §5).
    pub ccc: bool,
}

impl Features {
    fn parse(reply: &Reply) -> Features {
        let lines: Vec<String> = reply
            .lines
            .iter()
            .skip(1)
            .map(|l| String::from_utf8_lossy(l).trim().to_string())
            .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("END"))
            .collect();
        let has = |name: &str| {
            lines.iter().any(|l| {
                let upper = l.to_ascii_uppercase();
                upper == name || upper.starts_with(&format!("{name} "))
            })
        };
        Features {
            mlst: has("MLST"),
            rest_stream: has("REST STREAM") || has("REST"),
            size: has("SIZE"),
            mdtm: has("MDTM"),
            utf8: has("UTF8"),
            ccc: has("CCC"),
            lines,
        }
    }
}

/// An FTPS client connection. See the crate docs for an example.
#[derive(Debug)]
pub struct Client {
    pub(crate) control: Control,
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) sessions: Arc<SessionStore>,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) options: ConnectOptions,
    pub(crate) epsv_refused: bool,
    pub(crate) eprt_refused: bool,
    pub(crate) last_data_resumed: bool,
    reconnects: u32,
    /// Whether the server refuses data connections that do not resume the
    /// TLS session (learned: `None` until a full handshake was tried).
    reuse_required: Option<bool>,
    protection: DataProtection,
    pbsz_done: bool,
    control_protected: bool,
    transfer_type: Option<TransferType>,
    features: Features,
}

impl Client {
    /// Connect, secure and log in as the options say.
    pub async fn connect(options: ConnectOptions) -> Result<Client, Error> {
        let (tls, sessions) = client_config_with_store(&options.tls)?;
        let name = server_name(&options.host)?;
        let addr = (options.host.as_str(), options.port);
        let tcp =
            match tokio::time::timeout(options.connect_timeout, TcpStream::connect(addr)).await {
                Ok(r) => r?,
                Err(_) => return Err(Error::Timeout("connecting")),
            };
        let _ = tcp.set_nodelay(true);
        let peer = tcp.peer_addr()?;
        let local = tcp.local_addr()?;
        let stream = if options.login.security == Security::Implicit {
            let tls_stream =
                Stream::connect_tls(tcp, tls.clone(), name.clone(), options.connect_timeout)
                    .await?;
            Stream::Tls(Box::new(tls_stream))
        } else {
            Stream::Plain(tcp)
        };
        let mut client = Client {
            control: Control::new(stream, options.reply_timeout),
            tls,
            sessions,
            server_name: name,
            peer,
            local,
            epsv_refused: false,
            eprt_refused: false,
            last_data_resumed: false,
            reconnects: 0,
            reuse_required: None,
            protection: DataProtection::Clear,
            pbsz_done: false,
            control_protected: false,
            transfer_type: None,
            features: Features::default(),
            options,
        };
        client.set_up().await?;
        Ok(client)
    }

    async fn set_up(&mut self) -> Result<(), Error> {
        if self.options.login.security == Security::None {
            warn!("plain FTP: the password and all data travel unencrypted");
        }
        let mut login = ClientLogin::new(self.options.login.clone());
        loop {
            let greeting = self.control.read_reply().await?;
            if login.handle_greeting(&greeting)? {
                break;
            }
        }
        loop {
            match login.poll_step() {
                Some(LoginStep::Send(line)) => {
                    let reply = self.control.command(&line).await?;
                    login.handle_reply(&reply)?;
                }
                Some(LoginStep::StartTls) => {
                    self.upgrade_control().await?;
                    login.handle_tls_established();
                }
                Some(LoginStep::ClearTls) => self.clear_control().await?,
                Some(LoginStep::Done(summary)) => {
                    self.protection = summary.protection;
                    self.pbsz_done = summary.pbsz_done;
                    self.control_protected = summary.control_protected;
                    break;
                }
                None => return Err(Error::Protocol("set-up stalled".into())),
            }
        }
        // FEAT is optional (RFC 2389): a server without it just lacks extensions.
        let reply = self.control.command(b"FEAT").await?;
        if reply.code == 211 {
            self.features = Features::parse(&reply);
            if self.features.utf8 {
                let _ = self.control.command(b"OPTS UTF8 ON").await?;
            }
        }
        Ok(())
    }

    async fn upgrade_control(&mut self) -> Result<(), Error> {
        if self.control.buffered() > 0 {
            return Err(Error::Protocol(
                "the server sent bytes after 234 in plaintext".into(),
            ));
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.control.stream, Stream::Detached)
        else {
            return Err(Error::Protocol("control connection is already TLS".into()));
        };
        let tls = Stream::connect_tls(
            tcp,
            self.tls.clone(),
            self.server_name.clone(),
            self.options.connect_timeout,
        )
        .await?;
        self.control.stream = Stream::Tls(Box::new(tls));
        self.control_protected = true;
        Ok(())
    }

    /// After CCC's 200: send close_notify, read the server's, go on in plaintext.
    async fn clear_control(&mut self) -> Result<(), Error> {
        let Stream::Tls(mut tls) = std::mem::replace(&mut self.control.stream, Stream::Detached)
        else {
            return Err(Error::Protocol("control connection is not TLS".into()));
        };
        tls.get_mut().1.send_close_notify();
        tls.flush().await?;
        let wait = async {
            let mut sink = [0u8; 256];
            while matches!(tls.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        let (tcp, _) = tls.into_inner();
        self.control.stream = Stream::Plain(tcp);
        self.control_protected = false;
        Ok(())
    }

    pub(crate) fn unexpected(&self, command: &str, expected: &'static str, reply: Reply) -> Error {
        Error::UnexpectedReply {
            command: command.to_string(),
            expected,
            reply,
        }
    }

    /// Send a command and expect a 2xx reply.
    async fn expect_ok(&mut self, verb: &str, line: &[u8]) -> Result<Reply, Error> {
        let reply = self.control.command(line).await?;
        if reply.is_completion() {
            Ok(reply)
        } else {
            Err(self.unexpected(verb, "2xx", reply))
        }
    }

    fn with_arg(verb: &str, arg: &[u8]) -> Vec<u8> {
        let mut line = verb.as_bytes().to_vec();
        line.push(b' ');
        line.extend_from_slice(arg);
        line
    }

    /// The features the server announced.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// FEAT again.
    pub async fn feat(&mut self) -> Result<Features, Error> {
        let reply = self.control.command(b"FEAT").await?;
        if reply.code != 211 {
            return Err(self.unexpected("FEAT", "211", reply));
        }
        self.features = Features::parse(&reply);
        Ok(self.features.clone())
    }

    /// Is the control connection protected by TLS?
    pub fn is_control_protected(&self) -> bool {
        self.control_protected
    }

    /// The current data protection level.
    pub fn protection(&self) -> DataProtection {
        self.protection
    }

    /// How often the control connection was renewed for fresh TLS 1.3
    /// tickets (see [`ConnectOptions`]; 0 with servers that send tickets on
    /// data connections, and always with TLS 1.2).
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// Did the last protected data connection resume the TLS session?
    pub fn last_data_resumed(&self) -> bool {
        self.last_data_resumed
    }

    /// The TLS version of the control connection, e.g. "TLSv1_3".
    pub fn tls_version(&self) -> Option<String> {
        self.control
            .stream
            .tls()
            .and_then(|c| c.protocol_version())
            .map(|v| format!("{v:?}"))
    }

    /// Any command; the reply is returned whatever its code.
    pub async fn quote(&mut self, line: &str) -> Result<Reply, Error> {
        self.control.command(line.as_bytes()).await
    }

    /// PWD: the current directory (RFC 959 Appendix II quoting undone).
    pub async fn pwd(&mut self) -> Result<Vec<u8>, Error> {
        let reply = self.control.command(b"PWD").await?;
        if reply.code != 257 {
            return Err(self.unexpected("PWD", "257", reply));
        }
        let line = reply.lines.first().cloned().unwrap_or_default();
        let start = line.iter().position(|b| *b == b'"');
        let Some(start) = start else {
            return Err(Error::Protocol("PWD reply without a quoted path".into()));
        };
        let mut out = Vec::new();
        let mut i = start + 1;
        while i < line.len() {
            if line[i] == b'"' {
                if line.get(i + 1) == Some(&b'"') {
                    out.push(b'"');
                    i += 2;
                    continue;
                }
                break;
            }
            out.push(line[i]);
            i += 1;
        }
        Ok(out)
    }

    /// CWD.
    pub async fn cwd(&mut self, path: &[u8]) -> Result<(), Error> {
        self.expect_ok("CWD", &Self::with_arg("CWD", path))
            .await
            .map(|_| ())
    }

    /// MKD.
    pub async fn mkdir(&mut self, path: &[u8]) -> Result<(), Error> {
        self.expect_ok("MKD", &Self::with_arg("MKD", path))
            .await
            .map(|_| ())
    }

    /// RMD.
    pub async fn rmdir(&mut self, path: &[u8]) -> Result<(), Error> {
        self.expect_ok("RMD", &Self::with_arg("RMD", path))
            .await
            .map(|_| ())
    }

    /// DELE.
    pub async fn delete(&mut self, path: &[u8]) -> Result<(), Error> {
        self.expect_ok("DELE", &Self::with_arg("DELE", path))
            .await
            .map(|_| ())
    }

    /// RNFR + RNTO.
    pub async fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), Error> {
        let reply = self.control.command(&Self::with_arg("RNFR", from)).await?;
        if reply.code != 350 {
            return Err(self.unexpected("RNFR", "350", reply));
        }
        self.expect_ok("RNTO", &Self::with_arg("RNTO", to))
            .await
            .map(|_| ())
    }

    /// TYPE, sent only when it changes.
    pub async fn set_type(&mut self, transfer_type: TransferType) -> Result<(), Error> {
        if self.transfer_type == Some(transfer_type) {
            return Ok(());
        }
        let line: &[u8] = match transfer_type {
            TransferType::Ascii => b"TYPE A",
            TransferType::Image => b"TYPE I",
        };
        self.expect_ok("TYPE", line).await?;
        self.transfer_type = Some(transfer_type);
        Ok(())
    }

    /// SIZE (in TYPE I: the number of bytes RETR would send).
    pub async fn size(&mut self, path: &[u8]) -> Result<u64, Error> {
        self.set_type(TransferType::Image).await?;
        let reply = self.control.command(&Self::with_arg("SIZE", path)).await?;
        if reply.code != 213 {
            return Err(self.unexpected("SIZE", "213", reply));
        }
        reply
            .text()
            .trim()
            .parse()
            .map_err(|_| Error::Protocol(format!("bad SIZE reply {:?}", reply.text())))
    }

    /// MDTM: modification time, Unix seconds (UTC).
    pub async fn mdtm(&mut self, path: &[u8]) -> Result<i64, Error> {
        let reply = self.control.command(&Self::with_arg("MDTM", path)).await?;
        if reply.code != 213 {
            return Err(self.unexpected("MDTM", "213", reply));
        }
        ftps_proto::timefmt::parse_time_val(reply.text().trim())
            .ok_or_else(|| Error::Protocol(format!("bad MDTM reply {:?}", reply.text())))
    }

    /// PROT C or P for the following transfers (PBSZ 0 first when needed,
    /// RFC 4217 §9, §10.4).
    pub async fn set_prot(&mut self, level: DataProtection) -> Result<(), Error> {
        if self.protection == level && self.pbsz_done {
            return Ok(());
        }
        if !self.pbsz_done {
            self.expect_ok("PBSZ", b"PBSZ 0").await?;
            self.pbsz_done = true;
        }
        let line: &[u8] = match level {
            DataProtection::Private => b"PROT P",
            DataProtection::Clear => b"PROT C",
        };
        self.expect_ok("PROT", line).await?;
        self.protection = level;
        Ok(())
    }

    /// CCC: clear the control connection (RFC 4217 §5); data keeps its PROT level.
    pub async fn ccc(&mut self) -> Result<(), Error> {
        self.expect_ok("CCC", b"CCC").await?;
        self.clear_control().await
    }

    /// QUIT and close.
    pub async fn quit(mut self) -> Result<(), Error> {
        let reply = self.control.command(b"QUIT").await;
        let _ = self.control.stream.shutdown().await;
        match reply {
            Ok(r) if r.code == 221 => Ok(()),
            Ok(r) => Err(self.unexpected("QUIT", "221", r)),
            Err(Error::ConnectionClosed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// TLS 1.3 tickets are single-use here; when none is left for a protected
    /// data connection (servers like ProFTPD send none on data connections),
    /// reconnect the control connection for fresh ones instead of offering a
    /// full handshake that a reuse-requiring server refuses. The working
    /// directory, PROT level and TYPE are restored.
    async fn ensure_ticket(&mut self, protected: bool) -> Result<(), Error> {
        if self.reuse_required == Some(true) && self.out_of_tickets(protected) {
            self.reconnect().await?;
        }
        Ok(())
    }

    /// A protected TLS 1.3 data connection would have no ticket to offer.
    fn out_of_tickets(&self, protected: bool) -> bool {
        protected
            && self.tls_version().as_deref() == Some("TLSv1_3")
            && self.sessions.tls13_tickets(&self.server_name) == 0
    }

    /// Renew the control connection (fresh TLS 1.3 tickets), restoring the
    /// working directory, PROT level and TYPE.
    async fn reconnect(&mut self) -> Result<(), Error> {
        debug!("no TLS 1.3 ticket left for the data connection: reconnecting");
        let cwd = self.pwd().await.ok();
        let transfer_type = self.transfer_type;
        let protection = self.protection;
        let _ = self.control.command(b"QUIT").await;
        let fresh = Client::connect(self.options.clone()).await?;
        let epsv_refused = self.epsv_refused;
        let eprt_refused = self.eprt_refused;
        let reconnects = self.reconnects + 1;
        let reuse_required = self.reuse_required;
        *self = fresh;
        self.epsv_refused = epsv_refused;
        self.eprt_refused = eprt_refused;
        self.reconnects = reconnects;
        self.reuse_required = reuse_required;
        if let Some(cwd) = cwd {
            self.cwd(&cwd).await?;
        }
        if self.protection != protection {
            self.set_prot(protection).await?;
        }
        if let Some(t) = transfer_type {
            self.set_type(t).await?;
        }
        Ok(())
    }

    /// Send a data command and set up its data connection; one automatic retry
    /// when the server refuses the data connection for lack of session reuse.
    async fn data_command(
        &mut self,
        line: &[u8],
        verb: &str,
        rest: Option<u64>,
        protected: bool,
    ) -> Result<(Stream, Reply), Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.ensure_ticket(protected).await?;
            let pending = self.open_data().await?;
            if let Some(offset) = rest {
                let reply = self
                    .control
                    .command(format!("REST {offset}").as_bytes())
                    .await?;
                if reply.code != 350 {
                    return Err(self.unexpected("REST", "350", reply));
                }
            }
            let reply = self.control.command(line).await?;
            if !matches!(reply.code, 125 | 150) {
                return Err(self.unexpected(verb, "150", reply));
            }
            let data = match self.finish_data(pending, protected).await {
                Ok(data) => data,
                Err(e) => {
                    // The server answers the failed data connection (425/522).
                    let final_reply = self.control.read_reply().await?;
                    let error = if final_reply.is_completion() {
                        e
                    } else {
                        self.unexpected(verb, "226", final_reply)
                    };
                    if attempt == 1 && error.is_session_reuse_refusal() {
                        debug!("data connection refused for session reuse; retrying once");
                        continue;
                    }
                    return Err(error);
                }
            };
            return Ok((data, reply));
        }
    }

    /// Listing protection for this call (RFC 4217 §10.4: listings may differ).
    async fn listing_prot(&mut self) -> Result<bool, Error> {
        if let Some(level) = self.options.listing_protection {
            self.set_prot(level).await?;
        }
        Ok(self.protection == DataProtection::Private)
    }

    /// Directory entries: MLSD when the server has MLST, else LIST parsed
    /// (Unix and DOS formats). The same normalized entries either way.
    pub async fn list(&mut self, path: &[u8]) -> Result<Vec<Entry>, Error> {
        let protected = self.listing_prot().await?;
        let (verb, line) = if self.features.mlst {
            (
                "MLSD",
                if path.is_empty() {
                    b"MLSD".to_vec()
                } else {
                    Self::with_arg("MLSD", path)
                },
            )
        } else {
            (
                "LIST",
                if path.is_empty() {
                    b"LIST".to_vec()
                } else {
                    Self::with_arg("LIST", path)
                },
            )
        };
        let (data, _) = self.data_command(&line, verb, None, protected).await?;
        let raw = self.read_all_data(data, verb).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let entries = if verb == "MLSD" {
            listing::parse_mlsd(&raw)
        } else {
            listing::parse_list(&raw, now)
        };
        self.restore_prot().await?;
        Ok(entries)
    }

    /// NLST: names only.
    pub async fn nlst(&mut self, path: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        let protected = self.listing_prot().await?;
        let line = if path.is_empty() {
            b"NLST".to_vec()
        } else {
            Self::with_arg("NLST", path)
        };
        let (data, _) = self.data_command(&line, "NLST", None, protected).await?;
        let raw = self.read_all_data(data, "NLST").await?;
        self.restore_prot().await?;
        Ok(raw
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .filter(|l| !l.is_empty())
            .collect())
    }

    async fn restore_prot(&mut self) -> Result<(), Error> {
        if self.options.listing_protection.is_some() {
            let level = self.options.login.protection;
            self.set_prot(level).await?;
        }
        Ok(())
    }

    async fn read_all_data(&mut self, mut data: Stream, verb: &str) -> Result<Vec<u8>, Error> {
        let mut raw = Vec::new();
        let idle = self.options.idle_data_timeout;
        loop {
            let mut buf = [0u8; 16 * 1024];
            match tokio::time::timeout(idle, data.read(&mut buf)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => raw.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Ok(Err(e)) => {
                    let _ = self.control.read_reply().await;
                    return Err(match tls_error(e) {
                        Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            Error::Truncated {
                                received: raw.len() as u64,
                                expected: None,
                            }
                        }
                        other => other,
                    });
                }
                Err(_) => return Err(Error::Timeout("reading the data connection")),
            }
        }
        drop(data);
        let reply = self.control.read_reply().await?;
        if !matches!(reply.code, 226 | 250) {
            return Err(self.unexpected(verb, "226", reply));
        }
        Ok(raw)
    }

    /// RETR from `offset` (REST STREAM when non-zero): read the returned
    /// stream, then call its `finish()`.
    pub async fn retr(&mut self, path: &[u8], offset: u64) -> Result<RetrStream<'_>, Error> {
        self.set_type(TransferType::Image).await?;
        self.retr_typed(path, offset).await
    }

    /// RETR in TYPE A (line endings converted by the server to CRLF on the wire;
    /// the bytes read are as sent).
    pub async fn retr_ascii(&mut self, path: &[u8]) -> Result<RetrStream<'_>, Error> {
        self.set_type(TransferType::Ascii).await?;
        self.retr_typed(path, 0).await
    }

    async fn retr_typed(&mut self, path: &[u8], offset: u64) -> Result<RetrStream<'_>, Error> {
        let protected = self.protection == DataProtection::Private;
        let rest = (offset > 0).then_some(offset);
        let (data, reply) = self
            .data_command(&Self::with_arg("RETR", path), "RETR", rest, protected)
            .await?;
        // Servers differ on what the 150 size means after REST: the bytes
        // left (this project's server) or the whole file (vsftpd).
        let announced = if self.transfer_type == Some(TransferType::Image) {
            size_from_150(&reply.text())
        } else {
            None
        };
        let (expected, expected_whole) = match announced {
            Some(n) if offset > 0 => (Some(n), n.checked_sub(offset)),
            other => (other, None),
        };
        let idle_limit = self.options.idle_data_timeout;
        Ok(RetrStream {
            client: self,
            data,
            received: 0,
            expected,
            expected_alternative: expected_whole,
            eof: false,
            idle: Box::pin(tokio::time::sleep(idle_limit)),
            idle_limit,
        })
    }

    /// Upload from `reader`; returns the bytes sent. The data connection ends
    /// with a TLS close_notify, and the client reads to the server's own
    /// close (collecting the fresh session ticket it may send).
    pub async fn stor<R: AsyncRead + Unpin>(
        &mut self,
        path: &[u8],
        reader: &mut R,
        mode: StoreMode,
        ascii: bool,
    ) -> Result<u64, Error> {
        self.set_type(if ascii {
            TransferType::Ascii
        } else {
            TransferType::Image
        })
        .await?;
        let protected = self.protection == DataProtection::Private;
        let (line, rest) = match mode {
            StoreMode::Replace => (Self::with_arg("STOR", path), None),
            StoreMode::Append => (Self::with_arg("APPE", path), None),
            StoreMode::Resume(0) => (Self::with_arg("STOR", path), None),
            StoreMode::Resume(n) => (Self::with_arg("STOR", path), Some(n)),
        };
        let verb = if mode == StoreMode::Append {
            "APPE"
        } else {
            "STOR"
        };
        let (mut data, _) = match self.data_command(&line, verb, rest, protected).await {
            // Some servers refuse restarted uploads (ProFTPD without
            // AllowStoreRestart): the remote file holds exactly the first n
            // bytes, so appending the rest is the same upload.
            Err(Error::UnexpectedReply { reply, .. })
                if rest.is_some() && matches!(reply.code, 450..=559) =>
            {
                debug!(
                    code = reply.code,
                    "restarted STOR refused; appending instead"
                );
                let line = Self::with_arg("APPE", path);
                self.data_command(&line, "APPE", None, protected).await?
            }
            other => other?,
        };
        // A full handshake where the server may require session reuse:
        // find out before sending a byte whether it refused (it closes the
        // data connection at once) — then renew the control connection and
        // try once more; an accepting server just waits for the data.
        if protected && !self.last_data_resumed && self.reuse_required != Some(false) {
            let mut probe = [0u8; 1];
            let refused = matches!(
                tokio::time::timeout(REUSE_PROBE, data.read(&mut probe)).await,
                Ok(Ok(0)) | Ok(Err(_))
            );
            if refused {
                drop(data);
                let reply = self.control.read_reply().await?;
                self.reuse_required = Some(true);
                if reply.is_completion() {
                    return Err(Error::Protocol(
                        "the server closed the data connection".into(),
                    ));
                }
                self.reconnect().await?;
                let (again, _) = self.data_command(&line, verb, rest, protected).await?;
                data = again;
            } else {
                self.reuse_required = Some(false);
            }
        }
        let mut sent = 0u64;
        // Large reads: a file reader hands each read to tokio's blocking pool.
        let mut buf = vec![0u8; 256 * 1024];
        let idle = self.options.idle_data_timeout;
        let copy: Result<(), Error> = async {
            loop {
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                let chunk = buf.get(..n).unwrap_or_default();
                match tokio::time::timeout(idle, data.write_all(chunk)).await {
                    Ok(r) => r.map_err(tls_error)?,
                    Err(_) => return Err(Error::Timeout("writing the data connection")),
                }
                sent += n as u64;
            }
            // close_notify, then FIN.
            match tokio::time::timeout(idle, data.shutdown()).await {
                Ok(r) => r.map_err(tls_error)?,
                Err(_) => return Err(Error::Timeout("closing the data connection")),
            }
            // Read until the server closes: its session ticket and close_notify.
            let drain = async {
                let mut sink = [0u8; 1024];
                while matches!(data.read(&mut sink).await, Ok(n) if n > 0) {}
            };
            let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
            Ok(())
        }
        .await;
        drop(data);
        let reply = self.control.read_reply().await?;
        copy?;
        if !matches!(reply.code, 226 | 250) {
            return Err(self.unexpected(verb, "226", reply));
        }
        Ok(sent)
    }
}

/// How long an upload waits to see whether the server refused its full
/// TLS handshake (it then closes the data connection at once).
const REUSE_PROBE: Duration = Duration::from_millis(300);

/// "150 Opening ... (1234 bytes)": the size some servers announce.
pub fn size_from_150(text: &str) -> Option<u64> {
    let open = text.rfind('(')?;
    let rest = &text[open + 1..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let after = rest[digits.len()..].trim_start();
    if !digits.is_empty() && after.to_ascii_lowercase().starts_with("byte") {
        digits.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn size_in_150_replies() {
        assert_eq!(
            size_from_150("Opening BINARY mode data connection for f (1234 bytes)."),
            Some(1234)
        );
        assert_eq!(size_from_150("Opening data connection (5 bytes)."), Some(5));
        assert_eq!(size_from_150("Opening data connection."), None);
        assert_eq!(size_from_150("Here comes the directory listing."), None);
    }

    #[test]
    fn feat_parsing() {
        let reply = Reply::multi(
            211,
            vec![
                b"Features:".to_vec(),
                b" MLST type*;size*;".to_vec(),
                b" REST STREAM".to_vec(),
                b" SIZE".to_vec(),
                b" UTF8".to_vec(),
                b"End".to_vec(),
            ],
        );
        let f = Features::parse(&reply);
        assert!(f.mlst && f.rest_stream && f.size && f.utf8 && !f.ccc && !f.mdtm);
    }
}
