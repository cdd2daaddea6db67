//! Policy, per user and for anonymous users (RFC 4217 §10.1, §10.2): the
//! anonymous account is off by default; when on it is read-only and may be
//! required to use TLS or refused it; a user's policy overrides the global
//! one (PROT C allowed for one user only).
#![allow(clippy::unwrap_used)]

use ftps_server::config::{AnonymousTls, PolicyOverride, UserSection};
use ftps_testing::client::{self, config_default, within, Client, Setup};
use ftps_testing::{password_hash, TestServer, PASSWORD};

#[tokio::test]
async fn anonymous_is_off_by_default() {
    within(30, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit()).await;
        c.expect_replies(&[("USER anonymous", 331), ("PASS guest@example.com", 530)])
            .await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s10_1_anonymous_read_only_and_tls_modes() {
    within(60, async {
        let public = tempfile::tempdir().unwrap();
        std::fs::write(public.path().join("readme.txt"), b"public").unwrap();
        let root = public.path().to_path_buf();
        let server = TestServer::start_with(move |cfg| {
            cfg.anonymous.enabled = true;
            cfg.anonymous.root = Some(root);
            cfg.anonymous.tls = AnonymousTls::Refuse;
        });
        // Refused over TLS ...
        let mut c = Client::session(&server, Setup::explicit()).await;
        c.expect("USER anonymous", 530).await;
        // ... allowed in plaintext, read-only, PROT C data.
        let mut c = Client::connect(server.explicit).await;
        c.expect_replies(&[
            ("USER anonymous", 331),
            ("PASS guest@example.com", 230),
            ("MKD x", 550),
            ("DELE readme.txt", 550),
        ])
        .await;
        let addr = c.pasv().await;
        c.send("RETR readme.txt").await;
        let mut data = client::tcp_connect(addr).await;
        c.expect_reply(150).await;
        let got = client::read_all(&mut data).await.unwrap();
        c.expect_reply(226).await;
        assert_eq!(got, b"public");
        assert!(!public.path().join("x").exists());
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s10_2_per_user_policy_overrides_global() {
    within(60, async {
        let extra_root = tempfile::tempdir().unwrap();
        std::fs::write(extra_root.path().join("f"), b"clear data").unwrap();
        let root = extra_root.path().to_path_buf();
        let server = TestServer::start_with(move |cfg| {
            cfg.users.push(UserSection {
                name: "bob".into(),
                password_hash: password_hash().into(),
                root: Some(root),
                s3: None,
                write: false,
                policy: PolicyOverride {
                    require_prot_p: Some(false),
                    ..Default::default()
                },
                auth: Default::default(),
                certificate: Default::default(),
            });
        });
        std::fs::write(server.path("f"), b"alice's").unwrap();
        let config = config_default(&server.cert_pem);
        // alice: global policy, PROT C refused with 521.
        let mut a = Client::secure(server.explicit, &config).await;
        a.login().await;
        a.expect_replies(&[("PBSZ 0", 200), ("PROT C", 200)]).await;
        a.pasv().await;
        a.expect("RETR f", 521).await;
        // bob: PROT C allowed for him, and read-only.
        let mut b = Client::secure(server.explicit, &config).await;
        b.login_as("bob", PASSWORD).await;
        b.expect_replies(&[("PBSZ 0", 200), ("PROT C", 200)]).await;
        let addr = b.pasv().await;
        b.send("RETR f").await;
        let mut data = client::tcp_connect(addr).await;
        b.expect_reply(150).await;
        let got = client::read_all(&mut data).await.unwrap();
        b.expect_reply(226).await;
        assert_eq!(got, b"clear data");
        b.expect("MKD new", 550).await;
    })
    .await;
}

/// RFC 2577 §5: repeated failed logins from one address ban it for a while;
/// the banned address is refused at connect with 421, before any TLS work.
#[tokio::test]
async fn rfc2577_s5_failed_logins_ban_the_address() {
    within(60, async {
        let server = TestServer::start_with(|cfg| {
            cfg.server.ban_after_failures = 3;
            cfg.server.failed_login_delay_ms = 1;
        });
        let config = config_default(&server.cert_pem);
        for _ in 0..3 {
            let mut c = Client::secure(server.explicit, &config).await;
            c.expect_replies(&[("USER alice", 331), ("PASS wrong", 530)])
                .await;
        }
        // The next connection gets a plaintext 421 instead of the greeting.
        let mut raw = tokio::net::TcpStream::connect(server.explicit)
            .await
            .unwrap();
        let mut buf = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut buf)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("421 "), "{text}");
    })
    .await;
}

/// Wrong passwords in one session: 530 each, the delay grows, and the third
/// closes the connection (RFC 2577 §5).
#[tokio::test]
async fn rfc2577_s5_failed_login_delay_grows() {
    within(60, async {
        let server = TestServer::start_with(|cfg| {
            cfg.server.failed_login_delay_ms = 100;
            cfg.server.ban_after_failures = 0;
        });
        let mut c = Client::session(&server, Setup::explicit()).await;
        let mut delays = Vec::new();
        for _ in 0..2 {
            c.expect("USER alice", 331).await;
            let start = std::time::Instant::now();
            c.expect("PASS wrong", 530).await;
            delays.push(start.elapsed());
        }
        assert!(
            delays[0] >= std::time::Duration::from_millis(100),
            "{delays:?}"
        );
        assert!(
            delays[1] >= std::time::Duration::from_millis(200),
            "{delays:?}"
        );
        c.expect_replies(&[("USER alice", 331), ("PASS wrong", 530)])
            .await;
        c.expect_closed().await;
    })
    .await;
}
