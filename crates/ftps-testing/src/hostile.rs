//! Helpers for the hostile-input and fault-injection tests of the server
//! (`crates/ftps-server/tests/hostile.rs`, `hostile_tls.rs`, `faults.rs`),
//! built on the raw client of [`crate::client`]:
//!
//! * [`assert_server_healthy`]: a second, well-behaved client does a full
//!   TLS login, PROT P and RETR of a fresh random file, byte for byte;
//!   [`HealthLoop`] does the same over and over while a table of hostile
//!   cases runs.
//! * [`Cases`]: table bookkeeping: every row counts as one case, failures
//!   are collected (with the dialogue) and reported together, the count per
//!   group is printed with `eprintln!`.
//! * Commands that never panic but return `Err` with what went wrong:
//!   [`try_cmd`], [`expect_code`], the table [`expect_codes`], and
//!   [`attempt`]: one command, with EPSV before it and the TLS data
//!   connection after a 150 for the data-opening verbs.
//! * File-descriptor, memory, temp-file and directory-snapshot probes; the
//!   process-wide [`shared`] / [`exclusive`] lock for tests that count file
//!   descriptors or memory of the whole test process (the server runs in it).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftps_proto::reply::Reply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::client::{self, Client, Control, Next, Setup, TlsData};
use crate::TestServer;

// ---------------------------------------------------------------------------
// Process-wide lock
// ---------------------------------------------------------------------------

// An async lock (each test has its own runtime; tokio's locks work across
// runtimes), held for a whole test.
static PROCESS: RwLock<()> = RwLock::const_new(());

/// Taken by ordinary tests: they may run in parallel with each other.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    PROCESS.read().await
}

/// Taken by tests that measure the whole process (file descriptors, memory)
/// or need most of its file descriptors: nothing else runs meanwhile.
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    PROCESS.write().await
}

// ---------------------------------------------------------------------------
// Health checks
// ---------------------------------------------------------------------------

static HEALTH_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A second, well-behaved client: explicit FTPS, AUTH TLS, USER/PASS, PBSZ 0,
/// PROT P, TYPE I, RETR of a fresh random file in `root` (the directory the
/// server serves), compared byte for byte. Panics with the dialogue.
pub async fn assert_healthy_at(addr: SocketAddr, cert_pem: &Path, root: &Path) {
    let n = HEALTH_SEQ.fetch_add(1, Ordering::Relaxed);
    let name = format!("health-{}-{n}.bin", std::process::id());
    let data = crate::write_random(&root.join(&name), 100_003 + n % 1000);
    let config = client::config_default(cert_pem);
    let mut c = Client::open(addr, &config, Setup::explicit().type_i()).await;
    let got = c.retr(&name).await;
    c.check(
        got == data,
        &format!(
            "health check: {name} downloaded with wrong content ({} of {} bytes)",
            got.len(),
            data.len()
        ),
    );
    c.expect("QUIT", 221).await;
    let _ = std::fs::remove_file(root.join(&name));
}

/// [`assert_healthy_at`] for a [`TestServer`] serving its own root.
pub async fn assert_server_healthy(server: &TestServer) {
    assert_healthy_at(server.explicit, &server.cert_pem, server.root.path()).await;
}

/// Health checks run over and over in the background while hostile cases
/// run (each one in its own task, so that a panic is recorded, not lost).
pub struct HealthLoop {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<(usize, Vec<String>)>,
}

impl HealthLoop {
    /// Start checking `addr` (serving `root`) every `pause`.
    pub fn start(addr: SocketAddr, cert_pem: &Path, root: &Path) -> HealthLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let cert_pem = cert_pem.to_path_buf();
        let root = root.to_path_buf();
        let handle = tokio::spawn(async move {
            let mut ok = 0;
            let mut failures = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let (cert, dir) = (cert_pem.clone(), root.clone());
                let run = tokio::spawn(async move {
                    tokio::time::timeout(
                        Duration::from_secs(60),
                        assert_healthy_at(addr, &cert, &dir),
                    )
                    .await
                    .map_err(|_| "health check did not finish within 60 s".to_string())
                });
                match run.await {
                    Ok(Ok(())) => ok += 1,
                    Ok(Err(e)) => failures.push(e),
                    Err(e) => failures.push(panic_text(e)),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (ok, failures)
        });
        HealthLoop { stop, handle }
    }

    /// For a [`TestServer`] serving its own root.
    pub fn for_server(server: &TestServer) -> HealthLoop {
        HealthLoop::start(server.explicit, &server.cert_pem, server.root.path())
    }

    /// Stop; `Err` unless every check passed (and at least one ran).
    pub async fn finish(self) -> Result<usize, String> {
        self.stop.store(true, Ordering::Relaxed);
        let (ok, failures) = self.handle.await.map_err(panic_text)?;
        if !failures.is_empty() {
            return Err(format!(
                "the server was not healthy while the hostile cases ran ({} of {} health checks failed):\n{}",
                failures.len(),
                failures.len() + ok,
                failures.join("\n----\n")
            ));
        }
        if ok == 0 {
            return Err("no health check completed".into());
        }
        Ok(ok)
    }
}

/// The message of a panicked task.
pub fn panic_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return format!("task failed: {e}");
    }
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "task panicked".into()
    }
}

/// Poll until a new explicit connection is admitted (220), e.g. after a
/// flood released its slots.
pub async fn wait_admitted(addr: SocketAddr, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        match TcpStream::connect(addr).await {
            Ok(mut tcp) => match read_line_raw(&mut tcp, Duration::from_secs(5)).await {
                Ok(line) if line.starts_with(b"220") => return Ok(()),
                Ok(line) => last = String::from_utf8_lossy(&line).into_owned(),
                Err(e) => last = e,
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "no connection admitted within {limit:?}; last answer: {last:?}"
    ))
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

/// One group of hostile cases: counts rows, collects failures.
pub struct Cases {
    group: String,
    count: usize,
    failures: Vec<String>,
}

impl Cases {
    /// A new group.
    pub fn new(group: &str) -> Cases {
        Cases {
            group: group.to_string(),
            count: 0,
            failures: Vec::new(),
        }
    }

    /// One case; `Err` is a failure described by its text.
    pub fn record(&mut self, label: &str, result: Result<(), String>) {
        self.count += 1;
        if let Err(e) = result {
            self.failures.push(format!("[{label}] {e}"));
        }
    }

    /// One case that passed (its assertions panic on failure).
    pub fn pass(&mut self) {
        self.count += 1;
    }

    /// Number of cases so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Number of failures so far.
    pub fn failed(&self) -> usize {
        self.failures.len()
    }

    /// Print the count; panic with every failure.
    pub fn finish(self) {
        eprintln!(
            "CASES {}: {} cases, {} failed",
            self.group,
            self.count,
            self.failures.len()
        );
        if !self.failures.is_empty() {
            panic!(
                "{}: {} of {} cases failed:\n\n{}",
                self.group,
                self.failures.len(),
                self.count,
                self.failures.join("\n\n")
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Commands that never panic
// ---------------------------------------------------------------------------

/// Bytes for a message: escaped, long ones shortened.
pub fn show(bytes: &[u8]) -> String {
    let text = bytes.escape_ascii().to_string();
    if text.len() > 120 {
        format!("{}...({} bytes)", &text[..100], bytes.len())
    } else {
        text
    }
}

/// The last `n` lines of the dialogue (long lines shortened).
pub fn tail(c: &Client, n: usize) -> String {
    let all = c.dialogue();
    let lines: Vec<&str> = all.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| {
            if l.len() > 300 {
                let mut cut = 200;
                while !l.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}...({} chars)", &l[..cut], l.len())
            } else {
                (*l).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The next reply, or why there is none.
pub async fn next_reply(c: &mut Client) -> Result<Reply, String> {
    next_reply_within(c, client::REPLY_TIMEOUT).await
}

/// The next reply within `limit`, or why there is none.
pub async fn next_reply_within(c: &mut Client, limit: Duration) -> Result<Reply, String> {
    match c.next_within(limit).await {
        Next::Reply(r) => Ok(r),
        other => Err(format!("expected a reply, got {other:?}")),
    }
}

/// Send `line` + CRLF and read one reply, never panicking.
pub async fn try_cmd(c: &mut Client, line: &[u8]) -> Result<Reply, String> {
    let mut bytes = line.to_vec();
    bytes.extend_from_slice(b"\r\n");
    write_quiet(c, &bytes, &show(line)).await?;
    next_reply(c).await
}

/// Write bytes on the control connection, noting `what` in the dialogue
/// (not the bytes themselves: they may be megabytes).
pub async fn write_quiet(c: &mut Client, bytes: &[u8], what: &str) -> Result<(), String> {
    c.note(format!("C> {what}"));
    let write = async {
        c.stream.write_all(bytes).await?;
        c.stream.flush().await
    };
    match tokio::time::timeout(client::REPLY_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("send {what}: {e}")),
        Err(_) => Err(format!("send {what}: timed out")),
    }
}

/// Send a command and compare the reply code.
pub async fn expect_code(c: &mut Client, line: &[u8], code: u16) -> Result<Reply, String> {
    let r = try_cmd(c, line).await?;
    if r.code != code {
        return Err(format!(
            "{}: expected {code}, got {} {:?}",
            show(line),
            r.code,
            r.text()
        ));
    }
    Ok(r)
}

/// A table of commands and the reply code each must get, sent in order;
/// the first wrong code (or missing reply) ends it with an error that names
/// the row and the command.
pub async fn expect_codes(c: &mut Client, rows: &[(&[u8], u16)]) -> Result<(), String> {
    for (i, (line, code)) in rows.iter().enumerate() {
        expect_code(c, line, *code)
            .await
            .map_err(|e| format!("row {} of {}: {e}", i + 1, rows.len()))?;
    }
    Ok(())
}

/// EPSV and the address to connect to.
pub async fn epsv_addr(c: &mut Client) -> Result<SocketAddr, String> {
    let r = try_cmd(c, b"EPSV").await?;
    if r.code != 229 {
        return Err(format!("EPSV: {} {:?}", r.code, r.text()));
    }
    let port = ftps_proto::address::parse_epsv_reply_text(&r.text())
        .map_err(|e| format!("bad 229: {e:?}"))?;
    Ok(SocketAddr::new(c.peer.ip(), port))
}

/// Connect (bounded).
pub async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
        Ok(Err(e)) => Err(format!("connect {addr}: {e}")),
        Err(_) => Err(format!("connect {addr}: timed out")),
    }
}

/// Connect from a given local address (e.g. 127.0.0.2: another client host).
pub async fn connect_from(src: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(src, 0))?;
    socket.connect(addr).await
}

/// The data-opening verbs (they need a data port first).
pub fn is_data_verb(line: &[u8]) -> bool {
    let verb = line
        .split(|b| *b == b' ')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(
        verb.as_slice(),
        b"RETR" | b"STOR" | b"APPE" | b"STOU" | b"LIST" | b"NLST" | b"MLSD"
    )
}

/// What a command led to.
#[derive(Debug, Default)]
pub struct Attempt {
    /// Reply codes in order (e.g. `[150, 226]` or `[550]`).
    pub codes: Vec<u16>,
    /// Reply texts in order.
    pub texts: Vec<String>,
    /// Bytes received on the data connection.
    pub data: Vec<u8>,
}

/// One command. Data-opening verbs get EPSV first and, after a 150, a TLS
/// data connection that resumes the control session: reads for downloads
/// and listings, writes `upload` (or nothing) for uploads. Never panics.
pub async fn attempt(
    c: &mut Client,
    line: &[u8],
    upload: Option<&[u8]>,
) -> Result<Attempt, String> {
    let addr = if is_data_verb(line) {
        Some(epsv_addr(c).await?)
    } else {
        None
    };
    let first = try_cmd(c, line).await?;
    let mut out = Attempt {
        codes: vec![first.code],
        texts: vec![first.text()],
        data: Vec::new(),
    };
    if first.code == 150 || first.code == 125 {
        let addr = addr.ok_or("a 150 without a data port")?;
        let tcp = connect(addr).await?;
        match client::data_tls(tcp, &c.config()).await {
            Ok(mut tls) => {
                let writes = is_upload(line);
                if writes {
                    if let Err(e) =
                        client::write_all_and_close(&mut tls, upload.unwrap_or_default()).await
                    {
                        c.note(format!("data write: {e}"));
                    }
                    let _ = client::read_all(&mut tls).await;
                } else {
                    match client::read_all(&mut tls).await {
                        Ok(d) => out.data = d,
                        Err(e) => c.note(format!("data read: {e}")),
                    }
                }
            }
            Err(e) => c.note(format!("data TLS handshake: {e}")),
        }
        let fin = next_reply(c).await?;
        out.codes.push(fin.code);
        out.texts.push(fin.text());
    }
    Ok(out)
}

/// STOR, APPE, STOU.
pub fn is_upload(line: &[u8]) -> bool {
    let verb = line
        .split(|b| *b == b' ')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(verb.as_slice(), b"STOR" | b"APPE" | b"STOU")
}

/// [`attempt`], then compare the codes.
pub async fn attempt_expect(
    c: &mut Client,
    line: &[u8],
    upload: Option<&[u8]>,
    expected: &[u16],
) -> Result<Attempt, String> {
    let a = attempt(c, line, upload).await?;
    if a.codes != expected {
        return Err(format!(
            "{}: expected {expected:?}, got {:?} {:?}",
            show(line),
            a.codes,
            a.texts
        ));
    }
    Ok(a)
}

/// Read raw bytes up to and including the first LF, or to EOF.
pub async fn read_line_raw(tcp: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut byte = [0u8; 256];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut byte)).await {
            Err(_) => return Err(format!("timeout after {:?}", show(&out))),
            Ok(Ok(0)) => return Ok(out),
            Ok(Ok(n)) => {
                out.extend_from_slice(&byte[..n]);
                if out.contains(&b'\n') {
                    return Ok(out);
                }
            }
            Ok(Err(e)) => {
                if out.is_empty() {
                    return Err(format!("read: {e}"));
                }
                return Ok(out);
            }
        }
    }
}

/// Reset (RST) a TCP connection instead of closing it (SO_LINGER 0).
pub fn reset(tcp: TcpStream) {
    let _ = tcp.set_zero_linger();
    drop(tcp);
}

/// Reset the TCP connection under a TLS data stream.
pub fn reset_tls(tls: TlsData) {
    let (tcp, _) = tls.into_inner();
    reset(tcp);
}

/// Make the control connection's socket reset when the client is dropped.
pub fn arm_reset(c: &Client) {
    match &c.stream {
        Control::Plain(tcp) => {
            let _ = tcp.set_zero_linger();
        }
        Control::Tls(tls) => {
            let _ = tls.get_ref().0.set_zero_linger();
        }
        Control::Detached => {}
    }
}

/// The first flight of a real TLS client (a complete ClientHello record).
pub fn client_hello(cert_pem: &Path) -> Vec<u8> {
    let config = client::config_no_resumption(cert_pem);
    let name = rustls_pki_types::ServerName::try_from(client::SERVER_NAME).unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

/// A plaintext fatal TLS alert record (handshake_failure).
pub const FATAL_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

// ---------------------------------------------------------------------------
// Process probes
// ---------------------------------------------------------------------------

/// Open file descriptors of this process (the server runs in it).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// (soft, hard) RLIMIT_NOFILE from /proc/self/limits.
pub fn nofile_limit() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Max open files") {
            let nums: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            if nums.len() >= 2 {
                return (nums[0], nums[1]);
            }
        }
    }
    (1024, 1024)
}

/// Try to raise this process's RLIMIT_NOFILE to `want` with `prlimit(1)`
/// (works as root; no crate for setrlimit is available to the tests).
/// Returns the soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> u64 {
    let (soft, hard) = nofile_limit();
    if soft >= want {
        return soft;
    }
    let pid = std::process::id().to_string();
    for (s, h) in [(want, want.max(hard)), (want.min(hard), hard)] {
        let _ = std::process::Command::new("prlimit")
            .arg(format!("--pid={pid}"))
            .arg(format!("--nofile={s}:{h}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if nofile_limit().0 >= want {
            break;
        }
    }
    nofile_limit().0
}

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Poll `f` every 50 ms until it holds or `limit` passes.
pub async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// Upload temp files (`.ftps-upload.*`) anywhere below `root` (symbolic
/// links are not followed).
pub fn upload_temp_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry
                .file_name()
                .as_encoded_bytes()
                .starts_with(b".ftps-upload.")
            {
                out.push(path.clone());
            }
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(path);
            }
        }
    }
    out
}

/// Wait (bounded) until no upload temp file is left below `root`; returns
/// the ones still there.
pub async fn wait_no_temp_files(root: &Path, limit: Duration) -> Vec<PathBuf> {
    wait_until(limit, || upload_temp_files(root).is_empty()).await;
    upload_temp_files(root)
}

/// A description of everything below `dir` (not following symbolic links):
/// relative path → kind, size and content hash, or link target.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let desc = if md.file_type().is_symlink() {
                format!("link -> {:?}", std::fs::read_link(&path).ok())
            } else if md.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else {
                format!("file {} bytes, hash {:x}", md.len(), file_hash(&path))
            };
            out.insert(rel, desc);
        }
    }
    out
}

/// A hash of a file's content (0 when unreadable).
pub fn file_hash(path: &Path) -> u64 {
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Entries of `dir` whose names contain `needle` (no recursion).
pub fn names_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .as_encoded_bytes()
                        .windows(needle.len())
                        .any(|w| w == needle)
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A path from raw bytes (non-UTF-8 names).
pub fn bytes_path(dir: &Path, name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    dir.join(std::ffi::OsStr::from_bytes(name))
}
