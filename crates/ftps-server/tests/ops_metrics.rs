//! The metrics endpoint against real parsers: after a scripted login,
//! upload and download with curl, a data connection refused with 522
//! (Python's stock `ftplib.FTP_TLS` does not resume the TLS session, RFC
//! 4217 §10.2) and a wrong password, `GET /metrics` (fetched with curl) in
//! the classic text format passes `promtool check metrics`, in OpenMetrics
//! (asked for as Prometheus asks) `prometheus_client`'s OpenMetrics parser,
//! and its counters say what happened. `/healthz` answers 200 while
//! serving and 503 once shutdown has begun; the endpoint is off by default.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::Duration;

use ftps_testing::ops::{
    http_get, http_get_accepting, metric, parse_metrics, promtool_check, OPENMETRICS_ACCEPT,
};
use ftps_testing::{require_tool, write_random, TestServer, PASSWORD, USER};

fn curl(server: &TestServer, user: &str, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--max-time", "60", "--cacert"])
        .arg(&server.cert_pem)
        .arg("--user")
        .arg(user)
        .args(args)
        .output()
        .unwrap()
}

fn metrics_server() -> TestServer {
    TestServer::start_with(|c| {
        c.metrics.enabled = true;
        c.metrics.listen = "127.0.0.1:0".parse().unwrap();
    })
}

/// Python's stock FTP_TLS: logs in, PROT P, and opens a data connection
/// with a full handshake; prints the server's reply to RETR.
const STOCK_FTPLIB: &str = r#"
import ftplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ftp = ftplib.FTP_TLS(context=ctx, timeout=30)
ftp.connect("127.0.0.1", int(sys.argv[1]))
ftp.login(sys.argv[3], sys.argv[4])
ftp.prot_p()
try:
    ftp.retrbinary("RETR up.bin", lambda b: None)
    print("no error")
except ftplib.error_perm as e:
    print(str(e).split()[0])
except (OSError, EOFError):
    # The data connection failed before the reply was read: read it now.
    try:
        ftp.getresp()
        print("no error")
    except ftplib.error_perm as e:
        print(str(e).split()[0])
ftp.quit()
"#;

#[test]
fn metrics_count_logins_transfers_handshakes_and_522_and_parse() {
    for tool in ["curl", "python3", "promtool"] {
        if !require_tool(tool) {
            return;
        }
    }
    let server = metrics_server();
    let addr = server.metrics.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up.bin");
    let data = write_random(&up, 300_000);
    let credentials = format!("{USER}:{PASSWORD}");
    let out = curl(
        &server,
        &credentials,
        &["-T", up.to_str().unwrap(), &server.url("up.bin")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let down = dir.path().join("down.bin");
    let out = curl(
        &server,
        &credentials,
        &["-o", down.to_str().unwrap(), &server.url("up.bin")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&down).unwrap(), data);
    let out = Command::new("python3")
        .args(["-c", STOCK_FTPLIB])
        .arg(server.explicit.port().to_string())
        .arg(&server.cert_pem)
        .args([USER, PASSWORD])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "522",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = curl(&server, &format!("{USER}:wrong"), &[&server.url("")]);
    assert!(!out.status.success());

    let (status, classic) = http_get(addr, "/metrics");
    assert_eq!(status, 200);
    promtool_check(&classic);
    let (status, text) = http_get_accepting(addr, "/metrics", OPENMETRICS_ACCEPT);
    assert_eq!(status, 200);
    assert!(text.ends_with("# EOF\n"));
    let samples = parse_metrics(&text);
    let value = |name: &str, labels: &[(&str, &str)]| metric(&samples, name, labels);
    assert!(samples.iter().all(|s| s.name.starts_with("ftps_")));
    assert_eq!(value("ftps_logins_total", &[("outcome", "ok")]), 3.0);
    assert_eq!(value("ftps_logins_total", &[("outcome", "failed")]), 1.0);
    let transfers = |direction, outcome| {
        value(
            "ftps_transfers_total",
            &[("direction", direction), ("outcome", outcome)],
        )
    };
    assert_eq!(transfers("upload", "ok"), 1.0);
    assert_eq!(transfers("download", "ok"), 1.0);
    assert_eq!(transfers("download", "failed"), 1.0, "the refused RETR");
    assert_eq!(
        value("ftps_transfer_bytes_total", &[("direction", "upload")]),
        data.len() as f64
    );
    assert_eq!(
        value(
            "ftps_data_connections_refused_total",
            &[("reason", "no-session")]
        ),
        1.0
    );
    // Four control connections with a full handshake; curl's two data
    // connections resumed, ftplib's did not.
    assert!(
        value(
            "ftps_tls_handshakes_total",
            &[("connection", "control"), ("kind", "full")]
        ) >= 4.0
    );
    assert_eq!(
        value(
            "ftps_tls_handshakes_total",
            &[("connection", "data"), ("kind", "resumed")]
        ),
        2.0
    );
    assert_eq!(
        value(
            "ftps_tls_handshakes_total",
            &[("connection", "data"), ("kind", "full")]
        ),
        1.0
    );
    assert!(
        value(
            "ftps_storage_operation_duration_seconds_count",
            &[("operation", "open_write")]
        ) >= 1.0
    );
    assert_eq!(
        value("ftps_connections_total", &[("result", "accepted")]),
        4.0
    );
    // Every session has ended (their ends may trail the clients' exits).
    let mut active = f64::NAN;
    for _ in 0..50 {
        let samples = parse_metrics(&http_get_accepting(addr, "/metrics", OPENMETRICS_ACCEPT).1);
        active = metric(&samples, "ftps_sessions_active", &[]);
        if active == 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(active, 0.0);
}

#[test]
fn healthz_is_200_while_serving_and_503_once_shutdown_begins() {
    for tool in ["curl"] {
        if !require_tool(tool) {
            return;
        }
    }
    let mut server = TestServer::start_with(|c| {
        c.metrics.enabled = true;
        c.metrics.listen = "127.0.0.1:0".parse().unwrap();
        c.server.shutdown_grace_secs = 20;
    });
    let addr = server.metrics.unwrap();
    assert_eq!(http_get(addr, "/healthz"), (200, "ok\n".into()));
    assert_eq!(http_get(addr, "/nothing").0, 404);
    // A slow upload keeps the server in its grace period.
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("slow.bin");
    write_random(&up, 2_000_000);
    let mut slow = Command::new("curl")
        .args([
            "-sS",
            "--ssl-reqd",
            "--max-time",
            "60",
            "--limit-rate",
            "20k",
        ])
        .arg("--cacert")
        .arg(&server.cert_pem)
        .arg("--user")
        .arg(format!("{USER}:{PASSWORD}"))
        .arg("-T")
        .arg(&up)
        .arg(server.url("slow.bin"))
        .spawn()
        .unwrap();
    let mut transferring = false;
    for _ in 0..100 {
        let samples = parse_metrics(&http_get_accepting(addr, "/metrics", OPENMETRICS_ACCEPT).1);
        if metric(&samples, "ftps_sessions_active", &[]) >= 1.0
            && metric(&samples, "ftps_logins_total", &[("outcome", "ok")]) >= 1.0
        {
            transferring = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(transferring);
    std::thread::sleep(Duration::from_millis(500));
    server.begin_shutdown();
    let mut status = 0;
    for _ in 0..50 {
        status = http_get(addr, "/healthz").0;
        if status == 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status, 503);
    let _ = slow.kill();
    let _ = slow.wait();
}

#[test]
fn the_metrics_endpoint_is_off_by_default() {
    let server = TestServer::start();
    assert_eq!(server.metrics, None);
    // The metrics are kept all the same (and would be served once enabled).
    assert!(server.metrics_text().contains("ftps_sessions_active"));
}
