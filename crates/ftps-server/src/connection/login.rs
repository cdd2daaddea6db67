//! Logging in, for one control connection: USER with a client certificate
//! (RFC 4217 §12.2), PASS checked against the account read from the user
//! store at this login (argon2 on the blocking pool, at most one check per
//! core), bans and the delay after a wrong password (RFC 2577 §5), 421 when
//! the store cannot be reached, and opening the user's storage root.

use std::sync::Arc;

use ftps_proto::session::{LoginGrant, LoginMethod};
use tracing::{error, info, warn};

use super::{Connection, ListenerKind};
use crate::users::{Account, CertCheck, StoreError};

impl Connection {
    /// USER with a client certificate (RFC 4217 §12.2).
    pub(super) async fn check_user(&mut self, user: Vec<u8>) {
        use ftps_proto::session::UserCheck;
        let check = match (String::from_utf8(user), &self.client_cert) {
            (Ok(name), Some((_, identity))) => {
                let identity = identity.clone();
                match self.shared.users.lookup(&name).await {
                    Ok(record) => self
                        .shared
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
            CertCheck::Certificate(account) => match self.open_storage(&account) {
                Some(grant) => UserCheck::Certificate(grant),
                None => {
                    self.session.handle_account_unavailable();
                    return;
                }
            },
        };
        self.session.handle_user_check(answer);
    }

    /// Open the user's storage root; the grant on success. (A root that
    /// cannot be opened refuses the login.)
    pub(super) fn open_storage(&mut self, account: &Account) -> Option<LoginGrant> {
        match self.shared.open_storage(&account.storage) {
            Ok(fs) => {
                self.storage = Some(fs);
                Some(grant_for(account, &self.listener))
            }
            Err(error) => {
                error!(user = %account.name, storage = %account.storage, %error, "cannot open the user's storage");
                None
            }
        }
    }

    /// The session logged the user in (its 230 or 232 went out): the one
    /// place a login is recorded.
    pub(super) fn logged_in(&mut self, user: String, method: LoginMethod) {
        let tls = self.tls_version();
        match method {
            LoginMethod::Password => info!(peer = %self.peer, %user, %tls, "login"),
            LoginMethod::Certificate => {
                info!(peer = %self.peer, %user, %tls, "login by client certificate")
            }
        }
        self.user = user;
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
        let shared = Arc::clone(&self.shared);
        let name = String::from_utf8(user).ok();
        let shown = name.clone().unwrap_or_else(|| "<non-UTF-8>".into());
        let identity = self.client_cert.as_ref().map(|(_, id)| id.clone());
        // Asked of the store at each login: a change holds from the next one.
        let record = match &name {
            Some(name) => match shared.users.lookup(name).await {
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
        let account =
            match shared
                .users
                .verify_cached(record.as_ref(), &password, identity.as_ref())
            {
                Some(account) => Some(account),
                None => {
                    // argon2 is CPU- and memory-heavy: at most one check per
                    // core at a time, however many clients send PASS at once.
                    let _slot = Arc::clone(&shared.password_checks).acquire_owned().await;
                    tokio::task::spawn_blocking(move || {
                        shared
                            .users
                            .verify(record.as_ref(), &password, identity.as_ref())
                    })
                    .await
                    .ok()
                    .flatten()
                }
            };
        let Some(account) = account else {
            let tls = self.tls_version();
            let ip = self.peer.ip().to_canonical();
            match self.shared.bans.record_failure(ip).await {
                crate::bans::Failure::Banned => {
                    warn!(peer = %self.peer, user = %shown, "too many failed logins: address banned")
                }
                crate::bans::Failure::Counted => {
                    warn!(peer = %self.peer, user = %shown, %tls, "login failed")
                }
            }
            // The session counts the failure (its 530 waits in its queue);
            // the delay grows with that count, this failure included.
            self.session.handle_auth_result(None);
            let base = self.shared.config.server.failed_login_delay();
            let failures = self.session.login_failures();
            tokio::time::sleep(crate::bans::failure_delay(base, failures)).await;
            return;
        };
        match self.open_storage(&account) {
            Some(grant) => self.session.handle_auth_result(Some(grant)),
            None => self.session.handle_account_unavailable(),
        }
    }
}

/// What a successful login grants, from the account and the listener it
/// came in on (whose own setting holds where the user sets nothing).
fn grant_for(account: &Account, listener: &ListenerKind) -> LoginGrant {
    let mut policy = account.policy;
    if let (None, Some(accept)) = (
        account.policy_override.accept_upload_without_close_notify,
        listener.accept_upload_without_close_notify,
    ) {
        policy.accept_upload_without_close_notify = accept;
    }
    LoginGrant {
        name: account.name.clone(),
        write: account.write && !account.anonymous,
        policy,
        anonymous: account.anonymous,
    }
}
