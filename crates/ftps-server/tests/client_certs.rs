//! TLS client certificates as identity (RFC 4217 §12.2, §15.1.2): a user
//! whose certificate suffices gets 232 to USER and no PASS is asked; a
//! certificate that maps to another user gets 530; a user may require both
//! certificate and password; the data connection must present the same
//! certificate as the control connection (else 522); with
//! `client_certificates = "required"` a client without one cannot even
//! complete the handshake. A listener's own `client_certificates` replaces the
//! global setting for the connections it accepts and for their data
//! connections.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ftps_server::config::{
    AuthMethod, CertificateMatch, ClientCertificates, ListenerConfig, UserSection,
};
use ftps_testing::client::{self, within, Client, Setup};
use ftps_testing::{password_hash, TestServer, PASSWORD};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A CA and client certificates it signs, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test client CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, ca_key }
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A client certificate for `cn`: (cert.pem, key.pem).
    fn client(&self, cn: &str) -> (PathBuf, PathBuf) {
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let cert_path = self.dir.path().join(format!("{cn}.pem"));
        let key_path = self.dir.path().join(format!("{cn}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

fn config_with_cert(server_cert: &Path, cert: &Path, key: &Path) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(server_cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap(),
    )
}

fn user(name: &str, root: &Path, auth: AuthMethod, cn: &str) -> UserSection {
    UserSection {
        name: name.into(),
        password_hash: password_hash().into(),
        root: Some(root.to_path_buf()),
        s3: None,
        write: true,
        policy: Default::default(),
        auth,
        certificate: CertificateMatch {
            cn: Some(cn.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn start(pki: &Pki, mode: ClientCertificates, root: &Path) -> TestServer {
    let ca = pki.ca_path();
    let root = root.to_path_buf();
    TestServer::start_with(move |cfg| {
        cfg.tls.client_certificates = mode;
        cfg.tls.client_ca = Some(ca);
        cfg.users
            .push(user("carol", &root, AuthMethod::Certificate, "carol"));
        cfg.users.push(user(
            "dave",
            &root,
            AuthMethod::CertificateAndPassword,
            "dave",
        ));
    })
}

#[tokio::test]
async fn rfc4217_s12_2_certificate_login_is_232_and_data_uses_the_same_cert() {
    within(60, async {
        let pki = Pki::new();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"carol's file").unwrap();
        let server = start(&pki, ClientCertificates::Requested, root.path());
        let (cert, key) = pki.client("carol");
        let config = config_with_cert(&server.cert_pem, &cert, &key);
        let mut c = Client::secure(server.explicit, &config).await;
        c.expect("USER carol", 232).await;
        c.pbsz_prot_p().await;
        let got = c.download(b"RETR f").await;
        assert_eq!(got, b"carol's file");
        // A data connection with another certificate is refused (§15.1.2).
        let (other_cert, other_key) = pki.client("mallory");
        let other = config_with_cert(&server.cert_pem, &other_cert, &other_key);
        let (_, reply) = c.try_download_with(b"RETR f", &other).await;
        assert_eq!(reply.code, 522);
        c.expect("NOOP", 200).await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s15_1_2_certificate_of_another_user_is_530() {
    within(60, async {
        let pki = Pki::new();
        let root = tempfile::tempdir().unwrap();
        let server = start(&pki, ClientCertificates::Requested, root.path());
        let (cert, key) = pki.client("mallory");
        let config = config_with_cert(&server.cert_pem, &cert, &key);
        let mut c = Client::secure(server.explicit, &config).await;
        c.expect_replies(&[("USER carol", 530), ("PASS anything", 503)])
            .await;
        // Certificate-only users never log in with a password.
        let mut plain = Client::session(&server, Setup::explicit()).await;
        plain
            .expect_replies(&[("USER carol", 331), (&format!("PASS {PASSWORD}"), 530)])
            .await;
        // Password users are unaffected by a certificate they have no rule for.
        let mut a = Client::secure(server.explicit, &config).await;
        a.login().await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s12_2_certificate_and_password() {
    within(60, async {
        let pki = Pki::new();
        let root = tempfile::tempdir().unwrap();
        let server = start(&pki, ClientCertificates::Requested, root.path());
        let (cert, key) = pki.client("dave");
        let config = config_with_cert(&server.cert_pem, &cert, &key);
        let mut c = Client::secure(server.explicit, &config).await;
        c.expect_replies(&[("USER dave", 331), (&format!("PASS {PASSWORD}"), 230)])
            .await;
        // Without the certificate the password alone is not enough.
        let mut n = Client::session(&server, Setup::explicit()).await;
        n.expect_replies(&[("USER dave", 331), (&format!("PASS {PASSWORD}"), 530)])
            .await;
    })
    .await;
}

#[tokio::test]
async fn required_client_certificates_refuse_clients_without_one() {
    within(60, async {
        let pki = Pki::new();
        let root = tempfile::tempdir().unwrap();
        let server = start(&pki, ClientCertificates::Required, root.path());
        let mut c = Client::connect(server.explicit).await;
        c.expect("AUTH TLS", 234).await;
        let plain = client::config_default(&server.cert_pem);
        // rustls reports the server's refusal on the first read after the handshake.
        let result = c.start_tls(&plain).await;
        if result.is_ok() {
            c.send("NOOP").await;
            c.expect_closed().await;
        }
        let (cert, key) = pki.client("carol");
        let with = config_with_cert(&server.cert_pem, &cert, &key);
        let mut ok = Client::secure(server.explicit, &with).await;
        ok.expect("USER carol", 232).await;
    })
    .await;
}

#[tokio::test]
async fn ftps_client_presents_its_certificate() {
    within(60, async {
        let pki = Pki::new();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"via ftps-client").unwrap();
        let server = start(&pki, ClientCertificates::Requested, root.path());
        let (cert, key) = pki.client("carol");
        let mut o =
            ftps_client::ConnectOptions::new("127.0.0.1", server.explicit.port(), "carol", "");
        o.tls.ca_file = Some(server.cert_pem.clone());
        o.tls.client_cert = Some((cert, key));
        let mut c = ftps_client::Client::connect(o).await.unwrap();
        let mut s = c.retr(b"f", 0).await.unwrap();
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut out)
            .await
            .unwrap();
        s.finish().await.unwrap();
        assert_eq!(out, b"via ftps-client");
    })
    .await;
}

/// Listeners on loopback with their own client-certificate settings (`None`:
/// the global one); session reuse is off so that a data connection that does
/// not resume is judged on its client certificate alone.
fn start_listeners(
    pki: &Pki,
    global: ClientCertificates,
    explicit: &[Option<ClientCertificates>],
    implicit: &[Option<ClientCertificates>],
    root: &Path,
) -> TestServer {
    let ca = pki.ca_path();
    let root = root.to_path_buf();
    let listeners = |modes: &[Option<ClientCertificates>]| -> Vec<ListenerConfig> {
        modes
            .iter()
            .map(|mode| ListenerConfig {
                client_certificates: *mode,
                ..ListenerConfig::from("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
            })
            .collect()
    };
    let (explicit, implicit) = (listeners(explicit), listeners(implicit));
    TestServer::start_with(move |cfg| {
        cfg.server.listen = explicit;
        cfg.server.implicit_listen = implicit;
        cfg.tls.client_certificates = global;
        cfg.tls.client_ca = Some(ca);
        cfg.policy.require_session_reuse = false;
        cfg.users[0].root = Some(root.clone());
        cfg.users
            .push(user("carol", &root, AuthMethod::Certificate, "carol"));
    })
}

/// AUTH TLS without a client certificate: the server refuses the handshake
/// (rustls reports it on the handshake or on the first read after it).
async fn refused_without_certificate(addr: std::net::SocketAddr, cert_pem: &Path) {
    let mut c = Client::connect(addr).await;
    c.expect("AUTH TLS", 234).await;
    if c.start_tls(&client::config_default(cert_pem)).await.is_ok() {
        c.send("NOOP").await;
        c.expect_closed().await;
    }
}

#[tokio::test]
async fn listener_requiring_certificates_while_global_is_off() {
    within(60, async {
        let pki = Pki::new();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"per listener").unwrap();
        let server = start_listeners(
            &pki,
            ClientCertificates::Off,
            &[None, Some(ClientCertificates::Required)],
            &[None],
            root.path(),
        );
        let (open, strict) = (server.explicit_all[0], server.explicit_all[1]);
        let plain = client::config_default(&server.cert_pem);
        let (cert, key) = pki.client("carol");
        let with = config_with_cert(&server.cert_pem, &cert, &key);

        // The "required" listener: no certificate, no handshake.
        refused_without_certificate(strict, &server.cert_pem).await;
        // With one, certificate login, and the data connection is held to the
        // same rule: one without a certificate fails its handshake (522).
        let mut c = Client::open(strict, &with, Setup::explicit().tls_only()).await;
        c.expect("USER carol", 232).await;
        c.pbsz_prot_p().await;
        assert_eq!(c.download(b"RETR f").await, b"per listener");
        let (data, reply) = c.try_download_with(b"RETR f", &plain).await;
        assert_eq!(reply.code, 522, "{}", c.dialogue());
        assert!(data.is_empty());
        c.expect("NOOP", 200).await;

        // The other explicit listener and the implicit one follow the global
        // "off": no certificate needed, and none is asked for (so the
        // certificate user cannot log in there, a password user can).
        let mut o = Client::secure(open, &plain).await;
        assert_eq!(o.retr("f").await, b"per listener");
        let mut o = Client::open(open, &with, Setup::explicit().tls_only()).await;
        o.expect("USER carol", 331).await;
        let mut i = Client::open(server.implicit, &plain, Setup::implicit()).await;
        assert_eq!(i.retr("f").await, b"per listener");
    })
    .await;
}

#[tokio::test]
async fn listener_without_certificates_while_global_is_required() {
    within(60, async {
        let pki = Pki::new();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"converse").unwrap();
        let server = start_listeners(
            &pki,
            ClientCertificates::Required,
            &[Some(ClientCertificates::Off), None],
            &[None],
            root.path(),
        );
        let (open, strict) = (server.explicit_all[0], server.explicit_all[1]);
        let plain = client::config_default(&server.cert_pem);
        let (cert, key) = pki.client("carol");
        let with = config_with_cert(&server.cert_pem, &cert, &key);

        // The "off" listener: password login without a certificate, and its
        // data connections need none either (a fresh configuration: a full
        // handshake, no session to carry a certificate over).
        let mut o = Client::secure(open, &plain).await;
        assert_eq!(o.retr("f").await, b"converse");
        let fresh = client::config_default(&server.cert_pem);
        assert_eq!(o.download_with(b"RETR f", &fresh).await, b"converse");

        // Everywhere else the global "required" holds.
        refused_without_certificate(strict, &server.cert_pem).await;
        let tcp = client::tcp_connect(server.implicit).await;
        let refused = match client::tls_connect(tcp, &plain).await {
            Err(_) => true,
            Ok(mut tls) => {
                let mut byte = [0u8; 1];
                !matches!(
                    tokio::io::AsyncReadExt::read(&mut tls, &mut byte).await,
                    Ok(n) if n > 0
                )
            }
        };
        assert!(
            refused,
            "implicit listener greeted a client without a certificate"
        );
        let mut c = Client::open(strict, &with, Setup::explicit().tls_only()).await;
        c.expect("USER carol", 232).await;
        c.pbsz_prot_p().await;
        assert_eq!(c.retr("f").await, b"converse");
        let mut i = Client::connect_implicit(server.implicit, &with).await;
        i.expect("USER carol", 232).await;
    })
    .await;
}
