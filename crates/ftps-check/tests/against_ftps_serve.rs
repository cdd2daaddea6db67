//! The auditor against `ftps serve` (started in-process by
//! `ftps_testing::TestServer`, ephemeral loopback ports, a fresh
//! certificate): with the secure defaults every check passes or is one of
//! the documented skips, and what the upload checks create is gone
//! afterwards; with a relaxed policy the relaxations are reported as such;
//! read-only mode creates nothing; the audit that cannot run says why with
//! exit code 2; every report validates against the JSON Schema.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use ftps_check::report::{Report, Verdict};
use ftps_testing::{TestServer, PASSWORD, USER};

/// The checks that `ftps serve` with its defaults skips, and why (docs/check.md):
/// - control.auth-resets: USER before AUTH is refused, so there is nothing to reset;
/// - data.client-certificate: client certificates are off, no CertificateRequest.
const DOCUMENTED_SKIPS: [&str; 2] = ["control.auth-resets", "data.client-certificate"];

fn options(server: &TestServer) -> ftps_check::Options {
    let mut o = ftps_check::Options::new("127.0.0.1", server.explicit.port(), USER, PASSWORD);
    o.url = server.url("");
    o.tls.ca_file = Some(server.cert_pem.clone());
    o.implicit_port = Some(server.implicit.port());
    o.timeout = Duration::from_secs(10);
    o
}

fn shown(report: &Report) -> String {
    ftps_check::render::terminal(report, true, false)
}

/// The report as JSON, validated against the documented schema.
pub fn assert_valid_json(report: &Report) -> serde_json::Value {
    let schema: serde_json::Value = serde_json::from_str(ftps_check::SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}");
    json
}

fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            out.insert(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

fn verdict(report: &Report, id: &str) -> Verdict {
    report
        .check(id)
        .unwrap_or_else(|| panic!("no check {id}"))
        .result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_or_is_a_documented_skip_against_ftps_serve() {
    let server = TestServer::start();
    std::fs::create_dir(server.path("checks")).unwrap();
    std::fs::write(server.path("hello.txt"), b"hello").unwrap();
    let mut o = options(&server);
    o.dir = Some("checks".into());
    let report = ftps_check::run(o).await;
    let text = shown(&report);
    assert!(report.error.is_none(), "{text}");
    assert_eq!(report.checks.len(), ftps_check::catalogue().len(), "{text}");
    for c in &report.checks {
        match c.result {
            Verdict::Pass | Verdict::Info => {}
            Verdict::Skip if DOCUMENTED_SKIPS.contains(&c.id) => {}
            other => panic!("{}: {other:?}: {}\n\n{text}", c.id, c.summary),
        }
    }
    assert_eq!(report.exit_code, 0, "{text}");
    // What the upload checks created is gone.
    assert!(
        files_under(&server.path("checks")).is_empty(),
        "left behind: {:?}",
        files_under(&server.path("checks"))
    );
    let json = assert_valid_json(&report);
    assert_eq!(json["exit_code"], 0);
    if let Some(dir) = std::env::var_os("FTPS_CHECK_DUMP_DIR") {
        std::fs::write(Path::new(&dir).join("ftps.json"), report.to_json()).unwrap();
    }
    // The password is nowhere in the report.
    assert!(!report.to_json().contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaxed_policies_are_reported_as_such() {
    let server = TestServer::start_with(|c| {
        c.policy.require_tls = false;
        c.policy.require_prot_p = false;
        c.policy.require_session_reuse = false;
        c.policy.allow_ccc = true;
    });
    let mut o = options(&server);
    o.read_only = true;
    o.only = vec!["control.".into(), "data.".into()];
    let report = ftps_check::run(o).await;
    let text = shown(&report);
    // USER before TLS is accepted: the password could travel in clear.
    assert_eq!(
        verdict(&report, "control.user-before-auth"),
        Verdict::Fail,
        "{text}"
    );
    // ... and AUTH still resets it (RFC 4217 §4.2).
    assert_eq!(
        verdict(&report, "control.auth-resets"),
        Verdict::Pass,
        "{text}"
    );
    assert_eq!(verdict(&report, "control.ccc"), Verdict::Warn, "{text}");
    assert_eq!(
        verdict(&report, "data.prot-c-refused"),
        Verdict::Warn,
        "{text}"
    );
    assert_eq!(
        verdict(&report, "data.full-handshake"),
        Verdict::Warn,
        "{text}"
    );
    // Each control connection keeps its own session store, so another
    // connection's session is not resumed: a full handshake instead.
    for id in ["data.foreign-session-tls12", "data.foreign-session-tls13"] {
        let c = report.check(id).unwrap();
        assert_eq!(c.result, Verdict::Warn, "{id}: {text}");
        assert!(c.summary.contains("full handshake"), "{id}: {}", c.summary);
    }
    assert_eq!(report.exit_code, 1, "{text}");
    assert_valid_json(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_creates_nothing() {
    let server = TestServer::start();
    std::fs::create_dir(server.path("sub")).unwrap();
    std::fs::write(server.path("a.txt"), b"content").unwrap();
    let before = files_under(server.root.path());
    let mut o = options(&server);
    o.read_only = true;
    let report = ftps_check::run(o).await;
    let text = shown(&report);
    assert_eq!(files_under(server.root.path()), before, "{text}");
    for c in &report.checks {
        assert_ne!(c.result, Verdict::Fail, "{}: {}\n{text}", c.id, c.summary);
    }
    // The upload checks were skipped, and say why.
    let repeated = report.check("data.repeated-transfers").unwrap();
    assert_eq!(repeated.result, Verdict::Skip);
    assert!(
        repeated.summary.contains("read-only"),
        "{}",
        repeated.summary
    );
    // RETR used the listed file.
    let retr = report.check("data.retr").unwrap();
    assert_eq!(retr.result, Verdict::Pass, "{text}");
    assert!(retr.summary.contains("a.txt"), "{}", retr.summary);
    assert!(report.read_only);
    assert_valid_json(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_that_cannot_run_says_why_with_exit_code_2() {
    let server = TestServer::start();
    // A wrong password.
    let mut o = options(&server);
    o.password = "wrong".into();
    let report = ftps_check::run(o).await;
    assert_eq!(report.exit_code, 2);
    let error = report.error.clone().unwrap();
    assert!(
        error.contains("login refused") && error.contains("530"),
        "{error}"
    );
    assert!(report.checks.is_empty());
    assert_valid_json(&report);
    // An untrusted certificate: nothing is sent, and the way out is named.
    let mut o = options(&server);
    o.tls.ca_file = None;
    let report = ftps_check::run(o).await;
    assert_eq!(report.exit_code, 2);
    let error = report.error.clone().unwrap();
    assert!(
        error.contains("not trusted") && error.contains("--cacert"),
        "{error}"
    );
    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut o = options(&server);
    o.port = port;
    let report = ftps_check::run(o).await;
    assert_eq!(report.exit_code, 2, "{}", shown(&report));
    assert!(report.error.clone().unwrap().contains("cannot connect"));
    assert_valid_json(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_url_checks_the_implicit_port_and_skips_explicit_only_checks() {
    let server = TestServer::start();
    let mut o = options(&server);
    o.port = server.implicit.port();
    o.security = ftps_check::Security::Implicit;
    o.url = server.implicit_url("");
    o.implicit_port = None;
    o.read_only = true;
    o.only = vec![
        "control.feat".into(),
        "extras.implicit".into(),
        "data.list".into(),
    ];
    let report = ftps_check::run(o).await;
    let text = shown(&report);
    assert_eq!(verdict(&report, "control.feat"), Verdict::Skip, "{text}");
    assert_eq!(verdict(&report, "extras.implicit"), Verdict::Pass, "{text}");
    assert_eq!(verdict(&report, "data.list"), Verdict::Pass, "{text}");
    assert_eq!(report.checks.len(), 3);
}

/// docs/check.md holds the catalogue as `render::catalogue_markdown` makes
/// it (rewrite it with FTPS_CHECK_WRITE_DOCS=1) and points at the schema.
#[test]
fn docs_list_every_check_with_its_section() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/check.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let (begin, end) = ("<!-- checks:begin -->\n", "<!-- checks:end -->");
    let start = doc.find(begin).expect("begin marker") + begin.len();
    let stop = doc.find(end).expect("end marker");
    let table = ftps_check::render::catalogue_markdown(&ftps_check::catalogue());
    if std::env::var_os("FTPS_CHECK_WRITE_DOCS").is_some() {
        let new = format!("{}{table}{}", &doc[..start], &doc[stop..]);
        std::fs::write(path, new).unwrap();
        return;
    }
    assert_eq!(
        &doc[start..stop],
        table,
        "docs/check.md is out of date: FTPS_CHECK_WRITE_DOCS=1 cargo test -p ftps-check --test against_ftps_serve docs_"
    );
    assert!(doc.contains("crates/ftps-check/report.schema.json"));
}

/// With client certificates required, the audit presents the user's
/// certificate (`--cert`/`--key`), sees the CertificateRequest, and a data
/// connection with another certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_cross_checked_when_the_server_asks() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ftps_testing::servers::ClientPki::generate(dir.path(), "ftps check test CA").unwrap();
    let ca = pki.ca.clone();
    let server = TestServer::start_with(move |c| {
        c.tls.client_certificates = ftps_server::config::ClientCertificates::Required;
        c.tls.client_ca = Some(ca);
    });
    let mut o = options(&server);
    o.tls.client_cert = Some((pki.cert.clone(), pki.key.clone()));
    o.read_only = true;
    o.only = vec!["data.client-certificate".into(), "data.list".into()];
    let report = ftps_check::run(o).await;
    let text = shown(&report);
    assert_eq!(verdict(&report, "data.list"), Verdict::Pass, "{text}");
    let c = report.check("data.client-certificate").unwrap();
    assert_eq!(c.result, Verdict::Pass, "{text}");
    assert!(c.summary.starts_with("refused"), "{}", c.summary);
    // Without a certificate the audit cannot run, and says what to pass.
    let mut o = options(&server);
    o.read_only = true;
    let report = ftps_check::run(o).await;
    assert_eq!(report.exit_code, 2);
    let error = report.error.clone().unwrap();
    assert!(error.contains("--cert FILE --key FILE"), "{error}");
}
