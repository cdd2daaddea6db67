//! [`TimedStorage`]: a [`Storage`] decorator that times each storage
//! operation (opening a file for reading or writing, committing an upload,
//! listing, metadata, directory changes, deletes, renames) into the
//! `ftps_storage_operation_duration_seconds` histogram. The bytes of a
//! transfer are not timed piece by piece: their rate is the transfer's.

use std::sync::Arc;
use std::time::Instant;

use ftps_proto::entry::Entry;
use ftps_proto::path::VirtualPath;

use super::metrics::Metrics;
use crate::storage::{Download, EntryStream, FsError, Storage, Upload, Usage, WriteMode};

/// A storage whose operations are timed.
#[derive(Debug)]
pub struct TimedStorage {
    inner: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
}

impl TimedStorage {
    /// Time the operations of `inner`.
    pub fn new(inner: Arc<dyn Storage>, metrics: Arc<Metrics>) -> TimedStorage {
        TimedStorage { inner, metrics }
    }

    fn done(&self, operation: &'static str, started: Instant) {
        self.metrics
            .storage(operation, started.elapsed().as_secs_f64());
    }
}

#[async_trait::async_trait]
impl Storage for TimedStorage {
    async fn metadata(&self, path: &VirtualPath) -> Result<Entry, FsError> {
        let started = Instant::now();
        let result = self.inner.metadata(path).await;
        self.done("metadata", started);
        result
    }

    async fn list(&self, dir: &VirtualPath) -> Result<EntryStream, FsError> {
        let started = Instant::now();
        let result = self.inner.list(dir).await;
        self.done("list", started);
        result
    }

    async fn read(&self, path: &VirtualPath, offset: u64) -> Result<Box<dyn Download>, FsError> {
        let started = Instant::now();
        let result = self.inner.read(path, offset).await;
        self.done("open_read", started);
        result
    }

    async fn write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>, FsError> {
        let started = Instant::now();
        let result = self.inner.write(path, mode).await;
        self.done("open_write", started);
        let inner = result?;
        Ok(Box::new(TimedUpload {
            inner,
            metrics: Arc::clone(&self.metrics),
        }))
    }

    async fn create_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        let started = Instant::now();
        let result = self.inner.create_dir(path).await;
        self.done("create_dir", started);
        result
    }

    async fn remove_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        let started = Instant::now();
        let result = self.inner.remove_dir(path).await;
        self.done("remove_dir", started);
        result
    }

    async fn remove_file(&self, path: &VirtualPath) -> Result<(), FsError> {
        let started = Instant::now();
        let result = self.inner.remove_file(path).await;
        self.done("remove_file", started);
        result
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), FsError> {
        let started = Instant::now();
        let result = self.inner.rename(from, to).await;
        self.done("rename", started);
        result
    }

    async fn set_modified(&self, path: &VirtualPath, unix_secs: i64) -> Result<(), FsError> {
        let started = Instant::now();
        let result = self.inner.set_modified(path, unix_secs).await;
        self.done("set_modified", started);
        result
    }

    async fn usage(&self) -> Result<Usage, FsError> {
        let started = Instant::now();
        let result = self.inner.usage().await;
        self.done("measure_usage", started);
        result
    }
}

/// An upload whose commit is timed.
struct TimedUpload {
    inner: Box<dyn Upload>,
    metrics: Arc<Metrics>,
}

#[async_trait::async_trait]
impl Upload for TimedUpload {
    async fn write(&mut self, data: &[u8]) -> Result<(), FsError> {
        self.inner.write(data).await
    }

    async fn begin_blocking(&mut self) -> Result<bool, FsError> {
        self.inner.begin_blocking().await
    }

    fn write_blocking(&mut self, data: &[u8]) -> Result<(), FsError> {
        self.inner.write_blocking(data)
    }

    async fn commit(self: Box<Self>) -> Result<u64, FsError> {
        let started = Instant::now();
        let metrics = Arc::clone(&self.metrics);
        let result = self.inner.commit().await;
        metrics.storage("commit", started.elapsed().as_secs_f64());
        result
    }

    async fn abort(self: Box<Self>) -> bool {
        self.inner.abort().await
    }

    async fn discard(self: Box<Self>) -> bool {
        self.inner.discard().await
    }

    fn bytes_written(&self) -> u64 {
        self.inner.bytes_written()
    }
}
