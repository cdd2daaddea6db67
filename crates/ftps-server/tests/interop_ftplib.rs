//! Python 3 ftplib (`FTP_TLS`, OpenSSL) against the real server, driving the
//! scenarios of `tests/py/ftplib_interop.py`:
//!
//! - stock `FTP_TLS` with `prot_p()`: its data connections are fresh TLS
//!   sessions, refused with 522 naming session reuse (RFC 4217 §10.2); the
//!   control connection stays usable and a refused STOR leaves no file;
//! - the well-known subclass that wraps data connections with
//!   `session=self.sock.session`: 20 STOR + NLST + 20 RETR on one control
//!   connection, every data connection resumed, with TLS 1.2 and TLS 1.3;
//! - the same in active mode (PORT, RFC 959 §4.1.2), the server connecting
//!   and then acting as TLS server (RFC 4217 §7);
//! - ABOR during a large RETR: 426 then 226 (RFC 959 §4.1.3), then the
//!   session still works;
//! - REIN over TLS: 220, TLS cleared (RFC 4217 §13), plaintext USER refused
//!   with 530 (RFC 4217 §10.1), AUTH TLS and login again;
//! - MLSD facts through `ftp.mlsd()` (RFC 3659 §7) and MLST;
//! - STOU: `150 FILE: name` (RFC 1123 §4.1.2.9), the file stored under it.
//!
//! Each test starts its own server; every file is compared byte for byte;
//! each Python run is bounded by `timeout` and 30 s socket timeouts.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ftps_testing::{require_tool, write_random, TestServer, PASSWORD, USER};

/// Longest a Python scenario may take, in seconds.
const TIMEOUT_SECS: &str = "120";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/ftplib_interop.py")
}

/// Run one scenario against `server`'s explicit port.
fn python(server: &TestServer, scenario: &str, extra: &[&str]) -> Output {
    Command::new("timeout")
        .args(["-k", "5", TIMEOUT_SECS, "python3"])
        .arg(script())
        .arg(scenario)
        .args(extra)
        .env("FTP_PORT", server.explicit.port().to_string())
        .env("FTP_CERT", &server.cert_pem)
        .env("FTP_USER", USER)
        .env("FTP_PASSWORD", PASSWORD)
        .output()
        .unwrap()
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l == "OK"),
        "python failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of a `KEY=VALUE` line the script printed.
fn value(out: &Output, key: &str) -> String {
    let prefix = format!("{key}=");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| {
            panic!(
                "no {key}= in output:\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
}

/// Byte-for-byte comparison of a file without dumping megabytes on failure.
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

/// The names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort_unstable();
    names
}

#[test]
fn ftplib_stock_ftp_tls_gets_522_and_stays_usable() {
    if !require_tool("python3") {
        return;
    }
    let server = TestServer::start();
    write_random(&server.path("present.bin"), 1234);
    let out = python(&server, "stock-refused", &[]);
    assert_ok(&out);
    let stor = value(&out, "STOR_REPLY");
    assert!(stor.starts_with("522 "), "{stor}");
    assert!(stor.contains("session reuse"), "{stor}");
    assert!(value(&out, "RETR_REPLY").starts_with("522 "));
    // The refused STOR created nothing (no empty file, no leftover).
    assert_eq!(names(server.root.path()), vec!["present.bin".to_string()]);
}

/// 20 STOR, an NLST and 20 RETR over one control connection with the
/// session-reuse subclass.
fn reuse(tls: &str, active: bool) {
    let count = 20;
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir(local.path().join("up")).unwrap();
    let mut up = Vec::new();
    let mut down = Vec::new();
    for i in 0..count {
        let size = [0, 1, 1000, 65_536, 100_003, 400_000][i % 6] + i;
        up.push(write_random(
            &local.path().join(format!("up/u{i:02}.bin")),
            size,
        ));
        down.push(write_random(
            &server.path(&format!("d{i:02}.bin")),
            size + 7,
        ));
    }
    let count_arg = count.to_string();
    let local_arg = local.path().to_str().unwrap();
    let scenario = if active { "active" } else { "reuse" };
    let out = python(
        &server,
        scenario,
        &["--tls", tls, "--local", local_arg, "--count", &count_arg],
    );
    assert_ok(&out);
    assert_eq!(value(&out, "DATA_RESUMED"), (2 * count + 1).to_string());
    for i in 0..count {
        assert_file(&server.path(&format!("u{i:02}.bin")), &up[i]);
        assert_file(&local.path().join(format!("back/d{i:02}.bin")), &down[i]);
    }
}

#[test]
fn ftplib_session_reuse_tls12() {
    if !require_tool("python3") {
        return;
    }
    reuse("1.2", false);
}

#[test]
fn ftplib_session_reuse_tls13() {
    if !require_tool("python3") {
        return;
    }
    reuse("1.3", false);
}

#[test]
fn ftplib_active_mode_tls13() {
    if !require_tool("python3") {
        return;
    }
    reuse("1.3", true);
}

#[test]
fn ftplib_active_mode_tls12() {
    if !require_tool("python3") {
        return;
    }
    reuse("1.2", true);
}

#[test]
fn ftplib_abor_during_download() {
    if !require_tool("python3") {
        return;
    }
    let server = TestServer::start();
    // Large enough that the transfer cannot finish while the client reads
    // nothing (socket buffers hold a few MB at most). A pattern, not random
    // bytes: fast to write.
    let big: Vec<u8> = (0..64 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(server.path("big.bin"), &big).unwrap();
    let small = write_random(&server.path("small.bin"), 54_321);
    let local = tempfile::tempdir().unwrap();
    let out = python(
        &server,
        "abort",
        &["--local", local.path().to_str().unwrap()],
    );
    assert_ok(&out);
    assert!(value(&out, "ABOR_REPLY1").starts_with("426"));
    assert!(value(&out, "ABOR_REPLY2").starts_with("226"));
    assert_file(&local.path().join("small.bin"), &small);
    // The download did not change the file.
    assert_eq!(
        std::fs::metadata(server.path("big.bin")).unwrap().len(),
        big.len() as u64
    );
}

#[test]
fn ftplib_rein_clears_tls_and_logs_out() {
    if !require_tool("python3") {
        return;
    }
    let server = TestServer::start();
    write_random(&server.path("present.bin"), 1234);
    let out = python(&server, "rein", &[]);
    assert_ok(&out);
    assert!(value(&out, "REIN_REPLY").starts_with("220"));
    assert!(value(&out, "PLAIN_USER_REPLY").starts_with("530"));
}

#[test]
fn ftplib_mlsd_facts() {
    if !require_tool("python3") {
        return;
    }
    let server = TestServer::start();
    write_random(&server.path("a.bin"), 4321);
    std::fs::create_dir(server.path("sub")).unwrap();
    std::fs::write(server.path("sub/inner.txt"), "12345").unwrap();
    let out = python(&server, "mlsd", &[]);
    assert_ok(&out);
}

#[test]
fn ftplib_stou() {
    if !require_tool("python3") {
        return;
    }
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let data = write_random(&local.path().join("stou.bin"), 77_777);
    let out = python(
        &server,
        "stou",
        &["--local", local.path().to_str().unwrap()],
    );
    assert_ok(&out);
    let first = value(&out, "STOU_NAME");
    let second = value(&out, "STOU_NAME2");
    let first = first.trim_start_matches('/');
    let second = second.trim_start_matches('/');
    assert_file(&server.path(first), &data);
    assert_file(&server.path(second), &data);
    let mut expected = vec![first.to_string(), second.to_string()];
    expected.sort_unstable();
    assert_eq!(names(server.root.path()), expected);
}
