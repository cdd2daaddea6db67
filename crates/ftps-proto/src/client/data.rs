//! The data connection of one transfer command, as the client sees it:
//! when its TLS handshake starts, and when the transfer may begin.
//!
//! RFC 4217 §7 and §12 (and the draft's §11.4 diagrams): the client sends
//! the transfer command, the server answers `150`, then the client starts
//! TLS on the data connection. Some servers wait for the handshake before
//! they send the `150` (ftp-srv, a common Node.js server); a client that
//! keeps the RFC order deadlocks with them until one side times out. So:
//!
//! - the data connection is open (passive: before the command; active: once
//!   the server has connected) and no reply has come for a short while
//!   ([`DataOpening::grace`], a few times the last command's reply time,
//!   within [`EARLY_TLS_MIN`]..=[`EARLY_TLS_MAX`]): start the handshake,
//!   and keep reading replies meanwhile;
//! - a server whose `150` arrived before the handshake was started follows
//!   the RFC ([`HandshakeOrder::ReplyFirst`]): its later transfers never
//!   start early, so the order never changes for it;
//! - a server that sent its `150` only after a handshake the client started
//!   early had completed waits for the handshake
//!   ([`HandshakeOrder::HandshakeFirst`]): its later transfers start the
//!   handshake at once, without the wait.
//!
//! A reply other than 1xx before the transfer is the server refusing the
//! command. Without PROT P there is no handshake: the `150` and an open
//! connection are all a transfer needs.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::reply::Reply;

/// The shortest wait for the 1xx reply before the client starts the data
/// connection's TLS handshake itself.
pub const EARLY_TLS_MIN: Duration = Duration::from_millis(250);
/// The longest such wait (ftp-srv gives up on the data connection after 5 s).
pub const EARLY_TLS_MAX: Duration = Duration::from_secs(2);
/// The wait is this many times the reply time of the command before.
const EARLY_TLS_REPLY_TIMES: u32 = 4;

/// What the client knows about the order a server wants (kept per control
/// connection, learned by [`DataOpening`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HandshakeOrder {
    /// Nothing yet: the RFC order, starting the handshake after the grace.
    #[default]
    Unknown,
    /// The server sends its 1xx before the handshake (RFC 4217): never early.
    ReplyFirst,
    /// The server waits for the handshake before its 1xx: start at once.
    HandshakeFirst,
}

/// What the client does next for the data connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataStep {
    /// Start the TLS handshake on the open data connection now, and report
    /// its end with [`DataOpening::handle_tls_established`]; replies are
    /// still read meanwhile.
    StartTls,
    /// The transfer may begin: the 1xx reply (this one) has come, the data
    /// connection is open, and under PROT P its TLS is up.
    Ready(Reply),
    /// The server refused the command with this reply (no 1xx came): the
    /// data connection is dropped.
    Refused(Reply),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    NotStarted,
    /// Started; `early` when before the 1xx.
    Running {
        early: bool,
    },
    /// Completed; `before_reply` when the 1xx had not come by then.
    Up {
        before_reply: bool,
    },
}

/// One transfer command's data connection, from the command sent to the
/// transfer's start. Feed it the events (`handle_*`), carry out its steps
/// (`poll_step`), and sleep until `poll_timeout`.
#[derive(Debug)]
pub struct DataOpening {
    protected: bool,
    order: HandshakeOrder,
    grace: Duration,
    deadline: Option<Instant>,
    connected: bool,
    preliminary: Option<Reply>,
    tls: Tls,
    steps: VecDeque<DataStep>,
    finished: bool,
}

impl DataOpening {
    /// After sending the transfer command: `protected` under PROT P;
    /// `order` as learned so far on this control connection;
    /// `reply_time`, how long the command before (EPSV, PASV, PORT, REST)
    /// took to be answered.
    pub fn new(protected: bool, order: HandshakeOrder, reply_time: Duration) -> DataOpening {
        DataOpening {
            protected,
            order,
            grace: Self::grace(reply_time),
            deadline: None,
            connected: false,
            preliminary: None,
            tls: Tls::NotStarted,
            steps: VecDeque::new(),
            finished: false,
        }
    }

    /// How long the client waits for the 1xx reply, with the data connection
    /// open, before it starts the handshake itself.
    pub fn grace(reply_time: Duration) -> Duration {
        reply_time
            .saturating_mul(EARLY_TLS_REPLY_TIMES)
            .clamp(EARLY_TLS_MIN, EARLY_TLS_MAX)
    }

    /// The data connection is open (passive: call right after sending the
    /// command; active: when the server's connection was accepted).
    pub fn handle_connected(&mut self, now: Instant) {
        if self.connected || self.finished {
            return;
        }
        self.connected = true;
        if self.preliminary.is_some() {
            self.start_tls(false);
        } else if self.protected {
            match self.order {
                HandshakeOrder::HandshakeFirst => self.start_tls(true),
                HandshakeOrder::Unknown => self.deadline = Some(now + self.grace),
                HandshakeOrder::ReplyFirst => {}
            }
        }
        self.check_ready();
    }

    /// A reply to the transfer command.
    pub fn handle_reply(&mut self, reply: &Reply) {
        if self.finished || self.preliminary.is_some() {
            return;
        }
        if !(100..200).contains(&reply.code) {
            self.finished = true;
            self.deadline = None;
            self.steps.push_back(DataStep::Refused(reply.clone()));
            return;
        }
        self.deadline = None;
        if self.protected {
            self.order = match self.tls {
                Tls::Up { before_reply: true } => HandshakeOrder::HandshakeFirst,
                _ => HandshakeOrder::ReplyFirst,
            };
        }
        self.preliminary = Some(reply.clone());
        if self.connected {
            self.start_tls(false);
        }
        self.check_ready();
    }

    /// The data connection's TLS handshake completed.
    pub fn handle_tls_established(&mut self) {
        if let Tls::Running { .. } = self.tls {
            self.tls = Tls::Up {
                before_reply: self.preliminary.is_none(),
            };
            self.check_ready();
        }
    }

    /// The time of [`DataOpening::poll_timeout`] has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline = None;
            self.start_tls(true);
        }
    }

    /// The next step, if any.
    pub fn poll_step(&mut self) -> Option<DataStep> {
        self.steps.pop_front()
    }

    /// When [`DataOpening::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Is a reply to the command still awaited (no 1xx and no refusal yet)?
    pub fn wants_reply(&self) -> bool {
        !self.finished && self.preliminary.is_none()
    }

    /// Has the 1xx reply come?
    pub fn got_preliminary(&self) -> bool {
        self.preliminary.is_some()
    }

    /// The order learned so far, to keep for the next transfer.
    pub fn order(&self) -> HandshakeOrder {
        self.order
    }

    fn start_tls(&mut self, early: bool) {
        if self.protected && self.tls == Tls::NotStarted && self.connected {
            self.tls = Tls::Running { early };
            self.steps.push_back(DataStep::StartTls);
        }
    }

    fn check_ready(&mut self) {
        if self.finished || !self.connected {
            return;
        }
        let tls_ready = !self.protected || matches!(self.tls, Tls::Up { .. });
        if let (true, Some(reply)) = (tls_ready, &self.preliminary) {
            self.finished = true;
            self.steps.push_back(DataStep::Ready(reply.clone()));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(10);

    fn steps(opening: &mut DataOpening) -> Vec<DataStep> {
        std::iter::from_fn(|| opening.poll_step()).collect()
    }

    fn opening_150() -> Reply {
        Reply::new(150, "Opening data connection")
    }

    #[test]
    fn rfc4217_s7_handshake_starts_after_the_150() {
        let now = Instant::now();
        let mut d = DataOpening::new(true, HandshakeOrder::Unknown, RTT);
        d.handle_connected(now);
        assert_eq!(steps(&mut d), []);
        d.handle_reply(&opening_150());
        assert_eq!(steps(&mut d), [DataStep::StartTls]);
        d.handle_tls_established();
        assert_eq!(steps(&mut d), [DataStep::Ready(opening_150())]);
        assert_eq!(d.order(), HandshakeOrder::ReplyFirst);
    }

    #[test]
    fn rfc4217_s7_a_server_that_sent_150_first_never_gets_an_early_handshake() {
        let now = Instant::now();
        let mut d = DataOpening::new(true, HandshakeOrder::ReplyFirst, RTT);
        d.handle_connected(now);
        assert_eq!(d.poll_timeout(), None);
        d.handle_timeout(now + Duration::from_secs(60));
        assert_eq!(steps(&mut d), []);
        d.handle_reply(&opening_150());
        assert_eq!(steps(&mut d), [DataStep::StartTls]);
    }

    #[test]
    fn no_reply_within_the_grace_starts_the_handshake_and_keeps_reading_replies() {
        let now = Instant::now();
        let mut d = DataOpening::new(true, HandshakeOrder::Unknown, RTT);
        d.handle_connected(now);
        let due = d.poll_timeout().unwrap();
        assert_eq!(due, now + EARLY_TLS_MIN);
        d.handle_timeout(due - Duration::from_millis(1));
        assert_eq!(steps(&mut d), []);
        d.handle_timeout(due);
        assert_eq!(steps(&mut d), [DataStep::StartTls]);
        assert!(d.wants_reply());
        // ftp-srv: the 150 only once the handshake is done.
        d.handle_tls_established();
        assert_eq!(steps(&mut d), []);
        d.handle_reply(&opening_150());
        assert_eq!(steps(&mut d), [DataStep::Ready(opening_150())]);
        assert_eq!(d.order(), HandshakeOrder::HandshakeFirst);
    }

    #[test]
    fn a_server_known_to_wait_for_the_handshake_gets_it_at_once() {
        let now = Instant::now();
        let mut d = DataOpening::new(true, HandshakeOrder::HandshakeFirst, RTT);
        d.handle_connected(now);
        assert_eq!(steps(&mut d), [DataStep::StartTls]);
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn a_slow_150_during_an_early_handshake_means_the_server_follows_the_rfc() {
        let now = Instant::now();
        let mut d = DataOpening::new(true, HandshakeOrder::Unknown, RTT);
        d.handle_connected(now);
        d.handle_timeout(now + EARLY_TLS_MAX);
        assert_eq!(steps(&mut d), [DataStep::StartTls]);
        d.handle_reply(&opening_150());
        assert_eq!(steps(&mut d), []);
        d.handle_tls_established();
        assert_eq!(steps(&mut d), [DataStep::Ready(opening_150())]);
        assert_eq!(d.order(), HandshakeOrder::ReplyFirst);
    }

    #[test]
    fn a_refusal_ends_it_with_or_without_a_handshake_running() {
        let refusal = Reply::new(550, "No such file");
        let now = Instant::now();
        let mut d = DataOpening::new(true, HandshakeOrder::Unknown, RTT);
        d.handle_connected(now);
        d.handle_reply(&refusal);
        assert_eq!(steps(&mut d), [DataStep::Refused(refusal.clone())]);
        assert_eq!(d.poll_timeout(), None);
        assert!(!d.wants_reply());
        let mut d = DataOpening::new(true, HandshakeOrder::HandshakeFirst, RTT);
        d.handle_connected(now);
        d.handle_reply(&refusal);
        assert_eq!(
            steps(&mut d),
            [DataStep::StartTls, DataStep::Refused(refusal)]
        );
        d.handle_tls_established();
        assert_eq!(steps(&mut d), []);
    }

    #[test]
    fn rfc4217_s9_clear_data_never_handshakes() {
        let now = Instant::now();
        let mut d = DataOpening::new(false, HandshakeOrder::HandshakeFirst, RTT);
        d.handle_connected(now);
        assert_eq!(d.poll_timeout(), None);
        d.handle_reply(&opening_150());
        assert_eq!(steps(&mut d), [DataStep::Ready(opening_150())]);
        assert_eq!(d.order(), HandshakeOrder::HandshakeFirst);
    }

    #[test]
    fn active_mode_waits_for_the_servers_connection() {
        let now = Instant::now();
        let mut d = DataOpening::new(true, HandshakeOrder::Unknown, RTT);
        assert_eq!(d.poll_timeout(), None);
        d.handle_reply(&opening_150());
        assert_eq!(steps(&mut d), []);
        d.handle_connected(now);
        assert_eq!(steps(&mut d), [DataStep::StartTls]);
        d.handle_tls_established();
        assert_eq!(steps(&mut d), [DataStep::Ready(opening_150())]);
        // Clear data: the 150 and the connection, in either order.
        let mut d = DataOpening::new(false, HandshakeOrder::Unknown, RTT);
        d.handle_connected(now);
        assert_eq!(steps(&mut d), []);
        d.handle_reply(&opening_150());
        assert_eq!(steps(&mut d), [DataStep::Ready(opening_150())]);
    }

    #[test]
    fn the_grace_is_a_few_reply_times_within_bounds() {
        assert_eq!(DataOpening::grace(Duration::ZERO), EARLY_TLS_MIN);
        assert_eq!(
            DataOpening::grace(Duration::from_millis(100)),
            Duration::from_millis(400)
        );
        assert_eq!(DataOpening::grace(Duration::from_secs(30)), EARLY_TLS_MAX);
    }

    #[test]
    fn a_125_counts_like_a_150() {
        let now = Instant::now();
        let mut d = DataOpening::new(true, HandshakeOrder::Unknown, RTT);
        d.handle_connected(now);
        let already = Reply::new(125, "Data connection already open");
        d.handle_reply(&already);
        assert_eq!(steps(&mut d), [DataStep::StartTls]);
    }
}
