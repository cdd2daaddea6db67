//! Rules that hold under attack and at the edges of a session's life, each
//! found broken once:
//!
//! * a ban holds for sessions opened before it (RFC 2577 §5): their PASS is
//!   421 and closes, even with the right password;
//! * a user whose root cannot be opened gets a 530 that says so, which is
//!   not counted as a wrong password;
//! * a download whose client stops reading is cut at about the stall limit,
//!   with a 426 that speaks of a stall, not of TLS close_notify;
//! * a passive port that no data command takes closes after
//!   `data_connect_timeout_secs`, with any connection it accepted;
//! * a transfer still running when the shutdown's grace period ends is
//!   answered (426, then 421) before its session closes;
//! * a protected upload without TLS close_notify is refused by default and
//!   kept where the policy accepts it (global, per listener, per user).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ftps_testing::client::{self, within, Client, Next, Setup};
use ftps_testing::{random_bytes, write_random, TestServer, PASSWORD, USER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 32 MiB of a repeating pattern (fast to write), more than socket buffers hold.
fn write_big(path: &std::path::Path) {
    let block = random_bytes(1 << 20);
    let mut data = Vec::with_capacity(32 << 20);
    for _ in 0..32 {
        data.extend_from_slice(&block);
    }
    std::fs::write(path, &data).unwrap();
}

#[tokio::test]
async fn rfc2577_s5_a_ban_holds_for_sessions_opened_before_it() {
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.server.ban_after_failures = 3);
        let config = client::config_default(&server.cert_pem);
        // Two sessions wait at PASS, opened before the ban.
        let mut waiting = Vec::new();
        for _ in 0..2 {
            let mut c = Client::open(server.explicit, &config, Setup::explicit().tls_only()).await;
            c.expect(&format!("USER {USER}"), 331).await;
            waiting.push(c);
        }
        // A third guesses until its address is banned.
        let mut guesser =
            Client::open(server.explicit, &config, Setup::explicit().tls_only()).await;
        for _ in 0..3 {
            guesser.cmd("USER alice").await;
            let r = guesser.cmd("PASS wrong").await;
            if r.code != 530 {
                break;
            }
        }
        // The right password from the banned address: refused, closed.
        for mut c in waiting {
            let r = c.cmd(&format!("PASS {PASSWORD}")).await;
            c.check(
                r.code == 421,
                &format!("PASS after the ban: {} {}", r.code, r.text()),
            );
            c.expect_closed().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_user_whose_root_is_missing_gets_a_530_that_says_so_and_no_ban() {
    within(60, async {
        let missing = tempfile::tempdir().unwrap().path().join("gone");
        let server = TestServer::start_with(move |cfg| {
            cfg.users[0].root = Some(missing);
            cfg.users[0].s3 = None;
            cfg.server.ban_after_failures = 2;
        });
        let config = client::config_default(&server.cert_pem);
        for _ in 0..3 {
            let mut c = Client::open(server.explicit, &config, Setup::explicit().tls_only()).await;
            c.expect(&format!("USER {USER}"), 331).await;
            let r = c.cmd(&format!("PASS {PASSWORD}")).await;
            c.check(
                r.code == 530 && r.text().contains("directory") && !r.text().contains("incorrect"),
                &format!("login to a missing root: {} {}", r.code, r.text()),
            );
        }
        // Not counted as wrong passwords: the address is not banned.
        let mut c = Client::open(server.explicit, &config, Setup::explicit().tls_only()).await;
        c.expect("NOOP", 200).await;
    })
    .await;
}

#[tokio::test]
async fn a_stalled_download_is_cut_at_the_stall_limit_with_a_426_about_the_stall() {
    within(90, async {
        let stall = 3;
        let server = TestServer::start_with(|cfg| cfg.server.transfer_stall_timeout_secs = stall);
        write_big(&server.path("big.bin"));
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let addr = c.epsv().await;
        c.send("RETR big.bin").await;
        c.expect_reply(150).await;
        let tcp = client::tcp_connect(addr).await;
        let mut tls = client::data_tls(tcp, &config).await.unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        tls.read_exact(&mut buf).await.unwrap();
        // Read no more.
        let stopped = Instant::now();
        let reply = c.read_reply().await;
        let took = stopped.elapsed();
        c.check(
            reply.code == 426,
            &format!("got {} {}", reply.code, reply.text()),
        );
        c.check(
            reply.text().contains("stalled") && !reply.text().contains("close_notify"),
            &format!("the 426 names the stall: {}", reply.text()),
        );
        // The socket buffers absorb some data after the client stopped
        // reading; the cut comes within the stall limit of the last chunk.
        c.check(
            took < Duration::from_secs(2 * stall + 2),
            &format!("cut after {took:?} with a {stall} s stall limit"),
        );
        drop(tls);
        c.expect("NOOP", 200).await;
    })
    .await;
}

#[tokio::test]
async fn an_unused_passive_port_closes_after_the_data_connect_timeout() {
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.server.data_connect_timeout_secs = 1);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        // A port nobody connects to.
        let idle = c.epsv().await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let refused = tokio::net::TcpStream::connect(idle).await;
        c.check(refused.is_err(), "the unused passive port still accepts");
        // A port the client connects to, without a data command after it.
        let early = c.epsv().await;
        let mut tcp = client::tcp_connect(early).await;
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut byte)).await;
        c.check(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            &format!("the accepted but unused data connection is not closed: {closed:?}"),
        );
        // The session goes on and transfers.
        let data = write_random(&server.path("f.bin"), 1000);
        let got = c.retr("f.bin").await;
        c.check(got == data, "a transfer afterwards");
    })
    .await;
}

#[tokio::test]
async fn a_transfer_running_when_the_grace_period_ends_is_answered_before_the_close() {
    within(60, async {
        let server = TestServer::start();
        write_big(&server.path("big.bin"));
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let addr = c.epsv().await;
        c.send("RETR big.bin").await;
        c.expect_reply(150).await;
        let tcp = client::tcp_connect(addr).await;
        let mut tls = client::data_tls(tcp, &config).await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        tls.read_exact(&mut buf).await.unwrap();
        // Stop the server (grace period 2 s) while the download waits.
        let stopping = tokio::task::spawn_blocking(move || drop(server));
        let first = c.next_within(Duration::from_secs(15)).await;
        let second = c.next_within(Duration::from_secs(5)).await;
        match (&first, &second) {
            (Next::Reply(a), Next::Reply(b)) => {
                c.check(
                    a.code == 426 && a.text().contains("shutting down"),
                    &format!("the transfer's reply: {} {}", a.code, a.text()),
                );
                c.check(b.code == 421, &format!("then: {} {}", b.code, b.text()));
            }
            other => panic!("expected 426 then 421, got {other:?}\n{}", c.dialogue()),
        }
        drop(tls);
        stopping.await.unwrap();
    })
    .await;
}

/// Upload `data` with PROT P and close the data connection without TLS
/// close_notify; the final reply.
async fn upload_without_close_notify(c: &mut Client, name: &str, data: &[u8]) -> u16 {
    let config = c.config();
    let addr = c.epsv().await;
    c.send(&format!("STOR {name}")).await;
    c.expect_reply(150).await;
    let tcp = client::tcp_connect(addr).await;
    let mut tls = client::data_tls(tcp, &config).await.unwrap();
    tls.write_all(data).await.unwrap();
    tls.flush().await.unwrap();
    // A bare TCP close: no close_notify.
    let (mut tcp, _) = tls.into_inner();
    tcp.shutdown().await.unwrap();
    drop(tcp);
    c.read_reply().await.code
}

#[tokio::test]
async fn upload_without_close_notify_is_refused_by_default_and_kept_when_accepted() {
    within(60, async {
        let data = random_bytes(300_000);
        // Default: 426, and an existing file keeps its content.
        let server = TestServer::start();
        std::fs::write(server.path("old.bin"), b"old").unwrap();
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let code = upload_without_close_notify(&mut c, "old.bin", &data).await;
        c.check(code == 426, &format!("default: {code}"));
        c.check(
            std::fs::read(server.path("old.bin")).unwrap() == b"old",
            "old content kept",
        );
        // Accepted globally, per listener, per user.
        type Adjust = Box<dyn FnOnce(&mut ftps_server::config::Config)>;
        let ways: Vec<(&str, Adjust)> = vec![
            (
                "global",
                Box::new(|cfg| cfg.policy.accept_upload_without_close_notify = true),
            ),
            (
                "listener",
                Box::new(|cfg| {
                    for l in &mut cfg.server.listen {
                        l.accept_upload_without_close_notify = Some(true);
                    }
                }),
            ),
            (
                "user",
                Box::new(|cfg| cfg.users[0].policy.accept_upload_without_close_notify = Some(true)),
            ),
        ];
        for (how, adjust) in ways {
            let server = TestServer::start_with(adjust);
            std::fs::write(server.path("old.bin"), b"old").unwrap();
            let mut c = Client::session(&server, Setup::explicit().type_i()).await;
            let code = upload_without_close_notify(&mut c, "old.bin", &data).await;
            c.check(code == 226, &format!("{how}: {code}"));
            c.check(
                std::fs::read(server.path("old.bin")).unwrap() == data,
                &format!("{how}: the upload replaced the file intact"),
            );
        }
        // A user's own `false` wins over the listener's `true`.
        let server = TestServer::start_with(|cfg| {
            for l in &mut cfg.server.listen {
                l.accept_upload_without_close_notify = Some(true);
            }
            cfg.users[0].policy.accept_upload_without_close_notify = Some(false);
        });
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let code = upload_without_close_notify(&mut c, "x.bin", &data).await;
        c.check(
            code == 426,
            &format!("user false over listener true: {code}"),
        );
    })
    .await;
}
