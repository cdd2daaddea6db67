//! `[limits]` and `[access]`: bandwidth shared by every session, and which
//! client addresses may connect at all (decided at connect, before any TLS
//! work, like the bans of RFC 2577 §5).
//!
//! The per-user counterparts (rates, sessions, quotas, addresses,
//! per-directory rules) are keys of `[[users]]`.

use ipnet::IpNet;
use serde::Deserialize;

/// `[limits]`: bandwidth of the whole server (0: unlimited).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Bytes per second all uploads together may use. Default 0 (no limit).
    pub upload_bytes_per_sec: u64,
    /// Bytes per second all downloads together may use. Default 0 (no limit).
    pub download_bytes_per_sec: u64,
}

/// `[access]`: client addresses, in CIDR form (`"10.0.0.0/8"`, `"::1/128"`;
/// a bare address is one host).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSection {
    /// When not empty, only these addresses may connect.
    pub allow: Vec<Cidr>,
    /// These addresses may not connect (even when `allow` matches).
    pub deny: Vec<Cidr>,
}

/// A network in CIDR form; a bare address means that one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(pub IpNet);

impl Cidr {
    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as
    /// IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            // 10.1.2.3/8 is a typo for 10.0.0.0/8 more often than not.
            if net.addr() != net.network() {
                return Err(format!(
                    "{s:?} has host bits set: did you mean \"{}\"?",
                    net.trunc()
                ));
            }
            return Ok(Cidr(net));
        }
        match s.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(Cidr(IpNet::from(ip))),
            Err(_) => Err(format!(
                "{s:?} is not an address or network in CIDR form (\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\")"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
