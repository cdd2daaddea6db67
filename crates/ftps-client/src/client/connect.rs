//! Connecting, securing and logging in, and leaving: the TCP connection
//! (with implicit TLS at once when asked), the set-up dialogue driven by the
//! protocol crate's [`ClientLogin`] — AUTH TLS and the TLS handshake
//! (RFC 4217 §4), USER/PASS (RFC 959 §4.1.1), PBSZ/PROT (RFC 4217 §9) at the
//! moment RFC 4217 §10.3 allows — then FEAT (RFC 2389) and OPTS UTF8
//! (RFC 2640); CCC, which clears the control connection (RFC 4217 §5); and
//! QUIT (RFC 959 §4.1.1).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::client::{looks_like_tls_record, ClientLogin, LoginOptions, LoginStep, Security};
use ftps_proto::reply::Reply;
use ftps_proto::session::DataProtection;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::warn;

use super::{Client, DataMode, Features};
use crate::control::{Control, Stream};
use crate::tls::{client_config_with_store, server_name, TlsOptions};
use crate::Error;

/// How long an explicit connection (`ftp://`) waits for the greeting before
/// it checks, on a second connection, whether the port speaks TLS from the
/// first byte (an implicit-FTPS port sends nothing until a ClientHello).
const TLS_PROBE_AFTER: Duration = Duration::from_millis(700);

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
            handshake_order: Default::default(),
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

    /// The set-up dialogue after connecting: greeting, login, FEAT.
    async fn set_up(&mut self) -> Result<(), Error> {
        if self.options.login.security == Security::None {
            warn!("plain FTP: the password and all data travel unencrypted");
        }
        let mut login = ClientLogin::new(self.options.login.clone());
        let mut greeting = self.first_reply().await?;
        while !login.handle_greeting(&greeting)? {
            greeting = self.control.read_reply().await?;
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

    /// The greeting; on an explicit connection that has none after
    /// [`TLS_PROBE_AFTER`], also a TLS probe of the same port: if that is
    /// answered in TLS, the port is implicit FTPS ([`Error::ImplicitTlsPort`]).
    async fn first_reply(&mut self) -> Result<Reply, Error> {
        if self.options.login.security != Security::Explicit {
            return self.control.read_reply().await;
        }
        let (peer, tls, name) = (self.peer, self.tls.clone(), self.server_name.clone());
        let limit = self.options.connect_timeout;
        let greeting = self.control.read_reply();
        tokio::pin!(greeting);
        tokio::select! {
            reply = &mut greeting => return reply,
            _ = tokio::time::sleep(TLS_PROBE_AFTER) => {}
        }
        tokio::select! {
            reply = &mut greeting => reply,
            tls = speaks_tls(peer, tls, name, limit) => {
                if tls {
                    Err(Error::ImplicitTlsPort)
                } else {
                    greeting.await
                }
            }
        }
    }

    /// After AUTH's 234: the TLS handshake on the control connection.
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
}

/// Does the server at `addr` answer a TLS ClientHello with a TLS record?
/// (A probe on a connection of its own, closed right after.)
async fn speaks_tls(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    limit: Duration,
) -> bool {
    let probe = async {
        let mut tcp = TcpStream::connect(addr).await.ok()?;
        let mut hello = Vec::new();
        let mut tls = rustls::ClientConnection::new(config, name).ok()?;
        tls.write_tls(&mut hello).ok()?;
        tcp.write_all(&hello).await.ok()?;
        let mut first = [0u8; 5];
        tcp.read_exact(&mut first).await.ok()?;
        Some(looks_like_tls_record(&first))
    };
    matches!(tokio::time::timeout(limit, probe).await, Ok(Some(true)))
}
