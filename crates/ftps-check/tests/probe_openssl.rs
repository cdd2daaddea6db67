//! The raw ClientHellos of `probe::hello` against a real TLS stack nobody
//! here wrote: `openssl s_server`, configured as badly as the TLS posture
//! checks exist to catch — TLS 1.0 only with a static-RSA suite, and a DHE
//! suite with a 1024-bit prime. The answers must be parsed and classified
//! as failures (the checks themselves only ever saw good servers in the
//! other tests). Under `CI=true` a missing openssl fails the test.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ftps_check::probe::hello::{
    self, broken, cbc, exchange, forward_secret, legacy_suites, Answer, Hello, TLS10, TLS12,
};

/// An `openssl s_server`, killed (by its process id) on drop.
struct SServer {
    child: Child,
    addr: SocketAddr,
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl {args:?}");
}

fn s_server(dir: &Path, extra: &[&str]) -> SServer {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-naccept", "20", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-cert", "cert.pem", "-key", "key.pem"])
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    SServer { child, addr }
}

async fn ask(addr: SocketAddr, version: u16, suites: Vec<u16>) -> Answer {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let h = Hello {
        version,
        suites,
        compression: vec![0],
        sni: None,
    };
    exchange(&mut tcp, &h, Duration::from_secs(10)).await
}

fn rsa_certificate() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ],
    );
    dir
}

#[tokio::test]
async fn tls10_and_a_suite_without_forward_secrecy_are_seen_and_classified() {
    if !ftps_testing::require_tool("openssl") {
        return;
    }
    let dir = rsa_certificate();
    let server = s_server(dir.path(), &["-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0"]);
    // TLS 1.0 is accepted, with TLS_RSA_WITH_AES_128_CBC_SHA.
    let answer = ask(server.addr, TLS10, legacy_suites()).await;
    let Answer::Hello(sh) = answer else {
        panic!("no ServerHello: {answer:?}");
    };
    assert_eq!(
        sh.version,
        TLS10,
        "{}",
        Answer::Hello(sh.clone()).describe()
    );
    assert_eq!(sh.suite, 0x002f, "{}", hello::suite_name(sh.suite));
    assert!(!forward_secret(sh.suite) && cbc(sh.suite) && broken(sh.suite).is_none());
    assert!(
        sh.secure_renegotiation,
        "OpenSSL answers renegotiation_info"
    );
    // A TLS 1.2 ClientHello is answered with TLS 1.0 (the server's best).
    let answer = ask(server.addr, TLS12, legacy_suites()).await;
    assert!(
        matches!(&answer, Answer::Hello(sh) if sh.version == TLS10),
        "{answer:?}"
    );
    // Offered only suites it does not have, it refuses with an alert.
    let answer = ask(server.addr, TLS10, vec![0xc02b, 0xc02f]).await;
    assert!(
        matches!(&answer, Answer::Alert { description } if description.contains("HandshakeFailure")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_1024_bit_dhe_prime_is_measured() {
    if !ftps_testing::require_tool("openssl") {
        return;
    }
    let dir = rsa_certificate();
    openssl(dir.path(), &["dhparam", "-out", "dh.pem", "1024"]);
    let server = s_server(
        dir.path(),
        &[
            "-tls1_2",
            "-cipher",
            "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
            "-dhparam",
            "dh.pem",
        ],
    );
    let answer = ask(server.addr, TLS12, legacy_suites()).await;
    let Answer::Hello(sh) = answer else {
        panic!("no ServerHello: {answer:?}");
    };
    assert_eq!(sh.suite, 0x009e, "{}", hello::suite_name(sh.suite));
    assert!(forward_secret(sh.suite) && !cbc(sh.suite));
    assert_eq!(sh.dh_prime_bits, Some(1024), "{sh:?}");
}
