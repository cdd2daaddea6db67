//! The front door: `ftps serve --root DIR` with no configuration gives a
//! working, secure server (self-signed certificate kept across restarts, one
//! user whose password is printed once with a ready-to-paste curl command);
//! configuration mistakes name the key and the line; `ftps hash-password`
//! makes a hash the server accepts.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn ftps() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ftps"))
}

struct Running {
    child: Child,
    banner: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `ftps serve` on ephemeral ports and read its banner up to the blank
/// line that ends it.
fn serve(root: &Path, state: &Path) -> Running {
    let mut child = ftps()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--implicit-listen",
            "127.0.0.1:0",
        ])
        .arg("--root")
        .arg(root)
        .arg("--state-dir")
        .arg(state)
        .args(["--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut banner = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    let mut blank_lines = 0;
    while let Some(Ok(line)) = lines.next() {
        if line.trim().is_empty() {
            blank_lines += 1;
            // The banner ends with a blank line; a new user adds two inner ones.
            if banner.iter().any(|l: &String| l.contains("password:")) {
                if blank_lines == 3 {
                    break;
                }
            } else if banner
                .iter()
                .any(|l: &String| l.contains("user: the zero-config user"))
            {
                break;
            }
        }
        banner.push(line);
    }
    Running { child, banner }
}

fn field<'a>(banner: &'a [String], key: &str) -> Option<&'a str> {
    banner
        .iter()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.split_whitespace().next().unwrap_or(""))
}

#[test]
fn zero_config_start_is_secure_and_works_with_the_printed_curl_command() {
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("hello.txt"), b"hello\n").unwrap();
    let server = serve(root.path(), state.path());
    let banner = server.banner.join("\n");
    let password = field(&server.banner, "password:")
        .expect(&banner)
        .to_string();
    let fingerprint = field(&server.banner, "certificate SHA-256 fingerprint:")
        .unwrap()
        .to_string();
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{banner}");
    let curl_line = server
        .banner
        .iter()
        .find(|l| l.trim_start().starts_with("curl "))
        .expect(&banner)
        .trim()
        .to_string();
    assert!(curl_line.contains("--ssl-reqd") && curl_line.contains("--cacert"));

    if Command::new("sh")
        .arg("-c")
        .arg("command -v curl")
        .output()
        .unwrap()
        .status
        .success()
    {
        // The printed command, as a user would paste it, lists the root.
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{curl_line} -sS --max-time 30"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("hello.txt"));
        // Without TLS the login is refused: secure by default.
        let url = curl_line.split_whitespace().last().unwrap();
        let plain = Command::new("curl")
            .args(["-sS", "--max-time", "30", "--user"])
            .arg(format!("ftps:{password}"))
            .arg(url)
            .output()
            .unwrap();
        assert!(!plain.status.success());
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("curl is required under CI=true");
    }
    drop(server);

    // A restart keeps the certificate and the user, and does not print the password again.
    let again = serve(root.path(), state.path());
    let banner2 = again.banner.join("\n");
    assert!(!banner2.contains(&password), "{banner2}");
    assert!(banner2.contains(&fingerprint), "{banner2}");
}

#[test]
fn config_mistake_names_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ftps.toml");
    std::fs::write(&path, "[server]\nmax_sessions = 10\nmax_sesions = 3\n").unwrap();
    let out = ftps()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("max_sesions"),
        "{err}"
    );

    std::fs::write(&path, "[server]\nmax_sessions = \"many\"\n").unwrap();
    let out = ftps()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("line 2"), "{err}");

    std::fs::write(&path, "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n[[users]]\nname = \"a\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG\"\nroot = \"/tmp\"\n").unwrap();
    let out = ftps()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}

#[test]
fn hash_password_output_verifies() {
    let out = ftps_testing::run_with_input(ftps().arg("hash-password"), b"s3cret pass\n");
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(ftps_server::users::verify_password(hash, b"s3cret pass"));
    assert!(!ftps_server::users::verify_password(hash, b"wrong"));
}

/// Started as root with `run_as`, the server binds and then runs as that
/// user (privilege drop). Only meaningful as root.
#[test]
fn root_drops_privileges_after_binding() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !is_root {
        eprintln!("SKIP: not running as root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ftps.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = [\"127.0.0.1:0\"]\nimplicit_listen = [\"127.0.0.1:0\"]\nrun_as = \"nobody\"\n",
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = ftps()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--root")
        .arg(root.path())
        .arg("--state-dir")
        .arg(state.path())
        .args(["--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // The banner is printed after the switch.
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("ftps server"), "{first}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uids: Vec<&str> = uid_line.split_whitespace().skip(1).collect();
    assert!(uids.iter().all(|u| *u != "0"), "{uid_line}");
}

/// `ftps serve` logs to standard error, without ANSI colours when that is
/// not a terminal, and says once per process that a client sent an IP
/// address as TLS server name (rustls warns on every such ClientHello).
#[test]
fn serve_logs_plain_text_to_a_pipe_and_the_ip_sni_warning_once() {
    if !ftps_testing::require_tool("openssl") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = ftps()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--implicit-listen",
            "127.0.0.1:0",
        ])
        .arg("--root")
        .arg(root.path())
        .arg("--state-dir")
        .arg(state.path())
        .args(["--log", "info"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The banner is read to its end in the background: the server must not
    // meet a closed pipe while the test runs.
    let stdout = child.stdout.take().unwrap();
    let (found, banner) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.trim().strip_prefix("implicit FTPS:") {
                let addr = rest.trim().trim_start_matches("ftps://");
                let _ = found.send(addr.trim_end_matches('/').to_string());
            }
        }
    });
    let implicit = banner
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("no implicit listener in the banner");
    for _ in 0..3 {
        let out = Command::new("timeout")
            .args([
                "10",
                "openssl",
                "s_client",
                "-connect",
                &implicit,
                "-servername",
                "127.0.0.1",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("CONNECTED"),
            "openssl s_client did not connect: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a piped log:\n{log}"
    );
    assert!(
        log.contains("INFO"),
        "no log lines on standard error:\n{log}"
    );
    assert_eq!(
        log.matches("IP address presented as hostname").count(),
        1,
        "the IP-as-server-name warning, once:\n{log}"
    );
}

/// Nobody reads the banner: `ftps serve` started with a standard output
/// that is closed before the banner ends keeps serving (a write to a closed
/// pipe must not end the process).
#[test]
fn serve_keeps_serving_when_its_standard_output_is_closed() {
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = ftps()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--implicit-listen",
            "127.0.0.1:0",
        ])
        .arg("--root")
        .arg(root.path())
        .arg("--state-dir")
        .arg(state.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut explicit = None;
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(rest) = line.trim().strip_prefix("explicit FTPS (AUTH TLS):") {
            let addr = rest.trim().trim_start_matches("ftp://");
            explicit = Some(addr.trim_end_matches('/').to_string());
            break;
        }
    }
    // Close the pipe while the server is still writing its banner.
    drop(lines);
    let explicit = explicit.expect("no explicit listener in the banner");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut control = std::net::TcpStream::connect(&explicit).unwrap();
    control
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut greeting = [0u8; 3];
    std::io::Read::read_exact(&mut control, &mut greeting).unwrap();
    assert_eq!(&greeting, b"220");
    assert!(child.try_wait().unwrap().is_none(), "the server ended");
    let _ = child.kill();
    let _ = child.wait();
}
