//! TLS failures in words (RFC 4217 §15.1.1: the client verifies the
//! server's certificate, and a user who is refused must learn why): what
//! was wrong with the certificate — a CA certificate used as a server's,
//! expired, not yet valid, issued for another name, from an unknown issuer,
//! not the pinned one (with the fingerprint the server really has) — what
//! the server's alert means, and what an incompatible or misbehaving peer
//! did; never a debug dump of the TLS library's error values.

use rustls::{AlertDescription, CertificateError, Error as TlsError, PeerIncompatible};
use rustls_pki_types::UnixTime;

use crate::tls::PinMismatch;

/// One sentence for a TLS failure.
pub fn describe(error: &TlsError) -> String {
    match error {
        TlsError::InvalidCertificate(cert) => certificate(cert),
        TlsError::AlertReceived(alert) => {
            format!(
                "the server ended the TLS handshake: {}",
                alert_words(*alert)
            )
        }
        TlsError::NoCertificatesPresented => "the server presented no certificate".into(),
        TlsError::PeerIncompatible(why) => incompatible(why),
        TlsError::PeerMisbehaved(_) => "the server broke the TLS protocol".into(),
        TlsError::InvalidMessage(_)
        | TlsError::InappropriateMessage { .. }
        | TlsError::InappropriateHandshakeMessage { .. } => {
            "the server did not answer in TLS (its bytes are no TLS handshake)".into()
        }
        TlsError::DecryptError => "TLS decryption failed (the data was changed on the way)".into(),
        TlsError::PeerSentOversizedRecord => "the server sent an oversized TLS record".into(),
        TlsError::General(text) => format!("TLS failure: {text}"),
        other => format!("TLS failure: {other}"),
    }
}

/// Why the server's certificate was not accepted.
fn certificate(error: &CertificateError) -> String {
    let not = "the server certificate is not trusted";
    match error {
        CertificateError::UnknownIssuer => format!(
            "{not}: it is not signed by a trusted certificate authority (unknown issuer; \
             self-signed certificates are like that)"
        ),
        CertificateError::Expired => format!("{not}: it has expired"),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "{not}: it expired on {} (it is now {})",
            date(*not_after),
            date(*time)
        ),
        CertificateError::NotValidYet => format!("{not}: it is not valid yet"),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "{not}: it is valid only from {} (it is now {}; check the clocks)",
            date(*not_before),
            date(*time)
        ),
        CertificateError::NotValidForName => format!("{not}: it was issued for another name"),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names: Vec<&str> = presented.iter().map(|n| plain_name(n)).collect();
            let names = if names.is_empty() {
                "no name at all".to_string()
            } else {
                names.join(", ")
            };
            format!(
                "{not}: it is not valid for {}; it is for {names}",
                expected.to_str()
            )
        }
        CertificateError::Revoked => format!("{not}: it has been revoked"),
        CertificateError::BadSignature => format!("{not}: its signature is wrong"),
        CertificateError::BadEncoding => format!("{not}: it cannot be read (bad encoding)"),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            format!("{not}: it is not meant for TLS servers (extended key usage)")
        }
        CertificateError::UnhandledCriticalExtension => {
            format!("{not}: it has a critical extension this client does not know")
        }
        CertificateError::Other(other) => {
            if let Some(pin) = other.0.downcast_ref::<PinMismatch>() {
                return pin.to_string();
            }
            if let Some(webpki::Error::CaUsedAsEndEntity) = other.0.downcast_ref::<webpki::Error>()
            {
                return format!(
                    "{not}: it is a CA certificate, which cannot stand for a server \
                     (its basic constraints say CA:TRUE)"
                );
            }
            format!("{not}: {other_text}", other_text = other.0)
        }
        _ => format!("{not}: it could not be verified"),
    }
}

/// A name the certificate presents, as the verifier reports it
/// (`DnsName("ftp.example.com")`, `IpAddress(127.0.0.1)`): the name alone.
fn plain_name(reported: &str) -> &str {
    for (open, close) in [
        ("DnsName(\"", "\")"),
        ("IpAddress(", ")"),
        ("UniformResourceIdentifier(\"", "\")"),
    ] {
        if let Some(inner) = reported
            .strip_prefix(open)
            .and_then(|r| r.strip_suffix(close))
        {
            return inner;
        }
    }
    reported
}

/// The server's alert, in words (RFC 8446 §6.2).
fn alert_words(alert: AlertDescription) -> String {
    use AlertDescription as A;
    let words = match alert {
        A::CertificateRequired => "it requires a client certificate",
        A::HandshakeFailure => "no acceptable set of TLS parameters (handshake failure)",
        A::ProtocolVersion => "it does not accept the TLS version offered",
        A::InsufficientSecurity => "it wants stronger ciphers",
        A::UnknownCA => "it does not trust the issuer of the client certificate",
        A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown => {
            "it refuses the client certificate"
        }
        A::CertificateExpired => "the client certificate has expired",
        A::CertificateRevoked => "the client certificate has been revoked",
        A::AccessDenied => "access denied",
        A::DecodeError | A::IllegalParameter | A::UnexpectedMessage => {
            "it could not understand this client's message"
        }
        A::DecryptError | A::BadRecordMac => "decryption failed",
        A::InternalError => "an internal error on the server",
        A::UnrecognisedName => "it does not know the host name asked for",
        A::NoApplicationProtocol => "no application protocol in common",
        A::CloseNotify => "it closed the connection",
        _ => "it sent a fatal alert",
    };
    words.to_string()
}

fn incompatible(why: &PeerIncompatible) -> String {
    use PeerIncompatible as P;
    match why {
        P::ServerDoesNotSupportTls12Or13 | P::ServerTlsVersionIsDisabledByOurConfig => {
            "the server does not speak the TLS versions this client allows (1.2 and 1.3, or \
             the one chosen with --tls12/--tls13)"
                .into()
        }
        P::NoCipherSuitesInCommon => "the server shares no cipher suite with this client".into(),
        P::NoKxGroupsInCommon => "the server shares no key exchange group with this client".into(),
        P::NoSignatureSchemesInCommon => {
            "the server shares no signature scheme with this client".into()
        }
        _ => "the server and this client have no TLS parameters in common".into(),
    }
}

/// `2026-11-21 15:10:00 UTC`.
fn date(t: UnixTime) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        Err(_) => format!("{secs} seconds after 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::OtherError;
    use std::sync::Arc;

    fn words(e: CertificateError) -> String {
        describe(&TlsError::InvalidCertificate(e))
    }

    #[test]
    fn certificate_errors_are_words_not_debug_text() {
        let t = |s| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s));
        let expired = words(CertificateError::ExpiredContext {
            time: t(1_795_273_800),
            not_after: t(1_700_000_000),
        });
        assert!(
            expired.contains("expired on 2023-11-14 22:13:20 UTC"),
            "{expired}"
        );
        let unknown = words(CertificateError::UnknownIssuer);
        assert!(unknown.contains("not signed by a trusted"), "{unknown}");
        let name = words(CertificateError::NotValidForNameContext {
            expected: rustls_pki_types::ServerName::try_from("ftp.example.com")
                .unwrap_or_else(|_| unreachable!()),
            presented: vec![
                "DnsName(\"localhost\")".into(),
                "IpAddress(127.0.0.1)".into(),
            ],
        });
        assert!(
            name.contains("not valid for ftp.example.com; it is for localhost, 127.0.0.1"),
            "{name}"
        );
        let ca = TlsError::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
            webpki::Error::CaUsedAsEndEntity,
        ))));
        assert!(
            describe(&ca).contains("is a CA certificate"),
            "{}",
            describe(&ca)
        );
        for text in [expired, unknown, name, describe(&ca)] {
            assert!(!text.contains("Context") && !text.contains('{'), "{text}");
        }
    }

    #[test]
    fn alerts_are_words() {
        let text = describe(&TlsError::AlertReceived(
            AlertDescription::CertificateRequired,
        ));
        assert_eq!(
            text,
            "the server ended the TLS handshake: it requires a client certificate"
        );
    }
}
