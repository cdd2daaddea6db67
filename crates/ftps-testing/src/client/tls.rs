//! Client TLS configurations for the test client, control and data
//! connections alike: [`tls_config`] and its presets ([`config_default`],
//! [`config_no_resumption`], [`config_tls12`], [`config_tls13`],
//! [`config_hello_retry`]), all trusting one server certificate, and
//! [`tls_connect`], the client handshake bounded by [`CONNECT_TIMEOUT`].
//! Data connections resume the control connection's session when they use
//! the same `Arc<ClientConfig>` (its in-memory session store is shared).

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{TlsData, CONNECT_TIMEOUT, SERVER_NAME};

fn roots(cert_pem: &Path) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

/// A client configuration trusting `cert_pem`, limited to `versions`, with
/// rustls' default in-memory session store or with resumption disabled.
pub fn tls_config(
    cert_pem: &Path,
    versions: &[&'static SupportedProtocolVersion],
    resumption: bool,
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots(cert_pem))
        .with_no_client_auth();
    if !resumption {
        config.resumption = Resumption::disabled();
    }
    Arc::new(config)
}

/// TLS 1.2 and 1.3, session resumption on (rustls' default store).
pub fn config_default(cert_pem: &Path) -> Arc<ClientConfig> {
    tls_config(
        cert_pem,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        true,
    )
}

/// TLS 1.2 and 1.3, session resumption disabled: every handshake is a full one.
pub fn config_no_resumption(cert_pem: &Path) -> Arc<ClientConfig> {
    tls_config(
        cert_pem,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        false,
    )
}

/// TLS 1.3 whose first key share is for a group the server does not offer
/// (pure ML-KEM-768, before X25519), and which never remembers the group the
/// server chose: every handshake, control and data, goes through a
/// HelloRetryRequest. Resumption on.
pub fn config_hello_retry(cert_pem: &Path) -> Arc<ClientConfig> {
    use rustls::crypto::aws_lc_rs::{default_provider, kx_group};
    let provider = rustls::crypto::CryptoProvider {
        kx_groups: vec![kx_group::MLKEM768, kx_group::X25519],
        ..default_provider()
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(cert_pem))
        .with_no_client_auth();
    config.resumption = Resumption::store(Arc::new(NoKxHint(
        rustls::client::ClientSessionMemoryCache::new(64),
    )));
    Arc::new(config)
}

/// A session store that forgets which key-exchange group a server chose.
#[derive(Debug)]
struct NoKxHint(rustls::client::ClientSessionMemoryCache);

impl rustls::client::ClientSessionStore for NoKxHint {
    fn set_kx_hint(&self, _: ServerName<'static>, _: rustls::NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }

    fn set_tls12_session(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.0.set_tls12_session(name, value);
    }

    fn tls12_session(
        &self,
        name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.0.tls12_session(name)
    }

    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.0.remove_tls12_session(name);
    }

    fn insert_tls13_ticket(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.0.insert_tls13_ticket(name, value);
    }

    fn take_tls13_ticket(
        &self,
        name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.0.take_tls13_ticket(name)
    }
}

/// TLS 1.2 only, resumption on.
pub fn config_tls12(cert_pem: &Path) -> Arc<ClientConfig> {
    tls_config(cert_pem, &[&rustls::version::TLS12], true)
}

/// TLS 1.3 only, resumption on.
pub fn config_tls13(cert_pem: &Path) -> Arc<ClientConfig> {
    tls_config(cert_pem, &[&rustls::version::TLS13], true)
}

fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).unwrap()
}

/// Client TLS handshake on an open TCP connection (control or data), bounded.
pub async fn tls_connect(tcp: TcpStream, config: &Arc<ClientConfig>) -> io::Result<TlsData> {
    let connector = TlsConnector::from(Arc::clone(config));
    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server_name(), tcp)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}
