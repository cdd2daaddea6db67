//! What a check works with: the audit's environment ([`Env`]: the server's
//! addresses, the account, the TLS configurations, the mode), the facts the
//! preflight and earlier checks learnt ([`Facts`]), and [`Ctx`], which opens
//! labelled, recorded connections — plain, secured (AUTH TLS or implicit)
//! or logged in with PBSZ 0 / PROT P ([`Session`]).

use std::net::SocketAddr;
use std::sync::Arc;

use ftps_proto::client::Security;
use ftps_proto::reply::Reply;

use crate::evidence::Recorder;
use crate::probe::control::{line_of, refused, Conn};
use crate::probe::data::{passive_transfer, DataTls, Direction, Transfer};
use crate::probe::tls::{ProbeStore, TlsSetup, Versions};
use crate::probe::{Limits, ProbeError};

/// Which listener of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The URL's.
    Main,
    /// An explicit FTPS port (the URL's when `ftp://`, else `--explicit-port`).
    Explicit,
    /// An implicit FTPS port (the URL's when `ftps://`, else `--implicit-port`).
    Implicit,
}

/// The audit's environment, the same for every check.
#[derive(Debug)]
pub struct Env {
    /// The URL's control address.
    pub main: SocketAddr,
    /// Explicit or implicit, as the URL says.
    pub security: Security,
    /// An explicit FTPS address, if known.
    pub explicit: Option<SocketAddr>,
    /// An implicit FTPS address, if known.
    pub implicit: Option<SocketAddr>,
    /// The account.
    pub user: String,
    /// Its password (never recorded).
    pub password: String,
    /// The TLS configurations.
    pub tls: TlsSetup,
    /// How the user chose to trust the server (`--cacert`, `--pin`, `--insecure`).
    pub trust: ftps_client::TlsOptions,
    /// Time limits.
    pub limits: Limits,
    /// Create nothing on the server.
    pub read_only: bool,
    /// The directory uploads may use (relative to the login directory, or absolute).
    pub dir: Option<String>,
    /// The host name (for SNI in raw ClientHellos, when it is a name).
    pub host: String,
}

impl Env {
    /// The address of an endpoint, if the audit knows one.
    pub fn addr(&self, endpoint: Endpoint) -> Option<SocketAddr> {
        match endpoint {
            Endpoint::Main => Some(self.main),
            Endpoint::Explicit => self.explicit,
            Endpoint::Implicit => self.implicit,
        }
    }

    /// Whether an endpoint speaks TLS from the first byte.
    pub fn is_implicit(&self, endpoint: Endpoint) -> bool {
        match endpoint {
            Endpoint::Main => self.security == Security::Implicit,
            Endpoint::Explicit => false,
            Endpoint::Implicit => true,
        }
    }

    /// The SNI name for raw ClientHellos (none for an IP address).
    pub fn sni(&self) -> Option<String> {
        (self.host.parse::<std::net::IpAddr>().is_err()).then(|| self.host.clone())
    }

    /// A path in the upload directory.
    pub fn upload_path(&self, name: &str) -> Option<String> {
        let dir = self.dir.as_ref()?;
        let dir = dir.trim_end_matches('/');
        Some(if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        })
    }
}

/// A file the server lists, usable for downloads in read-only mode.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    /// Its path, as RETR takes it.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What the preflight and the checks learnt, for the checks after them.
#[derive(Debug, Default)]
pub struct Facts {
    /// FEAT lines after login (trimmed, upper case).
    pub feat: Vec<String>,
    /// Files in the login directory (for read-only downloads).
    pub files: Vec<RemoteFile>,
    /// What the data connection with a full handshake got: `Some(true)` accepted.
    pub full_handshake_accepted: Option<bool>,
    /// Files the checks uploaded and could not remove.
    pub left_behind: Vec<String>,
}

impl Facts {
    /// Whether FEAT lists this feature (a line starting with it).
    pub fn has_feature(&self, name: &str) -> bool {
        let name = name.to_ascii_uppercase();
        self.feat.iter().any(|f| {
            f == &name || f.starts_with(&format!("{name} ")) || f.starts_with(&format!("{name};"))
        })
    }
}

/// A logged-in, protected control connection with its own session store,
/// PBSZ 0, PROT P and TYPE I sent.
#[derive(Debug)]
pub struct Session {
    /// The control connection.
    pub conn: Conn,
    /// Its TLS sessions (the data connections resume them).
    pub store: Arc<ProbeStore>,
    /// The versions it offered.
    pub versions: Versions,
}

/// The context of one check.
#[derive(Debug)]
pub struct Ctx {
    /// The environment.
    pub env: Arc<Env>,
    /// The facts so far.
    pub facts: Facts,
    /// This check's evidence.
    pub rec: Recorder,
    conns: u32,
    datas: u32,
}

impl Ctx {
    /// A context for one check.
    pub fn new(env: Arc<Env>, facts: Facts) -> Ctx {
        Ctx {
            env,
            facts,
            rec: Recorder::new(),
            conns: 0,
            datas: 0,
        }
    }

    /// Record a note of the check.
    pub fn note(&self, text: impl AsRef<str>) {
        self.rec.note(text);
    }

    /// The next data connection's label (`d1`, `d2`, …).
    pub fn data_label(&mut self) -> String {
        self.datas += 1;
        format!("d{}", self.datas)
    }

    /// The next control connection's label (`c1`, `c2`, …).
    pub fn conn_label(&mut self) -> String {
        self.conns += 1;
        format!("c{}", self.conns)
    }

    /// A TCP connection to an endpoint, nothing read yet.
    pub async fn tcp(&mut self, endpoint: Endpoint) -> Result<Conn, ProbeError> {
        let addr = self
            .env
            .addr(endpoint)
            .ok_or_else(|| ProbeError::Local("no address for this endpoint".into()))?;
        let label = self.conn_label();
        Conn::connect(addr, label, self.rec.clone(), self.env.limits.reply).await
    }

    /// Connected and greeted: on an explicit endpoint in plaintext, on an
    /// implicit one after the TLS handshake (with `store` for sessions).
    pub async fn greeted(
        &mut self,
        endpoint: Endpoint,
        versions: Versions,
        store: &Arc<ProbeStore>,
    ) -> Result<Conn, ProbeError> {
        let mut conn = self.tcp(endpoint).await?;
        if self.env.is_implicit(endpoint) {
            let config = self.env.tls.config(versions, Some(store));
            conn.start_tls(config, self.env.tls.name.clone()).await?;
        }
        greeting(&mut conn).await?;
        Ok(conn)
    }

    /// Connected, greeted and protected: AUTH TLS and the handshake on an
    /// explicit endpoint, the implicit handshake otherwise.
    pub async fn secured(
        &mut self,
        endpoint: Endpoint,
        versions: Versions,
        store: &Arc<ProbeStore>,
    ) -> Result<Conn, ProbeError> {
        let mut conn = self.greeted(endpoint, versions, store).await?;
        if !conn.is_tls() {
            let reply = conn.cmd("AUTH TLS").await?;
            if reply.code != 234 {
                return Err(refused("AUTH TLS", &reply));
            }
            let config = self.env.tls.config(versions, Some(store));
            conn.start_tls(config, self.env.tls.name.clone()).await?;
        }
        Ok(conn)
    }

    /// A logged-in session on the URL's endpoint with PBSZ 0, PROT P and TYPE I.
    pub async fn session(&mut self, versions: Versions) -> Result<Session, ProbeError> {
        self.session_at(Endpoint::Main, versions).await
    }

    /// A logged-in session on an endpoint with PBSZ 0, PROT P and TYPE I.
    pub async fn session_at(
        &mut self,
        endpoint: Endpoint,
        versions: Versions,
    ) -> Result<Session, ProbeError> {
        let store = ProbeStore::new();
        let mut conn = self.secured(endpoint, versions, &store).await?;
        login(&mut conn, &self.env.user, &self.env.password).await?;
        conn.cmd_ok("PBSZ 0").await?;
        conn.cmd_ok("PROT P").await?;
        // Files are compared byte for byte: no line-end conversion.
        conn.cmd_ok("TYPE I").await?;
        Ok(Session {
            conn,
            store,
            versions,
        })
    }

    /// A passive transfer on a session, the data connection resuming the
    /// session's own TLS session (the normal, conforming case).
    pub async fn own_transfer(
        &mut self,
        session: &mut Session,
        command: &str,
        direction: Direction<'_>,
    ) -> Result<Transfer, ProbeError> {
        let config = self.env.tls.config(session.versions, Some(&session.store));
        self.transfer_with(session, command, DataTls::With(config), direction)
            .await
    }

    /// A passive transfer with a data connection TLS of the check's choice.
    pub async fn transfer_with(
        &mut self,
        session: &mut Session,
        command: &str,
        tls: DataTls,
        direction: Direction<'_>,
    ) -> Result<Transfer, ProbeError> {
        let label = self.data_label();
        passive_transfer(
            &mut session.conn,
            command,
            &tls,
            direction,
            self.env.tls.name.clone(),
            &label,
        )
        .await
    }

    /// A fresh name for a file the check uploads.
    pub fn scratch_name(&self, what: &str) -> String {
        let tag: u32 = rand::random();
        format!("ftps-check-{tag:08x}-{what}.bin")
    }

    /// Delete an uploaded file on a new session (whatever state the
    /// check's own connection is in); a file already gone (550) is fine, any
    /// other failure is remembered for the report.
    pub async fn remove_fresh(&mut self, path: &str) {
        let removed = match self.session(Versions::Any).await {
            Ok(mut s) => {
                let reply = s.conn.cmd(&format!("DELE {path}")).await;
                s.conn.quit().await;
                matches!(reply, Ok(r) if r.is_completion() || r.code == 550)
            }
            Err(_) => false,
        };
        if !removed {
            self.facts.left_behind.push(path.to_string());
        }
    }

    /// Delete an uploaded file; a failure is remembered for the report.
    pub async fn remove(&mut self, conn: &mut Conn, path: &str) {
        match conn.cmd(&format!("DELE {path}")).await {
            Ok(r) if r.is_completion() => {}
            _ => self.facts.left_behind.push(path.to_string()),
        }
    }
}

/// Read the greeting: 220 (after any 120).
pub async fn greeting(conn: &mut Conn) -> Result<Reply, ProbeError> {
    loop {
        let reply = conn.reply().await?;
        match reply.code {
            220 => return Ok(reply),
            120 => continue,
            _ => return Err(refused("greeting", &reply)),
        }
    }
}

/// USER / PASS (232 when a certificate suffices, RFC 4217 §12.2).
pub async fn login(conn: &mut Conn, user: &str, password: &str) -> Result<Reply, ProbeError> {
    let reply = conn.cmd(&format!("USER {user}")).await?;
    match reply.code {
        230 | 232 => return Ok(reply),
        331 => {}
        _ => return Err(refused("USER", &reply)),
    }
    let reply = conn.cmd(&format!("PASS {password}")).await?;
    match reply.code {
        230 | 202 => Ok(reply),
        _ => Err(refused("PASS", &reply)),
    }
}

/// FEAT lines (RFC 2389 §3), trimmed and upper-cased; empty when refused.
pub async fn feat(conn: &mut Conn) -> Result<(Reply, Vec<String>), ProbeError> {
    let reply = conn.cmd("FEAT").await?;
    let lines = if reply.code == 211 && reply.lines.len() > 2 {
        reply.lines[1..reply.lines.len() - 1]
            .iter()
            .map(|l| String::from_utf8_lossy(l).trim().to_ascii_uppercase())
            .collect()
    } else {
        Vec::new()
    };
    Ok((reply, lines))
}

/// `CODE text`, or what happened instead of a reply.
pub fn shown(reply: &Result<Reply, ProbeError>) -> String {
    match reply {
        Ok(r) => line_of(r),
        Err(e) => e.to_string(),
    }
}
