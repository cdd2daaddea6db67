//! Session-level commands: security (RFC 2228 AUTH/PBSZ/PROT/CCC as profiled by
//! RFC 4217 §4, §5, §9, §13 and the draft's AUTH SSL / TLS-P), login
//! (RFC 959 USER/PASS/REIN, RFC 4217 §10.1 policies) and the informational
//! commands OPTS (RFC 2389), SITE and STAT (RFC 959 §4.1.3).

use super::*;
use crate::command::ProtArg;

/// Is this the conventional anonymous login name (RFC 1635)?
fn is_anonymous_name(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"anonymous") || name.eq_ignore_ascii_case(b"ftp")
}

impl ServerSession {
    /// RFC 4217 §4 and draft §6: AUTH TLS / TLS-C keep data Clear, AUTH SSL /
    /// TLS-P make it Private; a second AUTH is a bad sequence.
    pub(super) fn cmd_auth(&mut self, mechanism: &[u8]) {
        if self.control != ControlSecurity::Plain {
            self.reply(503, "Security already negotiated on this connection.");
            return;
        }
        let private = if mechanism.eq_ignore_ascii_case(b"TLS")
            || mechanism.eq_ignore_ascii_case(b"TLS-C")
        {
            false
        } else if mechanism.eq_ignore_ascii_case(b"SSL") || mechanism.eq_ignore_ascii_case(b"TLS-P")
        {
            true
        } else {
            self.reply(504, "AUTH mechanism not supported; use AUTH TLS.");
            return;
        };
        self.reply(234, "AUTH accepted; start the TLS handshake.");
        self.pending = Some(Pending::Tls { private });
        self.push(Action::UpgradeTls);
    }

    /// The TLS handshake on the control connection completed at `now` (an
    /// AUTH after login logs the user out: the login deadline starts again).
    pub fn handle_tls_established(&mut self, now: Instant) {
        self.timers.advance(now);
        let private = match self.pending.take() {
            Some(Pending::Tls { private }) => private,
            other => {
                self.pending = other;
                return;
            }
        };
        self.control = ControlSecurity::Tls;
        // RFC 4217 §4: reset user, data port, TYPE, STRU, MODE and cwd.
        self.reset_transfer_parameters();
        // Draft §8: after AUTH SSL / TLS-P data is Private without PBSZ/PROT.
        self.pbsz_done = private;
        self.prot = if private {
            DataProtection::Private
        } else {
            DataProtection::Clear
        };
        self.run_deferred();
    }

    /// The TLS handshake on the control connection failed (RFC 4217 §10.1).
    pub fn handle_tls_failed(&mut self, failure: TlsFailure) {
        self.pending = None;
        if failure == TlsFailure::Complete {
            self.reply(421, "TLS negotiation failed; closing control connection.");
        }
        self.close();
    }

    /// RFC 4217 §9: PBSZ needs a protected control connection; the answer is always 0.
    pub(super) fn cmd_pbsz(&mut self) {
        match self.control {
            ControlSecurity::Plain => self.reply(
                503,
                "PBSZ needs a TLS-protected control connection: send AUTH TLS first.",
            ),
            ControlSecurity::Cleared => self.reply(503, "PBSZ is not accepted after CCC."),
            ControlSecurity::Tls => {
                self.pbsz_done = true;
                self.reply(200, "PBSZ=0");
            }
        }
    }

    /// RFC 4217 §9: PROT after PBSZ; C and P accepted, S and E are 536, the rest 504.
    pub(super) fn cmd_prot(&mut self, level: ProtArg) {
        if self.control == ControlSecurity::Cleared {
            self.reply(503, "PROT is not accepted after CCC.");
            return;
        }
        if !self.pbsz_done || self.control != ControlSecurity::Tls {
            self.reply(503, "PROT needs PBSZ first (send PBSZ 0).");
            return;
        }
        match level {
            ProtArg::Clear => {
                self.prot = DataProtection::Clear;
                self.reply(200, "Protection level set to Clear.");
            }
            ProtArg::Private => {
                self.prot = DataProtection::Private;
                self.reply(200, "Protection level set to Private.");
            }
            ProtArg::Safe | ProtArg::Confidential => {
                self.reply(536, "Protection level not supported by TLS; use C or P.")
            }
            ProtArg::Other(_) => self.reply(504, "Unknown protection level; use C or P."),
        }
    }

    /// RFC 4217 §5: CCC is 533 without TLS, 534 when policy forbids, else 200
    /// and the control connection continues in plaintext.
    pub(super) fn cmd_ccc(&mut self) {
        if self.control != ControlSecurity::Tls {
            self.reply(533, "Control connection is not protected.");
        } else if !self.effective_policy().allow_ccc {
            self.reply(534, "CCC refused by server policy.");
        } else {
            self.reply(200, "Control connection cleared; continuing in plaintext.");
            self.push(Action::ClearTls);
            self.control = ControlSecurity::Cleared;
        }
    }

    /// RFC 959 REIN and RFC 4217 §13: reply protected, then clear TLS; the
    /// session is as new. (On an implicit listener TLS stays: the port is
    /// TLS-only by definition, draft §4.2.)
    pub(super) fn cmd_rein(&mut self) {
        self.reply(220, "Service ready for new user.");
        if self.control == ControlSecurity::Tls && !self.config.implicit {
            self.push(Action::ClearTls);
        }
        // On an implicit listener TLS stays — unless CCC already cleared it:
        // then the connection is plaintext and must be treated as such.
        let still_tls = self.config.implicit && self.control == ControlSecurity::Tls;
        self.control = if still_tls {
            ControlSecurity::Tls
        } else {
            ControlSecurity::Plain
        };
        if !still_tls {
            self.client_certificate = false;
        }
        self.reset_transfer_parameters();
        self.pbsz_done = still_tls;
        self.prot = if still_tls {
            DataProtection::Private
        } else {
            DataProtection::Clear
        };
    }

    /// RFC 959 USER, with the TLS policies of RFC 4217 §10.1.
    pub(super) fn cmd_user(&mut self, name: Vec<u8>) {
        if matches!(self.login, Login::LoggedIn(_)) {
            self.log_out();
            self.cwd = VirtualPath::root();
        }
        self.login = Login::AwaitingUser;
        let protected = self.control == ControlSecurity::Tls;
        if is_anonymous_name(&name) {
            if let Some(mode) = self.config.anonymous {
                match (mode, protected) {
                    (AnonymousTls::Require, false) => {
                        self.reply(530, "Anonymous login needs TLS: send AUTH TLS first.");
                        return;
                    }
                    (AnonymousTls::Refuse, true) => {
                        self.reply(530, "Anonymous login is not allowed over TLS.");
                        return;
                    }
                    _ => {}
                }
                self.login = Login::AwaitingPass { user: name };
                self.reply(
                    331,
                    "Anonymous login ok, send your e-mail address as password.",
                );
                return;
            }
        }
        if self.config.policy.require_tls && !protected {
            self.reply(
                530,
                "TLS required: send AUTH TLS before USER (RFC 4217); the password must not travel in clear text.",
            );
            return;
        }
        if self.client_certificate && protected {
            self.login = Login::CheckingUser { user: name.clone() };
            self.push(Action::CheckUser { user: name });
            return;
        }
        self.login = Login::AwaitingPass { user: name };
        self.reply(331, "Password required.");
    }

    /// The TLS handshake on the control connection presented a client
    /// certificate (verified by the TLS layer against the configured CA).
    pub fn set_client_certificate(&mut self, present: bool) {
        self.client_certificate = present;
    }

    /// The answer to [`Action::CheckUser`] (RFC 4217 §12.2: 232 when the
    /// certificate suffices).
    pub fn handle_user_check(&mut self, check: UserCheck) {
        let Login::CheckingUser { user } = std::mem::replace(&mut self.login, Login::AwaitingUser)
        else {
            return;
        };
        match check {
            UserCheck::Password => {
                self.login = Login::AwaitingPass { user };
                self.reply(331, "Password required.");
            }
            UserCheck::Certificate(grant) => {
                self.reply(
                    232,
                    format!(
                        "User {} logged in, authorized by the TLS client certificate.",
                        grant.name
                    ),
                );
                self.log_in(grant, LoginMethod::Certificate);
            }
            UserCheck::Refused => {
                self.reply(
                    530,
                    "The TLS client certificate does not belong to this user.",
                );
            }
        }
        self.run_deferred();
    }

    /// Enter the logged-in state (after the 230 or 232 reply).
    fn log_in(&mut self, grant: LoginGrant, method: LoginMethod) {
        self.cwd = VirtualPath::root();
        self.push(Action::LoggedIn {
            grant: grant.clone(),
            method,
        });
        self.login = Login::LoggedIn(grant);
    }

    /// RFC 959 PASS: hand the pair to the authenticator.
    pub(super) fn cmd_pass(&mut self, password: Vec<u8>) {
        match std::mem::replace(&mut self.login, Login::AwaitingUser) {
            Login::AwaitingPass { user } => {
                self.login = Login::Authenticating { user: user.clone() };
                self.push(Action::Authenticate { user, password });
            }
            Login::LoggedIn(grant) => {
                self.login = Login::LoggedIn(grant);
                self.reply(503, "Already logged in.");
            }
            _ => self.reply(503, "Send USER first."),
        }
    }

    /// The authenticator's answer to [`Action::Authenticate`].
    pub fn handle_auth_result(&mut self, grant: Option<LoginGrant>) {
        if !matches!(self.login, Login::Authenticating { .. }) {
            return;
        }
        self.login = Login::AwaitingUser;
        let protected = self.control == ControlSecurity::Tls;
        match grant {
            Some(grant) if grant.policy.require_tls && !protected && !grant.anonymous => {
                self.reply(530, "TLS required for this user: send AUTH TLS first.");
            }
            Some(grant) => {
                self.reply(230, format!("User {} logged in.", grant.name));
                self.log_in(grant, LoginMethod::Password);
            }
            None => {
                self.login_failures = self.login_failures.saturating_add(1);
                if self.login_failures >= self.config.max_login_failures {
                    self.reply(
                        530,
                        "Login incorrect; too many failures, closing connection.",
                    );
                    self.close();
                    return;
                }
                self.reply(530, "Login incorrect.");
            }
        }
        self.run_deferred();
    }

    /// The authenticator could not decide because the user store cannot be
    /// reached (a database down or not answering in time), for PASS or for a
    /// USER that checks a client certificate: RFC 959 §4.2's 421 "Service not
    /// available, closing control connection". Not a wrong password: it is
    /// not counted towards the session's failures.
    pub fn handle_auth_unavailable(&mut self) {
        self.handle_login_refused(
            "Service not available: the user database cannot be reached; try again later.",
        );
    }

    /// The server refuses a login that authentication (or the client
    /// certificate) granted, for a reason of its own — the user already has
    /// as many sessions as allowed: 421 and close (RFC 959 §4.2, "Service
    /// not available, closing control connection"; the client may try again
    /// later). Ignored unless an answer to [`Action::Authenticate`] or
    /// [`Action::CheckUser`] is awaited.
    pub fn handle_login_refused(&mut self, text: &str) {
        if !matches!(
            self.login,
            Login::Authenticating { .. } | Login::CheckingUser { .. }
        ) {
            return;
        }
        self.login = Login::AwaitingUser;
        self.reply(421, text);
        self.close();
    }

    /// PASS from an address banned since this session began (RFC 2577 §5:
    /// the ban holds for sessions already open): 421 and close, whatever
    /// the password.
    pub fn handle_address_banned(&mut self) {
        if !matches!(self.login, Login::Authenticating { .. }) {
            return;
        }
        self.login = Login::AwaitingUser;
        self.reply(
            421,
            "Too many failed logins from your address: try again later. Closing connection.",
        );
        self.close();
    }

    /// The password (or certificate) was right but the account cannot be
    /// used now: its directory cannot be opened. 530 saying so, and not
    /// counted as a wrong password.
    pub fn handle_account_unavailable(&mut self) {
        if !matches!(
            self.login,
            Login::Authenticating { .. } | Login::CheckingUser { .. }
        ) {
            return;
        }
        self.login = Login::AwaitingUser;
        self.reply(
            530,
            "Login failed: this account's directory is not available; \
             contact the server's administrator.",
        );
        self.run_deferred();
    }

    /// RFC 2389 OPTS: UTF8 (RFC 2640) and MLST fact selection (RFC 3659 §7.9).
    pub(super) fn cmd_opts(&mut self, arg: &[u8]) {
        let (name, rest) = match arg.iter().position(|b| *b == b' ') {
            Some(i) => (&arg[..i], arg.get(i + 1..).unwrap_or_default()),
            None => (arg, &b""[..]),
        };
        if name.eq_ignore_ascii_case(b"UTF8") {
            if rest.eq_ignore_ascii_case(b"ON") || rest.is_empty() {
                self.reply(200, "UTF8 mode on.");
            } else if rest.eq_ignore_ascii_case(b"OFF") {
                self.reply(
                    200,
                    "UTF8 mode off; names are still sent exactly as stored.",
                );
            } else {
                self.reply(501, "OPTS UTF8 takes ON or OFF.");
            }
        } else if name.eq_ignore_ascii_case(b"HASH") {
            self.cmd_opts_hash(rest);
        } else if name.eq_ignore_ascii_case(b"MLST") {
            self.facts = FactSet::from_opts(rest);
            let text = self.facts.opts_reply_text();
            self.reply(200, text);
        } else {
            self.reply(501, "Option not understood.");
        }
    }

    /// SITE: only SITE HELP is offered.
    pub(super) fn cmd_site(&mut self, arg: &[u8]) {
        let sub = arg.split(|b| *b == b' ').next().unwrap_or_default();
        if sub.eq_ignore_ascii_case(b"HELP") {
            self.push(Action::Reply(Reply::multi(
                214,
                vec![
                    b"The following SITE commands are recognized:".to_vec(),
                    b" HELP".to_vec(),
                    b"SITE HELP ok.".to_vec(),
                ],
            )));
        } else if self.user().is_none() {
            self.reply(530, "Please log in with USER and PASS first.");
        } else {
            self.reply(500, "Unknown SITE command.");
        }
    }

    /// STAT without argument: the session's status (RFC 959 §4.1.3).
    pub(super) fn status_reply(&self) -> Reply {
        let mut lines = vec![b"ftps server status:".to_vec()];
        lines.push(format!(" Connected from {}", self.config.peer.ip()).into_bytes());
        match &self.login {
            Login::LoggedIn(grant) => {
                lines.push(format!(" Logged in as {}", grant.name).into_bytes())
            }
            _ => lines.push(b" Not logged in".to_vec()),
        }
        let control = match self.control {
            ControlSecurity::Plain => "plaintext",
            ControlSecurity::Tls => "TLS",
            ControlSecurity::Cleared => "plaintext (cleared with CCC)",
        };
        lines.push(format!(" Control connection: {control}").into_bytes());
        let prot = match self.prot {
            DataProtection::Clear => "Clear",
            DataProtection::Private => "Private",
        };
        lines.push(format!(" Data protection: {prot}").into_bytes());
        let ty = match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        };
        lines.push(format!(" TYPE: {ty}, STRUcture: File, MODE: Stream").into_bytes());
        let data = match self.data_port {
            DataPort::None => "No data connection",
            DataPort::Passive => "Passive listener open",
            DataPort::Active(_) => "Active data port set",
        };
        lines.push(format!(" {data}").into_bytes());
        lines.push(b"End of status".to_vec());
        Reply::multi(211, lines)
    }
}
