//! The client's TLS configuration (RFC 4217 §15.1.1): the server certificate
//! is verified by default against the system roots (or the webpki roots when
//! the system has none), or against `--cacert`; `--pin` trusts exactly one
//! key; `--insecure` trusts anything (and says so). A client certificate may
//! be presented. One configuration — and so one session store — serves the
//! control connection and every data connection, which therefore resume the
//! control connection's TLS session (RFC 4217 §10.2).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, Resumption, TicketRequest};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use crate::Error;

/// TLS sessions remembered per client.
const SESSION_CACHE_SIZE: usize = 64;

/// How the server is authenticated, and what the client presents.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Trust only the certificates in this PEM file.
    pub ca_file: Option<PathBuf>,
    /// Trust exactly the server whose key (SubjectPublicKeyInfo) or certificate
    /// has this SHA-256 hash, written `sha256:<hex>` (colons allowed).
    pub pin: Option<String>,
    /// Accept any certificate (no protection against an active attacker).
    pub insecure: bool,
    /// Client certificate chain (PEM) and key (PEM), RFC 4217 §15.1.2.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Restrict to TLS 1.3 (true) or allow 1.2 and 1.3 (false).
    pub tls13_only: bool,
    /// Restrict to TLS 1.2.
    pub tls12_only: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The client's TLS session store: rustls' in-memory cache, counting the
/// TLS 1.3 tickets it holds so the client knows when they have run out
/// (rustls uses each ticket once; a server that requires session reuse
/// refuses a data connection that cannot offer one).
#[derive(Debug)]
pub struct SessionStore {
    inner: ClientSessionMemoryCache,
    tls13: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl SessionStore {
    fn new(size: usize) -> SessionStore {
        SessionStore {
            inner: ClientSessionMemoryCache::new(size),
            tls13: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn adjust(&self, name: &ServerName<'_>, delta: isize) {
        let key = format!("{name:?}");
        let mut map = match self.tls13.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let count = map.entry(key).or_insert(0);
        // rustls keeps at most 8 tickets per server.
        *count = count.saturating_add_signed(delta).min(8);
    }

    /// TLS 1.3 tickets held for this server.
    pub fn tls13_tickets(&self, name: &ServerName<'_>) -> usize {
        let map = match self.tls13.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.get(&format!("{name:?}")).copied().unwrap_or(0)
    }
}

impl rustls::client::ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, name: ServerName<'static>, group: rustls::NamedGroup) {
        self.inner.set_kx_hint(name, group)
    }

    fn kx_hint(&self, name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.inner.kx_hint(name)
    }

    fn set_tls12_session(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.set_tls12_session(name, value)
    }

    fn tls12_session(
        &self,
        name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.tls12_session(name)
    }

    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.inner.remove_tls12_session(name)
    }

    fn insert_tls13_ticket(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.adjust(&name, 1);
        self.inner.insert_tls13_ticket(name, value)
    }

    fn take_tls13_ticket(
        &self,
        name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        let taken = self.inner.take_tls13_ticket(name);
        if taken.is_some() {
            self.adjust(name, -1);
        }
        taken
    }
}

/// Build the one client configuration used for control and data connections.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
    client_config_with_store(options).map(|(config, _)| config)
}

/// [`client_config`] and its session store.
pub fn client_config_with_store(
    options: &TlsOptions,
) -> Result<(Arc<ClientConfig>, Arc<SessionStore>), Error> {
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = if options.tls13_only {
        vec![&rustls::version::TLS13]
    } else if options.tls12_only {
        vec![&rustls::version::TLS12]
    } else {
        vec![&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .map_err(Error::Tls)?;
    let builder = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned::any()))
    } else if let Some(pin) = &options.pin {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned::new(pin)?))
    } else if let Some(path) = &options.ca_file {
        let trusted = load_pem_certs(path)?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(root_store(options)?),
            provider(),
        )
        .build()
        .map_err(|e| Error::InvalidArgument(format!("--cacert {}: {e}", path.display())))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TrustedSelfSigned { verifier, trusted }))
    } else {
        builder.with_root_certificates(root_store(options)?)
    };
    let mut config = match &options.client_cert {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| Error::InvalidArgument(format!("{}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::InvalidArgument(format!("{}: {e}", key.display())))?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    let store = Arc::new(SessionStore::new(SESSION_CACHE_SIZE));
    config.resumption =
        Resumption::store(Arc::clone(&store) as Arc<dyn rustls::client::ClientSessionStore>);
    // TLS 1.3 tickets are single-use here: ask servers that understand
    // RFC 9149 for fresh ones on every connection, also on uploads.
    config.send_ticket_request = Some(TicketRequest {
        new_session_count: 2,
        resumption_count: 2,
    });
    Ok((Arc::new(config), store))
}

fn load_pem_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::InvalidArgument(format!("--cacert {}: {e}", path.display())))
}

/// `--cacert` verification that also accepts a server certificate that is
/// itself in the trusted file: self-signed server certificates made with
/// `openssl req -x509` are marked as CAs, which WebPKI refuses as end
/// entities; the user trusting that exact certificate settles it. Only
/// that refusal (or an unknown issuer) is overridden: an expired or not yet
/// valid certificate stays refused, the host name is still checked, and
/// signatures are verified as usual.
#[derive(Debug)]
struct TrustedSelfSigned {
    verifier: Arc<rustls::client::WebPkiServerVerifier>,
    trusted: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for TrustedSelfSigned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(ok) => Ok(ok),
            Err(error) => {
                // Only what a self-signed CA certificate runs into: the
                // dates, the name and the signatures still count (WebPKI
                // checks the dates before the CA flag, so neither error
                // hides an expired certificate).
                let ca_only = match &error {
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                        true
                    }
                    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                        matches!(
                            other.0.downcast_ref::<webpki::Error>(),
                            Some(webpki::Error::CaUsedAsEndEntity)
                        )
                    }
                    _ => false,
                };
                let trusted = self
                    .trusted
                    .iter()
                    .any(|t| t.as_ref() == end_entity.as_ref());
                if !(ca_only && trusted) {
                    return Err(error);
                }
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }
}

fn root_store(options: &TlsOptions) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = &options.ca_file {
        let certs = load_pem_certs(path)?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(Error::InvalidArgument(format!(
                "--cacert {}: no certificate in it",
                path.display()
            )));
        }
        return Ok(roots);
    }
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    Ok(roots)
}

/// The server name to verify (DNS name or IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_string())
        .map_err(|_| Error::InvalidArgument(format!("not a valid host name: {host}")))
}

/// SHA-256 of the certificate's SubjectPublicKeyInfo, hex.
pub fn spki_sha256(cert: &CertificateDer<'_>) -> Option<String> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    Some(hex(&Sha256::digest(spki.as_ref())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `07:F6:...:6C`: a SHA-256 fingerprint as `ftps serve` prints it and
/// `--pin sha256:` takes it.
pub fn fingerprint(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    parts.join(":")
}

/// The server's certificate is not the one `--pin` names: what it has
/// instead, so that the user can compare it with the fingerprint the
/// server's operator published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinMismatch {
    /// SHA-256 of the certificate, `AA:BB:...`.
    pub certificate: String,
    /// SHA-256 of its SubjectPublicKeyInfo, hex, when it could be read.
    pub public_key: Option<String>,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server certificate does not match --pin: the server's certificate has \
             SHA-256 fingerprint sha256:{}",
            self.certificate
        )?;
        if let Some(key) = &self.public_key {
            write!(f, " (public key sha256:{key})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PinMismatch {}

/// A verifier that trusts one pinned key or certificate (or, for
/// `--insecure`, anything); signatures are still checked.
#[derive(Debug)]
struct Pinned {
    pin: Option<String>,
    provider: Arc<CryptoProvider>,
}

impl Pinned {
    fn any() -> Pinned {
        Pinned {
            pin: None,
            provider: provider(),
        }
    }

    fn new(pin: &str) -> Result<Pinned, Error> {
        let hash = pin
            .strip_prefix("sha256:")
            .or_else(|| pin.strip_prefix("sha256//"))
            .ok_or_else(|| Error::InvalidArgument("--pin must be sha256:<hex>".into()))?;
        let hash: String = hash
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::InvalidArgument(
                "--pin needs 64 hex digits (SHA-256)".into(),
            ));
        }
        Ok(Pinned {
            pin: Some(hash),
            provider: provider(),
        })
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pin) = &self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert_hash = hex(&Sha256::digest(end_entity.as_ref()));
        let key_hash = spki_sha256(end_entity);
        if *pin == cert_hash || key_hash.as_deref() == Some(pin.as_str()) {
            Ok(ServerCertVerified::assertion())
        } else {
            let mismatch = PinMismatch {
                certificate: fingerprint(&Sha256::digest(end_entity.as_ref())),
                public_key: key_hash,
            };
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(mismatch))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pin_accepts_colon_hex_and_rejects_garbage() {
        let hex64 = "AB:".repeat(31) + "AB";
        assert!(Pinned::new(&format!("sha256:{hex64}")).is_ok());
        assert!(Pinned::new("sha256:1234").is_err());
        assert!(Pinned::new("md5:00").is_err());
    }

    #[test]
    fn pin_matches_certificate_or_key_hash() {
        let key = rcgen_cert();
        let cert_hash = hex(&Sha256::digest(key.as_ref()));
        let key_hash = spki_sha256(&key).unwrap();
        for pin in [cert_hash, key_hash] {
            let v = Pinned::new(&format!("sha256:{pin}")).unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            assert!(v
                .verify_server_cert(&key, &[], &name, &[], UnixTime::now())
                .is_ok());
        }
        let other = Pinned::new(&format!("sha256:{}", "0".repeat(64))).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let refused = other
            .verify_server_cert(&key, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        let text = crate::tls_words::describe(&refused);
        let actual = fingerprint(&Sha256::digest(key.as_ref()));
        assert!(text.contains("does not match --pin"), "{text}");
        assert!(text.contains(&format!("sha256:{actual}")), "{text}");
    }

    fn rcgen_cert() -> CertificateDer<'static> {
        let dir = tempfile::tempdir().unwrap();
        let generated = ftps_server::certs::load_or_generate(dir.path(), &[]).unwrap();
        generated.chain[0].clone()
    }
}
