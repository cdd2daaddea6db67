//! lftp 4.9 (GnuTLS) against the real server: `mirror -R` then `mirror` of a
//! tree with nested and empty directories, about thirty files from 0 bytes to
//! 2 MB and a UTF-8 name (RFC 2640, `OPTS UTF8 ON`), over explicit FTPS
//! (RFC 4217: AUTH TLS, PBSZ 0, PROT P) with TLS 1.3 and with a TLS 1.2-only
//! server, listings by MLSD (RFC 3659 §7); `put`/`get` in active mode (PORT,
//! RFC 959 §4.1.2, with TLS on the data connection, the server being the TCP
//! but not the TLS client, RFC 4217 §7); and implicit FTPS (`ftps://`).
//! Each test starts its own server; every file is compared byte for byte;
//! every lftp run is bounded by `timeout` and lftp's own `net:timeout`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use ftps_testing::{random_bytes, require_tool, tree, write_random, TestServer, PASSWORD, USER};

/// Longest an lftp run may take, in seconds.
const TIMEOUT_SECS: &str = "90";

/// The settings every run starts with: TLS for the control and data
/// connections, the server's certificate as the only CA, no retries (a
/// failure must fail the test, not be papered over), and lftp's exit status
/// reflecting a failed command.
fn preamble(server: &TestServer) -> String {
    format!(
        "set cmd:fail-exit true; set net:max-retries 1; set net:timeout 20; \
         set net:reconnect-interval-base 1; set ftp:ssl-force true; \
         set ftp:ssl-protect-data true; set ssl:verify-certificate true; \
         set ssl:check-hostname true; set ssl:ca-file \"{}\"; set xfer:clobber on; \
         debug 5; ",
        server.cert_pem.display()
    )
}

/// `open` for explicit FTPS on the server's explicit port.
fn open_explicit(server: &TestServer) -> String {
    format!(
        "open -u \"{USER},{PASSWORD}\" -p {} 127.0.0.1; ",
        server.explicit.port()
    )
}

/// Run `lftp -c script` (no rc files), bounded by `timeout`.
fn lftp(script: &str) -> Output {
    Command::new("timeout")
        .args(["-k", "5", TIMEOUT_SECS, "lftp", "--norc", "-c", script])
        .output()
        .unwrap()
}

/// lftp's debug output (the FTP dialogue), without the certificate noise.
fn dialogue(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .filter(|l| !l.starts_with("***") && !l.contains("Certificate:") && !l.contains("Trusted"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "lftp failed: {:?}\n{}",
        out.status,
        dialogue(out)
    );
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

/// The local tree for the mirror tests: nested and empty directories, 30
/// files from 0 bytes to 2 MB, a UTF-8 name with a space.
fn make_tree(root: &Path) {
    let dirs = ["a", "a/b", "a/b/c", "docs", "empty", "a/b/c/deep"];
    for d in dirs {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let sizes: [usize; 27] = [
        0, 1, 2, 3, 10, 100, 511, 512, 513, 1000, 1023, 1024, 1025, 4095, 4096, 4097, 8192, 16_384,
        65_535, 65_536, 65_537, 100_000, 131_072, 250_000, 500_000, 1_000_000, 2_000_000,
    ];
    let places = ["", "a", "a/b", "a/b/c", "docs", "a/b/c/deep"];
    for (i, size) in sizes.iter().enumerate() {
        let dir = places[i % places.len()];
        write_random(
            &root.join(dir).join(format!("file{i:02}_{size}.bin")),
            *size,
        );
    }
    std::fs::write(root.join("héllo wörld.txt"), "UTF-8 name\r\nand text\n").unwrap();
    std::fs::write(root.join("a/b/ünïcödé – ∑.dat"), random_bytes(3333)).unwrap();
    std::fs::write(root.join("docs/readme.txt"), "plain text\n").unwrap();
}

fn mirror_round_trip(server: &TestServer) {
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    let back = local.path().join("back");
    std::fs::create_dir(&src).unwrap();
    make_tree(&src);
    assert!(tree::read(&src).len() >= 35);

    let script = format!(
        "{}{}mirror -R \"{}\" remote; mirror remote \"{}\"",
        preamble(server),
        open_explicit(server),
        src.display(),
        back.display()
    );
    let out = lftp(&script);
    assert_ok(&out);
    let text = dialogue(&out);
    assert!(text.contains("---> AUTH TLS"), "{text}");
    assert!(text.contains("---> PROT P"), "{text}");
    assert!(text.contains("---> MLSD"), "{text}");
    // What the server stored, and what came back, are the local tree.
    tree::assert_same(&server.path("remote"), &src);
    tree::assert_same(&back, &src);
}

#[test]
fn lftp_mirror_round_trip() {
    if !require_tool("lftp") {
        return;
    }
    let server = TestServer::start();
    mirror_round_trip(&server);
}

#[test]
fn lftp_mirror_round_trip_tls12_only_server() {
    if !require_tool("lftp") {
        return;
    }
    let server = TestServer::start_with(|cfg| {
        cfg.tls.versions = vec![ftps_server::config::TlsVersion::V1_2]
    });
    mirror_round_trip(&server);
}

/// Active mode: lftp listens, the server connects (PORT) and is then the TLS
/// server on the data connection (RFC 4217 §7: the FTP client is the TLS
/// client whatever the direction).
#[test]
fn lftp_active_mode_put_and_get() {
    if !require_tool("lftp") {
        return;
    }
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("up.bin");
    let data = write_random(&src, 1_500_001);
    let down = write_random(&server.path("down.bin"), 777_777);
    let back = local.path().join("down.bin");
    let script = format!(
        "{}set ftp:passive-mode off; {}put \"{}\" -o up.bin; get down.bin -o \"{}\"",
        preamble(&server),
        open_explicit(&server),
        src.display(),
        back.display()
    );
    let out = lftp(&script);
    assert_ok(&out);
    let text = dialogue(&out);
    assert!(
        text.contains("---> PORT ") || text.contains("---> EPRT "),
        "{text}"
    );
    assert!(!text.contains("---> PASV"), "{text}");
    assert!(!text.contains("---> EPSV"), "{text}");
    assert_file(&server.path("up.bin"), &data);
    assert_file(&back, &down);
}

/// Implicit FTPS: `ftps://` URL, TLS from the first byte, no AUTH.
#[test]
fn lftp_implicit_put_get_and_list() {
    if !require_tool("lftp") {
        return;
    }
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("up.bin");
    let data = write_random(&src, 654_321);
    let down = write_random(&server.path("down.bin"), 123_457);
    let back = local.path().join("down.bin");
    let script = format!(
        "{}open -u \"{USER},{PASSWORD}\" ftps://127.0.0.1:{}; put \"{}\" -o up.bin; \
         get down.bin -o \"{}\"; cls -1",
        preamble(&server),
        server.implicit.port(),
        src.display(),
        back.display()
    );
    let out = lftp(&script);
    assert_ok(&out);
    let text = dialogue(&out);
    assert!(!text.contains("---> AUTH"), "{text}");
    assert!(text.contains("---> PROT P"), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut names: Vec<&str> = stdout.lines().collect();
    names.sort_unstable();
    assert_eq!(names, vec!["down.bin", "up.bin"], "{text}");
    assert_file(&server.path("up.bin"), &data);
    assert_file(&back, &down);
}
