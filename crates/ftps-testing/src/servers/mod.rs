//! Real third-party FTPS servers (vsftpd, ProFTPD, Pure-FTPd) for interop
//! tests:
//!
//! ```ignore
//! use ftps_testing::servers::{self, Kind};
//!
//! let Some(server) = servers::start(Kind::Proftpd) else { return };
//! ```
//!
//! [`start`] starts one private instance: its own temporary directory
//! (configuration, certificate, logs), its own writable root directory, a
//! free control port on 127.0.0.1 and its own passive port range, and it
//! returns once the server has sent its `220` greeting. Dropping the
//! [`ExternalServer`] kills the server's processes and removes the
//! directory. It returns `None` (the test should return early) when the
//! servers are not installed or this is not root, and panics instead when
//! `CI=true` (or `CI=1`). Install them with `sh scripts/install-test-servers.sh`
//! (root).
//!
//! What each server offers (more in `README.md` next to this file: how each
//! is installed, configured and logged in, and the known problems of curl
//! 7.88 with them):
//!
//! | server    | explicit `port`        | `implicit_port` | `ccc_port`             | session reuse required |
//! |-----------|------------------------|-----------------|------------------------|------------------------|
//! | vsftpd    | TLS for login and data | second process  | none (no CCC command)  | yes (`require_ssl_reuse`) |
//! | ProFTPD   | `TLSRequired on`       | second vhost    | vhost, `TLSRequired auth+data` | yes (mod_tls default) |
//! | Pure-FTPd | `-Y 3`                 | none            | same as `port`         | no                     |
//!
//! ProFTPD also has a `client_cert_port`: an explicit FTPS vhost with
//! `TLSVerifyClient on` that trusts a CA made for the instance
//! ([`ClientPki`]: the CA and one client certificate it signed).
//!
//! All negotiate TLS 1.2 and TLS 1.3, and accept active mode (PORT/EPRT).
//! The servers run as root (they switch to the test user per session), so
//! the tests must run as root too. The configuration templates
//! (`vsftpd.conf.in`, `proftpd.conf.in`) are compiled in.
//!
//! The harness, one file per concern: this file ([`Kind`], [`start`], the
//! checks that the servers are installed), `server.rs` (the running
//! [`ExternalServer`] and how one is started), `instance.rs` (an instance's
//! directory, root and account before it runs), `ports.rs` (control and
//! passive ports), `pki.rs` (certificates, [`ClientPki`], password hashes),
//! `files.rs` (configuration templates and the files of an instance),
//! `process.rs` (spawning, readiness, logs, stopping), and one file per
//! server with what only it needs (`vsftpd.rs`, `proftpd.rs`,
//! `pure_ftpd.rs`).

mod error;
mod files;
mod instance;
mod pki;
mod ports;
mod process;
mod proftpd;
mod pure_ftpd;
mod server;
mod vsftpd;

use std::fs;
use std::path::PathBuf;

pub use pki::ClientPki;
pub use server::ExternalServer;

pub(crate) use ports::pasv_range;

use error::StartError;

/// Where scripts/install-test-servers.sh puts things, unless
/// `FTPS_TEST_SERVERS_DIR` says otherwise (for both).
pub const DEFAULT_PREFIX: &str = "/opt/ftps-test-servers";
/// The system user the servers log the tests in as.
pub const TEST_USER: &str = "ftpstest";
/// Starts tried (fresh ports each time) before giving up on a server that
/// could not bind its ports.
const START_ATTEMPTS: usize = 5;

const INSTALL_HINT: &str = "install them with `sh scripts/install-test-servers.sh` (as root)";

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// vsftpd 3 (`/usr/sbin/vsftpd`).
    Vsftpd,
    /// ProFTPD 1.3 with mod_tls.
    Proftpd,
    /// Pure-FTPd 1.0.
    PureFtpd,
}

impl Kind {
    /// The three servers.
    pub const ALL: [Kind; 3] = [Kind::Vsftpd, Kind::Proftpd, Kind::PureFtpd];

    /// Short lowercase name: `vsftpd`, `proftpd`, `pure-ftpd`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vsftpd => "vsftpd",
            Kind::Proftpd => "proftpd",
            Kind::PureFtpd => "pure-ftpd",
        }
    }

    /// Whether `start` gives this server an implicit-FTPS port.
    pub fn has_implicit(self) -> bool {
        !matches!(self, Kind::PureFtpd)
    }

    /// Whether the server refuses a data connection whose TLS session does
    /// not resume the control connection's session.
    pub fn requires_session_reuse(self) -> bool {
        !matches!(self, Kind::PureFtpd)
    }

    /// The server's main binary.
    pub fn binary(self) -> PathBuf {
        match self {
            Kind::Vsftpd => vsftpd::binary(),
            Kind::Proftpd => proftpd::binary(),
            Kind::PureFtpd => pure_ftpd::binary(),
        }
    }

    /// Everything else the server needs from the install script.
    fn required_files(self) -> Vec<PathBuf> {
        let mut files = vec![self.binary(), password_file()];
        match self {
            Kind::Vsftpd => files.push(vsftpd::pam_service_file()),
            Kind::Proftpd => files.push(proftpd::module_dir().join("mod_tls.so")),
            Kind::PureFtpd => files.push(pure_ftpd::pure_pw()),
        }
        files
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How an instance is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// The interop configuration described above.
    #[default]
    Interop,
    /// The most secure configuration each server offers, for the audit
    /// tests of `ftps check`: the interop one with TLS 1.0 switched off
    /// where the server has a switch for it (vsftpd `ssl_tlsv1=NO`), only
    /// forward-secret AEAD cipher suites for TLS 1.2 (ECDHE-ECDSA with
    /// AES-GCM or ChaCha20-Poly1305: the instance key is P-256), vsftpd's
    /// `strict_ssl_read_eof`/`strict_ssl_write_shutdown` (uploads end with
    /// close_notify), ProFTPD's `TLSRenegotiate none` and server cipher
    /// preference.
    MostSecure,
}

/// The TLS 1.2 cipher list of [`Profile::MostSecure`] (OpenSSL names).
pub const MOST_SECURE_CIPHERS: &str =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305";

/// Starts a private instance of `kind`; see the module docs. `None` (with a
/// note on stderr) when the server is not installed or this is not root;
/// with `CI=true` that panics instead.
pub fn start(kind: Kind) -> Option<ExternalServer> {
    start_with(kind, Profile::Interop)
}

/// [`start`] with a configuration profile.
pub fn start_with(kind: Kind, profile: Profile) -> Option<ExternalServer> {
    if let Err(why) = check_installed(kind) {
        let msg = format!("{kind} is not available: {why}; {INSTALL_HINT}");
        if in_ci() {
            panic!("{msg} (CI=true: not skipping)");
        }
        eprintln!("skipping: {msg}");
        return None;
    }
    let mut last_error = String::new();
    for attempt in 1..=START_ATTEMPTS {
        match server::try_start(kind, profile) {
            Ok(server) => return Some(server),
            Err(StartError::Retry(why)) => {
                eprintln!("{kind}: start attempt {attempt} failed, retrying on other ports: {why}");
                last_error = why;
            }
            Err(StartError::Fatal(why)) => panic!("{kind} failed to start: {why}"),
        }
    }
    panic!("{kind} failed to start {START_ATTEMPTS} times; last: {last_error}");
}

/// Where the unpacked servers and the password file are.
pub fn prefix() -> PathBuf {
    std::env::var_os("FTPS_TEST_SERVERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PREFIX))
}

fn password_file() -> PathBuf {
    prefix().join(format!("{TEST_USER}.password"))
}

/// Whether a missing server or client must fail the test instead of
/// skipping it: `CI=true` or `CI=1`.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

fn check_installed(kind: Kind) -> Result<(), String> {
    for file in kind.required_files() {
        if !file.exists() {
            return Err(format!("{} is missing", file.display()));
        }
    }
    for tool in ["openssl", "kill"] {
        if !on_path(tool) {
            return Err(format!("`{tool}` is not on PATH"));
        }
    }
    if system_user(TEST_USER).is_none() {
        return Err(format!("there is no system user {TEST_USER}"));
    }
    if !is_root() {
        return Err("the servers must be started as root".to_string());
    }
    Ok(())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

fn is_root() -> bool {
    // std has no geteuid; /proc/self/status has "Uid: real effective ...".
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// `(uid, gid)` of a user in /etc/passwd.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 4 && fields[0] == name {
            Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
        } else {
            None
        }
    })
}
