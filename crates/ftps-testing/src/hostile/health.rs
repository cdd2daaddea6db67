//! Health checks of the server under test: [`assert_server_healthy`] /
//! [`assert_healthy_at`] (a second, well-behaved client logs in over TLS,
//! PROT P, and RETRs a fresh random file byte for byte), [`HealthLoop`]
//! (the same over and over while hostile cases run), [`wait_admitted`]
//! (until the server takes a new control connection again) and
//! [`panic_text`] (the message of a panicked task).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::read_line_raw;
use crate::client::{self, Client, Setup};
use crate::{Store, TestServer};

static HEALTH_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A second, well-behaved client: explicit FTPS, AUTH TLS, USER/PASS, PBSZ 0,
/// PROT P, TYPE I, RETR of a fresh random file in `root` (the directory the
/// server serves), compared byte for byte. Panics with the dialogue.
pub async fn assert_healthy_at(addr: SocketAddr, cert_pem: &Path, root: &Path) {
    assert_healthy_in(addr, cert_pem, &Store::Local(root.to_path_buf())).await;
}

/// [`assert_healthy_at`] with the file in `store` (either back-end).
pub async fn assert_healthy_in(addr: SocketAddr, cert_pem: &Path, store: &Store) {
    let n = HEALTH_SEQ.fetch_add(1, Ordering::Relaxed);
    let name = format!("health-{}-{n}.bin", std::process::id());
    let data = store.write_random(&name, 100_003 + n % 1000);
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
    store.remove(&name);
}

/// [`assert_healthy_at`] for a [`TestServer`], in its store.
pub async fn assert_server_healthy(server: &TestServer) {
    assert_healthy_in(server.explicit, &server.cert_pem, &server.store).await;
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
        HealthLoop::start_in(addr, cert_pem, Store::Local(root.to_path_buf()))
    }

    /// Start checking `addr`, serving `store`.
    pub fn start_in(addr: SocketAddr, cert_pem: &Path, store: Store) -> HealthLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let cert_pem = cert_pem.to_path_buf();
        let root = Arc::new(store);
        let handle = tokio::spawn(async move {
            let mut ok = 0;
            let mut failures = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let (cert, store) = (cert_pem.clone(), Arc::clone(&root));
                let run = tokio::spawn(async move {
                    tokio::time::timeout(
                        Duration::from_secs(60),
                        assert_healthy_in(addr, &cert, &store),
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

    /// For a [`TestServer`], in its store.
    pub fn for_server(server: &TestServer) -> HealthLoop {
        HealthLoop::start_in(server.explicit, &server.cert_pem, server.store.clone())
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
