//! The `ftps` client against FTPS servers that are libraries, started by
//! the tests with a small script (`ftps_testing::script_servers`), TLS
//! required on both:
//!
//! - pyftpdlib (Python): its MLSD writes `unix.mode=0o644`, it answers MLSD
//!   of a missing directory (or of a file) with 501, and it has MFMT;
//! - ftp-srv (Node.js): it sends the 150 of a transfer only after the data
//!   connection's TLS handshake, and lists with LIST only.
//!
//! `ls` (text and `--json`), `get`, `put` and `mirror` both ways, also into
//! a directory that does not exist yet; every file compared byte for byte.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use ftps_testing::script_servers::{self, ScriptKind, ScriptServer};
use ftps_testing::{random_bytes, tree};

/// `ftps ARGS --cacert CERT --user USER:PASSWORD --timeout 30`, in `home`,
/// killed after two minutes.
fn ftps(server: &ScriptServer, home: &Path, args: &[&str]) -> Output {
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

#[track_caller]
fn ok(server: &ScriptServer, out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} against {}: {:?}\nstdout: {}\nstderr: {}\nserver log:\n{}",
        server.kind,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tree with an empty file, a file over a megabyte and nested directories.
fn make_tree(dir: &Path) {
    for (name, len) in [
        ("top.txt", 10usize),
        ("empty.bin", 0),
        ("sub/one.bin", 70_000),
        ("sub/deeper/two.bin", 1_300_001),
        ("other/three.txt", 5),
    ] {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, random_bytes(len)).unwrap();
    }
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

/// `ls` and `ls --json` show every entry of the directory, permissions
/// included, the same in both forms.
fn ls_shows_every_entry(server: &ScriptServer, home: &Path) {
    std::fs::write(server.root.join("a.txt"), b"hello").unwrap();
    std::fs::create_dir(server.root.join("dir")).unwrap();
    std::fs::write(server.root.join("dir/inner.bin"), random_bytes(3000)).unwrap();
    let text = ok(server, &ftps(server, home, &["ls", &server.url("")]), "ls");
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["a.txt", "dir"], "{text}");
    assert!(text.lines().next().unwrap().starts_with("-rw"), "{text}");
    let json = ok(
        server,
        &ftps(server, home, &["ls", "--json", &server.url("")]),
        "ls --json",
    );
    let entries: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 2, "{json}");
    assert_eq!(entries[0]["name"], "a.txt");
    assert_eq!(entries[0]["size"], 5);
    assert_eq!(entries[1]["type"], "dir");
    assert!(
        entries[0]["mode"].as_str().unwrap().starts_with('0'),
        "{json}"
    );
    // A URL naming a file lists that one file.
    let one = ok(
        server,
        &ftps(
            server,
            home,
            &["ls", "--json", &server.url("dir/inner.bin")],
        ),
        "ls of a file",
    );
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one.as_array().unwrap().len(), 1, "{one}");
    assert_eq!(one[0]["name"], "inner.bin");
    assert_eq!(one[0]["size"], 3000);
}

/// `get` and `put`, byte for byte, a megabyte and an empty file.
fn get_and_put(server: &ScriptServer, home: &Path) {
    let big = random_bytes(1_500_000);
    std::fs::write(server.root.join("big.bin"), &big).unwrap();
    std::fs::write(server.root.join("empty.bin"), b"").unwrap();
    for name in ["big.bin", "empty.bin"] {
        let out = ftps(server, home, &["get", &server.url(name), name]);
        ok(server, &out, "get");
        assert_eq!(
            std::fs::read(home.join(name)).unwrap(),
            std::fs::read(server.root.join(name)).unwrap(),
            "get {name}"
        );
    }
    let upload = home.join("up.bin");
    std::fs::write(&upload, random_bytes(700_001)).unwrap();
    let out = ftps(server, home, &["put", "up.bin", &server.url("")]);
    ok(server, &out, "put");
    assert_eq!(
        std::fs::read(server.root.join("up.bin")).unwrap(),
        std::fs::read(&upload).unwrap()
    );
}

/// `mirror --reverse` into a remote directory that does not exist, then
/// `mirror` back into a local one that does not exist: the same files.
fn mirror_both_ways(server: &ScriptServer, home: &Path) {
    let src = home.join("src");
    make_tree(&src);
    let out = ftps(
        server,
        home,
        &["mirror", "--reverse", "src", &server.url("site")],
    );
    ok(server, &out, "mirror --reverse into a missing directory");
    tree::assert_same_files(&server.root.join("site"), &src);
    let out = ftps(server, home, &["mirror", &server.url("site"), "back/copy"]);
    ok(server, &out, "mirror into a missing local directory");
    tree::assert_same_files(&home.join("back/copy"), &src);
    // A second run finds everything up to date.
    let out = ftps(
        server,
        home,
        &["mirror", "--reverse", "src", &server.url("site")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(server, &out, "second mirror --reverse");
    assert!(stderr.contains("0 uploaded"), "{stderr}");
}

#[test]
fn pyftpdlib_ls_shows_every_entry_and_a_file_url_lists_the_file() {
    let Some(server) = script_servers::start(ScriptKind::Pyftpdlib) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    ls_shows_every_entry(&server, home.path());
}

#[test]
fn pyftpdlib_get_and_put_byte_for_byte() {
    let Some(server) = script_servers::start(ScriptKind::Pyftpdlib) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    get_and_put(&server, home.path());
}

#[test]
fn pyftpdlib_mirror_both_ways_into_missing_directories() {
    let Some(server) = script_servers::start(ScriptKind::Pyftpdlib) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    mirror_both_ways(&server, home.path());
}

#[test]
fn pyftpdlib_put_and_mirror_reverse_keep_modification_times_with_mfmt() {
    let Some(server) = script_servers::start(ScriptKind::Pyftpdlib) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("dated.txt");
    std::fs::write(&file, b"from 2021").unwrap();
    set_mtime(&file, 1_612_345_678);
    let out = ftps(&server, home.path(), &["put", "dated.txt", &server.url("")]);
    ok(&server, &out, "put");
    assert_eq!(mtime(&server.root.join("dated.txt")), 1_612_345_678);
    let src = home.path().join("tree");
    make_tree(&src);
    set_mtime(&src.join("sub/one.bin"), 1_500_000_000);
    let out = ftps(
        &server,
        home.path(),
        &["mirror", "-R", "tree", &server.url("t")],
    );
    ok(&server, &out, "mirror --reverse");
    assert_eq!(mtime(&server.root.join("t/sub/one.bin")), 1_500_000_000);
    assert_eq!(
        mtime(&server.root.join("t/top.txt")),
        mtime(&src.join("top.txt"))
    );
}

#[test]
fn ftp_srv_ls_shows_every_entry() {
    let Some(server) = script_servers::start(ScriptKind::FtpSrv) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    ls_shows_every_entry(&server, home.path());
}

#[test]
fn ftp_srv_get_and_put_byte_for_byte() {
    let Some(server) = script_servers::start(ScriptKind::FtpSrv) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    get_and_put(&server, home.path());
}

#[test]
fn ftp_srv_mirror_both_ways_into_missing_directories() {
    let Some(server) = script_servers::start(ScriptKind::FtpSrv) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    mirror_both_ways(&server, home.path());
}
