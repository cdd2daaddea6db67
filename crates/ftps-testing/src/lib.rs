//! Test support shared by the tests of every crate of the workspace, reached
//! one way: a dev-dependency on `ftps-testing` and `use ftps_testing::...`.
//!
//! * This module: [`TestServer`], the real server started in-process on
//!   ephemeral loopback ports, with a temporary root and a freshly generated
//!   certificate, stopped when the handle is dropped (no fixed ports, no
//!   sleeps), serving its test account from a temporary directory or, with
//!   `FTPS_TEST_BACKEND=s3`, from a private SeaweedFS ([`store`],
//!   [`seaweedfs`]); the test account ([`USER`], [`PASSWORD`]); random file
//!   content; and [`require_tool`], the rule that under `CI=true` a missing
//!   external peer fails the test instead of skipping it.
//! * [`client`]: a raw FTPS client for protocol-level tests (commands sent
//!   byte for byte, every reply parsed and recorded), with one-call session
//!   set-ups ([`client::Setup`]) and tables of command and expected reply
//!   ([`client::Client::expect_replies`]).
//! * [`hostile`]: helpers of the hostile-input and fault-injection tests:
//!   health checks, case tables that collect failures, commands that never
//!   panic, process and file-system probes.
//! * [`servers`]: private instances of vsftpd, ProFTPD and Pure-FTPd for
//!   interop tests.
//! * [`script_servers`]: FTPS servers that are libraries — pyftpdlib
//!   (Python) and ftp-srv (Node.js) — run by a small script of ours, for
//!   the client's interop tests.
//! * [`services`]: private HAProxy and PostgreSQL instances (the load
//!   balancer and the user database of the cluster tests).
//! * [`tree`]: directory trees read into memory and compared, for the
//!   mirror and round-trip tests.
//! * [`cert_defects`]: server certificates with a defect (another name, expired,
//!   a CA certificate), for the tests of the client's messages.
#![warn(missing_docs)]
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod cert_defects;
pub mod client;
pub mod hostile;
pub mod ops;
pub mod script_servers;
pub mod seaweedfs;
pub mod servers;
pub mod services;
pub mod store;
pub mod tree;

pub use store::{local_only, Backend, Store};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ftps_server::config::Config;
use ftps_server::{certs, Listeners, Server};

/// The test account's name (a user with write access to the server's root).
pub const USER: &str = "alice";
/// The test account's password.
pub const PASSWORD: &str = "correct horse battery";

/// The argon2 hash of [`PASSWORD`], computed once per test binary.
pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| ftps_server::users::hash_password(PASSWORD).unwrap())
}

/// A running server.
pub struct TestServer {
    /// The first explicit FTPS listener.
    pub explicit: SocketAddr,
    /// The first implicit FTPS listener.
    pub implicit: SocketAddr,
    /// Every explicit FTPS listener, in the order of `server.listen`.
    pub explicit_all: Vec<SocketAddr>,
    /// Every implicit FTPS listener, in the order of `server.implicit_listen`.
    pub implicit_all: Vec<SocketAddr>,
    /// The test account's root directory (what the server serves on the
    /// local back-end).
    pub root: tempfile::TempDir,
    /// The test account's files, on the back-end `FTPS_TEST_BACKEND` chose:
    /// prepare and check them here to run on either.
    pub store: Store,
    /// The server's state directory (its generated certificate and key).
    pub state: tempfile::TempDir,
    /// The server's certificate, PEM: trust it with
    /// [`client::config_default`] or `--cacert`.
    pub cert_pem: PathBuf,
    /// Reloads the certificates or the configuration, as SIGHUP does.
    pub reloader: ftps_server::Reloader,
    /// The metrics endpoint, when `[metrics]` is enabled.
    pub metrics: Option<SocketAddr>,
    /// The server's metrics, read in-process.
    pub server_metrics: std::sync::Arc<ftps_server::ops::Metrics>,
    /// The configuration the server started with.
    pub config: Config,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// The default (secure) configuration with one user.
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// Start with a configuration adjusted by `adjust` (listeners are loopback:0).
    /// `adjust` may replace the listeners (keep port 0); [`TestServer::explicit`]
    /// and [`TestServer::implicit`] are then the first of each kind, or
    /// `0.0.0.0:0` when there is none.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(Backend::from_env(), root.path());
        TestServer::start_with_store(root, store, adjust)
    }

    /// Start serving the test account from `store` (for a test that owns its
    /// object store); `root` is the local root directory.
    pub fn start_with_store(
        root: tempfile::TempDir,
        store: Store,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        init_logging();
        let state = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.listen = vec!["127.0.0.1:0".parse().unwrap()];
        config.server.implicit_listen = vec!["127.0.0.1:0".parse().unwrap()];
        config.server.failed_login_delay_ms = 10;
        config.server.shutdown_grace_secs = 2;
        config.server.state_dir = Some(state.path().to_path_buf());
        config.users = vec![ftps_server::config::UserSection {
            name: USER.into(),
            password_hash: password_hash().into(),
            root: Some(root.path().to_path_buf()),
            s3: None,
            write: true,
            policy: Default::default(),
            ..Default::default()
        }];
        if let Store::S3 {
            endpoint, prefix, ..
        } = &store
        {
            config.s3 = ftps_server::config::S3Section {
                endpoint: Some(endpoint.clone()),
                path_style: true,
                bucket: Some(seaweedfs::BUCKET.to_owned()),
                access_key_id: Some(seaweedfs::ACCESS_KEY.to_owned()),
                secret_access_key: Some(seaweedfs::SECRET_KEY.to_owned()),
                timeout_secs: 20,
                ..Default::default()
            };
            config.users[0].root = None;
            config.users[0].s3 = Some(ftps_server::config::S3Location {
                bucket: None,
                prefix: prefix.clone(),
            });
        }
        adjust(&mut config);
        config.validate("test").unwrap();
        let started_config = config.clone();
        let cert = certs::load_or_generate(state.path(), &[]).unwrap();
        let cert_pem = state.path().join(certs::CERT_FILE);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listeners = Listeners::bind(&config).await.unwrap();
                let metrics = listeners.metrics_address();
                let server = Server::new(config, cert).unwrap();
                addr_tx
                    .send((
                        listeners.addresses(),
                        server.reloader(),
                        metrics,
                        server.metrics(),
                        tokio::runtime::Handle::current(),
                    ))
                    .unwrap();
                server
                    .run(listeners, async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let ((explicit, implicit), reloader, metrics, server_metrics, runtime) =
            addr_rx.recv().unwrap();
        let unbound = SocketAddr::from(([0, 0, 0, 0], 0));
        TestServer {
            explicit: explicit.first().copied().unwrap_or(unbound),
            implicit: implicit.first().copied().unwrap_or(unbound),
            explicit_all: explicit,
            implicit_all: implicit,
            root,
            store,
            state,
            cert_pem,
            reloader,
            metrics,
            server_metrics,
            config: started_config,
            runtime,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Reload the server with its starting configuration changed by
    /// `adjust`, as SIGHUP does with a changed file.
    pub fn reload_with(
        &self,
        adjust: impl FnOnce(&mut Config),
    ) -> Result<(), ftps_server::ServerError> {
        let mut config = self.config.clone();
        adjust(&mut config);
        // On a thread of its own: the caller may be inside a runtime.
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.runtime.block_on(self.reloader.apply(config)))
                .join()
                .unwrap()
        })
    }

    /// Start the graceful shutdown (as SIGTERM does) without waiting for it;
    /// dropping the server waits.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// The metrics as the endpoint would serve them (OpenMetrics text).
    pub fn metrics_text(&self) -> String {
        self.server_metrics.encode()
    }

    /// A path inside the user's root.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// `ftp://alice:pw@127.0.0.1:port/` + path (curl style, explicit FTPS).
    pub fn url(&self, path: &str) -> String {
        format!("ftp://127.0.0.1:{}/{}", self.explicit.port(), path)
    }

    /// Implicit FTPS URL.
    pub fn implicit_url(&self, path: &str) -> String {
        format!("ftps://127.0.0.1:{}/{}", self.implicit.port(), path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn init_logging() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("FTPS_TEST_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
    });
}

/// Run `command` with `input` on its standard input and its output
/// captured; panics when it cannot start.
pub fn run_with_input(command: &mut std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        // A program that exits without reading all of it is not an error here.
        let _ = stdin.write_all(input);
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

/// Is an external peer available? Under `CI=true` a missing one fails the test.
pub fn require_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name} is required under CI=true but is not installed");
        }
        eprintln!("SKIP: {name} not installed (set CI=true to make this a failure)");
    }
    found
}

/// Random bytes for a test file.
pub fn random_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|_| rand::random::<u8>()).collect()
}

/// Write a file with random content and return the content.
pub fn write_random(path: &Path, len: usize) -> Vec<u8> {
    let data = random_bytes(len);
    std::fs::write(path, &data).unwrap();
    data
}
