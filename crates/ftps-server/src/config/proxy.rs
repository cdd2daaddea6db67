//! `[proxy_protocol]`: who may send PROXY protocol headers and how long a
//! header may take; and the passive settings in effect on a listener (its
//! own, else the `[server]` ones). Which listeners expect headers is a
//! listener's `proxy_protocol = true` (see [`super::ListenerConfig`]); the
//! protocol itself is [`crate::proxy`].

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{Config, ListenerConfig, PortRange};
pub use crate::proxy::TrustedRange;

/// Default for [`ProxyProtocolSection::header_timeout_secs`].
pub const DEFAULT_PROXY_HEADER_TIMEOUT_SECS: u64 = 5;

/// `[proxy_protocol]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyProtocolSection {
    /// Addresses or ranges (`"10.0.0.0/8"`, `"127.0.0.1"`) whose PROXY
    /// headers are believed: the balancers. On a listener with
    /// `proxy_protocol = true`, a connection from anywhere else is refused.
    /// Default: none.
    pub trusted: Vec<TrustedRange>,
    /// Seconds a trusted connection has to send its complete header. Default 5.
    pub header_timeout_secs: u64,
}

impl Default for ProxyProtocolSection {
    fn default() -> Self {
        ProxyProtocolSection {
            trusted: Vec::new(),
            header_timeout_secs: DEFAULT_PROXY_HEADER_TIMEOUT_SECS,
        }
    }
}

impl ProxyProtocolSection {
    /// `header_timeout_secs` as a [`Duration`].
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }
}

/// The passive settings of one listener's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PassiveSettings {
    /// The port range; `None`: the system's ephemeral range.
    pub ports: Option<PortRange>,
    /// The address announced by PASV.
    pub address: Option<IpAddr>,
    /// A host name resolved for each PASV reply.
    pub host: Option<String>,
    /// Passive data connections start with a PROXY protocol header.
    pub proxy_protocol: bool,
}

impl Config {
    /// The passive settings in effect on `listener`: its own where set, else
    /// `[server]`'s. A listener that sets an address or a host name replaces
    /// both of `[server]`'s.
    pub fn passive_on(&self, listener: &ListenerConfig) -> PassiveSettings {
        let s = &self.server;
        let (address, host) =
            if listener.passive_address.is_some() || listener.passive_host.is_some() {
                (listener.passive_address, listener.passive_host.clone())
            } else {
                (s.passive_address, s.passive_host.clone())
            };
        PassiveSettings {
            ports: listener.passive_ports.or(s.passive_ports),
            address,
            host,
            proxy_protocol: listener
                .passive_proxy_protocol
                .unwrap_or(listener.proxy_protocol),
        }
    }

    /// Checks of `[proxy_protocol]` and the passive settings.
    pub(super) fn check_proxy(&self) -> Result<(), (String, String)> {
        if self.proxy_protocol.header_timeout_secs == 0 {
            return Err((
                "proxy_protocol.header_timeout_secs".into(),
                "must be at least 1 (a timeout of 0 would disable it)".into(),
            ));
        }
        check_passive_name(
            "server",
            self.server.passive_address,
            self.server.passive_host.as_deref(),
        )?;
        for (key, listener) in self.listeners() {
            let expects = listener.proxy_protocol || listener.passive_proxy_protocol == Some(true);
            if expects && self.proxy_protocol.trusted.is_empty() {
                return Err((
                    format!("{key}.proxy_protocol"),
                    format!(
                        "listener {} expects PROXY protocol headers, but proxy_protocol.trusted names no balancer to accept them from",
                        listener.address
                    ),
                ));
            }
            check_passive_name(
                &key,
                listener.passive_address,
                listener.passive_host.as_deref(),
            )?;
        }
        Ok(())
    }
}

fn check_passive_name(
    prefix: &str,
    address: Option<IpAddr>,
    host: Option<&str>,
) -> Result<(), (String, String)> {
    let Some(host) = host else {
        return Ok(());
    };
    let key = format!("{prefix}.passive_host");
    if address.is_some() {
        return Err((
            key,
            "set passive_address or passive_host, not both".to_owned(),
        ));
    }
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err((key, format!("{host:?} is not a DNS host name")))
    }
}
