//! The session's deadlines: the login timeout and the idle timeout of the
//! control connection (RFC 959 §4.2 421 "service not available, closing
//! control connection").
//!
//! The session owns them and never reads a clock: time is an input. Every
//! input that can move a deadline takes `now`; the I/O layer sleeps until
//! [`ServerSession::poll_timeout`] and then calls
//! [`ServerSession::handle_timeout`]. The rules:
//!
//! - before login the deadline runs from connect, or from the last logout
//!   (USER, REIN or AUTH after login), however chatty the client is meanwhile
//!   (slowloris);
//! - after login it runs from the last received byte ([`ServerSession::handle_input`]);
//! - there is none while a transfer runs, and the idle timer restarts when
//!   the transfer ends.

use std::time::{Duration, Instant};

use super::*;

/// The instants the deadlines are computed from.
#[derive(Debug, Clone)]
pub(super) struct Timers {
    /// The latest time an input reported; dates logouts that happen inside
    /// an input (USER, REIN, AUTH after login).
    now: Instant,
    /// Connect or the last logout: the login deadline runs from here.
    login_started: Instant,
    /// The last received byte, or the end of the last transfer.
    last_activity: Instant,
}

impl Timers {
    pub(super) fn new(now: Instant) -> Timers {
        Timers {
            now,
            login_started: now,
            last_activity: now,
        }
    }

    /// An input reported the time (never moves the clock back).
    pub(super) fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Something counts as activity: the idle timer restarts.
    pub(super) fn activity(&mut self, now: Instant) {
        self.advance(now);
        self.last_activity = self.last_activity.max(now);
    }

    /// The user was logged out: the login timer restarts.
    pub(super) fn logged_out(&mut self) {
        self.login_started = self.now;
    }
}

/// `from + timeout`, or none when that is beyond what an `Instant` can hold.
fn deadline(from: Instant, timeout: Duration) -> Option<Instant> {
    from.checked_add(timeout)
}

impl ServerSession {
    /// The next deadline: call [`handle_timeout`](Self::handle_timeout) when
    /// it is reached. `None` while a transfer runs and once the session is
    /// closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed || self.transfer_active() {
            return None;
        }
        if self.user().is_some() {
            deadline(self.timers.last_activity, self.config.idle_timeout)
        } else {
            deadline(self.timers.login_started, self.config.login_timeout)
        }
    }

    /// The time has come (or not): once the deadline of
    /// [`poll_timeout`](Self::poll_timeout) is reached, 421 and close;
    /// before it, nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        if self.user().is_some() {
            self.reply(421, "Idle timeout: closing control connection.");
        } else {
            self.reply(421, "Login timeout: closing control connection.");
        }
        self.close();
    }

    /// Bytes arrived on the control connection, whole lines or not: the
    /// idle timer restarts (it counts once the user is logged in; the login
    /// deadline ignores it).
    pub fn handle_input(&mut self, now: Instant) {
        self.timers.activity(now);
    }
}
