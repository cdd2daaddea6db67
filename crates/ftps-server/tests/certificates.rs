//! Server certificates: chosen by SNI server name, reloaded without dropping
//! sessions (SIGHUP calls the same reloader), and the same certificate on a
//! session's control and data connections even across a reload (RFC 4217
//! §15.1.1).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use ftps_proto::reply::ReplyParser;
use ftps_server::config::SniCertificate;
use ftps_testing::{TestServer, PASSWORD, USER};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

fn write_cert(dir: &Path, name: &str) -> CertificateDer<'static> {
    let key = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), key.cert.pem()).unwrap();
    std::fs::write(
        dir.join(format!("{name}.key")),
        key.key_pair.serialize_pem(),
    )
    .unwrap();
    key.cert.der().clone()
}

fn client_config(trusted: &[CertificateDer<'static>]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add(c.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn tls(
    addr: std::net::SocketAddr,
    config: &Arc<ClientConfig>,
    name: &str,
) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    connector
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
        .unwrap()
}

fn peer_cert(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

async fn reply(stream: &mut TlsStream<TcpStream>, parser: &mut ReplyParser) -> u16 {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(r) = parser.next_reply().unwrap() {
            return r.code;
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed");
        parser.push(&buf[..n]);
    }
}

async fn cmd(stream: &mut TlsStream<TcpStream>, parser: &mut ReplyParser, line: &str) -> u16 {
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .unwrap();
    reply(stream, parser).await
}

fn sni(dir: &Path, name: &str) -> SniCertificate {
    SniCertificate {
        name: name.into(),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    }
}

#[tokio::test]
async fn sni_chooses_the_certificate_and_reload_keeps_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let a1 = write_cert(dir.path(), "a.test");
    let b = write_cert(dir.path(), "b.test");
    let d = dir.path().to_path_buf();
    let server = TestServer::start_with(move |cfg| {
        cfg.tls.sni = vec![sni(&d, "a.test"), sni(&d, "b.test")];
    });
    std::fs::write(server.path("f"), b"data").unwrap();
    let default = CertificateDer::from_pem_file(&server.cert_pem).unwrap();
    let config = client_config(&[a1.clone(), b.clone(), default.clone()]);

    // Each name gets its certificate; other names the default one.
    assert_eq!(
        peer_cert(&tls(server.implicit, &config, "a.test").await),
        a1
    );
    assert_eq!(peer_cert(&tls(server.implicit, &config, "b.test").await), b);
    assert_eq!(
        peer_cert(&tls(server.implicit, &config, "localhost").await),
        default
    );

    // A session on a.test, logged in before the reload.
    let mut s = tls(server.implicit, &config, "a.test").await;
    let mut p = ReplyParser::new();
    assert_eq!(reply(&mut s, &mut p).await, 220);
    assert_eq!(cmd(&mut s, &mut p, &format!("USER {USER}")).await, 331);
    assert_eq!(cmd(&mut s, &mut p, &format!("PASS {PASSWORD}")).await, 230);

    // New certificate for a.test, then reload (what SIGHUP does).
    let a2 = write_cert(dir.path(), "a.test");
    server.reloader.reload().unwrap();
    let config2 = client_config(&[a1.clone(), a2.clone(), b.clone(), default.clone()]);
    assert_eq!(
        peer_cert(&tls(server.implicit, &config2, "a.test").await),
        a2
    );

    // The old session goes on, and its data connection presents the old
    // certificate, like its control connection (RFC 4217 §15.1.1).
    s.write_all(b"EPSV\r\n").await.unwrap();
    let mut buf = [0u8; 4096];
    let text = loop {
        if let Some(r) = p.next_reply().unwrap() {
            assert_eq!(r.code, 229);
            break r.text();
        }
        let n = s.read(&mut buf).await.unwrap();
        p.push(&buf[..n]);
    };
    let port = ftps_proto::address::parse_epsv_reply_text(&text).unwrap();
    s.write_all(b"RETR f\r\n").await.unwrap();
    assert_eq!(reply(&mut s, &mut p).await, 150);
    let mut data = tls(
        std::net::SocketAddr::new(server.implicit.ip(), port),
        &config,
        "a.test",
    )
    .await;
    assert_eq!(peer_cert(&data), a1);
    let mut got = Vec::new();
    data.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"data");
    assert_eq!(reply(&mut s, &mut p).await, 226);
}

#[tokio::test]
async fn reload_with_a_broken_file_keeps_the_old_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_cert(dir.path(), "a.test");
    let d = dir.path().to_path_buf();
    let server = TestServer::start_with(move |cfg| {
        cfg.tls.sni = vec![sni(&d, "a.test")];
    });
    std::fs::write(dir.path().join("a.test.pem"), b"not a certificate").unwrap();
    assert!(server.reloader.reload().is_err());
    let config = client_config(std::slice::from_ref(&a));
    assert_eq!(peer_cert(&tls(server.implicit, &config, "a.test").await), a);
}
