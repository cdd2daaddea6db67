//! Helpers for the hostile-input and fault-injection tests of the server
//! (`crates/ftps-server/tests/hostile.rs`, `hostile_tls.rs`, `faults.rs`),
//! built on the raw client of [`crate::client`]:
//!
//! * [`assert_server_healthy`]: a second, well-behaved client does a full
//!   TLS login, PROT P and RETR of a fresh random file, byte for byte;
//!   [`HealthLoop`] does the same over and over while a table of hostile
//!   cases runs.
//! * [`Cases`]: table bookkeeping: every row counts as one case, failures
//!   are collected (with the dialogue) and reported together, the count per
//!   group is printed with `eprintln!`.
//! * Commands that never panic but return `Err` with what went wrong:
//!   [`try_cmd`], [`expect_code`], the table [`expect_codes`], and
//!   [`attempt`]: one command, with EPSV before it and the TLS data
//!   connection after a 150 for the data-opening verbs.
//! * File-descriptor, memory, temp-file and directory-snapshot probes; the
//!   process-wide [`shared`] / [`exclusive`] lock for tests that count file
//!   descriptors or memory of the whole test process (the server runs in it).
//!
//! One file per concern: this file (the process-wide lock and the
//! re-exports), `health.rs`, `cases.rs`, `commands.rs` (commands and
//! attempts that never panic), `sockets.rs` (raw connections, resets, TLS
//! records as bytes), `probes.rs` (process probes) and `files.rs`
//! (file-system probes).

mod cases;
mod commands;
mod files;
mod health;
mod probes;
mod sockets;

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use cases::Cases;
pub use commands::{
    attempt, attempt_expect, epsv_addr, expect_code, expect_codes, is_data_verb, is_upload,
    next_reply, next_reply_within, show, tail, try_cmd, write_quiet, Attempt,
};
pub use files::{
    bytes_path, contains, file_hash, names_containing, snapshot, upload_temp_files,
    wait_no_leftovers, wait_no_temp_files,
};
pub use health::{
    assert_healthy_at, assert_healthy_in, assert_server_healthy, panic_text, wait_admitted,
    HealthLoop,
};
pub use probes::{fd_count, nofile_limit, raise_nofile, rss_bytes, wait_until};
pub use sockets::{
    arm_reset, client_hello, connect, connect_from, read_line_raw, reset, reset_tls, FATAL_ALERT,
};

// An async lock (each test has its own runtime; tokio's locks work across
// runtimes), held for a whole test.
static PROCESS: RwLock<()> = RwLock::const_new(());

/// Taken by ordinary tests: they may run in parallel with each other.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    PROCESS.read().await
}

/// Taken by tests that measure the whole process (file descriptors, memory)
/// or need most of its file descriptors: nothing else runs meanwhile.
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    PROCESS.write().await
}
