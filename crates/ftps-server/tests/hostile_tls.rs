//! Hostile TLS behaviour against the real server (in-process, loopback,
//! ephemeral ports):
//!
//! * PROT/PBSZ/CCC/REIN in every order after AUTH TLS (and on the implicit
//!   port), checked against a model of RFC 4217 §5, §9, §13 computed in the
//!   test, with `allow_ccc` on and off;
//! * plaintext pipelined after AUTH TLS (STARTTLS injection, RFC 4217 §4);
//! * garbage instead of a ClientHello on the control connection (RFC 4217
//!   §10.1: plaintext → 421, broken handshake → close) and on data
//!   connections (RFC 4217 §10.2: 522);
//! * TLS alerts, junk and resets in the middle of transfers (426, the session
//!   goes on, uploads never replace existing files with partial content);
//! * the control connection closed in the middle of a transfer;
//! * stalled TLS handshakes (control, implicit, data — also data TLS started
//!   before an upload command);
//! * data connections stolen by another client on the same host, and
//!   another session's TLS ticket offered on a data connection (522).
//!
//! Every case checks the exact reply (or the close) and that a second,
//! well-behaved client works while or after it happens. The count per group
//! is printed as `CASES <group>: N cases`.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftps_testing::client::{self, within, Client, Setup};
use ftps_testing::hostile::*;
use ftps_testing::{random_bytes, write_random, TestServer, PASSWORD, USER};
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ===========================================================================
// PROT / PBSZ / CCC / REIN in every order
// ===========================================================================

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sec {
    Tls,
    Cleared,
    Plain,
}

/// The expected control-connection state (RFC 4217 §5 CCC, §9 PBSZ/PROT,
/// §13 REIN; implicit FTPS: TLS from the start, PROT P by default).
#[derive(Clone, Debug)]
struct Model {
    sec: Sec,
    pbsz: bool,
    prot_p: bool,
    logged_in: bool,
    implicit: bool,
    allow_ccc: bool,
}

impl Model {
    fn new(implicit: bool, allow_ccc: bool) -> Model {
        Model {
            sec: Sec::Tls,
            pbsz: implicit,
            prot_p: implicit,
            logged_in: true,
            implicit,
            allow_ccc,
        }
    }

    /// The reply code `cmd` must get, and whether TLS is then cleared
    /// (close_notify, plaintext from then on).
    fn step(&mut self, cmd: &str) -> (u16, bool) {
        match cmd {
            // §9: PBSZ only on a protected control connection.
            "PBSZ 0" => {
                if self.sec == Sec::Tls {
                    self.pbsz = true;
                    (200, false)
                } else {
                    (503, false)
                }
            }
            // §9: PROT only after PBSZ, on a protected control connection.
            "PROT P" => {
                if self.sec == Sec::Tls && self.pbsz {
                    self.prot_p = true;
                    (200, false)
                } else {
                    (503, false)
                }
            }
            // §5 / RFC 2228: 533 when not protected, 534 when refused by policy.
            "CCC" => {
                if self.sec != Sec::Tls {
                    (533, false)
                } else if !self.allow_ccc {
                    (534, false)
                } else {
                    self.sec = Sec::Cleared;
                    (200, true)
                }
            }
            // §13: REIN flushes all state; on an explicit connection TLS is
            // cleared. An implicit connection stays TLS unless CCC already
            // made it plaintext: a plaintext connection must never be
            // treated as protected again.
            "REIN" => {
                self.logged_in = false;
                let clear = self.sec == Sec::Tls && !self.implicit;
                if self.implicit && self.sec == Sec::Tls {
                    self.pbsz = true;
                    self.prot_p = true;
                } else {
                    self.sec = Sec::Plain;
                    self.pbsz = false;
                    self.prot_p = false;
                }
                (220, clear)
            }
            other => panic!("no model for {other}"),
        }
    }
}

fn permutations(items: &[&'static str]) -> Vec<Vec<&'static str>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first);
            out.push(p);
        }
    }
    out
}

/// Every ordered selection of 1 to n of the items (4 + 12 + 24 + 24 = 64 for 4).
fn k_permutations(items: &[&'static str]) -> Vec<Vec<&'static str>> {
    let mut out = Vec::new();
    for mask in 1u32..(1 << items.len()) {
        let subset: Vec<&'static str> = items
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, s)| *s)
            .collect();
        out.extend(permutations(&subset));
    }
    out.sort_by_key(|p| (p.len(), p.join(",")));
    out
}

async fn permutation_row(
    server: &TestServer,
    config: &Arc<ClientConfig>,
    implicit: bool,
    allow_ccc: bool,
    perm: &[&str],
    data: &[u8],
) -> Result<(), String> {
    let (addr, setup) = if implicit {
        (server.implicit, Setup::implicit())
    } else {
        (server.explicit, Setup::explicit())
    };
    let mut c = Client::open(addr, config, setup.no_prot().type_i()).await;
    let mut m = Model::new(implicit, allow_ccc);
    for cmd in perm {
        let (want, clear) = m.step(cmd);
        let r = try_cmd(&mut c, cmd.as_bytes())
            .await
            .map_err(|e| format!("{e}\n{}", tail(&c, 10)))?;
        if r.code != want {
            return Err(format!(
                "{cmd}: expected {want}, got {} {:?} (model {m:?})\n{}",
                r.code,
                r.text(),
                tail(&c, 10)
            ));
        }
        if clear {
            c.clear_tls().await;
        }
    }
    // The connection is in sync and in the expected shape.
    expect_code(&mut c, b"NOOP", 200)
        .await
        .map_err(|e| format!("final NOOP: {e}\n{}", tail(&c, 10)))?;
    if c.is_tls() != (m.sec == Sec::Tls) {
        return Err(format!("client TLS {} but model {m:?}", c.is_tls()));
    }
    if m.logged_in {
        if m.prot_p {
            let a = attempt_expect(&mut c, b"RETR perm.bin", None, &[150, 226])
                .await
                .map_err(|e| format!("RETR with PROT P: {e}\n{}", tail(&c, 10)))?;
            if a.data != data {
                return Err("RETR content".into());
            }
        } else {
            expect_code(&mut c, b"RETR perm.bin", 521)
                .await
                .map_err(|e| format!("RETR without PROT P: {e}"))?;
        }
    } else {
        expect_code(&mut c, b"PWD", 530).await?;
        let user = format!("USER {USER}");
        if m.sec == Sec::Tls {
            expect_codes(
                &mut c,
                &[
                    (user.as_bytes(), 331),
                    (format!("PASS {PASSWORD}").as_bytes(), 230),
                    // REIN reset TYPE to A (RFC 959 §4.1.1).
                    (b"TYPE I", 200),
                ],
            )
            .await?;
            let a = attempt_expect(&mut c, b"RETR perm.bin", None, &[150, 226]).await?;
            if a.data != data {
                return Err("RETR content after REIN and a new login".into());
            }
        } else {
            // RFC 4217 §10.1 with require_tls: no password over plaintext.
            expect_code(&mut c, user.as_bytes(), 530)
                .await
                .map_err(|e| format!("USER on the plaintext connection after REIN: {e}"))?;
            expect_code(&mut c, b"PBSZ 0", 503).await?;
        }
    }
    Ok(())
}

async fn run_permutations(implicit: bool) {
    let mut cases = Cases::new(if implicit {
        "PROT/PBSZ/CCC/REIN permutations (implicit)"
    } else {
        "PROT/PBSZ/CCC/REIN permutations (explicit)"
    });
    for allow_ccc in [false, true] {
        let server = TestServer::start_with(|cfg| cfg.policy.allow_ccc = allow_ccc);
        let data = write_random(&server.path("perm.bin"), 33_333);
        let health = HealthLoop::for_server(&server);
        let config = client::config_default(&server.cert_pem);
        for perm in k_permutations(&["PBSZ 0", "PROT P", "CCC", "REIN"]) {
            let label = format!("allow_ccc={allow_ccc} {}", perm.join(", "));
            let result = permutation_row(&server, &config, implicit, allow_ccc, &perm, &data).await;
            cases.record(&label, result);
        }
        cases.record(
            &format!("allow_ccc={allow_ccc}: healthy while it happened"),
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
    }
    cases.finish();
}

#[tokio::test]
async fn prot_pbsz_ccc_rein_in_every_order_explicit() {
    let _lock = shared().await;
    within(600, run_permutations(false)).await;
}

#[tokio::test]
async fn prot_pbsz_ccc_rein_in_every_order_implicit() {
    let _lock = shared().await;
    within(600, run_permutations(true)).await;
}

// ===========================================================================
// Plaintext pipelined after AUTH TLS
// ===========================================================================

#[tokio::test]
async fn plaintext_pipelined_after_auth_is_never_executed() {
    let _lock = shared().await;
    within(120, async {
        let server = TestServer::start();
        let health = HealthLoop::for_server(&server);
        let mut cases = Cases::new("STARTTLS injection");
        let rows: Vec<(&str, &[u8], Vec<u16>)> = vec![
            ("AUTH TLS + USER", b"AUTH TLS\r\nUSER alice\r\n", vec![234]),
            ("AUTH TLS + NOOP", b"AUTH TLS\r\nNOOP\r\n", vec![234]),
            ("AUTH TLS + partial line", b"AUTH TLS\r\nUS", vec![234]),
            ("AUTH TLS + empty line", b"AUTH TLS\r\n\r\n", vec![234]),
            ("AUTH SSL + USER", b"AUTH SSL\r\nUSER alice\r\n", vec![234]),
            ("AUTH TLS-C + PASS", b"AUTH TLS-C\r\nPASS x\r\n", vec![234]),
            (
                "AUTH TLS with bare LF + NOOP",
                b"AUTH TLS\nNOOP\n",
                vec![234],
            ),
            (
                "NOOP, AUTH TLS, USER in one write",
                b"NOOP\r\nAUTH TLS\r\nUSER alice\r\n",
                vec![200, 234],
            ),
            (
                "AUTH TLS + DELE (destructive)",
                b"AUTH TLS\r\nDELE keep.txt\r\n",
                vec![234],
            ),
            ("AUTH TLS + QUIT", b"AUTH TLS\r\nQUIT\r\n", vec![234]),
        ];
        std::fs::write(server.path("keep.txt"), b"keep").unwrap();
        for (label, bytes, codes) in rows {
            let result = async {
                let mut c = Client::connect(server.explicit).await;
                c.send_raw(bytes).await;
                for code in &codes {
                    let r = next_reply(&mut c).await?;
                    if r.code != *code {
                        return Err(format!("expected {code}, got {} {:?}", r.code, r.text()));
                    }
                }
                let (rest, closed) = c.read_raw_until_closed(Duration::from_secs(10)).await;
                if !closed {
                    return Err(format!("not closed; got {}", show(&rest)));
                }
                if !rest.is_empty() {
                    return Err(format!(
                        "a reply to the pipelined plaintext: {}",
                        show(&rest)
                    ));
                }
                Ok(())
            }
            .await;
            cases.record(label, result);
        }
        cases.record(
            "pipelined DELE not executed",
            if server.path("keep.txt").exists() {
                Ok(())
            } else {
                Err("keep.txt deleted".into())
            },
        );
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

// ===========================================================================
// Garbage instead of a ClientHello
// ===========================================================================

#[derive(Clone, Copy, PartialEq, Debug)]
enum ControlEnd {
    /// Nothing was negotiated: unprotected 421, then close (RFC 4217 §10.1).
    Plain421,
    /// A broken handshake: close, at most a TLS alert, never an FTP reply.
    SilentClose,
}

/// Whether `bytes` are whole TLS records (handshake, alert, ...) and nothing
/// else: no FTP reply.
fn only_tls_records(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 5 || !(0x14..=0x17).contains(&rest[0]) || rest[1] != 0x03 {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if rest.len() < 5 + len {
            return false;
        }
        rest = &rest[5 + len..];
    }
    true
}

fn junk(len: usize, first: u8) -> Vec<u8> {
    let mut v = random_bytes(len);
    v[0] = first;
    v
}

#[tokio::test]
async fn garbage_instead_of_client_hello_on_control() {
    let _lock = shared().await;
    within(300, async {
        let server = TestServer::start();
        let hello = client_hello(&server.cert_pem);
        let health = HealthLoop::for_server(&server);
        let mut cases = Cases::new("garbage on control after 234");
        let rows: Vec<(&str, Vec<u8>, bool, ControlEnd)> = vec![
            (
                "plaintext HELLO",
                b"HELLO\r\n".to_vec(),
                false,
                ControlEnd::Plain421,
            ),
            (
                "an HTTP request",
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
                false,
                ControlEnd::Plain421,
            ),
            (
                "binary junk starting 00",
                vec![0, 1, 2, 3, 4, 5],
                false,
                ControlEnd::Plain421,
            ),
            (
                "USER (client ignoring 234)",
                b"USER alice\r\n".to_vec(),
                false,
                ControlEnd::Plain421,
            ),
            (
                "SSLv2-style hello (0x80)",
                vec![0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15],
                false,
                ControlEnd::Plain421,
            ),
            (
                "a TLS alert record first",
                FATAL_ALERT.to_vec(),
                false,
                ControlEnd::Plain421,
            ),
            (
                "0x16 + malformed ClientHello",
                vec![0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00],
                false,
                ControlEnd::SilentClose,
            ),
            (
                "0x16 + oversized record length",
                [&[0x16, 0x03, 0x03, 0xff, 0xff][..], &[0u8; 100]].concat(),
                false,
                ControlEnd::SilentClose,
            ),
            (
                "0x16 + 2000 random bytes",
                junk(2000, 0x16),
                false,
                ControlEnd::SilentClose,
            ),
            ("0x16 then FIN", vec![0x16], true, ControlEnd::SilentClose),
            (
                "half a real ClientHello then FIN",
                hello[..hello.len() / 2].to_vec(),
                true,
                ControlEnd::SilentClose,
            ),
            (
                "a real ClientHello then FIN",
                hello.clone(),
                true,
                ControlEnd::SilentClose,
            ),
            (
                "a real ClientHello, then a plaintext handshake record of junk",
                [&hello[..], &[0x16, 0x03, 0x03, 0x00, 0x04, 0xfe, 0x00, 0x00, 0x00]].concat(),
                false,
                ControlEnd::SilentClose,
            ),
            (
                "FIN right after 234",
                Vec::new(),
                true,
                ControlEnd::SilentClose,
            ),
        ];
        for (label, bytes, fin, end) in &rows {
            let result = async {
                let mut c = Client::connect(server.explicit).await;
                expect_code(&mut c, b"AUTH TLS", 234).await?;
                let started = Instant::now();
                if !bytes.is_empty() {
                    c.send_raw(bytes).await;
                }
                if *fin {
                    c.stream.shutdown().await.map_err(|e| e.to_string())?;
                }
                match end {
                    ControlEnd::Plain421 => {
                        let r = next_reply(&mut c).await?;
                        if r.code != 421 {
                            return Err(format!("expected 421, got {} {:?}", r.code, r.text()));
                        }
                        c.expect_closed().await;
                    }
                    ControlEnd::SilentClose => {
                        let (rest, closed) = c.read_raw_until_closed(Duration::from_secs(20)).await;
                        if !closed {
                            return Err(format!("not closed within 20 s; got {}", show(&rest)));
                        }
                        if !only_tls_records(&rest) { return Err(format!("an FTP reply (or other non-TLS bytes) after a broken handshake: {}", show(&rest)));
                        }
                        if started.elapsed() > Duration::from_secs(10) {
                            return Err(format!("closed only after {:?}", started.elapsed()));
                        }
                    }
                }
                Ok(())
            }
            .await;
            cases.record(&format!("explicit: {label}"), result);
        }
        // The implicit port: TLS from the first byte, so any garbage is a broken handshake.
        let implicit_rows: Vec<(&str, Vec<u8>, bool)> = vec![
            ("plaintext USER", b"USER alice\r\n".to_vec(), false),
            ("plaintext HELLO then FIN", b"HELLO\r\n".to_vec(), true),
            ("0x16 junk", junk(500, 0x16), false),
            ("a TLS alert", FATAL_ALERT.to_vec(), false),
            (
                "half a ClientHello then FIN",
                hello[..hello.len() / 2].to_vec(),
                true,
            ),
            ("FIN at once", Vec::new(), true),
        ];
        for (label, bytes, fin) in &implicit_rows {
            let result = async {
                let mut tcp = connect(server.implicit).await?;
                if !bytes.is_empty() {
                    tcp.write_all(bytes).await.map_err(|e| e.to_string())?;
                }
                if *fin {
                    tcp.shutdown().await.map_err(|e| e.to_string())?;
                }
                let mut got = Vec::new();
                let closed = tokio::time::timeout(Duration::from_secs(20), async {
                    let mut buf = [0u8; 512];
                    loop {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                })
                .await
                .is_ok();
                if !closed {
                    return Err("not closed within 20 s".into());
                }
                if !only_tls_records(&got) {
                    return Err(format!("bytes other than a TLS alert: {}", show(&got)));
                }
                Ok(())
            }
            .await;
            cases.record(&format!("implicit: {label}"), result);
        }
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

#[tokio::test]
async fn garbage_on_the_data_connection_is_522_and_the_session_goes_on() {
    let _lock = shared().await;
    within(300, async {
        let server = TestServer::start_with(|cfg| {
            cfg.server.tls_handshake_timeout_secs = 5;
            cfg.server.data_connect_timeout_secs = 5;
        });
        let root = server.root.path().to_path_buf();
        let secret = write_random(&server.path("secret.bin"), 50_000);
        let old = write_random(&server.path("existing.bin"), 30_000);
        let hello = client_hello(&server.cert_pem);
        let health = HealthLoop::for_server(&server);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut cases = Cases::new("garbage on data connections");
        // (label, bytes, how the client ends: 0 = FIN, 1 = RST)
        let junks: Vec<(&str, Vec<u8>, u8)> = vec![
            ("plaintext", b"hello\r\n".to_vec(), 0),
            ("an HTTP request", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 0),
            (
                "0x16 + malformed ClientHello",
                vec![0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00],
                0,
            ),
            (
                "0x16 + oversized record",
                [&[0x16, 0x03, 0x03, 0xff, 0xff][..], &[0u8; 64]].concat(),
                0,
            ),
            ("0x16 + 4096 random bytes", junk(4096, 0x16), 0),
            (
                "SSLv2-style hello",
                vec![0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15],
                0,
            ),
            ("a TLS alert record", FATAL_ALERT.to_vec(), 0),
            ("half a ClientHello", hello[..hello.len() / 2].to_vec(), 0),
            ("nothing, FIN at once", Vec::new(), 0),
            ("nothing, RST at once", Vec::new(), 1),
        ];
        for command in [
            "RETR secret.bin",
            "LIST",
            "STOR existing.bin",
            "STOR fresh.bin",
        ] {
            for (label, bytes, end) in &junks {
                let result = async {
                    let addr = epsv_addr(&mut c).await?;
                    expect_code(&mut c, command.as_bytes(), 150).await?;
                    let mut tcp = connect(addr).await?;
                    if !bytes.is_empty() {
                        let _ = tcp.write_all(bytes).await;
                    }
                    let mut got = Vec::new();
                    if *end == 1 {
                        reset(tcp);
                    } else {
                        let _ = tcp.shutdown().await;
                        let _ = tokio::time::timeout(
                            Duration::from_secs(10),
                            tcp.read_to_end(&mut got),
                        )
                        .await;
                    }
                    let r = next_reply_within(&mut c, Duration::from_secs(15)).await?;
                    if r.code != 522 {
                        return Err(format!("expected 522, got {} {:?}", r.code, r.text()));
                    }
                    if contains(&got, &secret[..32]) {
                        return Err("file data leaked on an unauthenticated data connection".into());
                    }
                    Ok(())
                }
                .await;
                let result = result.map_err(|e| format!("{e}\n{}", tail(&c, 6)));
                cases.record(&format!("{command}: {label}"), result);
            }
        }
        let files_ok = std::fs::read(root.join("existing.bin")).unwrap() == old
            && !root.join("fresh.bin").exists();
        cases.record(
            "uploads refused before any data: existing file intact, no new file",
            if files_ok {
                Ok(())
            } else {
                Err("files changed".into())
            },
        );
        let left = wait_no_temp_files(&root, Duration::from_secs(10)).await;
        cases.record(
            "no temp files left",
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            },
        );
        let got = c.retr("secret.bin").await;
        cases.record(
            "the same session downloads afterwards",
            if got == secret {
                Ok(())
            } else {
                Err("wrong content".into())
            },
        );
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

// ===========================================================================
// Alerts, junk and resets in the middle of transfers
// ===========================================================================

#[derive(Clone, Copy, Debug)]
enum Disrupt {
    /// RST.
    Reset,
    /// A plaintext fatal alert record, then RST.
    AlertThenReset,
    /// Junk bytes inside the TLS stream, then close.
    JunkThenClose,
    /// Close without close_notify (FIN, or RST with unread data).
    CloseNoNotify,
    /// For uploads: TCP FIN without close_notify (a truncation attack).
    FinNoNotify,
    /// For downloads: close_notify, then close with data unread.
    NotifyThenClose,
}

async fn disrupt(tls: client::TlsData, how: Disrupt) {
    match how {
        Disrupt::Reset => reset_tls(tls),
        Disrupt::AlertThenReset => {
            let (mut tcp, _) = tls.into_inner();
            let _ = tcp.write_all(&FATAL_ALERT).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            reset(tcp);
        }
        Disrupt::JunkThenClose => {
            let (mut tcp, _) = tls.into_inner();
            let _ = tcp.write_all(&junk(3000, 0x17)).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(tcp);
        }
        Disrupt::CloseNoNotify => {
            let (tcp, _) = tls.into_inner();
            drop(tcp);
        }
        Disrupt::FinNoNotify => {
            let (mut tcp, _) = tls.into_inner();
            let _ = tcp.shutdown().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop(tcp);
        }
        Disrupt::NotifyThenClose => {
            let mut tls = tls;
            tls.get_mut().1.send_close_notify();
            let _ = tls.flush().await;
            drop(tls);
        }
    }
}

#[tokio::test]
async fn alerts_and_resets_mid_transfer_are_426_and_the_session_goes_on() {
    let _lock = shared().await;
    within(300, async {
        let server = TestServer::start();
        let root = server.root.path().to_path_buf();
        let big = write_random(&server.path("big.bin"), 24 << 20);
        let health = HealthLoop::for_server(&server);
        let mut cases = Cases::new("disruptions mid-transfer");
        let configs: Vec<(&str, Arc<ClientConfig>)> = vec![
            ("TLS 1.2", client::config_tls12(&server.cert_pem)),
            ("TLS 1.3", client::config_tls13(&server.cert_pem)),
        ];
        for (version, config) in &configs {
            let mut c = Client::open(server.explicit, config, Setup::explicit().type_i()).await;
            for how in [
                Disrupt::Reset,
                Disrupt::AlertThenReset,
                Disrupt::JunkThenClose,
                Disrupt::CloseNoNotify,
                Disrupt::NotifyThenClose,
            ] {
                let result = async {
                    let addr = epsv_addr(&mut c).await?;
                    expect_code(&mut c, b"RETR big.bin", 150).await?;
                    let tcp = connect(addr).await?;
                    let mut tls = client::data_tls(tcp, &c.config())
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut buf = vec![0u8; 1 << 20];
                    tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
                    if buf != big[..buf.len()] {
                        return Err("download content before the disruption".into());
                    }
                    disrupt(tls, how).await;
                    let r = next_reply_within(&mut c, Duration::from_secs(20)).await?;
                    if r.code != 426 {
                        return Err(format!("expected 426, got {} {:?}", r.code, r.text()));
                    }
                    expect_code(&mut c, b"NOOP", 200).await?;
                    Ok(())
                }
                .await;
                cases.record(
                    &format!("{version} download: {how:?}"),
                    result.map_err(|e| format!("{e}\n{}", tail(&c, 6))),
                );
            }
            for how in [
                Disrupt::Reset,
                Disrupt::AlertThenReset,
                Disrupt::JunkThenClose,
                Disrupt::CloseNoNotify,
                Disrupt::FinNoNotify,
            ] {
                let old = write_random(&root.join("target.bin"), 64_000);
                let result = async {
                    let addr = epsv_addr(&mut c).await?;
                    expect_code(&mut c, b"STOR target.bin", 150).await?;
                    let tcp = connect(addr).await?;
                    let mut tls = client::data_tls(tcp, &c.config())
                        .await
                        .map_err(|e| e.to_string())?;
                    tls.write_all(&random_bytes(1 << 20))
                        .await
                        .map_err(|e| e.to_string())?;
                    tls.flush().await.map_err(|e| e.to_string())?;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    disrupt(tls, how).await;
                    let r = next_reply_within(&mut c, Duration::from_secs(20)).await?;
                    if r.code != 426 {
                        return Err(format!("expected 426, got {} {:?}", r.code, r.text()));
                    }
                    if std::fs::read(root.join("target.bin")).unwrap() != old {
                        return Err("the existing file was replaced by partial content".into());
                    }
                    let left = wait_no_temp_files(&root, Duration::from_secs(10)).await;
                    if !left.is_empty() {
                        return Err(format!("temp files left: {left:?}"));
                    }
                    expect_code(&mut c, b"NOOP", 200).await?;
                    Ok(())
                }
                .await;
                cases.record(
                    &format!("{version} upload over an existing file: {how:?}"),
                    result.map_err(|e| format!("{e}\n{}", tail(&c, 6))),
                );
            }
            // A new file that received data before the reset is kept as a resumable partial.
            let result = async {
                let name = format!("partial-{}.bin", version.replace(' ', ""));
                let sent = random_bytes(1 << 20);
                let addr = epsv_addr(&mut c).await?;
                expect_code(&mut c, format!("STOR {name}").as_bytes(), 150).await?;
                let tcp = connect(addr).await?;
                let mut tls = client::data_tls(tcp, &c.config())
                    .await
                    .map_err(|e| e.to_string())?;
                tls.write_all(&sent).await.map_err(|e| e.to_string())?;
                tls.flush().await.map_err(|e| e.to_string())?;
                tokio::time::sleep(Duration::from_millis(200)).await;
                disrupt(tls, Disrupt::Reset).await;
                let r = next_reply_within(&mut c, Duration::from_secs(20)).await?;
                if r.code != 426 {
                    return Err(format!("expected 426, got {} {:?}", r.code, r.text()));
                }
                let left = wait_no_temp_files(&root, Duration::from_secs(10)).await;
                if !left.is_empty() {
                    return Err(format!("temp files left: {left:?}"));
                }
                match std::fs::read(root.join(&name)) {
                    Ok(d) if !d.is_empty() && sent.starts_with(&d) => {}
                    Ok(d) => {
                        return Err(format!(
                            "partial of {} bytes is not a prefix of the upload",
                            d.len()
                        ))
                    }
                    Err(_) => return Err("no resumable partial kept".into()),
                }
                let size = expect_code(&mut c, format!("SIZE {name}").as_bytes(), 213).await?;
                let have: usize = size
                    .text()
                    .trim()
                    .parse()
                    .map_err(|_| "SIZE text".to_string())?;
                // Resume it (REST + STOR) to the full content.
                expect_code(&mut c, format!("REST {have}").as_bytes(), 350).await?;
                attempt_expect(
                    &mut c,
                    format!("STOR {name}").as_bytes(),
                    Some(&sent[have..]),
                    &[150, 226],
                )
                .await?;
                if std::fs::read(root.join(&name)).unwrap() != sent {
                    return Err("resumed upload content".into());
                }
                Ok(())
            }
            .await;
            cases.record(
                &format!("{version} new file reset mid-upload: partial kept and resumable"),
                result.map_err(|e| format!("{e}\n{}", tail(&c, 6))),
            );
            let got = c.retr("big.bin").await;
            cases.record(
                &format!("{version}: full download on the same session afterwards"),
                if got == big {
                    Ok(())
                } else {
                    Err("wrong content".into())
                },
            );
        }
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

#[tokio::test]
async fn control_connection_closed_mid_transfer() {
    let _lock = shared().await;
    within(300, async {
        let server = TestServer::start();
        let root = server.root.path().to_path_buf();
        write_random(&server.path("big.bin"), 24 << 20);
        let config = client::config_default(&server.cert_pem);
        let mut cases = Cases::new("control closed mid-transfer");
        for rst in [false, true] {
            let mode = if rst { "RST" } else { "FIN" };
            // Download: the data connection must end soon after the control connection.
            let result = async {
                let mut c =
                    Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
                let addr = epsv_addr(&mut c).await?;
                expect_code(&mut c, b"RETR big.bin", 150).await?;
                let tcp = connect(addr).await?;
                let mut tls = client::data_tls(tcp, &c.config()).await.map_err(|e| e.to_string())?;
                let mut buf = vec![0u8; 256 << 10];
                tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
                if rst {
                    arm_reset(&c);
                }
                drop(c);
                tokio::time::sleep(Duration::from_millis(500)).await;
                let ended = tokio::time::timeout(Duration::from_secs(15), async {
                    let mut b = vec![0u8; 65536];
                    loop {
                        match tls.read(&mut b).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                })
                .await;
                if ended.is_err() {
                    return Err("the data connection stayed open 15 s after the control connection closed".into());
                }
                Ok(())
            }
            .await;
            cases.record(&format!("download, control closed ({mode})"), result);
            assert_server_healthy(&server).await;
            // Upload over an existing file: cancelled, old content kept, no temp file.
            let old = write_random(&root.join("existing.bin"), 50_000);
            let result = async {
                let mut c =
                    Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
                let addr = epsv_addr(&mut c).await?;
                expect_code(&mut c, b"STOR existing.bin", 150).await?;
                let tcp = connect(addr).await?;
                let mut tls = client::data_tls(tcp, &c.config()).await.map_err(|e| e.to_string())?;
                tls.write_all(&random_bytes(512 << 10)).await.map_err(|e| e.to_string())?;
                tls.flush().await.map_err(|e| e.to_string())?;
                if rst {
                    arm_reset(&c);
                }
                drop(c);
                // Keep the data connection open and idle: the server must end it.
                let ended = tokio::time::timeout(Duration::from_secs(15), async {
                    let mut b = [0u8; 1024];
                    loop {
                        match tls.read(&mut b).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                })
                .await;
                if ended.is_err() {
                    return Err("the upload's data connection stayed open 15 s after the control connection closed".into());
                }
                if std::fs::read(root.join("existing.bin")).unwrap() != old {
                    return Err("the existing file changed".into());
                }
                let left = wait_no_temp_files(&root, Duration::from_secs(10)).await;
                if !left.is_empty() {
                    return Err(format!("temp files left: {left:?}"));
                }
                Ok(())
            }
            .await;
            cases.record(&format!("upload over an existing file, control closed ({mode})"), result);
            assert_server_healthy(&server).await;
        }
        cases.finish();
    })
    .await;
}

// ===========================================================================
// Stalled TLS handshakes
// ===========================================================================

#[tokio::test]
async fn stalled_tls_handshakes_time_out() {
    let _lock = shared().await;
    within(180, async {
        let server = TestServer::start_with(|cfg| cfg.server.tls_handshake_timeout_secs = 2);
        let hello = client_hello(&server.cert_pem);
        let health = HealthLoop::for_server(&server);
        let mut cases = Cases::new("stalled TLS handshakes");
        let stalls: Vec<(&str, Vec<u8>)> = vec![
            ("silence", Vec::new()),
            ("20 bytes of a ClientHello", hello[..20].to_vec()),
            (
                "a full ClientHello, then no answer to the server's flight",
                hello.clone(),
            ),
        ];
        let min = Duration::from_millis(1500);
        let max = Duration::from_secs(10);
        let mut set = tokio::task::JoinSet::new();
        for (label, bytes) in stalls.clone() {
            let addr = server.explicit;
            let implicit_bytes = bytes.clone();
            set.spawn(async move {
                let result = async {
                    let mut c = Client::connect(addr).await;
                    expect_code(&mut c, b"AUTH TLS", 234).await?;
                    let started = Instant::now();
                    if !bytes.is_empty() {
                        c.send_raw(&bytes).await;
                    }
                    let (rest, closed) = c.read_raw_until_closed(max).await;
                    let at = started.elapsed();
                    if !closed {
                        return Err(format!("not closed within {max:?}"));
                    }
                    if at < min {
                        return Err(format!("closed after only {at:?}"));
                    }
                    // Nothing but TLS records (the server's flight, an alert): no FTP reply.
                    if !(rest.is_empty() || (0x14..=0x17).contains(&rest[0])) {
                        return Err(format!("unexpected bytes {}", show(&rest)));
                    }
                    Ok(())
                }
                .await;
                (format!("control after AUTH TLS: {label}"), result)
            });
            let addr = server.implicit;
            set.spawn(async move {
                let bytes = implicit_bytes;
                let result = async {
                    let mut tcp = connect(addr).await?;
                    let started = Instant::now();
                    if !bytes.is_empty() {
                        tcp.write_all(&bytes).await.map_err(|e| e.to_string())?;
                    }
                    let closed = tokio::time::timeout(max, async {
                        let mut b = [0u8; 4096];
                        loop {
                            match tcp.read(&mut b).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                        }
                    })
                    .await
                    .is_ok();
                    if !closed {
                        return Err(format!("not closed within {max:?}"));
                    }
                    if started.elapsed() < min {
                        return Err(format!("closed after only {:?}", started.elapsed()));
                    }
                    Ok(())
                }
                .await;
                (format!("implicit: {label}"), result)
            });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok((label, result)) => cases.record(&label, result),
                Err(e) => cases.record("task", Err(panic_text(e))),
            }
        }
        // Data connections: 522 after the handshake timeout, the session goes on.
        let data = write_random(&server.path("small.bin"), 20_000);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        for (label, bytes) in &stalls {
            let result = async {
                let addr = epsv_addr(&mut c).await?;
                expect_code(&mut c, b"RETR small.bin", 150).await?;
                let mut tcp = connect(addr).await?;
                let started = Instant::now();
                if !bytes.is_empty() {
                    tcp.write_all(bytes).await.map_err(|e| e.to_string())?;
                }
                let r = next_reply_within(&mut c, max).await?;
                drop(tcp);
                if r.code != 522 {
                    return Err(format!("expected 522, got {} {:?}", r.code, r.text()));
                }
                if started.elapsed() < min {
                    return Err(format!("522 after only {:?}", started.elapsed()));
                }
                Ok(())
            }
            .await;
            cases.record(&format!("data after 150: {label}"), result);
        }
        // TLS started before an upload command, then stalled: the server
        // waits only briefly for the client's Finished before its 150 (see
        // transfer::early_upload_tickets), then refuses with 522 once the
        // handshake times out, and leaves no file.
        for (label, bytes) in stalls.iter().filter(|(_, b)| !b.is_empty()) {
            let result = async {
                let addr = epsv_addr(&mut c).await?;
                let mut tcp = connect(addr).await?;
                tcp.write_all(bytes).await.map_err(|e| e.to_string())?;
                let asked = Instant::now();
                expect_code(&mut c, b"STOR early-stall.bin", 150).await?;
                if asked.elapsed() >= min {
                    return Err(format!("150 only after {:?}", asked.elapsed()));
                }
                let r = next_reply_within(&mut c, max).await?;
                drop(tcp);
                if r.code != 522 {
                    return Err(format!("expected 522, got {} {:?}", r.code, r.text()));
                }
                if server.path("early-stall.bin").exists() {
                    return Err("the refused upload left a file".into());
                }
                Ok(())
            }
            .await;
            cases.record(&format!("data before STOR: {label}"), result);
        }
        let got = c.retr("small.bin").await;
        cases.record(
            "the same session downloads afterwards",
            if got == data {
                Ok(())
            } else {
                Err("wrong content".into())
            },
        );
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

// ===========================================================================
// Stolen data connections, foreign tickets
// ===========================================================================

/// Connect to `addr` as the attacker: TLS with `config` (or junk, when
/// `None`), then read whatever arrives. Returns (handshake kind, bytes).
async fn attacker(
    addr: SocketAddr,
    config: Option<Arc<ClientConfig>>,
    src: Option<std::net::IpAddr>,
) -> (String, Vec<u8>) {
    let tcp = match src {
        Some(ip) => match connect_from(ip, addr).await {
            Ok(t) => t,
            Err(e) => return (format!("connect failed: {e}"), Vec::new()),
        },
        None => match connect(addr).await {
            Ok(t) => t,
            Err(e) => return (e, Vec::new()),
        },
    };
    match config {
        Some(config) => match client::data_tls(tcp, &config).await {
            Ok(mut tls) => {
                let kind = format!("{:?}", tls.get_ref().1.handshake_kind());
                let mut got = Vec::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut got)).await;
                let _ = tls.write_all(b"attacker upload").await;
                (kind, got)
            }
            Err(e) => (format!("handshake failed: {e}"), Vec::new()),
        },
        None => {
            let mut tcp = tcp;
            let _ = tcp.write_all(b"GET / HTTP/1.0\r\n\r\n").await;
            let _ = tcp.shutdown().await;
            let mut got = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut got)).await;
            ("plaintext".into(), got)
        }
    }
}

#[tokio::test]
async fn stolen_data_connections_and_foreign_tickets_are_refused() {
    let _lock = shared().await;
    within(300, async {
        let server = TestServer::start();
        let root = server.root.path().to_path_buf();
        let secret = write_random(&server.path("secret.bin"), 300_000);
        let health = HealthLoop::for_server(&server);
        let mut cases = Cases::new("stolen data connections");
        for (version, make) in [
            (
                "TLS 1.2",
                client::config_tls12 as fn(&std::path::Path) -> Arc<ClientConfig>,
            ),
            ("TLS 1.3", client::config_tls13),
        ] {
            let config_a = make(&server.cert_pem);
            let mut a = Client::open(server.explicit, &config_a, Setup::explicit().type_i()).await;
            // Session B: another logged-in user of the same host, with its own tickets.
            let config_b = make(&server.cert_pem);
            let mut b = Client::open(server.explicit, &config_b, Setup::explicit().type_i()).await;
            let _ = b.retr("secret.bin").await;
            let no_resume = client::config_no_resumption(&server.cert_pem);
            // (label, attacker config, connect before the command?, command)
            let rows: Vec<(&str, Option<Arc<ClientConfig>>, bool, &str)> = vec![
                (
                    "attacker first, full handshake, RETR",
                    Some(no_resume.clone()),
                    true,
                    "RETR secret.bin",
                ),
                (
                    "attacker after 150, full handshake, RETR",
                    Some(no_resume.clone()),
                    false,
                    "RETR secret.bin",
                ),
                (
                    "attacker first, resuming session B's ticket, RETR",
                    Some(Arc::clone(&config_b)),
                    true,
                    "RETR secret.bin",
                ),
                (
                    "attacker after 150, resuming session B's ticket, RETR",
                    Some(Arc::clone(&config_b)),
                    false,
                    "RETR secret.bin",
                ),
                (
                    "attacker first, plaintext, RETR",
                    None,
                    true,
                    "RETR secret.bin",
                ),
                (
                    "attacker first, full handshake, LIST",
                    Some(no_resume.clone()),
                    true,
                    "LIST",
                ),
                (
                    "attacker first, full handshake, STOR over an existing file",
                    Some(no_resume.clone()),
                    true,
                    "STOR victim.bin",
                ),
                (
                    "attacker first, session B's ticket, STOR",
                    Some(Arc::clone(&config_b)),
                    true,
                    "STOR victim.bin",
                ),
            ];
            for (label, cfg, first, command) in rows {
                let old = write_random(&root.join("victim.bin"), 10_000);
                let result = async {
                    let addr = epsv_addr(&mut a).await?;
                    let mut thief = None;
                    if first {
                        thief = Some(tokio::spawn(attacker(addr, cfg.clone(), None)));
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    expect_code(&mut a, command.as_bytes(), 150).await?;
                    if !first {
                        thief = Some(tokio::spawn(attacker(addr, cfg.clone(), None)));
                    }
                    let r = next_reply_within(&mut a, Duration::from_secs(20)).await?;
                    let (kind, got) = thief.unwrap().await.map_err(panic_text)?;
                    if r.code != 522 {
                        return Err(format!(
                            "expected 522, got {} {:?} (attacker handshake: {kind})",
                            r.code,
                            r.text()
                        ));
                    }
                    if kind.contains("Resumed") {
                        return Err(format!("the attacker's handshake resumed ({kind})"));
                    }
                    // Decrypted data (TLS attackers) must be empty; the
                    // plaintext attacker may only see TLS records (an alert).
                    let leaked = if kind == "plaintext" {
                        !only_tls_records(&got)
                    } else {
                        !got.is_empty()
                    };
                    if leaked || contains(&got, &secret[..32]) {
                        return Err(format!(
                            "the attacker received {} bytes: {}",
                            got.len(),
                            show(&got)
                        ));
                    }
                    if std::fs::read(root.join("victim.bin")).unwrap() != old {
                        return Err("the attacker's upload changed the file".into());
                    }
                    // The legitimate client goes on: a fresh download works.
                    let again =
                        attempt_expect(&mut a, b"RETR secret.bin", None, &[150, 226]).await?;
                    if again.data != secret {
                        return Err("RETR afterwards: wrong content".into());
                    }
                    Ok(())
                }
                .await;
                cases.record(
                    &format!("{version} {label}"),
                    result.map_err(|e| format!("{e}\n{}", tail(&a, 8))),
                );
            }
            // From another address (127.0.0.2): refused by address, the real client still gets its data.
            let result = async {
                let addr = epsv_addr(&mut a).await?;
                let thief = tokio::spawn(attacker(
                    addr,
                    Some(no_resume.clone()),
                    Some("127.0.0.2".parse().unwrap()),
                ));
                tokio::time::sleep(Duration::from_millis(200)).await;
                expect_code(&mut a, b"RETR secret.bin", 150).await?;
                let tcp = connect(addr).await?;
                let mut tls = client::data_tls(tcp, &a.config())
                    .await
                    .map_err(|e| e.to_string())?;
                let got = client::read_all(&mut tls)
                    .await
                    .map_err(|e| e.to_string())?;
                let r = next_reply(&mut a).await?;
                let (kind, stolen) = thief.await.map_err(panic_text)?;
                if r.code != 226 || got != secret {
                    return Err(format!(
                        "legitimate transfer: {} {:?}, {} bytes",
                        r.code,
                        r.text(),
                        got.len()
                    ));
                }
                if !stolen.is_empty() {
                    return Err(format!(
                        "the foreign address received {} bytes ({kind})",
                        stolen.len()
                    ));
                }
                Ok(())
            }
            .await;
            cases.record(
                &format!(
                    "{version} attacker from 127.0.0.2 first: refused, the client still downloads"
                ),
                result.map_err(|e| format!("{e}\n{}", tail(&a, 8))),
            );
            let left = wait_no_temp_files(&root, Duration::from_secs(10)).await;
            cases.record(
                &format!("{version} no temp files left"),
                if left.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{left:?}"))
                },
            );
            a.expect("QUIT", 221).await;
            b.expect("QUIT", 221).await;
        }
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

// ===========================================================================
// Found along the way: many uploads in a row on one control connection
// ===========================================================================

/// Many STORs in a row, no download in between. TLS 1.2: the control
/// connection's session is reusable, all 20 resume. A client that uses each TLS 1.3 ticket once (rustls) and reads each
/// upload connection to the server's close_notify gets the upload's tickets
/// after the upload (see `transfer::data::handshake`): 20 uploads in a row
/// all resume, with TLS 1.2 and 1.3.
#[tokio::test]
async fn consecutive_uploads_keep_resuming() {
    let _lock = shared().await;
    within(120, async {
        let server = TestServer::start();
        let mut cases = Cases::new("consecutive uploads (session reuse)");
        for (version, config) in [
            ("TLS 1.2", client::config_tls12(&server.cert_pem)),
            ("TLS 1.3", client::config_tls13(&server.cert_pem)),
        ] {
            let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
            let data = random_bytes(5_000);
            let mut result = Ok(());
            for i in 0..20 {
                let name = format!("up-{}-{i}.bin", version.replace(' ', ""));
                if let Err(e) = attempt_expect(
                    &mut c,
                    format!("STOR {name}").as_bytes(),
                    Some(&data),
                    &[150, 226],
                )
                .await
                {
                    result = Err(format!("upload #{} of 20 in a row: {e}", i + 1));
                    break;
                }
            }
            cases.record(
                &format!("{version}: 20 uploads in a row all resume"),
                result,
            );
            c.expect("QUIT", 221).await;
        }
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}
