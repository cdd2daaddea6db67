//! `[metrics]`, `[audit]` and `[hooks]`: what the server tells its operator.
//!
//! The metrics endpoint is off by default and listens on the loopback
//! address when turned on; the audit log and the hooks are off until a file
//! or a command/URL is named. Webhooks are HTTPS only, with the server's
//! certificate verified.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

/// Default address of the metrics endpoint once enabled.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9775);
/// Default events queued for the hooks at most.
pub const DEFAULT_HOOK_QUEUE: usize = 1024;
/// Default hooks run at once.
pub const DEFAULT_HOOK_WORKERS: usize = 4;
/// Default time one hook run (command or POST) may take.
pub const DEFAULT_HOOK_TIMEOUT_SECS: u64 = 30;
/// Default further attempts after a failed POST.
pub const DEFAULT_HOOK_RETRIES: u32 = 3;

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serve `GET /metrics` and `GET /healthz`. Default false.
    pub enabled: bool,
    /// Where. Default `127.0.0.1:9775`.
    pub listen: SocketAddr,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: false,
            listen: DEFAULT_METRICS_LISTEN,
        }
    }
}

/// `[audit]`: one line per event, as JSON and/or in the xferlog format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// JSON lines appended to this file (reopened on SIGHUP).
    pub file: Option<PathBuf>,
    /// JSON lines to standard output as well. Default false.
    pub stdout: bool,
    /// Transfers (and deletions) in the xferlog format of wu-ftpd, vsftpd
    /// and ProFTPD, appended to this file (reopened on SIGHUP).
    pub xferlog: Option<PathBuf>,
}

impl AuditSection {
    /// Whether any audit output is configured.
    pub fn enabled(&self) -> bool {
        self.file.is_some() || self.stdout || self.xferlog.is_some()
    }
}

/// Events a hook can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    /// A committed upload.
    Upload,
    /// A completed download.
    Download,
    /// DELE.
    Delete,
    /// RNFR/RNTO.
    Rename,
    /// MKD.
    Mkdir,
    /// RMD.
    Rmdir,
    /// A successful login.
    Login,
    /// A failed login.
    LoginFailed,
}

impl HookEvent {
    /// Every event a hook can run on.
    pub const ALL: [HookEvent; 8] = [
        HookEvent::Upload,
        HookEvent::Download,
        HookEvent::Delete,
        HookEvent::Rename,
        HookEvent::Mkdir,
        HookEvent::Rmdir,
        HookEvent::Login,
        HookEvent::LoginFailed,
    ];
}

/// `[hooks]`: a command and/or an HTTPS POST per event, off the transfer path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksSection {
    /// The program and its arguments (no shell), run with the event as
    /// JSON on standard input. Default: none.
    pub command: Vec<String>,
    /// An `https://` URL the event is POSTed to as JSON. Default: none.
    pub url: Option<String>,
    /// A PEM file of CA certificates trusted for `url`, besides the
    /// built-in web roots.
    pub ca_file: Option<PathBuf>,
    /// Which events run the hooks. Default: all of them.
    pub events: Vec<HookEvent>,
    /// Events waiting for a hook at most; more are dropped (counted, logged).
    pub queue: usize,
    /// Hooks running at once.
    pub workers: usize,
    /// Seconds one run may take (the command is killed after it).
    pub timeout_secs: u64,
    /// Further POST attempts after a failure (not for the command).
    pub retries: u32,
}

impl Default for HooksSection {
    fn default() -> Self {
        HooksSection {
            command: Vec::new(),
            url: None,
            ca_file: None,
            events: HookEvent::ALL.to_vec(),
            queue: DEFAULT_HOOK_QUEUE,
            workers: DEFAULT_HOOK_WORKERS,
            timeout_secs: DEFAULT_HOOK_TIMEOUT_SECS,
            retries: DEFAULT_HOOK_RETRIES,
        }
    }
}

impl HooksSection {
    /// Whether a command or a URL is configured.
    pub fn enabled(&self) -> bool {
        !self.command.is_empty() || self.url.is_some()
    }
}
