//! ClientHellos that rustls will not send, and what the server answers.
//!
//! rustls speaks TLS 1.2 and 1.3 with forward-secret AEAD suites only, so
//! it cannot ask a server whether it would accept SSL 3.0, TLS 1.0 or 1.1,
//! a suite without forward secrecy, or TLS compression. This module builds
//! such a ClientHello (RFC 5246 §7.4.1.2, RFC 8446 §4.1.2; serialised with
//! `tls-parser`), sends it where the handshake would start, and reads the
//! first flight back (parsed with `tls-parser`): the ServerHello's version,
//! suite, compression method and extensions (RFC 5746 renegotiation_info,
//! RFC 7627 extended_master_secret), and for a DHE suite the size of the
//! Diffie-Hellman prime from the ServerKeyExchange — or the alert, or the
//! silence. No handshake is ever completed: the connection is dropped after
//! the first flight, so nothing is learnt that a finished handshake would
//! show (client-initiated renegotiation, for one).

use std::time::Duration;

use tls_parser::{
    gen_tls_clienthello, parse_dh_params, parse_tls_message_handshake, parse_tls_raw_record,
    parse_tls_server_hello_extensions, TlsCipherKx, TlsCipherSuite, TlsClientHelloContents,
    TlsCompressionID, TlsExtension, TlsMessage, TlsMessageHandshake, TlsRecordType, TlsVersion,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// SSL 3.0.
pub const SSL3: u16 = 0x0300;
/// TLS 1.0.
pub const TLS10: u16 = 0x0301;
/// TLS 1.1.
pub const TLS11: u16 = 0x0302;
/// TLS 1.2.
pub const TLS12: u16 = 0x0303;
/// TLS 1.3.
pub const TLS13: u16 = 0x0304;

/// Bytes of the first flight read at most (a certificate chain fits).
const MAX_FLIGHT_BYTES: usize = 128 * 1024;

/// `SSL 3.0`, `TLS 1.0` … for a version number.
pub fn version_name(v: u16) -> String {
    match v {
        SSL3 => "SSL 3.0".into(),
        TLS10 => "TLS 1.0".into(),
        TLS11 => "TLS 1.1".into(),
        TLS12 => "TLS 1.2".into(),
        TLS13 => "TLS 1.3".into(),
        other => format!("version 0x{other:04x}"),
    }
}

/// The IANA name of a suite (or its number).
pub fn suite_name(id: u16) -> String {
    TlsCipherSuite::from_id(id)
        .map(|s| s.name.to_string())
        .unwrap_or_else(|| format!("0x{id:04x}"))
}

/// Every registered cipher suite usable with TLS 1.2 and older (not the
/// signalling values), by number.
pub fn legacy_suites() -> Vec<u16> {
    let mut ids: Vec<u16> = tls_parser::CIPHERS
        .values()
        .filter(|s| s.kx != TlsCipherKx::Tls13 && !s.name.contains("SCSV"))
        .map(|s| s.id.0)
        .collect();
    ids.sort_unstable();
    ids
}

/// The TLS 1.3 cipher suites, by number.
pub fn tls13_suites() -> Vec<u16> {
    let mut ids: Vec<u16> = tls_parser::CIPHERS
        .values()
        .filter(|s| s.kx == TlsCipherKx::Tls13)
        .map(|s| s.id.0)
        .collect();
    ids.sort_unstable();
    ids
}

/// What to offer.
#[derive(Debug, Clone)]
pub struct Hello {
    /// The highest version offered (TLS 1.3 through supported_versions).
    pub version: u16,
    /// The suites, by number.
    pub suites: Vec<u16>,
    /// Compression methods (0 = none, 1 = DEFLATE).
    pub compression: Vec<u8>,
    /// A DNS name for SNI, if the host is one.
    pub sni: Option<String>,
}

/// What the server's first flight held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// The version the server chose (supported_versions for TLS 1.3).
    pub version: u16,
    /// The suite chosen.
    pub suite: u16,
    /// The compression method chosen.
    pub compression: u8,
    /// RFC 5746 renegotiation_info in the ServerHello.
    pub secure_renegotiation: bool,
    /// RFC 7627 extended_master_secret in the ServerHello.
    pub extended_master_secret: bool,
    /// Bits of the Diffie-Hellman prime (DHE suites).
    pub dh_prime_bits: Option<usize>,
}

/// The server's answer to a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A ServerHello.
    Hello(ServerHello),
    /// A TLS alert.
    Alert {
        /// The alert description, e.g. `ProtocolVersion`.
        description: String,
    },
    /// The connection closed (or was reset) without a TLS answer.
    Closed,
    /// Bytes that are not TLS (shown).
    NotTls(String),
    /// Nothing within the limit.
    Silent,
}

impl Answer {
    /// One line for the evidence.
    pub fn describe(&self) -> String {
        match self {
            Answer::Hello(h) => {
                let mut s = format!(
                    "ServerHello: {}, {}",
                    version_name(h.version),
                    suite_name(h.suite)
                );
                if h.compression != 0 {
                    s.push_str(&format!(", compression method {}", h.compression));
                }
                if let Some(bits) = h.dh_prime_bits {
                    s.push_str(&format!(", DH prime {bits} bits"));
                }
                s
            }
            Answer::Alert { description } => format!("alert: {description}"),
            Answer::Closed => "connection closed without a TLS answer".into(),
            Answer::NotTls(bytes) => format!("not TLS: {bytes}"),
            Answer::Silent => "no answer".into(),
        }
    }
}

fn ext(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn u16_list(items: &[u16]) -> Vec<u8> {
    let mut body = ((items.len() * 2) as u16).to_be_bytes().to_vec();
    for i in items {
        body.extend_from_slice(&i.to_be_bytes());
    }
    body
}

fn extensions(h: &Hello) -> Vec<u8> {
    let mut out = Vec::new();
    if h.version == SSL3 {
        return out;
    }
    if let Some(name) = &h.sni {
        let mut body = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        body.push(0);
        body.extend_from_slice(&(name.len() as u16).to_be_bytes());
        body.extend_from_slice(name.as_bytes());
        ext(&mut out, 0x0000, &body);
    }
    // x25519, secp256r1, secp384r1, secp521r1, x448. No RFC 7919 FFDHE
    // groups: a DHE suite then shows the server's own prime, which is what
    // clients without them get (the worst case is what an audit wants).
    let groups = [0x001d, 0x0017, 0x0018, 0x0019, 0x001e];
    ext(&mut out, 0x000a, &u16_list(&groups));
    ext(&mut out, 0x000b, &[1, 0]);
    if h.version >= TLS12 {
        let schemes = [
            0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b,
            0x0401, 0x0501, 0x0601, 0x0203, 0x0201,
        ];
        ext(&mut out, 0x000d, &u16_list(&schemes));
    }
    ext(&mut out, 0x0017, &[]);
    ext(&mut out, 0xff01, &[0]);
    if h.version >= TLS13 {
        ext(&mut out, 0x002b, &[2, 0x03, 0x04]);
        let key: [u8; 32] = rand::random();
        let mut share = Vec::new();
        share.extend_from_slice(&(36u16).to_be_bytes());
        share.extend_from_slice(&0x001du16.to_be_bytes());
        share.extend_from_slice(&(32u16).to_be_bytes());
        share.extend_from_slice(&key);
        ext(&mut out, 0x0033, &share);
        ext(&mut out, 0x002d, &[1, 1]);
    }
    out
}

/// The ClientHello record.
pub fn client_hello(h: &Hello) -> Vec<u8> {
    let random: [u8; 32] = rand::random();
    let session_id: [u8; 32] = rand::random();
    let exts = extensions(h);
    let legacy_version = h.version.min(TLS12);
    let contents = TlsClientHelloContents {
        version: TlsVersion(legacy_version),
        random: &random,
        session_id: (h.version >= TLS13).then_some(&session_id[..]),
        ciphers: h
            .suites
            .iter()
            .map(|&id| tls_parser::TlsCipherSuiteID(id))
            .collect(),
        comp: h.compression.iter().map(|&c| TlsCompressionID(c)).collect(),
        ext: (!exts.is_empty()).then_some(&exts[..]),
    };
    let body = cookie_factory_gen(&contents);
    let record_version: u16 = if h.version == SSL3 { SSL3 } else { TLS10 };
    let mut record = vec![22];
    record.extend_from_slice(&record_version.to_be_bytes());
    record.extend_from_slice(&(body.len() as u16).to_be_bytes());
    record.extend_from_slice(&body);
    record
}

fn cookie_factory_gen(contents: &TlsClientHelloContents) -> Vec<u8> {
    // Only a writer error could fail; a Vec never does.
    let bytes: Vec<u8> =
        cookie_factory::gen_simple(gen_tls_clienthello(contents), Vec::new()).unwrap_or_default();
    bytes
}

/// Send the ClientHello on `tcp` and read the answer.
pub async fn exchange(tcp: &mut TcpStream, h: &Hello, limit: Duration) -> Answer {
    if tcp.write_all(&client_hello(h)).await.is_err() {
        return Answer::Closed;
    }
    read_answer(tcp, limit).await
}

async fn read_answer(tcp: &mut TcpStream, limit: Duration) -> Answer {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match parse_flight(&buf) {
            Parsed::Done(answer) => return answer,
            Parsed::More => {}
        }
        if buf.len() > MAX_FLIGHT_BYTES {
            return Answer::NotTls("a first flight larger than 128 KiB".into());
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return match parse_flight_final(&buf) {
                    Some(answer) => answer,
                    None if buf.is_empty() => Answer::Closed,
                    None => Answer::NotTls(shown(&buf)),
                }
            }
            Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(_) => {
                return parse_flight_final(&buf).unwrap_or(Answer::Silent);
            }
        }
    }
}

fn shown(bytes: &[u8]) -> String {
    let head = bytes.get(..bytes.len().min(80)).unwrap_or_default();
    crate::evidence::printable(&String::from_utf8_lossy(head))
}

enum Parsed {
    Done(Answer),
    More,
}

/// What the bytes so far say: a full answer, or more is needed.
fn parse_flight(buf: &[u8]) -> Parsed {
    if let Some(&first) = buf.first() {
        if !(20..=24).contains(&first) {
            return Parsed::Done(Answer::NotTls(shown(buf)));
        }
    }
    let mut rest = buf;
    let mut handshake = Vec::new();
    let mut hello: Option<ServerHello> = None;
    while let Ok((next, record)) = parse_tls_raw_record(rest) {
        rest = next;
        match record.hdr.record_type {
            TlsRecordType::Alert => {
                if hello.is_none() {
                    let description = match tls_parser::parse_tls_message_alert(record.data) {
                        Ok((_, TlsMessage::Alert(a))) => a.code.to_string(),
                        _ => "unreadable alert".into(),
                    };
                    return Parsed::Done(Answer::Alert { description });
                }
                return hello.map_or(Parsed::More, |h| Parsed::Done(Answer::Hello(h)));
            }
            TlsRecordType::Handshake => {
                handshake.extend_from_slice(record.data);
                if read_messages(&handshake, &mut hello) {
                    return hello.map_or(Parsed::More, |h| Parsed::Done(Answer::Hello(h)));
                }
            }
            // Encrypted records (TLS 1.3) or ChangeCipherSpec: the
            // plaintext part of the flight is over.
            _ => return hello.map_or(Parsed::More, |h| Parsed::Done(Answer::Hello(h))),
        }
    }
    Parsed::More
}

fn parse_flight_final(buf: &[u8]) -> Option<Answer> {
    let mut rest = buf;
    let mut handshake = Vec::new();
    let mut hello = None;
    while let Ok((next, record)) = parse_tls_raw_record(rest) {
        rest = next;
        if record.hdr.record_type == TlsRecordType::Handshake {
            handshake.extend_from_slice(record.data);
        }
    }
    read_messages(&handshake, &mut hello);
    hello.map(Answer::Hello)
}

/// Read the handshake messages so far into `hello`; true when the first
/// flight is complete enough (ServerHelloDone, or a ServerHello whose suite
/// needs nothing more), false when more is needed.
fn read_messages(mut bytes: &[u8], hello: &mut Option<ServerHello>) -> bool {
    while bytes.len() >= 4 {
        let len =
            (usize::from(bytes[1]) << 16) | (usize::from(bytes[2]) << 8) | usize::from(bytes[3]);
        if bytes.len() < 4 + len {
            return false;
        }
        let Ok((rest, msg)) = parse_tls_message_handshake(bytes) else {
            // A message tls-parser does not know: skip it.
            bytes = bytes.get(4 + len..).unwrap_or_default();
            continue;
        };
        bytes = rest;
        match msg {
            TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)) => {
                let mut h = ServerHello {
                    version: sh.version.0,
                    suite: sh.cipher.0,
                    compression: sh.compression.0,
                    secure_renegotiation: false,
                    extended_master_secret: false,
                    dh_prime_bits: None,
                };
                if let Some(ext) = sh.ext {
                    if let Ok((_, list)) = parse_tls_server_hello_extensions(ext) {
                        for e in list {
                            match e {
                                TlsExtension::RenegotiationInfo(_) => h.secure_renegotiation = true,
                                TlsExtension::ExtendedMasterSecret => {
                                    h.extended_master_secret = true
                                }
                                TlsExtension::SupportedVersions(v) => {
                                    if let Some(v) = v.first() {
                                        h.version = v.0;
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                let needs_kx = TlsCipherSuite::from_id(h.suite)
                    .map(|s| s.kx == TlsCipherKx::Dhe)
                    .unwrap_or(false)
                    && h.version < TLS13;
                *hello = Some(h);
                if !needs_kx {
                    return true;
                }
            }
            TlsMessage::Handshake(TlsMessageHandshake::ServerKeyExchange(kx)) => {
                if let Some(h) = hello.as_mut() {
                    if let Ok((_, params)) = parse_dh_params(kx.parameters) {
                        let p = params.dh_p;
                        let leading = p.iter().take_while(|b| **b == 0).count();
                        let significant = p.get(leading..).unwrap_or_default();
                        let bits = significant
                            .first()
                            .map(|b| (significant.len() - 1) * 8 + (8 - b.leading_zeros() as usize))
                            .unwrap_or(0);
                        h.dh_prime_bits = Some(bits);
                    }
                }
                return true;
            }
            TlsMessage::Handshake(TlsMessageHandshake::ServerDone(_)) => return true,
            _ => {}
        }
    }
    false
}

/// Whether a suite has forward secrecy (an ephemeral key exchange, or TLS 1.3).
pub fn forward_secret(id: u16) -> bool {
    TlsCipherSuite::from_id(id)
        .map(|s| {
            matches!(
                s.kx,
                TlsCipherKx::Dhe | TlsCipherKx::Ecdhe | TlsCipherKx::Tls13
            )
        })
        .unwrap_or(false)
}

/// Why a suite is unacceptable whatever its key exchange: no or broken
/// encryption, MD5, no authentication, export strength.
pub fn broken(id: u16) -> Option<&'static str> {
    use tls_parser::{TlsCipherAu, TlsCipherEnc, TlsCipherMac};
    let s = TlsCipherSuite::from_id(id)?;
    if s.enc == TlsCipherEnc::Null {
        return Some("no encryption");
    }
    if matches!(
        s.enc,
        TlsCipherEnc::Rc4 | TlsCipherEnc::Rc2 | TlsCipherEnc::Des
    ) {
        return Some("broken cipher");
    }
    if s.enc == TlsCipherEnc::TripleDes || s.enc == TlsCipherEnc::Idea {
        return Some("64-bit block cipher (Sweet32)");
    }
    if s.au == TlsCipherAu::Null && s.kx != TlsCipherKx::Tls13 {
        return Some("no server authentication (anonymous)");
    }
    if s.mac == TlsCipherMac::HmacMd5 {
        return Some("MD5 MAC");
    }
    if s.name.contains("EXPORT") {
        return Some("export strength");
    }
    None
}

/// Whether a suite uses CBC mode (obsolete: RFC 9325 §4.2 recommends AEAD).
pub fn cbc(id: u16) -> bool {
    TlsCipherSuite::from_id(id)
        .map(|s| s.enc_mode == tls_parser::TlsCipherEncMode::Cbc)
        .unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_parses_back_with_every_suite() {
        let h = Hello {
            version: TLS12,
            suites: legacy_suites(),
            compression: vec![1, 0],
            sni: Some("ftp.example.com".into()),
        };
        let record = client_hello(&h);
        let (rest, raw) = parse_tls_raw_record(&record).unwrap();
        assert!(rest.is_empty());
        let (_, msg) = parse_tls_message_handshake(raw.data).unwrap();
        let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = msg else {
            panic!("not a ClientHello: {msg:?}");
        };
        assert_eq!(ch.version.0, TLS12);
        assert_eq!(ch.ciphers.len(), h.suites.len());
        assert_eq!(ch.comp.len(), 2);
        let exts = tls_parser::parse_tls_client_hello_extensions(ch.ext.unwrap())
            .unwrap()
            .1;
        assert!(exts.iter().any(|e| matches!(e, TlsExtension::SNI(_))));
        assert!(exts
            .iter()
            .any(|e| matches!(e, TlsExtension::RenegotiationInfo(_))));
    }

    #[test]
    fn suite_classes_follow_the_iana_table() {
        // TLS_RSA_WITH_AES_128_GCM_SHA256: no forward secrecy.
        assert!(!forward_secret(0x009c));
        // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256.
        assert!(forward_secret(0xc02b) && forward_secret(0x1301));
        assert_eq!(broken(0x0005), Some("broken cipher")); // RSA_WITH_RC4_128_SHA
        assert!(broken(0x000a).is_some()); // RSA_WITH_3DES_EDE_CBC_SHA
        assert!(broken(0xc02b).is_none());
        assert!(cbc(0xc009) && !cbc(0xc02b));
        assert!(legacy_suites().len() > 200 && tls13_suites().len() >= 3);
    }

    #[test]
    fn answers_are_read_from_records() {
        // An alert record: fatal, protocol_version.
        let alert = [21, 3, 3, 0, 2, 2, 70];
        assert!(matches!(
            parse_flight(&alert),
            Parsed::Done(Answer::Alert { .. })
        ));
        assert!(matches!(
            parse_flight(b"500 what?\r\n"),
            Parsed::Done(Answer::NotTls(_))
        ));
        assert!(matches!(parse_flight(&[22, 3, 3]), Parsed::More));
    }
}
