//! What a transfer opens before its 150 reply (RFC 959 §4.2: a failure here
//! is answered with 450/550/553 before any 1xx): the file to send, the upload
//! to write (STOU picks a fresh name, RFC 1123 §4.1.2.9), or the listing.

use ftps_proto::command::TransferType;
use ftps_proto::entry::EntryKind;
use ftps_proto::session::{ListFormat, StoreMode, TransferKind, TransferRequest, TransferStarted};

use super::listing::Listing;
use crate::storage::{Download, FsError, Storage, Upload, WriteMode};

/// How many times STOU tries a fresh name.
const STOU_ATTEMPTS: usize = 16;

/// What was opened before the 150 reply.
pub(super) enum Source {
    Download(Box<dyn Download>),
    Upload(Box<dyn Upload>),
    Listing(Listing),
}

impl Source {
    /// The transfer ends before its data moved: an upload is aborted (it
    /// leaves no file behind).
    pub(super) async fn abandon(self) {
        if let Source::Upload(upload) = self {
            upload.abort().await;
        }
    }
}

/// Open what `request` needs; the facts for the 150 reply with it.
pub(super) async fn open(
    storage: &dyn Storage,
    request: &TransferRequest,
) -> Result<(Source, TransferStarted), FsError> {
    match &request.kind {
        TransferKind::Retrieve { path, offset } => {
            // The open checks that it is a regular file and tells its size:
            // one trip to storage.
            let download = storage.read(path, *offset).await?;
            let image = request.transfer_type == TransferType::Image;
            let started = TransferStarted {
                unique_name: None,
                size: download.remaining().filter(|_| image),
            };
            Ok((Source::Download(download), started))
        }
        TransferKind::Store {
            path,
            mode: StoreMode::Unique,
        } => {
            for attempt in 0..STOU_ATTEMPTS {
                let name = format!("stou.{:08x}{}", rand::random::<u32>(), attempt);
                let target = path
                    .join(name.as_bytes())
                    .map_err(|_| FsError::InvalidName)?;
                match storage.write(&target, WriteMode::CreateNew).await {
                    Ok(upload) => {
                        let started = TransferStarted {
                            unique_name: Some(name.into_bytes()),
                            size: None,
                        };
                        return Ok((Source::Upload(upload), started));
                    }
                    Err(FsError::AlreadyExists) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(FsError::AlreadyExists)
        }
        TransferKind::Store { path, mode } => {
            let mode = match mode {
                StoreMode::Create | StoreMode::Unique => WriteMode::Create,
                StoreMode::Resume(n) => WriteMode::Resume(*n),
                StoreMode::Append => WriteMode::Append,
            };
            let upload = storage.write(path, mode).await?;
            Ok((Source::Upload(upload), TransferStarted::default()))
        }
        TransferKind::List { path, format } => {
            let meta = storage.metadata(path).await?;
            let listing = if meta.kind == EntryKind::Dir {
                Listing::Stream(storage.list(path).await?)
            } else if *format == ListFormat::Mlsd {
                return Err(FsError::NotADirectory);
            } else {
                Listing::Single(meta)
            };
            Ok((Source::Listing(listing), TransferStarted::default()))
        }
    }
}
