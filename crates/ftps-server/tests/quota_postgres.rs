//! Quotas shared by servers on one database (a private PostgreSQL started
//! by the test, see `ftps_testing::services::postgres`; table
//! `ftps_usage`): two servers serving one user from one root count that
//! user's uploads together; the upload that crosses the quota is refused
//! with 552 on either server and nothing of it is committed, even when two
//! uploads race for the last room on two servers; a delete on one server
//! frees room on the other; the usage survives restarting both servers
//! (the database row is the truth, not a new measurement) and is measured
//! again once its row is deleted; the database down during an upload gives
//! 451 (RFC 959 §4.2, "local error in processing") and leaves the old
//! content, and uploads work again once it is back.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use ftps_proto::reply::Reply;
use ftps_testing::client::{data_tls, read_all, tcp_connect, within, Client, Setup, TlsData};
use ftps_testing::services::postgres::Postgres;
use ftps_testing::{password_hash, random_bytes, require_tool, TestServer, USER};
use tokio::io::AsyncWriteExt;

const QUOTA_BYTES: u64 = 1_000_000;

fn start_pg() -> Option<Postgres> {
    if !require_tool("psql") {
        return None;
    }
    let pg = Postgres::start()?;
    pg.psql("postgres", ftps_server::database::SCHEMA_SQL);
    Some(pg)
}

/// A server whose accounts (and so quota usage) are in `pg`.
fn server(pg: &Postgres) -> TestServer {
    let url = pg.url("postgres");
    TestServer::start_with(move |c| {
        c.users.clear();
        c.database.url = Some(url);
        c.database.timeout_secs = 2;
    })
}

/// `USER` with root `root` and a quota of [`QUOTA_BYTES`].
fn add_user(pg: &Postgres, root: &Path) {
    pg.psql(
        "postgres",
        &format!(
            "INSERT INTO ftps_users (name, password_hash, root, settings) \
             VALUES ('{USER}', '{}', '{}', '{{\"quota_bytes\": {QUOTA_BYTES}}}')",
            password_hash(),
            root.display()
        ),
    );
}

/// The user's row in `ftps_usage`: "bytes|files", or "" when there is none.
fn recorded(pg: &Postgres) -> String {
    pg.psql(
        "postgres",
        &format!("SELECT bytes || '|' || files FROM ftps_usage WHERE name = '{USER}'"),
    )
    .trim()
    .to_owned()
}

/// An upload started: 150 received, the data connection open.
async fn begin(c: &mut Client, command: &str) -> Result<TlsData, Reply> {
    let addr = c.epsv().await;
    c.send(command).await;
    let first = c.read_reply().await;
    if first.code != 150 {
        return Err(first);
    }
    let tcp = tcp_connect(addr).await;
    Ok(data_tls(tcp, &c.config()).await.unwrap())
}

/// Send the rest, close with close_notify, and read the final reply.
async fn finish(c: &mut Client, mut tls: TlsData, data: &[u8]) -> Reply {
    // The server stops reading once the quota is crossed: a failed write
    // is expected then.
    if tls.write_all(data).await.is_ok() && tls.shutdown().await.is_ok() {
        let _ = read_all(&mut tls).await;
    }
    drop(tls);
    c.read_reply().await
}

async fn upload(c: &mut Client, command: &str, data: &[u8]) -> u16 {
    match begin(c, command).await {
        Ok(tls) => finish(c, tls, data).await.code,
        Err(reply) => reply.code,
    }
}

async fn session(server: &TestServer) -> Client {
    Client::session(server, Setup::explicit().type_i()).await
}

#[tokio::test]
async fn uploads_through_two_servers_count_together_and_deletes_free_room_on_the_other() {
    let Some(pg) = start_pg() else { return };
    let root = tempfile::tempdir().unwrap();
    add_user(&pg, root.path());
    let (a, b) = (server(&pg), server(&pg));
    within(60, async {
        let mut on_a = session(&a).await;
        let mut on_b = session(&b).await;
        assert_eq!(
            upload(&mut on_a, "STOR one", &random_bytes(600_000)).await,
            226
        );
        assert_eq!(recorded(&pg), "600000|1");
        // Server B sees A's upload: 600,000 more would cross.
        assert_eq!(
            upload(&mut on_b, "STOR two", &random_bytes(600_000)).await,
            552
        );
        assert!(!root.path().join("two").exists(), "nothing of it stays");
        assert_eq!(recorded(&pg), "600000|1");
        assert_eq!(
            upload(&mut on_b, "STOR two", &random_bytes(300_000)).await,
            226
        );
        assert_eq!(recorded(&pg), "900000|2");
        // A delete on B frees room on A.
        on_b.expect("DELE one", 250).await;
        assert_eq!(recorded(&pg), "300000|1");
        let mut on_a = session(&a).await;
        assert_eq!(
            upload(&mut on_a, "STOR three", &random_bytes(700_000)).await,
            226
        );
        assert_eq!(recorded(&pg), "1000000|2");
        // A rename on A that replaces a file: the row follows.
        on_a.expect("RNFR two", 350).await;
        on_a.expect("RNTO three", 250).await;
        assert_eq!(recorded(&pg), "300000|1");
    })
    .await;
}

#[tokio::test]
async fn two_uploads_racing_for_the_last_room_on_two_servers_never_both_commit() {
    let Some(pg) = start_pg() else { return };
    let root = tempfile::tempdir().unwrap();
    add_user(&pg, root.path());
    let (a, b) = (server(&pg), server(&pg));
    within(60, async {
        let mut on_a = session(&a).await;
        let mut on_b = session(&b).await;
        // Both start with the whole quota free on their server.
        let first = begin(&mut on_a, "STOR first").await.unwrap();
        let second = begin(&mut on_b, "STOR second").await.unwrap();
        let data = random_bytes(600_000);
        assert_eq!(finish(&mut on_a, first, &data).await.code, 226);
        let refused = finish(&mut on_b, second, &data).await;
        assert_eq!(refused.code, 552, "{}", on_b.dialogue());
        assert!(!root.path().join("second").exists(), "nothing of it stays");
        assert_eq!(
            std::fs::read(root.path().join("first")).unwrap().len(),
            600_000
        );
        assert_eq!(recorded(&pg), "600000|1");
    })
    .await;
    assert!(b.metrics_text().contains("ftps_quota_refusals_total 1\n"));
}

#[tokio::test]
async fn usage_survives_restarting_both_servers_and_is_measured_again_once_its_row_is_deleted() {
    let Some(pg) = start_pg() else { return };
    let root = tempfile::tempdir().unwrap();
    add_user(&pg, root.path());
    std::fs::write(root.path().join("before"), random_bytes(100_000)).unwrap();
    let (a, b) = (server(&pg), server(&pg));
    within(60, async {
        // The first change measures the tree once: 100,000 + 500,000.
        let mut on_a = session(&a).await;
        assert_eq!(
            upload(&mut on_a, "STOR one", &random_bytes(500_000)).await,
            226
        );
        assert_eq!(recorded(&pg), "600000|2");
        let mut on_b = session(&b).await;
        on_b.expect("DELE before", 250).await;
        assert_eq!(recorded(&pg), "500000|1");
    })
    .await;
    drop((a, b));
    // Written outside FTP while both are down: the row, not a new
    // measurement, is the usage after the restart.
    std::fs::write(root.path().join("outside"), random_bytes(300_000)).unwrap();
    let (a, b) = (server(&pg), server(&pg));
    within(60, async {
        let mut on_b = session(&b).await;
        assert_eq!(
            upload(&mut on_b, "STOR two", &random_bytes(600_000)).await,
            552
        );
        assert_eq!(
            upload(&mut on_b, "STOR two", &random_bytes(400_000)).await,
            226
        );
        assert_eq!(recorded(&pg), "900000|2");
    })
    .await;
    // The documented way to measure again: delete the row.
    pg.psql(
        "postgres",
        &format!("DELETE FROM ftps_usage WHERE name = '{USER}'"),
    );
    within(60, async {
        let mut on_a = session(&a).await;
        // one 500,000 + outside 300,000 + two 400,000 = 1,200,000: over.
        assert_eq!(upload(&mut on_a, "STOR three", b"x").await, 552);
        assert_eq!(recorded(&pg), "1200000|3");
        let mut on_b = session(&b).await;
        on_b.expect("DELE outside", 250).await;
        assert_eq!(recorded(&pg), "900000|2");
        assert_eq!(upload(&mut on_a, "STOR three", b"x").await, 226);
        assert_eq!(recorded(&pg), "900001|3");
    })
    .await;
}

#[tokio::test]
async fn the_database_down_during_an_upload_is_451_and_the_old_content_stays() {
    let Some(mut pg) = start_pg() else { return };
    let root = tempfile::tempdir().unwrap();
    add_user(&pg, root.path());
    let old = random_bytes(100_000);
    std::fs::write(root.path().join("file"), &old).unwrap();
    let a = server(&pg);
    within(60, async {
        let mut c = session(&a).await;
        assert_eq!(upload(&mut c, "STOR new", &random_bytes(1_000)).await, 226);
        // Down mid-upload: the claim at the end cannot be made.
        let running = begin(&mut c, "STOR file").await.unwrap();
        pg.stop();
        let reply = finish(&mut c, running, &random_bytes(200_000)).await;
        assert_eq!(reply.code, 451, "{}", c.dialogue());
        assert_eq!(std::fs::read(root.path().join("file")).unwrap(), old);
        // Down when an upload begins: refused before any data connection
        // (the same session: a login needs the database too).
        c.epsv().await;
        c.expect("STOR other", 451).await;
        assert!(!root.path().join("other").exists());
        pg.start_again();
        let mut c = session(&a).await;
        assert_eq!(
            upload(&mut c, "STOR file", &random_bytes(200_000)).await,
            226
        );
        assert_eq!(recorded(&pg), "201000|2");
    })
    .await;
}
