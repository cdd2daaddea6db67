//! Where quota usage is kept: the [`UsageStore`] trait and its in-memory
//! implementation, [`MemoryUsageStore`].
//!
//! A store holds, per user name, the bytes and files the user stores
//! ([`Usage`]). The quota layer ([`super::QuotaStorage`]) reads it when an
//! upload starts, adds to it when an upload commits, a file is deleted or a
//! rename replaces a file, and asks for a measurement of the user's tree
//! ([`crate::storage::Storage::usage`]) when the store has nothing for the
//! user yet. Another store plugs in behind the same trait
//! ([`crate::Server::with_usage_store`]); the database several servers
//! share keeps usage in its `ftps_usage` table
//! ([`super::PostgresUsageStore`]).

use std::collections::HashMap;
use std::sync::Mutex;

pub use crate::storage::Usage;

/// A user's quota: the most bytes and files the user may store (`None`:
/// no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Bytes of regular files.
    pub bytes: Option<u64>,
    /// Number of regular files.
    pub files: Option<u64>,
}

impl QuotaLimits {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.bytes.is_some() || self.files.is_some()
    }

    /// Whether `usage` changed by `delta` stays within these limits. Only
    /// growth is held to a limit: a change that shrinks (or keeps) bytes or
    /// files always passes, even for a user already over a lowered quota.
    pub fn allow(&self, usage: Usage, delta: UsageDelta) -> bool {
        let within = |value: u64, delta: i64, max: Option<u64>| match (u64::try_from(delta), max) {
            (Ok(up), Some(max)) if up > 0 => value.saturating_add(up) <= max,
            _ => true,
        };
        within(usage.bytes, delta.bytes, self.bytes) && within(usage.files, delta.files, self.files)
    }
}

/// What [`UsageStore::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The change is recorded; the usage afterwards.
    Done(Usage),
    /// The change would cross the limits it was held to: nothing changed;
    /// the usage recorded.
    OverQuota(Usage),
    /// No usage is recorded for the user (never measured, or the record
    /// was removed to have it measured again): nothing changed.
    NotRecorded,
}

/// A change to a user's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageDelta {
    /// Bytes added (negative: removed).
    pub bytes: i64,
    /// Files added (negative: removed).
    pub files: i64,
}

impl Usage {
    /// This usage changed by `delta`, never below zero.
    pub fn apply(self, delta: UsageDelta) -> Usage {
        let add = |value: u64, delta: i64| match u64::try_from(delta) {
            Ok(up) => value.saturating_add(up),
            Err(_) => value.saturating_sub(delta.unsigned_abs()),
        };
        Usage {
            bytes: add(self.bytes, delta.bytes),
            files: add(self.files, delta.files),
        }
    }
}

/// A usage store failed (its text goes to the log; the operation that
/// needed it is refused with a local error, 451).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("usage store: {0}")]
pub struct UsageError(pub String);

/// Keeps each user's [`Usage`]. Every method is one atomic step for the
/// user it names; the quota layer never holds a lock across two calls.
#[async_trait::async_trait]
pub trait UsageStore: Send + Sync + std::fmt::Debug + 'static {
    /// The recorded usage of `user`; `None` when there is none yet (the
    /// quota layer then measures the user's tree and calls
    /// [`UsageStore::initialize`]).
    async fn get(&self, user: &str) -> Result<Option<Usage>, UsageError>;

    /// Record `measured` for `user` unless a usage is recorded already
    /// (another session or server measured first); returns what is
    /// recorded afterwards.
    async fn initialize(&self, user: &str, measured: Usage) -> Result<Usage, UsageError>;

    /// Add `delta` to the usage of `user` (never below zero) in one atomic
    /// step, unless the growth would cross `within`
    /// ([`QuotaLimits::allow`]; `QuotaLimits::default()` holds nothing).
    /// A user without a recorded usage is left alone
    /// ([`Added::NotRecorded`]): the quota layer measures first.
    async fn add(
        &self,
        user: &str,
        delta: UsageDelta,
        within: QuotaLimits,
    ) -> Result<Added, UsageError>;

    /// Forget the usage of `user`: its quota was removed, so nothing keeps
    /// the usage up to date any more; a quota given again measures anew.
    async fn forget(&self, user: &str) -> Result<(), UsageError>;
}

/// The usage store of a single server: usage lives in memory and is
/// measured from each user's tree at the first change after every start.
///
/// So a restart, even after a crash in the middle of an upload, starts from
/// what is on disk (in-progress upload files do not count), and changes made
/// to the tree outside FTP are seen at the next start. The cost is one walk
/// of a user's tree per start, at that user's first upload, delete or rename.
#[derive(Debug, Default)]
pub struct MemoryUsageStore {
    users: Mutex<HashMap<String, Usage>>,
}

impl MemoryUsageStore {
    /// An empty store.
    pub fn new() -> MemoryUsageStore {
        MemoryUsageStore::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Usage>) -> R) -> R {
        match self.users.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

#[async_trait::async_trait]
impl UsageStore for MemoryUsageStore {
    async fn get(&self, user: &str) -> Result<Option<Usage>, UsageError> {
        Ok(self.with(|users| users.get(user).copied()))
    }

    async fn initialize(&self, user: &str, measured: Usage) -> Result<Usage, UsageError> {
        Ok(self.with(|users| *users.entry(user.to_owned()).or_insert(measured)))
    }

    async fn add(
        &self,
        user: &str,
        delta: UsageDelta,
        within: QuotaLimits,
    ) -> Result<Added, UsageError> {
        Ok(self.with(|users| match users.get_mut(user) {
            None => Added::NotRecorded,
            Some(usage) if !within.allow(*usage, delta) => Added::OverQuota(*usage),
            Some(usage) => {
                *usage = usage.apply(delta);
                Added::Done(*usage)
            }
        }))
    }

    async fn forget(&self, user: &str) -> Result<(), UsageError> {
        self.with(|users| users.remove(user));
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_initializes_once_and_adds_without_going_below_zero() {
        let store = MemoryUsageStore::new();
        assert_eq!(store.get("a").await, Ok(None));
        let first = Usage {
            bytes: 10,
            files: 1,
        };
        assert_eq!(store.initialize("a", first).await, Ok(first));
        // A second measurement does not replace the first.
        let later = Usage {
            bytes: 99,
            files: 9,
        };
        assert_eq!(store.initialize("a", later).await, Ok(first));
        let none = QuotaLimits::default();
        let grown = store
            .add("a", UsageDelta { bytes: 5, files: 1 }, none)
            .await;
        let fifteen = Usage {
            bytes: 15,
            files: 2,
        };
        assert_eq!(grown, Ok(Added::Done(fifteen)));
        // Growth past a limit changes nothing.
        let limits = QuotaLimits {
            bytes: Some(16),
            files: None,
        };
        let over = store
            .add("a", UsageDelta { bytes: 2, files: 0 }, limits)
            .await;
        assert_eq!(over, Ok(Added::OverQuota(fifteen)));
        let shrunk = store
            .add(
                "a",
                UsageDelta {
                    bytes: -100,
                    files: -5,
                },
                limits,
            )
            .await;
        assert_eq!(shrunk, Ok(Added::Done(Usage::default())));
        store.forget("a").await.unwrap();
        assert_eq!(store.get("a").await, Ok(None));
        // Forgotten: a change waits for a measurement.
        let later = store
            .add("a", UsageDelta { bytes: 1, files: 1 }, none)
            .await;
        assert_eq!(later, Ok(Added::NotRecorded));
    }

    #[test]
    fn quota_limits_hold_growth_only() {
        let limits = QuotaLimits {
            bytes: Some(100),
            files: Some(2),
        };
        let used = Usage {
            bytes: 90,
            files: 2,
        };
        let d = |bytes, files| UsageDelta { bytes, files };
        assert!(limits.allow(used, d(10, 0)));
        assert!(!limits.allow(used, d(11, 0)));
        assert!(!limits.allow(used, d(0, 1)));
        // Shrinking passes even when over a lowered quota.
        let over = Usage {
            bytes: 500,
            files: 9,
        };
        assert!(limits.allow(over, d(-10, -1)));
        assert!(limits.allow(over, d(0, 0)));
        assert!(QuotaLimits::default().allow(over, d(i64::MAX, 1)));
    }
}
