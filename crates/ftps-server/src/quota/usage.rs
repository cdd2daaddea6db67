//! What this server knows of each quota'd user's usage: the last usage the
//! store reported and what the user's running uploads have reserved, shared
//! by all of the user's sessions on this server ([`Quotas`], [`UserUsage`]).
//!
//! An upload reserves its growth as its bytes arrive, so two uploads of the
//! same user running side by side cannot together cross the quota; a commit
//! turns the reservation into a change in the [`UsageStore`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::store::{Usage, UsageDelta, UsageStore};
use crate::storage::{FsError, Storage};

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
}

/// The quota state of a server: the usage store and each quota'd user's
/// [`UserUsage`].
#[derive(Debug)]
pub struct Quotas {
    store: Arc<dyn UsageStore>,
    users: Mutex<HashMap<String, Arc<UserUsage>>>,
}

impl Quotas {
    /// Quotas kept in `store`.
    pub fn new(store: Arc<dyn UsageStore>) -> Quotas {
        Quotas {
            store,
            users: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Arc<UserUsage>>) -> R) -> R {
        match self.users.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The usage of `user`, shared by all of the user's sessions.
    pub fn user(&self, user: &str) -> Arc<UserUsage> {
        self.with(|users| {
            Arc::clone(users.entry(user.to_owned()).or_insert_with(|| {
                Arc::new(UserUsage {
                    user: user.to_owned(),
                    store: Arc::clone(&self.store),
                    measured: OnceCell::new(),
                    state: Mutex::new(State::default()),
                })
            }))
        })
    }

    /// `user` has no quota any more: forget the usage (nothing would keep
    /// it up to date); a quota given again measures the tree anew.
    pub async fn forget(&self, user: &str) {
        let known = self.with(|users| users.remove(user)).is_some();
        if known {
            if let Err(error) = self.store.forget(user).await {
                tracing::warn!(%user, %error, "cannot forget the usage of a user without quota");
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// The usage the store last reported.
    committed: Usage,
    /// Growth reserved by running uploads.
    reserved_bytes: u64,
    /// New files reserved by running uploads.
    reserved_files: u64,
}

/// One user's usage as this server sees it.
#[derive(Debug)]
pub struct UserUsage {
    user: String,
    store: Arc<dyn UsageStore>,
    /// Set once the store holds a usage for the user (measured here if not).
    measured: OnceCell<()>,
    state: Mutex<State>,
}

fn store_failed(error: super::store::UsageError) -> FsError {
    tracing::error!(%error, "quota usage store failed");
    FsError::Other(error.to_string())
}

impl UserUsage {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        match self.state.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Make sure the store holds the user's usage, measuring the tree of
    /// `storage` the first time. Every change waits for this, so none is
    /// counted twice (once in the measurement and once as a change).
    pub async fn ensure(&self, storage: &dyn Storage) -> Result<(), FsError> {
        self.measured
            .get_or_try_init(|| async {
                let usage = match self.store.get(&self.user).await.map_err(store_failed)? {
                    Some(usage) => usage,
                    None => {
                        let measured = storage.usage().await?;
                        tracing::info!(user = %self.user, bytes = measured.bytes, files = measured.files, "quota usage measured");
                        self.store
                            .initialize(&self.user, measured)
                            .await
                            .map_err(store_failed)?
                    }
                };
                self.with(|state| state.committed = usage);
                Ok::<(), FsError>(())
            })
            .await
            .map(|_| ())
    }

    /// [`UserUsage::ensure`], then read the store again (another server may
    /// have changed it).
    pub async fn refresh(&self, storage: &dyn Storage) -> Result<Usage, FsError> {
        self.ensure(storage).await?;
        let usage = self
            .store
            .get(&self.user)
            .await
            .map_err(store_failed)?
            .unwrap_or_default();
        self.with(|state| state.committed = usage);
        Ok(usage)
    }

    /// Reserve room for one more file; false when it would cross `limits`.
    pub fn reserve_file(&self, limits: &QuotaLimits) -> bool {
        self.with(|state| {
            let total = state
                .committed
                .files
                .saturating_add(state.reserved_files)
                .saturating_add(1);
            if limits.files.is_some_and(|max| total > max) {
                return false;
            }
            state.reserved_files += 1;
            true
        })
    }

    /// Reserve `bytes` more; false when they would cross `limits`.
    pub fn reserve_bytes(&self, bytes: u64, limits: &QuotaLimits) -> bool {
        self.with(|state| {
            let total = state
                .committed
                .bytes
                .saturating_add(state.reserved_bytes)
                .saturating_add(bytes);
            if limits.bytes.is_some_and(|max| total > max) {
                return false;
            }
            state.reserved_bytes = state.reserved_bytes.saturating_add(bytes);
            true
        })
    }

    /// Give back what an upload reserved.
    pub fn release(&self, bytes: u64, files: u64) {
        self.with(|state| {
            state.reserved_bytes = state.reserved_bytes.saturating_sub(bytes);
            state.reserved_files = state.reserved_files.saturating_sub(files);
        });
    }

    /// Record a change in the store.
    pub async fn apply(&self, delta: UsageDelta) -> Result<Usage, FsError> {
        if delta == UsageDelta::default() {
            return Ok(self.with(|state| state.committed));
        }
        let usage = self
            .store
            .add(&self.user, delta)
            .await
            .map_err(store_failed)?;
        self.with(|state| state.committed = usage);
        Ok(usage)
    }

    /// The usage as last known, with what running uploads reserved.
    pub fn snapshot(&self) -> (Usage, u64, u64) {
        self.with(|state| (state.committed, state.reserved_bytes, state.reserved_files))
    }
}
