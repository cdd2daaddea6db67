//! rclone (Debian's package, Go's TLS client and the jlaffaye/ftp library)
//! against the real server with its default settings, explicit FTPS, with
//! TLS 1.2 (`--ftp-disable-tls13`) and with TLS 1.3: copy a tree of 60
//! files in nested directories up, list it, copy it down, `rclone check`
//! it, and delete it (`purge`). Every file is compared byte for byte, on
//! the server and after the way back.
//!
//! Go's TLS client resumes TLS 1.2 sessions only with tickets (RFC 5077),
//! so this needs the server's per-connection TLS 1.2 tickets. rclone before
//! 1.64 keeps one TLS session cache for all its connections and offers one
//! connection's session on another's data connection, which the server
//! rightly refuses (522, "[foreign-session]"); `--ftp-concurrency 1` keeps
//! it to one connection at a time (docs/compatibility.md). The certificate
//! is verified: Go reads the server's certificate from `SSL_CERT_FILE`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use ftps_testing::{require_tool, tree, write_random, TestServer, PASSWORD, USER};

/// Longest one rclone run may take, in seconds.
const TIMEOUT_SECS: &str = "120";
/// Files in the tree.
const FILES: usize = 60;

/// Run `rclone ARGS` against `server` (remote `:ftp:`), bounded by `timeout`.
fn rclone(server: &TestServer, tls12: bool, args: &[&str]) -> Output {
    let obscured = Command::new("rclone")
        .args(["obscure", PASSWORD])
        .output()
        .unwrap();
    let obscured = String::from_utf8_lossy(&obscured.stdout).trim().to_string();
    let config = tempfile::NamedTempFile::new().unwrap();
    let port = server.explicit.port().to_string();
    let mut command = Command::new("timeout");
    command
        .args(["-k", "5", TIMEOUT_SECS, "rclone"])
        .args(args)
        .args(["--config", config.path().to_str().unwrap()])
        .args(["--ftp-host", "127.0.0.1", "--ftp-port", &port])
        .args(["--ftp-user", USER, "--ftp-pass", &obscured])
        .args(["--ftp-explicit-tls", "--ftp-concurrency", "1"])
        .args(["--retries", "1", "--low-level-retries", "1"])
        .env("SSL_CERT_FILE", &server.cert_pem);
    if tls12 {
        command.arg("--ftp-disable-tls13");
    }
    command.output().unwrap()
}

#[track_caller]
fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "rclone {what} failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tree of [`FILES`] files, from empty to 300 kB, in nested directories.
fn make_tree(root: &Path) {
    for dir in ["a/b/c", "a/d", "e"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for i in 0..FILES {
        let dir = ["", "a", "a/b", "a/b/c", "a/d", "e"][i % 6];
        let size = [0, 1, 999, 65_536, 300_001][i % 5] + i;
        write_random(&root.join(dir).join(format!("f{i:02}.bin")), size);
    }
}

fn round_trip(tls12: bool) {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join("source");
    let back = local.path().join("back");
    make_tree(&source);
    let src = source.to_str().unwrap();
    let dst = back.to_str().unwrap();

    assert_ok(
        "copy up",
        &rclone(&server, tls12, &["copy", src, ":ftp:tree"]),
    );
    tree::assert_same_files(&server.path("tree"), &source);

    let listed = rclone(&server, tls12, &["lsf", "-R", "--files-only", ":ftp:tree"]);
    assert_ok("lsf", &listed);
    let names = String::from_utf8_lossy(&listed.stdout).lines().count();
    assert_eq!(names, FILES, "rclone lsf listed {names} files");

    assert_ok(
        "copy down",
        &rclone(&server, tls12, &["copy", ":ftp:tree", dst]),
    );
    tree::assert_same_files(&back, &source);

    assert_ok(
        "check",
        &rclone(&server, tls12, &["check", src, ":ftp:tree"]),
    );

    assert_ok("purge", &rclone(&server, tls12, &["purge", ":ftp:tree"]));
    assert!(!server.path("tree").exists(), "purge left the tree behind");
}

#[test]
fn rclone_tls12_copy_list_check_delete_tree_with_defaults() {
    if !require_tool("rclone") {
        return;
    }
    round_trip(true);
}

#[test]
fn rclone_tls13_copy_list_check_delete_tree_with_defaults() {
    if !require_tool("rclone") {
        return;
    }
    round_trip(false);
}
