//! Bandwidth limits: a [`RateLimit`] (the `governor` crate's GCRA limiter)
//! per direction for the whole server and per user — a user's limit is one
//! limiter shared by all of the user's sessions — and [`ThrottledStorage`],
//! the [`Storage`] decorator that makes a user's uploads and downloads wait
//! for both.
//!
//! The waiting happens where the bytes meet storage: an upload's batch
//! waits before it is written (the data connection is not read meanwhile,
//! so TCP slows the client down), a download's chunk waits after it is
//! read. Zero-copy sending is not offered while a limit applies.

use std::num::NonZeroU32;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use ftps_proto::entry::Entry;
use ftps_proto::path::VirtualPath;

use crate::storage::{Download, EntryStream, FsError, Storage, Upload, Usage, WriteMode};

/// The limiter counts in units of this many bytes (its clock resolves
/// nanoseconds: whole bytes would make a fast rate inexact).
const UNIT_BYTES: u64 = 256;

/// A rate in bytes per second, shared by everyone who holds it.
#[derive(Debug)]
pub struct RateLimit {
    limiter: DefaultDirectRateLimiter,
    burst_units: u32,
    bytes_per_sec: u64,
}

impl RateLimit {
    /// A limit of `bytes_per_sec` (`None` for 0: no limit). A quarter of a
    /// second's worth may pass at once.
    pub fn new(bytes_per_sec: u64) -> Option<Arc<RateLimit>> {
        let units = u32::try_from(bytes_per_sec.div_ceil(UNIT_BYTES)).unwrap_or(u32::MAX);
        let rate = NonZeroU32::new(units)?;
        let burst = NonZeroU32::new(units / 4).unwrap_or(NonZeroU32::MIN);
        Some(Arc::new(RateLimit {
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            burst_units: burst.get(),
            bytes_per_sec,
        }))
    }

    /// The rate.
    pub fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec
    }

    /// The pieces (in units) `bytes` are taken in: none larger than the burst.
    fn pieces(&self, bytes: usize) -> impl Iterator<Item = NonZeroU32> + '_ {
        let mut units = (bytes as u64).div_ceil(UNIT_BYTES);
        std::iter::from_fn(move || {
            let piece = units.min(u64::from(self.burst_units));
            units -= piece;
            u32::try_from(piece).ok().and_then(NonZeroU32::new)
        })
    }

    /// How long to wait before `piece` may pass; zero once it has.
    fn try_take(&self, piece: NonZeroU32) -> Duration {
        match self.limiter.check_n(piece) {
            Ok(Ok(())) => Duration::ZERO,
            Ok(Err(not_until)) => not_until
                .wait_time_from(self.limiter.clock().now())
                .max(Duration::from_micros(50)),
            // Cannot happen: pieces never exceed the burst.
            Err(_) => Duration::ZERO,
        }
    }

    /// Wait until `bytes` may pass.
    pub async fn take(&self, bytes: usize) {
        for piece in self.pieces(bytes) {
            loop {
                match self.try_take(piece) {
                    Duration::ZERO => break,
                    wait => tokio::time::sleep(wait).await,
                }
            }
        }
    }

    /// Wait until `bytes` may pass, blocking this thread (for transfers on
    /// a thread of their own).
    pub fn take_blocking(&self, bytes: usize) {
        for piece in self.pieces(bytes) {
            loop {
                match self.try_take(piece) {
                    Duration::ZERO => break,
                    wait => std::thread::sleep(wait),
                }
            }
        }
    }
}

/// The limits that apply to one user's transfers (the user's and the
/// server's), by direction.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    /// Uploads wait for each of these.
    pub upload: Vec<Arc<RateLimit>>,
    /// Downloads wait for each of these.
    pub download: Vec<Arc<RateLimit>>,
}

impl Throttle {
    /// Whether no limit applies.
    pub fn is_empty(&self) -> bool {
        self.upload.is_empty() && self.download.is_empty()
    }
}

async fn take_all(limits: &[Arc<RateLimit>], bytes: usize) {
    for limit in limits {
        limit.take(bytes).await;
    }
}

fn take_all_blocking(limits: &[Arc<RateLimit>], bytes: usize) {
    for limit in limits {
        limit.take_blocking(bytes);
    }
}

/// A user's storage whose transfers keep to the user's and the server's rates.
#[derive(Debug)]
pub struct ThrottledStorage {
    inner: Arc<dyn Storage>,
    throttle: Throttle,
}

impl ThrottledStorage {
    /// `inner` with `throttle`.
    pub fn new(inner: Arc<dyn Storage>, throttle: Throttle) -> ThrottledStorage {
        ThrottledStorage { inner, throttle }
    }
}

#[async_trait::async_trait]
impl Storage for ThrottledStorage {
    async fn metadata(&self, path: &VirtualPath) -> Result<Entry, FsError> {
        self.inner.metadata(path).await
    }

    async fn list(&self, dir: &VirtualPath) -> Result<EntryStream, FsError> {
        self.inner.list(dir).await
    }

    async fn read(&self, path: &VirtualPath, offset: u64) -> Result<Box<dyn Download>, FsError> {
        let inner = self.inner.read(path, offset).await?;
        if self.throttle.download.is_empty() {
            return Ok(inner);
        }
        Ok(Box::new(ThrottledDownload {
            inner,
            limits: self.throttle.download.clone(),
        }))
    }

    async fn write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>, FsError> {
        let inner = self.inner.write(path, mode).await?;
        if self.throttle.upload.is_empty() {
            return Ok(inner);
        }
        Ok(Box::new(ThrottledUpload {
            inner,
            limits: self.throttle.upload.clone(),
        }))
    }

    async fn create_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        self.inner.create_dir(path).await
    }

    async fn remove_dir(&self, path: &VirtualPath) -> Result<(), FsError> {
        self.inner.remove_dir(path).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> Result<(), FsError> {
        self.inner.remove_file(path).await
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), FsError> {
        self.inner.rename(from, to).await
    }

    async fn set_modified(&self, path: &VirtualPath, unix_secs: i64) -> Result<(), FsError> {
        self.inner.set_modified(path, unix_secs).await
    }

    async fn usage(&self) -> Result<Usage, FsError> {
        self.inner.usage().await
    }
}

struct ThrottledDownload {
    inner: Box<dyn Download>,
    limits: Vec<Arc<RateLimit>>,
}

#[async_trait::async_trait]
impl Download for ThrottledDownload {
    fn remaining(&self) -> Option<u64> {
        self.inner.remaining()
    }

    async fn read_chunk(&mut self, buf: Vec<u8>, max: usize) -> Result<Vec<u8>, FsError> {
        let chunk = self.inner.read_chunk(buf, max).await?;
        take_all(&self.limits, chunk.len()).await;
        Ok(chunk)
    }

    fn reads_blocking(&self) -> bool {
        self.inner.reads_blocking()
    }

    fn read_blocking(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read_blocking(buf)?;
        take_all_blocking(&self.limits, n);
        Ok(n)
    }

    /// Not offered: every byte must pass the limiter.
    fn copy_to_socket(
        &mut self,
        _socket: BorrowedFd<'_>,
        _max: usize,
    ) -> Option<std::io::Result<usize>> {
        None
    }
}

struct ThrottledUpload {
    inner: Box<dyn Upload>,
    limits: Vec<Arc<RateLimit>>,
}

#[async_trait::async_trait]
impl Upload for ThrottledUpload {
    async fn write(&mut self, data: &[u8]) -> Result<(), FsError> {
        take_all(&self.limits, data.len()).await;
        self.inner.write(data).await
    }

    async fn begin_blocking(&mut self) -> Result<bool, FsError> {
        self.inner.begin_blocking().await
    }

    fn write_blocking(&mut self, data: &[u8]) -> Result<(), FsError> {
        take_all_blocking(&self.limits, data.len());
        self.inner.write_blocking(data)
    }

    async fn commit(self: Box<Self>) -> Result<u64, FsError> {
        self.inner.commit().await
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_of_zero_is_none_and_a_rate_is_kept_on_a_thread() {
        assert!(RateLimit::new(0).is_none());
        let limit = RateLimit::new(1024 * 1024).unwrap();
        let started = std::time::Instant::now();
        // A quarter second of burst, then 1 MiB/s: 1.25 MiB take ~1 s.
        for _ in 0..5 {
            limit.take_blocking(256 * 1024);
        }
        let took = started.elapsed().as_secs_f64();
        assert!((0.9..3.0).contains(&took), "{took}");
    }
}
