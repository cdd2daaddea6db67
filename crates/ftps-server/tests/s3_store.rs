//! The object-store back-end (storage/s3) against a real SeaweedFS over the
//! S3 API, for what only an object store has: server-side copies for APPE and
//! REST + STOR of objects larger than a part, directories as key prefixes,
//! listings over several pages, a key prefix nobody may climb out of, wrong
//! credentials, and the store stopped in the middle of an upload and of a
//! download (a clean 4xx reply, nothing half-committed, service again once the
//! store is back). The protocol, hostile-input and fault tests run on this
//! back-end too (scripts/test.sh runs them again with FTPS_TEST_BACKEND=s3).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ftps_testing::client::{self, within, Client, Setup};
use ftps_testing::seaweedfs::{SeaweedFs, BUCKET};
use ftps_testing::{random_bytes, Store, TestServer};
use tokio::io::AsyncWriteExt;

/// A server whose test account lives below a fresh prefix of `endpoint`'s
/// bucket.
fn server_on(endpoint: &str, adjust: impl FnOnce(&mut ftps_server::config::Config)) -> TestServer {
    let root = tempfile::tempdir().unwrap();
    TestServer::start_with_store(root, Store::s3_on(endpoint), adjust)
}

/// A server on the shared SeaweedFS; `None` when `weed` is missing (a
/// failure under `CI=true`).
fn shared_server() -> Option<TestServer> {
    let weed = SeaweedFs::shared()?;
    Some(server_on(&weed.endpoint, |_| {}))
}

const MIB: usize = 1 << 20;

#[tokio::test]
async fn s3_appe_and_rest_stor_of_objects_larger_than_a_part_keep_the_old_bytes() {
    let Some(server) = shared_server() else {
        return;
    };
    within(120, async {
        // 12 MiB: one full 8 MiB part is copied server-side (UploadPartCopy),
        // the rest is streamed through the server.
        let old = server.store.write_random("big.bin", 12 * MIB + 7);
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let tail = random_bytes(MIB + 3);
        c.upload(b"APPE big.bin", &tail).await;
        let mut expected = old.clone();
        expected.extend_from_slice(&tail);
        c.check(
            server.store.read("big.bin").unwrap() == expected,
            "APPE: the old object, then the new bytes",
        );
        c.expect("REST 9437184", 350).await; // 9 MiB: past the first part
        let new = random_bytes(3 * MIB);
        c.upload(b"STOR big.bin", &new).await;
        let mut expected2 = expected[..9 * MIB].to_vec();
        expected2.extend_from_slice(&new);
        c.check(
            server.store.read("big.bin").unwrap() == expected2,
            "REST 9 MiB + STOR: the first 9 MiB kept, then the new bytes",
        );
        c.expect("REST 99999999", 350).await;
        c.epsv().await;
        c.expect("STOR big.bin", 554).await;
        c.check(
            server.store.leftovers().is_empty(),
            &format!("multipart uploads left: {:?}", server.store.leftovers()),
        );
    })
    .await;
}

#[tokio::test]
async fn s3_directories_are_key_prefixes() {
    let Some(server) = shared_server() else {
        return;
    };
    within(120, async {
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        c.expect_replies(&[
            ("MKD d", 257),
            ("MKD d", 550),
            ("CWD d", 250),
            ("CWD /", 250),
        ])
        .await;
        c.check(server.store.exists("d"), "MKD wrote the marker d/");
        c.stor("d/f.txt", b"inside").await;
        c.expect_replies(&[
            ("RMD d", 550),  // not empty
            ("DELE d", 550), // a directory
            ("RNFR d", 350),
            ("RNTO e", 502), // renaming a prefix is refused
            ("RNFR d/f.txt", 350),
            ("RNTO g.txt", 250), // a file: copy, then delete
            ("RMD d", 250),
            ("CWD d", 550),
            ("RMD nothere", 550),
            ("MKD x/y", 550), // no parent
        ])
        .await;
        c.check(
            server.store.read("g.txt").as_deref() == Some(&b"inside"[..]),
            "RNFR/RNTO moved the content",
        );
        c.check(!server.store.exists("d/f.txt"), "the source is gone");
        c.check(!server.store.exists("d"), "RMD removed the marker");
        c.stor("h.txt", b"other").await;
        c.expect_replies(&[("RNFR h.txt", 350), ("RNTO g.txt", 250)])
            .await;
        c.check(
            server.store.read("g.txt").as_deref() == Some(&b"other"[..]),
            "RNTO onto an existing object replaces it",
        );
        c.expect("MKD g.txt", 550).await;
        c.epsv().await;
        c.expect("STOR g.txt/x", 550).await;
    })
    .await;
}

#[tokio::test]
async fn s3_listings_stream_over_several_pages() {
    let Some(server) = shared_server() else {
        return;
    };
    within(300, async {
        // More than two pages of 1,000 keys, written in parallel.
        let names: Vec<String> = (0..2_345).map(|i| format!("n{i:05}.txt")).collect();
        std::thread::scope(|s| {
            for chunk in names.chunks(400) {
                let store = &server.store;
                s.spawn(move || {
                    for n in chunk {
                        store.write(n, b"x");
                    }
                });
            }
        });
        server.store.create_dir("sub");
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        let nlst = c.download(b"NLST").await;
        let got: Vec<&[u8]> = nlst
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty())
            .collect();
        c.check(
            got.len() == names.len() + 1,
            &format!("NLST gave {} names", got.len()),
        );
        c.check(got.contains(&&b"sub"[..]), "the directory is listed");
        let mlsd = String::from_utf8(c.download(b"MLSD").await).unwrap();
        let files = mlsd.lines().filter(|l| l.contains("type=file;")).count();
        c.check(files == names.len(), &format!("MLSD listed {files} files"));
        c.check(
            mlsd.lines()
                .any(|l| l.contains("type=dir;") && l.ends_with(" sub")),
            "MLSD lists sub as a directory",
        );
    })
    .await;
}

#[tokio::test]
async fn s3_path_traversal_stays_inside_the_prefix() {
    let Some(weed) = SeaweedFs::shared() else {
        return;
    };
    let server = server_on(&weed.endpoint, |_| {});
    within(120, async {
        let Store::S3 { prefix, .. } = &server.store else {
            unreachable!()
        };
        let prefix = prefix.trim_end_matches('/').to_owned();
        // Objects around the user's prefix: next to it, and at the top.
        let outside = [
            format!("{prefix}-sibling/secret.txt"),
            format!("{prefix}.secret"),
            format!("top-{prefix}.txt"),
        ];
        for key in &outside {
            server.store.raw_write(key, b"SECRET");
        }
        server.store.write("inside.txt", b"inside");
        let sibling = format!("{prefix}-sibling");
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        for path in [
            format!("../{sibling}/secret.txt"),
            format!("/../../{sibling}/secret.txt"),
            format!("../{prefix}.secret"),
            format!("../../top-{prefix}.txt"),
        ] {
            c.expect(&format!("SIZE {path}"), 550).await;
            c.epsv().await;
            c.expect(&format!("RETR {path}"), 550).await;
            c.expect(&format!("DELE {path}"), 550).await;
        }
        c.expect("CWD ..", 250).await;
        let listing = c.download(b"NLST").await;
        c.check(listing == b"inside.txt\r\n", "the root's listing only");
        c.upload(b"STOR ../../pwned.txt", b"PWNED").await;
        c.expect_replies(&[("RNFR inside.txt", 350), ("RNTO ../../moved.txt", 250)])
            .await;
        c.expect("MKD ../../made", 257).await;
        // Everything landed inside the prefix; nothing around it changed.
        for key in &outside {
            let now = server.store.raw_read(key);
            c.check(
                now.as_deref() == Some(&b"SECRET"[..]),
                &format!("{key} unchanged"),
            );
        }
        for name in ["pwned.txt", "moved.txt", "made/"] {
            c.check(
                server.store.exists(name.trim_end_matches('/')),
                &format!("{name} inside the prefix"),
            );
            let top = server.store.raw_read(name).is_some();
            c.check(!top, &format!("{name} not at the top of the bucket"));
        }
        for key in &outside {
            server.store.raw_delete(key);
        }
    })
    .await;
}

#[tokio::test]
async fn s3_wrong_credentials_fail_each_command_cleanly() {
    let Some(weed) = SeaweedFs::shared() else {
        return;
    };
    let server = server_on(&weed.endpoint, |cfg| {
        cfg.s3.secret_access_key = Some("not-the-secret".into());
    });
    within(120, async {
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;
        // The store refuses every request (403): 550, before any 150.
        c.expect("CWD /", 250).await; // the root needs no request
        c.expect("SIZE f.txt", 550).await;
        c.epsv().await;
        c.expect("STOR f.txt", 550).await;
        c.epsv().await;
        c.expect("LIST", 550).await;
        c.expect_replies(&[("MKD d", 550), ("NOOP", 200)]).await;
    })
    .await;
}

/// A few bytes of an upload now and then, so that it never stalls.
async fn trickle(tls: &mut client::TlsData, sent: &mut Vec<u8>) {
    let piece = random_bytes(16 << 10);
    sent.extend_from_slice(&piece);
    tls.write_all(&piece).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Send `len` bytes of STOR `name`, stopping the store once `stop_after`
/// bytes are out; returns the final reply's code.
async fn stor_while_the_store_stops(
    c: &mut Client,
    weed: &mut SeaweedFs,
    name: &str,
    len: usize,
    stop_after: usize,
) -> u16 {
    let addr = c.epsv().await;
    c.send(&format!("STOR {name}")).await;
    c.expect_reply(150).await;
    let tcp = client::tcp_connect(addr).await;
    let mut tls = client::data_tls(tcp, &c.config()).await.unwrap();
    let block = random_bytes(256 << 10);
    let mut sent = 0;
    let mut stopped = false;
    while sent < len {
        if !stopped && sent >= stop_after {
            weed.stop();
            stopped = true;
        }
        if tls.write_all(&block).await.is_err() {
            break;
        }
        sent += block.len();
    }
    let _ = tls.shutdown().await;
    drop(tls);
    c.read_reply().await.code
}

#[tokio::test]
async fn s3_store_stopped_mid_upload_and_mid_download_fails_cleanly_and_serves_again() {
    if !ftps_testing::require_tool("weed") {
        return;
    }
    let mut weed = SeaweedFs::start();
    weed.create_bucket(BUCKET);
    let server = server_on(&weed.endpoint, |cfg| cfg.s3.timeout_secs = 5);
    within(600, async {
        let old = server.store.write_random("victim.bin", 3 * MIB);
        let big = server.store.write_random("big.bin", 48 * MIB);
        let mut c = Client::session(&server, Setup::explicit().type_i()).await;

        // Mid-upload: some parts are in the store, then it is gone.
        let code =
            stor_while_the_store_stops(&mut c, &mut weed, "victim.bin", 40 * MIB, 20 * MIB).await;
        c.check(
            (400..600).contains(&code),
            &format!("STOR with the store gone ends 4xx/5xx, got {code}"),
        );
        c.expect("NOOP", 200).await;
        c.epsv().await;
        let code = c.cmd("LIST").await.code;
        c.check(
            code == 451,
            &format!("LIST while the store is down: 451, got {code}"),
        );
        weed.restart();
        c.check(
            server.store.read("victim.bin").as_deref() == Some(&old[..]),
            "the old object is untouched: nothing half-committed",
        );

        // Mid-download: the transfer fails instead of ending short.
        let addr = c.epsv().await;
        c.send("RETR big.bin").await;
        c.expect_reply(150).await;
        let tcp = client::tcp_connect(addr).await;
        let mut tls = client::data_tls(tcp, &c.config()).await.unwrap();
        let mut got = vec![0u8; 4 * MIB];
        tokio::io::AsyncReadExt::read_exact(&mut tls, &mut got)
            .await
            .unwrap();
        weed.stop();
        let rest = client::read_all(&mut tls)
            .await
            .map(|d| d.len())
            .unwrap_or(0);
        let reply = c.read_reply().await;
        c.check(
            (400..600).contains(&reply.code),
            &format!(
                "RETR with the store gone ends 4xx/5xx, got {} after {} bytes",
                reply.code,
                4 * MIB + rest
            ),
        );
        c.check(
            4 * MIB + rest < big.len(),
            "the download really was cut short",
        );

        // The store is back: the same session works again.
        weed.restart();
        let again = c.retr("big.bin").await;
        c.check(again == big, "RETR works again");
        let fresh = random_bytes(9 * MIB);
        c.stor("victim.bin", &fresh).await;
        c.check(
            server.store.read("victim.bin").as_deref() == Some(&fresh[..]),
            "STOR works again",
        );
    })
    .await;
    drop(server);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn s3_abandoned_multipart_uploads_are_reclaimed_but_never_a_live_nodes() {
    if !ftps_testing::require_tool("weed") {
        return;
    }
    // A store of its own: a short threshold must not meet other tests' uploads.
    let weed = SeaweedFs::start();
    weed.create_bucket(BUCKET);
    let node = |name: &'static str| {
        move |cfg: &mut ftps_server::config::Config| {
            cfg.s3.node_id = Some(name.into());
            cfg.server.transfer_stall_timeout_secs = 5;
            cfg.server.abandoned_upload_secs = 6;
        }
    };
    // An upload nobody owns: started by another client, never completed.
    weed.boto3(&format!(
        "u = s3.create_multipart_upload(Bucket={BUCKET:?}, Key='orphan.bin')\n\
         s3.upload_part(Bucket={BUCKET:?}, Key='orphan.bin', UploadId=u['UploadId'], PartNumber=1, Body=b'x' * 1000)"
    ))
    .unwrap();
    let server_b = server_on(&weed.endpoint, node("node-b"));
    within(180, async {
        // Node B: an upload in progress (past its first part), paused.
        let mut c = Client::session(&server_b, Setup::explicit().type_i()).await;
        let addr = c.epsv().await;
        c.send("STOR live.bin").await;
        c.expect_reply(150).await;
        let tcp = client::tcp_connect(addr).await;
        let mut tls = client::data_tls(tcp, &c.config()).await.unwrap();
        // Past two parts: OpenDAL creates the multipart upload with the second.
        let data = random_bytes(20 * MIB);
        tls.write_all(&data).await.unwrap();
        tls.flush().await.unwrap();
        let Store::S3 { prefix, .. } = &server_b.store else {
            unreachable!()
        };
        let live_key = format!("{prefix}live.bin");
        let pending = |key: &str| weed.multipart_uploads(BUCKET, "").contains(&key.to_owned());
        let mut sent = data.clone();
        let started = std::time::Instant::now();
        while !pending(&live_key) && started.elapsed() < Duration::from_secs(30) {
            trickle(&mut tls, &mut sent).await;
        }
        c.check(
            pending(&live_key),
            "node B's multipart upload is in progress",
        );
        // Both uploads become older than the threshold.
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(8) {
            trickle(&mut tls, &mut sent).await;
        }
        // Node A starts and reclaims: the orphan goes, B's upload stays.
        let server_a = server_on(&weed.endpoint, node("node-a"));
        let started = std::time::Instant::now();
        while pending("orphan.bin") && started.elapsed() < Duration::from_secs(20) {
            trickle(&mut tls, &mut sent).await;
        }
        let now = weed.multipart_uploads(BUCKET, "");
        c.check(
            !now.contains(&"orphan.bin".to_owned()),
            "the abandoned upload was aborted",
        );
        c.check(
            now.contains(&live_key),
            &format!("node B's upload in progress was not touched: {now:?}"),
        );
        // B completes its upload: the object is whole.
        tls.shutdown().await.unwrap();
        let _ = client::read_all(&mut tls).await;
        c.expect_reply(226).await;
        c.check(
            server_b.store.read("live.bin").as_deref() == Some(&sent[..]),
            "node B's object is whole",
        );
        drop(server_a);
    })
    .await;
}
