//! Protocol-level security tests: the real server on loopback, driven byte by
//! byte by the raw client of `ftps_testing::client`.
//!
//! Covered: RFC 4217 §4 (AUTH TLS, the STARTTLS command-injection defence,
//! second AUTH), §5 (CCC: 533, 534, and clearing with close_notify), §9
//! (PBSZ/PROT sequencing and levels), §10.1 (TLS required before USER, failed
//! control handshakes: plaintext 421 vs. silent close), §13 (REIN clears TLS);
//! RFC 2228 §3 (AUTH/PROT reply codes 504, 536); draft-murray-auth-ftp-ssl
//! (AUTH TLS-C / SSL, implicit FTPS with PROT P by default); RFC 2389 (FEAT);
//! RFC 959 §4.2 (421 on shutdown, 500 for an overlong line, 530) and RFC 2577
//! §5 (closing after repeated login failures).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ftps_testing::client::{self, within, Client, Next, Setup};
use ftps_testing::{write_random, TestServer, PASSWORD, USER};

/// A second, well-behaved client logs in and downloads a file byte for byte.
async fn assert_server_healthy(server: &TestServer) {
    let data = write_random(&server.path("health.bin"), 200_003);
    let mut c = Client::session(server, Setup::explicit().type_i()).await;
    let got = c.retr("health.bin").await;
    c.check(got == data, "health.bin downloaded with wrong content");
    c.expect("QUIT", 221).await;
}

#[tokio::test]
async fn rfc4217_s4_auth_tls_is_234_then_handshake() {
    within(60, async {
        let server = TestServer::start();
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::connect(server.explicit).await;
        c.expect("AUTH TLS", 234).await;
        c.check(!c.is_tls(), "still plaintext right after 234");
        c.start_tls(&config).await.unwrap();
        c.check(c.is_tls(), "TLS after the handshake");
        let version = c.stream.tls().unwrap().protocol_version();
        c.check(version.is_some(), "a TLS version was negotiated");
        // The session goes on over TLS: login and PBSZ/PROT work.
        c.login().await;
        c.pbsz_prot_p().await;
        c.expect("NOOP", 200).await;
    })
    .await;
}

#[tokio::test]
async fn draft_auth_tls_c_is_234_and_keeps_data_clear() {
    within(60, async {
        let server = TestServer::start();
        std::fs::write(server.path("a.txt"), b"abc").unwrap();
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::connect(server.explicit).await;
        c.auth("TLS-C", &config).await;
        c.login().await;
        // TLS-C leaves the data protection at Clear: refused by the PROT P policy.
        c.pasv().await;
        c.expect("LIST", 521).await;
        c.pbsz_prot_p().await;
        let listing = c.download(b"LIST").await;
        c.check(
            String::from_utf8_lossy(&listing).contains("a.txt"),
            "LIST shows a.txt",
        );
    })
    .await;
}

#[tokio::test]
async fn draft_auth_ssl_makes_data_private_without_pbsz_prot() {
    within(60, async {
        let server = TestServer::start();
        std::fs::write(server.path("listed.txt"), b"abc").unwrap();
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::connect(server.explicit).await;
        c.auth("SSL", &config).await;
        c.login().await;
        // No PBSZ, no PROT: data is already Private.
        let addr = c.pasv().await;
        c.send("LIST").await;
        c.expect_reply(150).await;
        let tcp = client::tcp_connect(addr).await;
        let mut tls = client::data_tls(tcp, &config).await.unwrap();
        let listing = client::read_all(&mut tls).await.unwrap();
        c.expect_reply(226).await;
        c.check(
            String::from_utf8_lossy(&listing).contains("listed.txt"),
            "LIST over the private data connection shows listed.txt",
        );
    })
    .await;
}

#[tokio::test]
async fn rfc2228_unknown_auth_mechanism_is_504() {
    within(60, async {
        let server = TestServer::start();
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::connect(server.explicit).await;
        c.expect_replies(&[("AUTH KERBEROS_V4", 504), ("AUTH GSSAPI", 504)])
            .await;
        c.check(!c.is_tls(), "still plaintext");
        // Nothing happened: AUTH TLS still works.
        c.auth_tls(&config).await;
        c.login().await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s4_second_auth_over_tls_is_503() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit().tls_only()).await;
        c.expect_replies(&[
            ("AUTH TLS", 503),
            ("AUTH SSL", 503),
            // The TLS session is intact.
            ("NOOP", 200),
        ])
        .await;
        c.login().await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s10_1_user_before_tls_is_530() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::connect(server.explicit).await;
        c.expect(&format!("USER {USER}"), 530).await;
        let reply = c.cmd(&format!("PASS {PASSWORD}")).await;
        c.check(reply.code != 230, "no login without TLS");
        c.expect("PWD", 530).await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s9_pbsz_before_auth_is_503() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::connect(server.explicit).await;
        c.expect_replies(&[("PBSZ 0", 503), ("PROT P", 503)]).await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s9_pbsz_nonzero_is_answered_pbsz_0() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit().tls_only()).await;
        let reply = c.expect("PBSZ 10", 200).await;
        c.check(
            reply.text().contains("PBSZ=0"),
            "PBSZ 10 must be answered 200 PBSZ=0",
        );
        // PBSZ counted: PROT is accepted now.
        c.expect("PROT P", 200).await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s9_prot_before_pbsz_is_503() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit().tls_only()).await;
        c.expect_replies(&[
            ("PROT P", 503),
            ("PROT C", 503),
            ("PBSZ 0", 200),
            ("PROT P", 200),
        ])
        .await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s9_prot_s_and_e_are_536() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit().tls_only()).await;
        c.expect_replies(&[
            ("PBSZ 0", 200),
            ("PROT S", 536),
            ("PROT E", 536),
            ("PROT P", 200),
        ])
        .await;
    })
    .await;
}

#[tokio::test]
async fn rfc2228_prot_unknown_level_is_504() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit().tls_only()).await;
        c.expect_replies(&[("PBSZ 0", 200), ("PROT Q", 504), ("PROT C", 200)])
            .await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s4_starttls_injection_is_never_executed() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::connect(server.explicit).await;
        // One write: the USER line sits in the server's buffer before TLS.
        c.send_raw(format!("AUTH TLS\r\nUSER {USER}\r\n").as_bytes())
            .await;
        c.expect_reply(234).await;
        match c.next().await {
            Next::Eof | Next::Error(_) => {}
            other => panic!(
                "plaintext pipelined after AUTH TLS must close the connection, got {other:?}\n{}",
                c.dialogue()
            ),
        }
        drop(c);
        assert_server_healthy(&server).await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s10_1_no_tls_after_234_is_plaintext_421_and_close() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::connect(server.explicit).await;
        c.expect("AUTH TLS", 234).await;
        c.send_raw(b"HELLO\r\n").await;
        c.expect_reply(421).await;
        c.expect_closed().await;
        drop(c);
        assert_server_healthy(&server).await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s10_1_failed_mid_handshake_closes_without_reply() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::connect(server.explicit).await;
        c.expect("AUTH TLS", 234).await;
        // A handshake record of 5 bytes holding a ClientHello of 1 byte: garbage.
        c.send_raw(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00])
            .await;
        let (bytes, closed) = c.read_raw_until_closed(Duration::from_secs(20)).await;
        c.check(closed, "the server must close after a failed handshake");
        // At most a TLS alert record (content type 21), never an FTP reply.
        c.check(
            bytes.is_empty() || bytes[0] == 0x15,
            &format!("no FTP reply after a failed handshake, got {bytes:02x?}"),
        );
        drop(c);
        assert_server_healthy(&server).await;
    })
    .await;
}

#[tokio::test]
async fn draft_implicit_tls_from_first_byte_with_prot_p_default() {
    within(60, async {
        let server = TestServer::start();
        std::fs::write(server.path("implicit.txt"), b"hello").unwrap();
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::connect_implicit(server.implicit, &config).await;
        c.check(c.is_tls(), "220 came over TLS");
        c.login().await;
        // No PBSZ/PROT: implicit FTPS defaults to PROT P.
        let listing = c.download(b"LIST").await;
        c.check(
            String::from_utf8_lossy(&listing).contains("implicit.txt"),
            "LIST shows implicit.txt",
        );
        c.expect("TYPE I", 200).await;
        let got = c.retr("implicit.txt").await;
        c.check(got == b"hello", "RETR content");
    })
    .await;
}

#[tokio::test]
async fn draft_implicit_port_refuses_plaintext() {
    within(60, async {
        let server = TestServer::start();
        let tcp = client::tcp_connect(server.implicit).await;
        let mut c = Client::from_stream(client::Control::Plain(tcp), server.implicit, None);
        // Nothing is sent in plaintext on the implicit port: no 220 greeting.
        c.send_raw(b"USER alice\r\n").await;
        let (bytes, closed) = c.read_raw_until_closed(Duration::from_secs(20)).await;
        c.check(closed, "the implicit port closes a plaintext client");
        c.check(
            !bytes.starts_with(b"220") && !bytes.starts_with(b"331"),
            &format!("no plaintext FTP reply on the implicit port: {bytes:02x?}"),
        );
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s5_ccc_refused_by_default_is_534() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit()).await;
        c.expect("CCC", 534).await;
        c.check(c.is_tls(), "still TLS");
        c.expect("NOOP", 200).await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s5_ccc_allowed_clears_control_and_prot_p_still_works() {
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.policy.allow_ccc = true);
        let data = write_random(&server.path("after-ccc.bin"), 100_000);
        let mut c = Client::session(&server, Setup::explicit()).await;
        c.expect("CCC", 200).await;
        // The server sends close_notify; we answer with ours and go on in plaintext.
        c.clear_tls().await;
        c.check(!c.is_tls(), "plaintext after CCC");
        c.expect_replies(&[
            ("NOOP", 200),
            ("PBSZ 0", 503),
            ("PROT P", 503),
            ("PROT C", 503),
        ])
        .await;
        // PROT P set before CCC still protects (and resumes on) data connections.
        c.expect("TYPE I", 200).await;
        let got = c.retr("after-ccc.bin").await;
        c.check(got == data, "RETR after CCC content");
        c.expect("QUIT", 221).await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s5_ccc_on_plaintext_is_533() {
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.policy.allow_ccc = true);
        let mut c = Client::connect(server.explicit).await;
        c.expect_replies(&[("CCC", 533), ("NOOP", 200)]).await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s13_rein_clears_tls_and_requires_auth_again() {
    within(60, async {
        let server = TestServer::start();
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::secure(server.explicit, &config).await;
        // 220 arrives protected, then the server's close_notify.
        c.expect("REIN", 220).await;
        c.clear_tls().await;
        c.check(!c.is_tls(), "plaintext after REIN");
        c.expect_replies(&[
            ("NOOP", 200),
            // As new: TLS required again before USER.
            (&format!("USER {USER}"), 530),
            ("PWD", 530),
        ])
        .await;
        c.auth_tls(&config).await;
        c.login().await;
        c.expect("PWD", 257).await;
    })
    .await;
}

#[tokio::test]
async fn rfc959_overlong_line_is_500_and_session_goes_on() {
    within(60, async {
        let server = TestServer::start();
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::connect(server.explicit).await;
        let long = format!("NOOP {}", "A".repeat(4995));
        assert_eq!(long.len(), 5000);
        c.expect(&long, 500).await;
        // Exactly one reply for the long line: the next one belongs to NOOP.
        c.expect("NOOP", 200).await;
        c.auth_tls(&config).await;
        c.login().await;
        let long = format!("CWD {}", "B".repeat(4996));
        c.expect(&long, 500).await;
        c.expect("PWD", 257).await;
    })
    .await;
}

fn feature_lines(reply: &ftps_proto::reply::Reply) -> Vec<String> {
    let n = reply.lines.len();
    reply
        .lines
        .iter()
        .take(n.saturating_sub(1))
        .skip(1)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

#[tokio::test]
async fn rfc2389_feat_lists_the_extensions() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::connect(server.explicit).await;
        let reply = c.expect("FEAT", 211).await;
        let lines = feature_lines(&reply);
        for line in &lines {
            c.check(
                line.starts_with(' ') && !line.starts_with("  "),
                &format!("feature line must start with one space: {line:?}"),
            );
        }
        let names: Vec<String> = lines.iter().map(|l| l.trim().to_string()).collect();
        for wanted in [
            "AUTH TLS",
            "PBSZ",
            "PROT",
            "EPRT",
            "EPSV",
            "MDTM",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
        ] {
            c.check(
                names.iter().any(|n| n == wanted),
                &format!("FEAT lacks {wanted}: {names:?}"),
            );
        }
        c.check(
            names.iter().any(|n| n.starts_with("MLST ")),
            &format!("FEAT lacks MLST: {names:?}"),
        );
        c.check(
            !names.iter().any(|n| n == "CCC"),
            "FEAT must not list CCC when it is refused",
        );
    })
    .await;
}

#[tokio::test]
async fn rfc2389_feat_lists_ccc_only_when_allowed() {
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.policy.allow_ccc = true);
        let mut c = Client::connect(server.explicit).await;
        let reply = c.expect("FEAT", 211).await;
        let names: Vec<String> = feature_lines(&reply)
            .iter()
            .map(|l| l.trim().to_string())
            .collect();
        c.check(
            names.iter().any(|n| n == "CCC"),
            &format!("FEAT lacks CCC: {names:?}"),
        );
    })
    .await;
}

#[tokio::test]
async fn rfc959_wrong_password_is_530() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit().tls_only()).await;
        c.expect_replies(&[
            (&format!("USER {USER}"), 331),
            ("PASS wrong", 530),
            ("PWD", 530),
        ])
        .await;
        // The right password still works afterwards.
        c.login().await;
        c.expect("PWD", 257).await;
    })
    .await;
}

#[tokio::test]
async fn rfc2577_s5_three_wrong_passwords_close_the_connection() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit().tls_only()).await;
        for _ in 0..3 {
            c.expect_replies(&[(&format!("USER {USER}"), 331), ("PASS wrong", 530)])
                .await;
        }
        c.expect_closed().await;
        drop(c);
        assert_server_healthy(&server).await;
    })
    .await;
}

#[tokio::test]
async fn rfc959_shutdown_sends_421_to_idle_clients() {
    within(60, async {
        let server = TestServer::start();
        let mut idle_tls = Client::session(&server, Setup::explicit()).await;
        let mut idle_plain = Client::connect(server.explicit).await;
        idle_plain.expect("NOOP", 200).await;
        // Dropping the handle stops the server (and joins its thread).
        let stopper = tokio::task::spawn_blocking(move || drop(server));
        idle_tls.expect_reply(421).await;
        idle_tls.expect_closed().await;
        idle_plain.expect_reply(421).await;
        idle_plain.expect_closed().await;
        stopper.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s5_ccc_command_right_after_client_close_notify_is_not_lost() {
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.policy.allow_ccc = true);
        let mut c = Client::session(&server, Setup::explicit()).await;
        c.expect("CCC", 200).await;
        // close_notify and the next plaintext command in one TCP write.
        c.clear_tls_then(b"NOOP\r\n").await;
        c.expect_reply(200).await;
        c.expect("PWD", 257).await;
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s13_rein_command_right_after_client_close_notify_is_not_lost() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit()).await;
        c.expect("REIN", 220).await;
        // close_notify and the next plaintext command in one TCP write.
        c.clear_tls_then(b"NOOP\r\n").await;
        c.expect_reply(200).await;
        c.expect(&format!("USER {USER}"), 530).await;
    })
    .await;
}
