//! Probes of the test process, in which the server runs: open file
//! descriptors ([`fd_count`]), their limit ([`nofile_limit`],
//! [`raise_nofile`]), resident memory ([`rss_bytes`]), and [`wait_until`] a
//! condition holds.

use std::time::{Duration, Instant};

/// Open file descriptors of this process (the server runs in it).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// (soft, hard) RLIMIT_NOFILE from /proc/self/limits.
pub fn nofile_limit() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Max open files") {
            let nums: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            if nums.len() >= 2 {
                return (nums[0], nums[1]);
            }
        }
    }
    (1024, 1024)
}

/// Try to raise this process's RLIMIT_NOFILE to `want` with `prlimit(1)`
/// (works as root; no crate for setrlimit is available to the tests).
/// Returns the soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> u64 {
    let (soft, hard) = nofile_limit();
    if soft >= want {
        return soft;
    }
    let pid = std::process::id().to_string();
    for (s, h) in [(want, want.max(hard)), (want.min(hard), hard)] {
        let _ = std::process::Command::new("prlimit")
            .arg(format!("--pid={pid}"))
            .arg(format!("--nofile={s}:{h}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if nofile_limit().0 >= want {
            break;
        }
    }
    nofile_limit().0
}

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Poll `f` every 50 ms until it holds or `limit` passes.
pub async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
