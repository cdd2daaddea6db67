//! PHP's ftp extension (`ftp_ssl_connect`: explicit FTPS over OpenSSL, as
//! Debian's `php-cli` ships it) against the real server with its default
//! settings, driving `tests/php/ftp_interop.php`: 22 uploads and 22
//! downloads alternating on one control connection, then NLIST, SIZE, MDTM
//! and DELETE, with TLS 1.3 and with TLS 1.2 (chosen on the client side
//! with an OpenSSL configuration file, since PHP has no option for it).
//!
//! PHP offers only the newest TLS session it was handed (OpenSSL's
//! new-session callback) and cannot resume a TLS 1.3 session again once it
//! used it without receiving a newer one; an upload's tickets therefore
//! reach it after the upload (RFC 4217 §10.2 session reuse stays required,
//! see `transfer::data::handshake`). With TLS 1.2 it resumes the control
//! connection's ticket each time, which data connections never renew.
//!
//! Every uploaded file is compared byte for byte on the server, every
//! download with what was uploaded; the PHP run is bounded by `timeout`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ftps_testing::{require_tool, write_random, TestServer, PASSWORD, USER};

/// Longest one PHP run may take, in seconds.
const TIMEOUT_SECS: &str = "120";
/// Uploads, and downloads, in one run.
const ROUNDS: usize = 22;

/// An OpenSSL configuration that caps the client at TLS 1.2.
const OPENSSL_TLS12: &str = "openssl_conf = default_conf\n\
[default_conf]\nssl_conf = ssl_sect\n\
[ssl_sect]\nsystem_default = system_default_sect\n\
[system_default_sect]\nMaxProtocol = TLSv1.2\n";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/php/ftp_interop.php")
}

/// PHP with its ftp extension; under `CI=true` a missing one fails.
fn require_php_ftp() -> bool {
    if !require_tool("php") {
        return false;
    }
    let modules = Command::new("php").arg("-m").output().unwrap();
    let has_ftp = String::from_utf8_lossy(&modules.stdout)
        .lines()
        .any(|l| l.trim() == "ftp");
    if !has_ftp {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("PHP's ftp extension is required under CI=true but is not loaded");
        }
        eprintln!("SKIP: PHP's ftp extension is not loaded");
    }
    has_ftp
}

/// Run the PHP script against `server` with files in `local`;
/// `openssl_conf` caps the TLS version.
fn php(server: &TestServer, local: &Path, openssl_conf: Option<&Path>) -> Output {
    let mut command = Command::new("timeout");
    command
        .args(["-k", "5", TIMEOUT_SECS, "php"])
        .arg(script())
        .arg("alternate")
        .env("FTP_PORT", server.explicit.port().to_string())
        .env("FTP_USER", USER)
        .env("FTP_PASSWORD", PASSWORD)
        .env("LOCAL_DIR", local)
        .env("ROUNDS", ROUNDS.to_string());
    if let Some(conf) = openssl_conf {
        command.env("OPENSSL_CONF", conf);
    }
    command.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(
        out.status.success() && stdout(out).lines().any(|l| l == "OK"),
        "php failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[track_caller]
fn assert_file(path: &Path, expected: &[u8]) {
    let actual =
        std::fs::read(path).unwrap_or_else(|e| panic!("{} not readable: {e}", path.display()));
    assert!(
        actual == expected,
        "{}: {} bytes, expected {} bytes (or same length, different bytes)",
        path.display(),
        actual.len(),
        expected.len()
    );
}

/// 22 uploads and 22 downloads alternating on one connection: all land
/// intact, and the first file is deleted at the end.
fn alternate(openssl_conf: Option<&Path>) {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let sizes = [0, 1, 4000, 65_536, 200_003, 1_500_000];
    let sent: Vec<Vec<u8>> = (1..=ROUNDS)
        .map(|i| {
            let size = sizes[i % sizes.len()] + i;
            write_random(&local.path().join(format!("up-{i}.bin")), size)
        })
        .collect();
    let out = php(&server, local.path(), openssl_conf);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains(&format!("NLIST {ROUNDS}")), "{text}");
    assert!(text.contains(&format!("SIZE {}", sent[0].len())), "{text}");
    for (i, content) in sent.iter().enumerate().map(|(i, c)| (i + 1, c)) {
        assert_file(&local.path().join(format!("down-{i}.bin")), content);
        if i > 1 {
            assert_file(&server.path(&format!("up-{i}.bin")), content);
        }
    }
    assert!(!server.path("up-1.bin").exists(), "DELETE did not delete");
}

#[test]
fn php_ftp_tls13_alternating_uploads_and_downloads_with_defaults() {
    if !require_php_ftp() {
        return;
    }
    alternate(None);
}

#[test]
fn php_ftp_tls12_alternating_uploads_and_downloads_with_defaults() {
    if !require_php_ftp() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("openssl-tls12.cnf");
    std::fs::write(&conf, OPENSSL_TLS12).unwrap();
    alternate(Some(&conf));
    // The cap is in force: a TLS 1.3-only server cannot be reached with it.
    let server = TestServer::start_with(|cfg| {
        cfg.tls.versions = vec![ftps_server::config::TlsVersion::V1_3];
    });
    let local = tempfile::tempdir().unwrap();
    let out = php(&server, local.path(), Some(&conf));
    assert!(
        !out.status.success() && !stdout(&out).contains("LOGIN ok"),
        "PHP logged in over TLS 1.3 despite the TLS 1.2 cap:\n{}",
        stdout(&out)
    );
}
