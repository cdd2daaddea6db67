//! `ftps serve` and SIGHUP, as an operator uses them: a per-directory rule
//! refuses DELE with 550 and the log names the rule; the file is changed and
//! `kill -HUP` makes the same command work; a broken file is refused with a
//! clear log line and the running configuration stays; the audit file moved
//! away by logrotate is opened again.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ftps_testing::{password_hash, require_tool, PASSWORD, USER};

struct Running {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn hup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the log has `n` lines containing `text`.
    fn wait_log(&self, text: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = self.log();
            if log.matches(text).count() >= n || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn config(dir: &Path, delete: bool, audit: &Path) -> String {
    let permissions = if delete {
        r#"["list", "upload", "delete"]"#
    } else {
        r#"["list", "upload"]"#
    };
    format!(
        r#"[server]
listen = ["127.0.0.1:0"]
implicit_listen = []
state_dir = "{state}"

[audit]
file = "{audit}"

[[users]]
name = "{USER}"
password_hash = "{hash}"
root = "{root}"
write = false

[[users.rules]]
path = "/in"
permissions = {permissions}
"#,
        state = dir.join("state").display(),
        audit = audit.display(),
        hash = password_hash(),
        root = dir.join("root").display(),
    )
}

fn serve(dir: &Path, file: &Path) -> Running {
    let log = dir.join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .arg("serve")
        .arg("--config")
        .arg(file)
        .args(["--log", "info"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut port = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.trim().strip_prefix("explicit FTPS (AUTH TLS): ftp://") {
            port = url
                .trim_end_matches('/')
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .ok();
            break;
        }
    }
    Running {
        child,
        log,
        port: port.expect("no explicit listener in the banner"),
    }
}

fn curl_quote(server: &Running, dir: &Path, command: &str) -> Output {
    Command::new("curl")
        .args(["-sS", "-v", "--ssl-reqd", "--max-time", "30", "--cacert"])
        .arg(dir.join("state/cert.pem"))
        .arg("--user")
        .arg(format!("{USER}:{PASSWORD}"))
        .args(["-Q", command])
        .arg(format!("ftp://127.0.0.1:{}/in/", server.port))
        .output()
        .unwrap()
}

#[test]
fn sighup_applies_a_changed_file_refuses_a_broken_one_and_reopens_the_audit_log() {
    if !require_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir_all(dir.join("root/in")).unwrap();
    for name in ["a", "b"] {
        std::fs::write(dir.join("root/in").join(name), name).unwrap();
    }
    let audit = dir.join("audit.log");
    let file = dir.join("ftps.toml");
    std::fs::write(&file, config(dir, false, &audit)).unwrap();
    let server = serve(dir, &file);

    let refused = curl_quote(&server, dir, "DELE /in/a");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("< 550 Permission denied."), "{said}");
    let log = server.wait_log("refused by an access rule", 1);
    assert!(
        log.contains(&format!(
            "rule=users[{USER:?}].rules[0] (/in: list, upload)"
        )),
        "{log}"
    );
    assert!(dir.join("root/in/a").exists());

    std::fs::write(&file, config(dir, true, &audit)).unwrap();
    server.hup();
    server.wait_log("configuration reloaded", 1);
    let allowed = curl_quote(&server, dir, "DELE /in/a");
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert!(!dir.join("root/in/a").exists());

    // logrotate moves the audit file away; the broken file's SIGHUP still
    // opens it again, and keeps the running configuration.
    std::fs::rename(&audit, dir.join("audit.log.1")).unwrap();
    std::fs::write(&file, "[server]\nmax_sessions = \"many\"\n").unwrap();
    server.hup();
    let log = server.wait_log("configuration reload refused", 1);
    assert!(
        log.contains("the running configuration stays") && log.contains("server.max_sessions"),
        "{log}"
    );
    let still = curl_quote(&server, dir, "DELE /in/b");
    assert!(
        still.status.success(),
        "{}",
        String::from_utf8_lossy(&still.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&audit)
        .unwrap_or_default()
        .contains("\"delete\"")
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let fresh = std::fs::read_to_string(&audit).unwrap();
    assert!(
        fresh.contains("\"event\":\"delete\"") && fresh.contains("/in/b"),
        "{fresh}"
    );
    let rotated = std::fs::read_to_string(dir.join("audit.log.1")).unwrap();
    assert!(rotated.contains("/in/a") && !rotated.contains("/in/b"));
}
