//! Protocol-level data-connection tests: the real server on loopback, driven
//! by the raw client of `ftps_testing::client`.
//!
//! Covered: RFC 4217 §10.2 (521 for every data command under PROT C before
//! any 1xx and before any connection; data connections must resume the
//! control connection's TLS session, else 522; a full handshake is accepted
//! when the policy allows it), RFC 4217 §7 (the FTP client is the TLS client,
//! also in active mode) and §14 (ABOR, STAT during a transfer), the no-partial-
//! replace rule for truncated (no close_notify) and aborted uploads; RFC 959
//! §3.1.1.1 / §3.4 (TYPE A line endings, STOR/APPE/RETR/REST, ABOR 426+226,
//! STAT), RFC 1123 §4.1.2.9 (STOU "150 FILE:"), RFC 2428 (EPRT/EPSV, IPv6, PASV
//! refused on IPv6), RFC 2577 §3 (PORT bounce protection, path traversal and
//! symlinks out of the root) and RFC 3659 (SIZE, MDTM, MLST, MLSD, REST STREAM),
//! plus NUL (501) and non-UTF-8 path names.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, SocketAddrV4};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::address::{format_eprt_arg, format_port_arg};
use ftps_testing::client::{self, within, Client, Setup, TlsData};
use ftps_testing::{local_only, random_bytes, Backend, TestServer};
use rustls::{ClientConfig, HandshakeKind, ProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// EPSV, `command` (150), connect and TLS with `config`.
async fn open_passive(c: &mut Client, command: &[u8], config: &Arc<ClientConfig>) -> TlsData {
    let addr = c.epsv().await;
    c.send_line_bytes(command).await;
    c.expect_reply(150).await;
    let tcp = client::tcp_connect(addr).await;
    match client::data_tls(tcp, config).await {
        Ok(tls) => tls,
        Err(e) => panic!("data TLS handshake: {e}\n{}", c.dialogue()),
    }
}

/// The names in the root, and (on S3) the multipart uploads still in
/// progress: no upload temp file or part may be left behind.
fn dir_names(server: &TestServer) -> Vec<Vec<u8>> {
    let mut names = server.store.names("");
    if server.store.backend() == Backend::S3 {
        for upload in server.store.leftovers() {
            names.push(format!("multipart upload of {upload}").into_bytes());
        }
    }
    names
}

fn show(names: &[Vec<u8>]) -> Vec<String> {
    names
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

// ---------------------------------------------------------------------------
// RFC 4217 §10.2: 521 for every data command under PROT C
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum PortCommand {
    Pasv,
    Epsv,
    Port,
    Eprt,
}

const DATA_COMMANDS: [&str; 7] = [
    "RETR f.txt",
    "STOR new.txt",
    "STOU",
    "APPE f.txt",
    "LIST",
    "NLST",
    "MLSD",
];

async fn prot_c_is_521_after(kind: PortCommand) {
    let server = TestServer::start();
    server.store.write("f.txt", b"old content");
    let mut c = Client::session(&server, Setup::explicit()).await;
    c.expect("PROT C", 200).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let SocketAddr::V4(ours) = listener.local_addr().unwrap() else {
        unreachable!()
    };
    for command in DATA_COMMANDS {
        match kind {
            PortCommand::Pasv => {
                c.pasv().await;
            }
            PortCommand::Epsv => {
                c.epsv().await;
            }
            PortCommand::Port => {
                c.expect(&format!("PORT {}", format_port_arg(ours)), 200)
                    .await;
            }
            PortCommand::Eprt => {
                c.expect(
                    &format!("EPRT {}", format_eprt_arg(SocketAddr::V4(ours))),
                    200,
                )
                .await;
            }
        }
        // The very next reply is 521: no 150 before it.
        let reply = c.cmd(command).await;
        c.check(
            reply.code == 521,
            &format!("{kind:?} + {command} under PROT C must be 521 before any 1xx"),
        );
    }
    // Nothing else is queued on the control connection.
    c.expect("NOOP", 200).await;
    // The server never connected to our PORT/EPRT listener.
    let accepted = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await;
    c.check(
        accepted.is_err(),
        "the server must not open a data connection for a refused command",
    );
    // Refused uploads touched nothing.
    let names = dir_names(&server);
    c.check(
        names == vec![b"f.txt".to_vec()],
        &format!("only f.txt may exist, found {:?}", show(&names)),
    );
    c.check(
        server.store.read("f.txt").unwrap() == b"old content",
        "f.txt unchanged",
    );
}

#[tokio::test]
async fn rfc4217_s10_2_pasv_with_prot_c_is_521() {
    within(60, prot_c_is_521_after(PortCommand::Pasv)).await;
}

#[tokio::test]
async fn rfc4217_s10_2_epsv_with_prot_c_is_521() {
    within(60, prot_c_is_521_after(PortCommand::Epsv)).await;
}

#[tokio::test]
async fn rfc4217_s10_2_port_with_prot_c_is_521() {
    within(60, prot_c_is_521_after(PortCommand::Port)).await;
}

#[tokio::test]
async fn rfc4217_s10_2_eprt_with_prot_c_is_521() {
    within(60, prot_c_is_521_after(PortCommand::Eprt)).await;
}

// ---------------------------------------------------------------------------
// RFC 4217 §10.2: TLS session reuse on data connections
// ---------------------------------------------------------------------------

/// After upload `i`'s 226: its data connection resumed a session and the
/// file holds `data`.
fn check_resumed_upload(
    c: &Client,
    i: usize,
    kind: Option<HandshakeKind>,
    stored: Option<Vec<u8>>,
    data: &[u8],
) {
    c.check(
        kind == Some(HandshakeKind::Resumed),
        &format!("upload {i}: data connection did not resume ({kind:?})"),
    );
    c.check(
        stored.as_deref() == Some(data),
        &format!("upload {i}: stored content"),
    );
}

async fn thirty_resumed_transfers(
    make_config: fn(&std::path::Path) -> Arc<ClientConfig>,
    version: ProtocolVersion,
) {
    let server = TestServer::start();
    let config = make_config(&server.cert_pem);
    let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
    c.check(
        c.stream.tls().unwrap().protocol_version() == Some(version),
        &format!("control connection negotiated {version:?}"),
    );
    for i in 0..30usize {
        let name = format!("f{i}.bin");
        let data = random_bytes(1000 + i * 7919);
        // Upload.
        let mut tls = open_passive(&mut c, format!("STOR {name}").as_bytes(), &config).await;
        let (v, kind) = {
            let conn = tls.get_ref().1;
            (conn.protocol_version(), conn.handshake_kind())
        };
        c.note(format!("upload {i}: data TLS {v:?} {kind:?}"));
        c.check(
            v == Some(version),
            &format!("upload {i}: data connection used {v:?}"),
        );
        client::write_all_and_close(&mut tls, &data).await.unwrap();
        let _ = client::read_all(&mut tls).await;
        drop(tls);
        c.expect_reply(226).await;
        check_resumed_upload(&c, i, kind, server.store.read(&name), &data);
        // Download.
        let mut tls = open_passive(&mut c, format!("RETR {name}").as_bytes(), &config).await;
        let kind = tls.get_ref().1.handshake_kind();
        c.note(format!("download {i}: data TLS {kind:?}"));
        let got = client::read_all(&mut tls).await.unwrap();
        drop(tls);
        c.expect_reply(226).await;
        c.check(
            kind == Some(HandshakeKind::Resumed),
            &format!("download {i}: data connection did not resume ({kind:?})"),
        );
        c.check(got == data, &format!("download {i}: content"));
    }
    c.expect("QUIT", 221).await;
}

#[tokio::test]
async fn rfc4217_s10_2_tls12_data_resumes_for_30_uploads_and_downloads() {
    within(
        120,
        thirty_resumed_transfers(client::config_tls12, ProtocolVersion::TLSv1_2),
    )
    .await;
}

#[tokio::test]
async fn rfc4217_s10_2_tls13_data_resumes_for_30_uploads_and_downloads() {
    within(
        120,
        thirty_resumed_transfers(client::config_tls13, ProtocolVersion::TLSv1_3),
    )
    .await;
}

/// Bytes waiting on a socket, without consuming them or waiting.
fn waiting_bytes(tcp: &tokio::net::TcpStream) -> usize {
    use nix::sys::socket::{recv, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 4096];
    recv(
        tcp.as_raw_fd(),
        &mut buf,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    )
    .unwrap_or(0)
}

/// RFC 4217 §10.2 with single-use TLS 1.3 tickets (rustls clients, curl's
/// OpenSSL cache): a client that completes its data handshake before the
/// upload command and reads the upload connection only once, just before
/// closing it (as curl does), must find a fresh ticket there. The server
/// writes the tickets before its 150 reply, so they are already in the
/// client's socket when the 150 arrives. Twelve uploads in a row: more than
/// the control connection's tickets, so every upload after the eighth
/// depends on the ticket of the one before. An upload whose handshake only
/// starts after the 150 gets no ticket (a client that never reads would
/// close with it unread and the reset would cut the upload short).
#[tokio::test]
async fn rfc4217_s10_2_tls13_upload_with_early_handshake_gets_ticket_before_150() {
    within(60, async {
        let server = TestServer::start();
        let config = client::config_tls13(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        for i in 0..12usize {
            let name = format!("u{i}.bin");
            let data = random_bytes(1 + i * 997);
            let addr = c.epsv().await;
            let tcp = client::tcp_connect(addr).await;
            let mut tls = match client::data_tls(tcp, &config).await {
                Ok(tls) => tls,
                Err(e) => panic!("upload {i}: data TLS handshake: {e}\n{}", c.dialogue()),
            };
            let kind = tls.get_ref().1.handshake_kind();
            c.send(&format!("STOR {name}")).await;
            c.expect_reply(150).await;
            c.check(
                waiting_bytes(tls.get_ref().0) > 0,
                &format!("upload {i}: no ticket waiting when the 150 arrived"),
            );
            // Take in what is there (the tickets), without waiting for more.
            tls.get_ref().0.readable().await.unwrap();
            let mut buf = [0u8; 16];
            let read = tokio::time::timeout(Duration::ZERO, tls.read(&mut buf)).await;
            c.check(
                read.is_err(),
                &format!("upload {i}: no data expected from the server ({read:?})"),
            );
            tls.write_all(&data).await.unwrap();
            tls.shutdown().await.unwrap();
            drop(tls);
            c.expect_reply(226).await;
            check_resumed_upload(&c, i, kind, server.store.read(&name), &data);
        }
        // A handshake that starts after the 150: no ticket on the upload.
        let addr = c.epsv().await;
        c.send("STOR late.bin").await;
        c.expect_reply(150).await;
        let tcp = client::tcp_connect(addr).await;
        let mut tls = client::data_tls(tcp, &config).await.unwrap();
        let quiet =
            tokio::time::timeout(Duration::from_millis(300), tls.get_ref().0.readable()).await;
        c.check(
            quiet.is_err() && waiting_bytes(tls.get_ref().0) == 0,
            "an upload whose handshake began after the 150 must carry no ticket",
        );
        tls.write_all(b"late").await.unwrap();
        tls.shutdown().await.unwrap();
        drop(tls);
        c.expect_reply(226).await;
        c.expect("QUIT", 221).await;
    })
    .await;
}

/// The server reads each data connection's handshake itself (and
/// acknowledges each piece at once); a ClientHello that needs a
/// HelloRetryRequest must still lead to a resumed handshake.
#[tokio::test]
async fn rfc4217_s10_2_data_handshake_with_hello_retry_request_resumes() {
    within(60, async {
        let server = TestServer::start();
        let data = server.store.write_random("f.bin", 50_000);
        let config = client::config_hello_retry(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let control = c.stream.tls().and_then(|tls| tls.handshake_kind());
        c.check(
            control == Some(HandshakeKind::FullWithHelloRetryRequest),
            &format!("the configuration forces a HelloRetryRequest: {control:?}"),
        );
        for i in 0..3 {
            let addr = c.epsv().await;
            c.send("RETR f.bin").await;
            c.expect_reply(150).await;
            let tcp = client::tcp_connect(addr).await;
            let mut tls = client::data_tls(tcp, &config).await.unwrap();
            c.check(
                tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed),
                &format!("download {i}: {:?}", tls.get_ref().1.handshake_kind()),
            );
            let got = client::read_all(&mut tls).await.unwrap();
            c.expect_reply(226).await;
            c.check(got == data, "the download is intact");
            let name = format!("up{i}.bin");
            c.upload_with(format!("STOR {name}").as_bytes(), &data, &config)
                .await;
            c.check(
                server.store.read(&name).unwrap() == data,
                "the upload is intact",
            );
        }
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s10_2_data_without_resumption_is_522() {
    within(60, async {
        let server = TestServer::start();
        server.store.write("old.bin", b"old content");
        let config = client::config_default(&server.cert_pem);
        let fresh = client::config_no_resumption(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        for target in ["new.bin", "old.bin"] {
            let addr = c.epsv().await;
            c.send(&format!("STOR {target}")).await;
            c.expect_reply(150).await;
            let tcp = client::tcp_connect(addr).await;
            // A full handshake: it may complete on our side, but the server refuses it.
            if let Ok(mut tls) = client::data_tls(tcp, &fresh).await {
                c.note("full data handshake completed on the client side");
                let _ = tls.write_all(b"must never be stored").await;
                let _ = tls.shutdown().await;
            }
            let reply = c.expect_reply(522).await;
            let text = reply.text().to_lowercase();
            c.check(
                text.contains("session") && text.contains("reus"),
                "the 522 text must mention TLS session reuse",
            );
            c.expect("NOOP", 200).await;
        }
        // Downloads are refused the same way.
        let addr = c.epsv().await;
        c.send("RETR old.bin").await;
        c.expect_reply(150).await;
        let tcp = client::tcp_connect(addr).await;
        if let Ok(mut tls) = client::data_tls(tcp, &fresh).await {
            let got = client::read_all(&mut tls).await.unwrap_or_default();
            c.check(
                got.is_empty(),
                "no file data over a refused data connection",
            );
        }
        c.expect_reply(522).await;
        c.expect("NOOP", 200).await;
        let names = dir_names(&server);
        c.check(
            names == vec![b"old.bin".to_vec()],
            &format!(
                "a refused STOR leaves nothing behind, found {:?}",
                show(&names)
            ),
        );
        c.check(
            server.store.read("old.bin").unwrap() == b"old content",
            "old.bin unchanged",
        );
        // The control connection is still usable, with a resuming data connection.
        let got = c.retr("old.bin").await;
        c.check(
            got == b"old content",
            "RETR with resumption works afterwards",
        );
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s10_2_data_resuming_another_control_session_is_522() {
    within(60, async {
        let server = TestServer::start();
        server.store.write("f.txt", b"content");
        let config_a = client::config_default(&server.cert_pem);
        let config_b = client::config_default(&server.cert_pem);
        let mut a = Client::open(server.explicit, &config_a, Setup::explicit().type_i()).await;
        let mut b = Client::open(server.explicit, &config_b, Setup::explicit().type_i()).await;
        // B's data connection offers A's session.
        let addr = b.epsv().await;
        b.send("RETR f.txt").await;
        b.expect_reply(150).await;
        let tcp = client::tcp_connect(addr).await;
        if let Ok(mut tls) = client::data_tls(tcp, &config_a).await {
            let kind = tls.get_ref().1.handshake_kind();
            b.note(format!("data handshake with A's session store: {kind:?}"));
            let got = client::read_all(&mut tls).await.unwrap_or_default();
            b.check(got.is_empty(), "no file data to a foreign session");
        }
        b.expect_reply(522).await;
        b.expect("NOOP", 200).await;
        // Each connection with its own session works.
        let got = b.retr("f.txt").await;
        b.check(got == b"content", "B with its own session");
        // A's session store was used for B's refused data connection; it
        // must hold nothing from B (no tickets handed out on a refused data
        // connection), so A's next data connection resumes A's session.
        let (got, reply) = a.try_download_with(b"RETR f.txt", &config_a).await;
        a.check(
            reply.code == 226 && got == b"content",
            "A with its own session after its store was offered to B's data connection",
        );
    })
    .await;
}

/// A third party (same address: loopback) that never had the control
/// connection's session takes the passive port twice in a row: both attempts
/// must be refused. A refused data connection must not leave the thief with
/// a session it can resume next time (a TLS 1.3 ticket, a TLS 1.2 session ID).
async fn thief_gets_no_usable_session(make_thief: fn(&std::path::Path) -> Arc<ClientConfig>) {
    within(60, async {
        let server = TestServer::start();
        server.store.write("secret.txt", b"secret");
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let thief = make_thief(&server.cert_pem);
        for attempt in 0..2 {
            let addr = c.epsv().await;
            c.send("RETR secret.txt").await;
            c.expect_reply(150).await;
            let tcp = client::tcp_connect(addr).await;
            let mut stolen = Vec::new();
            if let Ok(mut tls) = client::data_tls(tcp, &thief).await {
                let kind = tls.get_ref().1.handshake_kind();
                c.note(format!("thief attempt {attempt}: data handshake {kind:?}"));
                stolen = client::read_all(&mut tls).await.unwrap_or_default();
            }
            let reply = c.read_reply().await;
            c.check(
                reply.code == 522 && stolen.is_empty(),
                &format!(
                    "attempt {attempt}: a data connection that did not resume the control \
                     connection's session must be refused (522) and get no data; got {} and \
                     {} bytes (a refused data connection must not be handed session tickets \
                     it can resume with next time)",
                    reply.code,
                    stolen.len()
                ),
            );
        }
        let got = c.retr("secret.txt").await;
        c.check(got == b"secret", "the real client still works");
    })
    .await;
}

#[tokio::test]
async fn rfc4217_s10_2_refused_data_connection_gets_no_usable_tls13_ticket() {
    thief_gets_no_usable_session(client::config_tls13).await;
}

#[tokio::test]
async fn rfc4217_s10_2_refused_data_connection_gets_no_usable_tls12_session() {
    thief_gets_no_usable_session(client::config_tls12).await;
}

#[tokio::test]
async fn rfc4217_s10_2_full_handshake_allowed_without_session_reuse_policy() {
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.policy.require_session_reuse = false);
        let config = client::config_default(&server.cert_pem);
        let fresh = client::config_no_resumption(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let data = random_bytes(70_001);
        let mut tls = open_passive(&mut c, b"STOR full.bin", &fresh).await;
        c.check(
            tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Full),
            "a full handshake",
        );
        client::write_all_and_close(&mut tls, &data).await.unwrap();
        let _ = client::read_all(&mut tls).await;
        c.expect_reply(226).await;
        c.check(
            server.store.read("full.bin").unwrap() == data,
            "stored content",
        );
        let got = c.download_with(b"RETR full.bin", &fresh).await;
        c.check(got == data, "RETR over a full handshake");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Active mode (RFC 959 PORT, RFC 2428 EPRT; RFC 4217 §7: the FTP client is the TLS client)
// ---------------------------------------------------------------------------

/// After PORT/EPRT: `command` (150), accept the server's connection, TLS as the client.
async fn open_active(c: &mut Client, listener: &TcpListener, command: &str) -> TlsData {
    c.send(command).await;
    c.expect_reply(150).await;
    let accepted = tokio::time::timeout(client::CONNECT_TIMEOUT, listener.accept()).await;
    let Ok(Ok((tcp, from))) = accepted else {
        panic!("the server did not connect\n{}", c.dialogue());
    };
    c.check(
        from.ip() == c.peer.ip(),
        "the data connection comes from the server",
    );
    let config = c.config();
    match client::data_tls(tcp, &config).await {
        Ok(tls) => tls,
        Err(e) => panic!("active data TLS handshake: {e}\n{}", c.dialogue()),
    }
}

#[tokio::test]
async fn rfc959_rfc2428_active_port_and_eprt_with_client_as_tls_client() {
    within(60, async {
        let server = TestServer::start();
        let data = server.store.write_random("down.bin", 300_007);
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(ours) = listener.local_addr().unwrap() else {
            unreachable!()
        };
        // PORT + RETR.
        c.expect(&format!("PORT {}", format_port_arg(ours)), 200)
            .await;
        let mut tls = open_active(&mut c, &listener, "RETR down.bin").await;
        let got = client::read_all(&mut tls).await.unwrap();
        c.expect_reply(226).await;
        c.check(got == data, "RETR over PORT");
        // EPRT + STOR.
        let up = random_bytes(123_457);
        c.expect(
            &format!("EPRT {}", format_eprt_arg(SocketAddr::V4(ours))),
            200,
        )
        .await;
        let mut tls = open_active(&mut c, &listener, "STOR up.bin").await;
        client::write_all_and_close(&mut tls, &up).await.unwrap();
        let _ = client::read_all(&mut tls).await;
        c.expect_reply(226).await;
        c.check(server.store.read("up.bin").unwrap() == up, "STOR over EPRT");
        // EPRT + LIST.
        c.expect(
            &format!("EPRT {}", format_eprt_arg(SocketAddr::V4(ours))),
            200,
        )
        .await;
        let mut tls = open_active(&mut c, &listener, "NLST").await;
        let listing = client::read_all(&mut tls).await.unwrap();
        c.expect_reply(226).await;
        let listing = String::from_utf8_lossy(&listing).into_owned();
        c.check(
            listing.contains("down.bin") && listing.contains("up.bin"),
            &format!("NLST over EPRT: {listing:?}"),
        );
    })
    .await;
}

#[tokio::test]
async fn rfc2577_s3_port_to_another_host_or_low_port_is_504() {
    within(60, async {
        let server = TestServer::start();
        server.store.write("f.txt", b"x");
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let foreign = SocketAddrV4::new([10, 1, 2, 3].into(), 1025);
        let low = SocketAddrV4::new([127, 0, 0, 1].into(), 80);
        c.expect(&format!("PORT {}", format_port_arg(foreign)), 504)
            .await;
        c.expect(&format!("PORT {}", format_port_arg(low)), 504)
            .await;
        c.expect(
            &format!("EPRT {}", format_eprt_arg(SocketAddr::V4(foreign))),
            504,
        )
        .await;
        c.expect(
            &format!("EPRT {}", format_eprt_arg(SocketAddr::V4(low))),
            504,
        )
        .await;
        // No data port was set by the refused commands.
        c.expect("RETR f.txt", 425).await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// ABOR, STAT, truncated and aborted uploads (RFC 959 §4.1.3, RFC 4217 §14)
// ---------------------------------------------------------------------------

/// A file of `mib` MiB made of a repeated random MiB.
fn write_big(server: &TestServer, name: &str, mib: usize) -> Vec<u8> {
    let block = random_bytes(1 << 20);
    let mut data = Vec::with_capacity(mib << 20);
    for _ in 0..mib {
        data.extend_from_slice(&block);
    }
    server.store.write(name, &data);
    data
}

#[tokio::test]
async fn rfc959_abor_during_retr_is_426_then_226() {
    within(90, async {
        let server = TestServer::start();
        write_big(&server, "big.bin", 50);
        server.store.write("small.txt", b"small");
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut tls = open_passive(&mut c, b"RETR big.bin", &config).await;
        let mut buf = vec![0u8; 256 * 1024];
        tokio::time::timeout(Duration::from_secs(30), tls.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        c.send("ABOR").await;
        c.expect_reply(426).await;
        c.expect_reply(226).await;
        drop(tls);
        c.expect("NOOP", 200).await;
        let got = c.retr("small.txt").await;
        c.check(got == b"small", "a transfer after ABOR works");
    })
    .await;
}

#[tokio::test]
async fn rfc959_stat_during_transfer_is_213_with_byte_count() {
    within(90, async {
        let server = TestServer::start();
        let data = write_big(&server, "big.bin", 8);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut tls = open_passive(&mut c, b"RETR big.bin", &config).await;
        let mut got = vec![0u8; 512 * 1024];
        tokio::time::timeout(Duration::from_secs(30), tls.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        let reply = c.expect("STAT", 213).await;
        let text = reply.text();
        let count: Option<u64> = text
            .split(|ch: char| !ch.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .find(|&n| n > 0);
        c.check(
            text.contains("bytes") && count.is_some(),
            &format!("STAT during a transfer must report the byte count: {text:?}"),
        );
        let rest = client::read_all(&mut tls).await.unwrap();
        got.extend_from_slice(&rest);
        c.expect_reply(226).await;
        c.check(got == data, "the transfer completed intact after STAT");
    })
    .await;
}

/// How an upload in progress is interrupted.
enum Interruption {
    /// The client closes TCP without a TLS close_notify: a possible truncation.
    TcpCloseWithoutCloseNotify,
    /// The client sends ABOR.
    Abor,
}

/// Upload `bytes` over an existing file, interrupt it, and check the
/// replies (426, and 226 after ABOR, at once), that the old content is
/// still there and that no temp file is left.
async fn interrupted_upload_keeps_old_file(bytes: usize, how: Interruption) {
    let server = TestServer::start();
    server.store.write("keep.bin", b"old content");
    let config = client::config_default(&server.cert_pem);
    let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
    let mut tls = open_passive(&mut c, b"STOR keep.bin", &config).await;
    tls.write_all(&random_bytes(bytes)).await.unwrap();
    tls.flush().await.unwrap();
    // The server is now waiting for more data.
    let asked = std::time::Instant::now();
    match how {
        Interruption::TcpCloseWithoutCloseNotify => {
            let (mut tcp, _) = tls.into_inner();
            tcp.shutdown().await.unwrap();
            c.expect_reply(426).await;
            drop(tcp);
        }
        Interruption::Abor => {
            c.send("ABOR").await;
            c.expect_reply(426).await;
            c.expect_reply(226).await;
            drop(tls);
        }
    }
    let waited = asked.elapsed();
    c.check(
        waited < Duration::from_secs(2),
        &format!("the server must notice at once, took {waited:?}"),
    );
    c.expect("NOOP", 200).await;
    c.check(
        server.store.read("keep.bin").unwrap() == b"old content",
        "an interrupted upload must not replace the old file",
    );
    let names = dir_names(&server);
    c.check(
        names == vec![b"keep.bin".to_vec()],
        &format!("no temp file left, found {:?}", show(&names)),
    );
}

#[tokio::test]
async fn rfc4217_upload_without_close_notify_is_426_and_keeps_old_file() {
    within(60, async {
        interrupted_upload_keeps_old_file(100_000, Interruption::TcpCloseWithoutCloseNotify).await;
    })
    .await;
}

#[tokio::test]
async fn rfc959_abor_during_stor_keeps_old_file() {
    within(
        60,
        interrupted_upload_keeps_old_file(100_000, Interruption::Abor),
    )
    .await;
}

// ---------------------------------------------------------------------------
// Bulk uploads: past 1 MiB a binary upload's reads wait for a low-water mark
// (see `transfer/receive_thread.rs` in the server); the rules must not change.
// ---------------------------------------------------------------------------

/// More than the 1 MiB after which an upload counts as bulk.
const BULK_BYTES: usize = 3 << 20;

#[tokio::test]
async fn rfc4217_bulk_upload_without_close_notify_is_426_and_keeps_old_file() {
    within(60, async {
        interrupted_upload_keeps_old_file(BULK_BYTES, Interruption::TcpCloseWithoutCloseNotify)
            .await;
    })
    .await;
}

#[tokio::test]
async fn rfc959_abor_during_bulk_stor_is_426_226_and_keeps_old_file() {
    within(
        60,
        interrupted_upload_keeps_old_file(BULK_BYTES, Interruption::Abor),
    )
    .await;
}

#[tokio::test]
async fn rfc959_stat_during_bulk_upload_counts_the_bytes() {
    within(60, async {
        let server = TestServer::start();
        let data = random_bytes(BULK_BYTES);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut tls = open_passive(&mut c, b"STOR stat.bin", &config).await;
        tls.write_all(&data[..2 << 20]).await.unwrap();
        tls.flush().await.unwrap();
        let mut counted = 0;
        for _ in 0..50 {
            let text = c.expect("STAT", 213).await.text();
            counted = text
                .split(|ch: char| !ch.is_ascii_digit())
                .filter_map(|w| w.parse::<u64>().ok())
                .max()
                .unwrap_or(0);
            if counted >= 1 << 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c.check(
            counted >= 1 << 20,
            &format!("STAT must count a bulk upload's bytes, saw {counted}"),
        );
        client::write_all_and_close(&mut tls, &data[2 << 20..])
            .await
            .unwrap();
        let _ = client::read_all(&mut tls).await;
        c.expect_reply(226).await;
        c.check(
            server.store.read("stat.bin").unwrap() == data,
            "the upload landed intact",
        );
    })
    .await;
}

/// A client that sends its close_notify and then waits for ours before it
/// closes (Python's ftplib does) must get it at once, not after the
/// low-water wait's stall limit.
#[tokio::test]
async fn rfc4217_bulk_upload_answers_a_waiting_close_notify_at_once() {
    within(60, async {
        let server = TestServer::start();
        let data = random_bytes(BULK_BYTES + 1234);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut tls = open_passive(&mut c, b"STOR wait.bin", &config).await;
        tls.write_all(&data).await.unwrap();
        tls.get_mut().1.send_close_notify();
        tls.flush().await.unwrap();
        let sent = std::time::Instant::now();
        // No TCP close: wait for the server's close_notify.
        let rest = tokio::time::timeout(Duration::from_secs(10), client::read_all(&mut tls))
            .await
            .unwrap();
        let waited = sent.elapsed();
        c.check(
            matches!(rest, Ok(ref r) if r.is_empty()),
            &format!("the server must answer with close_notify: {rest:?}"),
        );
        c.check(
            waited < Duration::from_secs(1),
            &format!("close_notify answered after {waited:?}"),
        );
        c.expect_reply(226).await;
        c.check(
            server.store.read("wait.bin").unwrap() == data,
            "the upload landed intact",
        );
    })
    .await;
}

/// The transfer's reply (with a 1 s stall limit configured) is 426, after
/// about that second and before `at_most`.
async fn expect_426_after_a_1s_stall(c: &mut Client, what: &str, at_most: Duration) {
    let stalled = std::time::Instant::now();
    let reply = c.read_reply().await;
    let waited = stalled.elapsed();
    c.check(
        reply.code == 426,
        &format!("a stalled {what} fails with 426, got {}", reply.code),
    );
    c.check(
        waited >= Duration::from_millis(900) && waited < at_most,
        &format!("failed after {waited:?} with a 1 s stall limit"),
    );
}

/// Stop the server while `waiting` (a transfer) waits on its client: the
/// shutdown takes its grace period, not the stall limit.
async fn shut_down_within_15s(server: TestServer, waiting: &str) {
    let stopping = std::time::Instant::now();
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "shutdown took {took:?} with {waiting} waiting"
    );
}

#[tokio::test]
async fn bulk_upload_that_stalls_fails_after_the_stall_limit() {
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.server.transfer_stall_timeout_secs = 1);
        server.store.write("keep.bin", b"old content");
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut tls = open_passive(&mut c, b"STOR keep.bin", &config).await;
        tls.write_all(&random_bytes(BULK_BYTES)).await.unwrap();
        tls.flush().await.unwrap();
        expect_426_after_a_1s_stall(&mut c, "upload", Duration::from_secs(10)).await;
        drop(tls);
        c.expect("NOOP", 200).await;
        c.check(
            server.store.read("keep.bin").unwrap() == b"old content",
            "a stalled upload must not replace the old file",
        );
    })
    .await;
}

#[tokio::test]
async fn prot_c_bulk_upload_and_resume_land_intact() {
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.policy.require_prot_p = false);
        let data = random_bytes(BULK_BYTES + 777);
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        c.expect("PROT C", 200).await;
        for (command, part) in [
            ("STOR clear.bin", &data[..2 << 20]),
            ("APPE clear.bin", &data[2 << 20..]),
        ] {
            let addr = c.epsv().await;
            c.send(command).await;
            c.expect_reply(150).await;
            let mut tcp = client::tcp_connect(addr).await;
            client::write_all_and_close(&mut tcp, part).await.unwrap();
            c.expect_reply(226).await;
        }
        c.check(
            server.store.read("clear.bin").unwrap() == data,
            "STOR then APPE over PROT C land intact",
        );
    })
    .await;
}

/// Bulk uploads larger than the receiving thread's write-back step (8 MiB:
/// it starts the disk's write-back of the file as it goes) land intact, also
/// when the file does not start at offset 0 (REST + STOR, APPE).
#[tokio::test]
async fn bulk_uploads_past_the_write_back_step_land_intact() {
    within(120, async {
        let server = TestServer::start();
        let data = random_bytes((20 << 20) + 333);
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        c.upload(b"STOR wb.bin", &data).await;
        c.check(
            server.store.read("wb.bin").unwrap() == data,
            "a 20 MiB STOR lands intact",
        );
        let other = random_bytes(data.len());
        c.expect("REST 5000000", 350).await;
        c.upload(b"STOR wb.bin", &other[5_000_000..]).await;
        let mut expected = data[..5_000_000].to_vec();
        expected.extend_from_slice(&other[5_000_000..]);
        c.check(
            server.store.read("wb.bin").unwrap() == expected,
            "REST 5000000 + STOR of 16 MiB rewrites the tail",
        );
        let tail = random_bytes((9 << 20) + 1);
        c.upload(b"APPE wb.bin", &tail).await;
        expected.extend_from_slice(&tail);
        c.check(
            server.store.read("wb.bin").unwrap() == expected,
            "APPE of 9 MiB lands after it",
        );
    })
    .await;
}

/// A server that shuts down while an upload's thread waits for data stops
/// that thread: the shutdown takes the grace period (2 s here), not the
/// stall limit (120 s).
#[tokio::test]
async fn shutdown_during_a_waiting_bulk_upload_does_not_wait_for_the_stall_limit() {
    within(60, async {
        let server = TestServer::start();
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut tls = open_passive(&mut c, b"STOR keep.bin", &config).await;
        tls.write_all(&random_bytes(BULK_BYTES)).await.unwrap();
        tls.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        shut_down_within_15s(server, "an upload").await;
        drop(tls);
    })
    .await;
}

#[tokio::test]
async fn rfc3659_s5_rest_retr_of_a_bulk_file_returns_the_tail() {
    within(60, async {
        let server = TestServer::start();
        let data = server.store.write_random("big.bin", BULK_BYTES + 999);
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let got = c.retr("big.bin").await;
        c.check(got == data, "a bulk download arrives intact");
        let offset = (1 << 20) + 123;
        c.expect(&format!("REST {offset}"), 350).await;
        let tail = c.retr("big.bin").await;
        c.check(
            tail == data[offset..],
            "REST + RETR of a bulk file returns the tail",
        );
    })
    .await;
}

#[tokio::test]
async fn bulk_download_to_a_client_that_stops_reading_fails_after_the_stall_limit() {
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.server.transfer_stall_timeout_secs = 1);
        write_big(&server, "big.bin", 64);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut tls = open_passive(&mut c, b"RETR big.bin", &config).await;
        let mut buf = vec![0u8; 256 * 1024];
        tls.read_exact(&mut buf).await.unwrap();
        // Read no more: the socket buffers fill, then the server's writes wait.
        expect_426_after_a_1s_stall(&mut c, "download", Duration::from_secs(15)).await;
        drop(tls);
        c.expect("NOOP", 200).await;
    })
    .await;
}

/// Like the upload case: a download's thread blocked on a client that does
/// not read is stopped when the server shuts down.
#[tokio::test]
async fn shutdown_during_a_waiting_bulk_download_does_not_wait_for_the_stall_limit() {
    within(60, async {
        let server = TestServer::start();
        write_big(&server, "big.bin", 64);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut tls = open_passive(&mut c, b"RETR big.bin", &config).await;
        let mut buf = vec![0u8; 256 * 1024];
        tls.read_exact(&mut buf).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        shut_down_within_15s(server, "a download").await;
        drop(tls);
    })
    .await;
}

/// More simultaneous uploads than the server receives on blocking threads:
/// the rest take the async path; every file lands intact.
#[tokio::test]
async fn more_simultaneous_uploads_than_receiving_threads_all_land() {
    within(120, async {
        const UPLOADS: usize = 40;
        let server = TestServer::start_with(|cfg| cfg.server.max_sessions_per_ip = 64);
        let all_open = Arc::new(tokio::sync::Barrier::new(UPLOADS));
        let mut tasks = Vec::new();
        for i in 0..UPLOADS {
            // Its own session cache: data connections resume their own control session.
            let config = client::config_default(&server.cert_pem);
            let all_open = Arc::clone(&all_open);
            let addr = server.explicit;
            tasks.push(tokio::spawn(async move {
                // Past the 1 MiB after which an upload moves to a thread
                // before they wait for each other: all 40 are bulk at once.
                let data = random_bytes((2 << 20) + 4096 * i);
                let mut c = Client::open(addr, &config, Setup::explicit().type_i()).await;
                let name = format!("up{i}.bin");
                let mut tls =
                    open_passive(&mut c, format!("STOR {name}").as_bytes(), &config).await;
                tls.write_all(&data[..4096]).await.unwrap();
                tls.flush().await.unwrap();
                all_open.wait().await;
                client::write_all_and_close(&mut tls, &data[4096..])
                    .await
                    .unwrap();
                let _ = client::read_all(&mut tls).await;
                c.expect_reply(226).await;
                (name, data)
            }));
        }
        for task in tasks {
            let (name, data) = task.await.unwrap();
            assert!(
                server.store.read(&name).unwrap() == data,
                "{name} must land intact"
            );
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// REST, APPE, TYPE A (RFC 959, RFC 3659 §5)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rfc3659_s5_rest_stor_resumes_and_appe_appends() {
    within(60, async {
        let server = TestServer::start();
        let full = random_bytes(30_000);
        server.store.write("resume.bin", &full[..10_000]);
        server.store.write("app.txt", b"abc");
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        c.expect("REST 10000", 350).await;
        c.upload(b"STOR resume.bin", &full[10_000..]).await;
        c.check(
            server.store.read("resume.bin").unwrap() == full,
            "REST + STOR resumes at the offset",
        );
        c.upload(b"APPE app.txt", b"def").await;
        c.check(
            server.store.read("app.txt").unwrap() == b"abcdef",
            "APPE appends",
        );
        c.upload(b"APPE fresh.txt", b"xyz").await;
        c.check(
            server.store.read("fresh.txt").unwrap() == b"xyz",
            "APPE to a new file creates it",
        );
    })
    .await;
}

#[tokio::test]
async fn rfc3659_s5_rest_retr_returns_the_tail() {
    within(60, async {
        let server = TestServer::start();
        let data = server.store.write_random("tail.bin", 50_000);
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        c.expect("REST 12345", 350).await;
        let got = c.retr("tail.bin").await;
        c.check(got == data[12_345..], "REST + RETR returns the tail");
        // REST applies to one transfer only.
        let got = c.retr("tail.bin").await;
        c.check(got == data, "the next RETR starts at 0");
    })
    .await;
}

/// RETR `name` over a protected passive connection: the 150's text and
/// the bytes, after the 226.
async fn retr_with_150(
    c: &mut Client,
    name: &str,
    config: &Arc<ClientConfig>,
) -> (String, Vec<u8>) {
    let addr = c.epsv().await;
    c.send(&format!("RETR {name}")).await;
    let announced = c.expect_reply(150).await.text();
    let tcp = client::tcp_connect(addr).await;
    let mut tls = client::data_tls(tcp, config).await.unwrap();
    let got = client::read_all(&mut tls).await.unwrap();
    c.expect_reply(226).await;
    (announced, got)
}

#[tokio::test]
async fn rfc959_retr_of_what_is_not_a_file_is_550_before_any_150() {
    within(60, async {
        let server = TestServer::start();
        server.store.create_dir("dir");
        // Object stores have no FIFOs.
        let fifo = server.store.backend() == Backend::Local;
        if fifo {
            let made = std::process::Command::new("mkfifo")
                .arg(server.path("fifo"))
                .status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        }
        let data = server.store.write_random("small.bin", 3000);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        // TYPE I opens the file directly: the open itself must refuse.
        for (name, what) in [
            ("dir", "a directory"),
            ("fifo", "a FIFO (opening it would block)"),
            ("missing", "a missing file"),
        ] {
            if name == "fifo" && !fifo {
                continue;
            }
            let _ = c.epsv().await;
            let reply = c.cmd(&format!("RETR {name}")).await;
            c.check(reply.code == 550, &format!("RETR of {what} is 550"));
        }
        // The session goes on; the 150 of a small file names its size, and
        // after REST what is left of it.
        c.expect("NOOP", 200).await;
        let (announced, got) = retr_with_150(&mut c, "small.bin", &config).await;
        c.check(
            announced.contains("(3000 bytes)"),
            "the 150 announces the file's size",
        );
        c.check(got == data, "the small file arrives whole");
        c.expect("REST 1000", 350).await;
        let (announced, got) = retr_with_150(&mut c, "small.bin", &config).await;
        c.check(
            announced.contains("(2000 bytes)"),
            "after REST the 150 announces the bytes left",
        );
        c.check(got == data[1000..], "REST + RETR of a small file");
    })
    .await;
}

#[tokio::test]
async fn rfc959_type_a_converts_line_endings() {
    within(60, async {
        let server = TestServer::start();
        server.store.write("down.txt", b"x\ny\n");
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        c.expect("TYPE A", 200).await;
        c.upload(b"STOR up.txt", b"a\r\nb\r\n").await;
        c.check(
            server.store.read("up.txt").unwrap() == b"a\nb\n",
            "TYPE A upload stores LF line endings",
        );
        // Larger than the server's upload batch (256 KiB), with a CR LF
        // pair split across TLS records and batches somewhere.
        let mut big_network = Vec::new();
        let mut big_local = Vec::new();
        for i in 0..40_000usize {
            let line = format!("line {i} {}", "x".repeat(i % 23));
            big_network.extend_from_slice(line.as_bytes());
            big_network.extend_from_slice(b"\r\n");
            big_local.extend_from_slice(line.as_bytes());
            big_local.push(b'\n');
        }
        c.upload(b"STOR big.txt", &big_network).await;
        c.check(
            server.store.read("big.txt").unwrap() == big_local,
            "large TYPE A upload stores LF line endings",
        );
        let got = c.retr("down.txt").await;
        c.check(got == b"x\r\ny\r\n", "TYPE A download sends CRLF");
        c.expect("TYPE I", 200).await;
        let got = c.retr("down.txt").await;
        c.check(got == b"x\ny\n", "TYPE I download is unchanged");
    })
    .await;
}

// ---------------------------------------------------------------------------
// SIZE, MDTM, MLST, MLSD, STOU (RFC 3659, RFC 1123)
// ---------------------------------------------------------------------------

/// 2001-02-03 04:05:06 UTC.
const MTIME_UNIX: u64 = 981_173_106;

/// Set the file's time to [`MTIME_UNIX`] where the back-end lets us (an
/// object's time is the store's): the time-val MDTM and MLSx must show.
fn set_mtime(server: &TestServer, name: &str) -> String {
    ftps_proto::timefmt::format_time_val(server.store.set_modified(name, MTIME_UNIX))
}

#[tokio::test]
async fn rfc3659_s4_size_in_type_i_and_refused_in_type_a() {
    within(60, async {
        let server = TestServer::start();
        server.store.write("s.txt", b"line\nline\n");
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let reply = c.expect("SIZE s.txt", 213).await;
        c.check(reply.text() == "10", "SIZE in TYPE I is the byte count");
        c.expect_replies(&[("SIZE missing.txt", 550), ("TYPE A", 200)])
            .await;
        let reply = c.cmd("SIZE s.txt").await;
        c.check(
            reply.is_permanent_negative(),
            "SIZE in TYPE A is refused rather than guessed",
        );
    })
    .await;
}

#[tokio::test]
async fn rfc3659_s3_mdtm_is_utc_time_val() {
    within(60, async {
        let server = TestServer::start();
        server.store.write("m.txt", b"m");
        let time_val = set_mtime(&server, "m.txt");
        server.store.create_dir("dir");
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let reply = c.expect("MDTM m.txt", 213).await;
        c.check(reply.text() == time_val, "MDTM YYYYMMDDHHMMSS in UTC");
        c.expect_replies(&[("MDTM missing.txt", 550), ("MDTM dir", 550)])
            .await;
    })
    .await;
}

#[tokio::test]
async fn rfc3659_s7_mlst_output() {
    within(60, async {
        let server = TestServer::start();
        server.store.write("m.txt", b"12345");
        let time_val = set_mtime(&server, "m.txt");
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let reply = c.expect("MLST m.txt", 250).await;
        c.check(
            reply.lines.len() == 3,
            "MLST: first line, one entry, end line",
        );
        let entry = String::from_utf8(reply.lines[1].clone()).unwrap();
        c.check(
            entry.starts_with(' ') && !entry.starts_with("  "),
            "the entry line starts with one space",
        );
        let (facts, name) = entry[1..].split_once(' ').unwrap();
        c.check(
            name.ends_with("m.txt"),
            &format!("entry names m.txt: {name:?}"),
        );
        let modify = format!("modify={time_val};");
        for fact in ["type=file;", "size=5;", &modify] {
            c.check(
                facts.contains(fact),
                &format!("MLST facts lack {fact}: {facts:?}"),
            );
        }
        c.check(
            facts.contains("perm=") && facts.ends_with(';'),
            &format!("MLST facts: {facts:?}"),
        );
        c.expect("MLST missing.txt", 550).await;
    })
    .await;
}

#[tokio::test]
async fn rfc3659_s7_mlsd_facts() {
    within(60, async {
        let server = TestServer::start();
        server.store.write("a.txt", b"abc");
        let time_val = set_mtime(&server, "a.txt");
        server.store.create_dir("sub");
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let listing = c.download(b"MLSD").await;
        let text = String::from_utf8(listing).unwrap();
        c.check(text.ends_with("\r\n"), "MLSD lines end in CRLF");
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        let file = lines
            .iter()
            .find(|l| l.ends_with(" a.txt"))
            .unwrap_or_else(|| panic!("no a.txt in {lines:?}"));
        let dir = lines
            .iter()
            .find(|l| l.ends_with(" sub"))
            .unwrap_or_else(|| panic!("no sub in {lines:?}"));
        for line in &lines {
            c.check(
                !line.starts_with(' '),
                "MLSD lines do not start with a space",
            );
        }
        let modify = format!("modify={time_val};");
        for fact in ["type=file;", "size=3;", &modify, "perm="] {
            c.check(file.contains(fact), &format!("{file:?} lacks {fact}"));
        }
        c.check(
            dir.contains("type=dir;"),
            &format!("{dir:?} lacks type=dir"),
        );
        c.check(
            !lines.iter().any(|l| l.contains(".ftps-upload")),
            "no upload temp files listed",
        );
        // MLSD of a file is an error (RFC 3659 §7.2.2), before any 150.
        c.epsv().await;
        let reply = c.cmd("MLSD a.txt").await;
        c.check(reply.code == 501, "MLSD of a file is 501");
    })
    .await;
}

#[tokio::test]
async fn rfc1123_stou_reports_the_file_name_in_150() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let data = random_bytes(5_000);
        let started = c.upload(b"STOU", &data).await;
        let text = started.text();
        let name = text
            .strip_prefix("FILE: ")
            .unwrap_or_else(|| panic!("150 text must be \"FILE: name\": {text:?}"));
        c.check(
            !name.is_empty() && !name.contains('/'),
            &format!("bad STOU name {name:?}"),
        );
        c.check(
            server.store.read(name).unwrap() == data,
            "STOU stored the data under the announced name",
        );
        let second = c.upload(b"STOU", b"other").await;
        c.check(second.text() != text, "STOU picks a new name each time");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Path safety (RFC 2577 §3/§4), NUL, non-UTF-8 names
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rfc2577_path_traversal_stays_inside_the_root() {
    within(60, async {
        let server = TestServer::start();
        server.store.write("f.txt", b"x");
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        for path in [
            "../../../../etc/passwd",
            "/../../etc/passwd",
            "..\\..\\etc\\passwd",
        ] {
            // An object name never holds `\` (some stores read it as `/`): 553.
            let code = if path.contains('\\') && server.store.backend() == Backend::S3 {
                553
            } else {
                550
            };
            c.epsv().await;
            let reply = c.cmd(&format!("RETR {path}")).await;
            c.check(
                reply.code == code,
                &format!("RETR {path} must be {code} before any 150"),
            );
            c.expect(&format!("SIZE {path}"), code).await;
        }
        c.expect("CWD ..", 250).await;
        let pwd = c.expect("PWD", 257).await;
        c.check(
            pwd.text().starts_with("\"/\""),
            "CWD .. at the root stays at /",
        );
        c.expect("CWD ../../..", 250).await;
        let pwd = c.expect("PWD", 257).await;
        c.check(pwd.text().starts_with("\"/\""), "still at /");
        c.expect("CDUP", 250).await;
        let pwd = c.expect("PWD", 257).await;
        c.check(pwd.text().starts_with("\"/\""), "CDUP at / stays at /");
        // ../f.txt from the root is /f.txt.
        c.expect("SIZE ../f.txt", 213).await;
    })
    .await;
}

#[tokio::test]
async fn rfc2577_symlink_out_of_the_root_is_refused() {
    if !local_only("object stores have no symbolic links") {
        return;
    }
    within(60, async {
        let server = TestServer::start();
        std::os::unix::fs::symlink("/etc", server.path("etc_link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", server.path("passwd_link")).unwrap();
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        c.expect("CWD etc_link", 550).await;
        let pwd = c.expect("PWD", 257).await;
        c.check(pwd.text().starts_with("\"/\""), "still at /");
        for command in [
            "RETR etc_link/passwd",
            "RETR passwd_link",
            "LIST etc_link",
            "NLST etc_link",
            "MLSD etc_link",
        ] {
            c.epsv().await;
            let reply = c.cmd(command).await;
            c.check(
                reply.code == 550,
                &format!("{command} through a link out of the root must be 550 before any 150"),
            );
        }
        c.expect_replies(&[
            ("SIZE etc_link/passwd", 550),
            ("MLST etc_link/passwd", 550),
            ("STAT etc_link", 550),
            ("NOOP", 200),
        ])
        .await;
    })
    .await;
}

#[tokio::test]
async fn rfc959_nul_in_path_is_501() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        for command in [&b"CWD a\0b"[..], b"SIZE a\0b", b"DELE a\0b", b"MKD a\0b"] {
            let reply = c.cmd_bytes(command).await;
            c.check(reply.code == 501, "NUL in a path is 501");
        }
        c.epsv().await;
        let reply = c.cmd_bytes(b"RETR a\0b").await;
        c.check(reply.code == 501, "RETR with NUL is 501 before any 150");
        c.epsv().await;
        let reply = c.cmd_bytes(b"STOR a\0b").await;
        c.check(reply.code == 501, "STOR with NUL is 501 before any 150");
        c.expect("NOOP", 200).await;
        let names = dir_names(&server);
        c.check(
            names.is_empty(),
            &format!("nothing created: {:?}", show(&names)),
        );
    })
    .await;
}

#[tokio::test]
async fn rfc959_non_utf8_file_name_round_trips() {
    within(60, async {
        let server = TestServer::start();
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let name: &[u8] = b"caf\xe9.txt";
        let data = random_bytes(4_321);
        let mut stor = b"STOR ".to_vec();
        stor.extend_from_slice(name);
        if server.store.backend() == Backend::S3 {
            // S3 keys are UTF-8: such a name is refused before any 150,
            // never stored under a mangled key.
            c.epsv().await;
            let reply = c.cmd_bytes(&stor).await;
            c.check(reply.code == 553, "a non-UTF-8 name is 553 on S3");
            c.expect("NOOP", 200).await;
            let names = dir_names(&server);
            c.check(
                names.is_empty(),
                &format!("nothing stored: {:?}", show(&names)),
            );
            return;
        }
        c.upload(&stor, &data).await;
        let on_disk = server.root.path().join(std::ffi::OsStr::from_bytes(name));
        c.check(
            on_disk.exists(),
            "the file exists on disk under the raw byte name",
        );
        c.check(std::fs::read(&on_disk).unwrap() == data, "content on disk");
        let listing = c.download(b"NLST").await;
        let mut line = name.to_vec();
        line.extend_from_slice(b"\r\n");
        c.check(
            listing.windows(line.len()).any(|w| w == line.as_slice()),
            &format!("NLST returns the exact bytes: {listing:02x?}"),
        );
        let mut retr = b"RETR ".to_vec();
        retr.extend_from_slice(name);
        let got = c.download(&retr).await;
        c.check(got == data, "RETR by the raw byte name");
    })
    .await;
}

// ---------------------------------------------------------------------------
// IPv6 (RFC 2428)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rfc2428_ipv6_epsv_transfer_works_and_pasv_is_501() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIP: ::1 is not available");
        return;
    }
    within(60, async {
        let server = TestServer::start_with(|cfg| {
            cfg.server.listen = vec!["[::1]:0".parse().unwrap()];
            cfg.server.implicit_listen = vec!["[::1]:0".parse().unwrap()];
        });
        assert!(server.explicit.is_ipv6());
        let data = server.store.write_random("six.bin", 100_000);
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        c.expect("PASV", 501).await;
        let got = c.retr("six.bin").await;
        c.check(got == data, "RETR over EPSV on IPv6");
        let up = random_bytes(77_777);
        c.stor("up6.bin", &up).await;
        c.check(
            server.store.read("up6.bin").unwrap() == up,
            "STOR over EPSV on IPv6",
        );
        // EPRT with an IPv6 address (active mode) works too.
        let listener = TcpListener::bind("[::1]:0").await.unwrap();
        let ours = listener.local_addr().unwrap();
        c.expect(&format!("EPRT {}", format_eprt_arg(ours)), 200)
            .await;
        let mut tls = open_active(&mut c, &listener, "RETR six.bin").await;
        let got = client::read_all(&mut tls).await.unwrap();
        c.expect_reply(226).await;
        c.check(got == data, "RETR over EPRT on IPv6");
    })
    .await;
}
