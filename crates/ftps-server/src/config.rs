//! The server's TOML configuration file (`ftps serve --config FILE`).
//!
//! This module owns the configuration schema, its defaults and its validation. Every option
//! has a secure default, so an empty file is a valid configuration: listeners on the loopback
//! address only, TLS required before USER/PASS (RFC 4217 §10.1), PROT P required for every
//! data connection and TLS session reuse required on it (RFC 4217 §10.2), CCC refused
//! (RFC 4217 §5), bounded sessions, line length and timeouts, and a delay after each failed
//! login (RFC 2577 §5). Unknown keys are errors (`deny_unknown_fields` everywhere), so a typo
//! never silently falls back to a default.
//!
//! Every error names the file, the line and the dotted key, e.g.
//! `ftps.toml line 12: server.max_sesions: unknown field ...`. Checks that look at more than
//! one value (a certificate without a key, duplicate user names) run after deserialising and
//! give [`ConfigError::Invalid`]; [`parse`] appends the line of the key to their message when
//! it can find it.
//!
//! Relative paths are kept as written; the caller resolves them.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rustls::crypto::aws_lc_rs::{default_provider, ALL_CIPHER_SUITES};
use rustls::crypto::CryptoProvider;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use serde::{Deserialize, Deserializer};

pub use ftps_proto::policy::{AnonymousTls, Policy, PolicyOverride};

/// Default explicit FTPS (AUTH TLS) listener.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(LOCALHOST_V4), 2121);
/// Default implicit FTPS listener.
pub const DEFAULT_IMPLICIT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(LOCALHOST_V4), 2990);
/// Default cap on concurrent control connections.
pub const DEFAULT_MAX_SESSIONS: usize = 512;
/// Default cap on concurrent control connections from one client address.
pub const DEFAULT_MAX_SESSIONS_PER_IP: usize = 32;
/// Default longest accepted command line, CRLF included.
pub const DEFAULT_MAX_LINE_BYTES: usize = 4096;
/// Smallest accepted value of `server.max_line_bytes`.
pub const MIN_MAX_LINE_BYTES: usize = 512;
/// Largest accepted value of `server.max_line_bytes`.
pub const MAX_MAX_LINE_BYTES: usize = 65536;
/// Default idle timeout of a control connection.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 600;
/// Default time allowed from connect to a successful login.
pub const DEFAULT_LOGIN_TIMEOUT_SECS: u64 = 60;
/// Default bound on a TLS handshake (control or data connection).
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECS: u64 = 15;
/// Default time a client has to open a data connection.
pub const DEFAULT_DATA_CONNECT_TIMEOUT_SECS: u64 = 30;
/// Default time a transfer may go without moving a byte.
pub const DEFAULT_TRANSFER_STALL_TIMEOUT_SECS: u64 = 120;
/// Default time running sessions get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;
/// Default delay added after each wrong password (RFC 2577 §5).
pub const DEFAULT_FAILED_LOGIN_DELAY_MS: u64 = 1000;
/// Default lifetime of a remembered successful password check (see [`crate::login_cache`]).
pub const DEFAULT_LOGIN_CACHE_SECS: u64 = 300;
/// Default for [`ServerSection::max_login_failures`].
pub const DEFAULT_MAX_LOGIN_FAILURES: u32 = 3;
/// Default for [`ServerSection::ban_after_failures`].
pub const DEFAULT_BAN_AFTER_FAILURES: u32 = 10;
/// Default for [`ServerSection::ban_window_secs`].
pub const DEFAULT_BAN_WINDOW_SECS: u64 = 600;
/// Default for [`ServerSection::ban_secs`].
pub const DEFAULT_BAN_SECS: u64 = 900;
/// Default text of the 220 greeting.
pub const DEFAULT_BANNER: &str = "ftps ready";
/// Longest accepted banner, in bytes.
pub const MAX_BANNER_BYTES: usize = 256;
/// The user names reserved for the `[anonymous]` section (compared case-insensitively).
pub const ANONYMOUS_NAMES: [&str; 2] = ["anonymous", "ftp"];

const LOCALHOST_V4: std::net::Ipv4Addr = std::net::Ipv4Addr::LOCALHOST;

/// An error loading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML, or a value has the wrong type or form, or a key is unknown.
    #[error("{origin} line {line}: {message}")]
    Syntax {
        /// The file name (or other origin) of the text.
        origin: String,
        /// 1-based line number of the offending key or value.
        line: usize,
        /// What is wrong, starting with the dotted key when it is known.
        message: String,
    },
    /// The values are well-formed but not acceptable (a check across keys, or a value range).
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// The file name (or other origin) of the text.
        origin: String,
        /// The dotted key, e.g. `users[2].password_hash`.
        key: String,
        /// What is wrong (with `(line N)` appended by [`parse`] when the key was found).
        message: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: listeners, limits and timeouts.
    pub server: ServerSection,
    /// `[tls]`: certificate, protocol versions and cipher suites.
    pub tls: TlsSection,
    /// `[policy]`: the global TLS policy (each user may override it).
    pub policy: Policy,
    /// `[anonymous]`: read-only anonymous access (off by default).
    pub anonymous: AnonymousSection,
    /// `[[users]]`: the accounts that log in with a password.
    pub users: Vec<UserSection>,
}

/// `[server]`: listeners, limits and timeouts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Explicit FTPS listeners (plain TCP, then AUTH TLS). Default `["127.0.0.1:2121"]`.
    /// Each entry is `"IP:PORT"` or `{ address = "IP:PORT", client_certificates = ".." }`.
    pub listen: Vec<ListenerConfig>,
    /// Implicit FTPS listeners (TLS from the first byte). Default `["127.0.0.1:2990"]`.
    pub implicit_listen: Vec<ListenerConfig>,
    /// Ports used for passive data connections (`"50000-50100"` in TOML); `None` lets the
    /// operating system choose an ephemeral port.
    pub passive_ports: Option<PortRange>,
    /// Address announced in PASV replies (for NAT); `None` means the control connection's
    /// local address.
    pub passive_address: Option<IpAddr>,
    /// Cap on concurrent control connections. Default 512.
    pub max_sessions: usize,
    /// Cap on concurrent control connections from one client address. Default 32.
    pub max_sessions_per_ip: usize,
    /// Longest accepted command line in bytes, CRLF included (512..=65536). Default 4096.
    pub max_line_bytes: usize,
    /// Seconds a logged-in control connection may stay silent. Default 600.
    pub idle_timeout_secs: u64,
    /// Seconds from connect to a successful login. Default 60.
    pub login_timeout_secs: u64,
    /// Seconds a TLS handshake may take (control and data connections). Default 15.
    pub tls_handshake_timeout_secs: u64,
    /// Seconds the client has to open a data connection after PASV/EPSV/PORT. Default 30.
    pub data_connect_timeout_secs: u64,
    /// Seconds a transfer may go without moving a byte. Default 120.
    pub transfer_stall_timeout_secs: u64,
    /// Seconds running sessions get to finish on shutdown. Default 30.
    pub shutdown_grace_secs: u64,
    /// Milliseconds added after a wrong password (RFC 2577 §5); doubles with
    /// each further failure in the same session, up to 30 s. Default 1000.
    pub failed_login_delay_ms: u64,
    /// Seconds a successful password check is remembered, so the same user
    /// with the same password logs in again without a new argon2
    /// verification (see [`crate::login_cache`]); 0 disables. Default 300.
    pub login_cache_secs: u64,
    /// Wrong passwords per session before the connection is closed. Default 3.
    pub max_login_failures: u32,
    /// Wrong passwords from one address within `ban_window_secs` that ban the
    /// address for `ban_secs` (refused with 421 at connect, before any TLS
    /// work); 0 disables banning. Default 10.
    pub ban_after_failures: u32,
    /// The window in which failures count towards a ban, in seconds. Default 600.
    pub ban_window_secs: u64,
    /// How long a ban lasts, in seconds. Default 900.
    pub ban_secs: u64,
    /// When started as root (to bind ports below 1024), switch to this
    /// unprivileged user right after binding the listeners. Default: none.
    pub run_as: Option<String>,
    /// Text of the 220 greeting. Default `"ftps ready"`.
    pub banner: String,
    /// Where the generated certificate (and zero-config user file) live; `None` means
    /// [`crate::certs::default_state_dir`].
    pub state_dir: Option<PathBuf>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: vec![DEFAULT_LISTEN.into()],
            implicit_listen: vec![DEFAULT_IMPLICIT_LISTEN.into()],
            passive_ports: None,
            passive_address: None,
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_sessions_per_ip: DEFAULT_MAX_SESSIONS_PER_IP,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            login_timeout_secs: DEFAULT_LOGIN_TIMEOUT_SECS,
            tls_handshake_timeout_secs: DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECS,
            data_connect_timeout_secs: DEFAULT_DATA_CONNECT_TIMEOUT_SECS,
            transfer_stall_timeout_secs: DEFAULT_TRANSFER_STALL_TIMEOUT_SECS,
            shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE_SECS,
            failed_login_delay_ms: DEFAULT_FAILED_LOGIN_DELAY_MS,
            login_cache_secs: DEFAULT_LOGIN_CACHE_SECS,
            max_login_failures: DEFAULT_MAX_LOGIN_FAILURES,
            ban_after_failures: DEFAULT_BAN_AFTER_FAILURES,
            ban_window_secs: DEFAULT_BAN_WINDOW_SECS,
            ban_secs: DEFAULT_BAN_SECS,
            run_as: None,
            banner: DEFAULT_BANNER.to_owned(),
            state_dir: None,
        }
    }
}

impl ServerSection {
    /// `idle_timeout_secs` as a [`Duration`].
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    /// `login_timeout_secs` as a [`Duration`].
    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs(self.login_timeout_secs)
    }
    /// `tls_handshake_timeout_secs` as a [`Duration`].
    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.tls_handshake_timeout_secs)
    }
    /// `data_connect_timeout_secs` as a [`Duration`].
    pub fn data_connect_timeout(&self) -> Duration {
        Duration::from_secs(self.data_connect_timeout_secs)
    }
    /// `transfer_stall_timeout_secs` as a [`Duration`].
    pub fn transfer_stall_timeout(&self) -> Duration {
        Duration::from_secs(self.transfer_stall_timeout_secs)
    }
    /// `shutdown_grace_secs` as a [`Duration`].
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
    /// `failed_login_delay_ms` as a [`Duration`].
    pub fn failed_login_delay(&self) -> Duration {
        Duration::from_millis(self.failed_login_delay_ms)
    }
}

/// One entry of `server.listen` or `server.implicit_listen`: the address, and
/// optionally this listener's own client-certificate setting.
///
/// In TOML either a string, `"0.0.0.0:21"`, or a table,
/// `{ address = "0.0.0.0:990", client_certificates = "required" }`. The table's
/// `client_certificates` replaces `tls.client_certificates` for connections
/// accepted on this listener and for their data connections; the CA
/// (`tls.client_ca`) is the same for every listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerConfig {
    /// The address to bind.
    pub address: SocketAddr,
    /// This listener's client-certificate setting; `None` uses
    /// `tls.client_certificates`.
    pub client_certificates: Option<ClientCertificates>,
}

impl ListenerConfig {
    /// The setting in effect on this listener, given the global one.
    pub fn client_certificates_or(&self, global: ClientCertificates) -> ClientCertificates {
        self.client_certificates.unwrap_or(global)
    }
}

impl From<SocketAddr> for ListenerConfig {
    fn from(address: SocketAddr) -> Self {
        ListenerConfig {
            address,
            client_certificates: None,
        }
    }
}

impl FromStr for ListenerConfig {
    type Err = std::net::AddrParseError;

    /// Parses `"IP:PORT"` (the listener then follows the global client-certificate setting).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<SocketAddr>().map(ListenerConfig::from)
    }
}

impl fmt::Display for ListenerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.client_certificates {
            None => write!(f, "{}", self.address),
            Some(mode) => write!(f, "{} (client certificates {mode})", self.address),
        }
    }
}

/// The table form of a [`ListenerConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerTable {
    address: SocketAddr,
    #[serde(default)]
    client_certificates: Option<ClientCertificates>,
}

impl<'de> Deserialize<'de> for ListenerConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ListenerConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a socket address \"IP:PORT\" or a table { address = \"IP:PORT\", client_certificates = \"off\" | \"requested\" | \"required\" }",
                )
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ListenerConfig, E> {
                v.parse::<SocketAddr>()
                    .map(ListenerConfig::from)
                    .map_err(E::custom)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ListenerConfig, A::Error> {
                let table =
                    ListenerTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ListenerConfig {
                    address: table.address,
                    client_certificates: table.client_certificates,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// An inclusive range of TCP ports for passive data connections, written `"A-B"` in TOML.
///
/// Always valid: `start <= end` and `start >= 1024`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    start: u16,
    end: u16,
}

/// Why a [`PortRange`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PortRangeError(String);

impl PortRange {
    /// The lowest port a passive range may start at (no privileged ports).
    pub const MIN_START: u16 = 1024;

    /// A range from `start` to `end`, both included.
    pub fn new(start: u16, end: u16) -> Result<PortRange, PortRangeError> {
        if start < Self::MIN_START {
            return Err(PortRangeError(format!(
                "port range must start at {} or above (no privileged ports), not {start}",
                Self::MIN_START
            )));
        }
        if start > end {
            return Err(PortRangeError(format!(
                "port range start {start} is above its end {end}"
            )));
        }
        Ok(PortRange { start, end })
    }
    /// First port of the range.
    pub fn start(&self) -> u16 {
        self.start
    }
    /// Last port of the range (included).
    pub fn end(&self) -> u16 {
        self.end
    }
    /// Number of ports in the range (at least 1).
    pub fn len(&self) -> usize {
        usize::from(self.end - self.start) + 1
    }
    /// Always false: a range holds at least one port. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }
    /// The ports of the range.
    pub fn ports(&self) -> RangeInclusive<u16> {
        self.start..=self.end
    }
}

impl FromStr for PortRange {
    type Err = PortRangeError;

    /// Parses `"A-B"` (or a single port `"A"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let port = |p: &str| {
            p.trim().parse::<u16>().map_err(|_| {
                PortRangeError(format!(
                    "invalid port range {s:?}: expected \"START-END\" with ports 1024-65535"
                ))
            })
        };
        PortRange::new(port(a)?, port(b)?)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `[tls]`: certificate, protocol versions and cipher suites.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM certificate chain, leaf first. Set both `cert` and `key`, or neither; neither means
    /// a self-signed certificate generated once and kept in the state directory.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) matching `cert`.
    pub key: Option<PathBuf>,
    /// Enabled protocol versions, `"1.2"` and/or `"1.3"`. Default both.
    pub versions: Vec<TlsVersion>,
    /// Cipher suites by exact rustls name (e.g. `"TLS13_AES_256_GCM_SHA384"`); empty (the
    /// default) means rustls' defaults.
    pub cipher_suites: Vec<String>,
    /// TLS client certificates (RFC 4217 §15.1.2): `"off"` (default), `"requested"` or
    /// `"required"`, verified against `client_ca`.
    pub client_certificates: ClientCertificates,
    /// PEM bundle of the CAs that sign client certificates; needed unless `client_certificates`
    /// is `"off"`.
    pub client_ca: Option<PathBuf>,
    /// Optional PEM certificate revocation list for client certificates.
    pub client_crl: Option<PathBuf>,
    /// More certificates, chosen by the server name the client asks for (SNI):
    /// `[[tls.sni]] name = "ftp.example.com", cert = "...", key = "..."`.
    pub sni: Vec<SniCertificate>,
}

/// A certificate served for one server name (SNI).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SniCertificate {
    /// The server name (DNS name the client connects to).
    pub name: String,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Whether the server asks for TLS client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertificates {
    /// Never asked for.
    #[default]
    Off,
    /// Asked for; a client without one may still log in with a password.
    Requested,
    /// Every TLS connection must present a certificate signed by `client_ca`.
    Required,
}

impl fmt::Display for ClientCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientCertificates::Off => "off",
            ClientCertificates::Requested => "requested",
            ClientCertificates::Required => "required",
        })
    }
}

/// How a user proves who they are (RFC 4217 §12.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// USER/PASS (the default).
    #[default]
    Password,
    /// A TLS client certificate matching `certificate`: USER gets 232, no PASS.
    Certificate,
    /// Both: the certificate must match, then the password.
    CertificateAndPassword,
}

/// Which client certificates belong to a user; every field given must match.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CertificateMatch {
    /// The subject's common name (CN).
    pub cn: Option<String>,
    /// An e-mail address in the subject alternative names.
    pub email: Option<String>,
    /// A DNS name in the subject alternative names.
    pub dns: Option<String>,
    /// The SHA-256 fingerprint of the certificate (hex, colons allowed).
    pub sha256: Option<String>,
}

impl CertificateMatch {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.cn.is_none() && self.email.is_none() && self.dns.is_none() && self.sha256.is_none()
    }
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            cert: None,
            key: None,
            versions: vec![TlsVersion::V1_2, TlsVersion::V1_3],
            cipher_suites: Vec::new(),
            client_certificates: ClientCertificates::Off,
            client_ca: None,
            client_crl: None,
            sni: Vec::new(),
        }
    }
}

impl TlsSection {
    /// The enabled protocol versions for `rustls::ServerConfig::builder_with_provider(..)
    /// .with_protocol_versions(..)`.
    pub fn protocol_versions(&self) -> Vec<&'static SupportedProtocolVersion> {
        let mut out: Vec<&'static SupportedProtocolVersion> = Vec::new();
        for v in &self.versions {
            let r = v.rustls_version();
            if !out.iter().any(|o| o.version == r.version) {
                out.push(r);
            }
        }
        out
    }

    /// The *ring* crypto provider restricted to the configured cipher suites (all of its
    /// defaults when `cipher_suites` is empty). Unknown names are skipped here; validation
    /// has already refused them.
    pub fn crypto_provider(&self) -> CryptoProvider {
        let mut provider = default_provider();
        if !self.cipher_suites.is_empty() {
            provider.cipher_suites = self
                .cipher_suites
                .iter()
                .filter_map(|name| find_cipher_suite(name))
                .collect();
        }
        provider
    }
}

/// The rustls name of a cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
pub fn cipher_suite_name(suite: &SupportedCipherSuite) -> String {
    let id = suite.suite();
    id.as_str()
        .map_or_else(|| format!("{id:?}"), ToOwned::to_owned)
}

/// The *ring* cipher suite called exactly `name`, if rustls has it.
pub fn find_cipher_suite(name: &str) -> Option<SupportedCipherSuite> {
    ALL_CIPHER_SUITES
        .iter()
        .find(|s| cipher_suite_name(s) == name)
        .copied()
}

/// A TLS protocol version, `"1.2"` or `"1.3"` in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "1.2")]
    V1_2,
    /// TLS 1.3.
    #[serde(rename = "1.3")]
    V1_3,
}

impl TlsVersion {
    /// The matching rustls protocol version.
    pub fn rustls_version(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::V1_2 => &rustls::version::TLS12,
            TlsVersion::V1_3 => &rustls::version::TLS13,
        }
    }

    fn matches(self, suite: &SupportedCipherSuite) -> bool {
        suite.version().version == self.rustls_version().version
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        })
    }
}

/// `[anonymous]`: read-only access for the user names `anonymous` and `ftp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnonymousSection {
    /// Whether anonymous login is allowed. Default false.
    pub enabled: bool,
    /// The read-only directory anonymous users see; required when `enabled`.
    pub root: Option<PathBuf>,
    /// Whether anonymous users must, may or must not use TLS. Default `"require"`.
    pub tls: AnonymousTls,
}

/// `[[users]]`: one account that logs in with a password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSection {
    /// The login name (case-sensitive). `anonymous` and `ftp` are reserved.
    pub name: String,
    /// An argon2id PHC string (`$argon2id$v=19$m=...`), never the password itself. May be
    /// left out when `auth = "certificate"`.
    #[serde(default)]
    pub password_hash: String,
    /// The directory this user sees as `/`.
    pub root: PathBuf,
    /// Whether the user may upload, delete, rename and create directories. Default true.
    #[serde(default = "default_true")]
    pub write: bool,
    /// Changes to the global `[policy]` for this user (`[users.policy]` or
    /// `policy = { allow_ccc = true }`).
    #[serde(default)]
    pub policy: PolicyOverride,
    /// How this user logs in: `"password"` (default), `"certificate"` or
    /// `"certificate_and_password"`.
    #[serde(default)]
    pub auth: AuthMethod,
    /// The client certificates that belong to this user (`certificate = { cn = "alice" }`).
    #[serde(default)]
    pub certificate: CertificateMatch,
}

fn default_true() -> bool {
    true
}

/// Reads and parses the configuration file at `path` (see [`parse`]).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates configuration text; `origin` (usually the file name) starts every
/// error message.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| syntax_error(text, origin, &e))?;
    config.check().map_err(|(key, message)| {
        let message = match locate::line_of_key(text, &key) {
            Some(line) => format!("{message} (line {line})"),
            None => message,
        };
        ConfigError::Invalid {
            origin: origin.to_owned(),
            key,
            message,
        }
    })?;
    Ok(config)
}

fn syntax_error(text: &str, origin: &str, e: &toml::de::Error) -> ConfigError {
    let raw = e.message().trim().replace('\n', "; ");
    let (line, message) = match e.span() {
        Some(span) => {
            let line = locate::line_at(text, span.start);
            match locate::key_at(text, span.start) {
                Some(key) => {
                    let hint = hint(&key, &raw);
                    (line, format!("{key}: {raw}{hint}"))
                }
                None => (line, raw),
            }
        }
        None => (1, raw),
    };
    ConfigError::Syntax {
        origin: origin.to_owned(),
        line,
        message,
    }
}

/// Extra help for the common mistakes in address values.
fn hint(key: &str, message: &str) -> &'static str {
    let field = key.rsplit('.').next().unwrap_or(key);
    // `server.listen[1].address`: the address inside a listener's table.
    let listener_address = field == "address" && key.contains("listen[");
    match field {
        "listen" | "implicit_listen" if message.contains("expected a sequence") => {
            " (write a list, e.g. [\"0.0.0.0:21\"])"
        }
        "listen" | "implicit_listen" | "address"
            if (field != "address" || listener_address)
                && message.contains("invalid socket address syntax") =>
        {
            " (expected \"IP:PORT\", e.g. \"0.0.0.0:21\" or \"[::]:21\"; host names are not accepted)"
        }
        "passive_address" if message.contains("IP address") => {
            " (expected an IP address, e.g. \"203.0.113.7\"; host names are not accepted)"
        }
        _ => "",
    }
}

impl Config {
    /// Checks the values that deserialising alone cannot (ranges, checks across keys).
    /// [`parse`] and [`load`] call it; call it on a configuration built in code.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.check().map_err(|(key, message)| ConfigError::Invalid {
            origin: origin.to_owned(),
            key,
            message,
        })
    }

    /// Every listener with its dotted key (`server.listen[0]`, `server.implicit_listen[1]`).
    pub fn listeners(&self) -> impl Iterator<Item = (String, &ListenerConfig)> {
        let explicit = self
            .server
            .listen
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("server.listen[{i}]"), l));
        let implicit = self
            .server
            .implicit_listen
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("server.implicit_listen[{i}]"), l));
        explicit.chain(implicit)
    }

    /// The client-certificate setting in effect on `listener`.
    pub fn client_certificates_on(&self, listener: &ListenerConfig) -> ClientCertificates {
        listener.client_certificates_or(self.tls.client_certificates)
    }

    /// Whether any listener asks for client certificates (so certificate login is possible).
    pub fn any_client_certificates(&self) -> bool {
        self.listeners()
            .any(|(_, l)| self.client_certificates_on(l) != ClientCertificates::Off)
    }

    fn check(&self) -> Result<(), (String, String)> {
        self.check_server()?;
        self.check_tls()?;
        self.check_anonymous()?;
        self.check_users()
    }

    fn check_server(&self) -> Result<(), (String, String)> {
        let s = &self.server;
        if s.listen.is_empty() && s.implicit_listen.is_empty() {
            return invalid(
                "server.listen",
                "no listener: set server.listen and/or server.implicit_listen",
            );
        }
        for (key, value) in [
            ("server.max_sessions", s.max_sessions),
            ("server.max_sessions_per_ip", s.max_sessions_per_ip),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if !(MIN_MAX_LINE_BYTES..=MAX_MAX_LINE_BYTES).contains(&s.max_line_bytes) {
            return invalid(
                "server.max_line_bytes",
                format!(
                    "{} is outside {MIN_MAX_LINE_BYTES}..={MAX_MAX_LINE_BYTES}",
                    s.max_line_bytes
                ),
            );
        }
        for (key, value) in [
            ("server.idle_timeout_secs", s.idle_timeout_secs),
            ("server.login_timeout_secs", s.login_timeout_secs),
            (
                "server.tls_handshake_timeout_secs",
                s.tls_handshake_timeout_secs,
            ),
            (
                "server.data_connect_timeout_secs",
                s.data_connect_timeout_secs,
            ),
            (
                "server.transfer_stall_timeout_secs",
                s.transfer_stall_timeout_secs,
            ),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1 (a timeout of 0 would disable it)");
            }
        }
        if s.banner.len() > MAX_BANNER_BYTES {
            return invalid(
                "server.banner",
                format!("longer than {MAX_BANNER_BYTES} bytes"),
            );
        }
        if s.banner.chars().any(char::is_control) {
            return invalid(
                "server.banner",
                "must be one line without control characters (CR/LF would inject replies)",
            );
        }
        Ok(())
    }

    fn check_tls(&self) -> Result<(), (String, String)> {
        let t = &self.tls;
        match (&t.cert, &t.key) {
            (Some(_), None) => return invalid("tls.cert", "tls.cert is set but tls.key is not"),
            (None, Some(_)) => return invalid("tls.key", "tls.key is set but tls.cert is not"),
            _ => {}
        }
        if t.versions.is_empty() {
            return invalid("tls.versions", "at least one of \"1.2\", \"1.3\" is needed");
        }
        if t.client_certificates != ClientCertificates::Off && t.client_ca.is_none() {
            return invalid(
                "tls.client_ca",
                "client certificates need a CA bundle to verify them (tls.client_ca)",
            );
        }
        if t.client_ca.is_none() {
            if let Some((key, listener)) = self.listeners().find(|(_, l)| {
                l.client_certificates_or(t.client_certificates) != ClientCertificates::Off
            }) {
                return invalid(
                    format!("{key}.client_certificates"),
                    format!(
                        "listener {} asks for client certificates, which need a CA bundle to verify them (tls.client_ca)",
                        listener.address
                    ),
                );
            }
        }
        if t.cipher_suites.is_empty() {
            return Ok(());
        }
        let mut suites = Vec::new();
        for name in &t.cipher_suites {
            match find_cipher_suite(name) {
                Some(s) => suites.push(s),
                None => {
                    let known: Vec<String> =
                        ALL_CIPHER_SUITES.iter().map(cipher_suite_name).collect();
                    return invalid(
                        "tls.cipher_suites",
                        format!(
                            "unknown cipher suite {name:?}, expected one of {}",
                            known.join(", ")
                        ),
                    );
                }
            }
        }
        for v in &t.versions {
            if !suites.iter().any(|s| v.matches(s)) {
                return invalid(
                    "tls.cipher_suites",
                    format!("no cipher suite for TLS {v}, which tls.versions enables"),
                );
            }
        }
        Ok(())
    }

    fn check_anonymous(&self) -> Result<(), (String, String)> {
        if self.anonymous.enabled && self.anonymous.root.is_none() {
            return invalid("anonymous.root", "required when anonymous.enabled = true");
        }
        Ok(())
    }

    fn check_users(&self) -> Result<(), (String, String)> {
        let mut seen = HashSet::new();
        for (i, user) in self.users.iter().enumerate() {
            let key = |field: &str| format!("users[{i}].{field}");
            let name = user.name.as_str();
            if name.is_empty() {
                return invalid(key("name"), "must not be empty");
            }
            if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return invalid(
                    key("name"),
                    format!("{name:?} contains whitespace or control characters"),
                );
            }
            if ANONYMOUS_NAMES.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                return invalid(
                    key("name"),
                    format!("{name:?} is reserved for the [anonymous] section"),
                );
            }
            if !seen.insert(name) {
                return invalid(key("name"), format!("duplicate user name {name:?}"));
            }
            if user.auth != AuthMethod::Password && user.certificate.is_empty() {
                return invalid(
                    key("certificate"),
                    "a certificate rule (cn, email, dns or sha256) is needed for this auth method",
                );
            }
            if user.auth != AuthMethod::Password && !self.any_client_certificates() {
                return invalid(
                    key("auth"),
                    "certificate login needs client certificates: tls.client_certificates, or a listener's client_certificates, = \"requested\" or \"required\"",
                );
            }
            let hash_needed =
                user.auth != AuthMethod::Certificate || !user.password_hash.is_empty();
            if hash_needed {
                if let Err(message) = check_password_hash(&user.password_hash) {
                    return invalid(key("password_hash"), message);
                }
            }
        }
        Ok(())
    }
}

fn check_password_hash(hash: &str) -> Result<(), String> {
    let parsed = argon2::PasswordHash::new(hash).map_err(|e| {
        format!("not an argon2id PHC string ({e}); expected \"$argon2id$v=19$m=...,t=...,p=...$SALT$HASH\"")
    })?;
    if parsed.algorithm != argon2::Algorithm::Argon2id.ident() {
        return Err(format!(
            "algorithm {} is not argon2id",
            parsed.algorithm.as_str()
        ));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("the PHC string has no salt or no hash".to_owned());
    }
    argon2::Params::try_from(&parsed)
        .map(|_| ())
        .map_err(|e| format!("bad argon2 parameters: {e}"))
}

fn invalid<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T, (String, String)> {
    Err((key.into(), message.into()))
}

/// Finds which dotted key a byte offset of a TOML text belongs to, and the line of a key.
///
/// A small scanner over the token structure of TOML (tables, arrays of tables, dotted and
/// quoted keys, inline tables and arrays, strings, comments). It is only used for error
/// messages, after `toml` has reported an error, so it is best-effort and never fails.
mod locate {
    use std::collections::HashMap;

    /// 1-based line number of byte `offset`.
    pub(super) fn line_at(text: &str, offset: usize) -> usize {
        let end = offset.min(text.len());
        text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// The dotted key (e.g. `users[1].policy.allow_ccc`) whose key or value holds `offset`.
    pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
        scan(text)
            .into_iter()
            .take_while(|(_, start)| *start <= offset)
            .last()
            .map(|(key, _)| key)
    }

    /// Line of the first place `key` is written.
    pub(super) fn line_of_key(text: &str, key: &str) -> Option<usize> {
        scan(text)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, start)| line_at(text, start))
    }

    enum Frame {
        /// An array value; `key` is its dotted key, `index` the element being read (the
        /// commas seen so far), so `["a", { b = 1 }]` names the table `key[1]`.
        Array { key: String, index: usize },
        /// An inline table value with its dotted key.
        Table(String),
    }

    /// Every key and table header with the byte offset where it starts, in text order.
    fn scan(text: &str) -> Vec<(String, usize)> {
        let b = text.as_bytes();
        let mut out = Vec::new();
        let mut aot: HashMap<String, usize> = HashMap::new();
        let mut table = String::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut expect_key = true;
        let mut parts: Vec<String> = Vec::new();
        let mut key_start = 0;
        let mut pending: Option<String> = None;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match c {
                b'#' => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b'\n' if stack.is_empty() => {
                    expect_key = true;
                    parts.clear();
                }
                b'"' | b'\'' => {
                    let (s, next) = string(text, i);
                    if expect_key {
                        if parts.is_empty() {
                            key_start = i;
                        }
                        parts.push(s);
                    }
                    i = next;
                    continue;
                }
                b'[' if stack.is_empty() && expect_key => {
                    let double = b.get(i + 1) == Some(&b'[');
                    let start = i;
                    i += if double { 2 } else { 1 };
                    let mut raw = Vec::new();
                    while i < b.len() && b[i] != b']' && b[i] != b'\n' {
                        if b[i] == b'"' || b[i] == b'\'' {
                            let (s, next) = string(text, i);
                            raw.push(s);
                            i = next;
                        } else if is_bare(b[i]) {
                            let s = i;
                            while i < b.len() && is_bare(b[i]) {
                                i += 1;
                            }
                            raw.push(text[s..i].to_owned());
                        } else {
                            i += 1;
                        }
                    }
                    table = header_path(&raw, double, &mut aot);
                    out.push((table.clone(), start));
                    while i < b.len() && b[i] != b'\n' && b[i] != b'#' {
                        i += 1;
                    }
                    continue;
                }
                b'=' if expect_key => {
                    let prefix = match stack.last() {
                        Some(Frame::Table(k)) => k.clone(),
                        _ => table.clone(),
                    };
                    let key = join(&prefix, &parts.join("."));
                    out.push((key.clone(), key_start));
                    pending = Some(key);
                    parts.clear();
                    expect_key = false;
                }
                b'[' => {
                    let key = pending.take().unwrap_or_default();
                    stack.push(Frame::Array { key, index: 0 });
                }
                b'{' => {
                    let key = match stack.last() {
                        Some(Frame::Array { key, index }) if pending.is_none() => {
                            // An array element has no key of its own: name it.
                            let element = format!("{key}[{index}]");
                            out.push((element.clone(), i));
                            element
                        }
                        _ => pending.take().unwrap_or_default(),
                    };
                    stack.push(Frame::Table(key));
                    expect_key = true;
                }
                b']' | b'}' => {
                    stack.pop();
                    pending = None;
                }
                b',' => {
                    if let Some(Frame::Array { index, .. }) = stack.last_mut() {
                        *index += 1;
                    }
                    pending = None;
                    expect_key = matches!(stack.last(), Some(Frame::Table(_)));
                }
                _ if expect_key && is_bare(c) => {
                    if parts.is_empty() {
                        key_start = i;
                    }
                    let s = i;
                    while i < b.len() && is_bare(b[i]) {
                        i += 1;
                    }
                    parts.push(text[s..i].to_owned());
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        out
    }

    fn header_path(raw: &[String], double: bool, aot: &mut HashMap<String, usize>) -> String {
        let mut path = String::new();
        let mut dotted = String::new();
        for (n, part) in raw.iter().enumerate() {
            dotted = join(&dotted, part);
            path = join(&path, part);
            let last = n + 1 == raw.len();
            if last && double {
                let count = aot.entry(dotted.clone()).or_insert(0);
                *count += 1;
                path = format!("{path}[{}]", *count - 1);
            } else if let Some(count) = aot.get(&dotted) {
                path = format!("{path}[{}]", count.saturating_sub(1));
            }
        }
        path
    }

    fn join(prefix: &str, key: &str) -> String {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    }

    fn is_bare(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
    }

    /// The contents of the string starting at `start` and the offset just after it.
    fn string(text: &str, start: usize) -> (String, usize) {
        let b = text.as_bytes();
        let quote = b[start];
        let triple = b.get(start + 1) == Some(&quote) && b.get(start + 2) == Some(&quote);
        let open = if triple { 3 } else { 1 };
        let mut i = start + open;
        while i < b.len() {
            if quote == b'"' && b[i] == b'\\' {
                i += 2;
                continue;
            }
            if !triple && b[i] == b'\n' {
                break;
            }
            if b[i] == quote && (!triple || b[i..].starts_with(&[quote; 3])) {
                let body = text.get(start + open..i).unwrap_or_default().to_owned();
                return (body, i + open);
            }
            i += 1;
        }
        let end = i.min(b.len());
        (
            text.get(start + open..end).unwrap_or_default().to_owned(),
            end,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The hash of "correct horse".
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$KHuk3mHnxtQ/EQUxU6uJNQ$3jJaqxVILffIGwUjXRCcoMCvwBQlW1TErg99BSg2DdA";

    fn err(text: &str) -> String {
        parse(text, "ftps.toml").unwrap_err().to_string()
    }

    #[test]
    fn empty_file_gives_secure_defaults() {
        let c = parse("", "ftps.toml").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.listen, vec!["127.0.0.1:2121".parse().unwrap()]);
        assert_eq!(
            c.server.implicit_listen,
            vec!["127.0.0.1:2990".parse().unwrap()]
        );
        assert_eq!(c.server.passive_ports, None);
        assert_eq!(c.server.max_sessions, 512);
        assert_eq!(c.server.max_sessions_per_ip, 32);
        assert_eq!(c.server.max_line_bytes, 4096);
        assert_eq!(c.server.idle_timeout(), Duration::from_secs(600));
        assert_eq!(c.server.login_timeout_secs, 60);
        assert_eq!(c.server.tls_handshake_timeout_secs, 15);
        assert_eq!(c.server.data_connect_timeout_secs, 30);
        assert_eq!(c.server.transfer_stall_timeout_secs, 120);
        assert_eq!(c.server.shutdown_grace_secs, 30);
        assert_eq!(c.server.failed_login_delay(), Duration::from_millis(1000));
        assert_eq!(c.server.banner, "ftps ready");
        assert_eq!(c.tls.versions, vec![TlsVersion::V1_2, TlsVersion::V1_3]);
        assert!(c.tls.cert.is_none() && c.tls.key.is_none());
        let p = c.policy;
        assert!(p.require_tls && p.require_prot_p && p.require_session_reuse && !p.allow_ccc);
        assert!(!c.anonymous.enabled);
        assert_eq!(c.anonymous.tls, AnonymousTls::Require);
        assert!(c.users.is_empty());
    }

    #[test]
    fn full_example_parses() {
        let text = format!(
            r#"
[server]
listen = ["0.0.0.0:21", "[::]:21"]
implicit_listen = []
passive_ports = "50000-50100"
passive_address = "203.0.113.7"
max_sessions = 100
banner = "welcome"
state_dir = "state"

[tls]
cert = "/etc/ftps/cert.pem"
key = "/etc/ftps/key.pem"
versions = ["1.3"]
cipher_suites = ["TLS13_AES_256_GCM_SHA384"]

[policy]
require_session_reuse = false

[anonymous]
enabled = true
root = "/srv/pub"
tls = "refuse"

[[users]]
name = "alice"
password_hash = "{HASH}"
root = "/srv/alice"

[[users]]
name = "bob"
password_hash = "{HASH}"
root = "bob"
write = false
policy = {{ allow_ccc = true }}

[[users]]
name = "carol"
password_hash = "{HASH}"
root = "/srv/carol"
[users.policy]
require_prot_p = false
"#
        );
        let c = parse(&text, "t").unwrap();
        assert_eq!(c.server.listen.len(), 2);
        assert!(c.server.implicit_listen.is_empty());
        let range = c.server.passive_ports.unwrap();
        assert_eq!(
            (range.start(), range.end(), range.len()),
            (50000, 50100, 101)
        );
        assert_eq!(
            c.server.passive_address,
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(c.tls.versions, vec![TlsVersion::V1_3]);
        assert_eq!(c.tls.crypto_provider().cipher_suites.len(), 1);
        assert_eq!(c.tls.protocol_versions().len(), 1);
        assert!(!c.policy.require_session_reuse);
        assert_eq!(c.anonymous.tls, AnonymousTls::Refuse);
        assert_eq!(c.users.len(), 3);
        assert!(c.users[0].write);
        assert!(!c.users[1].write);
        assert_eq!(c.users[1].policy.allow_ccc, Some(true));
        assert_eq!(c.users[2].policy.require_prot_p, Some(false));
        let p = c.policy.with(&c.users[2].policy);
        assert!(!p.require_prot_p && !p.require_session_reuse && p.require_tls);
    }

    #[test]
    fn shipped_example_parses() {
        // The example lists every option with its default: it must configure exactly what
        // an empty file does, so the documented defaults cannot drift from the code.
        let c = parse(include_str!("../../../examples/ftps.toml"), "ftps.toml").unwrap();
        assert_eq!(c, Config::default());
        // Its commented-out [[users]] example, uncommented (with a real hash), parses too.
        let text = include_str!("../../../examples/ftps.toml");
        let users = &text[text.find("# [[users]]").unwrap()..];
        let users: String = users
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
            .map(|l| l.replace("$argon2id$v=19$m=19456,t=2,p=1$...$...", HASH))
            .collect::<Vec<_>>()
            .join("\n");
        let c = parse(&users, "users").unwrap();
        assert_eq!(c.users.len(), 2);
        assert_eq!(c.users[0].policy.allow_ccc, Some(true));
        assert_eq!(c.users[1].policy.require_tls, Some(false));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = "# comment\n\n[server]\nmax_sessions = 10\n\nmax_sesions = 5\n";
        let e = parse(text, "ftps.toml").unwrap_err();
        match &e {
            ConfigError::Syntax { line, .. } => assert_eq!(*line, 6),
            other => panic!("{other:?}"),
        }
        let m = e.to_string();
        assert!(
            m.starts_with("ftps.toml line 6: server.max_sesions: "),
            "{m}"
        );
        assert!(m.contains("unknown field `max_sesions`"), "{m}");
        assert!(m.contains("max_sessions"), "{m}");
    }

    #[test]
    fn unknown_section_and_nested_unknown_key() {
        let m = err("[servr]\nlisten = []\n");
        assert!(m.starts_with("ftps.toml line 1: servr: "), "{m}");
        let text = format!(
            "[[users]]\nname = \"a\"\npassword_hash = \"{HASH}\"\nroot = \"/a\"\n\n[[users]]\nname = \"b\"\npassword_hash = \"{HASH}\"\nroot = \"/b\"\npolicy = {{ allow_cc = true }}\n"
        );
        let m = err(&text);
        assert!(
            m.starts_with("ftps.toml line 10: users[1].policy.allow_cc: "),
            "{m}"
        );
    }

    #[test]
    fn bad_value_names_key_and_line() {
        let m = err("[server]\n\nmax_sessions = \"many\"\n");
        assert!(
            m.starts_with("ftps.toml line 3: server.max_sessions: "),
            "{m}"
        );
        let m = err("[server]\nlisten = [\n  \"127.0.0.1:21\",\n  \"nonsense\",\n]\n");
        assert!(m.starts_with("ftps.toml line 4: server.listen: "), "{m}");
        let m = err("[tls]\nversions = [\"1.1\"]\n");
        assert!(m.starts_with("ftps.toml line 2: tls.versions: "), "{m}");
        assert!(m.contains("1.1"), "{m}");
        let m = err("[anonymous]\ntls = \"maybe\"\n");
        assert!(m.starts_with("ftps.toml line 2: anonymous.tls: "), "{m}");
    }

    #[test]
    fn listeners_as_strings_or_tables() {
        let text = r#"
[server]
listen = [
  "127.0.0.1:2121",
  { address = "127.0.0.1:2122", client_certificates = "required" },
]
implicit_listen = [{ address = "[::1]:2990" }, "127.0.0.1:2991"]

[tls]
client_ca = "ca.pem"
"#;
        let c = parse(text, "f").unwrap();
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            c.server.listen,
            vec![
                ListenerConfig::from(addr("127.0.0.1:2121")),
                ListenerConfig {
                    address: addr("127.0.0.1:2122"),
                    client_certificates: Some(ClientCertificates::Required),
                },
            ]
        );
        assert_eq!(
            c.server.implicit_listen,
            vec![
                ListenerConfig::from(addr("[::1]:2990")),
                ListenerConfig::from(addr("127.0.0.1:2991")),
            ]
        );
        // The global setting (off) applies where a listener has none of its own.
        let modes: Vec<_> = c
            .listeners()
            .map(|(key, l)| (key, c.client_certificates_on(l)))
            .collect();
        assert_eq!(
            modes,
            vec![
                ("server.listen[0]".to_owned(), ClientCertificates::Off),
                ("server.listen[1]".to_owned(), ClientCertificates::Required),
                (
                    "server.implicit_listen[0]".to_owned(),
                    ClientCertificates::Off
                ),
                (
                    "server.implicit_listen[1]".to_owned(),
                    ClientCertificates::Off
                ),
            ]
        );
        assert!(c.any_client_certificates());
        // The converse: required everywhere but on one listener.
        let text = "[server]\nlisten = [{ address = \"127.0.0.1:21\", client_certificates = \"off\" }]\nimplicit_listen = [\"127.0.0.1:990\"]\n[tls]\nclient_certificates = \"required\"\nclient_ca = \"ca.pem\"\n";
        let c = parse(text, "f").unwrap();
        let modes: Vec<_> = c
            .listeners()
            .map(|(_, l)| c.client_certificates_on(l))
            .collect();
        assert_eq!(
            modes,
            vec![ClientCertificates::Off, ClientCertificates::Required]
        );
        assert_eq!(
            "127.0.0.1:21"
                .parse::<ListenerConfig>()
                .unwrap()
                .to_string(),
            "127.0.0.1:21"
        );
    }

    #[test]
    fn bad_listener_tables_name_key_and_line() {
        let m = err(
            "[server]\nlisten = [\n  \"127.0.0.1:21\",\n  { address = \"localhost:21\" },\n]\n",
        );
        assert!(
            m.starts_with(
                "ftps.toml line 4: server.listen[1].address: invalid socket address syntax"
            ),
            "{m}"
        );
        assert!(m.contains("host names are not accepted"), "{m}");
        let m = err("[server]\nimplicit_listen = [\n  { address = \"127.0.0.1:990\", client_certificates = \"always\" },\n]\n");
        assert!(
            m.starts_with("ftps.toml line 3: server.implicit_listen[0].client_certificates: "),
            "{m}"
        );
        assert!(m.contains("unknown variant `always`"), "{m}");
        let m =
            err("[server]\nlisten = [{ address = \"127.0.0.1:21\", client_certs = \"off\" }]\n");
        assert!(
            m.starts_with(
                "ftps.toml line 2: server.listen[0].client_certs: unknown field `client_certs`"
            ),
            "{m}"
        );
        let m = err("[server]\nlisten = [\"127.0.0.1:21\",\n { client_certificates = \"off\" }]\n");
        assert!(
            m.starts_with("ftps.toml line 3: server.listen[1]: missing field `address`"),
            "{m}"
        );
        let m = err("[server]\nlisten = [21]\n");
        assert!(m.starts_with("ftps.toml line 2: server.listen: "), "{m}");
        assert!(m.contains("\"IP:PORT\""), "{m}");
    }

    #[test]
    fn listener_asking_for_certificates_needs_a_ca() {
        let text = "[server]\nlisten = [\n  \"127.0.0.1:21\",\n  { address = \"127.0.0.1:22\", client_certificates = \"requested\" },\n]\n";
        match parse(text, "f").unwrap_err() {
            ConfigError::Invalid { key, message, .. } => {
                assert_eq!(key, "server.listen[1].client_certificates");
                assert!(message.contains("tls.client_ca"), "{message}");
                assert!(message.contains("127.0.0.1:22"), "{message}");
                assert!(message.ends_with("(line 4)"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A listener that turns them off needs no CA.
        let ok =
            "[server]\nlisten = [{ address = \"127.0.0.1:21\", client_certificates = \"off\" }]\n";
        assert!(parse(ok, "f").is_ok());
        // The global setting needs the CA whatever the listeners say.
        let m = err("[tls]\nclient_certificates = \"required\"\n");
        assert!(m.starts_with("ftps.toml: tls.client_ca: "), "{m}");
    }

    #[test]
    fn certificate_login_needs_some_listener_asking_for_certificates() {
        let user = "[[users]]\nname = \"carol\"\nroot = \"/c\"\nauth = \"certificate\"\ncertificate = { cn = \"carol\" }\n";
        let m = err(user);
        assert!(m.starts_with("ftps.toml: users[0].auth: "), "{m}");
        let with_listener = format!(
            "[server]\nimplicit_listen = [{{ address = \"127.0.0.1:990\", client_certificates = \"required\" }}]\n[tls]\nclient_ca = \"ca.pem\"\n{user}"
        );
        assert!(parse(&with_listener, "f").is_ok());
        // Global "requested", but every listener turns it off: nobody could log in.
        let all_off = format!(
            "[server]\nlisten = [{{ address = \"127.0.0.1:21\", client_certificates = \"off\" }}]\nimplicit_listen = []\n[tls]\nclient_certificates = \"requested\"\nclient_ca = \"ca.pem\"\n{user}"
        );
        let m = err(&all_off);
        assert!(m.starts_with("ftps.toml: users[0].auth: "), "{m}");
    }

    #[test]
    fn toml_syntax_error_has_line() {
        let m = err("[server]\nbanner = \"unterminated\n");
        assert!(m.starts_with("ftps.toml line 2: "), "{m}");
    }

    #[test]
    fn bad_port_range() {
        for (range, needle) in [
            ("50100-50000", "above its end"),
            ("80-90", "1024"),
            ("a-b", "START-END"),
            ("50000-70000", "START-END"),
        ] {
            let m = err(&format!("[server]\npassive_ports = \"{range}\"\n"));
            assert!(
                m.starts_with("ftps.toml line 2: server.passive_ports: "),
                "{m}"
            );
            assert!(m.contains(needle), "{m}");
        }
        assert_eq!("2000".parse::<PortRange>().unwrap().len(), 1);
        assert_eq!(
            "2000-2001".parse::<PortRange>().unwrap().to_string(),
            "2000-2001"
        );
    }

    #[test]
    fn cert_without_key() {
        let text = "[tls]\ncert = \"c.pem\"\n";
        match parse(text, "f").unwrap_err() {
            ConfigError::Invalid { key, message, .. } => {
                assert_eq!(key, "tls.cert");
                assert!(message.contains("tls.key"), "{message}");
                assert!(message.ends_with("(line 2)"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let m = err("[tls]\nkey = \"k.pem\"\n");
        assert!(m.starts_with("ftps.toml: tls.key: "), "{m}");
    }

    #[test]
    fn bad_hash() {
        let text = format!(
            "[[users]]\nname = \"a\"\npassword_hash = \"{HASH}\"\nroot = \"/a\"\n[[users]]\nname = \"b\"\npassword_hash = \"hunter2\"\nroot = \"/b\"\n"
        );
        let m = err(&text);
        assert!(m.starts_with("ftps.toml: users[1].password_hash: "), "{m}");
        assert!(m.ends_with("(line 7)"), "{m}");
        let argon2i = HASH.replace("argon2id", "argon2i");
        let text =
            format!("[[users]]\nname = \"a\"\npassword_hash = \"{argon2i}\"\nroot = \"/a\"\n");
        assert!(err(&text).contains("not argon2id"), "{}", err(&text));
    }

    #[test]
    fn bad_cipher_suite() {
        let m =
            err("[tls]\ncipher_suites = [\"TLS13_AES_256_GCM_SHA384\", \"TLS_RSA_WITH_RC4\"]\n");
        assert!(m.starts_with("ftps.toml: tls.cipher_suites: "), "{m}");
        assert!(m.contains("\"TLS_RSA_WITH_RC4\""), "{m}");
        assert!(m.contains("TLS13_CHACHA20_POLY1305_SHA256"), "{m}");
        // A TLS 1.3-only suite list with TLS 1.2 enabled leaves 1.2 without a suite.
        let m = err("[tls]\ncipher_suites = [\"TLS13_AES_256_GCM_SHA384\"]\n");
        assert!(m.contains("TLS 1.2"), "{m}");
        let ok = parse(
            "[tls]\ncipher_suites = [\"TLS13_AES_128_GCM_SHA256\", \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n",
            "f",
        );
        assert_eq!(ok.unwrap().tls.crypto_provider().cipher_suites.len(), 2);
        // Names are exact, as rustls prints them.
        let m = err("[tls]\ncipher_suites = [\"tls13_aes_128_gcm_sha256\"]\n");
        assert!(
            m.contains("unknown cipher suite \"tls13_aes_128_gcm_sha256\""),
            "{m}"
        );
    }

    #[test]
    fn duplicate_and_reserved_users() {
        let user = |n: &str| {
            format!("[[users]]\nname = \"{n}\"\npassword_hash = \"{HASH}\"\nroot = \"/x\"\n")
        };
        let m = err(&format!("{}{}", user("alice"), user("alice")));
        assert!(m.starts_with("ftps.toml: users[1].name: duplicate"), "{m}");
        assert!(m.ends_with("(line 6)"), "{m}");
        let m = err(&user("FTP"));
        assert!(m.contains("users[0].name") && m.contains("reserved"), "{m}");
        let m = err(&user(""));
        assert!(m.contains("users[0].name: must not be empty"), "{m}");
        let m = err(&user("a b"));
        assert!(m.contains("whitespace"), "{m}");
        // A missing hash is only allowed for certificate-only users.
        let m = err("[[users]]\nname = \"a\"\nroot = \"/x\"\n");
        assert!(m.starts_with("ftps.toml: users[0].password_hash: "), "{m}");
    }

    #[test]
    fn other_checks() {
        let m = err("[server]\nlisten = []\nimplicit_listen = []\n");
        assert!(m.contains("server.listen: no listener"), "{m}");
        let m = err("[server]\nmax_line_bytes = 100\n");
        assert!(m.contains("server.max_line_bytes"), "{m}");
        let m = err("[server]\nbanner = \"a\\r\\n230 fake\"\n");
        assert!(m.contains("server.banner"), "{m}");
        let m = err("[server]\nidle_timeout_secs = 0\n");
        assert!(m.contains("server.idle_timeout_secs"), "{m}");
        let m = err("[tls]\nversions = []\n");
        assert!(m.contains("tls.versions"), "{m}");
        let m = err("[anonymous]\nenabled = true\n");
        assert!(m.contains("anonymous.root"), "{m}");
    }

    #[test]
    fn load_reports_path_and_os_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let m = load(&missing).unwrap_err().to_string();
        assert!(
            m.starts_with("cannot read ") && m.contains("nope.toml"),
            "{m}"
        );
        let file = dir.path().join("ftps.toml");
        std::fs::write(&file, "[server]\nbogus = 1\n").unwrap();
        let m = load(&file).unwrap_err().to_string();
        assert!(m.contains("ftps.toml line 2: server.bogus"), "{m}");
    }

    #[test]
    fn validate_built_config() {
        let mut c = Config::default();
        assert!(c.validate("built").is_ok());
        c.tls.versions.clear();
        assert!(matches!(
            c.validate("built"),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn locate_handles_quotes_comments_and_inline_arrays() {
        let text =
            "a = 1 # x = [\n[\"q.r\"]\n'k' = \"v = [\"\n[[t]]\n[[t]]\nz = [{ y = 1 }, { w = 2 }]\n";
        assert_eq!(
            locate::key_at(text, text.find("'k'").unwrap()).unwrap(),
            "q.r.k"
        );
        assert_eq!(
            locate::key_at(text, text.find("w =").unwrap()).unwrap(),
            "t[1].z[1].w"
        );
        assert_eq!(locate::line_of_key(text, "t[1]"), Some(5));
    }
}
