//! The cluster of `scripts/cluster.sh` (SeaweedFS as the object store, two
//! `ftps serve` nodes sharing its bucket, a private PostgreSQL for users and
//! bans, HAProxy with send-proxy-v2 in front), started and stopped by the
//! test through the script itself. Through the balancer: curl, lftp and the
//! `ftps` client; a file uploaded through one node downloaded through the
//! other, and found in the bucket; a user added with `ftps user add` logging
//! in on both nodes without a restart, with files under their own prefix; a
//! PROXY header from an untrusted address refused; PostgreSQL stopped —
//! logins get a clean 421 — and started again — logins work; the store
//! killed in the middle of an upload — a clean 4xx, the old object whole,
//! service again once it is back; a node killed with SIGKILL in the middle
//! of a multipart upload — the store, polled all along, never shows anything
//! but the old or the new object under the name, the client's retry lands
//! on the other node and completes, and the dead node's multipart upload is
//! reclaimed by the surviving node (the cluster runs with a short
//! `server.abandoned_upload_secs`).
//!
//! That a node starting never aborts a live node's upload in progress is
//! `s3_abandoned_multipart_uploads_are_reclaimed_but_never_a_live_nodes` in
//! `crates/ftps-server/tests/s3_store.rs`.
//!
//! Which node serves a client depends on the client's address (HAProxy's
//! `balance source`): the clients run from different loopback addresses,
//! and the node that served one is read from the nodes' logs.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ftps_testing::{require_tool, write_random};

const FTPS: &str = env!("CARGO_BIN_EXE_ftps");

/// The nodes' `server.abandoned_upload_secs`: short, so that the test sees
/// a dead node's multipart upload reclaimed (after 8 to 16 s).
const ABANDONED_UPLOAD_SECS: u64 = 8;

struct Cluster {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
    password: String,
    cert: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster.sh")
}

impl Cluster {
    fn up() -> Option<Cluster> {
        for tool in [
            "haproxy", "curl", "lftp", "python3", "psql", "weed", "setsid",
        ] {
            if !require_tool(tool) {
                return None;
            }
        }
        if !ftps_testing::services::postgres::available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("sh")
            .arg(script())
            .arg("up")
            .arg(dir.path())
            .env("FTPS_BIN", FTPS)
            .env("STORAGE", "s3")
            .env(
                "FTPS_ABANDONED_UPLOAD_SECS",
                ABANDONED_UPLOAD_SECS.to_string(),
            )
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut cluster = Cluster {
            env: HashMap::new(),
            password: String::new(),
            cert: dir.path().join("state/cert.pem"),
            dir,
        };
        assert!(
            out.status.success(),
            "cluster.sh up: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.env = read_env(&cluster.dir.path().join("cluster.env"));
        cluster
            .env
            .extend(read_env(&cluster.dir.path().join("s3-credentials")));
        // The credentials, as printed, in the curl command.
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("curl --ssl-reqd"))
            .unwrap_or_else(|| panic!("no curl line in:\n{text}"));
        let user_pass = line
            .split("--user '")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap();
        let (user, password) = user_pass.split_once(':').unwrap();
        assert_eq!(user, "demo");
        cluster.password = password.to_owned();
        assert!(text.contains(&format!(
            "ftp://127.0.0.1:{}/",
            cluster.port("EXPLICIT_PORT")
        )));
        assert!(text.contains(&format!(
            "ftps://127.0.0.1:{}/",
            cluster.port("IMPLICIT_PORT")
        )));
        Some(cluster)
    }

    fn port(&self, key: &str) -> u16 {
        self.env[key].parse().unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("ftp://127.0.0.1:{}/{path}", self.port("EXPLICIT_PORT"))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn pid(&self, name: &str) -> u32 {
        std::fs::read_to_string(self.path(&format!("pids/{name}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn log(&self, node: &str) -> String {
        std::fs::read_to_string(self.path(&format!("node-{node}.log"))).unwrap_or_default()
    }

    /// Which node logged a login from `source`.
    fn node_of(&self, source: &str) -> Option<&'static str> {
        let logged = |node: &str| {
            self.log(node)
                .lines()
                .any(|l| l.contains("login") && l.contains(&format!("{source}:")))
        };
        ["a", "b"].into_iter().find(|n| logged(n))
    }

    fn curl(&self, source: &str, user: &str, password: &str, args: &[&str]) -> Output {
        self.curl_command(source, user, password, args)
            .output()
            .unwrap()
    }

    /// curl through the balancer. Uploads use TLS 1.2: with TLS 1.3 curl
    /// 7.88 may close an upload with the session tickets unread, its kernel
    /// then resets the connection and drops the unsent tail, and the server
    /// answers 426 (docs/cluster.md, "Known limits"); lftp and the `ftps`
    /// client upload with TLS 1.3 below.
    fn curl_command(&self, source: &str, user: &str, password: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("curl");
        if args.contains(&"-T") {
            cmd.args(["--tls-max", "1.2"]);
        }
        cmd.args([
            "-sS",
            "-v",
            "--max-time",
            "60",
            "--ssl-reqd",
            "--interface",
            source,
        ])
        .arg("--cacert")
        .arg(&self.cert)
        .arg("--user")
        .arg(format!("{user}:{password}"))
        .args(args);
        cmd
    }

    /// Python `code` with `s3`, a boto3 client of the cluster's store: its
    /// standard output.
    fn s3(&self, code: &str) -> String {
        self.s3_try(code)
            .unwrap_or_else(|e| panic!("boto3: {e}\n{code}"))
    }

    fn s3_try(&self, code: &str) -> Result<String, String> {
        let keys = (
            self.env["S3_ACCESS_KEY"].as_str(),
            self.env["S3_SECRET_KEY"].as_str(),
        );
        ftps_testing::seaweedfs::boto3_as(&self.env["S3_ENDPOINT"], keys, code)
    }

    /// The object `key` of the cluster's bucket, read with boto3.
    fn object(&self, key: &str) -> Option<Vec<u8>> {
        let file = self.path("object.tmp");
        let _ = std::fs::remove_file(&file);
        let bucket = &self.env["S3_BUCKET"];
        let read = self.s3_try(&format!(
            "s3.download_file({bucket:?}, {key:?}, {:?})",
            file.display().to_string()
        ));
        if let Err(e) = read {
            eprintln!("cannot read {key}: {e}");
            return None;
        }
        std::fs::read(&file).ok()
    }

    /// The ETag of the object `key`.
    fn etag(&self, key: &str) -> String {
        let bucket = &self.env["S3_BUCKET"];
        self.s3(&format!(
            "print(s3.head_object(Bucket={bucket:?}, Key={key:?})['ETag'])"
        ))
        .trim()
        .to_owned()
    }

    /// The multipart uploads in progress below `prefix`: `KEY UPLOAD_ID`.
    fn multipart_uploads(&self, prefix: &str) -> Vec<String> {
        let bucket = &self.env["S3_BUCKET"];
        self.s3(&format!(
            "r = s3.list_multipart_uploads(Bucket={bucket:?}, Prefix={prefix:?})\n\
             for u in r.get('Uploads', []): print(u['Key'], u['UploadId'])"
        ))
        .lines()
        .map(str::to_owned)
        .collect()
    }

    fn script(&self, what: &str) {
        let out = Command::new("sh")
            .arg(script())
            .arg(what)
            .arg(self.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "cluster.sh {what}: {}", stderr(&out));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg(script())
            .arg("down")
            .arg(self.dir.path())
            .output();
    }
}

fn read_env(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn replies(out: &Output) -> String {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("< ") || l.starts_with("curl:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A loopback source address whose connections the balancer sends to
/// `node`, found by logging in from one address after another.
fn source_for(cluster: &Cluster, node: &str, password: &str) -> String {
    for i in 10..60 {
        let source = format!("127.0.0.{i}");
        if cluster.node_of(&source).is_none() {
            let out = cluster.curl(&source, "demo", password, &[&cluster.url("")]);
            assert!(out.status.success(), "{}", replies(&out));
        }
        if cluster.node_of(&source) == Some(node) {
            return source;
        }
    }
    panic!("no source address reaches node {node}");
}

#[test]
fn cluster_behind_haproxy() {
    let Some(cluster) = Cluster::up() else { return };
    let started = Instant::now();
    let pw = cluster.password.clone();
    let a = source_for(&cluster, "a", &pw);
    let b = source_for(&cluster, "b", &pw);

    // curl: up through node a, down through node b (the shared bucket),
    // both with PROT P and passive data through the node's own range.
    let local = cluster.path("up.bin");
    let data = write_random(&local, 2_000_000);
    let up = cluster.curl(
        &a,
        "demo",
        &pw,
        &["-T", local.to_str().unwrap(), &cluster.url("cross.bin")],
    );
    assert!(up.status.success(), "{}", replies(&up));
    let down = cluster.curl(
        &b,
        "demo",
        &pw,
        &["--disable-epsv", &cluster.url("cross.bin")],
    );
    assert!(down.status.success(), "{}", replies(&down));
    assert!(down.stdout == data, "downloaded through the other node");
    // In the store, under the user's prefix demo/.
    assert!(
        cluster.object("demo/cross.bin") == Some(data),
        "in the bucket"
    );
    let implicit = format!("ftps://127.0.0.1:{}/", cluster.port("IMPLICIT_PORT"));
    let list = cluster.curl(&b, "demo", &pw, &[&implicit]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("cross.bin"),
        "{}",
        replies(&list)
    );

    lftp_round_trip(&cluster, &a, &pw);
    ftps_client_round_trip(&cluster, &pw);
    user_add_logs_in_on_both_nodes(&cluster, &a, &b);
    untrusted_proxy_header_refused(&cluster);
    database_restart(&cluster, &b, &pw);
    store_killed_mid_upload(&cluster, &b, &pw);
    // Last: it kills node a.
    sigkill_mid_upload(&cluster, &a, &pw);
    eprintln!("cluster steps took {:?}", started.elapsed());
}

fn lftp_round_trip(cluster: &Cluster, source: &str, pw: &str) {
    let local = cluster.path("lftp.bin");
    let data = write_random(&local, 500_000);
    let back = cluster.path("lftp.back");
    let script = format!(
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:ca-file {}; \
         set net:socket-bind-ipv4 {source}; set net:max-retries 1; set net:timeout 20; \
         open -u demo,{pw} {}; put {} -o lftp.bin; get lftp.bin -o {}; cls -1",
        cluster.cert.display(),
        cluster.url(""),
        local.display(),
        back.display()
    );
    let out = Command::new("lftp")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "lftp: {}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("lftp.bin"));
    assert!(std::fs::read(&back).unwrap() == data, "lftp round trip");
}

fn ftps_client_round_trip(cluster: &Cluster, pw: &str) {
    let local = cluster.path("client.bin");
    let data = write_random(&local, 700_000);
    let run = |args: &[&str]| {
        let out = Command::new(FTPS)
            .args(args)
            .arg("--cacert")
            .arg(&cluster.cert)
            .args(["-u", &format!("demo:{pw}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "ftps {args:?}: {}", stderr(&out));
        out
    };
    run(&["put", local.to_str().unwrap(), &cluster.url("client.bin")]);
    let back = cluster.path("client.back");
    run(&["get", &cluster.url("client.bin"), back.to_str().unwrap()]);
    assert!(
        std::fs::read(&back).unwrap() == data,
        "ftps client round trip"
    );
    let implicit = format!("ftps://127.0.0.1:{}/", cluster.port("IMPLICIT_PORT"));
    let ls = run(&["ls", &implicit]);
    assert!(String::from_utf8_lossy(&ls.stdout).contains("client.bin"));
}

fn user_add_logs_in_on_both_nodes(cluster: &Cluster, a: &str, b: &str) {
    // Through node b's configuration: the same database as node a's; no
    // --root: the user's files are the prefix carol/ of the bucket.
    let out = ftps_testing::run_with_input(
        Command::new(FTPS)
            .arg("user")
            .arg("--config")
            .arg(cluster.path("node-b.toml"))
            .args(["add", "carol"]),
        b"carol's password\n",
    );
    assert!(out.status.success(), "ftps user add: {}", stderr(&out));
    for source in [a, b] {
        let out = cluster.curl(source, "carol", "carol's password", &[&cluster.url("")]);
        assert!(
            out.status.success(),
            "carol from {source}: {}",
            replies(&out)
        );
    }
    let local = cluster.path("carol.txt");
    let data = write_random(&local, 10_000);
    let up = cluster.curl(
        a,
        "carol",
        "carol's password",
        &["-T", local.to_str().unwrap(), &cluster.url("hello.txt")],
    );
    assert!(up.status.success(), "{}", replies(&up));
    assert!(
        cluster.object("carol/hello.txt") == Some(data),
        "carol/ prefix"
    );
    let list = Command::new(FTPS)
        .arg("user")
        .arg("--config")
        .arg(cluster.path("node-a.toml"))
        .arg("list")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("carol") && listed.contains("demo"),
        "{listed}"
    );
}

fn untrusted_proxy_header_refused(cluster: &Cluster) {
    let node = SocketAddr::from(([127, 0, 0, 2], cluster.port("A_EXPLICIT")));
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.9:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.connect(&node.into()).unwrap();
    let mut tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = tcp.write_all(b"PROXY TCP4 203.0.113.9 127.0.0.2 40000 21\r\n");
    let mut buf = [0u8; 64];
    let n = tcp.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "got {:?}", String::from_utf8_lossy(&buf[..n]));
}

fn database_restart(cluster: &Cluster, source: &str, pw: &str) {
    cluster.script("db-stop");
    // A password the login cache has not seen, so the database is asked.
    let started = Instant::now();
    let out = cluster.curl(source, "demo", "not the password", &[&cluster.url("")]);
    assert!(replies(&out).contains("< 421"), "{}", replies(&out));
    assert!(started.elapsed() < Duration::from_secs(15));
    cluster.script("db-start");
    let out = cluster.curl(source, "demo", pw, &[&cluster.url("")]);
    assert!(out.status.success(), "after the restart: {}", replies(&out));
}

/// The object store killed while an upload through the balancer runs: a
/// clean 4xx reply, the old object whole, and service again once the store
/// is back.
fn store_killed_mid_upload(cluster: &Cluster, source: &str, pw: &str) {
    let old = cluster.path("stable.old");
    let old_data = write_random(&old, 300_000);
    let up = cluster.curl(
        source,
        "demo",
        pw,
        &["-T", old.to_str().unwrap(), &cluster.url("stable.bin")],
    );
    assert!(up.status.success(), "{}", replies(&up));
    let new = cluster.path("stable.new");
    let new_data = write_random(&new, 3_000_000);
    let slow = cluster
        .curl_command(
            source,
            "demo",
            pw,
            &[
                "--limit-rate",
                "1M",
                "-T",
                new.to_str().unwrap(),
                &cluster.url("stable.bin"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    cluster.script("store-stop");
    let out = slow.wait_with_output().unwrap();
    let seen = replies(&out);
    assert!(!out.status.success(), "the upload failed: {seen}");
    assert!(
        seen.contains("< 451") || seen.contains("< 426"),
        "a clean 4xx for the upload: {seen}"
    );
    eprintln!(
        "the store killed mid-upload: {}",
        seen.lines()
            .filter(|l| l.starts_with("< 4"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    cluster.script("store-start");
    assert!(
        cluster.object("demo/stable.bin") == Some(old_data),
        "the old object, whole"
    );
    let again = cluster.curl(
        source,
        "demo",
        pw,
        &["-T", new.to_str().unwrap(), &cluster.url("stable.bin")],
    );
    assert!(
        again.status.success(),
        "after the store returned: {}",
        replies(&again)
    );
    let down = cluster.curl(source, "demo", pw, &[&cluster.url("stable.bin")]);
    assert!(down.status.success(), "{}", replies(&down));
    assert!(down.stdout == new_data, "served again");
}

/// Polls the store with boto3 (`s3`) until the file `stop` exists (or the
/// test is gone, or five minutes have passed): the size
/// and ETag of `key` and every object listed below `prefix`, printed at the
/// end as `state SIZE ETAG`, `listed KEY SIZE` and `polls N` lines; each
/// multipart upload to `key` as a `KEY UPLOAD_ID` line of the file
/// `uploads_file` as soon as it is seen.
const POLLER: &str = r#"
import os, sys, time
bucket, key, prefix, stop, uploads_file = sys.argv[1:6]
states, listed, uploads, polls = set(), set(), set(), 0
parent, deadline = os.getppid(), time.time() + 300
while not os.path.exists(stop) and os.getppid() == parent and time.time() < deadline:
    try:
        h = s3.head_object(Bucket=bucket, Key=key)
        states.add((h['ContentLength'], h['ETag']))
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get('Contents', []):
            listed.add((o['Key'], o['Size']))
        for u in s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get('Uploads', []):
            if (u['Key'], u['UploadId']) not in uploads:
                uploads.add((u['Key'], u['UploadId']))
                with open(uploads_file, 'a') as f:
                    f.write('%s %s\n' % (u['Key'], u['UploadId']))
        polls += 1
    except Exception as e:
        print('error', e, flush=True)
    time.sleep(0.05)
for size, etag in sorted(states): print('state', size, etag)
for k, size in sorted(listed): print('listed', k, size)
print('polls', polls)
"#;

/// Node a killed with SIGKILL in the middle of a multipart upload.
fn sigkill_mid_upload(cluster: &Cluster, a: &str, pw: &str) {
    let old = cluster.path("old.bin");
    let old_data = write_random(&old, 1_000_000);
    let up = cluster.curl(
        a,
        "demo",
        pw,
        &["-T", old.to_str().unwrap(), &cluster.url("big.bin")],
    );
    assert!(up.status.success(), "{}", replies(&up));
    let old_etag = cluster.etag("demo/big.bin");
    // The store, polled from now until the retry is done.
    let stop = cluster.path("poller.stop");
    let uploads = cluster.path("poller.uploads");
    let mut poller = poller(cluster, &stop, &uploads);
    // More than two parts of 8 MiB, slowly, so that node a dies with a
    // multipart upload in progress.
    let new = cluster.path("new.bin");
    let new_data = write_random(&new, 20_000_000);
    let mut slow: Child = cluster
        .curl_command(
            a,
            "demo",
            pw,
            &[
                "--limit-rate",
                "3M",
                "-T",
                new.to_str().unwrap(),
                &cluster.url("big.bin"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pending = Vec::new();
    let started = wait_for(Duration::from_secs(20), || {
        pending = std::fs::read_to_string(&uploads)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        !pending.is_empty()
    });
    if !started {
        let _ = slow.kill();
        let out = slow.wait_with_output().unwrap();
        panic!(
            "no multipart upload in progress; curl: {}\nnode a: {}",
            replies(&out),
            cluster.log("a")
        );
    }
    let killed = Command::new("kill")
        .args(["-KILL", &cluster.pid("node-a").to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = slow.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "the upload through the killed node failed: {}",
        replies(&out)
    );
    assert!(
        cluster.object("demo/big.bin") == Some(old_data.clone()),
        "old object intact"
    );
    // The client's retry lands on node b and completes.
    let retry = cluster.curl(
        a,
        "demo",
        pw,
        &["-T", new.to_str().unwrap(), &cluster.url("big.bin")],
    );
    assert!(retry.status.success(), "retry: {}", replies(&retry));
    assert!(
        cluster.object("demo/big.bin") == Some(new_data.clone()),
        "new object whole"
    );
    assert_eq!(cluster.node_of(a), Some("a"));
    assert!(
        cluster.log("b").contains(&format!("{a}:")),
        "the retry was served by node b"
    );
    // Never anything but the old or the new object under the name.
    std::fs::write(&stop, b"").unwrap();
    let seen = poller.0.take().unwrap().wait_with_output().unwrap();
    let seen = String::from_utf8_lossy(&seen.stdout).into_owned();
    let new_etag = cluster.etag("demo/big.bin");
    let polls: u32 = seen
        .lines()
        .find_map(|l| l.strip_prefix("polls "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        polls >= 10,
        "the store was polled during the upload: {seen}"
    );
    eprintln!("the store, polled {polls} times during the upload, the kill and the retry:\n{seen}");
    let allowed = [
        format!("state {} {old_etag}", old_data.len()),
        format!("state {} {new_etag}", new_data.len()),
        format!("listed demo/big.bin {}", old_data.len()),
        format!("listed demo/big.bin {}", new_data.len()),
    ];
    for line in seen.lines().filter(|l| !l.starts_with("polls ")) {
        let whole = allowed.iter().any(|ok| ok == line)
            || (line.starts_with("listed ") && !line.contains("big"));
        assert!(whole, "seen in the store: {line}\n{seen}");
    }
    dead_nodes_upload_reclaimed(cluster, &pending);
}

/// A child process killed when the test ends early.
struct Killed(Option<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The [`POLLER`] on `demo/big.bin`, until `stop` exists.
fn poller(cluster: &Cluster, stop: &Path, uploads: &Path) -> Killed {
    let script = format!(
        "import boto3\nfrom botocore.config import Config\n\
         s3 = boto3.client('s3', endpoint_url={:?}, aws_access_key_id={:?}, \
         aws_secret_access_key={:?}, region_name='us-east-1', \
         config=Config(s3={{'addressing_style': 'path'}}, retries={{'max_attempts': 1}}))\n{POLLER}",
        cluster.env["S3_ENDPOINT"], cluster.env["S3_ACCESS_KEY"], cluster.env["S3_SECRET_KEY"]
    );
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([&cluster.env["S3_BUCKET"], "demo/big.bin", "demo/"])
        .arg(stop)
        .arg(uploads)
        .stdout(Stdio::piped())
        .spawn()
        .map(|child| Killed(Some(child)))
        .unwrap()
}

/// The dead node's multipart upload is aborted by the surviving node once
/// it is older than `abandoned_upload_secs` and node a's heartbeat is
/// stale; nothing is left in progress below demo/.
fn dead_nodes_upload_reclaimed(cluster: &Cluster, pending: &[String]) {
    let since = Instant::now();
    let limit = Duration::from_secs(3 * ABANDONED_UPLOAD_SECS + 10);
    let reclaimed = wait_for(limit, || {
        let now = cluster.multipart_uploads("demo/");
        !pending.iter().any(|u| now.contains(u))
    });
    assert!(
        reclaimed,
        "not reclaimed: {pending:?}\nnode b: {}",
        cluster.log("b")
    );
    eprintln!(
        "node a's multipart upload {pending:?} reclaimed {:?} after the retry",
        since.elapsed()
    );
    assert_eq!(cluster.multipart_uploads("demo/"), Vec::<String>::new());
}

/// Whether `done` holds within `limit`.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
