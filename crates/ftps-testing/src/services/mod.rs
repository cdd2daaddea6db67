//! Services the tests start privately on loopback and stop by process id:
//! HAProxy ([`haproxy`]) and PostgreSQL ([`postgres`]); the process handle
//! they share ([`Process`]) and port helpers.
//!
//! Each service is a child in its own process group with a watchdog that
//! kills the group once the test process is gone, so a service kept in a
//! `static` or left behind by a killed test binary does not outlive it.

pub mod haproxy;
pub mod postgres;

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A started service process; killed with its process group on drop.
pub struct Process {
    name: String,
    child: Child,
    watchdog: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `cmd` in a new process group, output to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Process {
        let out = File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({cmd:?}): {e}"));
        let pgid = child.id();
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null; do sleep 1; done; kill -KILL -{pgid} 2>/dev/null",
                std::process::id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        Process {
            name: name.to_owned(),
            child,
            watchdog,
            log: log.to_path_buf(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the service printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (e.g. `"QUIT"`) to the process and waits up to
    /// `limit` for it to end; then kills its process group.
    pub fn stop_with(&mut self, signal: &str, limit: Duration) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && self.running() {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_group();
    }

    fn kill_group(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_group();
    }
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {})", self.name, self.child.id())
    }
}

/// `n` different loopback ports that were free a moment ago (bound all at
/// once, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A block of `len` consecutive ports in 20000..32000 (below Linux's
/// ephemeral range, so outgoing connections do not take them): from a
/// random start, then one block after the other, so the tests of one test
/// binary, which run at the same time, never share a port.
pub fn port_block(len: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;
    const LOW: u32 = 20000;
    const SPAN: u32 = 12000;
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| AtomicU32::new(rand::random::<u32>() % SPAN));
    let len = u32::from(len);
    loop {
        let offset = next.fetch_add(len, Ordering::Relaxed) % SPAN;
        if offset + len <= SPAN {
            return u16::try_from(LOW + offset).unwrap_or(20000);
        }
    }
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening(addr: SocketAddr, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
