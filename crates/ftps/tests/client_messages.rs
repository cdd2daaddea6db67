//! What the client says when it cannot go on, end to end: the built `ftps`
//! binary against the real server started in-process on loopback (with
//! certificates made wrong on purpose, `ftps_testing::cert_defects`).
//! Certificate errors are in words, never the TLS library's debug names; a
//! pin that does not match prints the server's real fingerprint; an
//! `ftp://` URL for an implicit-FTPS port is recognised within a second
//! and answered with the `ftps://` URL to use.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ftps_testing::cert_defects::{write_server_certificate, Defect};
use ftps_testing::{TestServer, PASSWORD, USER};

/// `ftps ARGS -u alice:... --timeout 20` in a scratch HOME, killed after a
/// minute.
fn ftps(home: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_ftps"))
        .args(args)
        .args(["-u", &format!("{USER}:{PASSWORD}"), "--timeout", "20"])
        .current_dir(home)
        .env("HOME", home)
        .output()
        .unwrap()
}

/// The failure's standard error (the command must have failed).
#[track_caller]
fn failed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected a failure: {stderr}");
    assert!(stderr.contains("error: "), "{stderr}");
    stderr
}

/// Debug names of rustls and webpki errors that must not reach the user.
#[track_caller]
fn no_debug_text(stderr: &str) {
    for name in [
        "UnknownIssuer",
        "NotValidForName",
        "Expired",
        "CaUsedAsEndEntity",
        "ApplicationVerificationFailure",
        "InvalidCertificate",
        "Other(",
    ] {
        assert!(!stderr.contains(name), "debug text {name:?} in: {stderr}");
    }
}

fn with_certificate(defect: Defect) -> TestServer {
    TestServer::start_with(|config| {
        write_server_certificate(config.server.state_dir.as_ref().unwrap(), defect)
    })
}

#[test]
fn an_untrusted_issuer_is_said_in_words() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    // No --cacert: the system's roots do not know the self-signed server.
    let stderr = failed(&ftps(home.path(), &["ls", &server.url("")]));
    assert!(
        stderr.contains("not signed by a trusted certificate authority"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: ") && stderr.contains("--cacert"),
        "{stderr}"
    );
    no_debug_text(&stderr);
}

#[test]
fn a_certificate_for_another_name_says_which_names_it_has() {
    let server = with_certificate(Defect::OtherName);
    let home = tempfile::tempdir().unwrap();
    let cacert = server.cert_pem.to_str().unwrap();
    let out = ftps(home.path(), &["ls", "--cacert", cacert, &server.url("")]);
    let stderr = failed(&out);
    assert!(
        stderr.contains("not valid for 127.0.0.1; it is for ftp.example.com"),
        "{stderr}"
    );
    no_debug_text(&stderr);
}

#[test]
fn an_expired_certificate_says_since_when() {
    let server = with_certificate(Defect::Expired);
    let home = tempfile::tempdir().unwrap();
    let cacert = server.cert_pem.to_str().unwrap();
    let out = ftps(home.path(), &["ls", "--cacert", cacert, &server.url("")]);
    let stderr = failed(&out);
    assert!(
        stderr.contains("expired on 2021-01-01 00:00:00 UTC"),
        "{stderr}"
    );
    no_debug_text(&stderr);
}

#[test]
fn a_ca_certificate_as_server_certificate_is_named() {
    let server = with_certificate(Defect::CaAsServer);
    let home = tempfile::tempdir().unwrap();
    // Trusted as a CA, it still cannot stand for the server.
    let other = TestServer::start();
    let cacert = other.cert_pem.to_str().unwrap();
    let out = ftps(home.path(), &["ls", "--cacert", cacert, &server.url("")]);
    let stderr = failed(&out);
    assert!(stderr.contains("is a CA certificate"), "{stderr}");
    assert!(stderr.contains("CA:TRUE"), "{stderr}");
    no_debug_text(&stderr);
    // Given as exactly the server's certificate, it is trusted.
    let own = server.cert_pem.to_str().unwrap();
    let out = ftps(home.path(), &["ls", "--cacert", own, &server.url("")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_pin_mismatch_says_so_and_prints_the_servers_fingerprint() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let actual = ftps_server::certs::load_or_generate(server.state.path(), &[])
        .unwrap()
        .fingerprint_sha256;
    let wrong = format!("sha256:{}", "AB:".repeat(31) + "AB");
    let out = ftps(home.path(), &["ls", "--pin", &wrong, &server.url("")]);
    let stderr = failed(&out);
    assert!(stderr.contains("does not match --pin"), "{stderr}");
    assert!(stderr.contains(&format!("sha256:{actual}")), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
    no_debug_text(&stderr);
    // The fingerprint printed is one --pin takes.
    let pin = format!("sha256:{actual}");
    let out = ftps(home.path(), &["ls", "--pin", &pin, &server.url("")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_ftp_url_for_an_implicit_port_is_recognised_within_a_second() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let cacert = server.cert_pem.to_str().unwrap();
    let port = server.implicit.port();
    let url = format!("ftp://127.0.0.1:{port}/");
    let started = Instant::now();
    let out = ftps(home.path(), &["ls", "--cacert", cacert, &url]);
    let took = started.elapsed();
    let stderr = failed(&out);
    assert!(stderr.contains("implicit FTPS"), "{stderr}");
    assert!(
        stderr.contains(&format!("hint: use ftps://127.0.0.1:{port}/")),
        "{stderr}"
    );
    // Well before the 20 s reply timeout: the probe, not a time-out, told.
    assert!(took < Duration::from_secs(5), "took {took:?}: {stderr}");
    // And the URL the hint gives works.
    let out = ftps(
        home.path(),
        &["ls", "--cacert", cacert, &server.implicit_url("")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
