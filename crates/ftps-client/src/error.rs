//! Errors a program can act on: the reply that was not expected (with the
//! reply in it), TLS failures (in words, [`crate::tls_words`]), timeouts,
//! truncated transfers, unreadable listings — each with a hint for the
//! common FTPS failures: a refused data connection (RFC 4217 §10.2, with
//! the reason the server gives), a refused PROT P (§9), an untrusted or
//! unpinned certificate (§15.1.1), a client certificate the server wants
//! (§15.1.2), an implicit-TLS port reached as explicit.

use ftps_proto::client::LoginError;
use ftps_proto::reply::Reply;
use rustls::CertificateError;

use crate::tls::PinMismatch;
use crate::tls_words;

/// Everything that can go wrong talking to an FTPS server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// TLS failed (certificate, handshake, protocol).
    #[error("{}", tls_words::describe(.0))]
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
    /// A listing had lines, and not one of them could be read as an entry.
    #[error("the {verb} listing could not be read: none of its {lines} lines is an entry; the first: {}", String::from_utf8_lossy(.line))]
    UnreadableListing {
        /// MLSD or LIST.
        verb: &'static str,
        /// Its first line.
        line: Vec<u8>,
        /// How many lines it had.
        lines: usize,
    },
    /// The server does not offer what the operation needs (FEAT).
    #[error("the server does not offer {0}")]
    Unsupported(&'static str),
    /// An explicit-FTPS connection (`ftp://`) got no greeting, and a TLS
    /// handshake on the same port was answered: the port is implicit FTPS.
    #[error("no FTP greeting, but the port answers a TLS handshake: it speaks implicit FTPS (TLS from the first byte)")]
    ImplicitTlsPort,
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
            return Some(self.reply().map_or(REUSE_GENERIC, session_refusal_hint));
        }
        if self.is_prot_p_refused() {
            return Some(
                "the server refuses to protect data connections (PROT P): --prot C sends files \
                 and listings in clear text, readable and changeable by anyone on the path \
                 (the password and commands stay protected); use it only on a network you trust",
            );
        }
        match self {
            Error::Login(LoginError::TlsRefused(_)) => Some(
                "the server does not offer TLS; plain FTP sends the password in clear text and is \
                 only used with --plain",
            ),
            Error::Tls(rustls::Error::AlertReceived(alert)) => client_certificate_hint(*alert),
            Error::Tls(rustls::Error::InvalidCertificate(cert)) => Some(certificate_hint(cert)),
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
            Error::ImplicitTlsPort => Some(
                "use an ftps:// URL for this port (implicit FTPS); ftp:// is for ports that \
                 greet in plain text and then switch with AUTH TLS",
            ),
            Error::UnreadableListing { .. } => Some(
                "the server's listing format is not one this client reads (MLSD facts, Unix or \
                 DOS LIST lines)",
            ),
            _ => None,
        }
    }

    /// Did the server refuse `PROT P`, during set-up or later?
    pub fn is_prot_p_refused(&self) -> bool {
        match self {
            Error::Login(LoginError::ProtectionRefused { command, .. }) => *command == "PROT P",
            Error::UnexpectedReply { command, .. } => command == "PROT P",
            _ => false,
        }
    }
}

const REUSE_GENERIC: &str = "the server requires data connections to resume the control \
     connection's TLS session and refused this one; this client resumes by default, so a \
     middlebox or a server-side session cache limit is likely";

/// The hint for a refused data connection, by the reason the server gives
/// (RFC 4217 §10.2): no session offered, another control connection's
/// session, this connection's session with other TLS settings, another
/// client certificate. `ftps serve` names the case with a key in brackets
/// (`[foreign-session]`); other servers' words are matched too.
fn session_refusal_hint(reply: &Reply) -> &'static str {
    let text = reply.text().to_ascii_lowercase();
    let says = |key: &str, words: &[&str]| {
        text.contains(&format!("[{key}]")) || words.iter().any(|w| text.contains(w))
    };
    if says("certificate-mismatch", &["certificate"]) {
        "the data connection presented another TLS client certificate than the control \
         connection; the server requires the same one (this client presents --cert on both)"
    } else if says("foreign-session", &["another control", "other control"]) {
        "the data connection offered the TLS session of another control connection; the \
         server accepts only this connection's own session (a TLS proxy or a shared session \
         cache in between can cause this)"
    } else if says("unresumable-session", &[]) {
        "the data connection offered this connection's TLS session with other TLS settings \
         (server name or cipher suite), so it could not be resumed: a TLS proxy in between \
         can cause this"
    } else if says(
        "no-session",
        &[
            "no session",
            "full handshake",
            "not resume",
            "no tls session",
        ],
    ) {
        "the data connection started a new TLS session instead of resuming the control \
         connection's; this client resumes by default, so the session was likely lost (a TLS \
         proxy in between, or a server that issued no session to resume)"
    } else {
        REUSE_GENERIC
    }
}

/// What to do about a server certificate that was not accepted.
fn certificate_hint(error: &CertificateError) -> &'static str {
    match error {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "connect with a name the certificate is for, or trust this exact server with \
             --pin sha256:HASH"
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "the server needs a current certificate (or this machine's clock is wrong); \
             --pin sha256:HASH trusts one key whatever its dates"
        }
        CertificateError::Other(other) if other.0.downcast_ref::<PinMismatch>().is_some() => {
            "if the server's key was changed on purpose, pin the new fingerprint shown; \
             otherwise someone may be intercepting the connection"
        }
        CertificateError::Other(other)
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) =>
        {
            "trust exactly this certificate with --cacert FILE (the server's certificate \
             itself) or --pin sha256:HASH; better, give the server a certificate without \
             CA:TRUE"
        }
        _ => {
            "the server certificate is not trusted: pass --cacert FILE, or --pin sha256:HASH \
             for a self-signed server"
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

    fn refused(code: u16, text: &str) -> Error {
        Error::UnexpectedReply {
            command: "RETR".into(),
            expected: "226",
            reply: Reply::new(code, text),
        }
    }

    /// The 522 texts of `ftps serve` (the protocol crate's), each turned
    /// into the hint for its case.
    #[test]
    fn rfc4217_s10_2_each_522_of_ftps_serve_gets_the_hint_for_its_case() {
        use ftps_proto::session::replies::reuse_refused;
        use ftps_proto::session::ReuseRefusal as R;
        let hint = |reason| {
            let e = Error::UnexpectedReply {
                command: "RETR".into(),
                expected: "226",
                reply: reuse_refused(reason),
            };
            assert!(e.is_session_reuse_refusal());
            e.hint().unwrap_or_default()
        };
        assert!(hint(R::NoSessionOffered).contains("new TLS session instead of resuming"));
        assert!(hint(R::ForeignSession).contains("another control connection"));
        assert!(hint(R::SessionNotResumable).contains("other TLS settings"));
        assert!(hint(R::CertificateMismatch).contains("client certificate"));
    }

    #[test]
    fn rfc4217_s10_2_refusal_hint_names_the_reason_the_server_gives() {
        let hint = |text| refused(522, text).hint().unwrap_or_default();
        assert!(
            hint("TLS session of another control connection; data refused")
                .contains("another control connection")
        );
        assert!(
            hint("the data connection presented a different client certificate")
                .contains("client certificate")
        );
        assert!(hint("no TLS session offered (full handshake)").contains("new TLS session"));
        assert_eq!(
            hint("SSL connection failed: session reuse required"),
            REUSE_GENERIC
        );
    }

    #[test]
    fn rfc4217_s9_prot_p_refused_suggests_prot_c_and_says_it_is_clear() {
        let e = Error::Login(LoginError::ProtectionRefused {
            command: "PROT P",
            reply: Reply::new(534, "PROT P not supported"),
        });
        let hint = e.hint().unwrap_or_default();
        assert!(
            hint.contains("--prot C") && hint.contains("clear text"),
            "{hint}"
        );
        let later = Error::UnexpectedReply {
            command: "PROT P".into(),
            expected: "2xx",
            reply: Reply::new(536, "no"),
        };
        assert!(later.hint().unwrap_or_default().contains("--prot C"));
        let clear = Error::Login(LoginError::ProtectionRefused {
            command: "PROT C",
            reply: Reply::new(536, "Not supported"),
        });
        assert!(!clear.hint().unwrap_or_default().contains("--prot C"));
    }
}
