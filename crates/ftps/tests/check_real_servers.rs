//! `ftps check` against vsftpd, ProFTPD and Pure-FTPd in their most secure
//! configurations (`ftps_testing::servers::Profile::MostSecure`), started
//! on loopback by the harness: the JSON report validates, and the known
//! deviations of each server are reported as such — what docs/check.md
//! tabulates. Under `CI=true` a missing server fails these tests.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use ftps_testing::servers::{self, ExternalServer, Kind, Profile};
use serde_json::Value;

fn audit(server: &ExternalServer) -> (Value, Output) {
    // A directory the upload checks may use, owned by the test user.
    server.put_file("checks/.keep", b"");
    let mut cmd = Command::new("timeout");
    cmd.arg("600")
        .arg(env!("CARGO_BIN_EXE_ftps"))
        .args(["check", "--json", "--dir", "checks", "--timeout", "20"])
        .arg("--cacert")
        .arg(&server.cert_pem)
        .arg("--user")
        .arg(format!("{}:{}", server.user, server.password));
    if let Some(port) = server.implicit_port {
        cmd.arg("--implicit-port").arg(port.to_string());
    }
    let out = cmd.arg(server.url("")).output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: no JSON ({e}):\n{}\n{}\nlogs:\n{}",
            server.kind,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            server.logs()
        )
    });
    if let Some(dir) = std::env::var_os("FTPS_CHECK_DUMP_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{}.json", server.kind));
        std::fs::write(path, &out.stdout).unwrap();
    }
    let schema: Value = serde_json::from_str(ftps_check::SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{}: {errors:#?}", server.kind);
    // What the upload checks created is gone again.
    let left: Vec<String> = std::fs::read_dir(server.root.join("checks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".keep")
        .collect();
    assert!(left.is_empty(), "{}: left behind {left:?}", server.kind);
    (json, out)
}

/// `(result, summary)` of one check.
fn result<'a>(json: &'a Value, id: &str) -> (&'a str, &'a str) {
    let c = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"));
    (
        c["result"].as_str().unwrap(),
        c["summary"].as_str().unwrap(),
    )
}

fn table(json: &Value) -> String {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} — {}",
                c["result"].as_str().unwrap(),
                c["id"].as_str().unwrap(),
                c["summary"].as_str().unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn expect(json: &Value, id: &str, verdict: &str, contains: &str) {
    let (got, summary) = result(json, id);
    assert!(
        got == verdict && summary.contains(contains),
        "{id}: expected {verdict} with {contains:?}, got {got}: {summary}\n\n{}",
        table(json)
    );
}

#[test]
fn vsftpd_accepts_another_connections_tls13_session() {
    let Some(server) = servers::start_with(Kind::Vsftpd, Profile::MostSecure) else {
        return;
    };
    let (json, out) = audit(&server);
    assert_eq!(out.status.code(), Some(1), "{}", table(&json));
    // require_ssl_reuse holds against a full handshake ...
    expect(&json, "data.full-handshake", "pass", "refused");
    // ... but a TLS 1.3 ticket of another control connection is resumed
    // and accepted, and so is a TLS 1.2 session (a session ticket).
    expect(&json, "data.foreign-session-tls13", "fail", "accepted");
    expect(&json, "data.foreign-session-tls12", "fail", "accepted");
    expect(&json, "tls.versions", "pass", "TLS 1.2, TLS 1.3");
    expect(&json, "tls.cipher-suites", "pass", "forward-secret AEAD");
}

#[test]
fn pure_ftpd_accepts_full_handshakes_and_foreign_sessions() {
    let Some(server) = servers::start_with(Kind::PureFtpd, Profile::MostSecure) else {
        return;
    };
    let (json, out) = audit(&server);
    assert_eq!(out.status.code(), Some(1), "{}", table(&json));
    expect(&json, "data.full-handshake", "warn", "accepted");
    // TLS 1.2: another control connection's session is resumed and accepted.
    expect(&json, "data.foreign-session-tls12", "fail", "accepted");
    // TLS 1.3: Pure-FTPd issues no tickets at all, so there is no session
    // of another connection to offer (and every data connection is a full
    // handshake, which it accepts).
    expect(
        &json,
        "data.foreign-session-tls13",
        "skip",
        "no TLS 1.3 session",
    );
    expect(&json, "tls.cipher-suites", "pass", "forward-secret AEAD");
}

#[test]
fn proftpd_answers_550_where_503_and_533_are_due_before_auth() {
    let Some(server) = servers::start_with(Kind::Proftpd, Profile::MostSecure) else {
        return;
    };
    let (json, out) = audit(&server);
    assert_eq!(out.status.code(), Some(1), "{}", table(&json));
    expect(&json, "control.pbsz-before-auth", "fail", "550");
    expect(&json, "control.prot-before-auth", "fail", "550");
    expect(&json, "data.full-handshake", "pass", "refused");
    expect(&json, "data.foreign-session-tls13", "pass", "refused");
    expect(&json, "tls.cipher-suites", "pass", "forward-secret AEAD");
}
