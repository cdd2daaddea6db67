//! The client side of connection set-up as a sans-IO state machine: the
//! order of AUTH, USER/PASS/ACCT, PBSZ/PROT, CCC and user-supplied commands.
//!
//! RFC 4217 §10.3: "A client MUST allow a user to override the timing of
//! these commands to suit a specific server" — commands before AUTH (a SITE
//! command some servers need), PBSZ/PROT right after AUTH, after login or
//! not at all (sent later, per transfer, RFC 4217 §10.4), and CCC after login
//! (§5). AUTH TLS falls back to AUTH SSL (draft §6) but never to plaintext:
//! plain FTP is only ever used when asked for. Implicit FTPS (draft §4.2)
//! starts protected.
//!
//! [`data`] decides, per transfer, when the data connection's TLS
//! handshake starts (RFC 4217 §7; servers that wait for it before their
//! 1xx reply).

pub mod data;

use std::collections::VecDeque;

use crate::reply::Reply;
use crate::session::DataProtection;

/// How the control connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// AUTH TLS (falling back to AUTH SSL) on a plain connection.
    Explicit,
    /// TLS from the first byte (the connection is already protected).
    Implicit,
    /// No TLS at all: only when the user explicitly asks for it.
    None,
}

/// When PBSZ 0 / PROT are sent during set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtTiming {
    /// Right after AUTH, before USER.
    AfterAuth,
    /// After login (the default).
    AfterLogin,
    /// Not during set-up; the caller sends them when it wants.
    Manual,
}

/// What the user chose for the session set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOptions {
    /// Explicit, implicit or no TLS.
    pub security: Security,
    /// USER argument.
    pub user: Vec<u8>,
    /// PASS argument.
    pub password: Vec<u8>,
    /// ACCT argument, for servers that ask (332).
    pub account: Option<Vec<u8>>,
    /// Command lines sent before AUTH (RFC 4217 §10.3).
    pub before_auth: Vec<Vec<u8>>,
    /// Command lines sent after login (and after PBSZ/PROT when those follow login).
    pub after_login: Vec<Vec<u8>>,
    /// When PBSZ/PROT are sent.
    pub prot_timing: ProtTiming,
    /// The PROT level set during set-up.
    pub protection: DataProtection,
    /// Clear the control connection with CCC at the end of set-up (RFC 4217 §5).
    pub ccc: bool,
    /// Try AUTH SSL when the server refuses AUTH TLS.
    pub auth_ssl_fallback: bool,
}

impl LoginOptions {
    /// The defaults: explicit TLS, AUTH → USER/PASS → PBSZ 0 → PROT P.
    pub fn new(user: impl Into<Vec<u8>>, password: impl Into<Vec<u8>>) -> LoginOptions {
        LoginOptions {
            security: Security::Explicit,
            user: user.into(),
            password: password.into(),
            account: None,
            before_auth: Vec::new(),
            after_login: Vec::new(),
            prot_timing: ProtTiming::AfterLogin,
            protection: DataProtection::Private,
            ccc: false,
            auth_ssl_fallback: true,
        }
    }
}

/// One step of set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStep {
    /// Send this command line (without CRLF), then feed the reply to `handle_reply`.
    Send(Vec<u8>),
    /// Run the TLS handshake on the control connection, then call `handle_tls_established`.
    StartTls,
    /// Send close_notify and continue in plaintext (after CCC's 200).
    ClearTls,
    /// Set-up is complete.
    Done(LoginSummary),
}

/// The state after set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSummary {
    /// The control connection is (still) protected by TLS.
    pub control_protected: bool,
    /// The data protection level the server has agreed to (or defaults to).
    pub protection: DataProtection,
    /// PBSZ has been accepted (so PROT may be sent later).
    pub pbsz_done: bool,
    /// The AUTH mechanism the server accepted, if any.
    pub mechanism: Option<&'static str>,
}

/// Why set-up failed; the reply says what the server said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The greeting was not 220.
    #[error("server refused the connection: {0:?}")]
    Greeting(Reply),
    /// The server refused TLS (AUTH TLS and AUTH SSL): no silent fall-back to plaintext.
    #[error("server refused TLS: {0:?}")]
    TlsRefused(Reply),
    /// Login (USER/PASS/ACCT) failed.
    #[error("login refused: {0:?}")]
    LoginRefused(Reply),
    /// The server refused PBSZ or PROT.
    #[error("data protection refused ({command}): {reply:?}")]
    ProtectionRefused {
        /// `PBSZ`, `PROT P` or `PROT C`.
        command: &'static str,
        /// The reply.
        reply: Reply,
    },
    /// The server refused CCC (533/534).
    #[error("CCC refused: {0:?}")]
    CccRefused(Reply),
    /// A user-supplied command failed.
    #[error("command `{command}` failed: {reply:?}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// The reply.
        reply: Reply,
    },
    /// The server asked for ACCT and none was given.
    #[error("server wants an account (ACCT) and none was given")]
    AccountRequired,
    /// A reply arrived that the sequence does not expect.
    #[error("unexpected reply to {command}: {reply:?}")]
    Unexpected {
        /// The command.
        command: &'static str,
        /// The reply.
        reply: Reply,
    },
}

/// Do these first bytes from a server start a TLS record (RFC 8446 §5.1:
/// a content type from change_cipher_spec (20) to application_data (23),
/// then a legacy version 3.x)? An FTP server greets with text (`220 `);
/// an implicit-FTPS port answers a ClientHello with a handshake or alert
/// record: so an `ftp://` URL that gets no greeting can be told it reached
/// an implicit-TLS port.
pub fn looks_like_tls_record(first: &[u8]) -> bool {
    matches!(first, [20..=23, 3, 0..=4, ..])
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Planned {
    Raw(Vec<u8>),
    AuthTls,
    AuthSsl,
    User,
    Pass,
    Acct,
    Pbsz,
    Prot,
    Ccc,
}

/// The set-up state machine. Feed it the greeting, then loop on `poll_step`.
#[derive(Debug)]
pub struct ClientLogin {
    options: LoginOptions,
    queue: VecDeque<Planned>,
    awaiting: Option<Planned>,
    tls_pending: bool,
    clear_pending: bool,
    greeted: bool,
    done: bool,
    summary: LoginSummary,
}

impl ClientLogin {
    /// Plan the set-up for these options.
    pub fn new(options: LoginOptions) -> ClientLogin {
        let mut queue: VecDeque<Planned> = options
            .before_auth
            .iter()
            .cloned()
            .map(Planned::Raw)
            .collect();
        let secured = options.security != Security::None;
        if options.security == Security::Explicit {
            queue.push_back(Planned::AuthTls);
        }
        if secured && options.prot_timing == ProtTiming::AfterAuth {
            queue.extend([Planned::Pbsz, Planned::Prot]);
        }
        queue.push_back(Planned::User);
        if secured && options.prot_timing == ProtTiming::AfterLogin {
            queue.extend([Planned::Pbsz, Planned::Prot]);
        }
        queue.extend(options.after_login.iter().cloned().map(Planned::Raw));
        if secured && options.ccc {
            queue.push_back(Planned::Ccc);
        }
        let implicit = options.security == Security::Implicit;
        ClientLogin {
            summary: LoginSummary {
                control_protected: implicit,
                // Draft §8: implicit connections start Private.
                protection: if implicit {
                    DataProtection::Private
                } else {
                    DataProtection::Clear
                },
                pbsz_done: false,
                mechanism: None,
            },
            options,
            queue,
            awaiting: None,
            tls_pending: false,
            clear_pending: false,
            greeted: false,
            done: false,
        }
    }

    /// The server's greeting (RFC 959 §5.4: 220, or 120 then 220).
    pub fn handle_greeting(&mut self, reply: &Reply) -> Result<bool, LoginError> {
        match reply.code {
            220 => {
                self.greeted = true;
                Ok(true)
            }
            120 => Ok(false),
            _ => Err(LoginError::Greeting(reply.clone())),
        }
    }

    /// The next step, or `None` while a reply is awaited.
    pub fn poll_step(&mut self) -> Option<LoginStep> {
        if !self.greeted || self.awaiting.is_some() || self.done {
            return None;
        }
        if self.tls_pending {
            return Some(LoginStep::StartTls);
        }
        if self.clear_pending {
            self.clear_pending = false;
            self.summary.control_protected = false;
            return Some(LoginStep::ClearTls);
        }
        let Some(next) = self.queue.pop_front() else {
            self.done = true;
            return Some(LoginStep::Done(self.summary.clone()));
        };
        let line = self.line_for(&next);
        self.awaiting = Some(next);
        Some(LoginStep::Send(line))
    }

    fn line_for(&self, planned: &Planned) -> Vec<u8> {
        let with_arg = |verb: &str, arg: &[u8]| {
            let mut line = verb.as_bytes().to_vec();
            line.push(b' ');
            line.extend_from_slice(arg);
            line
        };
        match planned {
            Planned::Raw(line) => line.clone(),
            Planned::AuthTls => b"AUTH TLS".to_vec(),
            Planned::AuthSsl => b"AUTH SSL".to_vec(),
            Planned::User => with_arg("USER", &self.options.user),
            Planned::Pass => with_arg("PASS", &self.options.password),
            Planned::Acct => with_arg("ACCT", self.options.account.as_deref().unwrap_or_default()),
            Planned::Pbsz => b"PBSZ 0".to_vec(),
            Planned::Prot => match self.options.protection {
                DataProtection::Private => b"PROT P".to_vec(),
                DataProtection::Clear => b"PROT C".to_vec(),
            },
            Planned::Ccc => b"CCC".to_vec(),
        }
    }

    /// The TLS handshake on the control connection completed.
    pub fn handle_tls_established(&mut self) {
        self.tls_pending = false;
        self.summary.control_protected = true;
    }

    /// The reply to the last command sent.
    pub fn handle_reply(&mut self, reply: &Reply) -> Result<(), LoginError> {
        let Some(planned) = self.awaiting.take() else {
            return Ok(());
        };
        let ok = (200..300).contains(&reply.code);
        match planned {
            Planned::Raw(line) => {
                if reply.code >= 400 {
                    return Err(LoginError::CommandFailed {
                        command: String::from_utf8_lossy(&line).into_owned(),
                        reply: reply.clone(),
                    });
                }
            }
            Planned::AuthTls | Planned::AuthSsl if reply.code == 234 => {
                self.tls_pending = true;
                if planned == Planned::AuthSsl {
                    // Draft §6: AUTH SSL protects data without PBSZ/PROT.
                    self.summary.protection = DataProtection::Private;
                    self.summary.mechanism = Some("SSL");
                } else {
                    self.summary.mechanism = Some("TLS");
                }
            }
            Planned::AuthTls if self.options.auth_ssl_fallback && reply.code >= 400 => {
                self.queue.push_front(Planned::AuthSsl);
            }
            Planned::AuthTls | Planned::AuthSsl => {
                return Err(LoginError::TlsRefused(reply.clone()))
            }
            Planned::User | Planned::Pass | Planned::Acct => match reply.code {
                // 232: logged in by the TLS client certificate (RFC 4217 §12.2).
                230 | 232 | 202 => {}
                331 if planned == Planned::User => self.queue.push_front(Planned::Pass),
                332 if self.options.account.is_some() => self.queue.push_front(Planned::Acct),
                332 => return Err(LoginError::AccountRequired),
                _ => return Err(LoginError::LoginRefused(reply.clone())),
            },
            Planned::Pbsz if ok => self.summary.pbsz_done = true,
            Planned::Pbsz => {
                return Err(LoginError::ProtectionRefused {
                    command: "PBSZ",
                    reply: reply.clone(),
                })
            }
            Planned::Prot if ok => self.summary.protection = self.options.protection,
            Planned::Prot => {
                return Err(LoginError::ProtectionRefused {
                    command: match self.options.protection {
                        DataProtection::Private => "PROT P",
                        DataProtection::Clear => "PROT C",
                    },
                    reply: reply.clone(),
                })
            }
            Planned::Ccc if ok => self.clear_pending = true,
            Planned::Ccc => return Err(LoginError::CccRefused(reply.clone())),
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Run set-up against scripted replies; return the lines sent and steps.
    fn run(
        options: LoginOptions,
        replies: &[(&str, u16)],
    ) -> (Vec<String>, Result<LoginSummary, LoginError>) {
        let mut login = ClientLogin::new(options);
        login.handle_greeting(&Reply::new(220, "hi")).unwrap();
        let mut sent = Vec::new();
        loop {
            match login.poll_step() {
                Some(LoginStep::Send(line)) => {
                    let line = String::from_utf8(line).unwrap();
                    let verb = line.split(' ').next().unwrap().to_string();
                    let key = if verb == "AUTH" { line.clone() } else { verb };
                    let code = replies
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map(|(_, c)| *c)
                        .unwrap_or(200);
                    sent.push(line);
                    if let Err(e) = login.handle_reply(&Reply::new(code, "x")) {
                        return (sent, Err(e));
                    }
                }
                Some(LoginStep::StartTls) => {
                    sent.push("<tls>".into());
                    login.handle_tls_established();
                }
                Some(LoginStep::ClearTls) => sent.push("<clear>".into()),
                Some(LoginStep::Done(summary)) => return (sent, Ok(summary)),
                None => panic!("stalled"),
            }
        }
    }

    const OK: &[(&str, u16)] = &[("AUTH TLS", 234), ("USER", 331), ("PASS", 230)];

    #[test]
    fn rfc4217_default_order_auth_user_pass_pbsz_prot() {
        let (sent, summary) = run(LoginOptions::new("u", "p"), OK);
        assert_eq!(
            sent,
            ["AUTH TLS", "<tls>", "USER u", "PASS p", "PBSZ 0", "PROT P"]
        );
        let summary = summary.unwrap();
        assert_eq!(summary.protection, DataProtection::Private);
        assert!(summary.control_protected && summary.pbsz_done);
    }

    #[test]
    fn rfc4217_s10_3_pbsz_prot_right_after_auth() {
        let options = LoginOptions {
            prot_timing: ProtTiming::AfterAuth,
            ..LoginOptions::new("u", "p")
        };
        let (sent, _) = run(options, OK);
        assert_eq!(
            sent,
            ["AUTH TLS", "<tls>", "PBSZ 0", "PROT P", "USER u", "PASS p"]
        );
    }

    #[test]
    fn rfc4217_s10_3_commands_before_auth_and_after_login() {
        let options = LoginOptions {
            before_auth: vec![b"SITE PREPARE".to_vec()],
            after_login: vec![b"SITE AFTER".to_vec()],
            ..LoginOptions::new("u", "p")
        };
        let (sent, _) = run(options, OK);
        assert_eq!(sent.first().unwrap(), "SITE PREPARE");
        assert_eq!(sent.last().unwrap(), "SITE AFTER");
        assert_eq!(sent[1], "AUTH TLS");
    }

    #[test]
    fn rfc4217_s10_3_prot_can_be_left_to_the_caller() {
        let options = LoginOptions {
            prot_timing: ProtTiming::Manual,
            ..LoginOptions::new("u", "p")
        };
        let (sent, summary) = run(options, OK);
        assert_eq!(sent, ["AUTH TLS", "<tls>", "USER u", "PASS p"]);
        assert_eq!(summary.unwrap().protection, DataProtection::Clear);
    }

    #[test]
    fn rfc4217_s10_4_prot_c_chosen() {
        let options = LoginOptions {
            protection: DataProtection::Clear,
            ..LoginOptions::new("u", "p")
        };
        let (sent, summary) = run(options, OK);
        assert_eq!(sent.last().unwrap(), "PROT C");
        assert_eq!(summary.unwrap().protection, DataProtection::Clear);
    }

    #[test]
    fn draft_s6_auth_tls_refused_falls_back_to_auth_ssl() {
        let replies = &[
            ("AUTH TLS", 504),
            ("AUTH SSL", 234),
            ("USER", 331),
            ("PASS", 230),
        ];
        let (sent, summary) = run(LoginOptions::new("u", "p"), replies);
        assert_eq!(&sent[..3], ["AUTH TLS", "AUTH SSL", "<tls>"]);
        assert_eq!(summary.unwrap().mechanism, Some("SSL"));
    }

    #[test]
    fn tls_refused_is_an_error_never_a_plaintext_fallback() {
        let replies = &[("AUTH TLS", 500), ("AUTH SSL", 500)];
        let (sent, result) = run(LoginOptions::new("u", "p"), replies);
        assert!(matches!(result, Err(LoginError::TlsRefused(_))));
        assert!(!sent.iter().any(|l| l.starts_with("USER")), "{sent:?}");
    }

    #[test]
    fn draft_s4_2_implicit_sends_no_auth_and_starts_private() {
        let options = LoginOptions {
            security: Security::Implicit,
            prot_timing: ProtTiming::Manual,
            ..LoginOptions::new("u", "p")
        };
        let (sent, summary) = run(options, OK);
        assert_eq!(sent, ["USER u", "PASS p"]);
        let summary = summary.unwrap();
        assert_eq!(summary.protection, DataProtection::Private);
        assert!(summary.control_protected);
    }

    #[test]
    fn plain_ftp_only_when_asked_sends_no_pbsz_prot() {
        let options = LoginOptions {
            security: Security::None,
            ..LoginOptions::new("u", "p")
        };
        let (sent, summary) = run(options, OK);
        assert_eq!(sent, ["USER u", "PASS p"]);
        assert!(!summary.unwrap().control_protected);
    }

    #[test]
    fn rfc4217_s5_ccc_after_login() {
        let options = LoginOptions {
            ccc: true,
            ..LoginOptions::new("u", "p")
        };
        let (sent, summary) = run(options, OK);
        assert_eq!(&sent[sent.len() - 2..], ["CCC", "<clear>"]);
        let summary = summary.unwrap();
        assert!(!summary.control_protected);
        assert_eq!(summary.protection, DataProtection::Private);
    }

    #[test]
    fn rfc4217_s5_ccc_refused_is_an_error() {
        let options = LoginOptions {
            ccc: true,
            ..LoginOptions::new("u", "p")
        };
        let mut replies = OK.to_vec();
        replies.push(("CCC", 534));
        let (_, result) = run(options, &replies);
        assert!(matches!(result, Err(LoginError::CccRefused(_))));
    }

    #[test]
    fn rfc4217_s12_2_user_232_skips_pass() {
        let replies = &[("AUTH TLS", 234), ("USER", 232)];
        let (sent, summary) = run(LoginOptions::new("u", "p"), replies);
        assert!(!sent.iter().any(|l| l.starts_with("PASS")));
        assert!(summary.is_ok());
    }

    #[test]
    fn rfc959_account_when_asked() {
        let replies = &[
            ("AUTH TLS", 234),
            ("USER", 331),
            ("PASS", 332),
            ("ACCT", 230),
        ];
        let options = LoginOptions {
            account: Some(b"acc".to_vec()),
            ..LoginOptions::new("u", "p")
        };
        let (sent, summary) = run(options, replies);
        assert!(sent.contains(&"ACCT acc".to_string()));
        assert!(summary.is_ok());
        let (_, result) = run(LoginOptions::new("u", "p"), replies);
        assert_eq!(result.unwrap_err(), LoginError::AccountRequired);
    }

    #[test]
    fn wrong_password_is_login_refused() {
        let replies = &[("AUTH TLS", 234), ("USER", 331), ("PASS", 530)];
        let (_, result) = run(LoginOptions::new("u", "p"), replies);
        assert!(matches!(result, Err(LoginError::LoginRefused(r)) if r.code == 530));
    }

    #[test]
    fn prot_refused_is_an_error() {
        let replies = &[
            ("AUTH TLS", 234),
            ("USER", 331),
            ("PASS", 230),
            ("PROT", 534),
        ];
        let (_, result) = run(LoginOptions::new("u", "p"), replies);
        assert!(matches!(
            result,
            Err(LoginError::ProtectionRefused {
                command: "PROT P",
                ..
            })
        ));
    }

    #[test]
    fn draft_s4_2_an_implicit_port_answers_in_tls_records_an_explicit_one_in_text() {
        assert!(looks_like_tls_record(&[22, 3, 3, 0, 90]));
        assert!(looks_like_tls_record(&[21, 3, 1, 0, 2]));
        assert!(!looks_like_tls_record(b"220 ready"));
        assert!(!looks_like_tls_record(&[22, 3]));
        assert!(!looks_like_tls_record(&[22, 2, 0, 0, 0]));
        assert!(!looks_like_tls_record(b""));
    }

    #[test]
    fn greeting_other_than_220_is_an_error() {
        let mut login = ClientLogin::new(LoginOptions::new("u", "p"));
        assert!(login.handle_greeting(&Reply::new(421, "busy")).is_err());
        let mut login = ClientLogin::new(LoginOptions::new("u", "p"));
        assert!(!login.handle_greeting(&Reply::new(120, "wait")).unwrap());
        assert_eq!(login.poll_step(), None);
    }
}
