//! Real third-party FTPS servers (vsftpd, ProFTPD, Pure-FTPd) for interop
//! tests:
//!
//! ```ignore
//! use ftps_testing::servers::{self, Kind};
//!
//! let Some(server) = servers::start(Kind::Proftpd) else { return };
//! ```
//!
//! [`start`] starts one private instance: its own temporary directory
//! (configuration, certificate, logs), its own writable root directory, a
//! free control port on 127.0.0.1 and its own passive port range, and it
//! returns once the server has sent its `220` greeting. Dropping the
//! [`ExternalServer`] kills the server's processes and removes the
//! directory. It returns `None` (the test should return early) when the
//! servers are not installed or this is not root, and panics instead when
//! `CI=true` (or `CI=1`). Install them with `sh scripts/install-test-servers.sh`
//! (root).
//!
//! What each server offers (more in `README.md` next to this file: how each
//! is installed, configured and logged in, and the known problems of curl
//! 7.88 with them):
//!
//! | server    | explicit `port`        | `implicit_port` | `ccc_port`             | session reuse required |
//! |-----------|------------------------|-----------------|------------------------|------------------------|
//! | vsftpd    | TLS for login and data | second process  | none (no CCC command)  | yes (`require_ssl_reuse`) |
//! | ProFTPD   | `TLSRequired on`       | second vhost    | vhost, `TLSRequired auth+data` | yes (mod_tls default) |
//! | Pure-FTPd | `-Y 3`                 | none            | same as `port`         | no                     |
//!
//! ProFTPD also has a `client_cert_port`: an explicit FTPS vhost with
//! `TLSVerifyClient on` that trusts a CA made for the instance
//! ([`ClientPki`]: the CA and one client certificate it signed).
//!
//! All negotiate TLS 1.2 and TLS 1.3, and accept active mode (PORT/EPRT).
//! The servers run as root (they switch to the test user per session), so
//! the tests must run as root too. The configuration templates
//! (`vsftpd.conf.in`, `proftpd.conf.in`) are compiled in.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Where scripts/install-test-servers.sh puts things, unless
/// `FTPS_TEST_SERVERS_DIR` says otherwise (for both).
pub const DEFAULT_PREFIX: &str = "/opt/ftps-test-servers";
/// The system user the servers log the tests in as.
pub const TEST_USER: &str = "ftpstest";
/// The PAM service (in /etc/pam.d) of the vsftpd instances.
const VSFTPD_PAM_SERVICE: &str = "ftps-test-vsftpd";
const VSFTPD_BIN: &str = "/usr/sbin/vsftpd";
/// How long a server may take to greet after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports in each instance's passive range (split in two for vsftpd, whose
/// implicit instance is a separate process).
const PASV_RANGE_LEN: u16 = 50;
/// Starts tried (fresh ports each time) before giving up on a server that
/// could not bind its ports.
const START_ATTEMPTS: usize = 5;

const INSTALL_HINT: &str = "install them with `sh scripts/install-test-servers.sh` (as root)";

const VSFTPD_CONF: &str = include_str!("vsftpd.conf.in");
const PROFTPD_CONF: &str = include_str!("proftpd.conf.in");

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// vsftpd 3 (`/usr/sbin/vsftpd`).
    Vsftpd,
    /// ProFTPD 1.3 with mod_tls.
    Proftpd,
    /// Pure-FTPd 1.0.
    PureFtpd,
}

impl Kind {
    /// The three servers.
    pub const ALL: [Kind; 3] = [Kind::Vsftpd, Kind::Proftpd, Kind::PureFtpd];

    /// Short lowercase name: `vsftpd`, `proftpd`, `pure-ftpd`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vsftpd => "vsftpd",
            Kind::Proftpd => "proftpd",
            Kind::PureFtpd => "pure-ftpd",
        }
    }

    /// Whether `start` gives this server an implicit-FTPS port.
    pub fn has_implicit(self) -> bool {
        !matches!(self, Kind::PureFtpd)
    }

    /// Whether the server refuses a data connection whose TLS session does
    /// not resume the control connection's session.
    pub fn requires_session_reuse(self) -> bool {
        !matches!(self, Kind::PureFtpd)
    }

    /// The server's main binary.
    pub fn binary(self) -> PathBuf {
        match self {
            Kind::Vsftpd => PathBuf::from(VSFTPD_BIN),
            Kind::Proftpd => prefix().join("proftpd/usr/sbin/proftpd"),
            Kind::PureFtpd => prefix().join("pure-ftpd/usr/sbin/pure-ftpd"),
        }
    }

    /// Everything else the server needs from the install script.
    fn required_files(self) -> Vec<PathBuf> {
        let mut files = vec![self.binary(), password_file()];
        match self {
            Kind::Vsftpd => files.push(PathBuf::from("/etc/pam.d").join(VSFTPD_PAM_SERVICE)),
            Kind::Proftpd => files.push(proftpd_module_dir().join("mod_tls.so")),
            Kind::PureFtpd => files.push(pure_pw()),
        }
        files
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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

/// A client CA generated for one instance (with rcgen) and a client
/// certificate it signed, as PEM files in the instance directory.
#[derive(Debug, Clone)]
pub struct ClientPki {
    /// The CA certificate the server trusts for client certificates.
    pub ca: PathBuf,
    /// A client certificate (CN `ftps-test-client`) signed by the CA.
    pub cert: PathBuf,
    /// Its private key (PKCS#8).
    pub key: PathBuf,
}

impl ClientPki {
    /// Makes a CA called `ca_name` and a client certificate it signed under
    /// `dir`. (A CA with the same name as the server's trusted one would
    /// be taken for it by OpenSSL, and fail on the signature instead.)
    pub fn generate(dir: &Path, ca_name: &str) -> Result<ClientPki, String> {
        Self::make(dir, ca_name).map_err(|e| match e {
            StartError::Retry(why) | StartError::Fatal(why) => why,
        })
    }

    fn make(dir: &Path, ca_name: &str) -> Result<ClientPki, StartError> {
        let rcgen_error = |what: &str, e: rcgen::Error| fatal(what, e);
        let mut ca_params = rcgen::CertificateParams::default();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        let ca_key = rcgen::KeyPair::generate().map_err(|e| rcgen_error("CA key", e))?;
        let ca = ca_params
            .self_signed(&ca_key)
            .map_err(|e| rcgen_error("CA certificate", e))?;
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ftps-test-client");
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().map_err(|e| rcgen_error("client key", e))?;
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .map_err(|e| rcgen_error("client certificate", e))?;
        let pki = ClientPki {
            ca: dir.join("client-ca.pem"),
            cert: dir.join("client-cert.pem"),
            key: dir.join("client-key.pem"),
        };
        write_file(&pki.ca, &ca.pem(), 0o644)?;
        write_file(&pki.cert, &cert.pem(), 0o644)?;
        write_file(&pki.key, &key.serialize_pem(), 0o600)?;
        Ok(pki)
    }
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

/// Starts a private instance of `kind`; see the module docs. `None` (with a
/// note on stderr) when the server is not installed or this is not root;
/// with `CI=true` that panics instead.
pub fn start(kind: Kind) -> Option<ExternalServer> {
    if let Err(why) = check_installed(kind) {
        let msg = format!("{kind} is not available: {why}; {INSTALL_HINT}");
        if in_ci() {
            panic!("{msg} (CI=true: not skipping)");
        }
        eprintln!("skipping: {msg}");
        return None;
    }
    let mut last_error = String::new();
    for attempt in 1..=START_ATTEMPTS {
        match try_start(kind) {
            Ok(server) => return Some(server),
            Err(StartError::Retry(why)) => {
                eprintln!("{kind}: start attempt {attempt} failed, retrying on other ports: {why}");
                last_error = why;
            }
            Err(StartError::Fatal(why)) => panic!("{kind} failed to start: {why}"),
        }
    }
    panic!("{kind} failed to start {START_ATTEMPTS} times; last: {last_error}");
}

/// Where the unpacked servers and the password file are.
pub fn prefix() -> PathBuf {
    std::env::var_os("FTPS_TEST_SERVERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PREFIX))
}

fn password_file() -> PathBuf {
    prefix().join(format!("{TEST_USER}.password"))
}

fn proftpd_module_dir() -> PathBuf {
    prefix().join("proftpd/usr/lib/proftpd")
}

fn pure_pw() -> PathBuf {
    prefix().join("pure-ftpd/usr/bin/pure-pw")
}

/// Whether a missing server or client must fail the test instead of
/// skipping it: `CI=true` or `CI=1`.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

fn check_installed(kind: Kind) -> Result<(), String> {
    for file in kind.required_files() {
        if !file.exists() {
            return Err(format!("{} is missing", file.display()));
        }
    }
    for tool in ["openssl", "kill"] {
        if !on_path(tool) {
            return Err(format!("`{tool}` is not on PATH"));
        }
    }
    if system_user(TEST_USER).is_none() {
        return Err(format!("there is no system user {TEST_USER}"));
    }
    if !is_root() {
        return Err("the servers must be started as root".to_string());
    }
    Ok(())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

fn is_root() -> bool {
    // std has no geteuid; /proc/self/status has "Uid: real effective ...".
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// `(uid, gid)` of a user in /etc/passwd.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 4 && fields[0] == name {
            Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
        } else {
            None
        }
    })
}

enum StartError {
    /// Probably a port taken between picking and binding: try new ports.
    Retry(String),
    Fatal(String),
}

fn fatal(what: &str, err: impl std::fmt::Display) -> StartError {
    StartError::Fatal(format!("{what}: {err}"))
}

/// Everything of an instance before its processes run.
struct Instance {
    dir: tempfile::TempDir,
    root: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    uid: u32,
    gid: u32,
    password: String,
    port: u16,
    extra_ports: [u16; 3],
    pasv: RangeInclusive<u16>,
}

fn try_start(kind: Kind) -> Result<ExternalServer, StartError> {
    let inst = prepare(kind)?;
    let started = Instant::now();
    let spawned = match kind {
        Kind::Vsftpd => spawn_vsftpd(&inst)?,
        Kind::Proftpd => spawn_proftpd(&inst)?,
        Kind::PureFtpd => spawn_pure_ftpd(&inst)?,
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

/// Makes the instance directory: root, certificate, ports.
fn prepare(kind: Kind) -> Result<Instance, StartError> {
    let (uid, gid) = system_user(TEST_USER)
        .ok_or_else(|| StartError::Fatal(format!("no system user {TEST_USER}")))?;
    let password = fs::read_to_string(password_file())
        .map_err(|e| fatal(&format!("reading {}", password_file().display()), e))?
        .trim()
        .to_string();
    if password.is_empty() {
        return Err(StartError::Fatal(format!(
            "{} is empty",
            password_file().display()
        )));
    }
    let dir = tempfile::Builder::new()
        .prefix(&format!("ftps-ext-{}-", kind.name()))
        .tempdir()
        .map_err(|e| fatal("creating the instance directory", e))?;
    // The servers reach the root as the test user (and ProFTPD's listener
    // runs as nobody): let everyone traverse, not list.
    set_mode(dir.path(), 0o711)?;
    let root = dir.path().join("root");
    fs::create_dir(&root).map_err(|e| fatal("creating the root", e))?;
    std::os::unix::fs::chown(&root, Some(uid), Some(gid))
        .map_err(|e| fatal("chown of the root to the test user", e))?;
    set_mode(&root, 0o755)?;
    // vsftpd's secure_chroot_dir: empty, owned by root, not writable.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).map_err(|e| fatal("creating empty/", e))?;
    set_mode(&empty, 0o555)?;

    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fatal("running openssl req", e))?;
    if !out.status.success() {
        return Err(StartError::Fatal(format!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }

    let [port, extra_ports @ ..] = free_ports::<4>()?;
    let pasv = pasv_range();
    Ok(Instance {
        dir,
        root,
        cert,
        key,
        uid,
        gid,
        password,
        port,
        extra_ports,
        pasv,
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), StartError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| fatal(&format!("chmod {}", path.display()), e))
}

/// `N` different ports that were free a moment ago (bound to 127.0.0.1:0
/// all at once, so the kernel cannot hand out one of them twice, then
/// released). Another process can take one before the server binds it:
/// `start` retries.
fn free_ports<const N: usize>() -> Result<[u16; N], StartError> {
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0u16; N];
    for port in &mut ports {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| fatal("binding 127.0.0.1:0", e))?;
        *port = listener
            .local_addr()
            .map(|addr| addr.port())
            .map_err(|e| fatal("local_addr", e))?;
        listeners.push(listener);
    }
    Ok(ports)
}

/// A random block of PASV_RANGE_LEN ports in 20000..32000: below Linux's
/// ephemeral range (32768..60999), so outgoing connections do not take
/// them, and random so that concurrent instances rarely share one (a
/// server that cannot bind one passive port tries another anyway).
fn pasv_range() -> RangeInclusive<u16> {
    const LOW: u16 = 20000;
    const HIGH: u16 = 32000;
    let blocks = u64::from((HIGH - LOW) / PASV_RANGE_LEN);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    let block = u16::try_from(hasher.finish() % blocks).unwrap_or(0);
    let first = LOW + block * PASV_RANGE_LEN;
    first..=first + PASV_RANGE_LEN - 1
}

/// Fills in `{{NAME}}` placeholders; every placeholder must be given.
fn render(template: &str, vars: &[(&str, String)]) -> Result<String, StartError> {
    let mut text = template.to_string();
    for (name, value) in vars {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    match text.find("{{") {
        Some(at) => Err(StartError::Fatal(format!(
            "template placeholder left unfilled: {}",
            text[at..].lines().next().unwrap_or_default()
        ))),
        None => Ok(text),
    }
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), StartError> {
    fs::write(path, contents).map_err(|e| fatal(&format!("writing {}", path.display()), e))?;
    set_mode(path, mode)
}

/// A crypt(3) SHA-512 hash of `password`, from `openssl passwd -6`.
fn crypt_sha512(password: &str) -> Result<String, StartError> {
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fatal("running openssl passwd", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}").map_err(|e| fatal("writing to openssl passwd", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fatal("running openssl passwd", e))?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !hash.starts_with("$6$") {
        return Err(StartError::Fatal(format!(
            "openssl passwd -6 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(hash)
}

/// The processes of a started server and the ports it offers besides `port`.
#[derive(Default)]
struct Spawned {
    children: Vec<Child>,
    implicit_port: Option<u16>,
    ccc_port: Option<u16>,
    client_cert_port: Option<u16>,
    client_pki: Option<ClientPki>,
}

/// Starts `cmd` in a new process group (so that drop can kill the server
/// with every session process it forked), output to `DIR/NAME.out`, and a
/// watchdog in the same group that kills the group once this test process
/// is gone (a server kept in a static, or a test binary killed by a
/// timeout, leaves no server behind).
fn spawn_logged(
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
fn stop_children(children: &mut Vec<Child>) {
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
fn kill_processes_inside(dir: &Path) {
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

fn spawn_vsftpd(inst: &Instance) -> Result<Spawned, StartError> {
    let dir = inst.dir.path();
    let implicit_port = inst.extra_ports[0];
    // Two processes, two halves of the passive range.
    let (lo, hi) = (*inst.pasv.start(), *inst.pasv.end());
    let mid = lo + (hi - lo) / 2;
    let mut children = Vec::new();
    for (name, port, implicit, pasv_min, pasv_max) in [
        ("vsftpd", inst.port, "NO", lo, mid),
        ("vsftpd-implicit", implicit_port, "YES", mid + 1, hi),
    ] {
        let conf = render(
            VSFTPD_CONF,
            &[
                ("PORT", port.to_string()),
                ("IMPLICIT", implicit.to_string()),
                ("PAM_SERVICE", VSFTPD_PAM_SERVICE.to_string()),
                ("ROOT", path_str(&inst.root)?),
                ("DIR", path_str(dir)?),
                ("NAME", name.to_string()),
                ("PASV_MIN", pasv_min.to_string()),
                ("PASV_MAX", pasv_max.to_string()),
                ("CERT", path_str(&inst.cert)?),
                ("KEY", path_str(&inst.key)?),
            ],
        )?;
        let conf_path = dir.join(format!("{name}.conf"));
        // vsftpd refuses a config file not owned by root or writable by others.
        write_file(&conf_path, &conf, 0o600)?;
        let mut cmd = Command::new(VSFTPD_BIN);
        cmd.arg(&conf_path);
        if let Err(e) = spawn_logged(cmd, dir, name, &mut children) {
            stop_children(&mut children);
            return Err(e);
        }
    }
    Ok(Spawned {
        children,
        implicit_port: Some(implicit_port),
        ..Spawned::default()
    })
}

fn spawn_proftpd(inst: &Instance) -> Result<Spawned, StartError> {
    let dir = inst.dir.path();
    let [implicit_port, ccc_port, client_cert_port] = inst.extra_ports;
    let client_pki = ClientPki::make(dir, "ftps test client CA")?;
    let hash = crypt_sha512(&inst.password)?;
    // /etc/passwd format: name:hash:uid:gid:gecos:home:shell.
    write_file(
        &dir.join("ftpd.passwd"),
        &format!(
            "{TEST_USER}:{hash}:{}:{}::{}:/bin/sh\n",
            inst.uid,
            inst.gid,
            path_str(&inst.root)?
        ),
        0o600,
    )?;
    write_file(
        &dir.join("ftpd.group"),
        &format!("{TEST_USER}:x:{}:\n", inst.gid),
        0o644,
    )?;
    let conf = render(
        PROFTPD_CONF,
        &[
            ("PORT", inst.port.to_string()),
            ("IMPLICIT_PORT", implicit_port.to_string()),
            ("CCC_PORT", ccc_port.to_string()),
            ("CLIENT_CERT_PORT", client_cert_port.to_string()),
            ("CLIENT_CA", path_str(&client_pki.ca)?),
            ("PASV_MIN", inst.pasv.start().to_string()),
            ("PASV_MAX", inst.pasv.end().to_string()),
            ("DIR", path_str(dir)?),
            ("MODULE_PATH", path_str(&proftpd_module_dir())?),
            ("CERT", path_str(&inst.cert)?),
            ("KEY", path_str(&inst.key)?),
        ],
    )?;
    let conf_path = dir.join("proftpd.conf");
    write_file(&conf_path, &conf, 0o644)?;
    let mut cmd = Command::new(Kind::Proftpd.binary());
    cmd.arg("-n").arg("-c").arg(&conf_path);
    let mut children = Vec::new();
    spawn_logged(cmd, dir, "proftpd", &mut children)?;
    Ok(Spawned {
        children,
        implicit_port: Some(implicit_port),
        ccc_port: Some(ccc_port),
        client_cert_port: Some(client_cert_port),
        client_pki: Some(client_pki),
    })
}

fn spawn_pure_ftpd(inst: &Instance) -> Result<Spawned, StartError> {
    let dir = inst.dir.path();
    let hash = crypt_sha512(&inst.password)?;
    // pure-pw's own format: user:hash:uid:gid:gecos:home/./ and 12 more
    // (empty) fields for quotas, ratios, bandwidth, times and IP limits.
    // "/./" makes the home the user's chroot. Written by hand rather than
    // with `pure-pw useradd`, which hashes with a deliberately slow argon2id
    // (every login would cost about a second).
    let passwd = dir.join("pureftpd.passwd");
    write_file(
        &passwd,
        &format!(
            "{TEST_USER}:{hash}:{}:{}::{}/./::::::::::::\n",
            inst.uid,
            inst.gid,
            path_str(&inst.root)?
        ),
        0o600,
    )?;
    let pdb = dir.join("pureftpd.pdb");
    let out = Command::new(pure_pw())
        .arg("mkdb")
        .arg(&pdb)
        .arg("-f")
        .arg(&passwd)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fatal("running pure-pw mkdb", e))?;
    if !out.status.success() {
        return Err(StartError::Fatal(format!(
            "pure-pw mkdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let mut cmd = Command::new(Kind::PureFtpd.binary());
    cmd.arg("--bind")
        .arg(format!("127.0.0.1,{}", inst.port))
        .arg("--passiveportrange")
        .arg(format!("{}:{}", inst.pasv.start(), inst.pasv.end()))
        .arg("--forcepassiveip")
        .arg("127.0.0.1")
        .arg("--login")
        .arg(format!("puredb:{}", path_str(&pdb)?))
        // 3: TLS required on the control connection and on data connections.
        .arg("--tls")
        .arg("3")
        .arg("--certfile")
        .arg(format!(
            "{},{}",
            path_str(&inst.cert)?,
            path_str(&inst.key)?
        ))
        .arg("--noanonymous")
        .arg("--chrooteveryone")
        .arg("--dontresolve")
        // The test user is a system user (uid < 1000).
        .arg("--minuid")
        .arg("1")
        // Room for tests that open many connections (default 10 clients).
        .arg("--maxclientsnumber")
        .arg("50")
        .arg("--maxclientsperip")
        .arg("50")
        .arg("--pidfile")
        .arg(dir.join("pure-ftpd.pid"))
        .arg("--altlog")
        .arg(format!(
            "clf:{}",
            path_str(&dir.join("pure-ftpd-xfer.log"))?
        ));
    let mut children = Vec::new();
    spawn_logged(cmd, dir, "pure-ftpd", &mut children)?;
    Ok(Spawned {
        children,
        ccc_port: Some(inst.port),
        ..Spawned::default()
    })
}

fn path_str(path: &Path) -> Result<String, StartError> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| StartError::Fatal(format!("path is not UTF-8: {}", path.display())))
}

/// Polls `port` until the server greets with 220 (explicit) or accepts a
/// TCP connection (implicit: its greeting comes only after a TLS
/// handshake). An exited server, or one that never greets, is an error
/// that asks for a retry when its logs blame the port.
fn wait_ready(
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

fn collect_logs(dir: &Path) -> String {
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
