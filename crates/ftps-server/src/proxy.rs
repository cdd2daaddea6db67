//! The PROXY protocol (HAProxy's "PROXY protocol" specification, versions 1
//! and 2): a load balancer that forwards a TCP connection first sends one
//! header naming the client's address, so that everything that looks at the
//! client — the per-address session cap, bans, logs, the data connection's
//! address check (RFC 2577 port stealing) — sees the real client and not the
//! balancer.
//!
//! A header is believed only from the configured trusted ranges
//! (`proxy_protocol.trusted`): on a listener that expects headers, a
//! connection from anywhere else is refused, and so is a trusted connection
//! whose first bytes are not a complete, valid header within
//! `proxy_protocol.header_timeout_secs`. The header is read byte-exactly
//! (never a byte of what follows it, which belongs to FTP or TLS) and is
//! bounded: a version 1 line is at most 107 bytes (the specification's
//! limit), a version 2 header at most [`MAX_V2_BYTES`]. Parsing is the `ppp`
//! crate's; this module only frames the bytes and decides what they mean
//! for the server.
//!
//! A `LOCAL` (version 2) or `UNKNOWN` (version 1) header, which balancers
//! send for their own health checks, stands for the balancer itself: the
//! connection keeps the balancer's address.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use ppp::{v1, v2, HeaderResult};
use serde::{Deserialize, Deserializer};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest version 1 header, CRLF included (the specification's limit).
pub const MAX_V1_BYTES: usize = 107;
/// The 12-byte signature that starts a version 2 header.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a version 2 header: signature, version and command,
/// family and protocol, length.
const V2_FIXED_BYTES: usize = 16;
/// The longest version 2 header accepted, addresses and TLVs included.
/// HAProxy's `send-proxy-v2` sends 28 (IPv4) or 52 (IPv6) bytes; its
/// optional TLVs (unique id, TLS details) stay well below this.
pub const MAX_V2_BYTES: usize = V2_FIXED_BYTES + 2048;

/// Why a connection's PROXY header was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProxyError {
    /// The connection does not come from a trusted range.
    #[error("{0} is not a trusted PROXY protocol sender")]
    Untrusted(IpAddr),
    /// The first bytes are not a PROXY protocol header.
    #[error("no PROXY protocol header")]
    Missing,
    /// The header is longer than the limit.
    #[error("PROXY protocol header longer than {0} bytes")]
    TooLong(usize),
    /// The header is malformed.
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(String),
    /// The header did not arrive in time.
    #[error("no complete PROXY protocol header within {0:?}")]
    Timeout(Duration),
    /// The connection failed or closed before the header was complete.
    #[error("connection lost while reading the PROXY protocol header: {0}")]
    Io(String),
}

impl From<io::Error> for ProxyError {
    fn from(error: io::Error) -> Self {
        ProxyError::Io(error.to_string())
    }
}

/// One trusted range: `"10.0.0.0/8"`, `"::1/128"` or a single address
/// `"127.0.0.1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedRange(IpNet);

impl TrustedRange {
    /// Whether `ip` (IPv4-mapped IPv6 addresses as IPv4) is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl std::str::FromStr for TrustedRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('/') {
            s.parse::<IpNet>()
                .map(|net| TrustedRange(net.trunc()))
                .map_err(|e| format!("{s:?} is not an address range (\"10.0.0.0/8\"): {e}"))
        } else {
            s.parse::<IpAddr>()
                .map(|ip| TrustedRange(IpNet::from(ip)))
                .map_err(|e| format!("{s:?} is not an address or range: {e}"))
        }
    }
}

impl std::fmt::Display for TrustedRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for TrustedRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What a PROXY header says about a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proxied {
    /// The client's address; `None` for `LOCAL`/`UNKNOWN` headers (the
    /// balancer's own connection) and for address families other than TCP
    /// over IPv4 or IPv6.
    pub source: Option<SocketAddr>,
    /// The address the client connected to (the balancer's); `None` when
    /// `source` is.
    pub destination: Option<SocketAddr>,
}

/// The client of an accepted connection, as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress {
    /// The real client: the PROXY header's source, or the TCP peer.
    pub peer: SocketAddr,
    /// The address the client connected to on the balancer (from the PROXY
    /// header), if any: the default address announced in PASV replies.
    pub balancer: Option<SocketAddr>,
}

/// Reads the PROXY header of a connection from `from` (the TCP peer) when
/// `from` is trusted: the real client. Bounded by `timeout`.
pub async fn accept_header<R: AsyncRead + Unpin>(
    stream: &mut R,
    from: SocketAddr,
    trusted: &[TrustedRange],
    timeout: Duration,
) -> Result<ClientAddress, ProxyError> {
    if !trusted.iter().any(|range| range.contains(from.ip())) {
        return Err(ProxyError::Untrusted(from.ip()));
    }
    let bytes = tokio::time::timeout(timeout, read_header(stream))
        .await
        .map_err(|_| ProxyError::Timeout(timeout))??;
    let proxied = parse_header(&bytes)?;
    Ok(match proxied.source {
        Some(source) => ClientAddress {
            peer: SocketAddr::new(source.ip().to_canonical(), source.port()),
            balancer: proxied.destination,
        },
        None => ClientAddress {
            peer: from,
            balancer: None,
        },
    })
}

/// Reads exactly one PROXY header (version 1 or 2) from the start of a
/// stream, and not a byte more.
pub async fn read_header<R: AsyncRead + Unpin>(stream: &mut R) -> Result<Vec<u8>, ProxyError> {
    let mut first = [0u8; 1];
    stream.read_exact(&mut first).await?;
    match first[0] {
        b'P' => read_v1(stream, first[0]).await,
        b'\r' => read_v2(stream, first[0]).await,
        _ => Err(ProxyError::Missing),
    }
}

/// A version 1 line: up to LF, at most [`MAX_V1_BYTES`]. One byte per read:
/// the line has no length field, and the bytes after it are not ours.
async fn read_v1<R: AsyncRead + Unpin>(stream: &mut R, first: u8) -> Result<Vec<u8>, ProxyError> {
    let mut line = Vec::with_capacity(MAX_V1_BYTES);
    line.push(first);
    loop {
        let byte = stream.read_u8().await?;
        line.push(byte);
        if byte == b'\n' {
            return Ok(line);
        }
        if line.len() >= MAX_V1_BYTES {
            return Err(ProxyError::TooLong(MAX_V1_BYTES));
        }
        if !line.starts_with(&b"PROXY "[..line.len().min(6)]) {
            return Err(ProxyError::Missing);
        }
    }
}

/// A version 2 header: the fixed 16 bytes, then the length they announce.
async fn read_v2<R: AsyncRead + Unpin>(stream: &mut R, first: u8) -> Result<Vec<u8>, ProxyError> {
    let mut header = vec![0u8; V2_FIXED_BYTES];
    header[0] = first;
    stream.read_exact(&mut header[1..]).await?;
    if header[..12] != V2_SIGNATURE {
        return Err(ProxyError::Missing);
    }
    let length = usize::from(u16::from_be_bytes([header[14], header[15]]));
    if V2_FIXED_BYTES + length > MAX_V2_BYTES {
        return Err(ProxyError::TooLong(MAX_V2_BYTES));
    }
    header.resize(V2_FIXED_BYTES + length, 0);
    stream.read_exact(&mut header[V2_FIXED_BYTES..]).await?;
    Ok(header)
}

/// What a complete header says (the `ppp` crate parses it).
pub fn parse_header(bytes: &[u8]) -> Result<Proxied, ProxyError> {
    let unknown = Proxied {
        source: None,
        destination: None,
    };
    let pair = |s: SocketAddr, d: SocketAddr| Proxied {
        source: Some(s),
        destination: Some(d),
    };
    match HeaderResult::parse(bytes) {
        HeaderResult::V1(Ok(header)) => Ok(match header.addresses {
            v1::Addresses::Unknown => unknown,
            v1::Addresses::Tcp4(a) => pair(
                (a.source_address, a.source_port).into(),
                (a.destination_address, a.destination_port).into(),
            ),
            v1::Addresses::Tcp6(a) => pair(
                (a.source_address, a.source_port).into(),
                (a.destination_address, a.destination_port).into(),
            ),
        }),
        HeaderResult::V2(Ok(header)) => {
            if header.command == v2::Command::Local {
                return Ok(unknown);
            }
            if header.protocol == v2::Protocol::Datagram {
                return Err(ProxyError::Malformed("a datagram (UDP) header".into()));
            }
            Ok(match header.addresses {
                v2::Addresses::IPv4(a) => pair(
                    (a.source_address, a.source_port).into(),
                    (a.destination_address, a.destination_port).into(),
                ),
                v2::Addresses::IPv6(a) => pair(
                    (a.source_address, a.source_port).into(),
                    (a.destination_address, a.destination_port).into(),
                ),
                v2::Addresses::Unspecified | v2::Addresses::Unix(_) => unknown,
            })
        }
        HeaderResult::V1(Err(error)) => Err(ProxyError::Malformed(format!("{error:?}"))),
        HeaderResult::V2(Err(error)) => Err(ProxyError::Malformed(format!("{error:?}"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
