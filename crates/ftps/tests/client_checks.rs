//! What a transfer checks and keeps beyond its bytes, against the real
//! server started in-process on loopback, which offers HASH
//! (draft-bryan-ftpext-hash) and MFMT (draft-somers-ftp-mfxx): `put` and
//! `mirror --reverse` keep modification times; `get --verify`, `put
//! --verify` and `mirror --verify` compare SHA-256 with the server's; a
//! local copy that differs is found out; and the one-line summary of a
//! transfer stays on standard error.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use ftps_testing::{random_bytes, tree, TestServer, PASSWORD, USER};

/// `ftps ARGS -u alice:... --cacert CERT --timeout 20` in `home`, killed
/// after two minutes.
fn ftps(server: &TestServer, home: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("120")
        .arg(env!("CARGO_BIN_EXE_ftps"))
        .args(args)
        .args(["-u", &format!("{USER}:{PASSWORD}"), "--timeout", "20"])
        .arg("--cacert")
        .arg(&server.cert_pem)
        .current_dir(home)
        .env("HOME", home)
        .output()
        .unwrap()
}

#[track_caller]
fn ok(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {:?}\n{stderr}", out.status);
    stderr
}

fn set_mtime(path: &Path, unix: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(unix))
        .unwrap();
}

fn mtime(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn put_keeps_the_modification_time_and_verifies_and_a_summary_stays() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("dated.bin");
    std::fs::write(&file, random_bytes(200_000)).unwrap();
    set_mtime(&file, 1_612_345_678);
    let out = ftps(
        &server,
        home.path(),
        &["put", "--verify", "dated.bin", &server.url("")],
    );
    let stderr = ok(&out, "put --verify");
    assert_eq!(mtime(&server.path("dated.bin")), 1_612_345_678);
    assert_eq!(
        std::fs::read(server.path("dated.bin")).unwrap(),
        std::fs::read(&file).unwrap()
    );
    assert!(!stderr.contains("not verified"), "{stderr}");
    // The one line that stays: name, bytes, time, rate.
    let summary = stderr.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("dated.bin: 195.31 KiB sent in ") && summary.ends_with("/s)"),
        "{stderr}"
    );
}

#[test]
fn get_verify_compares_hash_and_finds_a_local_copy_that_differs() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let content = random_bytes(1_000_003);
    std::fs::write(server.path("v.bin"), &content).unwrap();
    let out = ftps(
        &server,
        home.path(),
        &["get", "--verify", &server.url("v.bin")],
    );
    let stderr = ok(&out, "get --verify");
    assert!(!stderr.contains("not verified"), "{stderr}");
    assert!(
        stderr.contains("v.bin: 976.57 KiB received in "),
        "{stderr}"
    );
    assert_eq!(std::fs::read(home.path().join("v.bin")).unwrap(), content);
    // Same size, other bytes: -c takes it for complete, --verify does not.
    std::fs::write(home.path().join("v.bin"), random_bytes(1_000_003)).unwrap();
    let out = ftps(
        &server,
        home.path(),
        &["get", "-c", "--verify", &server.url("v.bin")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("SHA-256 differs from the server's"),
        "{stderr}"
    );
}

#[test]
fn mirror_verify_both_ways_and_reverse_keeps_times() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    for (name, len) in [("a.bin", 300_000usize), ("d/b.bin", 5), ("d/e/c.bin", 0)] {
        let path = src.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, random_bytes(len)).unwrap();
    }
    set_mtime(&src.join("d/b.bin"), 1_500_000_000);
    let out = ftps(
        &server,
        home.path(),
        &["mirror", "-R", "--verify", "src", &server.url("site")],
    );
    let stderr = ok(&out, "mirror --reverse --verify");
    assert!(!stderr.contains("not verified"), "{stderr}");
    tree::assert_same_files(&server.path("site"), &src);
    assert_eq!(mtime(&server.path("site/d/b.bin")), 1_500_000_000);
    let out = ftps(
        &server,
        home.path(),
        &["mirror", "--verify", &server.url("site"), "copy"],
    );
    ok(&out, "mirror --verify");
    tree::assert_same_files(&home.path().join("copy"), &src);
    assert_eq!(mtime(&home.path().join("copy/d/b.bin")), 1_500_000_000);
    // Nothing changed: both directions find everything up to date.
    let out = ftps(
        &server,
        home.path(),
        &["mirror", "-R", "src", &server.url("site")],
    );
    assert!(ok(&out, "mirror -R again").contains("mirror: 0 uploaded"));
}
