//! Tests of the external-server harness (`ftps_testing::servers`) with
//! third-party clients only: curl for listings and transfers, `openssl
//! s_client` for the TLS versions, Python's ftplib (tests/servers/
//! ftplib_client.py) for active mode and session reuse, which curl 7.88
//! cannot test. Each test skips (returns) when `servers::start` gives None,
//! i.e. the servers are not installed (`sh scripts/install-test-servers.sh`);
//! with CI=true that fails instead, and so does a missing client.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use ftps_testing::random_bytes;
use ftps_testing::servers::{self, in_ci, ExternalServer, Kind};

/// Whether `tool` runs; if not, skip the test (or fail it under CI).
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(!in_ci(), "{tool} is not installed (CI=true: not skipping)");
        eprintln!("skipping: {tool} is not installed");
    }
    found
}

fn start(kind: Kind) -> Option<ExternalServer> {
    let server = servers::start(kind)?;
    eprintln!(
        "{kind} ready in {:?}: port {}, implicit {:?}, ccc {:?}, pasv {:?}, root {}",
        server.startup,
        server.port,
        server.implicit_port,
        server.ccc_port,
        server.pasv_ports,
        server.root.display()
    );
    Some(server)
}

/// curl with the server's certificate and login; TLS required.
fn curl(server: &ExternalServer) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--ssl-reqd", "--max-time", "60"])
        .arg("--cacert")
        .arg(&server.cert_pem)
        .arg("-u")
        .arg(format!("{}:{}", server.user, server.password))
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd`; panics with its stderr and the server's logs if it fails.
fn run_ok(server: &ExternalServer, mut cmd: Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{}: {what} failed ({}):\n{}\n{}\nserver logs:\n{}",
        server.kind,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
    out
}

/// LIST, a 1 MB upload and its download back, on the explicit port and (when
/// there is one) the implicit port.
fn roundtrip(kind: Kind) {
    if !have("curl") {
        return;
    }
    let Some(server) = start(kind) else { return };
    server.create_sample_tree();
    let work = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(1 << 20);
    let local = work.path().join("up.bin");
    std::fs::write(&local, &data).expect("write local file");

    let mut urls = vec![("explicit", server.url(""))];
    if let Some(url) = server.implicit_url("") {
        urls.push(("implicit", url));
    }
    for (mode, base) in urls {
        let t = Instant::now();
        let mut cmd = curl(&server);
        cmd.arg(&base);
        let listing = run_ok(&server, cmd, &format!("{mode} LIST"));
        let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
        for name in ["a.txt", "dir", "link"] {
            assert!(
                listing.contains(name),
                "{kind} {mode} LIST lacks {name}:\n{listing}"
            );
        }

        let name = format!("{mode}-1mb.bin");
        upload(&server, &local, &format!("{base}{name}"), mode);
        let on_disk = std::fs::read(server.root.join(&name)).expect("uploaded file on disk");
        assert!(
            on_disk == data,
            "{kind} {mode}: uploaded file differs on disk"
        );

        let back = work.path().join(format!("{name}.back"));
        let mut cmd = curl(&server);
        cmd.arg("-o").arg(&back).arg(format!("{base}{name}"));
        run_ok(&server, cmd, &format!("{mode} download"));
        let downloaded = std::fs::read(&back).expect("downloaded file");
        assert!(downloaded == data, "{kind} {mode}: downloaded file differs");
        eprintln!(
            "{kind} {mode}: LIST + 1 MB up + down with curl in {:?}",
            t.elapsed()
        );
    }
}

/// `curl -T local url`; to vsftpd with TLS 1.2: with TLS 1.3 curl loses
/// uploads to it now and then (`vsftpd_tls13_uploads_can_lose_data`).
fn upload(server: &ExternalServer, local: &Path, url: &str, what: &str) {
    let mut cmd = curl(server);
    if server.kind == Kind::Vsftpd {
        cmd.args(["--tls-max", "1.2"]);
    }
    cmd.arg("-T").arg(local).arg(url);
    run_ok(server, cmd, &format!("{what} upload"));
}

/// vsftpd sends a TLS 1.3 NewSessionTicket on every data connection right
/// after the handshake, uploads included. curl never reads an upload's data
/// connection, so it closes the socket with that ticket unread, and the
/// kernel answers with a RST instead of a FIN; the RST makes vsftpd's
/// kernel drop what it had received and not yet read: "426 Failure reading
/// network stream" and a truncated file (seen with strace: the ticket
/// write, then ECONNRESET on read). How often depends on load: 1 in 30
/// uploads of 1 MB on an idle machine, 1 to 5 of these 5 while the other
/// tests of this file run. None with TLS 1.2 (60 uploads), nor with
/// ProFTPD (60) or Pure-FTPd (30) over TLS 1.3. Printed, not asserted;
/// asserted only: a failure is that 426.
#[test]
fn vsftpd_tls13_uploads_can_lose_data() {
    if !have("curl") {
        return;
    }
    let Some(server) = start(Kind::Vsftpd) else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let local = work.path().join("up.bin");
    std::fs::write(&local, random_bytes(1 << 20)).expect("write local file");
    let mut failed = 0;
    for i in 0..5 {
        let mut cmd = curl(&server);
        cmd.arg("--tlsv1.3")
            .arg("-T")
            .arg(&local)
            .arg(server.url(&format!("tls13-{i}.bin")));
        let out = cmd.output().expect("run curl");
        if !out.status.success() {
            failed += 1;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("got 426"), "unexpected failure: {stderr}");
        }
    }
    eprintln!("vsftpd: {failed} of 5 curl uploads of 1 MB with TLS 1.3 failed with 426");
}

#[test]
fn vsftpd_list_upload_download() {
    roundtrip(Kind::Vsftpd);
}

#[test]
fn proftpd_list_upload_download() {
    roundtrip(Kind::Proftpd);
}

#[test]
fn pure_ftpd_list_upload_download() {
    roundtrip(Kind::PureFtpd);
}

/// The TLS version `openssl s_client -VERSION` gets from `port`, or None
/// when the handshake fails.
fn negotiated(server: &ExternalServer, port: u16, implicit: bool, version: &str) -> Option<String> {
    let mut cmd = Command::new("openssl");
    cmd.arg("s_client");
    if !implicit {
        cmd.args(["-starttls", "ftp"]);
    }
    let out = cmd
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .arg(format!("-{version}"))
        .arg("-CAfile")
        .arg(&server.cert_pem)
        .args(["-verify_return_error", "-brief"])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find_map(|line| line.strip_prefix("Protocol version:"))
        .map(|v| v.trim().to_string())
}

fn tls_versions(kind: Kind) {
    if !have("openssl") {
        return;
    }
    let Some(server) = start(kind) else { return };
    let mut ports = vec![(server.port, false)];
    ports.extend(server.implicit_port.map(|port| (port, true)));
    for (port, implicit) in ports {
        for (flag, want) in [("tls1_2", "TLSv1.2"), ("tls1_3", "TLSv1.3")] {
            let got = negotiated(&server, port, implicit, flag);
            eprintln!("{kind} port {port} (implicit: {implicit}) -{flag}: {got:?}");
            assert_eq!(got.as_deref(), Some(want), "{kind}: {want} on port {port}");
        }
        // OpenSSL 3's default security level refuses TLS 1.1 on both sides.
        let old = negotiated(&server, port, implicit, "tls1_1");
        eprintln!("{kind} port {port} (implicit: {implicit}) -tls1_1: {old:?}");
    }
}

#[test]
fn vsftpd_tls_versions() {
    tls_versions(Kind::Vsftpd);
}

#[test]
fn proftpd_tls_versions() {
    tls_versions(Kind::Proftpd);
}

#[test]
fn pure_ftpd_tls_versions() {
    tls_versions(Kind::PureFtpd);
}

/// CCC after login on `ccc_port`, then LIST and an upload. curl's
/// `--ftp-ssl-ccc-mode active` sends its close_notify first: Pure-FTPd
/// waits for it (with curl's default, passive, both sides wait forever).
/// vsftpd has no CCC (500 Unknown command; curl goes on encrypted).
fn ccc(kind: Kind) {
    if !have("curl") {
        return;
    }
    let Some(server) = start(kind) else { return };
    server.create_sample_tree();
    let Some(port) = server.ccc_port else {
        let mut cmd = curl(&server);
        cmd.args(["-v", "--ftp-ssl-ccc"]).arg(server.url(""));
        let out = run_ok(&server, cmd, "LIST after CCC");
        let reply = reply_to(&out, "CCC");
        eprintln!("{kind}: no CCC port; reply to CCC: {reply}");
        return;
    };
    let base = format!("ftp://127.0.0.1:{port}/");
    let mut cmd = curl(&server);
    cmd.args(["-v", "--ftp-ssl-ccc", "--ftp-ssl-ccc-mode", "active"])
        .arg(&base);
    let out = run_ok(&server, cmd, "LIST after CCC");
    let reply = reply_to(&out, "CCC");
    eprintln!("{kind}: reply to CCC: {reply}");
    assert!(reply.starts_with("200"), "{kind}: CCC refused: {reply}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("a.txt"));

    let work = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(100_000);
    let local = work.path().join("ccc.bin");
    std::fs::write(&local, &data).expect("write local file");
    let mut cmd = curl(&server);
    cmd.args(["--ftp-ssl-ccc", "--ftp-ssl-ccc-mode", "active", "-T"])
        .arg(&local)
        .arg(format!("{base}ccc.bin"));
    run_ok(&server, cmd, "upload after CCC");
    assert!(std::fs::read(server.root.join("ccc.bin")).expect("uploaded") == data);
}

/// The first reply after `> COMMAND` in `curl -v` output.
fn reply_to(out: &Output, command: &str) -> String {
    let log = String::from_utf8_lossy(&out.stderr);
    log.lines()
        .skip_while(|line| !line.starts_with(&format!("> {command}")))
        .find_map(|line| line.strip_prefix("< "))
        .unwrap_or("(none)")
        .trim()
        .to_string()
}

#[test]
fn vsftpd_ccc() {
    ccc(Kind::Vsftpd);
}

#[test]
fn proftpd_ccc() {
    ccc(Kind::Proftpd);
}

#[test]
fn pure_ftpd_ccc() {
    ccc(Kind::PureFtpd);
}

/// Runs tests/servers/ftplib_client.py; (exit code, stdout).
fn ftplib(server: &ExternalServer, mode: &str, port: u16) -> (Option<i32>, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/ftplib_client.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(mode)
        .arg(port.to_string())
        .arg(&server.cert_pem)
        .arg(&server.user)
        .env("FTPS_PASSWORD", &server.password)
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "{} ftplib {mode}: {}\n{stdout}{}",
        server.kind,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), stdout)
}

/// Active mode (PORT from Python's ftplib; curl 7.88's active mode is
/// broken), with TLS session resumption on the data connections.
fn active(kind: Kind) {
    if !have("python3") {
        return;
    }
    let Some(server) = start(kind) else { return };
    let (code, _) = ftplib(&server, "active", server.port);
    assert_eq!(
        code,
        Some(0),
        "{kind}: active mode failed; logs:\n{}",
        server.logs()
    );
}

#[test]
fn vsftpd_active_mode() {
    active(Kind::Vsftpd);
}

#[test]
fn proftpd_active_mode() {
    active(Kind::Proftpd);
}

#[test]
fn pure_ftpd_active_mode() {
    active(Kind::PureFtpd);
}

/// A data connection that does not resume the control connection's TLS
/// session is refused by vsftpd (522) and ProFTPD (425), not by Pure-FTPd.
fn session_reuse(kind: Kind) {
    if !have("python3") {
        return;
    }
    let Some(server) = start(kind) else { return };
    let (code, stdout) = ftplib(&server, "no-reuse", server.port);
    if kind.requires_session_reuse() {
        assert_eq!(
            code,
            Some(3),
            "{kind} accepted a data connection without session reuse"
        );
    } else {
        assert_eq!(code, Some(0), "{kind} refused a data connection: {stdout}");
    }
}

#[test]
fn vsftpd_requires_session_reuse() {
    session_reuse(Kind::Vsftpd);
}

#[test]
fn proftpd_requires_session_reuse() {
    session_reuse(Kind::Proftpd);
}

#[test]
fn pure_ftpd_does_not_require_session_reuse() {
    session_reuse(Kind::PureFtpd);
}

/// What became of each upload of one curl run.
#[derive(Debug)]
struct UploadRun {
    /// (file name, final reply to its STOR); files curl never sent STOR
    /// for (it gave up on them after an error) are missing.
    replies: Vec<(String, String)>,
    /// Control connections curl opened (220 greetings seen).
    connections: usize,
}

impl UploadRun {
    fn failures(&self) -> Vec<&(String, String)> {
        self.replies
            .iter()
            .filter(|(_, r)| !r.starts_with("226"))
            .collect()
    }
}

/// One curl run uploading `count` small files, which curl does over one
/// control connection while that connection stays usable.
fn many_uploads(server: &ExternalServer, count: usize, tls: &[&str]) -> UploadRun {
    let work = tempfile::tempdir().expect("tempdir");
    let mut cmd = curl(server);
    cmd.arg("-v").args(tls);
    for i in 1..=count {
        let local = work.path().join(format!("up{i}"));
        std::fs::write(&local, random_bytes(1000)).expect("write local file");
        cmd.arg("-T").arg(&local).arg(server.url(&format!("up{i}")));
    }
    let out = cmd.output().expect("run curl");
    let log = String::from_utf8_lossy(&out.stderr);
    let mut run = UploadRun {
        replies: Vec::new(),
        connections: 0,
    };
    let mut pending: Option<String> = None;
    for line in log.lines() {
        if line.starts_with("< 220 ") {
            run.connections += 1;
        }
        if let Some(name) = line.strip_prefix("> STOR ") {
            pending = Some(name.trim().to_string());
        } else if let Some(reply) = line.strip_prefix("< ") {
            let is_final = reply
                .get(..3)
                .and_then(|code| code.parse::<u16>().ok())
                .is_some_and(|code| code >= 200);
            if is_final {
                if let Some(name) = pending.take() {
                    run.replies.push((name, reply.trim().to_string()));
                }
            }
        } else if line.starts_with("curl:") {
            if let Some(name) = pending.take() {
                run.replies.push((name, line.to_string()));
            }
        }
    }
    run
}

/// The known problem: curl 7.88 uploading 10 files over one control
/// connection with TLS 1.3. vsftpd (require_ssl_reuse=YES) refuses some of
/// the data connections with "522 SSL connection failed: session reuse
/// required" and curl then reconnects; which uploads fail varies from run
/// to run (the 2nd to the 4th most often), and about one run in ten has no
/// failure at all (2 of 20 runs here), so that is only printed. What held
/// in every run, and is asserted: every failure is that 522 (or curl giving
/// up on the next file after it; or the 426 of
/// `vsftpd_tls13_uploads_can_lose_data`), and with
/// TLS 1.2 all ten succeed.
#[test]
fn vsftpd_tls13_many_uploads_one_connection() {
    if !have("curl") {
        return;
    }
    let Some(server) = start(Kind::Vsftpd) else {
        return;
    };
    let mut saw_522 = false;
    // Up to 5 runs: stop at the first that shows the problem.
    for attempt in 1..=5 {
        let run = many_uploads(&server, 10, &["--tlsv1.3"]);
        let failures = run.failures();
        eprintln!(
            "vsftpd, curl --tlsv1.3, 10 uploads, run {attempt}: {} of {} STORs refused, {} control connections: {:?}",
            failures.len(),
            run.replies.len(),
            run.connections,
            run.replies
        );
        for (name, reply) in &failures {
            assert!(
                reply.starts_with("522 SSL connection failed: session reuse required")
                    || reply.starts_with("426 Failure reading network stream")
                    || reply.starts_with("curl:"),
                "{name}: unexpected failure {reply}; logs:\n{}",
                server.logs()
            );
        }
        if failures.iter().any(|(_, reply)| reply.starts_with("522")) {
            saw_522 = true;
            break;
        }
    }
    if !saw_522 {
        eprintln!("note: no 522 in 5 runs of 10 TLS 1.3 uploads (the problem is timing-dependent)");
    }

    let tls12 = many_uploads(&server, 10, &["--tlsv1.2", "--tls-max", "1.2"]);
    eprintln!("vsftpd, curl --tls-max 1.2, 10 uploads: {tls12:?}");
    assert!(
        tls12.failures().is_empty() && tls12.replies.len() == 10 && tls12.connections == 1,
        "TLS 1.2 uploads over one connection failed: {tls12:?}"
    );
}

/// The same with ProFTPD and Pure-FTPd, printed only.
#[test]
fn others_tls13_many_uploads_one_connection() {
    if !have("curl") {
        return;
    }
    for kind in [Kind::Proftpd, Kind::PureFtpd] {
        let Some(server) = start(kind) else { return };
        let run = many_uploads(&server, 10, &["--tlsv1.3"]);
        eprintln!(
            "{kind}, curl --tlsv1.3, 10 uploads: {} of {} refused, {} connections: {:?}",
            run.failures().len(),
            run.replies.len(),
            run.connections,
            run.failures()
        );
    }
}

/// The data bytes of `command` (LIST, MLSD) on the root, exactly as the
/// server sent them (Python's ftplib: curl 7.88 turns CRLF into LF), or
/// None when the server refuses the command.
fn raw_listing(server: &ExternalServer, command: &str) -> Option<Vec<u8>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/ftplib_client.py");
    let out = Command::new("python3")
        .arg(script)
        .arg("raw")
        .arg(server.port.to_string())
        .arg(&server.cert_pem)
        .arg(&server.user)
        .arg(command)
        .env("FTPS_PASSWORD", &server.password)
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    match out.status.code() {
        Some(0) => Some(out.stdout),
        Some(2) => {
            eprintln!(
                "{} {command}: {}",
                server.kind,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        _ => panic!(
            "{} {command}: ftplib_client.py raw failed: {}",
            server.kind,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// With `FTPS_CAPTURE_FIXTURES=1`, write tests/servers/list-SERVER.txt and
/// mlsd-SERVER.txt (the parser fixtures) from the live servers' listings of
/// the sample tree (see tests/servers/README.md).
fn capture_fixtures(server: &ExternalServer) {
    if std::env::var_os("FTPS_CAPTURE_FIXTURES").is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers");
    for (command, prefix) in [("LIST", "list"), ("MLSD", "mlsd")] {
        let path = dir.join(format!("{prefix}-{}.txt", server.kind));
        if let Some(bytes) = raw_listing(server, command) {
            std::fs::write(&path, &bytes).expect("write fixture");
            eprintln!(
                "{} {command}: {} bytes -> {}",
                server.kind,
                bytes.len(),
                path.display()
            );
        }
    }
}

/// Each server's LIST of the sample tree has the fixture's shape: four
/// CRLF-terminated lines ending in the four names, as many lines as the
/// fixture has.
#[test]
fn listings_look_like_the_fixtures() {
    if !have("python3") {
        return;
    }
    for kind in Kind::ALL {
        let Some(server) = start(kind) else { return };
        server.create_sample_tree();
        capture_fixtures(&server);
        let list = raw_listing(&server, "LIST").expect("LIST");
        let text = String::from_utf8_lossy(&list);
        eprintln!("{kind} LIST:\n{text}");
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert!(
            text.ends_with("\r\n") && lines.len() == 4,
            "{kind}: {text:?}"
        );
        for name in ["a.txt", "dir", "link -> a.txt", "new file.txt"] {
            assert!(
                lines.iter().any(|line| line.ends_with(&format!(" {name}"))),
                "{kind}: no line for {name}: {text:?}"
            );
        }
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/servers/list-{kind}.txt"));
        if let Ok(fixture) = std::fs::read(&fixture) {
            let fixture = String::from_utf8_lossy(&fixture);
            assert_eq!(
                fixture.split_terminator("\r\n").count(),
                4,
                "{kind}: fixture"
            );
        }
    }
}
