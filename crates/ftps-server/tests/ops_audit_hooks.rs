//! The audit log, the xferlog and the hooks against real clients and a real
//! HTTPS server: after curl logs in, uploads, downloads, makes and removes a
//! directory, renames and deletes a file and fails a login, the JSON lines
//! carry the documented keys and the xferlog lines match xferlog(5) field by
//! field; the audit file is opened again on SIGHUP's reopen (logrotate);
//! webhooks reach a local HTTPS server (Python's `http.server` with `ssl`)
//! whose CA the server is told to trust, after a retry, and never for an
//! upload a quota refused; an untrusted certificate fails the POST; a hook
//! command gets the event on standard input and moves the arrived file; a
//! full hook queue drops and counts events while the uploads go on.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ftps_testing::ops::Webhook;
use ftps_testing::{require_tool, write_random, TestServer, PASSWORD, USER};

fn curl(server: &TestServer, args: &[&str]) -> Output {
    curl_as(server, &format!("{USER}:{PASSWORD}"), args)
}

fn curl_as(server: &TestServer, credentials: &str, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--max-time", "60", "--cacert"])
        .arg(&server.cert_pem)
        .arg("--user")
        .arg(credentials)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The lines of `path` once there are at least `n` (waiting up to 10 s).
fn lines_of(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A value of the server's metrics, read in-process.
fn metric_value(server: &TestServer, sample: &str) -> f64 {
    server
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

const KEYS: [&str; 13] = [
    "bytes",
    "error",
    "event",
    "outcome",
    "path",
    "remote",
    "resumed",
    "seconds",
    "session",
    "target",
    "time",
    "tls_version",
    "user",
];

#[test]
fn audit_lines_and_xferlog_record_every_event_with_the_documented_fields() {
    if !require_tool("curl") {
        return;
    }
    let logs = tempfile::tempdir().unwrap();
    let audit = logs.path().join("audit.log");
    let xferlog = logs.path().join("xferlog");
    let server = TestServer::start_with(|c| {
        c.audit.file = Some(audit.clone());
        c.audit.xferlog = Some(xferlog.clone());
    });
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up.bin");
    let data = write_random(&up, 123_456);
    ok(&curl(
        &server,
        &["-T", up.to_str().unwrap(), &server.url("my%20file.bin")],
    ));
    let down = dir.path().join("down.bin");
    ok(&curl(
        &server,
        &["-o", down.to_str().unwrap(), &server.url("my%20file.bin")],
    ));
    ok(&curl(
        &server,
        &[
            "-Q",
            "MKD d",
            "-Q",
            "RMD d",
            "-Q",
            "RNFR my file.bin",
            "-Q",
            "RNTO moved.bin",
            "-Q",
            "DELE moved.bin",
            &server.url(""),
        ],
    ));
    assert!(
        !curl_as(&server, &format!("{USER}:wrong"), &[&server.url("")])
            .status
            .success()
    );
    // 4 logins (one failed), 3 logouts, upload, download, mkdir, rmdir,
    // rename, delete.
    let lines = lines_of(&audit, 13);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for event in &events {
        let mut keys: Vec<&str> = event
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, KEYS, "{event}");
        assert_eq!(event["remote"], "127.0.0.1");
        assert!(event["time"].as_str().unwrap().ends_with('Z'));
    }
    let find = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no {name} event in {lines:#?}"))
    };
    let upload = find("upload");
    assert_eq!(upload["path"], "/my file.bin");
    assert_eq!(upload["bytes"], data.len() as u64);
    assert_eq!(upload["outcome"], "ok");
    assert_eq!(upload["user"], USER);
    assert_eq!(upload["tls_version"], "TLSv1.3");
    assert_eq!(upload["resumed"], true);
    assert!(upload["seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(find("download")["bytes"], data.len() as u64);
    assert_eq!(find("login")["tls_version"], "TLSv1.3");
    let rename = find("rename");
    assert_eq!(
        (&rename["path"], &rename["target"]),
        (&"/my file.bin".into(), &"/moved.bin".into())
    );
    assert_eq!(find("delete")["path"], "/moved.bin");
    assert_eq!(find("mkdir")["outcome"], "ok");
    assert_eq!(find("rmdir")["path"], "/d");
    let failed = find("login_failed");
    assert_eq!(
        (&failed["user"], &failed["outcome"]),
        (&USER.into(), &"failed".into())
    );
    assert_eq!(events.iter().filter(|e| e["event"] == "logout").count(), 3);
    let sessions: std::collections::HashSet<u64> = events
        .iter()
        .map(|e| e["session"].as_u64().unwrap())
        .collect();
    assert_eq!(sessions.len(), 4, "one number per control connection");

    // xferlog(5): 5 fields of time, then transfer-time, remote-host,
    // file-size, filename, transfer-type, special-action-flag, direction,
    // access-mode, username, service-name, authentication-method,
    // authenticated-user-id, completion-status.
    let xfer = lines_of(&xferlog, 3);
    assert_eq!(xfer.len(), 3, "{xfer:#?}");
    let expected = [
        ("/my_file.bin", data.len(), 'i'),
        ("/my_file.bin", data.len(), 'o'),
        ("/moved.bin", 0, 'd'),
    ];
    for (line, (file, size, direction)) in xfer.iter().zip(expected) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 18, "{line}");
        assert!(
            ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&f[0]),
            "{line}"
        );
        assert!(f[1].len() == 3 && f[2].parse::<u8>().is_ok(), "{line}");
        assert_eq!(f[3].split(':').count(), 3, "{line}");
        assert!(f[4].parse::<u16>().unwrap() >= 2024, "{line}");
        assert!(f[5].parse::<u64>().unwrap() >= 1, "{line}");
        assert_eq!(f[6], "127.0.0.1");
        assert_eq!(f[7], size.to_string(), "{line}");
        assert_eq!(f[8], file);
        assert_eq!(f[9], "b");
        assert_eq!(f[10], "_");
        assert_eq!(f[11], direction.to_string());
        assert_eq!(f[12], "r");
        assert_eq!(f[13], USER);
        assert_eq!(&f[14..], ["ftp", "0", "*", "c"], "{line}");
    }

    // logrotate: the file is moved away, SIGHUP opens it again.
    std::fs::rename(&audit, logs.path().join("audit.log.1")).unwrap();
    server.reloader.reopen_logs();
    ok(&curl(&server, &[&server.url("")]));
    let fresh = lines_of(&audit, 2);
    assert_eq!(fresh.len(), 2, "{fresh:#?}");
    assert!(fresh[0].contains("\"event\":\"login\""));
}

#[tokio::test]
async fn a_stou_upload_event_names_the_file_the_server_chose() {
    use ftps_testing::client::{within, Client, Setup};
    let logs = tempfile::tempdir().unwrap();
    let audit = logs.path().join("audit.log");
    let server = TestServer::start_with(|c| c.audit.file = Some(audit.clone()));
    let started = within(30, async {
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        c.upload(b"STOU", b"unique").await
    })
    .await;
    let text = started.text();
    let name = text.strip_prefix("FILE: ").unwrap().to_owned();
    let lines = lines_of(&audit, 2);
    let upload: serde_json::Value = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "upload")
        .unwrap();
    assert_eq!(upload["path"], format!("/{name}"));
    assert_eq!(std::fs::read(server.path(&name)).unwrap(), b"unique");
}

#[test]
fn webhooks_reach_a_verified_https_server_for_committed_uploads_only() {
    for tool in ["curl", "python3"] {
        if !require_tool(tool) {
            return;
        }
    }
    // The first POST is answered 503: the hook tries again.
    let hook = Webhook::start(1);
    let url = hook.url.clone();
    let ca = hook.ca.clone();
    let server = TestServer::start_with(|c| {
        c.hooks.url = Some(url);
        c.hooks.ca_file = Some(ca);
        c.hooks.events = vec![ftps_server::config::HookEvent::Upload];
        c.users[0].quota_bytes = Some(200_000);
    });
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.bin");
    write_random(&small, 50_000);
    let big = dir.path().join("big.bin");
    write_random(&big, 400_000);
    ok(&curl(
        &server,
        &["-T", small.to_str().unwrap(), &server.url("small.bin")],
    ));
    let refused = curl(
        &server,
        &["-T", big.to_str().unwrap(), &server.url("big.bin")],
    );
    assert!(!refused.status.success());
    // The server answers 552 as the bytes arrive and closes the data
    // connection; curl, still sending, may see that first.
    assert!(!server.path("big.bin").exists());
    assert_eq!(metric_value(&server, "ftps_quota_refusals_total"), 1.0);
    let received = hook.wait_for(1, Duration::from_secs(20));
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["event"], "upload");
    assert_eq!(received[0]["path"], "/small.bin");
    assert_eq!(received[0]["bytes"], 50_000);
    // Nothing more comes: the refused upload made no hook run.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.received().len(), 1);
    assert_eq!(
        metric_value(
            &server,
            "ftps_hook_runs_total{hook=\"webhook\",outcome=\"ok\"}"
        ),
        1.0
    );
}

#[test]
fn a_webhook_whose_certificate_is_not_trusted_is_not_sent() {
    for tool in ["curl", "python3"] {
        if !require_tool(tool) {
            return;
        }
    }
    let hook = Webhook::start(0);
    let url = hook.url.clone();
    let server = TestServer::start_with(|c| {
        c.hooks.url = Some(url);
        c.hooks.retries = 0;
    });
    ok(&curl(&server, &[&server.url("")]));
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = "ftps_hook_runs_total{hook=\"webhook\",outcome=\"failed\"}";
    while metric_value(&server, failed) < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        metric_value(&server, failed),
        1.0,
        "the login's POST failed"
    );
    assert!(hook.received().is_empty());
}

#[test]
fn a_hook_command_gets_the_event_and_moves_the_arrived_file() {
    if !require_tool("curl") {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let seen = outside.path().join("event.json");
    let script = format!(
        "cat > '{}' && mkdir -p \"$FTPS_ROOT/processed\" && mv \"$FTPS_ROOT$FTPS_PATH\" \"$FTPS_ROOT/processed/\"",
        seen.display()
    );
    let server = TestServer::start_with(|c| {
        c.hooks.command = vec!["sh".into(), "-c".into(), script];
        c.hooks.events = vec![ftps_server::config::HookEvent::Upload];
    });
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("order.xml");
    let data = write_random(&up, 10_000);
    ok(&curl(
        &server,
        &["-T", up.to_str().unwrap(), &server.url("order.xml")],
    ));
    let moved = server.path("processed/order.xml");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !moved.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read(&moved).unwrap(), data);
    assert!(!server.path("order.xml").exists());
    let event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&seen).unwrap()).unwrap();
    assert_eq!(event["event"], "upload");
    assert_eq!(event["path"], "/order.xml");
    assert_eq!(event["user"], USER);
}

#[test]
fn a_full_hook_queue_drops_and_counts_events_while_uploads_go_on() {
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start_with(|c| {
        c.hooks.command = vec!["sleep".into(), "30".into()];
        c.hooks.events = vec![ftps_server::config::HookEvent::Upload];
        c.hooks.workers = 1;
        c.hooks.queue = 1;
    });
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c", "d", "e"] {
        write_random(&dir.path().join(name), 1000);
    }
    let files = format!("{}/{{a,b,c,d,e}}", dir.path().display());
    ok(&curl(&server, &["-T", &files, &server.url("")]));
    for name in ["a", "b", "c", "d", "e"] {
        assert!(server.path(name).exists(), "{name}");
    }
    let queued = metric_value(&server, "ftps_hook_events_total{result=\"queued\"}");
    let dropped = metric_value(&server, "ftps_hook_events_total{result=\"dropped\"}");
    assert_eq!(queued + dropped, 5.0);
    assert!(
        dropped >= 2.0,
        "one runs, one waits: queued {queued}, dropped {dropped}"
    );
}
