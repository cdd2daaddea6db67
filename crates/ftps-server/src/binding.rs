//! What a login binds to a session, in one place for password and
//! certificate logins alike: the user's address rules (refused: a failed
//! login, 530), the user's session cap (refused: 421), and the user's
//! storage — the root, wrapped in the decorators the account asks for:
//! timing (always), bandwidth, quota and per-directory rules.

use std::net::IpAddr;
use std::sync::Arc;

use crate::access::RulesStorage;
use crate::limits::{SessionCount, Throttle, ThrottledStorage};
use crate::ops::timed::TimedStorage;
use crate::quota::QuotaStorage;
use crate::shared::{Live, Shared};
use crate::storage::{FsError, Storage};
use crate::users::Account;

/// A user bound to a session.
pub(crate) struct Bound {
    /// The user's storage, with its decorators.
    pub(crate) storage: Arc<dyn Storage>,
    /// The user's place among its sessions; dropped at logout.
    pub(crate) count: SessionCount,
}

/// Why a user cannot be bound.
pub(crate) enum Refused {
    /// The user may not log in from this address (the rule that decided).
    Address(String),
    /// The user has as many sessions as allowed.
    TooManySessions(usize),
    /// The storage (a local root, a place in the object store) cannot be opened.
    Root(FsError),
}

/// Bind `account` to a session from `ip`.
pub(crate) fn bind_user(
    shared: &Shared,
    live: &Live,
    account: &Account,
    ip: IpAddr,
) -> Result<Bound, Refused> {
    let metrics = &shared.ops.metrics;
    if let Err(rule) = account.addresses.check(ip) {
        metrics
            .access_refusals
            .get_or_create(&[("where", "login")])
            .inc();
        return Err(Refused::Address(rule));
    }
    let count = shared
        .user_sessions
        .try_add(&account.name, account.max_sessions)
        .ok_or(Refused::TooManySessions(account.max_sessions))?;
    let root = shared
        .open_storage(&account.storage)
        .map_err(Refused::Root)?;
    let mut storage: Arc<dyn Storage> = Arc::new(TimedStorage::new(root, Arc::clone(metrics)));
    let limiters = &shared.user_limiters;
    let throttle = Throttle {
        upload: [
            limiters.get(&account.name, true, account.upload_bytes_per_sec),
            live.upload_limit.clone(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        download: [
            limiters.get(&account.name, false, account.download_bytes_per_sec),
            live.download_limit.clone(),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    if !throttle.is_empty() {
        storage = Arc::new(ThrottledStorage::new(storage, throttle));
    }
    if account.quota.is_set() {
        storage = Arc::new(QuotaStorage::new(
            storage,
            shared.quotas.user(&account.name),
            account.quota,
            metrics.quota_refusals.clone(),
        ));
    }
    if !account.rules.is_empty() {
        storage = Arc::new(RulesStorage::new(
            storage,
            Arc::clone(&account.rules),
            account.name.clone(),
            metrics
                .access_refusals
                .get_or_create(&[("where", "command")])
                .clone(),
        ));
    }
    Ok(Bound { storage, count })
}
