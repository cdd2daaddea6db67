//! Policy, per user and for anonymous users (RFC 4217 §10.1, §10.2): the
//! anonymous account is off by default; when on it is read-only and may be
//! required to use TLS or refused it; a user's policy overrides the global
//! one (PROT C allowed for one user only).
#![allow(clippy::unwrap_used)]

#[path = "common/client.rs"]
mod client;
mod common;

use client::{config_default, within, Client};
use common::*;
use ftps_server::config::{AnonymousTls, PolicyOverride, UserSection};

#[tokio::test]
async fn anonymous_is_off_by_default() {
    within(30, async {
        let server = TestServer::start();
        let config = config_default(&server.cert_pem);
        let mut c = Client::secure(server.explicit, &config).await;
        c.expect("USER anonymous", 331).await;
        c.expect("PASS guest@example.com", 530).await;
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
        let config = config_default(&server.cert_pem);
        // Refused over TLS ...
        let mut c = Client::secure(server.explicit, &config).await;
        c.expect("USER anonymous", 530).await;
        // ... allowed in plaintext, read-only, PROT C data.
        let mut c = Client::connect(server.explicit).await;
        c.expect("USER anonymous", 331).await;
        c.expect("PASS guest@example.com", 230).await;
        c.expect("MKD x", 550).await;
        c.expect("DELE readme.txt", 550).await;
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
                root,
                write: false,
                policy: PolicyOverride {
                    require_prot_p: Some(false),
                    ..Default::default()
                },
            });
        });
        std::fs::write(server.path("f"), b"alice's").unwrap();
        let config = config_default(&server.cert_pem);
        // alice: global policy, PROT C refused with 521.
        let mut a = Client::secure(server.explicit, &config).await;
        a.login().await;
        a.expect("PBSZ 0", 200).await;
        a.expect("PROT C", 200).await;
        a.pasv().await;
        a.expect("RETR f", 521).await;
        // bob: PROT C allowed for him, and read-only.
        let mut b = Client::secure(server.explicit, &config).await;
        b.login_as("bob", PASSWORD).await;
        b.expect("PBSZ 0", 200).await;
        b.expect("PROT C", 200).await;
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
