//! The server side of an FTP/FTPS control connection as a sans-IO state machine.
//!
//! [`ServerSession`] takes commands (`handle_line`, `handle_command`), the
//! results of the I/O it asked for (`handle_auth_result`, `handle_user_check`,
//! `handle_fs_result`, `handle_passive_opened`, `handle_transfer_started`,
//! `handle_transfer_done`, `handle_tls_established`, `handle_tls_failed`) and
//! the passing of time (`handle_input`, `handle_timeout`), and hands back
//! [`Action`]s through `poll_action`. It owns every reply code and every
//! ordering rule of RFC 959, RFC 2228, RFC 2389, RFC 2428, RFC 3659 and
//! RFC 4217 (AUTH/PBSZ/PROT/CCC/REIN, 521 before any 1xx, FEAT), plus the
//! draft-murray-auth-ftp-ssl rules for AUTH SSL / TLS-P and implicit FTPS.
//!
//! It also owns the login and idle deadlines (see the `timers` module) and
//! the count of wrong passwords (`login_failures`, closing after
//! `max_login_failures`). It never reads a clock: inputs that move a
//! deadline take `now`, and the I/O layer sleeps until `poll_timeout`.
//!
//! The login state and the transfer state are kept apart: a transfer runs in
//! the I/O layer while the session keeps answering ABOR, STAT, NOOP and QUIT
//! (RFC 4217 §14).

mod control;
mod data;
mod extensions;
pub mod replies;
mod timers;
mod types;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Instant;

pub use types::*;

use crate::command::{Command, TransferType};
use crate::facts::FactSet;
use crate::path::VirtualPath;
use crate::reply::Reply;

/// The login state (RFC 959 §5.4 USER/PASS sequencing).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Login {
    /// Waiting for USER.
    AwaitingUser,
    /// USER accepted, waiting for PASS.
    AwaitingPass { user: Vec<u8> },
    /// PASS sent to the authenticator; no command is read until it answers.
    Authenticating { user: Vec<u8> },
    /// USER with a TLS client certificate: the I/O layer checks the mapping.
    CheckingUser { user: Vec<u8> },
    /// Logged in: only reachable with a [`LoginGrant`].
    LoggedIn(LoginGrant),
}

/// The data-transfer state, apart from the login state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Transfer {
    Idle,
    Running {
        verb: &'static str,
        started: bool,
        aborting: bool,
        bytes: u64,
    },
}

/// A request whose answer decides the next reply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Cwd(VirtualPath),
    Size(VirtualPath),
    Mdtm(VirtualPath),
    Mlst(VirtualPath),
    Rnfr(VirtualPath),
    Rnto,
    Mkd(VirtualPath),
    Rmd,
    Dele,
    StatPath(VirtualPath),
    StatListing(VirtualPath),
    Passive(PassiveKind),
    Tls { private: bool },
    Mfmt { modified: i64, shown: Vec<u8> },
}

/// The data port set by PASV/EPSV/PORT/EPRT for the next transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataPort {
    None,
    Passive,
    Active(std::net::SocketAddr),
}

/// The server end of one control connection. See the module docs.
#[derive(Debug)]
pub struct ServerSession {
    config: SessionConfig,
    control: ControlSecurity,
    pbsz_done: bool,
    prot: DataProtection,
    login: Login,
    login_failures: u32,
    cwd: VirtualPath,
    transfer_type: TransferType,
    rest: u64,
    rename_from: Option<VirtualPath>,
    data_port: DataPort,
    epsv_all: bool,
    facts: FactSet,
    transfer: Transfer,
    now_unix: i64,
    pending: Option<Pending>,
    deferred: VecDeque<Command>,
    actions: VecDeque<Action>,
    closed: bool,
    client_certificate: bool,
    hash: extensions::HashState,
    /// The server is shutting down: 421 and close once the running transfer ends.
    close_after_transfer: bool,
    timers: timers::Timers,
}

impl ServerSession {
    /// A new session, connected at `now` (the login deadline runs from
    /// here); the 220 greeting is the first action.
    pub fn new(config: SessionConfig, now: Instant) -> ServerSession {
        let implicit = config.implicit;
        let banner = config.banner.clone();
        let mut session = ServerSession {
            config,
            control: if implicit {
                ControlSecurity::Tls
            } else {
                ControlSecurity::Plain
            },
            pbsz_done: implicit,
            prot: if implicit {
                DataProtection::Private
            } else {
                DataProtection::Clear
            },
            login: Login::AwaitingUser,
            login_failures: 0,
            cwd: VirtualPath::root(),
            transfer_type: TransferType::Ascii,
            rest: 0,
            rename_from: None,
            data_port: DataPort::None,
            epsv_all: false,
            facts: FactSet::default_set(),
            transfer: Transfer::Idle,
            now_unix: 0,
            pending: None,
            deferred: VecDeque::new(),
            actions: VecDeque::new(),
            closed: false,
            client_certificate: false,
            hash: extensions::HashState::default(),
            close_after_transfer: false,
            timers: timers::Timers::new(now),
        };
        session.reply(220, banner);
        session
    }

    /// The next thing the I/O layer must do, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// True once the session asked to close; no more commands are taken.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True while a request (authentication, file system, passive listener)
    /// awaits its answer: the I/O layer must not feed commands until then.
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
            || matches!(
                self.login,
                Login::Authenticating { .. } | Login::CheckingUser { .. }
            )
    }

    /// True while a transfer runs.
    pub fn transfer_active(&self) -> bool {
        matches!(self.transfer, Transfer::Running { .. })
    }

    /// The security state of the control connection.
    pub fn control_security(&self) -> ControlSecurity {
        self.control
    }

    /// The current data protection level (PROT).
    pub fn data_protection(&self) -> DataProtection {
        self.prot
    }

    /// Wrong passwords so far in this session, the one just answered
    /// included (for the I/O layer's growing delay after a failure).
    pub fn login_failures(&self) -> u32 {
        self.login_failures
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&LoginGrant> {
        match &self.login {
            Login::LoggedIn(grant) => Some(grant),
            _ => None,
        }
    }

    /// The current working directory.
    pub fn cwd(&self) -> &VirtualPath {
        &self.cwd
    }

    /// The I/O layer's byte counter of the running transfer, for STAT (RFC 959 §4.1.3).
    pub fn set_transfer_progress(&mut self, transferred: u64) {
        if let Transfer::Running { bytes, .. } = &mut self.transfer {
            *bytes = transferred;
        }
    }

    /// The wall-clock time, for LIST-style dates in STAT replies (the session
    /// has no clock of its own).
    pub fn set_now(&mut self, unix_secs: i64) {
        self.now_unix = unix_secs;
    }

    /// A line that was longer than the limit: 500, and the session goes on.
    pub fn handle_line_too_long(&mut self) {
        self.reply(500, "Command line too long.");
    }

    /// The server is shutting down: idle sessions get 421 (RFC 959 §4.2);
    /// a running transfer may finish first (the I/O layer stops it when the
    /// grace period ends), then its reply, then 421.
    pub fn handle_shutdown(&mut self) {
        if self.transfer_active() {
            self.close_after_transfer = true;
            return;
        }
        self.reply(421, "Server shutting down: closing control connection.");
        self.close();
    }

    /// After a transfer's final reply: the 421 of a shutdown that waited
    /// for it (true), or the commands that waited (false).
    fn after_transfer(&mut self) {
        if self.close_after_transfer {
            self.reply(421, "Server shutting down: closing control connection.");
            self.close();
        } else {
            self.run_deferred();
        }
    }

    /// One command line (without CRLF) from the client, taken at `now` (which
    /// dates a logout it causes: USER or REIN after login restart the login
    /// deadline). The bytes themselves were reported by `handle_input`.
    pub fn handle_line(&mut self, line: &[u8], now: Instant) {
        self.timers.advance(now);
        match crate::command::parse_command(line) {
            Ok(command) => self.handle_command(command, now),
            Err(error) => {
                if !self.closed {
                    self.push(Action::Reply(error.reply()));
                }
            }
        }
    }

    /// One parsed command, taken at `now` (see `handle_line`).
    pub fn handle_command(&mut self, command: Command, now: Instant) {
        self.timers.advance(now);
        if self.closed {
            return;
        }
        if self.is_waiting() {
            // The I/O layer should not do this; keep order by deferring.
            self.deferred.push_back(command);
            return;
        }
        if self.transfer_active() {
            self.handle_command_during_transfer(command);
            return;
        }
        self.dispatch(command);
    }

    fn handle_command_during_transfer(&mut self, command: Command) {
        match command {
            Command::Abor => self.abort_transfer(),
            Command::Stat(None) => {
                if let Transfer::Running { verb, bytes, .. } = self.transfer {
                    self.reply(
                        213,
                        format!("Status: {verb} in progress, {bytes} bytes transferred."),
                    );
                }
            }
            Command::Noop => self.reply(200, "NOOP ok."),
            // RFC 959 QUIT/REIN: let the transfer finish, then act.
            command @ (Command::Quit | Command::Rein) => self.deferred.push_back(command),
            other => self.reply(
                503,
                format!(
                    "{}: a transfer is in progress; wait for it or send ABOR.",
                    other.verb()
                ),
            ),
        }
    }

    fn dispatch(&mut self, command: Command) {
        // REST is only valid immediately before the command it modifies.
        let keeps_rest = matches!(
            command,
            Command::Rest(_)
                | Command::Retr(_)
                | Command::Stor(_)
                | Command::Type(_)
                | Command::Pasv
                | Command::Epsv(_)
                | Command::Port(_)
                | Command::Eprt(_)
                | Command::Noop
                | Command::Stat(None)
        );
        if !keeps_rest {
            self.rest = 0;
        }
        // RANG holds for the next HASH only (see the extensions module).
        if matches!(
            command,
            Command::Retr(_) | Command::Stor(_) | Command::Appe(_) | Command::Stou(_)
        ) && self.refuse_ranged_transfer()
        {
            return;
        }
        let keeps_range = matches!(
            command,
            Command::Rang { .. }
                | Command::Hash(_)
                | Command::Type(_)
                | Command::Pasv
                | Command::Epsv(_)
                | Command::Port(_)
                | Command::Eprt(_)
                | Command::Noop
                | Command::Stat(None)
                | Command::Opts(_)
                | Command::Feat
        );
        if !keeps_range {
            self.hash.range = None;
        }
        if !matches!(command, Command::Rnto(_)) {
            // RNTO must follow RNFR immediately (RFC 959 §4.1.3).
            self.rename_from = None;
        }
        if self.needs_login(&command) && self.user().is_none() {
            self.reply(530, "Please log in with USER and PASS first.");
            return;
        }
        match command {
            Command::Auth(mech) => self.cmd_auth(&mech),
            Command::Pbsz(_) => self.cmd_pbsz(),
            Command::Prot(arg) => self.cmd_prot(arg),
            Command::Ccc => self.cmd_ccc(),
            Command::Rein => self.cmd_rein(),
            Command::User(name) => self.cmd_user(name),
            Command::Pass(password) => self.cmd_pass(password),
            Command::Acct(_) => self.reply(202, "ACCT not needed."),
            Command::Quit => {
                self.reply(221, "Goodbye.");
                self.close();
            }
            Command::Noop => self.reply(200, "NOOP ok."),
            Command::Syst => self.reply(215, "UNIX Type: L8"),
            Command::Feat => {
                let reply = replies::feat(
                    self.effective_policy().allow_ccc,
                    &self.facts,
                    self.hash.algorithm,
                );
                self.push(Action::Reply(reply));
            }
            Command::Opts(arg) => self.cmd_opts(&arg),
            Command::Help(arg) => {
                let reply = replies::help(arg.as_deref());
                self.push(Action::Reply(reply));
            }
            Command::Site(arg) => self.cmd_site(&arg),
            Command::Stat(None) => {
                let reply = self.status_reply();
                self.push(Action::Reply(reply));
            }
            Command::Stat(Some(arg)) => self.cmd_stat_path(&arg),
            Command::Type(t) => {
                self.transfer_type = t;
                let name = match t {
                    TransferType::Ascii => "A",
                    TransferType::Image => "I",
                };
                self.reply(200, format!("Type set to {name}."));
            }
            Command::Stru => self.reply(200, "Structure set to F."),
            Command::Mode => self.reply(200, "Mode set to S."),
            Command::Allo => self.reply(202, "ALLO not needed."),
            Command::Rest(offset) => {
                self.rest = offset;
                self.reply(
                    350,
                    format!("Restarting at {offset}. Send STOR or RETR to start the transfer."),
                );
            }
            Command::Abor => self.reply(225, "No transfer to abort."),
            Command::Pasv => self.cmd_passive(PassiveKind::Pasv),
            Command::Epsv(arg) => self.cmd_epsv(arg),
            Command::Port(addr) => self.cmd_active(std::net::SocketAddr::V4(addr), false),
            Command::Eprt(addr) => self.cmd_active(addr, true),
            Command::Mfmt { modified, path } => self.cmd_mfmt(modified, path),
            Command::Hash(path) => self.cmd_hash(path),
            Command::Rang { start, end } => self.cmd_rang(start, end),
            other => self.dispatch_file_command(other),
        }
    }

    /// Commands that need a logged-in user (all but the session-level ones).
    fn needs_login(&self, command: &Command) -> bool {
        !matches!(
            command,
            Command::Auth(_)
                | Command::Pbsz(_)
                | Command::Prot(_)
                | Command::Ccc
                | Command::Rein
                | Command::User(_)
                | Command::Pass(_)
                | Command::Acct(_)
                | Command::Quit
                | Command::Noop
                | Command::Syst
                | Command::Feat
                | Command::Opts(_)
                | Command::Site(_)
                | Command::Help(_)
                | Command::Stat(None)
                | Command::Abor
        )
    }

    /// The policy in force: the user's once logged in, the global one before.
    fn effective_policy(&self) -> Policy {
        match &self.login {
            Login::LoggedIn(grant) => grant.policy,
            _ => self.config.policy,
        }
    }

    fn can_write(&self) -> bool {
        matches!(&self.login, Login::LoggedIn(g) if g.write && !g.anonymous)
    }

    fn reply(&mut self, code: u16, text: impl AsRef<[u8]>) {
        self.push(Action::Reply(Reply::new(code, text)));
    }

    /// Queue an action; nothing is queued once the session has closed (a
    /// late answer from the I/O layer — a transfer or authentication that
    /// finishes after the close — must not produce replies or log anyone in).
    fn push(&mut self, action: Action) {
        if !self.closed {
            self.actions.push_back(action);
        }
    }

    /// Leave the logged-in state, if in it: the I/O layer closes the
    /// storage and the login deadline starts again.
    fn log_out(&mut self) {
        if matches!(self.login, Login::LoggedIn(_)) {
            self.push(Action::LoggedOut);
            self.timers.logged_out();
        }
    }

    fn close(&mut self) {
        self.push(Action::Close);
        self.closed = true;
    }

    /// Run commands that arrived while the session waited, in order.
    fn run_deferred(&mut self) {
        while !self.is_waiting() && !self.transfer_active() && !self.closed {
            match self.deferred.pop_front() {
                Some(command) => self.dispatch(command),
                None => break,
            }
        }
    }

    /// Resolve a path argument against the cwd; on failure queue the reply.
    fn resolve(&mut self, arg: &[u8]) -> Option<VirtualPath> {
        match self.cwd.resolve(arg) {
            Ok(path) => Some(path),
            Err(error) => {
                let reply = replies::path_error_reply(&error);
                self.push(Action::Reply(reply));
                None
            }
        }
    }

    /// Forget the data port; a passive listener is closed.
    fn reset_data_port(&mut self) {
        if self.data_port == DataPort::Passive {
            self.push(Action::ClosePassive);
        }
        self.data_port = DataPort::None;
    }

    /// RFC 4217 §4 / RFC 959 REIN: user, TYPE, STRU, MODE, cwd, data port and
    /// pending state go back to their initial values.
    fn reset_transfer_parameters(&mut self) {
        self.log_out();
        self.login = Login::AwaitingUser;
        self.cwd = VirtualPath::root();
        self.transfer_type = TransferType::Ascii;
        self.rest = 0;
        self.rename_from = None;
        self.reset_data_port();
        self.epsv_all = false;
        self.facts = FactSet::default_set();
        self.hash = extensions::HashState::default();
    }
}
