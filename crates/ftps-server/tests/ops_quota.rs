//! Per-user quotas (RFC 959 §4.2 552, "exceeded storage allocation"): an
//! upload that would cross the byte quota is refused with 552 as its bytes
//! arrive and leaves nothing; a new file beyond the file quota is refused
//! before any data connection; usage stays right across overwrites,
//! appends, resumed uploads (REST+STOR, RFC 3659 §5), renames that replace
//! a file, deletes, and a restart (usage is measured from the tree); curl
//! and lftp uploads over the quota fail and leave nothing, the lftp one on
//! the bulk-upload thread.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use ftps_proto::reply::Reply;
use ftps_testing::client::{data_tls, read_all, tcp_connect, within, Client, Setup};
use ftps_testing::{random_bytes, require_tool, write_random, TestServer, PASSWORD, USER};
use tokio::io::AsyncWriteExt;

/// Send `command` and `data` over a protected passive data connection and
/// return the final reply, whether or not the server let all of it in.
async fn upload(c: &mut Client, command: &str, data: &[u8]) -> Reply {
    let addr = c.epsv().await;
    c.send(command).await;
    let first = c.read_reply().await;
    if first.code != 150 {
        return first;
    }
    let tcp = tcp_connect(addr).await;
    let mut tls = data_tls(tcp, &c.config()).await.unwrap();
    // The server stops reading once the quota is crossed: a failed write
    // is expected then.
    if tls.write_all(data).await.is_ok() && tls.shutdown().await.is_ok() {
        let _ = read_all(&mut tls).await;
    }
    drop(tls);
    c.read_reply().await
}

async fn code(c: &mut Client, command: &str, data: &[u8]) -> u16 {
    upload(c, command, data).await.code
}

fn quota_server(bytes: Option<u64>, files: Option<u64>) -> TestServer {
    TestServer::start_with(|c| {
        c.users[0].quota_bytes = bytes;
        c.users[0].quota_files = files;
    })
}

#[tokio::test]
async fn an_upload_that_would_cross_the_quota_is_552_and_leaves_nothing() {
    let server = quota_server(Some(1_000_000), None);
    within(60, async {
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        assert_eq!(code(&mut c, "STOR a", &random_bytes(600_000)).await, 226);
        let refused = upload(&mut c, "STOR b", &random_bytes(600_000)).await;
        assert_eq!(refused.code, 552, "{}", c.dialogue());
        assert!(!server.path("b").exists(), "nothing of it stays");
        // Room again after a delete.
        c.expect("DELE a", 250).await;
        assert_eq!(code(&mut c, "STOR b", &random_bytes(600_000)).await, 226);
    })
    .await;
    assert!(server
        .metrics_text()
        .contains("ftps_quota_refusals_total 1\n"));
}

#[tokio::test]
async fn usage_follows_overwrites_appends_resumes_renames_and_deletes() {
    let server = quota_server(Some(1_000_000), None);
    within(60, async {
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        assert_eq!(code(&mut c, "STOR a", &random_bytes(600_000)).await, 226);
        // Overwriting with the same size does not grow the usage.
        assert_eq!(code(&mut c, "STOR a", &random_bytes(600_000)).await, 226);
        assert_eq!(code(&mut c, "APPE a", &random_bytes(300_000)).await, 226);
        // 900,000 used: 200,000 more would cross.
        assert_eq!(code(&mut c, "STOR b", &random_bytes(200_000)).await, 552);
        assert_eq!(code(&mut c, "STOR x", &random_bytes(50_000)).await, 226);
        // (A client uses each TLS 1.3 ticket once, and uploads bring no new
        // ones: a fresh control connection now and then.)
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        // A rename onto `a` replaces it: 50,000 used.
        c.expect("RNFR x", 350).await;
        c.expect("RNTO a", 250).await;
        assert_eq!(code(&mut c, "STOR b", &random_bytes(900_000)).await, 226);
        // 950,000 used. Resuming `a` at 50,000 with 100,000 more crosses;
        // the old bytes stay.
        c.expect("REST 50000", 350).await;
        assert_eq!(code(&mut c, "STOR a", &random_bytes(100_000)).await, 552);
        assert_eq!(std::fs::metadata(server.path("a")).unwrap().len(), 50_000);
        c.expect("REST 50000", 350).await;
        assert_eq!(code(&mut c, "STOR a", &random_bytes(40_000)).await, 226);
        assert_eq!(std::fs::metadata(server.path("a")).unwrap().len(), 90_000);
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        // 990,000 used; a delete frees 900,000.
        assert_eq!(code(&mut c, "STOR c", &random_bytes(20_000)).await, 552);
        c.expect("DELE b", 250).await;
        assert_eq!(code(&mut c, "STOR c", &random_bytes(900_000)).await, 226);
    })
    .await;
}

#[tokio::test]
async fn a_new_file_beyond_the_file_quota_is_552_before_any_data_connection() {
    let server = quota_server(None, Some(2));
    within(30, async {
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        assert_eq!(code(&mut c, "STOR x", b"1").await, 226);
        assert_eq!(code(&mut c, "STOR y", b"2").await, 226);
        // Overwriting is no new file.
        assert_eq!(code(&mut c, "STOR x", b"3").await, 226);
        c.epsv().await;
        c.expect("STOR z", 552).await;
        assert!(!server.path("z").exists());
    })
    .await;
}

#[tokio::test]
async fn usage_is_measured_from_the_tree_after_a_restart() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("old"), random_bytes(700_000)).unwrap();
    let start = |root: std::path::PathBuf| {
        TestServer::start_with(move |c| {
            c.users[0].root = Some(root);
            c.users[0].quota_bytes = Some(1_000_000);
        })
    };
    let server = start(root.path().to_path_buf());
    within(30, async {
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        assert_eq!(code(&mut c, "STOR new", &random_bytes(400_000)).await, 552);
        c.expect("DELE old", 250).await;
        assert_eq!(code(&mut c, "STOR new", &random_bytes(400_000)).await, 226);
    })
    .await;
    drop(server);
    let server = start(root.path().to_path_buf());
    within(30, async {
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        assert_eq!(code(&mut c, "STOR more", &random_bytes(700_000)).await, 552);
        assert_eq!(code(&mut c, "STOR more", &random_bytes(500_000)).await, 226);
    })
    .await;
}

#[test]
fn curl_and_lftp_uploads_over_the_quota_fail_and_leave_nothing() {
    for tool in ["curl", "lftp"] {
        if !require_tool(tool) {
            return;
        }
    }
    let server = quota_server(Some(1_048_576), None);
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    write_random(&big, 3 * 1_048_576);
    let small = dir.path().join("small.bin");
    let data = write_random(&small, 500_000);
    let script = format!(
        "set cmd:fail-exit true; set net:max-retries 1; set net:timeout 20; \
         set ftp:ssl-force true; set ftp:ssl-protect-data true; \
         set ssl:ca-file \"{}\"; open -u \"{USER},{PASSWORD}\" -p {} 127.0.0.1; \
         put \"{}\" -o big.bin",
        server.cert_pem.display(),
        server.explicit.port(),
        big.display()
    );
    let out = Command::new("timeout")
        .args(["-k", "5", "90", "lftp", "--norc", "-c", &script])
        .output()
        .unwrap();
    assert!(!out.status.success(), "lftp put over the quota succeeded");
    assert!(!server.path("big.bin").exists());
    let curl = |file: &std::path::Path, name: &str| {
        Command::new("curl")
            .args(["-sS", "--ssl-reqd", "--max-time", "60", "--cacert"])
            .arg(&server.cert_pem)
            .arg("--user")
            .arg(format!("{USER}:{PASSWORD}"))
            .arg("-T")
            .arg(file)
            .arg(server.url(name))
            .output()
            .unwrap()
    };
    assert!(!curl(&big, "big.bin").status.success());
    assert!(!server.path("big.bin").exists());
    let out = curl(&small, "small.bin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(server.path("small.bin")).unwrap(), data);
}
