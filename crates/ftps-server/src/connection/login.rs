//! Logging in, for the control connection's task: USER with a client
//! certificate (RFC 4217 §12.2), PASS (RFC 959 §4.1.1) checked against the
//! account read from the user store at this login (argon2 on the blocking
//! pool, at most one check per core), the growing delay and the bans of
//! RFC 2577 §5, 421 when the store cannot be reached, and binding the user
//! to the session — address rules, the user's session cap (421), the
//! storage with its decorators ([`crate::binding`]) — and the login's
//! events.

use std::sync::Arc;

use ftps_proto::session::{LoginGrant, LoginMethod};
use tracing::{error, info, warn};

use super::Connection;
use crate::binding::{bind_user, Refused};
use crate::shared::ListenerKind;
use crate::users::{Account, CertCheck, StoreError, UserRecord};

impl Connection {
    /// USER with a client certificate (RFC 4217 §12.2).
    pub(super) async fn check_user(&mut self, user: Vec<u8>) {
        use ftps_proto::session::UserCheck;
        let check = match (String::from_utf8(user), &self.client_cert) {
            (Ok(name), Some((_, identity))) => {
                let identity = identity.clone();
                match self.live.users.lookup(&name).await {
                    Ok(record) => self
                        .live
                        .users
                        .check_certificate(record.as_ref(), &identity),
                    Err(error @ StoreError::Invalid { .. }) => {
                        error!(peer = %self.peer, user = %name, %error, "unusable account");
                        CertCheck::Refused
                    }
                    Err(error) => {
                        error!(peer = %self.peer, user = %name, %error, "cannot check the login");
                        self.session.handle_auth_unavailable();
                        return;
                    }
                }
            }
            _ => CertCheck::Password,
        };
        let answer = match check {
            CertCheck::Password => UserCheck::Password,
            CertCheck::Refused => {
                warn!(peer = %self.peer, "client certificate does not belong to the user named in USER");
                UserCheck::Refused
            }
            CertCheck::Certificate(account) => match self.bind(&account) {
                Ok(grant) => UserCheck::Certificate(grant),
                Err(Refused::TooManySessions(max)) => {
                    return self.too_many_sessions(&account.name, max);
                }
                Err(Refused::Root(_)) => {
                    self.events.login_failed(
                        &account.name,
                        "root cannot be opened",
                        self.tls_version_name(),
                    );
                    self.session.handle_account_unavailable();
                    return;
                }
                Err(Refused::Address(_)) => UserCheck::Refused,
            },
        };
        self.session.handle_user_check(answer);
    }

    /// The user has all the sessions allowed: 421 and close.
    fn too_many_sessions(&mut self, user: &str, max: usize) {
        warn!(peer = %self.peer, %user, max, "login refused: the user has as many sessions as allowed");
        self.events
            .login_failed(user, "too many sessions", self.tls_version_name());
        self.session
            .handle_login_refused("Too many sessions for this user; try again later.");
    }

    /// Bind the user to this session (address rules, session cap, storage:
    /// see [`crate::binding`]); the grant on success.
    fn bind(&mut self, account: &Account) -> Result<LoginGrant, Refused> {
        match bind_user(&self.shared, &self.live, account, self.peer.ip()) {
            Ok(bound) => {
                self.storage = Some(bound.storage);
                self.session_count = Some(bound.count);
                self.account = Some(account.clone());
                Ok(grant_for(account, &self.listener))
            }
            Err(refused) => {
                match &refused {
                    Refused::Address(rule) => {
                        warn!(peer = %self.peer, user = %account.name, %rule, "login refused by an access rule")
                    }
                    Refused::Root(error) => {
                        error!(user = %account.name, storage = %account.storage, %error, "cannot open the user's storage")
                    }
                    Refused::TooManySessions(_) => {}
                }
                Err(refused)
            }
        }
    }

    /// The session logged the user in (its 230 or 232 went out): the one
    /// place a login is recorded.
    pub(super) fn logged_in(&mut self, user: String, method: LoginMethod) {
        let tls = self.tls_version();
        let (anonymous, root) = match &self.account {
            Some(account) => (
                account.anonymous,
                match &account.storage {
                    crate::config::UserStorage::Local(root) => Some(root.clone()),
                    _ => None,
                },
            ),
            None => (false, None),
        };
        self.events
            .logged_in(&user, anonymous, root, self.tls_version_name());
        match method {
            LoginMethod::Password => info!(peer = %self.peer, %user, %tls, "login"),
            LoginMethod::Certificate => {
                info!(peer = %self.peer, %user, %tls, "login by client certificate")
            }
        }
        self.user = user;
    }

    /// The control connection's TLS version, for events (`None`: plaintext).
    pub(super) fn tls_version_name(&self) -> Option<&'static str> {
        self.stream
            .tls()
            .map(|c| crate::ops::event::tls_version_name(c))
    }

    /// The control connection's TLS version, for the log.
    fn tls_version(&self) -> String {
        self.stream
            .tls()
            .map(|c| crate::tls::describe(c).0)
            .unwrap_or_else(|| "none".into())
    }

    pub(super) async fn authenticate(&mut self, user: Vec<u8>, password: Vec<u8>) {
        // A ban holds for sessions opened before it (RFC 2577 §5): no
        // password is checked for a banned address.
        let ip = self.peer.ip().to_canonical();
        if self.shared.bans.is_banned(ip).await {
            warn!(peer = %self.peer, "PASS from a banned address: closing");
            self.session.handle_address_banned();
            return;
        }
        let name = String::from_utf8(user).ok();
        let shown = name.clone().unwrap_or_else(|| "<non-UTF-8>".into());
        // Asked of the store at each login: a change holds from the next one.
        let record = match &name {
            Some(name) => match self.live.users.lookup(name).await {
                Ok(record) => record,
                Err(error @ StoreError::Unavailable(_)) => {
                    error!(peer = %self.peer, user = %shown, %error, "cannot check the login");
                    self.session.handle_auth_unavailable();
                    return;
                }
                Err(error) => {
                    // A stored account that is not valid logs nobody in.
                    error!(peer = %self.peer, user = %shown, %error, "unusable account");
                    None
                }
            },
            None => None,
        };
        let bound = match self.verify(record, password).await {
            Some(account) => match self.bind(&account) {
                Ok(grant) => Ok(grant),
                Err(Refused::TooManySessions(max)) => {
                    return self.too_many_sessions(&account.name, max);
                }
                Err(Refused::Address(_)) => Err("address not allowed"),
                Err(Refused::Root(_)) => {
                    // The server's fault, not the client's: no ban, no delay.
                    self.events.login_failed(
                        &shown,
                        "root cannot be opened",
                        self.tls_version_name(),
                    );
                    return self.session.handle_account_unavailable();
                }
            },
            None => Err("wrong user name or password"),
        };
        let grant = match bound {
            Ok(grant) => grant,
            Err(why) => return self.login_failed(&shown, why).await,
        };
        self.session.handle_auth_result(Some(grant));
    }

    /// The account when `password` (and the client certificate, if any)
    /// matches `record`: from the memory of recent checks, else by argon2
    /// on the blocking pool (at most one check per core at a time, however
    /// many clients send PASS at once: it is CPU- and memory-heavy).
    async fn verify(&self, record: Option<UserRecord>, password: Vec<u8>) -> Option<Account> {
        let identity = self.client_cert.as_ref().map(|(_, id)| id.clone());
        let users = &self.live.users;
        if let Some(account) = users.verify_cached(record.as_ref(), &password, identity.as_ref()) {
            return Some(account);
        }
        let _slot = Arc::clone(&self.shared.password_checks)
            .acquire_owned()
            .await;
        let live = Arc::clone(&self.live);
        tokio::task::spawn_blocking(move || {
            live.users
                .verify(record.as_ref(), &password, identity.as_ref())
        })
        .await
        .ok()
        .flatten()
    }

    /// A failed login: counted towards a ban, 530 after a growing delay.
    async fn login_failed(&mut self, shown: &str, why: &str) {
        let tls = self.tls_version();
        let ip = self.peer.ip().to_canonical();
        match self.shared.bans.record_failure(ip).await {
            crate::bans::Failure::Banned => {
                warn!(peer = %self.peer, user = %shown, "too many failed logins: address banned");
                self.events.banned(shown);
            }
            crate::bans::Failure::Counted => {
                warn!(peer = %self.peer, user = %shown, %tls, "login failed")
            }
        }
        self.events
            .login_failed(shown, why, self.tls_version_name());
        // The session counts the failure (its 530 waits in its queue);
        // the delay grows with that count, this failure included.
        self.session.handle_auth_result(None);
        let base = self.live.config.server.failed_login_delay();
        let failures = self.session.login_failures();
        tokio::time::sleep(crate::bans::failure_delay(base, failures)).await;
    }
}

/// What a successful login grants, from the account and the listener it
/// came in on (whose own setting holds where the user sets nothing).
/// Per-directory rules that allow a change somewhere let changing commands
/// through to the rules ([`crate::access`]).
fn grant_for(account: &Account, listener: &ListenerKind) -> LoginGrant {
    let mut policy = account.policy;
    if let (None, Some(accept)) = (
        account.policy_override.accept_upload_without_close_notify,
        listener.accept_upload_without_close_notify,
    ) {
        policy.accept_upload_without_close_notify = accept;
    }
    let write = account.write || account.rules.grants_any_write();
    LoginGrant {
        name: account.name.clone(),
        write: write && !account.anonymous,
        policy,
        anonymous: account.anonymous,
    }
}
