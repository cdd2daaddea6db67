//! Errors a program can act on: the reply that was not expected (with the
//! reply in it), TLS failures, timeouts, truncated transfers — each with a
//! hint for the common FTPS failures.

use ftps_proto::client::LoginError;
use ftps_proto::reply::Reply;

/// Everything that can go wrong talking to an FTPS server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// TLS failed (certificate, handshake, protocol).
    #[error("TLS error: {0}")]
    Tls(#[from] rustls::Error),
    /// Nothing happened in time.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The server answered something else than the operation needs.
    #[error("unexpected reply to {command} (expected {expected}): {}", reply_text(.reply))]
    UnexpectedReply {
        /// The command sent.
        command: String,
        /// What was expected, e.g. "2xx".
        expected: &'static str,
        /// The whole reply.
        reply: Reply,
    },
    /// Connection set-up (TLS, login, PBSZ/PROT, CCC) failed.
    #[error("{0}")]
    Login(#[from] LoginError),
    /// The data connection ended without a TLS close_notify, or short of the
    /// announced size: the transfer may be truncated.
    #[error("transfer truncated: received {received} bytes{}", expected_text(.expected))]
    Truncated {
        /// Bytes received.
        received: u64,
        /// Bytes announced (SIZE, MLST or the 150 reply), when known.
        expected: Option<u64>,
    },
    /// The control connection closed.
    #[error("the server closed the control connection")]
    ConnectionClosed,
    /// A reply could not be parsed or was not valid.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The URL or an option is not usable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

fn reply_text(reply: &Reply) -> String {
    format!("{} {}", reply.code, reply.text())
}

fn expected_text(expected: &Option<u64>) -> String {
    match expected {
        Some(n) => format!(" of {n}"),
        None => String::new(),
    }
}

impl Error {
    /// The reply, when the error is about one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Error::UnexpectedReply { reply, .. } => Some(reply),
            Error::Login(
                LoginError::Greeting(reply)
                | LoginError::TlsRefused(reply)
                | LoginError::LoginRefused(reply)
                | LoginError::CccRefused(reply),
            ) => Some(reply),
            Error::Login(LoginError::ProtectionRefused { reply, .. })
            | Error::Login(LoginError::CommandFailed { reply, .. })
            | Error::Login(LoginError::Unexpected { reply, .. }) => Some(reply),
            _ => None,
        }
    }

    /// Does this look like the server refusing a data connection that did
    /// not resume the TLS session (RFC 4217 §10.2)?
    pub fn is_session_reuse_refusal(&self) -> bool {
        match self.reply() {
            Some(reply) if matches!(reply.code, 522 | 425 | 450) => {
                let text = reply.text().to_ascii_lowercase();
                text.contains("reuse") || text.contains("resum") || reply.code == 522
            }
            _ => false,
        }
    }

    /// A hint for the common FTPS failures.
    pub fn hint(&self) -> Option<&'static str> {
        if self.is_session_reuse_refusal() {
            return Some(
                "the server requires data connections to resume the control connection's TLS \
                 session and refused this one; this client resumes by default, so a middlebox \
                 or a server-side session cache limit is likely",
            );
        }
        match self {
            Error::Login(LoginError::TlsRefused(_)) => Some(
                "the server does not offer TLS; plain FTP sends the password in clear text and is \
                 only used with --plain",
            ),
            Error::Tls(rustls::Error::AlertReceived(alert)) => client_certificate_hint(*alert),
            Error::Tls(rustls::Error::InvalidCertificate(_)) => Some(
                "the server certificate is not trusted: pass --cacert FILE, or --pin sha256:HASH \
                 for a self-signed server",
            ),
            Error::Timeout("connecting the data connection") => Some(
                "the data connection could not be made: the server may announce an unreachable \
                 passive address or a firewall blocks the port; try --active",
            ),
            Error::Truncated { .. } => Some(
                "the data connection ended early or without a TLS close_notify; the file is \
                 incomplete — retry with -c to resume",
            ),
            Error::UnexpectedReply { reply, .. } if reply.code == 521 => {
                Some("the server refuses this PROT level for data: use PROT P (the default)")
            }
            Error::UnexpectedReply { reply, .. } if reply.code == 530 => {
                Some("not logged in, or the server requires TLS before login")
            }
            _ => None,
        }
    }
}

/// The alerts a server sends about the client's certificate (RFC 8446 §6.2,
/// RFC 4217 §15.1.2: a server may require one).
fn client_certificate_hint(alert: rustls::AlertDescription) -> Option<&'static str> {
    use rustls::AlertDescription as A;
    match alert {
        A::CertificateRequired => {
            Some("the server requires a TLS client certificate: pass --cert FILE --key FILE (PEM)")
        }
        A::HandshakeFailure => Some(
            "the server ended the TLS handshake: it may require a client certificate \
             (--cert FILE --key FILE), or share no TLS version or cipher suite with this client",
        ),
        A::UnknownCA
        | A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateRevoked
        | A::CertificateExpired
        | A::CertificateUnknown
        | A::AccessDenied => Some(
            "the server refused the client certificate given with --cert: it is not signed by \
             a CA the server trusts, or it has expired or been revoked",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4217_s15_1_2_client_certificate_alerts_have_hints() {
        let hint = |alert| Error::Tls(rustls::Error::AlertReceived(alert)).hint();
        let required = hint(rustls::AlertDescription::CertificateRequired);
        assert!(required.is_some_and(|h| h.contains("--cert FILE --key FILE")));
        let refused = hint(rustls::AlertDescription::UnknownCA);
        assert!(refused.is_some_and(|h| h.contains("refused the client certificate")));
        assert!(hint(rustls::AlertDescription::HandshakeFailure).is_some());
        assert!(hint(rustls::AlertDescription::InternalError).is_none());
    }
}
