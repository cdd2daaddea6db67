//! The running instance, [`ExternalServer`]: its ports and addresses, its
//! account, files put under its root, its logs; its processes stopped on
//! drop. And `try_start`, one attempt at starting an instance: its files,
//! its processes, and the wait for its greeting.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::error::StartError;
use super::instance::prepare;
use super::process::{collect_logs, kill_processes_inside, stop_children, wait_ready, Spawned};
use super::{proftpd, pure_ftpd, system_user, vsftpd, ClientPki, Kind, Profile, TEST_USER};

/// A running server; its processes are killed and its directory removed on
/// drop.
pub struct ExternalServer {
    /// Which server this is.
    pub kind: Kind,
    /// Explicit FTPS (AUTH TLS) control port on 127.0.0.1.
    pub port: u16,
    /// Implicit FTPS control port on 127.0.0.1 (TLS from the first byte).
    pub implicit_port: Option<u16>,
    /// An explicit FTPS port on which the server accepts CCC (clear
    /// command channel after login): ProFTPD's is a separate virtual host
    /// with `TLSRequired auth+data`, Pure-FTPd's is `port`, vsftpd has none.
    pub ccc_port: Option<u16>,
    /// An explicit FTPS port that requires a TLS client certificate signed
    /// by [`ClientPki::ca`] (ProFTPD only: a vhost with `TLSVerifyClient
    /// on`); the login is still USER/PASS.
    pub client_cert_port: Option<u16>,
    /// The client CA of `client_cert_port` and a certificate it signed.
    pub client_pki: Option<ClientPki>,
    /// Passive data ports the server may announce (all instances of it).
    pub pasv_ports: RangeInclusive<u16>,
    /// The directory the test user sees as `/` (chrooted), writable, owned
    /// by the test user; empty at start.
    pub root: PathBuf,
    /// The login name ([`TEST_USER`]).
    pub user: String,
    /// The test user's password (from the install script's password file).
    pub password: String,
    /// The server's self-signed certificate (SANs localhost, 127.0.0.1),
    /// PEM: trust it with `--cacert` or a root store.
    pub cert_pem: PathBuf,
    /// From spawning the server to its first 220 greeting (last attempt).
    pub startup: Duration,
    children: Vec<Child>,
    // Last: removed after the processes are gone.
    dir: tempfile::TempDir,
}

impl ExternalServer {
    /// The explicit-FTPS control address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The implicit-FTPS control address, when there is one.
    pub fn implicit_addr(&self) -> Option<SocketAddr> {
        self.implicit_port
            .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    /// `ftp://127.0.0.1:PORT/PATH` (explicit FTPS; `path` without leading
    /// slash is relative to the root).
    pub fn url(&self, path: &str) -> String {
        format!(
            "ftp://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// `ftps://127.0.0.1:IMPLICIT_PORT/PATH`, when there is an implicit port.
    pub fn implicit_url(&self, path: &str) -> Option<String> {
        self.implicit_port
            .map(|port| format!("ftps://127.0.0.1:{}/{}", port, path.trim_start_matches('/')))
    }

    /// The directory with this instance's configuration and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// All log files of this instance (server logs, TLS logs, transfer
    /// logs, stdout/stderr), for failure messages. Pure-FTPd logs to syslog,
    /// so little of it shows here.
    pub fn logs(&self) -> String {
        collect_logs(self.dir.path())
    }

    /// Writes `contents` to `rel` under the root (parent directories made
    /// as needed), owned by the test user as if it had uploaded it.
    pub fn put_file(&self, rel: &str, contents: &[u8]) -> PathBuf {
        let path = self.root.join(rel.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            self.make_dirs(parent);
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        self.give_to_user(&path);
        path
    }

    /// The small known tree of the LIST/MLSD fixtures of the client's tests
    /// (`crates/ftps-client/tests/servers/list-*.txt`): `a.txt` (5 bytes,
    /// "hello"), `dir/` (empty), `link -> a.txt` (symlink), all dated
    /// 2024-03-05 14:07:09 UTC, and `new file.txt` (11 bytes, dated now:
    /// listings show a time instead of a year for it, and its name has a
    /// space).
    pub fn create_sample_tree(&self) {
        self.put_file("a.txt", b"hello");
        self.make_dirs(&self.root.join("dir"));
        let link = self.root.join("link");
        std::os::unix::fs::symlink("a.txt", &link)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        self.give_to_user(&link);
        for name in ["a.txt", "dir", "link"] {
            let status = Command::new("touch")
                .args(["-h", "-d", "2024-03-05 14:07:09 UTC"])
                .arg(self.root.join(name))
                .status()
                .unwrap_or_else(|e| panic!("running touch: {e}"));
            assert!(status.success(), "touch -d failed for {name}");
        }
        self.put_file("new file.txt", b"new content");
    }

    fn make_dirs(&self, dir: &Path) {
        if dir.exists() {
            return;
        }
        if let Some(parent) = dir.parent() {
            self.make_dirs(parent);
        }
        fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        self.give_to_user(dir);
    }

    fn give_to_user(&self, path: &Path) {
        if let Some((uid, gid)) = system_user(TEST_USER) {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
    }

    /// Whether every process of the server is still running.
    pub fn is_running(&mut self) -> bool {
        self.children
            .iter_mut()
            .all(|child| matches!(child.try_wait(), Ok(None)))
    }
}

impl Drop for ExternalServer {
    fn drop(&mut self) {
        stop_children(&mut self.children);
        // vsftpd's session processes leave the process group (setsid) and
        // would serve an open connection on; they are chrooted into this
        // instance's directory, which finds them.
        kill_processes_inside(self.dir.path());
    }
}

impl std::fmt::Debug for ExternalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalServer")
            .field("kind", &self.kind)
            .field("port", &self.port)
            .field("implicit_port", &self.implicit_port)
            .field("ccc_port", &self.ccc_port)
            .field("client_cert_port", &self.client_cert_port)
            .field("pasv_ports", &self.pasv_ports)
            .field("root", &self.root)
            .field("user", &self.user)
            .field("cert_pem", &self.cert_pem)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// One attempt at starting `kind` on fresh ports.
pub(super) fn try_start(kind: Kind, profile: Profile) -> Result<ExternalServer, StartError> {
    let inst = prepare(kind)?;
    let started = Instant::now();
    let spawned = match kind {
        Kind::Vsftpd => vsftpd::spawn(&inst, profile)?,
        Kind::Proftpd => proftpd::spawn(&inst, profile)?,
        Kind::PureFtpd => pure_ftpd::spawn(&inst, profile)?,
    };
    let Spawned {
        children,
        implicit_port,
        ccc_port,
        client_cert_port,
        client_pki,
    } = spawned;
    let mut server = ExternalServer {
        kind,
        port: inst.port,
        implicit_port,
        ccc_port,
        client_cert_port,
        client_pki,
        pasv_ports: inst.pasv.clone(),
        root: inst.root.clone(),
        user: TEST_USER.to_string(),
        password: inst.password.clone(),
        cert_pem: inst.cert.clone(),
        startup: Duration::ZERO,
        children,
        dir: inst.dir,
    };
    let mut ports = vec![server.port];
    // vsftpd's implicit instance is a process of its own: wait for it too
    // (ProFTPD binds all its listeners before it serves any).
    if kind == Kind::Vsftpd {
        ports.extend(server.implicit_port);
    }
    for port in ports {
        let implicit = Some(port) == server.implicit_port;
        wait_ready(&mut server, port, implicit, started)?;
    }
    server.startup = started.elapsed();
    Ok(server)
}
