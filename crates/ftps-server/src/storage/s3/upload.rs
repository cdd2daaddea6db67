//! Uploads to the object store (RFC 959 STOR, STOU, APPE; RFC 3659 §5 REST
//! before STOR), under the no-partial-replace rule of the storage module:
//! nothing is visible under the target key until the upload is committed.
//!
//! * Every upload is an OpenDAL writer: a multipart upload once more than one
//!   part has arrived (a single `PutObject` for a smaller file), completed
//!   only by [`Upload::commit`]. An aborted, truncated or refused transfer
//!   aborts the multipart upload (`AbortMultipartUpload`): the old object, if
//!   any, is untouched, and no partial object is ever kept — unlike the local
//!   disk, which may keep a new file's partial content for resuming.
//! * `APPE` and `REST n` + `STOR` start the new object with a server-side
//!   copy of the existing one (its whole length, or its first `n` bytes):
//!   `UploadPartCopy` parts for every full part, the rest (less than one part)
//!   streamed through this process. The commit is conditional on the
//!   object's ETag (`If-Match`), so an object changed meanwhile is not
//!   replaced by a stale copy plus the new bytes.
//! * `STOU` commits with `If-None-Match: *`: an object that appeared
//!   meanwhile is never replaced.
//!
//! Memory per upload: the part being filled, the part OpenDAL holds back
//! (it creates the multipart upload only with a second part, so a file of
//! one part is a single `PutObject`) and the parts in flight: about
//! `part_size_mib × (concurrent_parts + 2)` (8 MiB × 6 = 48 MiB by default).
//! Each multipart upload carries this node's identity in its metadata and is
//! registered in [`NodeUploads`] while it runs, so the reclaimer of this node
//! never aborts it.

use std::collections::HashMap;
use std::sync::Arc;

use opendal::options::{ReadOptions, WriteOptions};
use opendal::{Operator, Writer};

use super::error::{from_opendal, is_condition};
use super::reclaim::{NodeUploads, Registration, NODE_METADATA_KEY};
use super::Tuning;
use crate::storage::{FsError, Upload, WriteMode};

/// The largest range one `copy_from` call accepts (S3's `UploadPartCopy`
/// limit).
const MAX_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Where an upload goes and what is there now.
pub(super) struct Target<'a> {
    pub(super) op: &'a Operator,
    pub(super) bucket: &'a str,
    pub(super) key: String,
    /// The object at `key`, if any.
    pub(super) existing: Option<opendal::Metadata>,
    pub(super) tuning: Tuning,
    pub(super) uploads: &'a Arc<NodeUploads>,
}

/// An upload in progress.
pub(super) struct S3Upload {
    writer: Option<Writer>,
    /// Bytes kept from the existing object (APPE, REST + STOR).
    kept: u64,
    written: u64,
    create_new: bool,
    _registration: Registration,
}

/// Check `mode` against the existing object and open the writer.
pub(super) async fn start(target: Target<'_>, mode: WriteMode) -> Result<S3Upload, FsError> {
    let existing_len = target
        .existing
        .as_ref()
        .map(opendal::Metadata::content_length);
    let etag = target
        .existing
        .as_ref()
        .and_then(|md| md.etag().map(str::to_owned));
    let kept = match (mode, existing_len) {
        (WriteMode::CreateNew, Some(_)) => return Err(FsError::AlreadyExists),
        (WriteMode::Resume(n), None) if n > 0 => return Err(FsError::OffsetBeyondEnd),
        (WriteMode::Resume(n), Some(len)) if n > len => return Err(FsError::OffsetBeyondEnd),
        (WriteMode::Resume(n), Some(_)) => n,
        (WriteMode::Append, Some(len)) => len,
        _ => 0,
    };
    let registration = target.uploads.register(target.bucket, &target.key);
    let mut options = WriteOptions {
        chunk: Some(target.tuning.part_bytes),
        concurrent: target.tuning.concurrent,
        user_metadata: Some(HashMap::from([(
            NODE_METADATA_KEY.to_owned(),
            target.uploads.node_id().to_owned(),
        )])),
        ..WriteOptions::default()
    };
    let create_new = mode == WriteMode::CreateNew;
    if create_new {
        options.if_not_exists = true;
    } else if kept > 0 {
        // Replace only the object the copied bytes came from.
        options.if_match = etag.clone();
    }
    let mut writer = target
        .op
        .writer_options(&target.key, options)
        .await
        .map_err(from_opendal)?;
    if kept > 0 {
        if let Err(e) = copy_prefix(&mut writer, &target.key, kept, etag).await {
            let _ = writer.abort().await;
            return Err(e);
        }
    }
    Ok(S3Upload {
        writer: Some(writer),
        kept,
        written: 0,
        create_new,
        _registration: registration,
    })
}

/// Copy the first `len` bytes of `key` into `writer`, server-side where the
/// store can, pinned to `etag`.
async fn copy_prefix(
    writer: &mut Writer,
    key: &str,
    len: u64,
    etag: Option<String>,
) -> Result<(), FsError> {
    let mut offset = 0;
    while offset < len {
        let size = (len - offset).min(MAX_COPY_BYTES);
        let options = ReadOptions {
            range: (offset..offset + size).into(),
            if_match: etag.clone(),
            ..ReadOptions::default()
        };
        writer
            .copy_from_options(key, options)
            .await
            .map_err(from_opendal)?;
        offset += size;
    }
    Ok(())
}

fn finished() -> FsError {
    FsError::Other("upload already finished".into())
}

#[async_trait::async_trait]
impl Upload for S3Upload {
    async fn write(&mut self, data: &[u8]) -> Result<(), FsError> {
        let writer = self.writer.as_mut().ok_or_else(finished)?;
        writer.write(data.to_vec()).await.map_err(from_opendal)?;
        self.written += data.len() as u64;
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, FsError> {
        let mut writer = self.writer.take().ok_or_else(finished)?;
        match writer.close().await {
            Ok(_) => Ok(self.kept + self.written),
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::debug!(error = %abort, "aborting a failed multipart upload");
                }
                Err(if self.create_new && is_condition(&e) {
                    FsError::AlreadyExists
                } else {
                    from_opendal(e)
                })
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> bool {
        if let Some(mut writer) = self.writer.take() {
            if let Err(e) = writer.abort().await {
                tracing::warn!(error = %e, "cannot abort a multipart upload; the reclaimer will");
            }
        }
        false
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }
}

impl Drop for S3Upload {
    /// Neither committed nor aborted (the session went away): abort in the
    /// background, so the store keeps no parts.
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(error = %e, "cannot abort a dropped multipart upload");
                }
            });
        }
    }
}
