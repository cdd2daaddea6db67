//! Bandwidth and sessions: a 10 MiB curl upload at a user's 1 MiB/s takes
//! about 10 s; an lftp upload keeps to the server's rate (`[limits]`); two
//! sessions of one user share its download rate; a user's session cap gives
//! the next login 421 (RFC 959 §4.2) and closes it. Durations are asserted
//! loosely: the exact rates are measured by scripts/bench.py.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ftps_testing::client::{within, Client, Setup};
use ftps_testing::{require_tool, write_random, TestServer, PASSWORD, USER};

const MIB: u64 = 1024 * 1024;

fn curl(server: &TestServer, args: &[&str]) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--ssl-reqd", "--max-time", "60", "--cacert"])
        .arg(&server.cert_pem)
        .arg("--user")
        .arg(format!("{USER}:{PASSWORD}"))
        .args(args);
    cmd
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_10_mib_curl_upload_at_1_mib_per_second_takes_about_10_seconds() {
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start_with(|c| c.users[0].upload_bytes_per_sec = MIB);
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up.bin");
    let data = write_random(&up, 10 * MIB as usize);
    let started = Instant::now();
    ok(&curl(
        &server,
        &["-T", up.to_str().unwrap(), &server.url("up.bin")],
    )
    .output()
    .unwrap());
    let took = started.elapsed().as_secs_f64();
    assert!((8.0..20.0).contains(&took), "took {took:.1} s");
    assert_eq!(std::fs::read(server.path("up.bin")).unwrap(), data);
}

#[test]
fn an_lftp_upload_keeps_to_the_servers_rate() {
    if !require_tool("lftp") {
        return;
    }
    let server = TestServer::start_with(|c| c.limits.upload_bytes_per_sec = MIB);
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up.bin");
    let data = write_random(&up, 4 * MIB as usize);
    let script = format!(
        "set cmd:fail-exit true; set net:max-retries 1; set net:timeout 20; \
         set ftp:ssl-force true; set ftp:ssl-protect-data true; \
         set ssl:ca-file \"{}\"; open -u \"{USER},{PASSWORD}\" -p {} 127.0.0.1; \
         put \"{}\" -o up.bin",
        server.cert_pem.display(),
        server.explicit.port(),
        up.display()
    );
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["-k", "5", "90", "lftp", "--norc", "-c", &script])
        .output()
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    ok(&out);
    assert!((3.0..15.0).contains(&took), "took {took:.1} s");
    assert_eq!(std::fs::read(server.path("up.bin")).unwrap(), data);
}

#[test]
fn two_sessions_of_one_user_share_its_download_rate() {
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start_with(|c| c.users[0].download_bytes_per_sec = MIB);
    let data = write_random(&server.path("f.bin"), 2 * MIB as usize);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let out = dir.path().join(name);
            curl(
                &server,
                &["-o", out.to_str().unwrap(), &server.url("f.bin")],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        ok(&child.wait_with_output().unwrap());
    }
    let took = started.elapsed().as_secs_f64();
    // 4 MiB at one shared 1 MiB/s; two separate limits would take 2 s.
    assert!((3.0..15.0).contains(&took), "took {took:.1} s");
    for name in ["a", "b"] {
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), data);
    }
}

#[tokio::test]
async fn a_users_session_cap_gives_the_next_login_421() {
    let server = TestServer::start_with(|c| c.users[0].max_sessions = 2);
    within(30, async {
        let mut a = Client::session(&server, Setup::explicit()).await;
        let _b = Client::session(&server, Setup::explicit()).await;
        let mut c = Client::session(&server, Setup::explicit().tls_only()).await;
        c.expect(&format!("USER {USER}"), 331).await;
        c.expect(&format!("PASS {PASSWORD}"), 421).await;
        c.expect_closed().await;
        // A session that ends gives its place back.
        a.expect("QUIT", 221).await;
        drop(a);
        let mut tries = 0;
        loop {
            let mut d = Client::session(&server, Setup::explicit().tls_only()).await;
            d.expect(&format!("USER {USER}"), 331).await;
            d.send(&format!("PASS {PASSWORD}")).await;
            match d.read_reply().await.code {
                230 => break,
                421 if tries < 20 => tries += 1,
                other => panic!("login after a QUIT: {other}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}
