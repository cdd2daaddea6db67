//! `openssl s_client` (OpenSSL 3) against the real server, on the TLS layer
//! of the control connection: explicit FTPS with `-starttls ftp` (OpenSSL
//! reads the 220 greeting and sends `AUTH TLS` itself, RFC 4217 §4), implicit
//! FTPS (TLS from the first byte), with TLS 1.2 and TLS 1.3 forced, the
//! certificate verified against the generated one including its IP address
//! and DNS name (SAN 127.0.0.1, localhost), a TLS 1.3-only server refusing a
//! TLS 1.2 client, and a login (USER/PASS, PWD, QUIT — RFC 959 §4.1) over the
//! protected control connection.
//!
//! The FTP commands are piped into s_client's stdin; `-ign_eof` makes it keep
//! reading after stdin ends until the server closes the connection on QUIT,
//! and `timeout` bounds every run.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use ftps_testing::{require_tool, TestServer, PASSWORD, USER};

/// Longest an s_client run may take, in seconds.
const TIMEOUT_SECS: &str = "30";

/// Run `openssl s_client` with `args`, feeding `input` on stdin.
fn s_client(server: &TestServer, args: &[&str], input: &str) -> Output {
    ftps_testing::run_with_input(
        Command::new("timeout")
            .args(["-k", "5", TIMEOUT_SECS, "openssl", "s_client"])
            .arg("-CAfile")
            .arg(&server.cert_pem)
            .args(["-verify_return_error", "-ign_eof"])
            .args(args),
        input.as_bytes(),
    )
}

/// Log in, print the directory, quit.
fn login_script() -> String {
    format!("USER {USER}\r\nPASS {PASSWORD}\r\nPWD\r\nQUIT\r\n")
}

fn explicit_addr(server: &TestServer) -> String {
    format!("127.0.0.1:{}", server.explicit.port())
}

fn implicit_addr(server: &TestServer) -> String {
    format!("127.0.0.1:{}", server.implicit.port())
}

/// The run verified the certificate, logged in and ended on the server's
/// 221 (so the process ended because the server closed, not the timeout).
#[track_caller]
fn assert_logged_in(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!(
        "{stdout}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "s_client failed: {:?}\n{all}",
        out.status
    );
    assert!(stdout.contains("Verify return code: 0 (ok)"), "{all}");
    // s_client prints each post-handshake session ticket with the data it
    // read alongside, so a reply may not start a line: look for each reply
    // of this server by its text.
    for reply in [
        "331 Password required.",
        "230 User alice logged in.",
        "257 \"/\" is the current directory.",
        "221 Goodbye.",
    ] {
        assert!(stdout.contains(reply), "no {reply:?}\n{all}");
    }
    stdout
}

/// The negotiated protocol from s_client's session summary.
fn protocol(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Protocol  : "))
        .or_else(|| {
            stdout.lines().find_map(|l| {
                l.strip_prefix("New, ")
                    .and_then(|rest| rest.split(',').next())
            })
        })
        .unwrap_or("none")
}

#[test]
fn openssl_starttls_ftp_login() {
    if !require_tool("openssl") {
        return;
    }
    let server = TestServer::start();
    let addr = explicit_addr(&server);
    let out = s_client(
        &server,
        &[
            "-starttls",
            "ftp",
            "-connect",
            &addr,
            "-verify_ip",
            "127.0.0.1",
        ],
        &login_script(),
    );
    let stdout = assert_logged_in(&out);
    assert!(stdout.contains("Verification: OK"), "{stdout}");
}

#[test]
fn openssl_starttls_ftp_verifies_dns_name() {
    if !require_tool("openssl") {
        return;
    }
    let server = TestServer::start();
    let addr = explicit_addr(&server);
    let out = s_client(
        &server,
        &[
            "-starttls",
            "ftp",
            "-connect",
            &addr,
            "-verify_hostname",
            "localhost",
            "-servername",
            "localhost",
        ],
        &login_script(),
    );
    assert_logged_in(&out);
}

#[test]
fn openssl_starttls_ftp_tls12() {
    if !require_tool("openssl") {
        return;
    }
    let server = TestServer::start();
    let addr = explicit_addr(&server);
    let out = s_client(
        &server,
        &["-starttls", "ftp", "-connect", &addr, "-tls1_2"],
        &login_script(),
    );
    let stdout = assert_logged_in(&out);
    assert_eq!(protocol(&stdout), "TLSv1.2", "{stdout}");
}

#[test]
fn openssl_starttls_ftp_tls13() {
    if !require_tool("openssl") {
        return;
    }
    let server = TestServer::start();
    let addr = explicit_addr(&server);
    let out = s_client(
        &server,
        &["-starttls", "ftp", "-connect", &addr, "-tls1_3"],
        &login_script(),
    );
    let stdout = assert_logged_in(&out);
    assert_eq!(protocol(&stdout), "TLSv1.3", "{stdout}");
}

#[test]
fn openssl_implicit_login() {
    if !require_tool("openssl") {
        return;
    }
    let server = TestServer::start();
    let addr = implicit_addr(&server);
    let out = s_client(
        &server,
        &["-connect", &addr, "-verify_ip", "127.0.0.1"],
        &login_script(),
    );
    let stdout = assert_logged_in(&out);
    // The greeting comes over TLS, after the handshake summary.
    let greeting = stdout.find("220 ").expect("no 220 greeting");
    let summary = stdout.find("Verify return code").unwrap();
    assert!(summary < greeting, "{stdout}");
}

#[test]
fn openssl_implicit_tls12() {
    if !require_tool("openssl") {
        return;
    }
    let server = TestServer::start();
    let addr = implicit_addr(&server);
    let out = s_client(&server, &["-connect", &addr, "-tls1_2"], &login_script());
    let stdout = assert_logged_in(&out);
    assert_eq!(protocol(&stdout), "TLSv1.2", "{stdout}");
}

#[test]
fn openssl_implicit_tls13() {
    if !require_tool("openssl") {
        return;
    }
    let server = TestServer::start();
    let addr = implicit_addr(&server);
    let out = s_client(&server, &["-connect", &addr, "-tls1_3"], &login_script());
    let stdout = assert_logged_in(&out);
    assert_eq!(protocol(&stdout), "TLSv1.3", "{stdout}");
}

/// `tls.versions = ["1.3"]`: a TLS 1.2-only client fails the handshake on
/// both listeners, and never gets to send USER/PASS.
#[test]
fn openssl_tls13_only_server_refuses_tls12() {
    if !require_tool("openssl") {
        return;
    }
    let server = TestServer::start_with(|cfg| {
        cfg.tls.versions = vec![ftps_server::config::TlsVersion::V1_3]
    });
    for args in [
        vec![
            "-starttls",
            "ftp",
            "-connect",
            &explicit_addr(&server),
            "-tls1_2",
        ],
        vec!["-connect", &implicit_addr(&server), "-tls1_2"],
    ] {
        let out = s_client(&server, &args, &login_script());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}\n{stdout}\n{stderr}");
        assert!(!stdout.contains("230 "), "{args:?}\n{stdout}");
        // Exit 124 would be the timeout: the failure must be prompt.
        assert_ne!(out.status.code(), Some(124), "{args:?} timed out\n{stderr}");
    }
    // TLS 1.3 still works.
    let addr = explicit_addr(&server);
    let out = s_client(
        &server,
        &["-starttls", "ftp", "-connect", &addr, "-tls1_3"],
        &login_script(),
    );
    assert_logged_in(&out);
}
