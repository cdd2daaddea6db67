//! MFMT (draft-somers-ftp-mfxx), HASH and OPTS HASH (draft-bryan-ftpext-hash)
//! and RANG (draft-bryan-ftp-range) on the real server and the local disk:
//! the replies byte for byte as the drafts give them, the modification time
//! on disk, the digests against SHA-256 and SHA-512 computed here.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use ftps_testing::client::{within, Client, Setup};
use ftps_testing::{write_random, TestServer};
use sha2::Digest;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn mfxx_mfmt_sets_the_modification_time_on_disk_and_mdtm_reads_it() {
    within(60, async {
        let server = TestServer::start();
        write_random(&server.path("a file.txt"), 10);
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let feat = c.expect("FEAT", 211).await;
        c.check(feat.text().contains("MFMT"), "FEAT lists MFMT");
        let r = c.expect("MFMT 20200102030405 a file.txt", 213).await;
        c.check(
            r.text() == "Modify=20200102030405; a file.txt",
            &format!("reply: {}", r.text()),
        );
        let modified = std::fs::metadata(server.path("a file.txt"))
            .unwrap()
            .modified()
            .unwrap();
        c.check(
            modified == UNIX_EPOCH + Duration::from_secs(1_577_934_245),
            &format!("on disk: {modified:?}"),
        );
        let r = c.expect("MDTM a file.txt", 213).await;
        c.check(r.text() == "20200102030405", &format!("MDTM: {}", r.text()));
        c.expect("MFMT 20200102030405 missing.txt", 550).await;
        c.expect("MFMT 2020 a file.txt", 501).await;
    })
    .await;
}

#[tokio::test]
async fn hash_draft_hash_sha256_sha512_and_ranges_match_the_file() {
    within(60, async {
        let server = TestServer::start();
        let data = write_random(&server.path("data.bin"), 1_000_003);
        std::fs::create_dir(server.path("dir")).unwrap();
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let feat = c.expect("FEAT", 211).await;
        c.check(
            feat.text().contains(" HASH SHA-256*;SHA-512"),
            &format!("FEAT: {}", feat.text()),
        );
        let r = c.expect("HASH data.bin", 213).await;
        let expected = format!(
            "SHA-256 0-{} {} data.bin",
            data.len(),
            hex(&sha2::Sha256::digest(&data))
        );
        c.check(
            r.text() == expected,
            &format!("HASH: {} != {expected}", r.text()),
        );
        c.expect("OPTS HASH SHA-512", 200).await;
        let r = c.expect("HASH data.bin", 213).await;
        let expected = format!(
            "SHA-512 0-{} {} data.bin",
            data.len(),
            hex(&sha2::Sha512::digest(&data))
        );
        c.check(r.text() == expected, &format!("HASH SHA-512: {}", r.text()));
        c.expect("OPTS HASH SHA-256", 200).await;
        // RANG: octets 1000..=1999.
        c.expect("RANG 1000 1999", 350).await;
        let r = c.expect("HASH data.bin", 213).await;
        let expected = format!(
            "SHA-256 1000-2000 {} data.bin",
            hex(&sha2::Sha256::digest(&data[1000..2000]))
        );
        c.check(
            r.text() == expected,
            &format!("HASH after RANG: {}", r.text()),
        );
        c.expect("HASH dir", 553).await;
        c.expect("HASH missing.bin", 550).await;
        c.expect("RANG 5000000 5000010", 350).await;
        c.expect("HASH data.bin", 501).await;
    })
    .await;
}

#[tokio::test]
async fn hash_of_a_file_over_the_limit_is_556_at_once() {
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.server.hash_max_bytes = 1000);
        let data = write_random(&server.path("big.bin"), 5000);
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        c.expect("HASH big.bin", 556).await;
        // A part within the limit is hashed.
        c.expect("RANG 0 999", 350).await;
        let r = c.expect("HASH big.bin", 213).await;
        let expected = format!(
            "SHA-256 0-1000 {} big.bin",
            hex(&sha2::Sha256::digest(&data[..1000]))
        );
        c.check(r.text() == expected, &format!("HASH: {}", r.text()));
    })
    .await;
}
