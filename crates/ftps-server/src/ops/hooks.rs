//! Event hooks: on a committed upload, a download, DELE, RNFR/RNTO, MKD,
//! RMD, a login and a failed login, run a command with the event as JSON on
//! its standard input and/or POST the JSON to an HTTPS URL.
//!
//! Hooks run off the transfer path: [`Hooks::offer`] only puts the event in
//! a bounded queue and returns; a fixed number of workers take events from
//! it. A slow or dead hook therefore never delays a transfer or a reply:
//! while every worker is busy the queue fills, and an event that finds it
//! full is dropped, counted (`ftps_hook_events_total{result="dropped"}`) and
//! logged. Each run is bounded by the timeout (a command still running then
//! is killed); a POST that fails (connection, TLS, a status other than 2xx)
//! is tried again up to `retries` times, waiting 1, 2, 4 … seconds. The
//! webhook's server certificate is verified against the built-in web roots
//! and the CAs of `hooks.ca_file`.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Mutex};

use super::event::{Event, EventKind, Outcome};
use super::metrics::Metrics;
use crate::config::{HookEvent, HooksSection};

/// Longest wait between two attempts of a POST.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// Why the hooks could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// `hooks.ca_file` could not be read.
    #[error("hooks.ca_file {path}: {message}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The HTTPS client could not be built.
    #[error("hooks: {0}")]
    Client(String),
}

/// One event waiting for the hooks.
#[derive(Debug)]
struct Job {
    event: &'static str,
    json: String,
    env: Vec<(&'static str, String)>,
}

/// What runs for each event.
struct Runner {
    command: Vec<String>,
    webhook: Option<(reqwest::Client, reqwest::Url)>,
    timeout: Duration,
    retries: u32,
    metrics: Arc<Metrics>,
}

/// The hooks of a configuration: the queue and its workers. Dropping it
/// closes the queue; the workers run what is queued, then stop.
#[derive(Debug)]
pub struct Hooks {
    sender: mpsc::Sender<Job>,
    events: HashSet<HookEvent>,
    metrics: Arc<Metrics>,
}

/// The hook event an event is, if hooks run on it.
fn hook_event(event: &Event) -> Option<HookEvent> {
    let ok = event.outcome == Outcome::Ok;
    match event.kind {
        // Only committed uploads and completed operations.
        EventKind::Upload if ok => Some(HookEvent::Upload),
        EventKind::Download if ok => Some(HookEvent::Download),
        EventKind::Delete if ok => Some(HookEvent::Delete),
        EventKind::Rename if ok => Some(HookEvent::Rename),
        EventKind::Mkdir if ok => Some(HookEvent::Mkdir),
        EventKind::Rmdir if ok => Some(HookEvent::Rmdir),
        EventKind::Login => Some(HookEvent::Login),
        EventKind::LoginFailed => Some(HookEvent::LoginFailed),
        _ => None,
    }
}

impl Hooks {
    /// Start the workers for `config` (inside a tokio runtime); `None`
    /// when no command or URL is configured.
    pub fn start(config: &HooksSection, metrics: Arc<Metrics>) -> Result<Option<Hooks>, HookError> {
        if !config.enabled() {
            return Ok(None);
        }
        let webhook = match &config.url {
            Some(url) => {
                let url = reqwest::Url::parse(url).map_err(|e| HookError::Client(e.to_string()))?;
                Some((https_client(config)?, url))
            }
            None => None,
        };
        let runner = Arc::new(Runner {
            command: config.command.clone(),
            webhook,
            timeout: Duration::from_secs(config.timeout_secs),
            retries: config.retries,
            metrics: Arc::clone(&metrics),
        });
        let (sender, receiver) = mpsc::channel(config.queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..config.workers.max(1) {
            tokio::spawn(worker(Arc::clone(&receiver), Arc::clone(&runner)));
        }
        Ok(Some(Hooks {
            sender,
            events: config.events.iter().copied().collect(),
            metrics,
        }))
    }

    /// Queue `event` for the hooks if they run on it; never waits.
    pub fn offer(&self, event: &Event) {
        let Some(kind) = hook_event(event) else {
            return;
        };
        if !self.events.contains(&kind) {
            return;
        }
        let job = Job {
            event: event.kind.name(),
            json: event.to_json(),
            env: environment(event),
        };
        match self.sender.try_send(job) {
            Ok(()) => {
                self.metrics
                    .hook_events
                    .get_or_create(&[("result", "queued")])
                    .inc();
            }
            Err(_) => {
                self.metrics
                    .hook_events
                    .get_or_create(&[("result", "dropped")])
                    .inc();
                tracing::warn!(event = event.kind.name(), user = ?event.user, path = ?event.path, "hook queue full: event dropped");
            }
        }
    }

    /// Events waiting in the queue.
    pub fn queued(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

/// Check that the webhook's client can be built (URL, CA file).
pub fn check(config: &HooksSection) -> Result<(), HookError> {
    if let Some(url) = &config.url {
        reqwest::Url::parse(url).map_err(|e| HookError::Client(e.to_string()))?;
        https_client(config)?;
    }
    Ok(())
}

/// The environment a hook command gets besides the JSON.
fn environment(event: &Event) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("FTPS_EVENT", event.kind.name().to_owned()),
        ("FTPS_REMOTE", event.remote.to_string()),
        ("FTPS_OUTCOME", event.outcome.name().to_owned()),
    ];
    let optional = [
        ("FTPS_USER", event.user.clone()),
        ("FTPS_PATH", event.path.clone()),
        ("FTPS_TARGET", event.target.clone()),
        ("FTPS_BYTES", event.bytes.map(|b| b.to_string())),
        (
            "FTPS_ROOT",
            event.root.as_ref().map(|r| r.display().to_string()),
        ),
    ];
    env.extend(
        optional
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v))),
    );
    env
}

/// The HTTPS client of the webhook: rustls with the built-in web roots and
/// the CAs of `hooks.ca_file`.
fn https_client(config: &HooksSection) -> Result<reqwest::Client, HookError> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &config.ca_file {
        let ca_error = |message: String| HookError::CaFile {
            path: path.clone(),
            message,
        };
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no certificate in the file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HookError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| HookError::Client(e.to_string()))
}

async fn worker(receiver: Arc<Mutex<mpsc::Receiver<Job>>>, runner: Arc<Runner>) {
    loop {
        let job = receiver.lock().await.recv().await;
        let Some(job) = job else {
            return;
        };
        if !runner.command.is_empty() {
            let ok = runner.run_command(&job).await;
            runner.counted("command", ok);
        }
        if let Some((client, url)) = &runner.webhook {
            let ok = runner.post(client, url, &job).await;
            runner.counted("webhook", ok);
        }
    }
}

impl Runner {
    fn counted(&self, hook: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.metrics
            .hook_runs
            .get_or_create(&[("hook", hook), ("outcome", outcome)])
            .inc();
    }

    /// Run the command with the JSON on its standard input; true when it
    /// exits with 0 within the timeout.
    async fn run_command(&self, job: &Job) -> bool {
        let Some((program, args)) = self.command.split_first() else {
            return false;
        };
        let spawned = tokio::process::Command::new(program)
            .args(args)
            .envs(job.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => {
                tracing::warn!(%program, %error, event = job.event, "hook command cannot start");
                return false;
            }
        };
        let run = async {
            if let Some(mut stdin) = child.stdin.take() {
                // A command that does not read its input is fine.
                let _ = stdin.write_all(job.json.as_bytes()).await;
                let _ = stdin.write_all(b"\n").await;
            }
            child.wait().await
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(status)) if status.success() => true,
            Ok(Ok(status)) => {
                tracing::warn!(%program, %status, event = job.event, "hook command failed");
                false
            }
            Ok(Err(error)) => {
                tracing::warn!(%program, %error, event = job.event, "hook command failed");
                false
            }
            Err(_) => {
                let _ = child.kill().await;
                tracing::warn!(%program, seconds = self.timeout.as_secs(), event = job.event, "hook command timed out: killed");
                false
            }
        }
    }

    /// POST the JSON, retrying; true on a 2xx answer.
    async fn post(&self, client: &reqwest::Client, url: &reqwest::Url, job: &Job) -> bool {
        let mut wait = Duration::from_secs(1);
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RETRY_WAIT);
            }
            let sent = client
                .post(url.clone())
                .header("content-type", "application/json")
                .timeout(self.timeout)
                .body(job.json.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return true,
                Ok(response) => {
                    tracing::warn!(%url, status = %response.status(), attempt, event = job.event, "webhook refused the event");
                }
                Err(error) => {
                    tracing::warn!(%url, error = %error_chain(&error), attempt, event = job.event, "webhook failed");
                }
            }
        }
        false
    }
}

/// An error with its causes (reqwest's own text hides the TLS reason).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
