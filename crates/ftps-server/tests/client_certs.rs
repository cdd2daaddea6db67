//! TLS client certificates as identity (RFC 4217 §12.2, §15.1.2): a user
//! whose certificate suffices gets 232 to USER and no PASS is asked; a
//! certificate that maps to another user gets 530; a user may require both
//! certificate and password; the data connection must present the same
//! certificate as the control connection (else 522); with
//! `client_certificates = "required"` a client without one cannot even
//! complete the handshake.
#![allow(clippy::unwrap_used)]

#[path = "common/client.rs"]
mod client;
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use client::{within, Client};
use common::*;
use ftps_server::config::{AuthMethod, CertificateMatch, ClientCertificates, UserSection};
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
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
        root: root.to_path_buf(),
        write: true,
        policy: Default::default(),
        auth,
        certificate: CertificateMatch {
            cn: Some(cn.into()),
            ..Default::default()
        },
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
        c.expect("USER carol", 530).await;
        c.expect("PASS anything", 503).await;
        // Certificate-only users never log in with a password.
        let mut plain =
            Client::secure(server.explicit, &client::config_default(&server.cert_pem)).await;
        plain.expect("USER carol", 331).await;
        plain.expect(&format!("PASS {PASSWORD}"), 530).await;
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
        c.expect("USER dave", 331).await;
        c.expect(&format!("PASS {PASSWORD}"), 230).await;
        // Without the certificate the password alone is not enough.
        let mut n =
            Client::secure(server.explicit, &client::config_default(&server.cert_pem)).await;
        n.expect("USER dave", 331).await;
        n.expect(&format!("PASS {PASSWORD}"), 530).await;
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
