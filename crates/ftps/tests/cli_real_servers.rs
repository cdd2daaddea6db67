//! `ftps ls` and `ftps mirror` (both ways, with --delete and --parallel)
//! against vsftpd, ProFTPD and Pure-FTPd, started by the tests on loopback
//! (the harness `ftps_testing::servers`). Trees are compared
//! file by file, byte for byte. `ftps ls --cert --key` against ProFTPD with
//! `TLSVerifyClient on`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use ftps_testing::servers::{self, ExternalServer, Kind};
use ftps_testing::{random_bytes, tree};

fn ftps(server: &ExternalServer, home: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("120")
        .arg(env!("CARGO_BIN_EXE_ftps"))
        .args(args)
        .arg("--cacert")
        .arg(&server.cert_pem)
        .arg("--user")
        .arg(format!("{}:{}", server.user, server.password))
        .args(["--timeout", "30"])
        .current_dir(home)
        .env("HOME", home)
        .output()
        .unwrap()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn url(server: &ExternalServer, path: &str) -> String {
    format!("ftp://127.0.0.1:{}/{path}", server.port)
}

fn make_tree(dir: &Path) {
    for (name, len) in [
        ("top.txt", 10usize),
        ("empty.bin", 0),
        ("sub/one.bin", 70_000),
        ("sub/deeper/two.bin", 300_001),
        ("sub/deeper/three.txt", 5),
        ("other/four.bin", 1_000_000),
    ] {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, random_bytes(len)).unwrap();
    }
}

fn mirror_both_ways(kind: Kind) {
    let Some(server) = servers::start(kind) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    make_tree(&src);
    // Up (mirror --reverse), into a new remote directory.
    let out = ftps(
        &server,
        home.path(),
        &["mirror", "--reverse", "src", &url(&server, "site")],
    );
    ok(&out, "mirror --reverse");
    tree::assert_same_files(&server.root.join("site"), &src);
    // ls sees it.
    let out = ftps(
        &server,
        home.path(),
        &["ls", "--json", &url(&server, "site")],
    );
    ok(&out, "ls --json");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("\"top.txt\"") && listing.contains("\"sub\""),
        "{listing}"
    );
    // Down, with three connections.
    let out = ftps(
        &server,
        home.path(),
        &["mirror", "--parallel", "3", &url(&server, "site"), "copy"],
    );
    ok(&out, "mirror down");
    tree::assert_same_files(&home.path().join("copy"), &src);
    // Change the source, mirror up with --delete.
    std::fs::remove_file(src.join("sub/one.bin")).unwrap();
    std::fs::write(src.join("top.txt"), b"changed content").unwrap();
    let out = ftps(
        &server,
        home.path(),
        &[
            "mirror",
            "--reverse",
            "--delete",
            "src",
            &url(&server, "site"),
        ],
    );
    ok(&out, "mirror --reverse --delete");
    tree::assert_same_files(&server.root.join("site"), &src);
}

#[test]
fn vsftpd_mirror_both_ways() {
    mirror_both_ways(Kind::Vsftpd);
}

#[test]
fn proftpd_mirror_both_ways() {
    mirror_both_ways(Kind::Proftpd);
}

#[test]
fn pure_ftpd_mirror_both_ways() {
    mirror_both_ways(Kind::PureFtpd);
}

/// `ftps ls --cert C --key K` against ProFTPD's `TLSVerifyClient on` vhost;
/// without --cert it fails with an `error:` line and a `hint:` that names
/// --cert, and `ftps get` with the certificate downloads a file.
#[test]
fn proftpd_ls_with_client_certificate() {
    let Some(server) = servers::start(Kind::Proftpd) else {
        return;
    };
    server.create_sample_tree();
    let pki = server.client_pki.clone().unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = format!("ftp://127.0.0.1:{}/", server.client_cert_port.unwrap());
    let cert = pki.cert.to_str().unwrap();
    let key = pki.key.to_str().unwrap();
    let out = ftps(
        &server,
        home.path(),
        &["ls", "--json", "--cert", cert, "--key", key, &url],
    );
    ok(&out, "ls --cert --key");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("\"a.txt\"") && listing.contains("\"dir\""),
        "{listing}"
    );
    let out = ftps(
        &server,
        home.path(),
        &["get", "--cert", cert, "--key", key, &format!("{url}a.txt")],
    );
    ok(&out, "get --cert --key");
    assert_eq!(std::fs::read(home.path().join("a.txt")).unwrap(), b"hello");

    let out = ftps(&server, home.path(), &["ls", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("ls without --cert: {stderr}");
    assert!(
        !out.status.success(),
        "ls without --cert succeeded: {stderr}"
    );
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(
        stderr.contains("hint:") && stderr.contains("--cert FILE --key FILE"),
        "{stderr}"
    );
}

fn mtime(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Against ProFTPD, which offers HASH (mod_digest) and MFMT: `put` keeps
/// the local modification time; `get --verify` and `mirror --verify` both
/// ways compare SHA-256 with the server's; a local copy that differs from
/// the server's file is found out.
#[test]
fn proftpd_verify_with_hash_and_keep_times_with_mfmt() {
    let Some(server) = servers::start(Kind::Proftpd) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let out = ftps(&server, home.path(), &["quote", &url(&server, ""), "FEAT"]);
    ok(&out, "quote FEAT");
    let feat = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(feat.contains("HASH") && feat.contains("MFMT"), "{feat}");

    let dated = home.path().join("dated.txt");
    std::fs::write(&dated, b"from 2021").unwrap();
    let file = std::fs::File::options().write(true).open(&dated).unwrap();
    let then = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_612_345_678);
    file.set_modified(then).unwrap();
    drop(file);
    let out = ftps(
        &server,
        home.path(),
        &["put", "--verify", "dated.txt", &url(&server, "")],
    );
    ok(&out, "put --verify");
    assert_eq!(mtime(&server.root.join("dated.txt")), 1_612_345_678);

    let content = random_bytes(300_001);
    server.put_file("v.bin", &content);
    let out = ftps(
        &server,
        home.path(),
        &["get", "--verify", &url(&server, "v.bin")],
    );
    ok(&out, "get --verify");
    assert_eq!(std::fs::read(home.path().join("v.bin")).unwrap(), content);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("not verified"), "{stderr}");

    // A local copy of the same size but other bytes: -c finds it complete,
    // --verify finds it wrong.
    std::fs::write(home.path().join("v.bin"), random_bytes(300_001)).unwrap();
    let out = ftps(
        &server,
        home.path(),
        &["get", "-c", "--verify", &url(&server, "v.bin")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("SHA-256 differs from the server's"),
        "{stderr}"
    );

    let src = home.path().join("src");
    make_tree(&src);
    let site = url(&server, "site");
    let out = ftps(
        &server,
        home.path(),
        &["mirror", "-R", "--verify", "src", &site],
    );
    ok(&out, "mirror --reverse --verify");
    tree::assert_same_files(&server.root.join("site"), &src);
    assert_eq!(
        mtime(&server.root.join("site/sub/one.bin")),
        mtime(&src.join("sub/one.bin"))
    );
    let out = ftps(&server, home.path(), &["mirror", "--verify", &site, "copy"]);
    ok(&out, "mirror --verify");
    tree::assert_same_files(&home.path().join("copy"), &src);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("not verified"), "{stderr}");
}
