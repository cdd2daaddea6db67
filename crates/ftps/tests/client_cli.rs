//! The client subcommands, end to end: the built `ftps` binary run as a
//! child process against the real server started in-process on loopback
//! (ephemeral ports, temporary root, generated certificate). Every child is
//! killed if it outlives a deadline, so no test can hang.
#![allow(clippy::unwrap_used)]

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ftps_testing::{random_bytes, tree, write_random, TestServer, PASSWORD, USER};

/// Longest a single command may take.
const DEADLINE: Duration = Duration::from_secs(90);

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(
            self.code,
            0,
            "expected success; stderr:\n{}\nstdout:\n{}",
            self.stderr,
            String::from_utf8_lossy(&self.stdout)
        );
        self
    }

    fn fails(self) -> Run {
        assert_ne!(self.code, 0, "expected failure; stderr:\n{}", self.stderr);
        assert!(self.stderr.contains("error: "), "{}", self.stderr);
        self
    }

    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Run `ftps ARGS` in `dir` (stdin closed, HOME pointed at `dir` so no real
/// ~/.netrc is read), bounded by [`DEADLINE`].
fn run_in(dir: &Path, args: &[OsString]) -> Run {
    run_reading(dir, args, |mut stdout| {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    })
}

/// [`run_in`], with standard output read by `read_stdout`.
fn run_reading(
    dir: &Path,
    args: &[OsString],
    read_stdout: impl FnOnce(std::process::ChildStdout) -> Vec<u8> + Send + 'static,
) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || read_stdout(stdout));
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ftps {args:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out_thread.join().unwrap(),
        stderr: String::from_utf8_lossy(&err_thread.join().unwrap()).into_owned(),
    }
}

fn os(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

/// A server, a scratch directory, and the usual options.
struct Fixture {
    server: TestServer,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(TestServer::start())
    }

    fn with(server: TestServer) -> Fixture {
        Fixture {
            server,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    fn local(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Credentials, the server's CA, and a timeout.
    fn auth(&self) -> Vec<OsString> {
        let mut v = os(&["-u", &format!("{USER}:{PASSWORD}"), "--timeout", "20"]);
        v.push("--cacert".into());
        v.push(self.server.cert_pem.clone().into_os_string());
        v
    }

    /// `ftps ARGS... --auth`.
    fn ftps(&self, args: &[&str]) -> Run {
        let mut all = os(args);
        all.extend(self.auth());
        run_in(self.dir.path(), &all)
    }

    /// Without the default options.
    fn bare(&self, args: &[&str]) -> Run {
        run_in(self.dir.path(), &os(args))
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn ls_text_and_json_show_the_same_entries() {
    let f = Fixture::new();
    std::fs::write(f.server.path("a.txt"), b"hello world\n").unwrap();
    std::fs::create_dir(f.server.path("sub")).unwrap();
    write_random(&f.server.path("data.bin"), 1000);
    let odd = f.server.root.path().join(OsStr::from_bytes(b"caf\xe9"));
    std::fs::write(&odd, b"x").unwrap();

    let text = f.ftps(&["ls", &f.url("")]).ok().out();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let text_names: Vec<&str> = lines
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(text_names, ["a.txt", "caf\u{fffd}", "data.bin", "sub"]);
    let a = lines.iter().find(|l| l.ends_with(" a.txt")).unwrap();
    assert!(a.starts_with("-rw"), "{a}");
    assert!(a.contains(" 12 "), "{a}");
    assert!(lines
        .iter()
        .any(|l| l.starts_with('d') && l.ends_with(" sub")));

    let json = f.ftps(&["ls", "--json", &f.url("")]).ok().out();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let entries = json.as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.txt", "caf\\xe9", "data.bin", "sub"]);
    assert_eq!(entries[0]["type"], "file");
    assert_eq!(entries[0]["size"], 12);
    assert_eq!(entries[2]["size"], 1000);
    assert_eq!(entries[3]["type"], "dir");
    let modified = entries[0]["modified"].as_str().unwrap();
    assert!(
        modified.len() == 20 && modified.ends_with('Z') && modified.as_bytes()[10] == b'T',
        "{modified}"
    );
    assert!(entries[0]["mode"].as_str().unwrap().starts_with('0'));

    // A file URL lists the file.
    let one = f.ftps(&["ls", &f.url("data.bin")]).ok().out();
    assert_eq!(one.lines().count(), 1);
    assert!(
        one.contains(" 1000 ") && one.trim_end().ends_with("data.bin"),
        "{one}"
    );
}

/// Large enough to cross the write-back step (8 MiB) of both ends twice.
#[test]
fn get_and_put_are_byte_for_byte_including_empty_and_17mb_files() {
    let f = Fixture::new();
    let big = write_random(&f.local("big.bin"), 17 * 1024 * 1024 + 3);
    std::fs::write(f.local("empty"), b"").unwrap();

    f.ftps(&["put", "big.bin", &f.url("")]).ok();
    f.ftps(&["put", "empty", &f.url("up/")]).fails(); // no such directory
    f.ftps(&["put", "empty", &f.url("empty.dat")]).ok();
    assert_eq!(read(&f.server.path("big.bin")), big);
    assert_eq!(read(&f.server.path("empty.dat")), b"");

    // DEST defaults to the file name in the current directory.
    std::fs::remove_file(f.local("big.bin")).unwrap();
    f.ftps(&["get", &f.url("big.bin")]).ok();
    assert_eq!(read(&f.local("big.bin")), big);
    assert!(!f.local("big.bin.part").exists());
    f.ftps(&["get", &f.url("empty.dat"), "copy.dat"]).ok();
    assert_eq!(read(&f.local("copy.dat")), b"");
    // A directory as DEST keeps the name; `-` is standard output.
    std::fs::create_dir(f.local("into")).unwrap();
    f.ftps(&["get", &f.url("big.bin"), "into"]).ok();
    assert_eq!(read(&f.local("into/big.bin")), big);
    let piped = f.ftps(&["get", &f.url("big.bin"), "-"]).ok();
    assert!(piped.stdout == big, "stdout differs");
    assert!(!piped.stderr.contains('\r'), "no progress bars on a pipe");
}

/// A reader of standard output that goes away mid-download is a failed
/// download, reported as such (like curl's "failure writing output").
#[test]
fn get_to_a_closed_pipe_fails_and_says_so() {
    let f = Fixture::new();
    write_random(&f.server.path("big.bin"), 5 * 1024 * 1024);
    let mut args = os(&["get", &f.url("big.bin"), "-"]);
    args.extend(f.auth());
    // Read 10 bytes, then close the pipe.
    let run = run_reading(f.dir.path(), &args, |mut stdout| {
        let mut first = vec![0u8; 10];
        stdout.read_exact(&mut first).unwrap();
        first
    });
    assert_eq!(run.stdout.len(), 10);
    let run = run.fails();
    assert!(run.stderr.contains("standard output"), "{}", run.stderr);
}

#[test]
fn a_failed_get_leaves_neither_dest_nor_part() {
    let f = Fixture::new();
    let run = f.ftps(&["get", &f.url("missing.bin")]).fails();
    assert!(run.stderr.contains("550"), "{}", run.stderr);
    assert!(!f.local("missing.bin").exists());
    assert!(!f.local("missing.bin.part").exists());
}

#[test]
fn get_continue_resumes_from_the_part_file() {
    let f = Fixture::new();
    let data = write_random(&f.server.path("film.bin"), 2 * 1024 * 1024 + 17);
    let half = data.len() / 2;
    std::fs::write(f.local("film.bin.part"), &data[..half]).unwrap();
    let run = f.ftps(&["get", "-c", "-v", &f.url("film.bin")]).ok();
    assert!(
        run.stderr.contains(&format!("> REST {half}")),
        "{}",
        run.stderr
    );
    assert_eq!(read(&f.local("film.bin")), data);
    assert!(!f.local("film.bin.part").exists());
    // Again: nothing left to do.
    let again = f.ftps(&["get", "-c", &f.url("film.bin")]).ok();
    assert!(
        again.stderr.contains("already complete"),
        "{}",
        again.stderr
    );
    assert_eq!(read(&f.local("film.bin")), data);
}

#[test]
fn put_continue_resumes_where_the_server_stopped() {
    let f = Fixture::new();
    let data = write_random(&f.local("upload.bin"), 2 * 1024 * 1024 + 5);
    let half = data.len() / 2;
    std::fs::write(f.server.path("upload.bin"), &data[..half]).unwrap();
    let run = f
        .ftps(&["put", "-c", "-v", "upload.bin", &f.url("upload.bin")])
        .ok();
    assert!(run.stderr.contains("> SIZE upload.bin"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("> REST {half}")),
        "REST STREAM is announced, so REST + STOR: {}",
        run.stderr
    );
    assert_eq!(read(&f.server.path("upload.bin")), data);
}

#[test]
fn rm_mkdir_rmdir_mv() {
    let f = Fixture::new();
    std::fs::write(f.server.path("old.txt"), b"content").unwrap();
    f.ftps(&["mkdir", &f.url("newdir")]).ok();
    assert!(f.server.path("newdir").is_dir());
    f.ftps(&["mv", &f.url("old.txt"), "newdir/"]).ok();
    assert_eq!(read(&f.server.path("newdir/old.txt")), b"content");
    f.ftps(&["mv", &f.url("newdir/old.txt"), "renamed.txt"])
        .ok();
    assert_eq!(read(&f.server.path("renamed.txt")), b"content");
    let run = f.ftps(&["rmdir", &f.url("nothere")]).fails();
    assert!(run.stderr.contains("550"), "{}", run.stderr);
    f.ftps(&["rmdir", &f.url("newdir")]).ok();
    assert!(!f.server.path("newdir").exists());
    f.ftps(&["rm", &f.url("renamed.txt")]).ok();
    assert!(!f.server.path("renamed.txt").exists());
    f.ftps(&["rm", &f.url("renamed.txt")]).fails();
}

fn write_tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("top.txt"), b"top").unwrap();
    std::fs::write(root.join("a/one.txt"), b"one").unwrap();
    write_random(&root.join("a/b/two.bin"), 200_000);
    write_random(&root.join("a/b/c/three.bin"), 70_000);
    std::fs::write(root.join("a/b/c/zero"), b"").unwrap();
    for i in 0..6 {
        write_random(&root.join(format!("a/many{i}.bin")), 10_000 + i);
    }
}

#[test]
fn mirror_up_and_down_with_nested_dirs_delete_and_parallel() {
    let f = Fixture::new();
    let src = f.local("src");
    write_tree(&src);

    // Upload into a directory the server does not have yet.
    f.ftps(&["mirror", "--reverse", "src", &f.url("site")]).ok();
    let site = f.server.path("site");
    tree::assert_same(&site, &src);
    // Nothing changed: nothing moves.
    let again = f.ftps(&["mirror", "--reverse", "src", &f.url("site")]).ok();
    assert!(
        again.stderr.contains("mirror: 0 uploaded"),
        "{}",
        again.stderr
    );

    // Download with three connections.
    let run = f
        .ftps(&["mirror", "--parallel", "3", "-v", &f.url("site"), "copy"])
        .ok();
    let logins = run.stderr.matches("* logged in").count();
    assert_eq!(logins, 3, "{}", run.stderr);
    tree::assert_same(&f.local("copy"), &src);
    let again = f.ftps(&["mirror", &f.url("site"), "copy"]).ok();
    assert!(
        again.stderr.contains("mirror: 0 downloaded"),
        "{}",
        again.stderr
    );

    // Changes and deletions, up...
    std::fs::remove_dir_all(src.join("a/b")).unwrap();
    std::fs::remove_file(src.join("top.txt")).unwrap();
    std::fs::write(src.join("a/one.txt"), b"one, longer now").unwrap();
    std::fs::write(src.join("new.txt"), b"new").unwrap();
    f.ftps(&["mirror", "--reverse", "--delete", "src", &f.url("site")])
        .ok();
    tree::assert_same(&site, &src);
    // ...and down, also deleting a local extra.
    std::fs::write(f.local("copy/extra.txt"), b"extra").unwrap();
    std::fs::create_dir_all(f.local("copy/extradir/x")).unwrap();
    f.ftps(&[
        "mirror",
        "--delete",
        "--parallel",
        "3",
        &f.url("site"),
        "copy",
    ])
    .ok();
    tree::assert_same(&f.local("copy"), &src);
}

#[test]
fn mirror_down_sets_times_and_reports_a_file_it_cannot_write() {
    let f = Fixture::new();
    let src = f.server.path("site");
    std::fs::create_dir_all(&src).unwrap();
    let mut files = Vec::new();
    // Small files (held in memory, written by one job each) and one past the
    // in-memory limit (streamed into its .part file); fewer than the commits
    // a connection leaves in flight, so every one is still running at the end.
    for i in 0..10 {
        let name = format!("f{i:02}");
        files.push((name.clone(), write_random(&src.join(&name), 1000 + i * 97)));
    }
    files.push(("big".into(), write_random(&src.join("big"), 600_000)));
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    for (name, _) in &files {
        let file = std::fs::File::options()
            .write(true)
            .open(src.join(name))
            .unwrap();
        file.set_modified(old).unwrap();
    }
    // f07's part file cannot be made: a directory is in the way.
    std::fs::create_dir_all(f.local("copy/f07.part/x")).unwrap();
    let run = f.ftps(&["mirror", &f.url("site"), "copy"]).fails();
    assert!(run.stderr.contains("f07"), "{}", run.stderr);
    assert!(
        run.stderr.contains("1 of 11 items failed"),
        "{}",
        run.stderr
    );
    for (name, data) in &files {
        let local = f.local(&format!("copy/{name}"));
        if name == "f07" {
            assert!(!local.exists());
            continue;
        }
        assert_eq!(&read(&local), data, "{name}");
        let mtime = std::fs::metadata(&local).unwrap().modified().unwrap();
        assert_eq!(mtime, old, "{name} keeps the server's time");
        assert!(!f.local(&format!("copy/{name}.part")).exists());
    }
    // Out of the way, the next run fetches only what is missing.
    std::fs::remove_dir_all(f.local("copy/f07.part")).unwrap();
    let again = f.ftps(&["mirror", &f.url("site"), "copy"]).ok();
    assert!(
        again.stderr.contains("mirror: 1 downloaded"),
        "{}",
        again.stderr
    );
    assert_eq!(read(&f.local("copy/f07")), files[7].1);
}

/// A file listed as small (held in memory up to 256 KiB) that has grown
/// past that by the time it is fetched continues through its `.part` file
/// and arrives whole.
#[test]
fn mirror_down_fetches_a_file_that_grew_since_the_listing_whole() {
    let f = Fixture::new();
    let src = f.server.path("site");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    // The listings all come before the first download; `sub`'s files are
    // fetched after the 30 in `site`, so the growth below (once the first
    // download has landed) happens well before `grow.bin`'s RETR.
    for i in 0..30 {
        write_random(&src.join(format!("f{i:02}")), 2000);
    }
    let mut grown = write_random(&src.join("sub/grow.bin"), 1000);
    let more = random_bytes(600_000);
    grown.extend_from_slice(&more);
    let copy = f.local("copy");
    let grower = {
        let (copy, target) = (copy.clone(), src.join("sub/grow.bin"));
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while std::fs::read_dir(&copy).map_or(true, |mut d| {
                !d.any(|e| e.is_ok_and(|e| e.file_type().is_ok_and(|t| t.is_file())))
            }) {
                assert!(Instant::now() < deadline, "no download began");
                std::thread::sleep(Duration::from_micros(200));
            }
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(target)
                .unwrap();
            std::io::Write::write_all(&mut file, &more).unwrap();
            // Still nothing of sub/ fetched: the growth came first.
            !copy.join("sub/grow.bin").exists() && !copy.join("sub/grow.bin.part").exists()
        })
    };
    let run = f.ftps(&["mirror", &f.url("site"), "copy"]).ok();
    assert!(
        grower.join().unwrap(),
        "grow.bin was fetched before it grew"
    );
    assert!(
        run.stderr.contains("mirror: 31 downloaded"),
        "{}",
        run.stderr
    );
    assert!(
        read(&f.local("copy/sub/grow.bin")) == grown,
        "grow.bin is not whole"
    );
    assert!(!f.local("copy/sub/grow.bin.part").exists());
}

#[test]
fn quote_prints_the_replies() {
    let f = Fixture::new();
    let run = f.ftps(&["quote", &f.url(""), "SITE HELP", "NOOP"]).ok();
    let out = run.out();
    assert!(out.contains("214"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("200")), "{out}");
    let run = f.ftps(&["quote", &f.url(""), "BOGUS"]).fails();
    assert!(run.out().starts_with("500"), "{}", run.out());
}

#[test]
fn implicit_ftps_url_and_active_mode() {
    let f = Fixture::new();
    let data = write_random(&f.server.path("f.bin"), 300_000);
    let implicit = f.server.implicit_url("");
    let listing = f.ftps(&["ls", &implicit]).ok().out();
    assert!(listing.contains("f.bin"), "{listing}");
    f.ftps(&["get", &f.server.implicit_url("f.bin"), "implicit.bin"])
        .ok();
    assert_eq!(read(&f.local("implicit.bin")), data);

    let run = f
        .ftps(&["get", "--active", "-v", &f.url("f.bin"), "active.bin"])
        .ok();
    assert!(run.stderr.contains("> EPRT"), "{}", run.stderr);
    assert_eq!(read(&f.local("active.bin")), data);
    f.ftps(&["put", "--active", "active.bin", &f.url("back.bin")])
        .ok();
    assert_eq!(read(&f.server.path("back.bin")), data);
}

#[test]
fn prot_list_clear_for_listings_only() {
    let f = Fixture::with(TestServer::start_with(|cfg| {
        cfg.policy.require_prot_p = false
    }));
    let data = write_random(&f.server.path("f.bin"), 100_000);
    let run = f.ftps(&["ls", "--prot-list", "C", "-v", &f.url("")]).ok();
    assert!(run.out().contains("f.bin"));
    let prot_c = run
        .stderr
        .find("> PROT C")
        .expect("PROT C before the listing");
    let mlsd = run.stderr.find("> MLSD").unwrap();
    assert!(prot_c < mlsd, "{}", run.stderr);
    // Transfers stay private.
    let run = f
        .ftps(&["get", "--prot-list", "C", "-v", &f.url("f.bin"), "f.bin"])
        .ok();
    assert!(!run.stderr.contains("> PROT C"), "{}", run.stderr);
    assert_eq!(read(&f.local("f.bin")), data);

    // The default server refuses clear data connections (521).
    let strict = Fixture::new();
    let run = strict
        .ftps(&["ls", "--prot-list", "C", &strict.url("")])
        .fails();
    assert!(run.stderr.contains("521"), "{}", run.stderr);
}

#[test]
fn pbsz_timing_manual_and_after_auth() {
    let f = Fixture::new();
    std::fs::write(f.server.path("x"), b"x").unwrap();
    let run = f
        .ftps(&["ls", "--pbsz-timing", "after-auth", "-v", &f.url("")])
        .ok();
    let (pbsz, user) = (run.stderr.find("> PBSZ 0"), run.stderr.find("> USER"));
    assert!(pbsz.unwrap() < user.unwrap(), "{}", run.stderr);
    let run = f
        .ftps(&["ls", "--pbsz-timing", "manual", "-v", &f.url("")])
        .ok();
    let (pbsz, feat) = (run.stderr.find("> PBSZ 0"), run.stderr.find("> FEAT"));
    assert!(pbsz.unwrap() > feat.unwrap(), "{}", run.stderr);
    assert!(run.out().contains(" x"));
}

#[test]
fn an_untrusted_certificate_fails_with_a_hint_and_pin_trusts_it() {
    let f = Fixture::new();
    let auth = format!("{USER}:{PASSWORD}");
    let run = f
        .bare(&["ls", "-u", &auth, "--timeout", "20", &f.url("")])
        .fails();
    assert!(run.stderr.contains("certificate"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);

    // The fingerprint `ftps serve` prints (colons and all) works as the pin.
    let cert = ftps_server::certs::load_pem(
        &f.server.cert_pem,
        &f.server.state.path().join(ftps_server::certs::KEY_FILE),
    )
    .unwrap();
    let pin = format!("sha256:{}", cert.fingerprint_sha256);
    let run = f.bare(&[
        "ls",
        "-u",
        &auth,
        "--pin",
        &pin,
        "--timeout",
        "20",
        &f.url(""),
    ]);
    run.ok();
    let wrong = format!("sha256:{}", "0".repeat(64));
    f.bare(&[
        "ls",
        "-u",
        &auth,
        "--pin",
        &wrong,
        "--timeout",
        "20",
        &f.url(""),
    ])
    .fails();
    let run = f.bare(&[
        "ls",
        "-u",
        &auth,
        "--insecure",
        "--timeout",
        "20",
        &f.url(""),
    ]);
    assert!(run.ok().stderr.contains("warning: --insecure"));
}

#[test]
fn plain_ftp_is_refused_by_the_server() {
    let f = Fixture::new();
    let run = f.ftps(&["ls", "--plain", &f.url("")]).fails();
    assert!(run.stderr.contains("warning: --plain"), "{}", run.stderr);
    assert!(run.stderr.contains("530"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    assert!(!run.stderr.contains(PASSWORD));
}

#[test]
fn verbose_shows_the_dialogue_without_the_password() {
    let f = Fixture::new();
    let run = f.ftps(&["ls", "-v", &f.url("")]).ok();
    assert!(run.stderr.contains("> AUTH TLS"), "{}", run.stderr);
    assert!(run.stderr.contains("PASS ****"), "{}", run.stderr);
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    // Nor does a wrong password show up in the error.
    let url = f.url("").replace("ftp://", "ftp://alice:wrong%20secret@");
    let mut args = os(&["ls", "-v", "--timeout", "20", &url, "--cacert"]);
    args.push(f.server.cert_pem.clone().into_os_string());
    let run = run_in(f.dir.path(), &args).fails();
    assert!(run.stderr.contains("530"), "{}", run.stderr);
    assert!(!run.stderr.contains("wrong secret"), "{}", run.stderr);
}

#[test]
fn credentials_from_a_netrc_file() {
    let f = Fixture::new();
    std::fs::write(f.server.path("n.txt"), b"n").unwrap();
    let netrc = f.local("netrc");
    std::fs::write(
        &netrc,
        format!("machine 127.0.0.1\n  login {USER}\n  password \"{PASSWORD}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&netrc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cacert = f.server.cert_pem.to_str().unwrap();
    let run = f.bare(&[
        "ls",
        "--netrc-file",
        "netrc",
        "--cacert",
        cacert,
        "--timeout",
        "20",
        &f.url(""),
    ]);
    assert!(run.ok().out().contains("n.txt"));
    // A user in the URL takes the password from the matching entry.
    let url = f.url("").replace("ftp://", &format!("ftp://{USER}@"));
    f.bare(&["ls", "--netrc-file", "netrc", "--cacert", cacert, &url])
        .ok();
    // No password anywhere and no terminal: a clear error, no prompt.
    let run = f
        .bare(&["ls", "-u", "bob", "--cacert", cacert, &f.url("")])
        .fails();
    assert!(run.stderr.contains("no password"), "{}", run.stderr);
}

#[test]
fn ascii_mode_converts_line_ends() {
    let f = Fixture::new();
    std::fs::write(f.local("unix.txt"), b"one\ntwo\n").unwrap();
    f.ftps(&["put", "--ascii", "unix.txt", &f.url("")]).ok();
    assert_eq!(read(&f.server.path("unix.txt")), b"one\ntwo\n");
    f.ftps(&["get", "--ascii", &f.url("unix.txt"), "back.txt"])
        .ok();
    assert_eq!(read(&f.local("back.txt")), b"one\ntwo\n");
    f.ftps(&["get", "--ascii", "-c", &f.url("unix.txt")])
        .fails();
    // Larger than the client's write buffers (256 KiB), to a file and to
    // standard output.
    let text: Vec<u8> = (0..60_000)
        .flat_map(|i| format!("line {i} of the text\n").into_bytes())
        .collect();
    std::fs::write(f.server.path("long.txt"), &text).unwrap();
    f.ftps(&["get", "--ascii", &f.url("long.txt"), "long.txt"])
        .ok();
    assert!(read(&f.local("long.txt")) == text, "long.txt differs");
    let piped = f.ftps(&["get", "--ascii", &f.url("long.txt"), "-"]).ok();
    assert!(piped.stdout == text, "standard output differs");
}

#[test]
fn ccc_clears_the_control_connection_and_tls12_works() {
    let f = Fixture::with(TestServer::start_with(|cfg| cfg.policy.allow_ccc = true));
    let data = write_random(&f.server.path("c.bin"), 50_000);
    let run = f.ftps(&["get", "--ccc", "--tls12", "-v", &f.url("c.bin"), "c.bin"]);
    let run = run.ok();
    assert!(run.stderr.contains("> CCC"), "{}", run.stderr);
    assert!(
        run.stderr.contains("control connection: plaintext"),
        "{}",
        run.stderr
    );
    assert_eq!(read(&f.local("c.bin")), data);
}
