//! The processes of an instance: spawning a server in its own process
//! group with a watchdog ([`spawn_logged`], [`Spawned`]), waiting for its
//! greeting ([`wait_ready`]), collecting its logs ([`collect_logs`]), and
//! stopping it with every process it forked ([`stop_children`],
//! [`kill_processes_inside`]).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::error::{fatal, StartError};
use super::{ClientPki, ExternalServer};

/// How long a server may take to greet after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The processes of a started server and the ports it offers besides `port`.
#[derive(Default)]
pub(super) struct Spawned {
    pub(super) children: Vec<Child>,
    pub(super) implicit_port: Option<u16>,
    pub(super) ccc_port: Option<u16>,
    pub(super) client_cert_port: Option<u16>,
    pub(super) client_pki: Option<ClientPki>,
}

/// Starts `cmd` in a new process group (so that drop can kill the server
/// with every session process it forked), output to `DIR/NAME.out`, and a
/// watchdog in the same group that kills the group once this test process
/// is gone (a server kept in a static, or a test binary killed by a
/// timeout, leaves no server behind).
pub(super) fn spawn_logged(
    mut cmd: Command,
    dir: &Path,
    name: &str,
    children: &mut Vec<Child>,
) -> Result<(), StartError> {
    let out_path = dir.join(format!("{name}.out"));
    let out = fs::File::create(&out_path)
        .map_err(|e| fatal(&format!("creating {}", out_path.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| fatal("duplicating a file handle", e))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0);
    let child = cmd
        .spawn()
        .map_err(|e| fatal(&format!("spawning {cmd:?}"), e))?;
    let pgid = child.id();
    children.push(child);
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {} 2>/dev/null; do sleep 1; done; kill -KILL -{pgid} 2>/dev/null",
            std::process::id()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(i32::try_from(pgid).unwrap_or(0))
        .spawn();
    match watchdog {
        Ok(child) => children.push(child),
        Err(e) => eprintln!("{name}: no watchdog ({e}); the server stops only on drop"),
    }
    Ok(())
}

/// Kills each server's process group, then reaps what we spawned.
pub(super) fn stop_children(children: &mut Vec<Child>) {
    for child in children.iter() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    for child in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    children.clear();
}

/// Kills every process whose root or working directory is `dir` or below
/// it (read from /proc).
pub(super) fn kill_processes_inside(dir: &Path) {
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let inside = ["root", "cwd"].iter().any(|link| {
            fs::read_link(entry.path().join(link))
                .map(|target| target.starts_with(dir))
                .unwrap_or(false)
        });
        if inside {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Polls `port` until the server greets with 220 (explicit) or accepts a
/// TCP connection (implicit: its greeting comes only after a TLS
/// handshake). An exited server, or one that never greets, is an error
/// that asks for a retry when its logs blame the port.
pub(super) fn wait_ready(
    server: &mut ExternalServer,
    port: u16,
    implicit: bool,
    started: Instant,
) -> Result<(), StartError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = started + READY_TIMEOUT;
    loop {
        if !server.is_running() {
            // Give it a moment to finish writing its last log lines.
            thread::sleep(Duration::from_millis(50));
            let logs = server.logs();
            let why = format!("{} exited before it was ready; logs:\n{logs}", server.kind);
            return Err(if blames_port(&logs) {
                StartError::Retry(why)
            } else {
                StartError::Fatal(why)
            });
        }
        let last = match probe(addr, implicit) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            let logs = server.logs();
            let why = format!(
                "{} did not get ready on port {port} within {READY_TIMEOUT:?} ({last}); logs:\n{logs}",
                server.kind
            );
            return Err(if blames_port(&logs) {
                StartError::Retry(why)
            } else {
                StartError::Fatal(why)
            });
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn blames_port(logs: &str) -> bool {
    let logs = logs.to_ascii_lowercase();
    logs.contains("address already in use")
        || logs.contains("could not bind")
        || logs.contains("failed binding")
}

/// One readiness probe: connect, and (explicit) read the greeting up to its
/// last line `220 ...`, then QUIT.
fn probe(addr: SocketAddr, implicit: bool) -> Result<(), String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("connect: {e}"))?;
    if implicit {
        return Ok(());
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("connection closed before a 220 greeting".to_string()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading the greeting: {e}")),
        }
        if !line.starts_with("220") {
            return Err(format!("greeting is not 220: {}", line.trim_end()));
        }
        // "220-" continues a multi-line greeting (Pure-FTPd), "220 " ends it.
        if line.as_bytes().get(3) != Some(&b'-') {
            let _ = (&stream).write_all(b"QUIT\r\n");
            return Ok(());
        }
    }
}

/// The instance's `*.log` and `*.out` files under `dir`, each under a
/// `--- PATH ---` heading, trailing blanks trimmed.
pub(super) fn collect_logs(dir: &Path) -> String {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| {
                    matches!(
                        path.extension().and_then(|ext| ext.to_str()),
                        Some("log") | Some("out")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut text = String::new();
    for path in names {
        let contents = fs::read(&path).unwrap_or_default();
        // ProFTPD pads its log lines with runs of spaces; keep them short.
        let contents = String::from_utf8_lossy(&contents);
        text.push_str(&format!("--- {} ---\n", path.display()));
        for line in contents.lines() {
            text.push_str(line.trim_end());
            text.push('\n');
        }
    }
    text
}
