//! Listings of a prefix (RFC 959 LIST and NLST, RFC 3659 MLSD): one level,
//! with the `/` delimiter, so objects are files and common prefixes are
//! directories. A task pages through the listing (1,000 keys a page with
//! S3) and feeds the bounded channel of every listing, so a directory of any
//! size streams with the memory of one page: when the client reads slowly,
//! the next page is not fetched.

use ftps_proto::entry::Entry;
use futures_util::TryStreamExt;
use opendal::Operator;

use super::error::from_opendal;
use super::keys::child_name;
use super::{dir_entry, file_entry};
use crate::storage::{is_reserved_name, EntryStream, FsError, LIST_CHANNEL_CAPACITY};

/// Start listing the directory whose key prefix is `dir` (`""`: a whole
/// bucket). The first page is fetched here, so a store that refuses or
/// cannot be reached fails the command before its 150 reply.
pub(super) async fn start(op: &Operator, dir: String) -> Result<EntryStream, FsError> {
    let mut lister = op.lister(&dir).await.map_err(from_opendal)?;
    let first = lister.try_next().await.map_err(from_opendal)?;
    let (tx, rx) = tokio::sync::mpsc::channel(LIST_CHANNEL_CAPACITY);
    tokio::spawn(feed(first, lister, dir, tx));
    Ok(rx)
}

async fn feed(
    first: Option<opendal::Entry>,
    mut lister: opendal::Lister,
    dir: String,
    tx: tokio::sync::mpsc::Sender<Result<Entry, FsError>>,
) {
    let mut next = first;
    loop {
        let item = match next.take() {
            Some(item) => item,
            None => match lister.try_next().await {
                Ok(Some(item)) => item,
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(from_opendal(e))).await;
                    return;
                }
            },
        };
        // The directory's own marker, and keys no FTP name can stand for
        // (`a//b`), are not entries.
        let Some(name) = child_name(&dir, item.path()) else {
            continue;
        };
        if is_reserved_name(name.as_bytes()) {
            continue;
        }
        let md = item.metadata();
        let entry = if md.is_dir() {
            dir_entry(name.as_bytes().to_vec())
        } else {
            file_entry(name.as_bytes().to_vec(), md)
        };
        if tx.send(Ok(entry)).await.is_err() {
            return; // the receiver is gone: stop paging
        }
    }
}
