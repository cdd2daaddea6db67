//! `ftps-proto`: the FTP and FTPS protocol without I/O.
//!
//! No sockets, no async runtime, no clock: bytes and events go in, replies and
//! actions come out, so every rule of RFC 959, RFC 2228, RFC 2389, RFC 2428,
//! RFC 3659 and RFC 4217 is a plain unit test. The server crate (and the
//! client) drive these types over tokio and rustls.
//!
//! - [`line`]: control-connection framing (Telnet IAC, line-length limit)
//! - [`command`]: command parsing
//! - [`reply`]: reply encoding and incremental parsing
//! - [`address`]: PORT/PASV/EPRT/EPSV address formats
//! - [`entry`], [`facts`], [`list`], [`timefmt`]: directory entries, MLSx facts, LIST lines, times
//! - [`path`]: virtual paths that never leave the root
//! - [`ascii`]: TYPE A line-ending conversion
//! - [`policy`]: the TLS policy (RFC 4217 §10) and its secure defaults
//! - [`session`]: the server session state machine
//! - [`client`]: the client set-up state machine (RFC 4217 §10.3 timing options) and the
//!   timing of a data connection's TLS handshake ([`client::data`])

pub mod address;
pub mod ascii;
pub mod client;
pub mod command;
pub mod entry;
pub mod facts;
pub mod line;
pub mod list;
pub mod path;
pub mod policy;
pub mod reply;
pub mod session;
pub mod timefmt;
