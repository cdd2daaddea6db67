//! `ftps check` as a user runs it: against `ftps serve` (in-process,
//! `ftps_testing::TestServer`) the text report is grouped, uncoloured when
//! piped, one line per check, the evidence behind `-v` (never the
//! password), `--json` validates against the documented schema, the exit
//! code is 0; a refused login exits 2 and says why; `--list` names every
//! check.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use ftps_testing::{TestServer, PASSWORD, USER};

fn check(server: &TestServer, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("300")
        .arg(env!("CARGO_BIN_EXE_ftps"))
        .arg("check")
        .arg("--cacert")
        .arg(&server.cert_pem)
        .arg("--user")
        .arg(format!("{USER}:{PASSWORD}"))
        .args(["--timeout", "10"])
        .args(args)
        .env("HOME", server.state.path())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn text_report_is_grouped_plain_when_piped_and_shows_evidence_with_v() {
    let server = TestServer::start();
    std::fs::create_dir(server.path("up")).unwrap();
    let implicit = server.implicit.port().to_string();
    let out = check(
        &server,
        &[
            "-v",
            "--dir",
            "up",
            "--implicit-port",
            &implicit,
            &server.url(""),
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains('\u{1b}'),
        "colour codes in piped output:\n{all}"
    );
    for heading in [
        "TLS posture",
        "Control connection",
        "Data connections",
        "Draft and extras",
        "Security",
    ] {
        assert!(stdout.contains(heading), "no heading {heading}:\n{all}");
    }
    for c in ftps_check::catalogue() {
        let lines: Vec<&str> = stdout
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(c.id))
            .collect();
        assert_eq!(lines.len(), 1, "{}: one line each:\n{all}", c.id);
    }
    // The evidence: commands and replies, with the password masked.
    assert!(
        stdout.contains("> PBSZ 0") && stdout.contains("< 503"),
        "{all}"
    );
    assert!(stdout.contains("> PASS ****"), "{all}");
    assert!(
        !stdout.contains(PASSWORD),
        "the password is printed:\n{all}"
    );
    assert!(
        stdout.contains("summary:") && stdout.contains("exit code 0"),
        "{all}"
    );
}

#[test]
fn json_report_validates_against_the_schema() {
    let server = TestServer::start();
    let out = check(
        &server,
        &[
            "--json",
            "--read-only",
            "--only",
            "control,tls.versions",
            &server.url(""),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let schema: serde_json::Value = serde_json::from_str(ftps_check::SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{}", text(&out));
    let ids: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"control.prot-before-pbsz") && ids.contains(&"tls.versions"),
        "{ids:?}"
    );
    assert!(!ids.iter().any(|id| id.starts_with("data.")), "{ids:?}");
    assert_eq!(json["read_only"], true);
}

#[test]
fn refused_login_exits_2_and_says_why() {
    let server = TestServer::start();
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(["check", "--user", &format!("{USER}:wrong"), "--cacert"])
        .arg(&server.cert_pem)
        .arg(server.url(""))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("could not run") && stdout.contains("530"),
        "{}",
        text(&out)
    );
}

#[test]
fn list_names_every_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(["check", "--list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for c in ftps_check::catalogue() {
        assert!(stdout.contains(c.id), "{} missing:\n{stdout}", c.id);
    }
}
