//! FTPS servers that are libraries, run by a small script of ours, for the
//! interop tests of the `ftps` client (like [`crate::servers`] for vsftpd,
//! ProFTPD and Pure-FTPd):
//!
//! ```ignore
//! use ftps_testing::script_servers::{self, ScriptKind};
//!
//! let Some(server) = script_servers::start(ScriptKind::Pyftpdlib) else { return };
//! // server.port, server.root, server.user, server.password, server.cert_pem,
//! // server.url("dir/"); killed on drop
//! ```
//!
//! | server | script | TLS | data connection |
//! |---|---|---|---|
//! | pyftpdlib (pip `pyftpdlib` + `pyopenssl`) | `pyftpdlib_server.py` | required before login (`tls_control_required`) | PROT P required (`tls_data_required`); no session reuse required; MLSD with `unix.mode=0o644` facts; MFMT; a missing directory is `501` to MLSD |
//! | ftp-srv (npm `ftp-srv`, Node.js) | `ftp_srv_server.js` | login refused until AUTH TLS (by the script) | always TLS after AUTH TLS (PROT C gets `536`); the `150` comes only after the data connection's TLS handshake; LIST only (no MLST) |
//!
//! [`start`] writes the script and a fresh self-signed certificate
//! (`localhost`, `127.0.0.1`, `::1`) into a temporary directory, starts the
//! runtime on it with an empty temporary root, and returns once the script
//! has printed the port the kernel gave it (`LISTENING <port>`): no fixed
//! ports, no sleeps. Dropping the [`ScriptServer`] kills the process by its
//! id; the scripts also exit by themselves once the test process is gone.
//! When the runtime or the library is missing, [`start`] returns `None`
//! (the test returns early) with a note, and panics under `CI=true`.
//! `scripts/install-test-peers.sh` installs both (pip, npm).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take from spawn to listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

const PYFTPDLIB_SCRIPT: &str = include_str!("pyftpdlib_server.py");
const FTP_SRV_SCRIPT: &str = include_str!("ftp_srv_server.js");

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// pyftpdlib (Python), TLS required on control and data.
    Pyftpdlib,
    /// ftp-srv (Node.js), TLS required by the login handler; waits for the
    /// data connection's TLS handshake before its 150.
    FtpSrv,
}

impl ScriptKind {
    /// Short name: `pyftpdlib`, `ftp-srv`.
    pub fn name(self) -> &'static str {
        match self {
            ScriptKind::Pyftpdlib => "pyftpdlib",
            ScriptKind::FtpSrv => "ftp-srv",
        }
    }

    /// The installed version, when it can be told (`pip`/`npm` metadata).
    pub fn version(self) -> Option<String> {
        let output = match self {
            ScriptKind::Pyftpdlib => Command::new("python3")
                .args(["-c", "import pyftpdlib; print(pyftpdlib.__ver__)"])
                .output(),
            ScriptKind::FtpSrv => Command::new("node")
                .env("NODE_PATH", node_path()?)
                .args(["-p", "require('ftp-srv/package.json').version"])
                .output(),
        };
        let output = output.ok().filter(|o| o.status.success())?;
        Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Why the server cannot run here, if it cannot.
    fn missing(self) -> Option<String> {
        let (runtime, check) = match self {
            ScriptKind::Pyftpdlib => ("python3", "import pyftpdlib, OpenSSL"),
            ScriptKind::FtpSrv => ("node", "require('ftp-srv')"),
        };
        let mut cmd = Command::new(runtime);
        match self {
            ScriptKind::Pyftpdlib => cmd.args(["-c", check]),
            ScriptKind::FtpSrv => {
                let Some(modules) = node_path() else {
                    return Some("npm is not installed (no global node_modules)".into());
                };
                cmd.env("NODE_PATH", modules).args(["-e", check])
            }
        };
        match cmd.stdout(Stdio::null()).stderr(Stdio::null()).status() {
            Ok(status) if status.success() => None,
            Ok(_) => Some(format!("`{runtime}` cannot load it ({check})")),
            Err(e) => Some(format!("`{runtime}` cannot be run: {e}")),
        }
    }
}

impl std::fmt::Display for ScriptKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// npm's global `node_modules` (where `npm install -g` puts ftp-srv).
fn node_path() -> Option<String> {
    let output = Command::new("npm").args(["root", "-g"]).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A running server; killed on drop.
pub struct ScriptServer {
    /// Which server this is.
    pub kind: ScriptKind,
    /// Its explicit FTPS (AUTH TLS) control port on 127.0.0.1.
    pub port: u16,
    /// The directory the test user sees as `/`, empty at start.
    pub root: PathBuf,
    /// The login name.
    pub user: String,
    /// The password.
    pub password: String,
    /// The server's self-signed certificate, PEM (trust it with `--cacert`).
    pub cert_pem: PathBuf,
    child: Child,
    // Last: removed after the process is gone.
    dir: tempfile::TempDir,
}

impl ScriptServer {
    /// `ftp://127.0.0.1:PORT/PATH` (`path` relative to the root).
    pub fn url(&self, path: &str) -> String {
        format!(
            "ftp://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// The server's standard error (its log), for failure messages.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl std::fmt::Debug for ScriptServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptServer")
            .field("kind", &self.kind)
            .field("port", &self.port)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// Starts `kind` (see the module docs); `None` with a note when it is not
/// installed, a panic instead under `CI=true`.
pub fn start(kind: ScriptKind) -> Option<ScriptServer> {
    if let Some(why) = kind.missing() {
        let msg = format!(
            "{kind} is not available: {why}; install it with `sh scripts/install-test-peers.sh`"
        );
        if crate::servers::in_ci() {
            panic!("{msg} (CI=true: not skipping)");
        }
        eprintln!("skipping: {msg}");
        return None;
    }
    Some(spawn(kind).unwrap_or_else(|e| panic!("{kind} failed to start: {e}")))
}

fn spawn(kind: ScriptKind) -> Result<ScriptServer, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().join("root");
    std::fs::create_dir(&root).map_err(|e| e.to_string())?;
    ftps_server::certs::load_or_generate(dir.path(), &[]).map_err(|e| e.to_string())?;
    let cert = dir.path().join(ftps_server::certs::CERT_FILE);
    let key = dir.path().join(ftps_server::certs::KEY_FILE);
    let (user, password) = ("ftpuser", "secret pass 14");
    let mut cmd = command(kind, dir.path())?;
    cmd.arg(&root).args([user, password]).arg(&cert).arg(&key);
    if kind == ScriptKind::FtpSrv {
        let pasv = crate::servers::pasv_range();
        cmd.args([pasv.start().to_string(), pasv.end().to_string()]);
    }
    let log = std::fs::File::create(dir.path().join("server.log")).map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    let port = match wait_listening(&mut child) {
        Ok(port) => port,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            let logs = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            return Err(format!("{e}; its log:\n{logs}"));
        }
    };
    Ok(ScriptServer {
        kind,
        port,
        root,
        user: user.into(),
        password: password.into(),
        cert_pem: cert,
        child,
        dir,
    })
}

/// The runtime with the script written into `dir`.
fn command(kind: ScriptKind, dir: &Path) -> Result<Command, String> {
    let (name, text, runtime) = match kind {
        ScriptKind::Pyftpdlib => ("pyftpdlib_server.py", PYFTPDLIB_SCRIPT, "python3"),
        ScriptKind::FtpSrv => ("ftp_srv_server.js", FTP_SRV_SCRIPT, "node"),
    };
    let script = dir.join(name);
    std::fs::write(&script, text).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(runtime);
    if kind == ScriptKind::FtpSrv {
        cmd.env("NODE_PATH", node_path().unwrap_or_default());
    }
    cmd.arg(script).current_dir(dir);
    Ok(cmd)
}

/// Reads the child's standard output until `LISTENING <port>`.
fn wait_listening(child: &mut Child) -> Result<u16, String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = line.strip_prefix("LISTENING ") {
                let _ = tx.send(port.trim().parse::<u16>().map_err(|e| e.to_string()));
                return;
            }
        }
        let _ = tx.send(Err("exited before listening".into()));
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(result) => result,
        Err(_) => Err(format!("not listening after {START_TIMEOUT:?}")),
    }
}
