//! What this server knows of each quota'd user's usage: the last usage the
//! store reported and what the user's running uploads have reserved, shared
//! by all of the user's sessions on this server ([`Quotas`], [`UserUsage`]).
//!
//! An upload reserves its growth as its bytes arrive, so two uploads of the
//! same user running side by side on this server cannot together cross the
//! quota. Reservations are per server (in memory): an upload on another
//! server sharing the store is seen once it commits. So a commit *claims*
//! its growth in the [`UsageStore`] before the upload becomes visible — one
//! atomic "add unless it crosses the quota" — and an upload whose claim
//! fails is discarded: two servers racing for the last room never both
//! commit past the quota.
//!
//! The store's record is the truth; this server measures the user's tree
//! only when the store has no record (the first change after a start with
//! the memory store; with a shared database, the first change ever, or the
//! first after the record was deleted to have it measured again).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::store::{Added, QuotaLimits, Usage, UsageDelta, UsageStore};
use crate::storage::{FsError, Storage};

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
                    recorded: AtomicBool::new(false),
                    measuring: tokio::sync::Mutex::new(()),
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
    /// Whether the store is known to hold a usage for the user.
    recorded: AtomicBool,
    /// Held while this server looks for or measures the user's usage, so
    /// its sessions measure once.
    measuring: tokio::sync::Mutex<()>,
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
    /// `storage` when it holds none. Every change waits for this, so none is
    /// counted twice (once in the measurement and once as a change).
    pub async fn ensure(&self, storage: &dyn Storage) -> Result<(), FsError> {
        if self.recorded.load(Ordering::Acquire) {
            return Ok(());
        }
        let _measuring = self.measuring.lock().await;
        if self.recorded.load(Ordering::Acquire) {
            return Ok(());
        }
        let usage = match self.store.get(&self.user).await.map_err(store_failed)? {
            Some(usage) => usage,
            None => {
                let measured = storage.usage().await?;
                let usage = self
                    .store
                    .initialize(&self.user, measured)
                    .await
                    .map_err(store_failed)?;
                tracing::info!(
                    user = %self.user,
                    measured_bytes = measured.bytes,
                    measured_files = measured.files,
                    recorded_bytes = usage.bytes,
                    recorded_files = usage.files,
                    "quota usage measured"
                );
                usage
            }
        };
        self.with(|state| state.committed = usage);
        self.recorded.store(true, Ordering::Release);
        Ok(())
    }

    /// The store has no record any more (deleted to be measured again).
    fn unrecorded(&self) {
        self.recorded.store(false, Ordering::Release);
    }

    /// [`UserUsage::ensure`], then read the store again (another server may
    /// have changed it, or the record was deleted to be measured again).
    pub async fn refresh(&self, storage: &dyn Storage) -> Result<Usage, FsError> {
        self.ensure(storage).await?;
        match self.store.get(&self.user).await.map_err(store_failed)? {
            Some(usage) => self.with(|state| state.committed = usage),
            None => {
                self.unrecorded();
                self.ensure(storage).await?;
            }
        }
        Ok(self.with(|state| state.committed))
    }

    /// Claim `delta` in the store before the change it stands for becomes
    /// visible: true when recorded, false when it would cross `limits`
    /// (nothing recorded). Without a record, the tree (which does not show
    /// the change yet) is measured first.
    pub async fn claim(
        &self,
        storage: &dyn Storage,
        delta: UsageDelta,
        limits: &QuotaLimits,
    ) -> Result<bool, FsError> {
        for _ in 0..2 {
            self.ensure(storage).await?;
            let added = self
                .store
                .add(&self.user, delta, *limits)
                .await
                .map_err(store_failed)?;
            match added {
                Added::Done(usage) => {
                    self.with(|state| state.committed = usage);
                    return Ok(true);
                }
                Added::OverQuota(usage) => {
                    self.with(|state| state.committed = usage);
                    return Ok(false);
                }
                Added::NotRecorded => self.unrecorded(),
            }
        }
        Err(store_failed(super::store::UsageError(format!(
            "the usage record of {} disappears as soon as it is made",
            self.user
        ))))
    }

    /// Record `delta` for a change already made (a delete, a replacing
    /// rename, a size that differs from the claim). Without a record, the
    /// tree is measured instead: it shows the change already.
    pub async fn record(&self, storage: &dyn Storage, delta: UsageDelta) -> Result<(), FsError> {
        if delta == UsageDelta::default() {
            return Ok(());
        }
        self.ensure(storage).await?;
        let added = self
            .store
            .add(&self.user, delta, QuotaLimits::default())
            .await
            .map_err(store_failed)?;
        match added {
            Added::Done(usage) | Added::OverQuota(usage) => {
                self.with(|state| state.committed = usage);
            }
            Added::NotRecorded => {
                self.unrecorded();
                self.ensure(storage).await?;
            }
        }
        Ok(())
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

    /// The usage as last known, with what running uploads reserved.
    pub fn snapshot(&self) -> (Usage, u64, u64) {
        self.with(|state| (state.committed, state.reserved_bytes, state.reserved_files))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::quota::MemoryUsageStore;
    use crate::storage::LocalFs;

    fn setup(files: &[(&str, usize)]) -> (tempfile::TempDir, LocalFs, Arc<dyn UsageStore>) {
        let root = tempfile::tempdir().unwrap();
        for (name, len) in files {
            std::fs::write(root.path().join(name), vec![0u8; *len]).unwrap();
        }
        let fs = LocalFs::open(root.path()).unwrap();
        (root, fs, Arc::new(MemoryUsageStore::new()))
    }

    const LIMITS: QuotaLimits = QuotaLimits {
        bytes: Some(100),
        files: None,
    };

    fn grow(bytes: i64) -> UsageDelta {
        UsageDelta { bytes, files: 1 }
    }

    #[tokio::test]
    async fn a_claim_measures_the_tree_first_and_is_refused_past_the_quota() {
        let (_root, fs, store) = setup(&[("a", 60)]);
        let usage = Quotas::new(Arc::clone(&store)).user("u");
        assert!(usage.claim(&fs, grow(30), &LIMITS).await.unwrap());
        let recorded = store.get("u").await.unwrap().unwrap();
        assert_eq!((recorded.bytes, recorded.files), (90, 2));
        // Past the quota: refused, nothing recorded.
        assert!(!usage.claim(&fs, grow(11), &LIMITS).await.unwrap());
        assert_eq!(store.get("u").await.unwrap(), Some(recorded));
    }

    #[tokio::test]
    async fn a_deleted_record_is_measured_again_at_the_next_change() {
        let (root, fs, store) = setup(&[("a", 60)]);
        let usage = Quotas::new(Arc::clone(&store)).user("u");
        usage.ensure(&fs).await.unwrap();
        // Changed outside FTP, then the record deleted to measure again.
        std::fs::write(root.path().join("b"), [0u8; 30]).unwrap();
        store.forget("u").await.unwrap();
        // A change already made is in the measurement: not added again.
        usage.record(&fs, grow(30)).await.unwrap();
        let measured = store.get("u").await.unwrap().unwrap();
        assert_eq!((measured.bytes, measured.files), (90, 2));
        // An upload not yet visible: measured without it, then claimed.
        store.forget("u").await.unwrap();
        assert!(usage.claim(&fs, grow(10), &LIMITS).await.unwrap());
        let claimed = store.get("u").await.unwrap().unwrap();
        assert_eq!((claimed.bytes, claimed.files), (100, 3));
        // And an upload that begins reads the record again.
        store.forget("u").await.unwrap();
        assert_eq!(usage.refresh(&fs).await.unwrap().bytes, 90);
    }
}
