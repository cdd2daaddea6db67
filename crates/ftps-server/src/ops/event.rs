//! The one event type of the server's operation: a login, a transfer's end,
//! a file-system change, a ban. Each comes from one place (the control
//! task's login, the end of a transfer, a file-system request) and is fanned
//! out to the metrics, the audit log and the hooks ([`super::Ops::emit`]).
//!
//! Its JSON form ([`Event::to_json`]) has fixed keys — every key on every
//! line, `null` where it does not apply — documented in docs/operations.md.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A user logged in.
    Login,
    /// A login failed (wrong password, unknown user, refused address).
    LoginFailed,
    /// A logged-in user logged out or the connection ended.
    Logout,
    /// STOR, STOU, APPE ended.
    Upload,
    /// RETR ended.
    Download,
    /// DELE.
    Delete,
    /// RNFR/RNTO.
    Rename,
    /// MKD.
    Mkdir,
    /// RMD.
    Rmdir,
    /// Too many failed logins banned an address.
    Ban,
}

impl EventKind {
    /// The value of the `event` key.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Login => "login",
            EventKind::LoginFailed => "login_failed",
            EventKind::Logout => "logout",
            EventKind::Upload => "upload",
            EventKind::Download => "download",
            EventKind::Delete => "delete",
            EventKind::Rename => "rename",
            EventKind::Mkdir => "mkdir",
            EventKind::Rmdir => "rmdir",
            EventKind::Ban => "ban",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Done (an upload: committed).
    Ok,
    /// Refused or failed.
    Failed,
    /// Stopped by ABOR.
    Aborted,
}

impl Outcome {
    /// The value of the `outcome` key.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Aborted => "aborted",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened (for a transfer: when it ended).
    pub time: SystemTime,
    /// What happened.
    pub kind: EventKind,
    /// The control connection it happened on (numbered from 1 per start).
    pub session: u64,
    /// The user (for a failed login: the name given).
    pub user: Option<String>,
    /// The client's address.
    pub remote: IpAddr,
    /// The path in the user's name space.
    pub path: Option<String>,
    /// A rename's new path.
    pub target: Option<String>,
    /// Bytes moved (transfers).
    pub bytes: Option<u64>,
    /// How long it took (transfers).
    pub seconds: Option<f64>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed.
    pub error: Option<String>,
    /// TLS version of the connection that carried it (the data connection
    /// for a transfer, the control connection otherwise); `None`: plaintext.
    pub tls_version: Option<&'static str>,
    /// Whether a transfer's data connection resumed the TLS session.
    pub resumed: Option<bool>,
    /// TYPE I (true) or TYPE A, for the xferlog.
    pub binary: bool,
    /// The anonymous account, for the xferlog.
    pub anonymous: bool,
    /// The user's root directory, for hooks (not in the JSON).
    pub root: Option<PathBuf>,
}

impl Event {
    /// An event of `kind` in `session` from `remote`, now, with nothing else known.
    pub fn new(kind: EventKind, session: u64, remote: IpAddr) -> Event {
        Event {
            time: SystemTime::now(),
            kind,
            session,
            user: None,
            remote: remote.to_canonical(),
            path: None,
            target: None,
            bytes: None,
            seconds: None,
            outcome: Outcome::Ok,
            error: None,
            tls_version: None,
            resumed: None,
            binary: true,
            anonymous: false,
            root: None,
        }
    }

    /// The time as RFC 3339 UTC with milliseconds.
    pub fn time_rfc3339(&self) -> String {
        let time = time::OffsetDateTime::from(self.time);
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        time.format(&format).unwrap_or_default()
    }

    /// One JSON object with the fixed keys, without a line end.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            time: String,
            event: &'static str,
            session: u64,
            user: Option<&'a str>,
            remote: String,
            path: Option<&'a str>,
            target: Option<&'a str>,
            bytes: Option<u64>,
            seconds: Option<f64>,
            outcome: &'static str,
            error: Option<&'a str>,
            tls_version: Option<&'static str>,
            resumed: Option<bool>,
        }
        let line = Line {
            time: self.time_rfc3339(),
            event: self.kind.name(),
            session: self.session,
            user: self.user.as_deref(),
            remote: self.remote.to_string(),
            path: self.path.as_deref(),
            target: self.target.as_deref(),
            bytes: self.bytes,
            seconds: self.seconds.map(|s| (s * 1000.0).round() / 1000.0),
            outcome: self.outcome.name(),
            error: self.error.as_deref(),
            tls_version: self.tls_version,
            resumed: self.resumed,
        };
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// Set the transfer's duration.
    pub fn took(mut self, duration: Duration) -> Event {
        self.seconds = Some(duration.as_secs_f64());
        self
    }
}

/// A TLS version as the metrics and the audit log name it.
pub fn tls_version_name(conn: &rustls::CommonState) -> &'static str {
    match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        Some(_) => "other",
        None => "none",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_every_key_with_null_where_it_does_not_apply() {
        let mut event = Event::new(EventKind::Login, 7, "::ffff:192.0.2.1".parse().unwrap());
        event.time = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        event.user = Some("alice".into());
        event.tls_version = Some("TLSv1.3");
        let value: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "bytes",
                "error",
                "event",
                "outcome",
                "path",
                "remote",
                "resumed",
                "seconds",
                "session",
                "target",
                "time",
                "tls_version",
                "user"
            ]
        );
        assert_eq!(value["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(value["event"], "login");
        assert_eq!(value["remote"], "192.0.2.1");
        assert_eq!(value["path"], serde_json::Value::Null);
        assert_eq!(value["outcome"], "ok");
    }
}
