//! Fault injection: nothing is lost, nothing leaks.
//!
//! * clients killed in the middle of STOR/APPE/REST+STOR (the existing file
//!   keeps its old content, no `.ftps-upload.*` temp file remains), of RETR,
//!   and of TLS handshakes (control and data);
//! * 10,000 aborted sessions and a few hundred aborted transfers: the
//!   process's open file descriptors (the server runs in this process) go
//!   back to their baseline;
//! * the real `ftps serve` binary killed with SIGKILL mid-upload and
//!   restarted on the same root: old content intact, the leftover temp file
//!   invisible and harmless;
//! * a full disk (a 2 MB tmpfs, when `mount` is allowed): 552, old content
//!   intact, no temp file, smaller uploads work afterwards.
#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftps_testing::client::{self, within, Client, Setup, TlsData};
use ftps_testing::hostile::*;
use ftps_testing::{
    local_only, password_hash, random_bytes, write_random, Backend, Store, TestServer, USER,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Open a data connection for `command` (after EPSV) and do the TLS handshake.
async fn open_transfer(c: &mut Client, command: &str) -> Result<TlsData, String> {
    let addr = epsv_addr(c).await?;
    expect_code(c, command.as_bytes(), 150).await?;
    let tcp = connect(addr).await?;
    client::data_tls(tcp, &c.config())
        .await
        .map_err(|e| format!("data handshake: {e}"))
}

/// Wait until file `name` of `store` has `content` and no upload left
/// anything behind (a temp file, a multipart upload in progress).
async fn settled(store: &Store, name: &str, content: &[u8]) -> Result<(), String> {
    let ok = wait_until(Duration::from_secs(10), || {
        store.read(name).is_some_and(|d| d == content) && store.leftovers().is_empty()
    })
    .await;
    if ok {
        return Ok(());
    }
    let now = store.read(name);
    Err(format!(
        "after 10 s: {name} is {:?} bytes (old content {} bytes, {}), leftovers {:?}",
        now.as_ref().map(Vec::len),
        content.len(),
        if now.as_deref() == Some(content) {
            "unchanged"
        } else {
            "CHANGED"
        },
        store.leftovers()
    ))
}

// ===========================================================================
// Clients killed mid-transfer
// ===========================================================================

#[derive(Clone, Copy, Debug)]
enum Kill {
    /// RST on data and control after 1 MB.
    ResetBothAfter1Mb,
    /// FIN (no close_notify) on data and control after 1 MB.
    CloseBothAfter1Mb,
    /// RST on both right after the data handshake, before any byte.
    ResetBothAfterHandshake,
    /// RST on the control connection after 150, before any data connection.
    ResetControlAfter150,
    /// RST on both in the middle of the data connection's TLS handshake.
    ResetBothMidDataHandshake,
    /// Control RST first, data RST 200 ms later.
    ControlThenData,
    /// Data RST first, control RST 200 ms later.
    DataThenControl,
}

async fn kill_upload(c: Client, command: &str, how: Kill, hello: &[u8]) -> Result<(), String> {
    let mut c = c;
    match how {
        Kill::ResetControlAfter150 => {
            epsv_addr(&mut c).await?;
            expect_code(&mut c, command.as_bytes(), 150).await?;
            arm_reset(&c);
            drop(c);
        }
        Kill::ResetBothMidDataHandshake => {
            let addr = epsv_addr(&mut c).await?;
            expect_code(&mut c, command.as_bytes(), 150).await?;
            let mut tcp = connect(addr).await?;
            tcp.write_all(&hello[..hello.len() / 2])
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            arm_reset(&c);
            drop(c);
            reset(tcp);
        }
        _ => {
            let mut tls = open_transfer(&mut c, command).await?;
            if !matches!(how, Kill::ResetBothAfterHandshake) {
                tls.write_all(&random_bytes(1 << 20))
                    .await
                    .map_err(|e| e.to_string())?;
                tls.flush().await.map_err(|e| e.to_string())?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            match how {
                Kill::CloseBothAfter1Mb => {
                    let (tcp, _) = tls.into_inner();
                    drop(tcp);
                    drop(c);
                }
                Kill::ControlThenData => {
                    arm_reset(&c);
                    drop(c);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    reset_tls(tls);
                }
                Kill::DataThenControl => {
                    reset_tls(tls);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    arm_reset(&c);
                    drop(c);
                }
                _ => {
                    arm_reset(&c);
                    reset_tls(tls);
                    drop(c);
                }
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn client_killed_mid_upload_keeps_the_existing_file() {
    let _lock = shared().await;
    within(300, async {
        let server = TestServer::start();
        let hello = client_hello(&server.cert_pem);
        let config = client::config_default(&server.cert_pem);
        let mut cases = Cases::new("faults: client killed mid-upload");
        let kills = [
            Kill::ResetBothAfter1Mb,
            Kill::CloseBothAfter1Mb,
            Kill::ResetBothAfterHandshake,
            Kill::ResetControlAfter150,
            Kill::ResetBothMidDataHandshake,
            Kill::ControlThenData,
            Kill::DataThenControl,
        ];
        for (mode, setup) in [
            ("STOR", None),
            ("APPE", None),
            (
                "REST 1000 + STOR (resume inside the file)",
                Some("REST 1000"),
            ),
            (
                "REST <size> + STOR (resume at the end, in place)",
                Some("REST 200000"),
            ),
        ] {
            for how in kills {
                let old = server.store.write_random("victim.bin", 200_000);
                let result = async {
                    let mut c =
                        Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
                    if let Some(rest) = setup {
                        expect_code(&mut c, rest.as_bytes(), 350).await?;
                    }
                    let verb = if mode.starts_with("APPE") {
                        "APPE"
                    } else {
                        "STOR"
                    };
                    kill_upload(c, &format!("{verb} victim.bin"), how, &hello).await?;
                    settled(&server.store, "victim.bin", &old).await
                }
                .await;
                cases.record(&format!("{mode}, {how:?}"), result);
            }
            assert_server_healthy(&server).await;
        }
        // A new file killed mid-upload: no temp file; a partial with data may stay.
        for how in [
            Kill::ResetBothAfter1Mb,
            Kill::ResetBothAfterHandshake,
            Kill::ResetBothMidDataHandshake,
        ] {
            let name = format!("new-{how:?}.bin");
            let result = async {
                let c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
                kill_upload(c, &format!("STOR {name}"), how, &hello).await?;
                let left = wait_no_leftovers(&server.store, Duration::from_secs(10)).await;
                if !left.is_empty() {
                    return Err(format!("temp files left: {left:?}"));
                }
                let exists = server.store.exists(&name);
                // Only the local disk keeps a new file's partial content.
                let had_data = matches!(how, Kill::ResetBothAfter1Mb)
                    && server.store.backend() == Backend::Local;
                if !had_data && exists {
                    return Err("a file without any data was left behind".into());
                }
                Ok(())
            }
            .await;
            cases.record(&format!("new file, {how:?}"), result);
        }
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

#[tokio::test]
async fn client_killed_mid_download_and_mid_handshake() {
    let _lock = shared().await;
    within(300, async {
        let server = TestServer::start();
        server.store.write_random("big.bin", 16 << 20);
        let hello = client_hello(&server.cert_pem);
        let config = client::config_default(&server.cert_pem);
        let mut cases = Cases::new("faults: client killed mid-download / mid-handshake");
        for how in [
            "RST both after 1 MB",
            "FIN both after 1 MB",
            "control RST, data later",
            "data RST, control later",
        ] {
            let result = async {
                let mut c =
                    Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
                let mut tls = open_transfer(&mut c, "RETR big.bin").await?;
                let mut buf = vec![0u8; 1 << 20];
                tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
                match how {
                    "RST both after 1 MB" => {
                        arm_reset(&c);
                        drop(c);
                        reset_tls(tls);
                    }
                    "FIN both after 1 MB" => {
                        drop(c);
                        drop(tls);
                    }
                    "control RST, data later" => {
                        arm_reset(&c);
                        drop(c);
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        reset_tls(tls);
                    }
                    _ => {
                        reset_tls(tls);
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        arm_reset(&c);
                        drop(c);
                    }
                }
                Ok(())
            }
            .await;
            cases.record(&format!("RETR: {how}"), result);
            assert_server_healthy(&server).await;
        }
        // Mid-handshake on the control connection.
        for (label, implicit, bytes) in [
            (
                "control: half a ClientHello after AUTH TLS, RST",
                false,
                hello[..hello.len() / 2].to_vec(),
            ),
            (
                "control: full ClientHello after AUTH TLS, RST before finishing",
                false,
                hello.clone(),
            ),
            ("control: AUTH TLS, RST before any byte", false, Vec::new()),
            (
                "implicit: half a ClientHello, RST",
                true,
                hello[..hello.len() / 2].to_vec(),
            ),
            (
                "implicit: full ClientHello, RST before finishing",
                true,
                hello.clone(),
            ),
        ] {
            let result = async {
                let mut tcp = if implicit {
                    connect(server.implicit).await?
                } else {
                    let mut c = Client::connect(server.explicit).await;
                    expect_code(&mut c, b"AUTH TLS", 234).await?;
                    match std::mem::replace(&mut c.stream, client::Control::Detached) {
                        client::Control::Plain(tcp) => tcp,
                        _ => return Err("control not plain".into()),
                    }
                };
                if !bytes.is_empty() {
                    tcp.write_all(&bytes).await.map_err(|e| e.to_string())?;
                    let mut b = [0u8; 4096];
                    let _ =
                        tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut b)).await;
                }
                reset(tcp);
                Ok(())
            }
            .await;
            cases.record(label, result);
            assert_server_healthy(&server).await;
        }
        // Mid-handshake on the data connection (client gone entirely).
        let old = server.store.write_random("existing.bin", 30_000);
        for command in [
            "RETR big.bin",
            "STOR existing.bin",
            "STOR never-created.bin",
            "LIST",
        ] {
            let result = async {
                let mut c =
                    Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
                let addr = epsv_addr(&mut c).await?;
                expect_code(&mut c, command.as_bytes(), 150).await?;
                let mut tcp = connect(addr).await?;
                tcp.write_all(&hello).await.map_err(|e| e.to_string())?;
                let mut b = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut b)).await;
                arm_reset(&c);
                drop(c);
                reset(tcp);
                settled(&server.store, "existing.bin", &old).await?;
                if server.store.exists("never-created.bin") {
                    return Err("an upload killed before any data left a file".into());
                }
                Ok(())
            }
            .await;
            cases.record(&format!("data handshake killed: {command}"), result);
            assert_server_healthy(&server).await;
        }
        cases.finish();
    })
    .await;
}

// ===========================================================================
// No file descriptor leaks
// ===========================================================================

async fn aborted_session(
    i: usize,
    explicit: SocketAddr,
    implicit: SocketAddr,
    hello: Arc<Vec<u8>>,
) -> Result<(), String> {
    let greet = Duration::from_secs(20);
    match i % 8 {
        0 => drop(connect(explicit).await?),
        1 => {
            // (Each client sends before reading: with a connect burst the
            // kernel may fall back to SYN cookies, and only client data
            // brings such a connection to life; see hostile.rs's burst case.)
            let mut tcp = connect(explicit).await?;
            let _ = tcp.write_all(b"NOOP\r\n").await;
            read_line_raw(&mut tcp, greet).await?;
        }
        2 => {
            let mut tcp = connect(explicit).await?;
            let _ = tcp.write_all(b"USER alice\r\n").await;
        }
        3 => {
            let mut tcp = connect(explicit).await?;
            tcp.write_all(b"AUTH TLS\r\n")
                .await
                .map_err(|e| e.to_string())?;
            let mut got = Vec::new();
            while !contains(&got, b"234 ") {
                let more = read_line_raw(&mut tcp, greet).await?;
                if more.is_empty() {
                    return Err(format!("closed before 234: {}", show(&got)));
                }
                got.extend(more);
            }
        }
        4 => {
            let mut tcp = connect(explicit).await?;
            tcp.write_all(b"AUTH TLS\r\n")
                .await
                .map_err(|e| e.to_string())?;
            let mut got = Vec::new();
            while !contains(&got, b"234 ") {
                let more = read_line_raw(&mut tcp, greet).await?;
                if more.is_empty() {
                    return Err(format!("closed before 234: {}", show(&got)));
                }
                got.extend(more);
            }
            let _ = tcp.write_all(&hello[..30]).await;
            reset(tcp);
        }
        5 => {
            let mut tcp = connect(explicit).await?;
            let _ = tcp.write_all(b"NOO").await;
            reset(tcp);
        }
        6 => drop(connect(implicit).await?),
        _ => {
            let mut tcp = connect(implicit).await?;
            let _ = tcp.write_all(&hello[..hello.len() / 2]).await;
            reset(tcp);
        }
    }
    Ok(())
}

/// Poll until the fd count is at most `limit`; returns the last count.
async fn settle_fds(limit: usize, within_secs: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(within_secs);
    loop {
        let n = fd_count();
        if n <= limit || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const FD_MARGIN: usize = 16;

#[tokio::test]
async fn no_fd_leak_after_10000_aborted_sessions() {
    let _lock = exclusive().await;
    within(600, async {
        raise_nofile(65_536);
        let server = TestServer::start_with(|cfg| {
            cfg.server.max_sessions = 4096;
            cfg.server.max_sessions_per_ip = 4096;
        });
        let hello = Arc::new(client_hello(&server.cert_pem));
        let (explicit, implicit) = (server.explicit, server.implicit);
        let mut cases = Cases::new("faults: fd leaks (aborted sessions)");
        // Warm up (runtime threads, lazily opened files), then the baseline.
        for i in 0..64 {
            let _ = aborted_session(i, explicit, implicit, Arc::clone(&hello)).await;
        }
        assert_server_healthy(&server).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let baseline = settle_fds(0, 3).await;
        let started = Instant::now();
        let total = 10_000;
        let parallel = Arc::new(tokio::sync::Semaphore::new(250));
        let mut set = tokio::task::JoinSet::new();
        let mut errors = Vec::new();
        let mut peak = baseline;
        for i in 0..total {
            let permit = Arc::clone(&parallel).acquire_owned().await.unwrap();
            let hello = Arc::clone(&hello);
            set.spawn(async move {
                let r = aborted_session(i, explicit, implicit, hello).await;
                drop(permit);
                r
            });
            while let Some(done) = set.try_join_next() {
                if let Err(e) = done.unwrap_or_else(|e| Err(panic_text(e))) {
                    errors.push(e);
                }
            }
            if i % 500 == 0 {
                peak = peak.max(fd_count());
            }
        }
        while let Some(done) = set.join_next().await {
            if let Err(e) = done.unwrap_or_else(|e| Err(panic_text(e))) {
                errors.push(e);
            }
        }
        let after = settle_fds(baseline + FD_MARGIN, 60).await;
        eprintln!(
            "10000 aborted sessions in {:?}: fds baseline {baseline}, peak {peak}, settled {after}; {} client-side errors",
            started.elapsed(),
            errors.len()
        );
        cases.record(
            "10000 aborted sessions: client side ran",
            if errors.len() <= total / 100 {
                Ok(())
            } else {
                Err(format!("{} errors, e.g. {:?}", errors.len(), &errors[..errors.len().min(5)]))
            },
        );
        cases.record(
            "10000 aborted sessions: fds back to baseline",
            if after <= baseline + FD_MARGIN {
                Ok(())
            } else {
                Err(format!("fd count {after} vs baseline {baseline} (+{FD_MARGIN} allowed) after 60 s"))
            },
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

async fn aborted_transfer(
    i: usize,
    server_addr: SocketAddr,
    cert_pem: PathBuf,
    hello: Arc<Vec<u8>>,
) -> Result<(), String> {
    // One TLS configuration (session store) per control connection: sessions
    // running in parallel must not offer each other's tickets.
    let config = client::config_default(&cert_pem);
    let mut c = Client::secure(server_addr, &config).await;
    expect_code(&mut c, b"TYPE I", 200).await?;
    match i % 8 {
        0 => {
            let mut tls = open_transfer(&mut c, "RETR big.bin").await?;
            let mut b = vec![0u8; 64 << 10];
            tls.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            arm_reset(&c);
            reset_tls(tls);
        }
        1 => {
            let mut tls = open_transfer(&mut c, "STOR existing.bin").await?;
            tls.write_all(&random_bytes(256 << 10))
                .await
                .map_err(|e| e.to_string())?;
            arm_reset(&c);
            reset_tls(tls);
        }
        2 => {
            let mut tls = open_transfer(&mut c, &format!("STOR new/n{i}.bin")).await?;
            tls.write_all(&random_bytes(256 << 10))
                .await
                .map_err(|e| e.to_string())?;
            drop(tls);
        }
        3 => {
            epsv_addr(&mut c).await?;
            expect_code(&mut c, b"RETR big.bin", 150).await?;
        }
        4 => {
            epsv_addr(&mut c).await?;
        }
        5 => {
            let mut tls = open_transfer(&mut c, "LIST").await?;
            let _ = client::read_all(&mut tls).await;
        }
        6 => {
            let addr = epsv_addr(&mut c).await?;
            expect_code(&mut c, b"RETR big.bin", 150).await?;
            let mut tcp = connect(addr).await?;
            let _ = tcp.write_all(&hello[..hello.len() / 2]).await;
            arm_reset(&c);
            reset(tcp);
        }
        _ => {
            let tls = open_transfer(&mut c, "STOR existing.bin").await?;
            drop(tls);
        }
    }
    drop(c);
    Ok(())
}

#[tokio::test]
async fn no_fd_leak_after_aborted_transfers() {
    let _lock = exclusive().await;
    within(600, async {
        let server = TestServer::start_with(|cfg| {
            cfg.server.max_sessions = 512;
            cfg.server.max_sessions_per_ip = 512;
        });
        server.store.write_random("big.bin", 4 << 20);
        let old = server.store.write_random("existing.bin", 100_000);
        server.store.create_dir("new");
        let hello = Arc::new(client_hello(&server.cert_pem));
        let mut cases = Cases::new("faults: fd leaks (aborted transfers)");
        for i in 0..8 {
            let _ = aborted_transfer(i, server.explicit, server.cert_pem.clone(), Arc::clone(&hello)).await;
        }
        assert_server_healthy(&server).await;
        settled(&server.store, "existing.bin", &old).await.unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        let baseline = settle_fds(0, 3).await;
        let started = Instant::now();
        let total = 300;
        let parallel = Arc::new(tokio::sync::Semaphore::new(20));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..total {
            let permit = Arc::clone(&parallel).acquire_owned().await.unwrap();
            let (cert, hello, addr) = (server.cert_pem.clone(), Arc::clone(&hello), server.explicit);
            set.spawn(async move {
                let r = aborted_transfer(i, addr, cert, hello).await;
                drop(permit);
                r
            });
        }
        let mut errors = Vec::new();
        while let Some(done) = set.join_next().await {
            if let Err(e) = done.unwrap_or_else(|e| Err(panic_text(e))) {
                errors.push(e);
            }
        }
        let after = settle_fds(baseline + FD_MARGIN, 60).await;
        eprintln!(
            "{total} aborted transfers in {:?}: fds baseline {baseline}, settled {after}; {} client-side errors",
            started.elapsed(),
            errors.len()
        );
        cases.record(
            "aborted transfers: client side ran",
            if errors.is_empty() { Ok(()) } else { Err(format!("{} errors, e.g. {:?}", errors.len(), &errors[..errors.len().min(5)])) },
        );
        cases.record(
            "aborted transfers: fds back to baseline",
            if after <= baseline + FD_MARGIN { Ok(()) } else { Err(format!("fd count {after} vs baseline {baseline} (+{FD_MARGIN} allowed) after 60 s")) },
        );
        cases.record("aborted transfers: existing file intact, no temp files", settled(&server.store, "existing.bin", &old).await);
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

// ===========================================================================
// The real binary killed with SIGKILL mid-upload
// ===========================================================================

/// The `ftps` binary next to this test's profile directory
/// (`target/<profile>/deps/faults-* → target/<profile>/ftps`), built with
/// `cargo build -p ftps` into the same target directory when missing.
fn ftps_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no profile directory")?
        .to_path_buf();
    let bin = profile_dir.join("ftps");
    if bin.exists() {
        return Ok(bin);
    }
    let target_dir = profile_dir.parent().ok_or("no target directory")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "ftps", "--bin", "ftps"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    eprintln!("building the ftps binary: {cmd:?}");
    let mut child = cmd.spawn().map_err(|e| format!("cargo build: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => break,
            Some(status) => return Err(format!("cargo build -p ftps failed: {status}")),
            None if Instant::now() > deadline => {
                let _ = child.kill();
                return Err("cargo build -p ftps took over 15 minutes".into());
            }
            None => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("{} still missing after the build", bin.display()))
    }
}

/// `ftps serve` as a child process.
struct Serve {
    child: Child,
    explicit: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    fn start(bin: &Path, config: &Path) -> Result<Serve, String> {
        let mut child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(config)
            .args(["--log", "warn,ftps_server=info"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let out_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.trim().strip_prefix("explicit FTPS (AUTH TLS): ftp://") {
                    if let Ok(addr) = rest.trim_end_matches('/').parse::<SocketAddr>() {
                        let _ = tx.send(addr);
                    }
                }
                out_log.lock().unwrap().push(line);
            }
        });
        let err_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                err_log.lock().unwrap().push(format!("stderr: {line}"));
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(explicit) => Ok(Serve {
                child,
                explicit,
                log,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "no banner within 60 s:\n{}",
                    log.lock().unwrap().join("\n")
                ))
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (`kill -9 PID`), and reap.
    fn sigkill(&mut self) {
        let status = Command::new("kill")
            .arg("-9")
            .arg(self.pid().to_string())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn server_sigkilled_mid_upload_and_restarted() {
    if !local_only("its own ftps serve on a local root") {
        return;
    }
    let _lock = shared().await;
    within(900, async {
        let mut cases = Cases::new("faults: server SIGKILL mid-upload");
        let bin = match ftps_binary() {
            Ok(b) => b,
            Err(e) => panic!("the ftps binary is needed for this test: {e}"),
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let state = dir.path().join("state");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&state).unwrap();
        let config_path = dir.path().join("ftps.toml");
        std::fs::write(
            &config_path,
            format!(
                "[server]\nlisten = [\"127.0.0.1:0\"]\nimplicit_listen = []\nfailed_login_delay_ms = 10\nshutdown_grace_secs = 1\nstate_dir = \"{}\"\n\n[[users]]\nname = \"{USER}\"\npassword_hash = \"{}\"\nroot = \"{}\"\n",
                state.display(),
                password_hash(),
                root.display()
            ),
        )
        .unwrap();
        let old = write_random(&root.join("victim.bin"), 300_000);
        let mut serve = Serve::start(&bin, &config_path).unwrap();
        let cert = state.join(ftps_server::certs::CERT_FILE);
        let config = client::config_default(&cert);

        // Two uploads in flight: over an existing file, and of a new file.
        let mut a = Client::open(serve.explicit, &config, Setup::explicit().type_i()).await;
        // Its own configuration: a TLS session store shared between two control
        // connections would offer one session's ticket on the other's data
        // connection (refused by design, RFC 4217 §10.2).
        let config_b = client::config_default(&cert);
        let mut b = Client::open(serve.explicit, &config_b, Setup::explicit().type_i()).await;
        let mut ta = open_transfer(&mut a, "STOR victim.bin").await.unwrap();
        let mut tb = open_transfer(&mut b, "STOR brand-new.bin").await.unwrap();
        let chunk = random_bytes(1 << 20);
        for _ in 0..3 {
            ta.write_all(&chunk).await.unwrap();
            tb.write_all(&chunk).await.unwrap();
        }
        ta.flush().await.unwrap();
        tb.flush().await.unwrap();
        let writing = wait_until(Duration::from_secs(15), || {
            let temps = upload_temp_files(&root);
            temps.len() >= 2
                && temps
                    .iter()
                    .all(|t| std::fs::metadata(t).map(|m| m.len() > 0).unwrap_or(false))
        })
        .await;
        cases.record(
            "both uploads are being written to temp files",
            if writing { Ok(()) } else { Err(format!("temp files: {:?}\n{}", upload_temp_files(&root), serve.log_text())) },
        );
        serve.sigkill();
        drop((ta, tb, a, b));
        let temps = upload_temp_files(&root);
        eprintln!("after SIGKILL: temp files left {temps:?}");
        cases.record(
            "after SIGKILL: the existing file has its old content",
            if std::fs::read(root.join("victim.bin")).unwrap() == old { Ok(()) } else { Err("victim.bin changed".into()) },
        );
        cases.record(
            "after SIGKILL: no partial new file under the target name",
            if root.join("brand-new.bin").exists() { Err("brand-new.bin exists".into()) } else { Ok(()) },
        );

        // Restart on the same root (and state: same certificate).
        let serve2 = Serve::start(&bin, &config_path).unwrap();
        let mut c = Client::open(serve2.explicit, &config, Setup::explicit().type_i()).await;
        for listing in ["LIST", "LIST -a", "NLST", "MLSD", "NLST -a"] {
            let result = attempt_expect(&mut c, listing.as_bytes(), None, &[150, 226]).await.and_then(|a| {
                if contains(&a.data, b".ftps-upload.") {
                    Err(format!("temp file visible: {}", String::from_utf8_lossy(&a.data)))
                } else if !contains(&a.data, b"victim.bin") {
                    Err(format!("listing lacks victim.bin: {}", String::from_utf8_lossy(&a.data)))
                } else {
                    Ok(())
                }
            });
            cases.record(&format!("restarted: {listing} hides temp files"), result);
        }
        let result = try_cmd(&mut c, b"STAT /").await.and_then(|r| {
            if r.lines.iter().any(|l| contains(l, b".ftps-upload.")) {
                Err("STAT / shows a temp file".into())
            } else if r.code == 213 {
                Ok(())
            } else {
                Err(format!("STAT /: {}", r.code))
            }
        });
        cases.record("restarted: STAT / hides temp files", result);
        for temp in &temps {
            let name = temp.file_name().unwrap().as_encoded_bytes().to_vec();
            for verb in ["RETR", "SIZE", "MDTM", "MLST", "DELE", "RNFR", "STOR"] {
                let l = cat(verb, &name);
                let result = attempt_expect(&mut c, &l, Some(b"x"), &[553]).await.map(|_| ());
                cases.record(&format!("restarted: {verb} <leftover temp name> is 553"), result);
            }
        }
        let new = random_bytes(400_000);
        let result = attempt_expect(&mut c, b"STOR victim.bin", Some(&new), &[150, 226]).await.and_then(|_| {
            if std::fs::read(root.join("victim.bin")).unwrap() == new { Ok(()) } else { Err("content after the new upload".into()) }
        });
        cases.record("restarted: a new upload to the same name works", result);
        let got = c.retr("victim.bin").await;
        cases.record("restarted: RETR gives the new content", if got == new { Ok(()) } else { Err("wrong content".into()) });
        let fresh = random_bytes(10_000);
        let result = attempt_expect(&mut c, b"STOR brand-new.bin", Some(&fresh), &[150, 226]).await.map(|_| ());
        cases.record("restarted: the interrupted new file can be uploaded", result);
        c.expect("QUIT", 221).await;
        assert_healthy_at(serve2.explicit, &cert, &root).await;
        if cases.failed() > 0 {
            eprintln!("server log (first run):\n{}\nserver log (restart):\n{}", serve.log_text(), serve2.log_text());
        }
        cases.finish();
    })
    .await;
}

/// After SIGKILL mid-upload, the restarted server reclaims the abandoned
/// upload files (`server.abandoned_upload_secs`, 2 s here): the existing
/// file keeps its old content and no temp file is left, and the new file's
/// interrupted upload becomes its resumable partial (a prefix of what was
/// sent), which REST + STOR can finish.
#[tokio::test]
async fn sigkill_mid_upload_then_restart_reclaims_temp_files_and_keeps_the_partial() {
    if !local_only("its own ftps serve on a local root; on S3: s3_store.rs reclaim test") {
        return;
    }
    let _lock = shared().await;
    within(300, async {
        let bin = ftps_binary().unwrap_or_else(|e| panic!("the ftps binary is needed: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let state = dir.path().join("state");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&state).unwrap();
        let config_path = dir.path().join("ftps.toml");
        std::fs::write(
            &config_path,
            format!(
                "[server]\nlisten = [\"127.0.0.1:0\"]\nimplicit_listen = []\nfailed_login_delay_ms = 10\nshutdown_grace_secs = 1\ntransfer_stall_timeout_secs = 1\nabandoned_upload_secs = 2\nstate_dir = \"{}\"\n\n[[users]]\nname = \"{USER}\"\npassword_hash = \"{}\"\nroot = \"{}\"\n",
                state.display(),
                password_hash(),
                root.display()
            ),
        )
        .unwrap();
        let old = write_random(&root.join("victim.bin"), 300_000);
        let mut serve = Serve::start(&bin, &config_path).unwrap();
        let cert = state.join(ftps_server::certs::CERT_FILE);
        let config_a = client::config_default(&cert);
        let config_b = client::config_default(&cert);
        let mut a = Client::open(serve.explicit, &config_a, Setup::explicit().type_i()).await;
        let mut b = Client::open(serve.explicit, &config_b, Setup::explicit().type_i()).await;
        let mut ta = open_transfer(&mut a, "STOR victim.bin").await.unwrap();
        let mut tb = open_transfer(&mut b, "STOR brand-new.bin").await.unwrap();
        let sent = random_bytes(3 << 20);
        ta.write_all(&sent).await.unwrap();
        tb.write_all(&sent).await.unwrap();
        ta.flush().await.unwrap();
        tb.flush().await.unwrap();
        let writing = wait_until(Duration::from_secs(15), || {
            let temps = upload_temp_files(&root);
            temps.len() >= 2
                && temps
                    .iter()
                    .all(|t| std::fs::metadata(t).map(|m| m.len() > 0).unwrap_or(false))
        })
        .await;
        assert!(writing, "uploads not in temp files: {:?}", upload_temp_files(&root));
        serve.sigkill();
        drop((ta, tb, a, b));
        assert_eq!(upload_temp_files(&root).len(), 2, "the kill left the temp files");
        // Older than abandoned_upload_secs by the time the restart looks.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let serve2 = Serve::start(&bin, &config_path).unwrap();
        let reclaimed = wait_until(Duration::from_secs(15), || upload_temp_files(&root).is_empty()).await;
        assert!(
            reclaimed,
            "temp files left after the restart: {:?}\n{}",
            upload_temp_files(&root),
            serve2.log_text()
        );
        assert_eq!(std::fs::read(root.join("victim.bin")).unwrap(), old, "victim.bin changed");
        let partial = std::fs::read(root.join("brand-new.bin")).expect("no resumable partial of the new file");
        assert!(
            !partial.is_empty() && sent.starts_with(&partial),
            "the partial ({} bytes) is not a prefix of what was sent",
            partial.len()
        );
        // REST + STOR finishes it.
        let mut c = Client::open(serve2.explicit, &config_a, Setup::explicit().type_i()).await;
        c.expect(&format!("REST {}", partial.len()), 350).await;
        c.upload(b"STOR brand-new.bin", &sent[partial.len()..]).await;
        assert_eq!(std::fs::read(root.join("brand-new.bin")).unwrap(), sent);
    })
    .await;
}

fn cat(verb: &str, arg: &[u8]) -> Vec<u8> {
    [verb.as_bytes(), b" ", arg].concat()
}

// ===========================================================================
// Disk full
// ===========================================================================

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn disk_full_upload_over_an_existing_file() {
    if !local_only("a full local disk; the store stopped is s3_store.rs") {
        return;
    }
    let _lock = shared().await;
    within(300, async {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("small-disk");
        std::fs::create_dir(&mnt).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&mnt)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !mounted {
            eprintln!("SKIP: cannot mount a 2 MB tmpfs (not root?): disk-full test skipped");
            return;
        }
        let _unmount = Mounted(mnt.clone());
        let mut cases = Cases::new("faults: disk full");
        let root = mnt.clone();
        let server = TestServer::start_with(move |cfg| {
            cfg.users[0].root = Some(root);
            cfg.users[0].s3 = None;
        });
        let old = write_random(&mnt.join("big.bin"), 256 << 10);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        for attempt_no in 0..2 {
            let result = async {
                let addr = epsv_addr(&mut c).await?;
                expect_code(&mut c, b"STOR big.bin", 150).await?;
                let tcp = connect(addr).await?;
                let mut tls = client::data_tls(tcp, &c.config()).await.map_err(|e| e.to_string())?;
                let writer = tokio::spawn(async move {
                    let data = random_bytes(4 << 20);
                    let _ = tls.write_all(&data).await;
                    let _ = tls.shutdown().await;
                    let _ = client::read_all(&mut tls).await;
                });
                let r = next_reply_within(&mut c, Duration::from_secs(30)).await?;
                let _ = tokio::time::timeout(Duration::from_secs(30), writer).await;
                if r.code != 552 && r.code != 451 {
                    return Err(format!("expected 552 (or 451), got {} {:?}", r.code, r.text()));
                }
                settled(&Store::Local(mnt.clone()), "big.bin", &old).await?;
                expect_code(&mut c, b"NOOP", 200).await?;
                Ok(())
            }
            .await;
            cases.record(&format!("4 MB over a 256 kB file on a 2 MB disk (#{attempt_no}): 552, old content, no temp file"), result.map_err(|e| format!("{e}\n{}", tail(&c, 6))));
        }
        // Space was given back: a smaller upload over the same file works.
        let smaller = random_bytes(512 << 10);
        let result = attempt_expect(&mut c, b"STOR big.bin", Some(&smaller), &[150, 226]).await.and_then(|_| {
            if std::fs::read(mnt.join("big.bin")).unwrap() == smaller { Ok(()) } else { Err("content".into()) }
        });
        cases.record("afterwards a 512 kB upload over it works", result);
        let got = c.retr("big.bin").await;
        cases.record("RETR gives the new content", if got == smaller { Ok(()) } else { Err("wrong content".into()) });
        c.expect("QUIT", 221).await;
        assert_healthy_at(server.explicit, &server.cert_pem, &mnt).await;
        drop(server);
        cases.finish();
    })
    .await;
}
