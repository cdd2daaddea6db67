//! [`QuotaStorage`]: a [`Storage`] decorator that keeps a user's usage up to
//! date and refuses what would cross the user's quota with
//! [`FsError::NoSpace`] — RFC 959's 552, "exceeded storage allocation".
//!
//! A new file over the file quota is refused before any data connection. An
//! upload whose bytes would cross the byte quota is refused as the bytes
//! arrive: the batch that would cross is not written, the upload is
//! discarded ([`Upload::discard`]: not even a new file's partial content
//! stays), and the transfer ends with 552.
//!
//! Usage changes when an upload commits (its size afterwards minus the size
//! before), when a new file's partial content is kept after a failure, when
//! a file is deleted, and when a rename replaces a file. What an upload adds
//! is claimed in the usage store *before* it becomes visible
//! ([`UserUsage::claim`]): a claim the store refuses (another server
//! committed first) discards the upload with 552, and a store that cannot
//! answer discards it with 451 (RFC 959 §4.2, "local error in processing"),
//! so no upload is ever committed without being counted. A delete or rename
//! is done first and recorded after; if the store fails then, the change is
//! logged, not undone (the usage over-counts until it is measured again).

use std::sync::Arc;

use ftps_proto::entry::{Entry, EntryKind};
use ftps_proto::path::VirtualPath;
use prometheus_client::metrics::counter::Counter;

use super::store::{QuotaLimits, UsageDelta};
use super::usage::UserUsage;
use crate::storage::{Download, EntryStream, FsError, Storage, Upload, Usage, WriteMode};

/// A user's storage with the user's quota.
#[derive(Debug)]
pub struct QuotaStorage {
    inner: Arc<dyn Storage>,
    usage: Arc<UserUsage>,
    limits: QuotaLimits,
    refusals: Counter,
}

impl QuotaStorage {
    /// `inner` held to `limits`; `usage` is the user's, `refusals` counts
    /// what is refused.
    pub fn new(
        inner: Arc<dyn Storage>,
        usage: Arc<UserUsage>,
        limits: QuotaLimits,
        refusals: Counter,
    ) -> QuotaStorage {
        QuotaStorage {
            inner,
            usage,
            limits,
            refusals,
        }
    }

    fn refuse(&self, path: &VirtualPath, what: &str) -> FsError {
        let (usage, reserved_bytes, reserved_files) = self.usage.snapshot();
        tracing::warn!(
            user = %self.usage.user(),
            path = %path.to_string_lossy(),
            used_bytes = usage.bytes,
            used_files = usage.files,
            reserved_bytes,
            reserved_files,
            quota_bytes = ?self.limits.bytes,
            quota_files = ?self.limits.files,
            "{what} refused: it would cross the user's quota"
        );
        self.refusals.inc();
        FsError::NoSpace
    }

    /// The size of the regular file at `path`, if there is one.
    async fn file_size(&self, path: &VirtualPath) -> Option<u64> {
        match self.inner.metadata(path).await {
            Ok(Entry {
                kind: EntryKind::File,
                size,
                ..
            }) => Some(size),
            _ => None,
        }
    }
}

fn delta(bytes: i128, files: i64) -> UsageDelta {
    UsageDelta {
        bytes: i64::try_from(bytes).unwrap_or(if bytes < 0 { i64::MIN } else { i64::MAX }),
        files,
    }
}

fn negate(change: UsageDelta) -> UsageDelta {
    UsageDelta {
        bytes: change.bytes.saturating_neg(),
        files: change.files.saturating_neg(),
    }
}

/// Record a change already made; a store that fails is logged (the change
/// stays made: the usage is off until it is measured again).
async fn record(usage: &UserUsage, storage: &dyn Storage, change: UsageDelta) {
    if let Err(error) = usage.record(storage, change).await {
        tracing::error!(
            user = %usage.user(),
            bytes = change.bytes,
            files = change.files,
            %error,
            "a change is not in the quota usage: measure the user's usage again"
        );
    }
}

#[async_trait::async_trait]
impl Storage for QuotaStorage {
    async fn metadata(&self, path: &VirtualPath) -> Result<Entry, FsError> {
        self.inner.metadata(path).await
    }

    async fn list(&self, dir: &VirtualPath) -> Result<EntryStream, FsError> {
        self.inner.list(dir).await
    }

    async fn read(&self, path: &VirtualPath, offset: u64) -> Result<Box<dyn Download>, FsError> {
        self.inner.read(path, offset).await
    }

    async fn write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>, FsError> {
        self.usage.refresh(self.inner.as_ref()).await?;
        let existing = match mode {
            WriteMode::CreateNew => None,
            _ => self.file_size(path).await,
        };
        let old = existing.unwrap_or(0);
        let kept = match mode {
            WriteMode::Create | WriteMode::CreateNew => 0,
            WriteMode::Append => old,
            WriteMode::Resume(offset) => offset,
        };
        let new_file = existing.is_none();
        if new_file && !self.usage.reserve_file(&self.limits) {
            return Err(self.refuse(path, "new file"));
        }
        let inner = match self.inner.write(path, mode).await {
            Ok(inner) => inner,
            Err(error) => {
                self.usage.release(0, u64::from(new_file));
                return Err(error);
            }
        };
        Ok(Box::new(QuotaUpload {
            inner: Some(inner),
            storage: Arc::clone(&self.inner),
            usage: Arc::clone(&self.usage),
            limits: self.limits,
            refusals: self.refusals.clone(),
            path: path.clone(),
            growth: i128::from(kept) - i128::from(old),
            old,
            new_file,
            reserved: 0,
            refused: false,
        }))
    }

    async fn create_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        self.inner.create_dir(path).await
    }

    async fn remove_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        self.inner.remove_dir(path).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> Result<(), FsError> {
        self.usage.ensure(self.inner.as_ref()).await?;
        let size = self.file_size(path).await;
        self.inner.remove_file(path).await?;
        if let Some(size) = size {
            let change = delta(-i128::from(size), -1);
            record(&self.usage, self.inner.as_ref(), change).await;
        }
        Ok(())
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), FsError> {
        self.usage.ensure(self.inner.as_ref()).await?;
        let replaced = match from == to {
            true => None,
            false => self.file_size(to).await,
        };
        self.inner.rename(from, to).await?;
        if let Some(size) = replaced {
            let change = delta(-i128::from(size), -1);
            record(&self.usage, self.inner.as_ref(), change).await;
        }
        Ok(())
    }

    async fn set_modified(&self, path: &VirtualPath, unix_secs: i64) -> Result<(), FsError> {
        self.inner.set_modified(path, unix_secs).await
    }

    async fn usage(&self) -> Result<Usage, FsError> {
        self.inner.usage().await
    }
}

/// An upload held to the quota.
struct QuotaUpload {
    /// `None` once committed, aborted or discarded.
    inner: Option<Box<dyn Upload>>,
    /// The storage the upload writes to (measured if the store has no
    /// record when the upload claims its growth).
    storage: Arc<dyn Storage>,
    usage: Arc<UserUsage>,
    limits: QuotaLimits,
    refusals: Counter,
    path: VirtualPath,
    /// What the target grows by if committed now (bytes kept plus written,
    /// minus its old size).
    growth: i128,
    old: u64,
    new_file: bool,
    /// Bytes reserved (the largest positive growth so far).
    reserved: u64,
    /// A write was refused: the upload must leave nothing behind.
    refused: bool,
}

impl QuotaUpload {
    /// Reserve room for `n` more bytes, or refuse them.
    fn grow(&mut self, n: usize) -> Result<(), FsError> {
        let growth = self.growth + n as i128;
        let wanted = u64::try_from(growth.max(0)).unwrap_or(u64::MAX);
        let more = wanted.saturating_sub(self.reserved);
        if more > 0 && !self.usage.reserve_bytes(more, &self.limits) {
            self.refused = true;
            return Err(self.refuse("upload refused: it would cross the user's quota"));
        }
        self.reserved += more;
        self.growth = growth;
        Ok(())
    }

    fn refuse(&self, what: &str) -> FsError {
        let (usage, reserved_bytes, _) = self.usage.snapshot();
        tracing::warn!(
            user = %self.usage.user(),
            path = %self.path.to_string_lossy(),
            used_bytes = usage.bytes,
            used_files = usage.files,
            reserved_bytes,
            quota_bytes = ?self.limits.bytes,
            quota_files = ?self.limits.files,
            "{what}"
        );
        self.refusals.inc();
        FsError::NoSpace
    }

    /// Claim `change` in the store before the upload becomes visible (see
    /// the module doc); the local reservation is given back either way.
    async fn claim(&mut self, change: UsageDelta) -> Result<(), FsError> {
        let claimed = self
            .usage
            .claim(self.storage.as_ref(), change, &self.limits)
            .await;
        self.release();
        match claimed {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.refuse(
                "upload refused at its end: with what other servers committed meanwhile it would cross the user's quota",
            )),
            Err(error) => Err(error),
        }
    }

    fn release(&mut self) {
        self.usage.release(self.reserved, u64::from(self.new_file));
        self.reserved = 0;
        self.new_file = false;
    }

    fn inner(&mut self) -> Result<&mut Box<dyn Upload>, FsError> {
        self.inner
            .as_mut()
            .ok_or_else(|| FsError::Other("upload already finished".into()))
    }
}

#[async_trait::async_trait]
impl Upload for QuotaUpload {
    async fn write(&mut self, data: &[u8]) -> Result<(), FsError> {
        self.grow(data.len())?;
        self.inner()?.write(data).await
    }

    async fn begin_blocking(&mut self) -> Result<bool, FsError> {
        self.inner()?.begin_blocking().await
    }

    fn write_blocking(&mut self, data: &[u8]) -> Result<(), FsError> {
        self.grow(data.len())?;
        self.inner()?.write_blocking(data)
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, FsError> {
        let inner = self.inner.take().ok_or(FsError::Unsupported)?;
        let change = delta(self.growth, i64::from(self.new_file));
        if let Err(error) = self.claim(change).await {
            // Not counted: not committed either.
            inner.discard().await;
            return Err(error);
        }
        match inner.commit().await {
            Ok(size) => {
                // A back-end that ends with another size than claimed.
                let off = i128::from(size) - (i128::from(self.old) + self.growth);
                if off != 0 {
                    record(&self.usage, self.storage.as_ref(), delta(off, 0)).await;
                }
                Ok(size)
            }
            Err(error) => {
                record(&self.usage, self.storage.as_ref(), negate(change)).await;
                Err(error)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> bool {
        let Some(inner) = self.inner.take() else {
            return false;
        };
        let written = inner.bytes_written();
        if self.refused || !self.new_file || written == 0 {
            // Nothing new can stay (an existing file keeps its old content).
            let kept = match self.refused {
                true => inner.discard().await,
                false => inner.abort().await,
            };
            self.release();
            return kept;
        }
        // A new file's partial content may stay: claimed first, like a commit.
        let change = delta(i128::from(written), 1);
        if self.claim(change).await.is_err() {
            return inner.discard().await;
        }
        let kept = inner.abort().await;
        if !kept {
            record(&self.usage, self.storage.as_ref(), negate(change)).await;
        }
        kept
    }

    async fn discard(mut self: Box<Self>) -> bool {
        self.refused = true;
        self.abort().await
    }

    fn bytes_written(&self) -> u64 {
        self.inner.as_ref().map_or(0, |u| u.bytes_written())
    }
}

impl Drop for QuotaUpload {
    /// Dropped unfinished: the inner upload aborts itself; give the
    /// reservation back.
    fn drop(&mut self) {
        self.release();
    }
}
