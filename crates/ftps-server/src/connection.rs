//! One control connection: the task that owns it, reads commands, feeds the
//! sans-IO [`ServerSession`] and carries out its actions. By design it is the
//! only task per control connection and the only writer of its replies, so
//! replies leave in command order, and it never awaits a transfer inline.
//!
//! Security-relevant I/O lives here: the AUTH TLS upgrade refuses plaintext
//! pipelined after the AUTH line (STARTTLS command injection), tells a
//! complete TLS failure (unprotected 421) from one mid-handshake (drop) per
//! RFC 4217 §10.1, CCC/REIN send close_notify and continue in plaintext
//! (§5, §13), and every wait is bounded by a timeout.
//!
//! The login and idle deadlines and the count of wrong passwords belong to
//! the session: this task reports received bytes and the ends of transfers,
//! sleeps until `poll_timeout` and hands the wake-up to `handle_timeout`; it
//! reads `login_failures` for the growing delay after a wrong password.
//! Logging in (USER with a certificate, PASS, the user store, bans) is in
//! `connection/login.rs`; the AUTH TLS handshake and CCC/REIN in
//! `connection/protection.rs`; passive ports, transfers and HASH are
//! started in `connection/data.rs`.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ftps_proto::line::{LineError, LineReader};
use ftps_proto::session::{
    Action, DataProtection, FsError, FsRequest, FsResponse, ServerSession, SessionConfig,
    TransferOutcome,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::identity::CertIdentity;
use crate::limits::SessionCount;
use crate::ops::SessionEvents;
use crate::passive::PassivePort;
use crate::proxy::ClientAddress;
use crate::shared::{ListenerKind, Live, Shared};
use crate::storage::Storage;
use crate::stream::ControlStream;
use crate::tls::ConnectionTls;
use crate::transfer::TransferEvent;
use rustls_pki_types::CertificateDer;

mod data;
mod login;
mod protection;

/// Entries STAT <dir> sends over the control connection at most.
pub const MAX_STAT_ENTRIES: usize = 10_000;
/// How long CCC/REIN wait for the client's close_notify.
const CLEAR_TLS_WAIT: Duration = Duration::from_secs(5);
/// Bound on writing one reply.
const REPLY_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The running transfer, seen from the control task.
struct ActiveTransfer {
    events: mpsc::Receiver<TransferEvent>,
    cancel: CancellationToken,
    progress: Arc<AtomicU64>,
}

/// What the loop does after an action.
enum Flow {
    Continue,
    Close,
}

/// Serve one accepted TCP connection until it ends.
///
/// `client` is the real client (see [`crate::proxy`]): its address is the
/// session's peer for every check and log line.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    listener: ListenerKind,
    client: ClientAddress,
) {
    let Ok(local) = tcp.local_addr() else {
        return;
    };
    let peer = client.peer;
    let _ = tcp.set_nodelay(true);
    let implicit = listener.implicit;
    // The configuration this session keeps to its end (a reload applies to
    // new sessions only).
    let live = shared.live();
    let _active = ActiveSession::new(&shared);
    let events = SessionEvents::new(
        Arc::clone(&shared.ops),
        shared.ops.next_session(),
        peer.ip(),
    );
    // The listener's client-certificate setting holds for the control
    // connection and, through `tls`, for every data connection of the session.
    let Some(tls) = live.tls.for_connection(listener.client_certificates) else {
        error!(%peer, client_certificates = %listener.client_certificates, "no TLS configuration for this listener's client-certificate setting");
        return;
    };
    let stream = if implicit {
        let timeout = live.config.server.tls_handshake_timeout();
        match implicit_tls(&shared, &tls, tcp, peer, timeout).await {
            Some(stream) => stream,
            None => return,
        }
    } else {
        ControlStream::Plain(tcp)
    };
    // The listener's own setting applies before login and to users who
    // do not set it themselves.
    let mut policy = live.policy;
    if let Some(accept) = listener.accept_upload_without_close_notify {
        policy.accept_upload_without_close_notify = accept;
    }
    let mut session = ServerSession::new(
        SessionConfig {
            implicit,
            policy,
            anonymous: live.anonymous,
            peer,
            // What the client connected to: decides whether PASV can answer.
            local: client.balancer.unwrap_or(local),
            max_login_failures: live.max_login_failures,
            banner: live.config.server.banner.clone(),
            login_timeout: live.config.server.login_timeout(),
            idle_timeout: live.config.server.idle_timeout(),
        },
        now(),
    );
    let client_cert = stream.tls().and_then(client_certificate);
    session.set_client_certificate(client_cert.is_some());
    let prot_private = session.data_protection() == DataProtection::Private;
    let mut connection = Connection {
        client_cert,
        // The configured limit counts the CRLF; the reader's does not.
        reader: LineReader::new(live.config.server.max_line_bytes.saturating_sub(2)),
        shared,
        live,
        events,
        session_count: None,
        stream,
        session,
        tls,
        peer,
        local,
        balancer: client.balancer.map(|a| a.ip()),
        storage: None,
        account: None,
        user: String::new(),
        passive: None,
        prot_private: Arc::new(AtomicBool::new(prot_private)),
        early_tls_seen: Arc::new(AtomicBool::new(false)),
        transfer: None,
        listener,
    };
    debug!(%peer, implicit, client_certificates = %connection.listener.client_certificates, "control connection opened");
    connection.run().await;
    connection.events.logged_out();
    debug!(%peer, "control connection closed");
}

/// The TLS handshake an implicit FTPS connection starts with (draft
/// "Implicit protection": the client speaks TLS first); `None`: it failed or
/// timed out, and the connection ends.
async fn implicit_tls(
    shared: &Shared,
    tls: &ConnectionTls,
    tcp: TcpStream,
    peer: SocketAddr,
    timeout: std::time::Duration,
) -> Option<ControlStream> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.control));
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => {
            let (version, cipher, _) = crate::tls::describe(stream.get_ref().1);
            debug!(%peer, %version, %cipher, "implicit TLS established");
            control_handshake(shared, stream.get_ref().1);
            Some(ControlStream::Tls(Box::new(stream)))
        }
        Ok(Err(error)) => {
            warn!(%peer, %error, "implicit TLS handshake failed");
            None
        }
        Err(_) => {
            warn!(%peer, "implicit TLS handshake timed out");
            None
        }
    }
}

/// Counts the session in `ftps_sessions_active` while it lives.
struct ActiveSession(Arc<crate::ops::Metrics>);

impl ActiveSession {
    fn new(shared: &Shared) -> ActiveSession {
        shared.ops.metrics.sessions_active.inc();
        ActiveSession(Arc::clone(&shared.ops.metrics))
    }
}

impl Drop for ActiveSession {
    fn drop(&mut self) {
        self.0.sessions_active.dec();
    }
}

/// Count a completed TLS handshake of a control connection.
fn control_handshake(shared: &Shared, conn: &rustls::ServerConnection) {
    let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let version = crate::ops::event::tls_version_name(conn);
    shared
        .ops
        .metrics
        .tls_handshake("control", version, resumed);
}

/// The control connection's verified client certificate and its identity.
type ClientCert = (CertificateDer<'static>, CertIdentity);

fn client_certificate(conn: &rustls::ServerConnection) -> Option<ClientCert> {
    let der = conn.peer_certificates()?.first()?.clone().into_owned();
    let identity = CertIdentity::from_der(&der)?;
    Some((der, identity))
}

struct Connection {
    shared: Arc<Shared>,
    /// The configuration in force when the connection came (see [`crate::reload`]).
    live: Arc<Live>,
    /// The session's events (metrics, audit log, hooks).
    events: SessionEvents,
    /// The logged-in user's place among its sessions.
    session_count: Option<SessionCount>,
    client_cert: Option<ClientCert>,
    stream: ControlStream,
    reader: LineReader,
    session: ServerSession,
    tls: ConnectionTls,
    peer: SocketAddr,
    /// This end of the TCP connection (the node's own address).
    local: SocketAddr,
    /// The balancer's address the client connected to (PROXY protocol).
    balancer: Option<IpAddr>,
    listener: ListenerKind,
    storage: Option<Arc<dyn Storage>>,
    /// The account bound to the session by the login in progress or done.
    account: Option<crate::users::Account>,
    user: String,
    passive: Option<PassivePort>,
    /// PROT P in force (read by the passive port's task, see [`crate::passive`]).
    prot_private: Arc<AtomicBool>,
    /// A data connection of this session started TLS before its transfer
    /// command (see [`crate::passive`]).
    early_tls_seen: Arc<AtomicBool>,
    transfer: Option<ActiveTransfer>,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The time for the session: tokio's clock (so paused-time tests see it move).
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Sleep until the session's next deadline; forever while it has none.
async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}

async fn next_event(transfer: &mut Option<ActiveTransfer>) -> Option<TransferEvent> {
    match transfer {
        Some(t) => t.events.recv().await,
        None => std::future::pending().await,
    }
}

impl Connection {
    async fn run(&mut self) {
        let mut buf = vec![0u8; 4096];
        let (mut shutting_down, mut stopped) = (false, false);
        loop {
            if let Flow::Close = self.execute_actions().await {
                break;
            }
            if self.session.is_closed() {
                break;
            }
            if !self.session.is_waiting() {
                if let Some(line) = self.reader.next_line() {
                    self.handle_line(line);
                    continue;
                }
            }
            let deadline = self.session.poll_timeout();
            tokio::select! {
                biased;
                // A running transfer may finish within the grace period,
                // then its reply and 421; when the grace period ends it is
                // stopped and still answered.
                _ = self.shared.shutdown.cancelled(), if !shutting_down => {
                    shutting_down = true;
                    self.session.handle_shutdown();
                }
                _ = self.shared.stop_now.cancelled(), if shutting_down && !stopped && self.transfer.is_some() => {
                    stopped = true;
                    if let Some(t) = &self.transfer {
                        t.cancel.cancel();
                    }
                }
                event = next_event(&mut self.transfer) => self.handle_transfer_event(event),
                read = self.stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        self.reader.push(buf.get(..n).unwrap_or_default());
                        self.session.handle_input(now());
                    }
                },
                _ = sleep_until(deadline) => self.timed_out(),
            }
        }
        if let Some(transfer) = self.transfer.take() {
            transfer.cancel.cancel();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.stream.shutdown()).await;
    }

    /// The session's deadline came: past it, the session answers 421 and closes.
    fn timed_out(&mut self) {
        let logged_in = self.session.user().is_some();
        self.session.handle_timeout(now());
        if self.session.is_closed() {
            if logged_in {
                info!(peer = %self.peer, "idle timeout");
            } else {
                info!(peer = %self.peer, "login timeout");
            }
        }
    }

    fn handle_line(&mut self, line: Result<Vec<u8>, LineError>) {
        self.session.set_now(now_unix());
        if let Some(t) = &self.transfer {
            self.session
                .set_transfer_progress(t.progress.load(Ordering::Relaxed));
        }
        match line {
            Ok(line) => {
                if tracing::enabled!(tracing::Level::DEBUG) {
                    debug!(peer = %self.peer, command = %masked(&line), "command");
                }
                self.session.handle_line(&line, now());
                self.prot_private.store(
                    self.session.data_protection() == DataProtection::Private,
                    Ordering::Relaxed,
                );
            }
            Err(LineError::TooLong) => {
                warn!(peer = %self.peer, "command line too long");
                self.session.handle_line_too_long();
            }
        }
    }

    fn handle_transfer_event(&mut self, event: Option<TransferEvent>) {
        match event {
            Some(TransferEvent::Started(info)) => self.session.handle_transfer_started(info),
            Some(TransferEvent::Done(outcome)) => {
                self.transfer = None;
                self.session.handle_transfer_done(outcome, now());
            }
            Some(TransferEvent::Hashed(result)) => {
                self.transfer = None;
                self.session.handle_hash_done(result, now());
            }
            None => {
                self.transfer = None;
                let outcome =
                    TransferOutcome::StorageFailed(FsError::Other("transfer task ended".into()));
                self.session.handle_transfer_done(outcome, now());
            }
        }
    }

    async fn execute_actions(&mut self) -> Flow {
        while let Some(action) = self.session.poll_action() {
            if let Flow::Close = self.execute(action).await {
                return Flow::Close;
            }
        }
        Flow::Continue
    }

    async fn execute(&mut self, action: Action) -> Flow {
        match action {
            Action::Reply(reply) => {
                debug!(peer = %self.peer, code = reply.code, text = %reply.text(), "reply");
                let bytes = reply.encode();
                let write = async {
                    self.stream.write_all(&bytes).await?;
                    self.stream.flush().await
                };
                match tokio::time::timeout(REPLY_WRITE_TIMEOUT, write).await {
                    Ok(Ok(())) => Flow::Continue,
                    _ => Flow::Close,
                }
            }
            Action::UpgradeTls => self.upgrade_tls().await,
            Action::ClearTls => self.clear_tls().await,
            Action::Authenticate { user, password } => {
                self.authenticate(user, password).await;
                Flow::Continue
            }
            Action::CheckUser { user } => {
                self.check_user(user).await;
                Flow::Continue
            }
            Action::LoggedIn { grant, method } => {
                self.logged_in(grant.name, method);
                Flow::Continue
            }
            Action::LoggedOut => {
                self.storage = None;
                self.account = None;
                self.user.clear();
                self.session_count = None;
                self.events.logged_out();
                Flow::Continue
            }
            Action::Fs(request) => {
                let response = match &self.storage {
                    Some(storage) => fs_request(storage.as_ref(), request.clone()).await,
                    None => FsResponse::Failed(FsError::PermissionDenied),
                };
                self.events.fs(&request, &response);
                self.session.handle_fs_result(response);
                Flow::Continue
            }
            Action::OpenPassive(kind) => {
                self.open_passive(kind).await;
                Flow::Continue
            }
            Action::ClosePassive => {
                self.passive = None;
                Flow::Continue
            }
            Action::StartTransfer(request) => {
                self.start_transfer(request);
                Flow::Continue
            }
            Action::StartHash(request) => {
                self.start_hash(request);
                Flow::Continue
            }
            Action::AbortTransfer => {
                if let Some(t) = &self.transfer {
                    t.cancel.cancel();
                }
                Flow::Continue
            }
            Action::Close => Flow::Close,
        }
    }
}

/// The command for the debug log, with the password masked.
fn masked(line: &[u8]) -> String {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"PASS") {
        "PASS ****".into()
    } else {
        String::from_utf8_lossy(line).into_owned()
    }
}

async fn fs_request(storage: &dyn Storage, request: FsRequest) -> FsResponse {
    let result = match request {
        FsRequest::Stat(path) => storage.metadata(&path).await.map(FsResponse::Metadata),
        FsRequest::List(path) => match storage.list(&path).await {
            Ok(mut entries) => {
                let mut out = Vec::new();
                let mut failed = None;
                while let Some(entry) = entries.recv().await {
                    match entry {
                        Ok(entry) if out.len() < MAX_STAT_ENTRIES => out.push(entry),
                        Ok(_) => break,
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    Some(e) => Err(e),
                    None => Ok(FsResponse::Entries(out)),
                }
            }
            Err(e) => Err(e),
        },
        FsRequest::MakeDir(path) => storage.create_dir(&path).await.map(|()| FsResponse::Done),
        FsRequest::RemoveDir(path) => storage.remove_dir(&path).await.map(|()| FsResponse::Done),
        FsRequest::Delete(path) => storage.remove_file(&path).await.map(|()| FsResponse::Done),
        FsRequest::Rename { from, to } => {
            storage.rename(&from, &to).await.map(|()| FsResponse::Done)
        }
        FsRequest::SetModified { path, modified } => storage
            .set_modified(&path, modified)
            .await
            .map(|()| FsResponse::Done),
    };
    result.unwrap_or_else(FsResponse::Failed)
}
