//! TLS policy for control and data connections (RFC 4217 §7, §10.2, §15.1).
//!
//! The server certificate is the same on control and data connections. There
//! is one base rustls `ServerConfig` per client-certificate setting (off,
//! requested, required: RFC 4217 §15.1.2), and a listener's setting picks
//! the base for the connections it accepts. Each control connection gets its
//! own `ServerConfig` (a cheap clone of its listener's base) whose session
//! store holds only the TLS sessions negotiated on *that* control connection
//! and its data connections, which derive from the same base and so ask for
//! a client certificate exactly as the control connection did. A data connection that
//! must resume therefore cannot resume another control connection's session:
//! its ticket or session ID is simply unknown, the handshake is a full one,
//! and the transfer is refused with 522.
//!
//! TLS 1.3 tickets are single-use in rustls' own store. FTP clients such as
//! curl and Python's ftplib offer the control connection's ticket again for
//! every data connection, and on uploads never read the tickets a data
//! connection would send, so single-use tickets run out after a couple of
//! transfers (vsftpd's "522 ... session reuse required" on curl's third
//! upload). Because 0-RTT is never enabled here, a resumption ticket can be
//! reused safely within one control connection: [`ConnectionSessionCache::take`]
//! returns the session without removing it.
//!
//! Some clients treat TLS 1.3 tickets as single-use (rustls clients; curl's
//! OpenSSL session cache), others offer the control connection's session
//! every time (Python's ftplib subclass, GnuTLS/lftp); the store is
//! least-recently-used, so a session offered again and again stays. Every
//! accepted data connection carries [`DATA_TICKETS`] fresh tickets and the
//! control connection starts with [`CONTROL_TICKETS`]. Uploads are
//! delicate: a client that closes its upload connection with a ticket unread
//! makes the kernel reset it, and the reset discards the tail of the upload
//! still queued at the client (measured with curl 7.88 and lftp on TLS 1.3).
//! So an upload's tickets are written (1) before the 150 reply when the
//! client completed its data handshake before the upload command (curl;
//! see `transfer::data::early_upload_tickets`), or else (2) only after the
//! client's close_notify, when every byte has arrived (see
//! `transfer::data::handshake`): PHP's ftp extension, which offers only the
//! newest session it was given, reads them while it closes. rustls has no
//! call to issue a ticket later on an established control connection.
//!
//! Sessions created by a data connection are staged and kept only when that
//! connection resumed (and so was accepted): a refused full handshake must
//! not hand its peer a ticket that would resume the next time.
//!
//! Session tickets (TLS 1.2, RFC 5077, which Go's TLS client needs to
//! resume at all, and TLS 1.3) are bound to the control connection the same
//! way: each control connection has a ticketer of its own, with a key made
//! for it and never shared, so a ticket issued on another control connection
//! does not even decrypt here. A data connection's ticketer
//! ([`DataTicketer`]) decrypts with its control connection's key and
//! encrypts new tickets only once the handshake is resuming one of them
//! (a refused full handshake gets none, or an empty TLS 1.2 ticket it
//! cannot use). TLS 1.2 session IDs stay in the per-connection store.
//!
//! What the client offered is recorded, so a refusal can say which case it
//! is ([`DataTls::refusal`]): no session at all, a session this control
//! connection never issued, or one of its own that could not be resumed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use std::sync::atomic::{AtomicBool, Ordering};

use ftps_proto::session::ReuseRefusal;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ProducesTickets, StoresServerSessions};
use rustls::{ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ClientCertificates;

/// TLS 1.3 tickets sent after the control connection's handshake: enough for
/// a client that uses each ticket once (rustls keeps up to 8 per server) to
/// run several uploads in a row, which carry no tickets of their own.
pub const CONTROL_TICKETS: usize = 8;

/// TLS 1.3 tickets each accepted data connection carries (an upload's after
/// the upload is complete).
pub const DATA_TICKETS: usize = 2;

/// Most TLS 1.3 tickets a client may ask for with RFC 9149 `ticket_request`.
pub const MAX_REQUESTED_TICKETS: usize = 4;

/// Sessions remembered per control connection.
pub const SESSIONS_PER_CONNECTION: usize = 32;

/// How client certificates are verified (RFC 4217 §15.1.2): the same CAs and
/// CRLs for every listener; whether a certificate is asked for or required
/// is chosen per connection with [`ClientCertificates`].
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// The CAs that sign client certificates.
    pub roots: rustls::RootCertStore,
    /// Revocation lists.
    pub crls: Vec<rustls_pki_types::CertificateRevocationListDer<'static>>,
}

/// Errors building the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The client certificate verifier could not be built.
    #[error("client certificates: {0}")]
    ClientVerifier(String),
    /// A client CA or CRL file could not be read.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// No TLS version enabled.
    #[error("no TLS version enabled")]
    NoVersions,
    /// rustls refused the certificate, key or parameters.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The server's TLS setup: one base configuration per client-certificate
/// setting (off, requested, required; the last two only when a client CA is
/// configured), specialised per control connection by
/// [`TlsSetup::for_connection`]. A listener's setting picks the base, and the
/// data connections of a session derive from the same base as its control
/// connection, so they ask for a client certificate exactly as it did.
#[derive(Debug)]
pub struct TlsSetup {
    off: Arc<ServerConfig>,
    verified: Option<VerifiedBases>,
    certs: std::sync::RwLock<Arc<CertSet>>,
}

/// The base configurations that verify client certificates.
#[derive(Debug)]
struct VerifiedBases {
    requested: Arc<ServerConfig>,
    required: Arc<ServerConfig>,
}

/// The server's certificates: a default one and one per SNI server name.
#[derive(Debug)]
pub struct CertSet {
    default: Arc<rustls::sign::CertifiedKey>,
    by_name: std::collections::HashMap<String, Arc<rustls::sign::CertifiedKey>>,
}

impl CertSet {
    /// Build from the default chain/key and `(server name, chain, key)` entries.
    pub fn new(
        provider: &CryptoProvider,
        default: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
        sni: Vec<(String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> Result<CertSet, TlsSetupError> {
        let load = |chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>| {
            let signing = provider.key_provider.load_private_key(key)?;
            Ok::<_, TlsSetupError>(Arc::new(rustls::sign::CertifiedKey::new(chain, signing)))
        };
        let mut by_name = std::collections::HashMap::new();
        for (name, chain, key) in sni {
            by_name.insert(name.to_ascii_lowercase(), load(chain, key)?);
        }
        Ok(CertSet {
            default: load(default.0, default.1)?,
            by_name,
        })
    }

    fn pick(&self, name: Option<&str>) -> Arc<rustls::sign::CertifiedKey> {
        name.and_then(|n| self.by_name.get(&n.to_ascii_lowercase()))
            .unwrap_or(&self.default)
            .clone()
    }
}

/// Chooses by SNI from one fixed [`CertSet`]: a control connection and all
/// its data connections keep the set they started with, so the server
/// presents the same certificate on both (RFC 4217 §15.1.1) even across a
/// reload.
#[derive(Debug)]
struct SnapshotResolver(Arc<CertSet>);

impl rustls::server::ResolvesServerCert for SnapshotResolver {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.pick(hello.server_name()))
    }
}

/// The TLS configurations one control connection uses.
#[derive(Debug, Clone)]
pub struct ConnectionTls {
    /// For the control connection: its TLS 1.2 session IDs go into
    /// `sessions`, its tickets are sealed with `ticketer`.
    pub control: Arc<ServerConfig>,
    /// The TLS 1.2 session IDs of this control connection and its accepted
    /// data connections.
    sessions: Arc<ConnectionSessionCache>,
    /// Seals and opens this control connection's tickets; its key exists
    /// nowhere else.
    ticketer: Arc<dyn ProducesTickets>,
    base: Arc<ServerConfig>,
}

/// Which way a data connection's bytes go, seen from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// RETR, LIST, NLST, MLSD.
    Send,
    /// STOR, APPE, STOU.
    Receive,
}

/// The TLS configuration of one data connection and the store that holds
/// the sessions it creates until it is accepted.
#[derive(Debug, Clone)]
pub struct DataTls {
    /// Configuration for the handshake.
    pub config: Arc<ServerConfig>,
    staged: Arc<StagedSessions>,
}

impl DataTls {
    /// The handshake resumed a session of this control connection: keep the
    /// sessions (tickets) it issued, so later data connections can use them.
    pub fn accept(&self) {
        self.staged.commit();
    }

    /// For a handshake that started before its transfer was known (see
    /// [`crate::passive`]): the configuration was made for sending, with
    /// tickets; an upload's connection gets none unless its handshake ends
    /// before the 150 reply (refused when rustls stores them).
    pub fn allow_tickets(&self, allow: bool) {
        self.staged.tickets.store(allow, Ordering::Relaxed);
    }

    /// Why a handshake that did not resume is refused: what the client
    /// offered (RFC 4217 §10.2).
    pub fn refusal(&self) -> ReuseRefusal {
        if !self.staged.offered.load(Ordering::Relaxed) {
            ReuseRefusal::NoSessionOffered
        } else if self.staged.found.load(Ordering::Relaxed) {
            ReuseRefusal::SessionNotResumable
        } else {
            ReuseRefusal::ForeignSession
        }
    }
}

impl ConnectionTls {
    /// A configuration for one data connection. Sessions it creates are only
    /// staged: a refused data connection (full handshake, RFC 4217 §10.2)
    /// must not leave behind a ticket or session ID that a later data
    /// connection could resume.
    pub fn for_data(&self, require_reuse: bool) -> DataTls {
        let staged = Arc::new(StagedSessions {
            control: Arc::clone(&self.sessions),
            staged: Mutex::new(Vec::new()),
            require_reuse,
            offered: AtomicBool::new(false),
            found: AtomicBool::new(false),
            tickets: AtomicBool::new(true),
        });
        let mut config = (*self.base).clone();
        config.session_storage = Arc::clone(&staged) as Arc<dyn StoresServerSessions>;
        config.ticketer = Arc::new(DataTicketer {
            control: Arc::clone(&self.ticketer),
            staged: Arc::clone(&staged),
            asked: std::sync::OnceLock::new(),
        });
        config.max_tls13_tickets = MAX_REQUESTED_TICKETS;
        // An upload's tickets are held back until it is complete (see
        // `transfer::data::handshake`): a client that closes with a ticket
        // unread makes its kernel reset the connection, which must not
        // happen while upload bytes are still in flight.
        config.send_tls13_tickets = DATA_TICKETS;
        DataTls {
            config: Arc::new(config),
            staged,
        }
    }
}

/// A data connection's view of the session store: lookups go to the control
/// connection's store; new TLS 1.2 session IDs are only issued when the
/// handshake is resuming one of this control connection's sessions (or
/// reuse is not required), and wait until the connection is accepted.
/// Refusing `put` makes rustls issue no session ID. It also records what the
/// client offered, for [`DataTls::refusal`].
#[derive(Debug)]
struct StagedSessions {
    control: Arc<ConnectionSessionCache>,
    staged: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    require_reuse: bool,
    /// The client offered a session ID or a ticket.
    offered: AtomicBool,
    /// ... and it was one of this control connection's.
    found: AtomicBool,
    /// False: issue no tickets at all (an upload whose handshake started early).
    tickets: AtomicBool,
}

impl StagedSessions {
    /// New sessions may be issued: the handshake resumes one of this control
    /// connection's, or reuse is not required.
    fn resuming(&self) -> bool {
        self.found.load(Ordering::Relaxed) || !self.require_reuse
    }

    fn record_offer(&self, found: bool) {
        self.offered.store(true, Ordering::Relaxed);
        if found {
            self.found.store(true, Ordering::Relaxed);
        }
    }

    fn commit(&self) {
        let staged = match self.staged.lock() {
            Ok(mut guard) => std::mem::take(&mut *guard),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for (key, value) in staged {
            self.control.put(key, value);
        }
    }
}

impl StoresServerSessions for StagedSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        if !self.resuming() || !self.tickets.load(Ordering::Relaxed) {
            return false;
        }
        match self.staged.lock() {
            Ok(mut guard) => guard.push((key, value)),
            Err(poisoned) => poisoned.into_inner().push((key, value)),
        }
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let found = self.control.get(key);
        self.record_offer(found.is_some());
        found
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// A data connection's ticketer: opens tickets with its control
/// connection's key (recording the offer), and seals new ones only while
/// the handshake resumes one of them (a TLS 1.3 ticket refused here is not
/// sent at all).
///
/// A TLS 1.2 ticket is never renewed on a data connection: OpenSSL clients
/// (PHP's ftp extension, curl, Python's ftplib) mark the session they
/// resumed as used up when a new ticket arrives, and report the new one to
/// neither the application's callback nor the session it holds, so their
/// next data connection would offer nothing. The client keeps resuming the
/// ticket it has, which stays valid for the control connection's lifetime.
/// rustls asks `enabled` once per TLS 1.2 ClientHello, after it tried to
/// open the offered ticket; for TLS 1.3 it asks before opening one. So a
/// ticket opened before the first `enabled` call is a TLS 1.2 one, and
/// `enabled` then answers false: no SessionTicket extension, no new ticket
/// (and no empty one for a refused handshake).
#[derive(Debug)]
struct DataTicketer {
    control: Arc<dyn ProducesTickets>,
    staged: Arc<StagedSessions>,
    /// `enabled` was asked before any ticket was opened (TLS 1.3, or TLS
    /// 1.2 without a ticket), or after one was (TLS 1.2): set at the first call.
    asked: std::sync::OnceLock<bool>,
}

impl ProducesTickets for DataTicketer {
    fn enabled(&self) -> bool {
        let offered = self.staged.offered.load(Ordering::Relaxed);
        *self.asked.get_or_init(|| !offered)
    }

    fn lifetime(&self) -> u32 {
        self.control.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        if !self.staged.resuming() || !self.staged.tickets.load(Ordering::Relaxed) {
            return None;
        }
        self.control.encrypt(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let plain = self.control.decrypt(cipher);
        self.staged.record_offer(plain.is_some());
        plain
    }
}

impl TlsSetup {
    /// Build from a certificate chain and key, the crypto provider (with the
    /// allowed cipher suites), the enabled protocol versions and, when some
    /// listener asks for client certificates, how to verify them.
    pub fn new(
        certs: CertSet,
        provider: CryptoProvider,
        versions: &[&'static SupportedProtocolVersion],
        client_auth: Option<ClientAuth>,
    ) -> Result<TlsSetup, TlsSetupError> {
        if versions.is_empty() {
            return Err(TlsSetupError::NoVersions);
        }
        let provider = Arc::new(provider);
        let certs = Arc::new(certs);
        let base = |verifier: Option<Arc<dyn ClientCertVerifier>>| {
            build_base(&provider, versions, verifier, &certs)
        };
        let off = base(None)?;
        let verified = match client_auth {
            None => None,
            Some(auth) => {
                let verifier = |required: bool| {
                    let mut builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(auth.roots.clone()),
                        Arc::clone(&provider),
                    )
                    .with_crls(auth.crls.clone());
                    if !required {
                        builder = builder.allow_unauthenticated();
                    }
                    builder
                        .build()
                        .map_err(|e| TlsSetupError::ClientVerifier(e.to_string()))
                };
                Some(VerifiedBases {
                    requested: base(Some(verifier(false)?))?,
                    required: base(Some(verifier(true)?))?,
                })
            }
        };
        Ok(TlsSetup {
            off,
            verified,
            certs: std::sync::RwLock::new(certs),
        })
    }

    /// Whether connections with this client-certificate setting can be
    /// served (`requested` and `required` need a client CA).
    pub fn supports(&self, mode: ClientCertificates) -> bool {
        self.base(mode).is_some()
    }

    fn base(&self, mode: ClientCertificates) -> Option<&Arc<ServerConfig>> {
        match (mode, &self.verified) {
            (ClientCertificates::Off, _) => Some(&self.off),
            (ClientCertificates::Requested, Some(v)) => Some(&v.requested),
            (ClientCertificates::Required, Some(v)) => Some(&v.required),
            (_, None) => None,
        }
    }

    /// Replace the certificates for connections that start from now on;
    /// running sessions keep theirs.
    pub fn reload(&self, certs: CertSet) {
        let certs = Arc::new(certs);
        match self.certs.write() {
            Ok(mut guard) => *guard = certs,
            Err(poisoned) => *poisoned.into_inner() = certs,
        }
    }

    fn current(&self) -> Arc<CertSet> {
        match self.certs.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Fresh configurations for one control connection accepted on a
    /// listener with client-certificate setting `mode`, with a session store
    /// of its own (see the module docs). `None` when `mode` needs a client CA
    /// that was not configured (see [`TlsSetup::supports`]).
    pub fn for_connection(&self, mode: ClientCertificates) -> Option<ConnectionTls> {
        let sessions = Arc::new(ConnectionSessionCache::new(SESSIONS_PER_CONNECTION));
        let ticketer = match rustls::crypto::aws_lc_rs::Ticketer::new() {
            Ok(ticketer) => ticketer,
            Err(error) => {
                tracing::error!(%error, "cannot make a session ticket key");
                return None;
            }
        };
        let mut base = (**self.base(mode)?).clone();
        base.cert_resolver = Arc::new(SnapshotResolver(self.current()));
        let base = Arc::new(base);
        let mut control = (*base).clone();
        control.session_storage = Arc::clone(&sessions) as Arc<dyn StoresServerSessions>;
        control.ticketer = Arc::clone(&ticketer);
        control.send_tls13_tickets = CONTROL_TICKETS;
        control.max_tls13_tickets = MAX_REQUESTED_TICKETS;
        Some(ConnectionTls {
            control: Arc::new(control),
            sessions,
            ticketer,
            base,
        })
    }
}

/// One base configuration: the certificates, versions and suites, with or
/// without a client-certificate verifier.
fn build_base(
    provider: &Arc<CryptoProvider>,
    versions: &[&'static SupportedProtocolVersion],
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    certs: &Arc<CertSet>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(versions)?;
    let builder = match verifier {
        None => builder.with_no_client_auth(),
        Some(verifier) => builder.with_client_cert_verifier(verifier),
    };
    let mut config = builder.with_cert_resolver(Arc::new(SnapshotResolver(Arc::clone(certs))));
    config.ignore_client_order = true;
    config.max_early_data_size = 0;
    config.send_half_rtt_data = false;
    Ok(Arc::new(config))
}

/// A bounded session store belonging to one control connection.
#[derive(Debug)]
pub struct ConnectionSessionCache {
    capacity: usize,
    entries: Mutex<VecDeque<(Vec<u8>, Vec<u8>)>>,
}

impl ConnectionSessionCache {
    /// A store holding at most `capacity` sessions (oldest evicted first).
    pub fn new(capacity: usize) -> ConnectionSessionCache {
        ConnectionSessionCache {
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut VecDeque<(Vec<u8>, Vec<u8>)>) -> R) -> R {
        let mut guard = match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

impl StoresServerSessions for ConnectionSessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        tracing::debug!(key_len = key.len(), "TLS session stored");
        self.with(|entries| {
            entries.retain(|(k, _)| *k != key);
            while entries.len() >= self.capacity {
                entries.pop_front();
            }
            entries.push_back((key, value));
        });
        true
    }

    /// A lookup also makes the entry the most recently used, so the session
    /// a client offers again and again is never the one evicted.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.with(|entries| {
            let index = entries.iter().position(|(k, _)| k.as_slice() == key)?;
            let entry = entries.remove(index)?;
            let value = entry.1.clone();
            entries.push_back(entry);
            Some(value)
        })
    }

    /// Not removing: tickets may be reused within this control connection
    /// (no 0-RTT, so no replay exposure). See the module docs.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let found = self.get(key);
        tracing::debug!(
            key_len = key.len(),
            found = found.is_some(),
            "TLS session lookup"
        );
        found
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// A short description of a negotiated TLS connection for logs:
/// (version, cipher suite, resumed).
pub fn describe(conn: &rustls::ServerConnection) -> (String, String, bool) {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "none".to_string(),
    };
    let suite = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .unwrap_or("none")
        .to_string();
    let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    (version, suite, resumed)
}

/// Load the client CA bundle and CRLs named in the configuration.
pub fn load_client_auth(
    ca: &std::path::Path,
    crl: Option<&std::path::Path>,
) -> Result<ClientAuth, TlsSetupError> {
    use rustls_pki_types::pem::PemObject;
    let file_error = |path: &std::path::Path, message: String| TlsSetupError::File {
        path: path.to_path_buf(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(ca, e.to_string()))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(file_error(ca, "no CA certificate in it".into()));
    }
    let mut crls = Vec::new();
    if let Some(path) = crl {
        crls = rustls_pki_types::CertificateRevocationListDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| file_error(path, e.to_string()))?;
    }
    Ok(ClientAuth { roots, crls })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn session_cache_evicts_the_least_recently_used() {
        let cache = ConnectionSessionCache::new(2);
        cache.put(b"control".to_vec(), b"1".to_vec());
        for i in 0..10u8 {
            assert!(cache.take(b"control").is_some(), "evicted after {i}");
            cache.put(vec![i], b"x".to_vec());
        }
    }

    #[test]
    fn session_cache_is_bounded_and_multi_use() {
        let cache = ConnectionSessionCache::new(2);
        cache.put(b"a".to_vec(), b"1".to_vec());
        cache.put(b"b".to_vec(), b"2".to_vec());
        assert_eq!(cache.take(b"a"), Some(b"1".to_vec()));
        assert_eq!(cache.take(b"a"), Some(b"1".to_vec()));
        cache.put(b"c".to_vec(), b"3".to_vec());
        // "a" was used last, so "b" went.
        assert_eq!(cache.get(b"b"), None);
        assert_eq!(cache.get(b"a"), Some(b"1".to_vec()));
        assert_eq!(cache.get(b"c"), Some(b"3".to_vec()));
    }

    fn setup() -> TlsSetup {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let chain = vec![key.cert.der().clone()];
        let pk = PrivateKeyDer::Pkcs8(key.key_pair.serialize_der().into());
        let versions = [&rustls::version::TLS12, &rustls::version::TLS13];
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let certs = CertSet::new(&provider, (chain, pk), Vec::new()).unwrap();
        TlsSetup::new(certs, provider, &versions, None).unwrap()
    }

    #[test]
    fn connections_do_not_share_sessions() {
        let setup = setup();
        let a = setup.for_connection(ClientCertificates::Off).unwrap();
        let b = setup.for_connection(ClientCertificates::Off).unwrap();
        a.control.session_storage.put(b"k".to_vec(), b"v".to_vec());
        let data = a.for_data(true);
        assert!(data.config.session_storage.get(b"k").is_some());
        assert!(b.for_data(true).config.session_storage.get(b"k").is_none());
        assert_eq!(data.config.send_tls13_tickets, DATA_TICKETS);
    }

    #[test]
    fn rfc4217_s10_2_sessions_of_refused_data_connections_are_dropped() {
        let setup = setup();
        let conn = setup.for_connection(ClientCertificates::Off).unwrap();
        conn.control
            .session_storage
            .put(b"mine".to_vec(), b"v".to_vec());
        // A full handshake (no lookup hit) gets no ticket at all.
        let refused = conn.for_data(true);
        assert!(!refused
            .config
            .session_storage
            .put(b"thief".to_vec(), b"v".to_vec()));
        drop(refused);
        assert!(conn.control.session_storage.get(b"thief").is_none());
        // A resuming one does, kept once it is accepted.
        let accepted = conn.for_data(true);
        assert!(accepted.config.session_storage.take(b"mine").is_some());
        assert!(accepted
            .config
            .session_storage
            .put(b"ok".to_vec(), b"v".to_vec()));
        assert!(conn.control.session_storage.get(b"ok").is_none());
        accepted.accept();
        assert!(conn.control.session_storage.get(b"ok").is_some());
    }

    /// Tickets are sealed with a key of the control connection's own: one
    /// issued on another control connection does not even open here
    /// (RFC 4217 §10.2, §15.2.6), and the refusal says so.
    #[test]
    fn rfc4217_s10_2_tickets_of_another_control_connection_do_not_open() {
        let setup = setup();
        let a = setup.for_connection(ClientCertificates::Off).unwrap();
        let b = setup.for_connection(ClientCertificates::Off).unwrap();
        let ticket = a.control.ticketer.encrypt(b"session").unwrap();
        let on_b = b.for_data(true);
        assert!(on_b.config.ticketer.decrypt(&ticket).is_none());
        assert_eq!(on_b.refusal(), ReuseRefusal::ForeignSession);
        let on_a = a.for_data(true);
        assert_eq!(
            on_a.config.ticketer.decrypt(&ticket).as_deref(),
            Some(&b"session"[..])
        );
        assert_eq!(on_a.refusal(), ReuseRefusal::SessionNotResumable);
    }

    /// A data connection that resumed nothing seals no ticket; one that
    /// resumed seals them with the control connection's key.
    #[test]
    fn rfc4217_s10_2_refused_data_connections_get_no_ticket() {
        let setup = setup();
        let conn = setup.for_connection(ClientCertificates::Off).unwrap();
        let full = conn.for_data(true);
        assert!(full.config.ticketer.encrypt(b"x").is_none());
        assert_eq!(full.refusal(), ReuseRefusal::NoSessionOffered);
        let ticket = conn.control.ticketer.encrypt(b"mine").unwrap();
        let resuming = conn.for_data(true);
        assert!(resuming.config.ticketer.decrypt(&ticket).is_some());
        let fresh = resuming.config.ticketer.encrypt(b"next").unwrap();
        assert_eq!(
            conn.control.ticketer.decrypt(&fresh).as_deref(),
            Some(&b"next"[..])
        );
        // Without reuse required, tickets are sealed from the start.
        assert!(conn.for_data(false).config.ticketer.encrypt(b"y").is_some());
    }

    #[test]
    fn a_foreign_session_id_is_told_apart_from_none() {
        let setup = setup();
        let conn = setup.for_connection(ClientCertificates::Off).unwrap();
        let data = conn.for_data(true);
        assert!(data.config.session_storage.get(b"unknown id").is_none());
        assert_eq!(data.refusal(), ReuseRefusal::ForeignSession);
    }

    /// TLS 1.2 (a ticket opened before rustls asks `enabled`): no renewed
    /// ticket; TLS 1.3 (asked first): tickets stay on.
    #[test]
    fn tls12_tickets_are_not_renewed_on_data_connections() {
        let setup = setup();
        let conn = setup.for_connection(ClientCertificates::Off).unwrap();
        let ticket = conn.control.ticketer.encrypt(b"mine").unwrap();
        let tls12 = conn.for_data(true);
        assert!(tls12.config.ticketer.decrypt(&ticket).is_some());
        assert!(!tls12.config.ticketer.enabled());
        assert!(!tls12.config.ticketer.enabled());
        let tls13 = conn.for_data(true);
        assert!(tls13.config.ticketer.enabled());
        assert!(tls13.config.ticketer.decrypt(&ticket).is_some());
        assert!(tls13.config.ticketer.enabled());
        assert!(tls13.config.ticketer.encrypt(b"next").is_some());
    }
}
