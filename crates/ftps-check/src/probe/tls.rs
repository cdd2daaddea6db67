//! The checker's TLS client configurations (RFC 4217 §10.2, §15.1):
//!
//! - every connection that logs in verifies the server exactly as the other
//!   client commands do (`--cacert`, `--pin`, `--insecure`, through
//!   `ftps_client::tls`), so the password only goes to the server the user
//!   trusts;
//! - each control connection gets its own [`ProbeStore`], and a data
//!   connection may be given *any* store: its own control connection's
//!   (the normal case), another control connection's (a foreign session),
//!   or none (a full handshake). rustls resumes a session only under the
//!   configuration that made it, so all configurations of one TLS version are
//!   clones of one base (same verifier, same client-certificate resolver);
//! - the client-certificate resolver records whether the server asked for a
//!   certificate (a CertificateRequest), which rustls does not otherwise say.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientSessionStore, ResolvesClientCert, Resumption, Tls12ClientSessionValue,
    Tls13ClientSessionValue,
};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, NamedGroup, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::ProbeError;

/// TLS 1.3 tickets a store keeps (rustls keeps 8 per server; a few more
/// room for tickets that arrive on data connections).
const MAX_TICKETS: usize = 16;

/// Which protocol versions a connection offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    /// TLS 1.2 and 1.3.
    Any,
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl Versions {
    /// `TLS 1.2`, `TLS 1.3` or `TLS 1.2/1.3`.
    pub fn name(self) -> &'static str {
        match self {
            Versions::Any => "TLS 1.2/1.3",
            Versions::Tls12 => "TLS 1.2",
            Versions::Tls13 => "TLS 1.3",
        }
    }
}

/// What a finished handshake showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1_3`, …
    pub version: String,
    /// The negotiated cipher suite.
    pub suite: String,
    /// The key exchange group.
    pub group: String,
    /// Whether a session was resumed.
    pub resumed: bool,
    /// The server's certificate chain (empty when resumed: rustls keeps the
    /// chain of the session).
    pub chain: Vec<CertificateDer<'static>>,
}

impl TlsInfo {
    /// Read it off a connection.
    pub fn of(conn: &rustls::ClientConnection) -> TlsInfo {
        TlsInfo {
            version: conn
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default(),
            suite: conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            group: conn
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name()))
                .unwrap_or_else(|| "-".into()),
            resumed: conn.handshake_kind() == Some(HandshakeKind::Resumed),
            chain: conn
                .peer_certificates()
                .map(|c| c.to_vec())
                .unwrap_or_default(),
        }
    }

    /// One line for the evidence.
    pub fn describe(&self) -> String {
        format!(
            "{} {} ({}), {}",
            self.version.replace('_', "."),
            self.suite,
            self.group,
            if self.resumed {
                "session resumed"
            } else {
                "full handshake"
            }
        )
    }
}

/// A session store of one control connection (and of the data connections
/// that use it). Sessions can be offered on any connection whose
/// configuration is a clone of the same base.
#[derive(Debug, Default)]
pub struct ProbeStore {
    tls12: Mutex<Option<Tls12ClientSessionValue>>,
    tls13: Mutex<VecDeque<Tls13ClientSessionValue>>,
    kx_hint: Mutex<Option<NamedGroup>>,
    tickets_received: AtomicUsize,
    sessions_received: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl ProbeStore {
    /// An empty store.
    pub fn new() -> Arc<ProbeStore> {
        Arc::new(ProbeStore::default())
    }

    /// TLS 1.3 tickets held now.
    pub fn tickets(&self) -> usize {
        lock(&self.tls13).len()
    }

    /// Whether a TLS 1.2 session is held.
    pub fn has_tls12_session(&self) -> bool {
        lock(&self.tls12).is_some()
    }

    /// Whether the store holds anything to resume.
    pub fn can_resume(&self) -> bool {
        self.tickets() > 0 || self.has_tls12_session()
    }

    /// TLS 1.3 tickets and TLS 1.2 sessions received since the start.
    pub fn received(&self) -> (usize, usize) {
        (
            self.tickets_received.load(Ordering::Relaxed),
            self.sessions_received.load(Ordering::Relaxed),
        )
    }
}

impl ClientSessionStore for ProbeStore {
    fn set_kx_hint(&self, _name: ServerName<'static>, group: NamedGroup) {
        *lock(&self.kx_hint) = Some(group);
    }

    fn kx_hint(&self, _name: &ServerName<'_>) -> Option<NamedGroup> {
        *lock(&self.kx_hint)
    }

    fn set_tls12_session(&self, _name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.sessions_received.fetch_add(1, Ordering::Relaxed);
        *lock(&self.tls12) = Some(value);
    }

    fn tls12_session(&self, _name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        lock(&self.tls12).clone()
    }

    fn remove_tls12_session(&self, _name: &ServerName<'static>) {
        *lock(&self.tls12) = None;
    }

    fn insert_tls13_ticket(&self, _name: ServerName<'static>, value: Tls13ClientSessionValue) {
        self.tickets_received.fetch_add(1, Ordering::Relaxed);
        let mut tickets = lock(&self.tls13);
        if tickets.len() >= MAX_TICKETS {
            tickets.pop_front();
        }
        tickets.push_back(value);
    }

    fn take_tls13_ticket(&self, _name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        // The newest first: the server issued it last, it is the least
        // likely to have expired.
        lock(&self.tls13).pop_back()
    }
}

/// The client-certificate resolver of every configuration: presents the
/// user's certificate (if any) and records that the server asked.
#[derive(Debug)]
pub struct AskRecorder {
    inner: Arc<dyn ResolvesClientCert>,
    asked: AtomicBool,
}

impl ResolvesClientCert for AskRecorder {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        self.inner.resolve(root_hint_subjects, sigschemes)
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// Presents one fixed certificate (a certificate the control connection did not use).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesClientCert for Fixed {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The base configurations of one audit.
#[derive(Debug)]
pub struct TlsSetup {
    any: ClientConfig,
    tls12: ClientConfig,
    tls13: ClientConfig,
    resolvers: [Arc<AskRecorder>; 3],
    /// Whether the user gave a client certificate.
    pub has_client_cert: bool,
    /// The name the server is verified against (and SNI).
    pub name: ServerName<'static>,
}

impl TlsSetup {
    /// Build them from the user's trust options.
    pub fn new(options: &ftps_client::TlsOptions, host: &str) -> Result<TlsSetup, ProbeError> {
        let name =
            ftps_client::tls::server_name(host).map_err(|e| ProbeError::Local(e.to_string()))?;
        let build = |tls12_only: bool,
                     tls13_only: bool|
         -> Result<(ClientConfig, Arc<AskRecorder>), ProbeError> {
            let mut opts = options.clone();
            opts.tls12_only = tls12_only;
            opts.tls13_only = tls13_only;
            let config = ftps_client::tls::client_config(&opts)
                .map_err(|e| ProbeError::Local(e.to_string()))?;
            let mut config = (*config).clone();
            let recorder = Arc::new(AskRecorder {
                inner: Arc::clone(&config.client_auth_cert_resolver),
                asked: AtomicBool::new(false),
            });
            config.client_auth_cert_resolver = recorder.clone();
            Ok((config, recorder))
        };
        let (any, r0) = build(false, false)?;
        let (tls12, r1) = build(true, false)?;
        let (tls13, r2) = build(false, true)?;
        Ok(TlsSetup {
            any,
            tls12,
            tls13,
            resolvers: [r0, r1, r2],
            has_client_cert: options.client_cert.is_some(),
            name,
        })
    }

    fn base(&self, versions: Versions) -> &ClientConfig {
        match versions {
            Versions::Any => &self.any,
            Versions::Tls12 => &self.tls12,
            Versions::Tls13 => &self.tls13,
        }
    }

    /// A configuration whose sessions come from and go to `store`; `None`
    /// turns resumption off (every handshake is a full one).
    pub fn config(&self, versions: Versions, store: Option<&Arc<ProbeStore>>) -> Arc<ClientConfig> {
        let mut config = self.base(versions).clone();
        config.resumption = match store {
            Some(store) => Resumption::store(Arc::clone(store) as Arc<dyn ClientSessionStore>),
            None => Resumption::disabled(),
        };
        Arc::new(config)
    }

    /// A configuration presenting another client certificate (so never
    /// resuming a session of the others).
    pub fn config_with_certificate(
        &self,
        versions: Versions,
        key: Arc<CertifiedKey>,
    ) -> Arc<ClientConfig> {
        let mut config = self.base(versions).clone();
        config.client_auth_cert_resolver = Arc::new(Fixed(key));
        config.resumption = Resumption::disabled();
        Arc::new(config)
    }

    /// Whether any handshake so far carried a CertificateRequest.
    pub fn server_asked_for_certificate(&self) -> bool {
        self.resolvers
            .iter()
            .any(|r| r.asked.load(Ordering::Relaxed))
    }
}

/// A freshly generated, self-signed client certificate (for the
/// cross-check of RFC 4217 §10.2: a data connection presenting another
/// certificate than its control connection).
pub fn throwaway_client_certificate() -> Result<Arc<CertifiedKey>, ProbeError> {
    let generated = rcgen::generate_simple_self_signed(vec!["ftps-check.invalid".to_string()])
        .map_err(|e| ProbeError::Local(format!("generating a certificate: {e}")))?;
    let cert = generated.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(generated.key_pair.serialize_der().into());
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(ProbeError::Tls)?;
    Ok(Arc::new(CertifiedKey::new(vec![cert], signing)))
}

/// A verifier that accepts any certificate but checks signatures: for the
/// connections that only look at the TLS layer (no login, no password).
#[derive(Debug)]
pub struct ObserveOnly(Arc<CryptoProvider>);

impl ObserveOnly {
    /// A configuration that accepts any server (never used to log in).
    pub fn config(versions: Versions) -> Result<Arc<ClientConfig>, ProbeError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let list: &[&'static rustls::SupportedProtocolVersion] = match versions {
            Versions::Any => &[&rustls::version::TLS13, &rustls::version::TLS12],
            Versions::Tls12 => &[&rustls::version::TLS12],
            Versions::Tls13 => &[&rustls::version::TLS13],
        };
        let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(list)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ObserveOnly(provider)))
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

impl ServerCertVerifier for ObserveOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
