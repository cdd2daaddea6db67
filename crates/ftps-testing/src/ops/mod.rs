//! Test support for the operations features: a local HTTPS server that
//! receives webhooks ([`Webhook`], Python's `http.server` with `ssl`, a CA
//! made here that the server under test is told to trust), the metrics text
//! checked by `promtool check metrics` ([`promtool_check`]) and parsed by
//! the `prometheus_client` library's OpenMetrics parser ([`parse_metrics`]),
//! and HTTP GETs with curl ([`http_get`]).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WEBHOOK_SERVER: &str = include_str!("webhook_server.py");
const PARSE_METRICS: &str = include_str!("parse_metrics.py");

/// The `Accept` header Prometheus sends.
pub const OPENMETRICS_ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A CA and a server certificate it signed for `localhost` and 127.0.0.1,
/// as PEM files in `dir`: (CA, certificate, key).
pub fn https_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftps webhook test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// A local HTTPS server that records the bodies POSTed to it; stopped (by
/// its process id) when dropped.
pub struct Webhook {
    child: Child,
    /// `https://127.0.0.1:PORT/hook`.
    pub url: String,
    /// The CA that signed its certificate.
    pub ca: PathBuf,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Webhook {
    /// Start it; the first `failures` POSTs are answered 503. Needs
    /// `python3` (check with [`crate::require_tool`]).
    pub fn start(failures: u32) -> Webhook {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = https_pki(dir.path());
        let script = dir.path().join("webhook_server.py");
        std::fs::write(&script, WEBHOOK_SERVER).unwrap();
        let out = dir.path().join("received.jsonl");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&cert)
            .arg(&key)
            .arg(&out)
            .arg(failures.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().unwrap_or_else(|_| {
            panic!("webhook server did not print its port: {line:?}");
        });
        Webhook {
            child,
            url: format!("https://127.0.0.1:{port}/hook"),
            ca,
            out,
            _dir: dir,
        }
    }

    /// The bodies received so far, parsed as JSON.
    pub fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Wait (at most `limit`) until `n` bodies have arrived; what arrived.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One sample of the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (`ftps_logins_total`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// Parse OpenMetrics text with `prometheus_client`'s parser (Python);
/// panics when it does not parse. Needs `python3` with `prometheus_client`.
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("parse_metrics.py");
    std::fs::write(&script, PARSE_METRICS).unwrap();
    let out = crate::run_with_input(Command::new("python3").arg(&script), text.as_bytes());
    assert!(
        out.status.success(),
        "prometheus_client cannot parse the metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            Sample {
                name: v["name"].as_str().unwrap().to_owned(),
                labels: v["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect(),
                value: v["value"].as_f64().unwrap(),
            }
        })
        .collect()
}

/// The sum of the samples called `name` whose labels include `labels`.
pub fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// `promtool check metrics` on `text`; panics with its findings when it
/// reports a problem. Needs `promtool` (Debian's `prometheus` package).
pub fn promtool_check(text: &str) {
    let out = crate::run_with_input(
        Command::new("promtool").args(["check", "metrics"]),
        text.as_bytes(),
    );
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// GET `path` from `addr` with curl: the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get_accepting(addr, path, "*/*")
}

/// [`http_get`] with an `Accept` header, e.g. the one Prometheus sends
/// for OpenMetrics ([`OPENMETRICS_ACCEPT`]).
pub fn http_get_accepting(addr: SocketAddr, path: &str, accept: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Accept: {accept}"))
        .arg(format!("http://{addr}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}
