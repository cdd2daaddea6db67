//! A private HAProxy (Debian's `haproxy`) in the foreground (`-db`) with a
//! configuration the test writes: the real load balancer in front of
//! `ftps serve`, sending PROXY protocol headers (`send-proxy-v2`).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use super::{wait_listening, Process};

/// A running HAProxy; stopped (by process id) on drop.
pub struct Haproxy {
    process: Process,
    _dir: tempfile::TempDir,
}

/// The `global` and `defaults` sections the tests' configurations start with.
pub const PREAMBLE: &str = "global\n    maxconn 2000\n\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\n";

impl Haproxy {
    /// Starts HAProxy with `config` (the sections after [`PREAMBLE`]) and
    /// waits until every address of `listening` accepts connections. `None`
    /// when haproxy is not installed (a failure under `CI=true`).
    pub fn start(config: &str, listening: &[SocketAddr]) -> Option<Haproxy> {
        if !crate::require_tool("haproxy") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, format!("{PREAMBLE}{config}")).unwrap();
        let mut cmd = Command::new("haproxy");
        cmd.arg("-db").arg("-f").arg(&path);
        let mut process = Process::spawn("haproxy", cmd, &dir.path().join("haproxy.log"));
        for addr in listening {
            if !wait_listening(*addr, Duration::from_secs(10)) {
                let running = process.running();
                panic!(
                    "haproxy does not listen on {addr} (running: {running}):\n{}\n{config}",
                    process.log()
                );
            }
        }
        // Another process listening on one of the ports would have answered
        // the wait: HAProxy, failing to bind it, is gone by now.
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            process.running(),
            "haproxy stopped (a port taken?):\n{}\n{config}",
            process.log()
        );
        Some(Haproxy { process, _dir: dir })
    }

    /// What HAProxy printed.
    pub fn log(&self) -> String {
        self.process.log()
    }
}
