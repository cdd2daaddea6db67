//! [`RulesStorage`]: a [`Storage`] decorator that holds every operation of a
//! user to the user's per-directory rules ([`DirRules`]) and refuses the
//! others with [`FsError::PermissionDenied`] (550), logging which rule
//! refused. Uploads onto an existing file need `overwrite` besides
//! `upload`; a rename needs `rename` at the old and at the new path, and
//! `overwrite` at the new one when it replaces a file.

use std::sync::Arc;

use ftps_proto::entry::{Entry, EntryKind};
use ftps_proto::path::VirtualPath;
use prometheus_client::metrics::counter::Counter;

use super::directories::DirRules;
use crate::config::Permission;
use crate::storage::{Download, EntryStream, FsError, Storage, Upload, Usage, WriteMode};

/// A user's storage held to the user's per-directory rules.
#[derive(Debug)]
pub struct RulesStorage {
    inner: Arc<dyn Storage>,
    rules: Arc<DirRules>,
    user: String,
    refusals: Counter,
}

impl RulesStorage {
    /// `inner` held to `rules` of `user`; `refusals` counts what is refused.
    pub fn new(
        inner: Arc<dyn Storage>,
        rules: Arc<DirRules>,
        user: String,
        refusals: Counter,
    ) -> RulesStorage {
        RulesStorage {
            inner,
            rules,
            user,
            refusals,
        }
    }

    fn check(&self, path: &VirtualPath, permission: Permission) -> Result<(), FsError> {
        self.rules.check(path, permission).map_err(|rule| {
            tracing::warn!(
                user = %self.user,
                path = %path.to_string_lossy(),
                permission = permission.name(),
                %rule,
                "refused by an access rule"
            );
            self.refusals.inc();
            FsError::PermissionDenied
        })
    }

    async fn is_file(&self, path: &VirtualPath) -> bool {
        matches!(
            self.inner.metadata(path).await,
            Ok(Entry {
                kind: EntryKind::File,
                ..
            })
        )
    }
}

#[async_trait::async_trait]
impl Storage for RulesStorage {
    async fn metadata(&self, path: &VirtualPath) -> Result<Entry, FsError> {
        self.inner.metadata(path).await
    }

    async fn list(&self, dir: &VirtualPath) -> Result<EntryStream, FsError> {
        self.check(dir, Permission::List)?;
        self.inner.list(dir).await
    }

    async fn read(&self, path: &VirtualPath, offset: u64) -> Result<Box<dyn Download>, FsError> {
        self.check(path, Permission::Download)?;
        self.inner.read(path, offset).await
    }

    async fn write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>, FsError> {
        self.check(path, Permission::Upload)?;
        if mode != WriteMode::CreateNew && self.is_file(path).await {
            self.check(path, Permission::Overwrite)?;
        }
        self.inner.write(path, mode).await
    }

    async fn create_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        self.check(path, Permission::Mkdir)?;
        self.inner.create_dir(path).await
    }

    async fn remove_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        self.check(path, Permission::Delete)?;
        self.inner.remove_dir(path).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> Result<(), FsError> {
        self.check(path, Permission::Delete)?;
        self.inner.remove_file(path).await
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), FsError> {
        self.check(from, Permission::Rename)?;
        self.check(to, Permission::Rename)?;
        if from != to && self.is_file(to).await {
            self.check(to, Permission::Overwrite)?;
        }
        self.inner.rename(from, to).await
    }

    /// MFMT changes an existing file: `overwrite`.
    async fn set_modified(&self, path: &VirtualPath, unix_secs: i64) -> Result<(), FsError> {
        self.check(path, Permission::Overwrite)?;
        self.inner.set_modified(path, unix_secs).await
    }

    async fn usage(&self) -> Result<Usage, FsError> {
        self.inner.usage().await
    }
}
