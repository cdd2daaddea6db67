//! The probing client: raw control connections that record every command
//! and reply ([`control`]), data connections whose TLS session the checker
//! chooses ([`data`]), the TLS configurations and session stores that let
//! one connection's session be offered on another ([`tls`]), and
//! ClientHellos rustls cannot send — SSL 3.0, TLS 1.0 and 1.1, any cipher
//! suite, compression — with the parsing of the server's answer ([`hello`]).
//!
//! The checker is a client only: it never imports the server crate.

pub mod control;
pub mod data;
pub mod hello;
pub mod tls;

use std::time::Duration;

/// Why a probe could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A socket operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// TLS failed.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Nothing came in time.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The server sent something that is not an FTP reply.
    #[error("not an FTP reply: {0}")]
    BadReply(String),
    /// The server answered a command with an unexpected reply.
    #[error("{command}: {code} {text}")]
    Refused {
        /// The command.
        command: String,
        /// The reply code.
        code: u16,
        /// The reply text.
        text: String,
    },
    /// A local problem (argument, configuration).
    #[error("{0}")]
    Local(String),
}

impl ProbeError {
    /// Whether the connection was closed or reset by the server.
    pub fn is_closed(&self) -> bool {
        match self {
            ProbeError::Closed => true,
            ProbeError::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

/// Turn an I/O error from tokio-rustls into the TLS error inside it, if any.
pub fn from_io(e: std::io::Error) -> ProbeError {
    let is_tls = e
        .get_ref()
        .map(|inner| inner.is::<rustls::Error>())
        .unwrap_or(false);
    if is_tls {
        if let Some(inner) = e.into_inner() {
            if let Ok(tls) = inner.downcast::<rustls::Error>() {
                return ProbeError::Tls(*tls);
            }
        }
        return ProbeError::Local("TLS failure".into());
    }
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return ProbeError::Closed;
    }
    ProbeError::Io(e)
}

/// Limits of one audit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connecting, a TLS handshake, one reply.
    pub reply: Duration,
    /// How long to wait for something that should not come (an injected
    /// command's reply, a stolen data connection).
    pub quiet: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            reply: Duration::from_secs(15),
            quiet: Duration::from_millis(1500),
        }
    }
}
