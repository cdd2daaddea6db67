//! `ftps-check`: audit any FTPS server against RFC 4217, RFC 2228, the
//! draft RFC 4217 grew from, and its security (RFC 2577 and known bug
//! classes) — the engine behind `ftps check`.
//!
//! [`run`] logs in once (the preflight: if that fails the audit cannot run,
//! exit code 2), then runs every check of the [`catalog`] in order. Each
//! check opens its own connections, records what it sent and received
//! ([`evidence`]), and ends with a [`report::Verdict`] and a one-line
//! summary; the whole is a [`report::Report`], printed for a terminal by
//! [`render`] or as JSON in the schema [`SCHEMA`].
//!
//! The checker is a client only (it never imports the server crate); its
//! probing pieces are in [`probe`]: raw control and data connections, TLS
//! configurations whose session stores it controls, and ClientHellos rustls
//! cannot send.
//!
//! ```no_run
//! # async fn example() {
//! let mut options = ftps_check::Options::new("ftp.example.com", 21, "alice", "secret");
//! options.read_only = true;
//! let report = ftps_check::run(options).await;
//! println!("{}", ftps_check::render::terminal(&report, false, false));
//! std::process::exit(report.exit_code);
//! # }
//! ```

pub mod catalog;
pub mod check;
pub mod checks;
pub mod context;
pub mod evidence;
mod preflight;
pub mod probe;
pub mod render;
pub mod report;

use std::time::Duration;

pub use ftps_client::TlsOptions;
pub use ftps_proto::client::Security;

/// The JSON Schema (draft 2020-12) of the JSON report.
pub const SCHEMA: &str = include_str!("../report.schema.json");

/// What to audit and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Host name or address.
    pub host: String,
    /// Control port.
    pub port: u16,
    /// Explicit (`ftp://`) or implicit (`ftps://`).
    pub security: Security,
    /// The URL as given, without its password (for the report).
    pub url: String,
    /// The account.
    pub user: String,
    /// Its password.
    pub password: String,
    /// How the server is trusted (`--cacert`, `--pin`, `--insecure`) and the
    /// client certificate, as for the other client commands.
    pub tls: TlsOptions,
    /// Also check this implicit FTPS port (with an explicit URL).
    pub implicit_port: Option<u16>,
    /// Also check this explicit FTPS port (with an implicit URL).
    pub explicit_port: Option<u16>,
    /// Create nothing on the server.
    pub read_only: bool,
    /// The directory the upload checks may write to (they remove what they create).
    pub dir: Option<String>,
    /// Only the checks whose identifier starts with one of these.
    pub only: Vec<String>,
    /// Limit on connecting, a handshake and each reply.
    pub timeout: Duration,
}

impl Options {
    /// Explicit FTPS on `host:port` as `user`, verifying against the system roots.
    pub fn new(host: &str, port: u16, user: &str, password: &str) -> Options {
        Options {
            host: host.to_string(),
            port,
            security: Security::Explicit,
            url: format!("ftp://{user}@{host}:{port}/"),
            user: user.to_string(),
            password: password.to_string(),
            tls: TlsOptions::default(),
            implicit_port: None,
            explicit_port: None,
            read_only: false,
            dir: None,
            only: Vec::new(),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Run the audit.
pub async fn run(options: Options) -> report::Report {
    preflight::audit(options).await
}

/// The checks that would run (for `--list` and the documentation).
pub fn catalogue() -> Vec<catalog::Check> {
    catalog::all()
}
