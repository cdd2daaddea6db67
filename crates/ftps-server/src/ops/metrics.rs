//! The server's Prometheus metrics (names start with `ftps_`), kept with the
//! `prometheus-client` crate and encoded in the OpenMetrics text format for
//! `GET /metrics` ([`super::http`]), or, for a scraper that does not ask for
//! OpenMetrics, in the classic Prometheus text format 0.0.4
//! ([`to_classic_text`]).
//!
//! Most series follow from the [`Event`]s ([`Metrics::record`]); the rest are
//! counted where they happen: sessions, TLS handshakes by version and
//! resumed or full, data connections refused with 522 and why, quota
//! refusals, storage latency, the hooks' queue. Labels take a few fixed
//! values only (never a user name or a path), so the number of series stays
//! small whatever the clients do. The full list is in docs/operations.md.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use super::event::{Event, EventKind, Outcome};

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type Labels3 = [(&'static str, &'static str); 3];

/// Every metric of the server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Control connections open now.
    pub sessions_active: Gauge,
    /// Connections accepted or refused at connect, by result.
    pub connections: Family<Labels1, Counter>,
    /// Logins by outcome.
    pub logins: Family<Labels1, Counter>,
    /// Transfers by direction and outcome.
    pub transfers: Family<Labels2, Counter>,
    /// Bytes moved over data connections, by direction.
    pub transfer_bytes: Family<Labels1, Counter>,
    /// TLS handshakes by connection, version and kind (full or resumed).
    pub tls_handshakes: Family<Labels3, Counter>,
    /// Data connections refused with 522, by reason.
    pub data_refused: Family<Labels1, Counter>,
    /// File-system commands (DELE, RNFR/RNTO, MKD, RMD) by operation and outcome.
    pub fs_operations: Family<Labels2, Counter>,
    /// Addresses banned after failed logins.
    pub bans: Counter,
    /// Uploads and new files refused by a quota.
    pub quota_refusals: Counter,
    /// What access rules refused, by where (connect, login, command).
    pub access_refusals: Family<Labels1, Counter>,
    /// Storage operations' latency, by operation.
    pub storage_seconds: Family<Labels1, Histogram>,
    /// Events handed to the hooks, by result (queued, dropped).
    pub hook_events: Family<Labels1, Counter>,
    /// Hook runs by hook (command, webhook) and outcome.
    pub hook_runs: Family<Labels2, Counter>,
    /// Audit lines dropped because the writer fell behind.
    pub audit_dropped: Counter,
    /// Configuration reloads by outcome.
    pub reloads: Family<Labels1, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A new metric at zero, registered as `name` with `help`.
fn add<M: prometheus_client::registry::Metric + Clone + Default>(
    registry: &mut Registry,
    name: &str,
    help: &str,
) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

fn storage_histogram() -> Histogram {
    // 100 µs to about 26 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

impl Metrics {
    /// Every metric registered, each at zero.
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("ftps");
        let storage_seconds = Family::<Labels1, Histogram>::new_with_constructor(
            storage_histogram as fn() -> Histogram,
        );
        r.register_with_unit(
            "storage_operation_duration",
            "Storage operations' latency, by operation",
            Unit::Seconds,
            storage_seconds.clone(),
        );
        let transfer_bytes = Family::<Labels1, Counter>::default();
        r.register_with_unit(
            "transfer",
            "Bytes moved over data connections, by direction",
            Unit::Bytes,
            transfer_bytes.clone(),
        );
        Metrics {
            sessions_active: add(&mut r, "sessions_active", "Control connections open now"),
            connections: add(
                &mut r,
                "connections",
                "Connections accepted, or refused at connect (result: accepted, banned, denied, limit, proxy_refused)",
            ),
            logins: add(&mut r, "logins", "Logins by outcome (ok, failed)"),
            transfers: add(
                &mut r,
                "transfers",
                "Transfers by direction (upload, download, listing) and outcome (ok, failed, aborted)",
            ),
            transfer_bytes,
            tls_handshakes: add(
                &mut r,
                "tls_handshakes",
                "Completed TLS handshakes by connection (control, data), version and kind (full, resumed)",
            ),
            data_refused: add(
                &mut r,
                "data_connections_refused",
                "Data connections refused with 522, by reason",
            ),
            fs_operations: add(
                &mut r,
                "fs_operations",
                "DELE, RNFR/RNTO, MKD and RMD by operation and outcome",
            ),
            bans: add(&mut r, "bans", "Addresses banned after failed logins"),
            quota_refusals: add(
                &mut r,
                "quota_refusals",
                "Uploads and new files refused with 552 by a user's quota",
            ),
            access_refusals: add(
                &mut r,
                "access_refusals",
                "Refused by an access rule, by where (connect, login, command)",
            ),
            storage_seconds,
            hook_events: add(
                &mut r,
                "hook_events",
                "Events handed to the hooks, by result (queued, dropped)",
            ),
            hook_runs: add(
                &mut r,
                "hook_runs",
                "Hook runs by hook (command, webhook) and outcome (ok, failed)",
            ),
            audit_dropped: add(
                &mut r,
                "audit_dropped",
                "Audit lines dropped because the writer fell behind",
            ),
            reloads: add(
                &mut r,
                "config_reloads",
                "Configuration reloads by outcome (ok, failed)",
            ),
            registry: r,
        }
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The metrics in the classic Prometheus text format (0.0.4).
    pub fn encode_classic(&self) -> String {
        to_classic_text(&self.encode())
    }

    /// Count what an event tells.
    pub fn record(&self, event: &Event) {
        let outcome = event.outcome.name();
        match event.kind {
            EventKind::Login => {
                self.logins.get_or_create(&[("outcome", "ok")]).inc();
            }
            EventKind::LoginFailed => {
                self.logins.get_or_create(&[("outcome", "failed")]).inc();
            }
            EventKind::Upload | EventKind::Download => {
                let direction = match event.kind {
                    EventKind::Upload => "upload",
                    _ => "download",
                };
                self.transfer(direction, event.outcome, event.bytes.unwrap_or(0));
            }
            EventKind::Delete | EventKind::Rename | EventKind::Mkdir | EventKind::Rmdir => {
                self.fs_operations
                    .get_or_create(&[("operation", event.kind.name()), ("outcome", outcome)])
                    .inc();
            }
            EventKind::Ban => {
                self.bans.inc();
            }
            EventKind::Logout => {}
        }
    }

    /// Count a transfer (listings have no event of their own).
    pub fn transfer(&self, direction: &'static str, outcome: Outcome, bytes: u64) {
        self.transfers
            .get_or_create(&[("direction", direction), ("outcome", outcome.name())])
            .inc();
        self.transfer_bytes
            .get_or_create(&[("direction", direction)])
            .inc_by(bytes);
    }

    /// Count a completed TLS handshake.
    pub fn tls_handshake(&self, connection: &'static str, version: &'static str, resumed: bool) {
        let kind = if resumed { "resumed" } else { "full" };
        self.tls_handshakes
            .get_or_create(&[
                ("connection", connection),
                ("version", version),
                ("kind", kind),
            ])
            .inc();
    }

    /// Count a connection accepted or refused at connect.
    pub fn connection(&self, result: &'static str) {
        self.connections.get_or_create(&[("result", result)]).inc();
    }

    /// Time one storage operation.
    pub fn storage(&self, operation: &'static str, seconds: f64) {
        self.storage_seconds
            .get_or_create(&[("operation", operation)])
            .observe(seconds);
    }
}

/// The classic Prometheus text format (0.0.4) of OpenMetrics text as
/// `prometheus-client` writes it: the two differ, for what it writes, only
/// in that a counter's HELP and TYPE lines name the family (`ftps_logins`)
/// in OpenMetrics and the sample (`ftps_logins_total`) in the classic
/// format, and that the classic format has no `# UNIT` and `# EOF` lines.
pub fn to_classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.strip_suffix(" counter") {
                counters.insert(name.to_owned());
            }
        }
    }
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(renamed) => out.push_str(&renamed),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_start_with_ftps_and_the_text_ends_with_eof() {
        let metrics = Metrics::new();
        metrics.tls_handshake("data", "TLSv1.3", true);
        metrics.storage("read", 0.002);
        let text = metrics.encode();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("ftps_"), "{line}");
        }
        assert!(text.contains(
            "ftps_tls_handshakes_total{connection=\"data\",version=\"TLSv1.3\",kind=\"resumed\"} 1"
        ));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn classic_text_names_counters_by_their_samples_and_drops_unit_and_eof() {
        let metrics = Metrics::new();
        metrics.transfer("upload", Outcome::Ok, 10);
        let classic = metrics.encode_classic();
        assert!(classic.contains("# TYPE ftps_transfers_total counter\n"));
        assert!(classic.contains("# HELP ftps_transfer_bytes_total Bytes"));
        assert!(classic.contains("ftps_transfer_bytes_total{direction=\"upload\"} 10\n"));
        assert!(classic.contains("# TYPE ftps_sessions_active gauge\n"));
        assert!(!classic.contains("# EOF") && !classic.contains("# UNIT"));
    }
}
