//! Where quota usage is kept: the [`UsageStore`] trait and its in-memory
//! implementation, [`MemoryUsageStore`].
//!
//! A store holds, per user name, the bytes and files the user stores
//! ([`Usage`]). The quota layer ([`super::QuotaStorage`]) reads it when an
//! upload starts, adds to it when an upload commits, a file is deleted or a
//! rename replaces a file, and asks for a measurement of the user's tree
//! ([`crate::storage::Storage::usage`]) when the store has nothing for the
//! user yet. Another store (a database shared by several servers) plugs in
//! behind the same trait: [`crate::Server::with_usage_store`].

use std::collections::HashMap;
use std::sync::Mutex;

pub use crate::storage::Usage;

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

    /// Add `delta` to the usage of `user` (never below zero) and return the
    /// result. A user without a recorded usage starts from zero.
    async fn add(&self, user: &str, delta: UsageDelta) -> Result<Usage, UsageError>;

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

    async fn add(&self, user: &str, delta: UsageDelta) -> Result<Usage, UsageError> {
        Ok(self.with(|users| {
            let usage = users.entry(user.to_owned()).or_default();
            *usage = usage.apply(delta);
            *usage
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
        let grown = store.add("a", UsageDelta { bytes: 5, files: 1 }).await;
        assert_eq!(
            grown,
            Ok(Usage {
                bytes: 15,
                files: 2
            })
        );
        let shrunk = store
            .add(
                "a",
                UsageDelta {
                    bytes: -100,
                    files: -5,
                },
            )
            .await;
        assert_eq!(shrunk, Ok(Usage::default()));
        store.forget("a").await.unwrap();
        assert_eq!(store.get("a").await, Ok(None));
    }
}
