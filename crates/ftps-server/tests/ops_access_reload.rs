//! Access rules and live reload, each refusing and then allowing the same
//! thing: a global deny refuses at connect, before any TLS work (421 in
//! plain text on an explicit listener, a plain close on an implicit one),
//! until a reload lifts it; a user's deny fails the login (530) until a
//! reload; a per-directory rule refuses DELE with 550, and a reload allows
//! it for new sessions while the running session keeps its rules; a broken
//! configuration is refused and the running one stays; a key that needs a
//! restart keeps its value.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ftps_server::config::{DirRule, Permission};
use ftps_testing::client::{config_default, tls_connect, within, Client, Setup};
use ftps_testing::{TestServer, PASSWORD, USER};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

fn deny_loopback(c: &mut ftps_server::config::Config) {
    c.access.deny = vec!["127.0.0.0/8".parse().unwrap()];
}

#[tokio::test]
async fn a_global_deny_refuses_at_connect_before_tls_until_a_reload_lifts_it() {
    let server = TestServer::start_with(deny_loopback);
    within(30, async {
        let mut tcp = TcpStream::connect(server.explicit).await.unwrap();
        let mut said = Vec::new();
        tcp.read_to_end(&mut said).await.unwrap();
        assert_eq!(
            said,
            b"421 Connections from your address are not allowed.\r\n"
        );
        // Implicit: closed without a TLS handshake.
        let tcp = TcpStream::connect(server.implicit).await.unwrap();
        assert!(tls_connect(tcp, &config_default(&server.cert_pem))
            .await
            .is_err());
    })
    .await;
    assert!(server
        .metrics_text()
        .contains("ftps_access_refusals_total{where=\"connect\"} 2\n"));
    server.reload_with(|c| c.access.deny.clear()).unwrap();
    within(30, async {
        let mut c = Client::session(&server, Setup::explicit()).await;
        c.expect("NOOP", 200).await;
    })
    .await;
}

#[tokio::test]
async fn a_users_deny_fails_the_login_until_a_reload_lifts_it() {
    let deny = |c: &mut ftps_server::config::Config| {
        c.users[0].deny = vec!["127.0.0.1".parse().unwrap()];
        c.server.max_login_failures = 5;
    };
    let server = TestServer::start_with(deny);
    within(30, async {
        let mut c = Client::session(&server, Setup::explicit().tls_only()).await;
        c.expect(&format!("USER {USER}"), 331).await;
        c.expect(&format!("PASS {PASSWORD}"), 530).await;
    })
    .await;
    // (The reload starts from the configuration the server started with.)
    server.reload_with(|c| c.users[0].deny.clear()).unwrap();
    within(30, async {
        let mut c = Client::session(&server, Setup::explicit()).await;
        c.expect("PWD", 257).await;
    })
    .await;
}

fn rule(path: &str, permissions: &[Permission]) -> DirRule {
    DirRule {
        path: path.into(),
        permissions: permissions.to_vec(),
    }
}

#[tokio::test]
async fn a_directory_rule_refuses_with_550_and_a_reload_allows_new_sessions() {
    use Permission::*;
    let server = TestServer::start_with(|c| {
        c.users[0].write = false;
        c.users[0].rules = vec![rule("/in", &[List, Upload, Mkdir])];
    });
    std::fs::create_dir(server.path("in")).unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(server.path(&format!("in/{name}")), name).unwrap();
    }
    std::fs::write(server.path("top"), "top").unwrap();
    let mut running = within(30, async {
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        c.expect_replies(&[
            ("DELE in/a", 550),
            ("MKD in/new", 257),
            ("MKD elsewhere", 550),
            ("RNFR top", 350),
            ("RNTO in/top", 550),
            ("DELE top", 550),
        ])
        .await;
        c.stor("in/up", b"data").await;
        // Overwriting needs `overwrite`.
        c.epsv().await;
        c.expect("STOR in/up", 550).await;
        c
    })
    .await;
    assert!(server.path("in/a").exists() && server.path("in/new").is_dir());
    server
        .reload_with(|c| {
            c.users[0].write = false;
            c.users[0].rules = vec![rule("/in", &[List, Upload, Mkdir, Delete])];
        })
        .unwrap();
    within(30, async {
        // The running session keeps its rules ...
        running.expect("DELE in/a", 550).await;
        // ... a new one has the new ones.
        let mut c = Client::session(&server, Setup::explicit()).await;
        c.expect_replies(&[("DELE in/a", 250), ("DELE top", 550)])
            .await;
    })
    .await;
    assert!(!server.path("in/a").exists());
    // A broken configuration is refused; the running one stays.
    let broken = server.reload_with(|c| {
        c.users[0].rules = vec![rule("no-slash", &[Delete])];
    });
    let error = broken.unwrap_err().to_string();
    assert!(error.contains("users[0].rules[0].path"), "{error}");
    within(30, async {
        let mut c = Client::session(&server, Setup::explicit()).await;
        c.expect_replies(&[("DELE in/b", 250), ("DELE top", 550)])
            .await;
    })
    .await;
    let text = server.metrics_text();
    assert!(
        text.contains("ftps_config_reloads_total{outcome=\"ok\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("ftps_config_reloads_total{outcome=\"failed\"} 1\n"));
}

#[tokio::test]
async fn keys_that_need_a_restart_keep_their_value_on_reload() {
    let server = TestServer::start();
    let before = server.explicit;
    server
        .reload_with(|c| {
            c.server.listen = vec!["127.0.0.1:1".parse().unwrap()];
            c.server.banner = "reloaded banner".into();
        })
        .unwrap();
    within(30, async {
        let mut tcp = TcpStream::connect(before).await.unwrap();
        let mut greeting = vec![0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut greeting))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&greeting[..n], b"220 reloaded banner\r\n");
    })
    .await;
}
