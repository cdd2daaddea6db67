//! `[server]`: listeners, passive ports, session and line limits, timeouts,
//! failed-login delays and bans, the greeting and the state directory.
//!
//! Explicit listeners take AUTH TLS on a plain connection (RFC 4217 §4),
//! implicit ones start TLS with the first byte (draft-murray-auth-ftp-ssl §4.2);
//! each may choose its own client-certificate setting. `passive_ports` and
//! `passive_address` shape PASV/EPSV replies (RFC 959 §4.1.2, RFC 2428 §3;
//! RFC 2577 §8 on port stealing); the per-address session cap, the delay after
//! a wrong password and the bans follow RFC 2577 §5. `max_line_bytes` bounds the
//! Telnet command line (RFC 959 §4.1) and `banner` is the text of the 220
//! greeting (RFC 959 §4.2). The checks across these values are in `check`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::ClientCertificates;

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
const LOCALHOST_V4: std::net::Ipv4Addr = std::net::Ipv4Addr::LOCALHOST;

/// Default for [`ServerSection::hash_max_bytes`]: 16 GiB.
pub const DEFAULT_HASH_MAX_BYTES: u64 = 16 << 30;

/// Default for [`ServerSection::abandoned_upload_secs`].
pub const DEFAULT_ABANDONED_UPLOAD_SECS: u64 = 600;

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
    /// local address (or, behind a PROXY-protocol balancer, the balancer's address the
    /// client connected to).
    pub passive_address: Option<IpAddr>,
    /// A host name resolved each time a PASV reply is made, whose first IPv4 address is
    /// announced (for a balancer or NAT with a dynamic address). Excludes `passive_address`.
    pub passive_host: Option<String>,
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
    /// Most octets one HASH command hashes (draft-bryan-ftpext-hash); a
    /// larger file or range is refused with 556 (RANG hashes it in parts).
    /// Default 16 GiB.
    pub hash_max_bytes: u64,
    /// An upload temp file that no live upload holds (its lock is free) and
    /// that has not changed for this many seconds was abandoned by a server
    /// that stopped mid-upload: it is reclaimed at start-up and every so
    /// often (a new file's becomes its resumable partial). Must be longer
    /// than every sharing server's `transfer_stall_timeout_secs`. Default 600.
    pub abandoned_upload_secs: u64,
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
            passive_host: None,
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
            hash_max_bytes: DEFAULT_HASH_MAX_BYTES,
            abandoned_upload_secs: DEFAULT_ABANDONED_UPLOAD_SECS,
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
/// optionally this listener's own client-certificate setting, PROXY protocol
/// and passive settings.
///
/// In TOML either a string, `"0.0.0.0:21"`, or a table,
/// `{ address = "0.0.0.0:990", client_certificates = "required" }`. The table's
/// `client_certificates` replaces `tls.client_certificates` for connections
/// accepted on this listener and for their data connections; the CA
/// (`tls.client_ca`) is the same for every listener. Its
/// `accept_upload_without_close_notify` replaces the `[policy]` value for
/// users who do not set it themselves. `proxy_protocol = true`
/// expects a PROXY protocol header (from `proxy_protocol.trusted` only) on
/// every connection of this listener and, unless `passive_proxy_protocol =
/// false`, on its sessions' passive data connections. `passive_ports`,
/// `passive_address` and `passive_host` replace the `[server]` ones for
/// sessions of this listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// The address to bind.
    pub address: SocketAddr,
    /// This listener's client-certificate setting; `None` uses
    /// `tls.client_certificates`.
    pub client_certificates: Option<ClientCertificates>,
    /// This listener's [`ftps_proto::policy::Policy::accept_upload_without_close_notify`];
    /// `None` uses `[policy]`.
    pub accept_upload_without_close_notify: Option<bool>,
    /// Connections start with a PROXY protocol header (v1 or v2).
    pub proxy_protocol: bool,
    /// Whether passive data connections start with one too; `None`: as
    /// `proxy_protocol`.
    pub passive_proxy_protocol: Option<bool>,
    /// This listener's passive port range; `None` uses `server.passive_ports`.
    pub passive_ports: Option<PortRange>,
    /// This listener's PASV address; `None` uses `server.passive_address`.
    pub passive_address: Option<IpAddr>,
    /// This listener's PASV host name; `None` uses `server.passive_host`.
    pub passive_host: Option<String>,
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
            accept_upload_without_close_notify: None,
            proxy_protocol: false,
            passive_proxy_protocol: None,
            passive_ports: None,
            passive_address: None,
            passive_host: None,
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
        write!(f, "{}", self.address)?;
        if let Some(mode) = self.client_certificates {
            write!(f, " (client certificates {mode})")?;
        }
        if self.proxy_protocol {
            write!(f, " (PROXY protocol)")?;
        }
        Ok(())
    }
}

/// The table form of a [`ListenerConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerTable {
    address: SocketAddr,
    #[serde(default)]
    client_certificates: Option<ClientCertificates>,
    #[serde(default)]
    accept_upload_without_close_notify: Option<bool>,
    #[serde(default)]
    proxy_protocol: bool,
    #[serde(default)]
    passive_proxy_protocol: Option<bool>,
    #[serde(default)]
    passive_ports: Option<PortRange>,
    #[serde(default)]
    passive_address: Option<IpAddr>,
    #[serde(default)]
    passive_host: Option<String>,
}

impl<'de> Deserialize<'de> for ListenerConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ListenerConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a socket address \"IP:PORT\" or a table { address = \"IP:PORT\", client_certificates = \"off\" | \"requested\" | \"required\", accept_upload_without_close_notify = true | false, proxy_protocol = true, passive_ports = \"A-B\", ... }",
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
                    accept_upload_without_close_notify: table.accept_upload_without_close_notify,
                    proxy_protocol: table.proxy_protocol,
                    passive_proxy_protocol: table.passive_proxy_protocol,
                    passive_ports: table.passive_ports,
                    passive_address: table.passive_address,
                    passive_host: table.passive_host,
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
