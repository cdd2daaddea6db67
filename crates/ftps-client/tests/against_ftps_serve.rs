//! The client library against `ftps serve` (started in-process): login,
//! listings, 20 uploads then 20 downloads on one control connection with
//! every data connection resuming the TLS session (TLS 1.2 and 1.3), resume
//! of downloads and uploads, implicit FTPS, PROT C where allowed, active
//! mode, CCC, certificate pinning. Files are checked byte for byte.
#![allow(clippy::unwrap_used)]

use ftps_client::{
    Client, ConnectOptions, DataMode, DataProtection, EntryKind, Security, StoreMode,
};
use ftps_testing::{write_random, TestServer, PASSWORD, USER};
use tokio::io::AsyncReadExt;

fn options(server: &TestServer) -> ConnectOptions {
    let mut o = ConnectOptions::new("127.0.0.1", server.explicit.port(), USER, PASSWORD);
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

async fn put(client: &mut Client, path: &str, data: &[u8], mode: StoreMode) -> u64 {
    let mut reader = data;
    client
        .stor(path.as_bytes(), &mut reader, mode, false)
        .await
        .unwrap()
}

async fn twenty_puts_then_twenty_gets(tls13_only: bool, tls12_only: bool) {
    let server = TestServer::start();
    let mut o = options(&server);
    o.tls.tls13_only = tls13_only;
    o.tls.tls12_only = tls12_only;
    let mut client = Client::connect(o).await.unwrap();
    let expected = if tls13_only { "TLSv1_3" } else { "TLSv1_2" };
    assert_eq!(client.tls_version().as_deref(), Some(expected));
    let files: Vec<Vec<u8>> = (0..20)
        .map(|i| ftps_testing::random_bytes(1000 + i * 7919))
        .collect();
    for (i, data) in files.iter().enumerate() {
        put(&mut client, &format!("f{i}"), data, StoreMode::Replace).await;
        assert!(client.last_data_resumed(), "upload {i} did not resume");
    }
    for (i, data) in files.iter().enumerate() {
        assert_eq!(std::fs::read(server.path(&format!("f{i}"))).unwrap(), *data);
        assert_eq!(get(&mut client, &format!("f{i}"), 0).await, *data);
        assert!(client.last_data_resumed(), "download {i} did not resume");
    }
    client.quit().await.unwrap();
}

#[tokio::test]
async fn rfc4217_s10_2_twenty_puts_then_gets_resume_tls13() {
    twenty_puts_then_twenty_gets(true, false).await;
}

#[tokio::test]
async fn rfc4217_s10_2_twenty_puts_then_gets_resume_tls12() {
    twenty_puts_then_twenty_gets(false, true).await;
}

#[tokio::test]
async fn listing_and_file_commands() {
    let server = TestServer::start();
    write_random(&server.path("a.bin"), 1234);
    std::fs::create_dir(server.path("sub")).unwrap();
    let mut client = Client::connect(options(&server)).await.unwrap();
    assert!(client.features().mlst);
    let mut entries = client.list(b"").await.unwrap();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (entries[0].name.as_slice(), entries[0].size),
        (&b"a.bin"[..], 1234)
    );
    assert_eq!(entries[1].kind, EntryKind::Dir);
    assert_eq!(client.size(b"a.bin").await.unwrap(), 1234);
    assert!(client.mdtm(b"a.bin").await.unwrap() > 1_600_000_000);
    client.mkdir(b"new").await.unwrap();
    client.cwd(b"new").await.unwrap();
    assert_eq!(client.pwd().await.unwrap(), b"/new");
    client.cwd(b"/").await.unwrap();
    client.rename(b"a.bin", b"new/b.bin").await.unwrap();
    assert!(server.path("new/b.bin").exists());
    client.delete(b"new/b.bin").await.unwrap();
    client.rmdir(b"new").await.unwrap();
    let names = client.nlst(b"").await.unwrap();
    assert_eq!(names, vec![b"sub".to_vec()]);
    let err = client.delete(b"missing").await.unwrap_err();
    assert_eq!(err.reply().map(|r| r.code), Some(550));
}

#[tokio::test]
async fn resume_download_and_upload() {
    let server = TestServer::start();
    let data = write_random(&server.path("big.bin"), 300_000);
    let mut client = Client::connect(options(&server)).await.unwrap();
    let tail = get(&mut client, "big.bin", 100_000).await;
    assert_eq!(tail, data[100_000..]);
    // An interrupted upload: the server has the first part; resume with REST + STOR.
    std::fs::write(server.path("up.bin"), &data[..120_000]).unwrap();
    put(
        &mut client,
        "up.bin",
        &data[120_000..],
        StoreMode::Resume(120_000),
    )
    .await;
    assert_eq!(std::fs::read(server.path("up.bin")).unwrap(), data);
    // And with APPE.
    std::fs::write(server.path("app.bin"), &data[..50_000]).unwrap();
    put(&mut client, "app.bin", &data[50_000..], StoreMode::Append).await;
    assert_eq!(std::fs::read(server.path("app.bin")).unwrap(), data);
}

#[tokio::test]
async fn draft_s4_2_implicit_mode() {
    let server = TestServer::start();
    let data = write_random(&server.path("x"), 5000);
    let mut o = options(&server);
    o.port = server.implicit.port();
    o.login.security = Security::Implicit;
    let mut client = Client::connect(o).await.unwrap();
    assert!(client.is_control_protected());
    assert_eq!(get(&mut client, "x", 0).await, data);
}

#[tokio::test]
async fn rfc4217_s10_4_prot_c_where_allowed_and_521_where_not() {
    let server = TestServer::start_with(|c| c.policy.require_prot_p = false);
    let data = write_random(&server.path("x"), 5000);
    let mut o = options(&server);
    o.login.protection = DataProtection::Clear;
    let mut client = Client::connect(o).await.unwrap();
    assert_eq!(client.protection(), DataProtection::Clear);
    assert_eq!(get(&mut client, "x", 0).await, data);
    client.set_prot(DataProtection::Private).await.unwrap();
    assert_eq!(get(&mut client, "x", 0).await, data);

    let strict = TestServer::start();
    write_random(&strict.path("x"), 10);
    let mut o = options(&strict);
    o.login.protection = DataProtection::Clear;
    let mut client = Client::connect(o).await.unwrap();
    let err = client.retr(b"x", 0).await.unwrap_err();
    assert_eq!(err.reply().map(|r| r.code), Some(521));
    assert!(err.hint().is_some());
}

#[tokio::test]
async fn rfc4217_s7_active_mode() {
    let server = TestServer::start();
    let data = write_random(&server.path("x"), 70_000);
    let mut o = options(&server);
    o.data_mode = DataMode::Active;
    let mut client = Client::connect(o).await.unwrap();
    assert_eq!(get(&mut client, "x", 0).await, data);
    put(&mut client, "y", &data, StoreMode::Replace).await;
    assert_eq!(std::fs::read(server.path("y")).unwrap(), data);
}

#[tokio::test]
async fn rfc4217_s5_ccc_after_login() {
    let server = TestServer::start_with(|c| c.policy.allow_ccc = true);
    let data = write_random(&server.path("x"), 9000);
    let mut o = options(&server);
    o.login.ccc = true;
    let mut client = Client::connect(o).await.unwrap();
    assert!(!client.is_control_protected());
    assert_eq!(client.protection(), DataProtection::Private);
    assert_eq!(get(&mut client, "x", 0).await, data);
    client.quit().await.unwrap();
}

#[tokio::test]
async fn certificates_are_verified_and_pins_work() {
    let server = TestServer::start();
    // No --cacert: the self-signed certificate is not trusted.
    let mut o = options(&server);
    o.tls.ca_file = None;
    let err = Client::connect(o).await.unwrap_err();
    assert!(matches!(err, ftps_client::Error::Tls(_)), "{err:?}");
    assert!(err.hint().is_some());
    // A pin of the certificate works instead.
    let der = std::fs::read_to_string(&server.cert_pem).unwrap();
    let cert = rustls_pki_types::pem::PemObject::from_pem_slice(der.as_bytes()).unwrap();
    let pin = ftps_client::tls::spki_sha256(&cert).unwrap();
    let mut o = options(&server);
    o.tls.ca_file = None;
    o.tls.pin = Some(format!("sha256:{pin}"));
    Client::connect(o).await.unwrap();
    // A wrong pin does not.
    let mut o = options(&server);
    o.tls.ca_file = None;
    o.tls.pin = Some(format!("sha256:{}", "ab".repeat(32)));
    assert!(Client::connect(o).await.is_err());
}

#[tokio::test]
async fn wrong_password_is_a_login_error() {
    let server = TestServer::start();
    let mut o = options(&server);
    o.login.password = b"wrong".to_vec();
    let err = Client::connect(o).await.unwrap_err();
    assert_eq!(err.reply().map(|r| r.code), Some(530));
}

/// Hundreds of transfers in a row on one control connection, uploads
/// included: every data connection resumes (TLS 1.3 tickets are requested
/// with RFC 9149 and read after each upload), and the control connection is
/// never renewed.
#[tokio::test]
async fn rfc4217_s10_2_hundreds_of_transfers_resume_on_one_connection() {
    let server = TestServer::start();
    let mut client = Client::connect(options(&server)).await.unwrap();
    assert_eq!(client.tls_version().as_deref(), Some("TLSv1_3"));
    let data = ftps_testing::random_bytes(4096);
    for i in 0..150 {
        put(&mut client, &format!("u{i}"), &data, StoreMode::Replace).await;
        assert!(client.last_data_resumed(), "upload {i}");
    }
    for i in 0..150 {
        assert_eq!(get(&mut client, &format!("u{i}"), 0).await, data);
        assert!(client.last_data_resumed(), "download {i}");
    }
    assert_eq!(client.reconnects(), 0);
    client.quit().await.unwrap();
}
