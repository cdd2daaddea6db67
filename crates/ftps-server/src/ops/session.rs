//! The events of one control connection, made in one place each: the
//! control task reports logins, failed logins, bans, logouts and file-system
//! commands ([`SessionEvents`]), the transfer task the end of each transfer
//! ([`SessionEvents::transfer_done`]), which also counts the data
//! connections refused with 522 by reason.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::command::TransferType;
use ftps_proto::session::{FsRequest, FsResponse, TransferKind, TransferOutcome, TransferRequest};

use super::event::{Event, EventKind, Outcome};
use super::Ops;

/// Who the session is, for its events. Cheap to clone (a transfer takes a
/// copy). Without [`Ops`] (`Default`) it reports nothing.
#[derive(Debug, Clone, Default)]
pub struct SessionEvents {
    ops: Option<Arc<Ops>>,
    session: u64,
    remote: Option<IpAddr>,
    user: Option<String>,
    anonymous: bool,
    root: Option<PathBuf>,
}

/// The reason a transfer's data connection was refused with 522, if it was.
pub fn refused_reason(outcome: &TransferOutcome) -> Option<&'static str> {
    match outcome {
        TransferOutcome::SessionReuseRequired(reason) => Some(reason.key()),
        TransferOutcome::TlsFailed => Some("tls-failed"),
        _ => None,
    }
}

impl SessionEvents {
    /// The events of session number `session` from `remote`.
    pub fn new(ops: Arc<Ops>, session: u64, remote: IpAddr) -> SessionEvents {
        SessionEvents {
            ops: Some(ops),
            session,
            remote: Some(remote.to_canonical()),
            ..SessionEvents::default()
        }
    }

    /// The session's number (in the audit log's `session` key).
    pub fn session(&self) -> u64 {
        self.session
    }

    fn event(&self, kind: EventKind) -> Option<(&Ops, Event)> {
        let ops = self.ops.as_deref()?;
        let remote = self.remote?;
        let mut event = Event::new(kind, self.session, remote);
        event.user.clone_from(&self.user);
        event.anonymous = self.anonymous;
        event.root.clone_from(&self.root);
        Some((ops, event))
    }

    /// The server's metrics, if any.
    pub fn metrics(&self) -> Option<&super::Metrics> {
        self.ops.as_deref().map(|ops| ops.metrics.as_ref())
    }

    /// `user` logged in, over `tls` (the control connection's version);
    /// `root` is the user's directory on the local disk (none for the
    /// object store).
    pub fn logged_in(
        &mut self,
        user: &str,
        anonymous: bool,
        root: Option<PathBuf>,
        tls: Option<&'static str>,
    ) {
        self.user = Some(user.to_owned());
        self.anonymous = anonymous;
        self.root = root;
        if let Some((ops, mut event)) = self.event(EventKind::Login) {
            event.tls_version = tls;
            ops.emit(event);
        }
    }

    /// A login as `name` failed, for `error`.
    pub fn login_failed(&self, name: &str, error: &str, tls: Option<&'static str>) {
        if let Some((ops, mut event)) = self.event(EventKind::LoginFailed) {
            event.user = Some(name.to_owned());
            event.outcome = Outcome::Failed;
            event.error = Some(error.to_owned());
            event.tls_version = tls;
            ops.emit(event);
        }
    }

    /// The client's address was banned (after a failed login as `name`).
    pub fn banned(&self, name: &str) {
        if let Some((ops, mut event)) = self.event(EventKind::Ban) {
            event.user = Some(name.to_owned());
            ops.emit(event);
        }
    }

    /// The user logged out (REIN, a new USER, the connection's end).
    pub fn logged_out(&mut self) {
        if self.user.is_none() {
            return;
        }
        if let Some((ops, event)) = self.event(EventKind::Logout) {
            ops.emit(event);
        }
        self.user = None;
        self.anonymous = false;
        self.root = None;
    }

    /// A file-system command was carried out (MKD, RMD, DELE, RNFR/RNTO);
    /// other requests make no event.
    pub fn fs(&self, request: &FsRequest, response: &FsResponse) {
        let (kind, path, target) = match request {
            FsRequest::MakeDir(path) => (EventKind::Mkdir, path, None),
            FsRequest::RemoveDir(path) => (EventKind::Rmdir, path, None),
            FsRequest::Delete(path) => (EventKind::Delete, path, None),
            FsRequest::Rename { from, to } => (EventKind::Rename, from, Some(to)),
            // Reads and MFMT make no event.
            _ => return,
        };
        if let Some((ops, mut event)) = self.event(kind) {
            event.path = Some(path.to_string_lossy());
            event.target = target.map(|t| t.to_string_lossy());
            if let FsResponse::Failed(error) = response {
                event.outcome = Outcome::Failed;
                event.error = Some(error.to_string());
            }
            ops.emit(event);
        }
    }

    /// A transfer ended: an upload or download event, or (listings) the
    /// transfer metrics; and the 522 refusals by reason. `unique_name` is
    /// the name STOU chose in the request's directory.
    pub fn transfer_done(
        &self,
        request: &TransferRequest,
        unique_name: Option<&[u8]>,
        outcome: &TransferOutcome,
        bytes: u64,
        took: Duration,
        tls: Option<(&'static str, bool)>,
    ) {
        let Some(ops) = self.ops.as_deref() else {
            return;
        };
        if let Some(reason) = refused_reason(outcome) {
            ops.metrics
                .data_refused
                .get_or_create(&[("reason", reason)])
                .inc();
        }
        let (result, error) = match outcome {
            TransferOutcome::Complete { .. } => (Outcome::Ok, None),
            TransferOutcome::Aborted => (Outcome::Aborted, Some("aborted".to_owned())),
            other => (Outcome::Failed, Some(describe_failure(other))),
        };
        let (kind, path) = match &request.kind {
            TransferKind::Retrieve { path, .. } => (EventKind::Download, path),
            TransferKind::Store { path, .. } => (EventKind::Upload, path),
            TransferKind::List { .. } => {
                ops.metrics.transfer("listing", result, bytes);
                return;
            }
        };
        let stored = unique_name.and_then(|name| path.join(name).ok());
        if let Some((ops, mut event)) = self.event(kind) {
            event.path = Some(stored.as_ref().unwrap_or(path).to_string_lossy());
            event.bytes = Some(bytes);
            event.seconds = Some(took.as_secs_f64());
            event.outcome = result;
            event.error = error;
            event.binary = request.transfer_type == TransferType::Image;
            if let Some((version, resumed)) = tls {
                event.tls_version = Some(version);
                event.resumed = Some(resumed);
            }
            ops.emit(event);
        }
    }
}

/// Why a transfer failed, in a few words.
fn describe_failure(outcome: &TransferOutcome) -> String {
    match outcome {
        TransferOutcome::OpenFailed(error) => format!("refused: {error}"),
        TransferOutcome::DataConnectionFailed => "no data connection".into(),
        TransferOutcome::TlsFailed => "data connection TLS failed".into(),
        TransferOutcome::SessionReuseRequired(reason) => {
            format!("data connection refused: {}", reason.key())
        }
        TransferOutcome::Stalled => "stalled".into(),
        TransferOutcome::NoCloseNotify => "no TLS close_notify (possibly truncated)".into(),
        TransferOutcome::ConnectionLost => "data connection lost".into(),
        TransferOutcome::StorageFailed(error) => format!("storage: {error}"),
        TransferOutcome::Aborted => "aborted".into(),
        TransferOutcome::Complete { .. } => String::new(),
    }
}
