//! The client library against real servers nobody here wrote — vsftpd
//! (`require_ssl_reuse=YES`, TLS 1.3), ProFTPD (mod_tls defaults: session
//! reuse required; CCC and implicit FTPS) and Pure-FTPd (TLS required) —
//! started by the tests on loopback high ports (`ftps_testing::servers`).
//! Against each: login, listing, 20 uploads then 20 downloads on one control
//! connection (every data connection resuming the TLS session), resume of an
//! interrupted download and upload, implicit FTPS where offered, PROT C
//! refused cleanly where the server requires protection, active mode, and
//! CCC against ProFTPD, and a client certificate against ProFTPD with
//! `TLSVerifyClient on`. Every file is checked byte for byte. The LIST and
//! MLSD output captured from each server parses to the same entries.
#![allow(clippy::unwrap_used)]

use ftps_client::{
    Client, ConnectOptions, DataMode, DataProtection, EntryKind, Security, StoreMode,
};
use ftps_testing::random_bytes;
use ftps_testing::servers::{self, ExternalServer, Kind};
use tokio::io::AsyncReadExt;

fn options(server: &ExternalServer) -> ConnectOptions {
    let mut o = ConnectOptions::new("127.0.0.1", server.port, &server.user, &server.password);
    o.tls.ca_file = Some(server.cert_pem.clone());
    o
}

async fn get(client: &mut Client, path: &str, offset: u64) -> Vec<u8> {
    let mut stream = client.retr(path.as_bytes(), offset).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    stream.finish().await.unwrap();
    out
}

async fn put(client: &mut Client, path: &str, data: &[u8], mode: StoreMode) {
    let mut reader = data;
    client
        .stor(path.as_bytes(), &mut reader, mode, false)
        .await
        .unwrap_or_else(|e| panic!("STOR {path}: {e} ({:?})", e.hint()));
}

/// Login, listing, 20 puts then 20 gets on one connection, resumed downloads
/// and uploads: the core matrix row for one server.
async fn core(kind: Kind, tls12: bool) {
    let Some(server) = servers::start(kind) else {
        return;
    };
    server.create_sample_tree();
    let mut o = options(&server);
    o.tls.tls12_only = tls12;
    let mut client = Client::connect(o)
        .await
        .unwrap_or_else(|e| panic!("{kind}: connect: {e}\n{}", server.logs()));
    assert!(client.is_control_protected());
    let version = if tls12 { "TLSv1_2" } else { "TLSv1_3" };
    assert_eq!(client.tls_version().as_deref(), Some(version), "{kind}");

    // Listing (MLSD where FEAT has MLST, else LIST), normalized.
    let mut entries = client.list(b"").await.unwrap();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&[u8]> = entries.iter().map(|e| e.name.as_slice()).collect();
    assert!(names.contains(&&b"a.txt"[..]), "{kind}: {names:?}");
    assert!(names.contains(&&b"new file.txt"[..]), "{kind}: {names:?}");
    let a = entries.iter().find(|e| e.name == b"a.txt").unwrap();
    assert_eq!((a.kind.clone(), a.size), (EntryKind::File, 5), "{kind}");
    let dir = entries.iter().find(|e| e.name == b"dir").unwrap();
    assert_eq!(dir.kind, EntryKind::Dir, "{kind}");

    // 20 uploads then 20 downloads on this one control connection.
    let files: Vec<Vec<u8>> = (0..20).map(|i| random_bytes(1_000 + i * 9_973)).collect();
    for (i, data) in files.iter().enumerate() {
        let mut reader = &data[..];
        if let Err(e) = client
            .stor(
                format!("p{i}.bin").as_bytes(),
                &mut reader,
                StoreMode::Replace,
                false,
            )
            .await
        {
            panic!("{kind}: STOR p{i}.bin: {e}\n{}", server.logs());
        }
        if kind.requires_session_reuse() {
            assert!(
                client.last_data_resumed(),
                "{kind}: upload {i} did not resume"
            );
        }
    }
    for (i, data) in files.iter().enumerate() {
        assert_eq!(
            &get(&mut client, &format!("p{i}.bin"), 0).await,
            data,
            "{kind}: {i}"
        );
        assert_eq!(
            &std::fs::read(server.root.join(format!("p{i}.bin"))).unwrap(),
            data
        );
    }

    // Resume an interrupted download: the tail from an offset.
    let big = random_bytes(400_000);
    server.put_file("big.bin", &big);
    let tail = get(&mut client, "big.bin", 150_000).await;
    assert_eq!(tail, big[150_000..], "{kind}: resumed download");

    // Resume an interrupted upload: the server has the first part. REST +
    // STOR; ProFTPD refuses restarted uploads by default (AllowStoreRestart
    // off), and the client then appends.
    server.put_file("up.bin", &big[..123_457]);
    put(
        &mut client,
        "up.bin",
        &big[123_457..],
        StoreMode::Resume(123_457),
    )
    .await;
    assert_eq!(
        std::fs::read(server.root.join("up.bin")).unwrap(),
        big,
        "{kind}"
    );
    // With TLS 1.2 the session ID is reusable: everything on one control
    // connection. With TLS 1.3 rustls uses each ticket once; a server that
    // sends no tickets on data connections makes the client renew the
    // control connection now and then (reported, not hidden).
    eprintln!(
        "{kind} {version}: control connection renewed {} times",
        client.reconnects()
    );
    if tls12 || kind != Kind::Proftpd {
        assert_eq!(client.reconnects(), 0, "{kind} {version}");
    }
    client.quit().await.unwrap();
}

#[tokio::test]
async fn vsftpd_core_tls13() {
    core(Kind::Vsftpd, false).await;
}

#[tokio::test]
async fn proftpd_core_tls13() {
    core(Kind::Proftpd, false).await;
}

#[tokio::test]
async fn pure_ftpd_core_tls13() {
    core(Kind::PureFtpd, false).await;
}

#[tokio::test]
async fn vsftpd_core_tls12() {
    core(Kind::Vsftpd, true).await;
}

#[tokio::test]
async fn proftpd_core_tls12() {
    core(Kind::Proftpd, true).await;
}

#[tokio::test]
async fn pure_ftpd_core_tls12() {
    core(Kind::PureFtpd, true).await;
}

async fn implicit_and_active(kind: Kind) {
    let Some(server) = servers::start(kind) else {
        return;
    };
    let data = random_bytes(70_000);
    server.put_file("x.bin", &data);
    if let Some(port) = server.implicit_port {
        let mut o = options(&server);
        o.port = port;
        o.login.security = Security::Implicit;
        let mut client = Client::connect(o).await.unwrap();
        assert_eq!(get(&mut client, "x.bin", 0).await, data, "{kind} implicit");
        put(&mut client, "y.bin", &data, StoreMode::Replace).await;
        assert_eq!(std::fs::read(server.root.join("y.bin")).unwrap(), data);
    }
    let mut o = options(&server);
    o.data_mode = DataMode::Active;
    let mut client = Client::connect(o).await.unwrap();
    assert_eq!(get(&mut client, "x.bin", 0).await, data, "{kind} active");
    put(&mut client, "z.bin", &data, StoreMode::Replace).await;
    assert_eq!(std::fs::read(server.root.join("z.bin")).unwrap(), data);
    // PROT C: every one of these servers requires protected data; the
    // refusal (of PROT C itself, or of the transfer) is an error with the
    // server's reply, never a silent clear-text transfer.
    let refused = match client.set_prot(DataProtection::Clear).await {
        Err(e) => e.reply().map(|r| r.code),
        Ok(()) => match client.retr(b"x.bin", 0).await {
            Err(e) => e.reply().map(|r| r.code),
            Ok(_) => None,
        },
    };
    assert!(
        matches!(refused, Some(code) if code >= 400),
        "{kind}: PROT C transfer was not refused: {refused:?}"
    );
}

#[tokio::test]
async fn vsftpd_implicit_active_prot_c() {
    implicit_and_active(Kind::Vsftpd).await;
}

#[tokio::test]
async fn proftpd_implicit_active_prot_c() {
    implicit_and_active(Kind::Proftpd).await;
}

#[tokio::test]
async fn pure_ftpd_active_prot_c() {
    implicit_and_active(Kind::PureFtpd).await;
}

/// RFC 4217 §5: CCC after login against ProFTPD; data stays PROT P.
#[tokio::test]
async fn proftpd_ccc() {
    let Some(server) = servers::start(Kind::Proftpd) else {
        return;
    };
    let data = random_bytes(50_000);
    server.put_file("c.bin", &data);
    let mut o = options(&server);
    o.port = server.ccc_port.unwrap();
    o.login.ccc = true;
    let mut client = Client::connect(o)
        .await
        .unwrap_or_else(|e| panic!("CCC: {e}\n{}", server.logs()));
    assert!(!client.is_control_protected());
    assert_eq!(client.protection(), DataProtection::Private);
    assert_eq!(get(&mut client, "c.bin", 0).await, data);
    put(&mut client, "d.bin", &data, StoreMode::Replace).await;
    assert_eq!(std::fs::read(server.root.join("d.bin")).unwrap(), data);
    client.quit().await.unwrap();
}

/// ProFTPD with `TLSVerifyClient on` (its `client_cert_port`): with a client
/// certificate signed by the CA it trusts, the client logs in, lists and
/// transfers both ways on TLS 1.3 and 1.2 (data connections present the
/// certificate too); without one, or with one from another CA, connecting
/// fails with a TLS error whose hint names --cert/--key.
#[tokio::test]
async fn proftpd_tls_verify_client() {
    let Some(server) = servers::start(Kind::Proftpd) else {
        return;
    };
    let pki = server.client_pki.clone().unwrap();
    let cert_options = |tls12: bool| {
        let mut o = options(&server);
        o.port = server.client_cert_port.unwrap();
        o.tls.tls12_only = tls12;
        o
    };
    server.create_sample_tree();
    let data = random_bytes(90_000);
    for tls12 in [false, true] {
        let mut o = cert_options(tls12);
        o.tls.client_cert = Some((pki.cert.clone(), pki.key.clone()));
        let mut client = Client::connect(o)
            .await
            .unwrap_or_else(|e| panic!("tls12={tls12}: connect: {e}\n{}", server.logs()));
        assert!(client.is_control_protected());
        let entries = client.list(b"").await.unwrap();
        assert!(
            entries.iter().any(|e| e.name == b"a.txt" && e.size == 5),
            "tls12={tls12}: {entries:?}"
        );
        let name = format!("cert-{tls12}.bin");
        put(&mut client, &name, &data, StoreMode::Replace).await;
        assert_eq!(std::fs::read(server.root.join(&name)).unwrap(), data);
        assert_eq!(get(&mut client, &name, 0).await, data, "tls12={tls12}");
        client.quit().await.unwrap();
    }

    let other_ca = tempfile::tempdir().unwrap();
    let stranger = servers::ClientPki::generate(other_ca.path(), "another CA").unwrap();
    for (what, cert, expected_hint) in [
        ("no client certificate", None, "--cert FILE --key FILE"),
        (
            "a certificate from another CA",
            Some((stranger.cert, stranger.key)),
            "refused the client certificate given with --cert",
        ),
    ] {
        for tls12 in [false, true] {
            let mut o = cert_options(tls12);
            o.tls.client_cert = cert.clone();
            let error = match Client::connect(o).await {
                Err(e) => e,
                Ok(mut client) => match client.list(b"").await {
                    Err(e) => e,
                    Ok(entries) => panic!("{what}, tls12={tls12}: listed {entries:?}"),
                },
            };
            eprintln!("{what}, tls12={tls12}: {error} (hint: {:?})", error.hint());
            assert!(
                matches!(error, ftps_client::Error::Tls(_)),
                "{what}: {error:?}"
            );
            let hint = error.hint().unwrap_or_default();
            assert!(
                hint.contains(expected_hint),
                "{what}, tls12={tls12}: {error} (hint: {hint:?})"
            );
        }
    }
}

/// The LIST (and MLSD) output captured from each server parses to the same
/// normalized entries.
#[test]
fn captured_listings_parse_alike() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers");
    let now = 1_795_000_000; // 2026-11-18, after the capture dates
    for kind in Kind::ALL {
        let raw = std::fs::read(dir.join(format!("list-{kind}.txt"))).unwrap();
        let listing = ftps_client::listing::parse_list(&raw, now);
        assert_eq!(listing.unreadable, Vec::<Vec<u8>>::new(), "{kind} LIST");
        let mut entries = listing.entries;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let summary: Vec<(String, EntryKind, u64)> = entries
            .iter()
            .filter(|e| e.kind != EntryKind::Symlink)
            .map(|e| {
                (
                    String::from_utf8_lossy(&e.name).into_owned(),
                    e.kind.clone(),
                    e.size,
                )
            })
            .filter(|(n, _, _)| n != "dir")
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a.txt".to_string(), EntryKind::File, 5),
                ("new file.txt".to_string(), EntryKind::File, 11)
            ],
            "{kind} LIST"
        );
        assert!(entries
            .iter()
            .any(|e| e.name == b"dir" && e.kind == EntryKind::Dir));
        assert!(entries
            .iter()
            .any(|e| e.name == b"link" && e.kind == EntryKind::Symlink));
        let a = entries.iter().find(|e| e.name == b"a.txt").unwrap();
        // 2024-03-05 (LIST shows only the day for dates more than half a
        // year old; the capture machine ran UTC).
        assert_eq!(
            a.modified.map(|t| t - t % 86_400),
            Some(1_709_596_800),
            "{kind}"
        );
        let mlsd = dir.join(format!("mlsd-{kind}.txt"));
        if let Ok(raw) = std::fs::read(mlsd) {
            let listing = ftps_client::listing::parse_mlsd(&raw);
            assert_eq!(listing.unreadable, Vec::<Vec<u8>>::new(), "{kind} MLSD");
            let mut m = listing.entries;
            m.sort_by(|a, b| a.name.cmp(&b.name));
            let a = m.iter().find(|e| e.name == b"a.txt").unwrap();
            assert_eq!(
                (a.kind.clone(), a.size, a.modified),
                (EntryKind::File, 5, Some(1_709_647_629)),
                "{kind} MLSD"
            );
            assert!(
                m.iter()
                    .any(|e| e.name == b"dir" && e.kind == EntryKind::Dir),
                "{kind} MLSD"
            );
        }
    }
}
