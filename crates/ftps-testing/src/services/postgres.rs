//! A private PostgreSQL server: `initdb` into a temporary directory (with
//! SCRAM password authentication), then `postgres` in the foreground on a
//! loopback port, as the unprivileged `postgres` user when the tests run as
//! root (PostgreSQL refuses to run as root). Stopped by process id on drop;
//! [`Postgres::stop`] and [`Postgres::start_again`] restart it on the same
//! data and port, for the tests of what the server does meanwhile.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{free_ports, wait_listening, Process};

/// The superuser's password in the test instances.
pub const PASSWORD: &str = "ftps-test-db-password";

/// A running (or stopped) private PostgreSQL.
pub struct Postgres {
    dir: tempfile::TempDir,
    /// The loopback port.
    pub port: u16,
    process: Option<Process>,
    owner: Option<(u32, u32)>,
}

/// The directory of PostgreSQL's programs: where `initdb` is on `PATH`,
/// else Debian's `/usr/lib/postgresql/VERSION/bin` (newest version).
pub fn bin_dir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
    {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !path.is_empty() {
            let real = std::fs::canonicalize(&path).unwrap_or_else(|_| PathBuf::from(&path));
            return real.parent().map(Path::to_path_buf);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

/// Whether PostgreSQL's server programs are installed; under `CI=true` a
/// missing server fails the test.
pub fn available() -> bool {
    if bin_dir().is_some() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("PostgreSQL (initdb, postgres) is required under CI=true but is not installed");
    }
    eprintln!("SKIP: PostgreSQL not installed (set CI=true to make this a failure)");
    false
}

/// The uid and gid of the `postgres` user when running as root.
fn unprivileged_owner() -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        return None;
    }
    Some((
        id("-u").expect("running as root needs a `postgres` user to run PostgreSQL as"),
        id("-g").unwrap_or(0),
    ))
}

impl Postgres {
    /// Initialises and starts an instance; `None` when PostgreSQL is not
    /// installed (a failure under `CI=true`).
    pub fn start() -> Option<Postgres> {
        if !available() {
            return None;
        }
        let bin = bin_dir()?;
        let dir = tempfile::tempdir().unwrap();
        let owner = unprivileged_owner();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some((uid, gid)) = owner {
            chown(dir.path(), uid, gid);
            chown(&pwfile, uid, gid);
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .env("LC_ALL", "C");
        if let Some((uid, gid)) = owner {
            initdb.uid(uid).gid(gid);
        }
        let out = initdb.output().unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            dir,
            port: free_ports(1)[0],
            process: None,
            owner,
        };
        pg.start_again();
        Some(pg)
    }

    /// Starts the server (again) on the same data directory and port.
    pub fn start_again(&mut self) {
        let bin = bin_dir().unwrap();
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        let log = self.dir.path().join("postgres.log");
        let process = Process::spawn("postgres", cmd, &log);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        assert!(
            wait_listening(addr, Duration::from_secs(20)),
            "postgres did not start: {}",
            process.log()
        );
        self.process = Some(process);
    }

    /// Stops the server (fast shutdown: sessions are disconnected).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop_with("INT", Duration::from_secs(10));
        }
    }

    /// A connection URL for the superuser on database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://postgres:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Creates database `name` (with `psql`).
    pub fn create_database(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
    }

    /// Runs `sql` with `psql` on database `db` and returns its output
    /// (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-d",
                &self.url(db),
                "-c",
                sql,
            ])
            .output()
            .expect("psql (postgresql-client) is needed");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            // Immediate shutdown; the data directory goes with the tempdir.
            process.stop_with("QUIT", Duration::from_secs(5));
        }
    }
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}
