//! The cluster of `scripts/cluster.sh` (two `ftps serve` nodes, a private
//! PostgreSQL, HAProxy with send-proxy-v2 in front), started and stopped by
//! the test through the script itself. Through the balancer: curl, lftp and
//! the `ftps` client; a file uploaded through one node downloaded through the
//! other; a user added with `ftps user add` logging in on both nodes without
//! a restart; a node killed with SIGKILL in the middle of an upload — the
//! old file stays whole under its name, the client's retry lands on the other
//! node and completes; PostgreSQL stopped — logins get a clean 421 — and
//! started again — logins work; a PROXY header from an untrusted address
//! refused.
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
        for tool in ["haproxy", "curl", "lftp", "python3", "psql"] {
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
    let pw = cluster.password.clone();
    let a = source_for(&cluster, "a", &pw);
    let b = source_for(&cluster, "b", &pw);

    // curl: up through node a, down through node b (shared files), both
    // with PROT P and passive data through the node's own range.
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
    // Last: it kills node a.
    sigkill_mid_upload(&cluster, &a, &pw);
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
    let root = cluster.path("data/carol");
    std::fs::create_dir_all(&root).unwrap();
    // Through node b's configuration: the same database as node a's.
    let mut add = Command::new(FTPS)
        .arg("user")
        .arg("--config")
        .arg(cluster.path("node-b.toml"))
        .args(["add", "carol", "--root"])
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"carol's password\n")
        .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(out.status.success(), "ftps user add: {}", stderr(&out));
    for source in [a, b] {
        let out = cluster.curl(source, "carol", "carol's password", &[&cluster.url("")]);
        assert!(
            out.status.success(),
            "carol from {source}: {}",
            replies(&out)
        );
    }
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

fn sigkill_mid_upload(cluster: &Cluster, a: &str, pw: &str) {
    let target = cluster.path("data/demo/big.bin");
    let old = cluster.path("old.bin");
    let old_data = write_random(&old, 1_000_000);
    let up = cluster.curl(
        a,
        "demo",
        pw,
        &["-T", old.to_str().unwrap(), &cluster.url("big.bin")],
    );
    assert!(up.status.success(), "{}", replies(&up));
    let new = cluster.path("new.bin");
    let new_data = write_random(&new, 8_000_000);
    // Slowly, so that node a dies in the middle of it.
    let mut slow: Child = cluster
        .curl_command(
            a,
            "demo",
            pw,
            &[
                "--limit-rate",
                "1M",
                "-T",
                new.to_str().unwrap(),
                &cluster.url("big.bin"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The upload is under way once its temporary file exists.
    wait_for(Duration::from_secs(20), || {
        upload_temp_exists(&cluster.path("data/demo"))
    });
    std::thread::sleep(Duration::from_secs(1));
    let node_a = cluster.pid("node-a");
    let killed = Command::new("kill")
        .args(["-KILL", &node_a.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = slow.wait().unwrap();
    assert!(
        !status.success(),
        "the upload through the killed node failed"
    );
    // No partial under the target name: the old content, whole.
    assert!(
        std::fs::read(&target).unwrap() == old_data,
        "old file intact"
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
        std::fs::read(&target).unwrap() == new_data,
        "new file whole"
    );
    assert_eq!(cluster.node_of(a), Some("a"));
    assert!(
        cluster.log("b").contains(&format!("{a}:")),
        "the retry was served by node b"
    );
}

fn upload_temp_exists(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with(".ftps-upload."))
        })
        .unwrap_or(false)
}

fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out");
}
