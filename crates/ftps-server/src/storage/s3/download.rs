//! Downloads from the object store (RFC 959 RETR, RFC 3659 §5 REST STREAM):
//! a ranged read from the restart offset to the size the object had when it
//! was opened, pinned to its ETag (`If-Match`), so an object replaced during
//! the download fails the transfer instead of mixing two versions. OpenDAL
//! fetches the range in parts of `part_size_mib`, `concurrent_parts` at a
//! time, ahead of the network; memory per download is bounded by that.
//! A stream that ends before the announced size is an error, never a short
//! file reported as complete.

use bytes::Bytes;
use futures_util::StreamExt;
use opendal::{FuturesBytesStream, Operator};

use super::error::from_opendal;
use super::Tuning;
use crate::storage::{Download, FsError};

/// An object being read.
pub(super) struct S3Download {
    stream: Option<FuturesBytesStream>,
    /// Received but not yet handed out.
    pending: Bytes,
    /// Bytes from the read position to the end.
    remaining: u64,
}

/// Open `key` (whose metadata is `md`) for reading from `offset`.
pub(super) async fn open(
    op: &Operator,
    key: String,
    md: &opendal::Metadata,
    offset: u64,
    tuning: Tuning,
) -> Result<S3Download, FsError> {
    let size = md.content_length();
    let remaining = size.saturating_sub(offset);
    if remaining == 0 {
        return Ok(S3Download {
            stream: None,
            pending: Bytes::new(),
            remaining: 0,
        });
    }
    let mut reader = op
        .reader_with(&key)
        .chunk(tuning.part_bytes)
        .concurrent(tuning.concurrent);
    if let Some(etag) = md.etag() {
        reader = reader.if_match(etag);
    }
    let reader = reader.await.map_err(from_opendal)?;
    let stream = reader
        .into_bytes_stream(offset..size)
        .await
        .map_err(from_opendal)?;
    Ok(S3Download {
        stream: Some(stream),
        pending: Bytes::new(),
        remaining,
    })
}

#[async_trait::async_trait]
impl Download for S3Download {
    fn remaining(&self) -> Option<u64> {
        Some(self.remaining)
    }

    async fn read_chunk(&mut self, mut buf: Vec<u8>, max: usize) -> Result<Vec<u8>, FsError> {
        buf.clear();
        if self.remaining == 0 || max == 0 {
            return Ok(buf);
        }
        while self.pending.is_empty() {
            let Some(stream) = self.stream.as_mut() else {
                return Ok(buf);
            };
            match stream.next().await {
                Some(Ok(bytes)) => self.pending = bytes,
                Some(Err(e)) => return Err(FsError::Other(format!("object store: {e}"))),
                None => {
                    return Err(FsError::Other(format!(
                        "object ended {} bytes early",
                        self.remaining
                    )))
                }
            }
        }
        let limit = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        let n = self.pending.len().min(max).min(limit);
        buf.extend_from_slice(&self.pending.split_to(n));
        self.remaining -= n as u64;
        if self.remaining == 0 {
            self.stream = None;
        }
        Ok(buf)
    }
}
