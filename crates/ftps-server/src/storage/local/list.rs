//! The producer side of [`LocalFs`](super::LocalFs) listings (RFC 959 LIST
//! and NLST, RFC 3659 MLSD): a blocking task that reads the directory and
//! feeds a bounded channel, so a directory of any size streams with bounded
//! memory. Upload temp files are skipped; symbolic links are described by
//! their target only while it stays inside the root.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use cap_std::fs::Dir;
use ftps_proto::entry::{Entry, EntryKind};

use super::{entry_from, is_not_found};
use crate::storage::error::from_io;
use crate::storage::{is_reserved_name, FsError};

/// Runs on the blocking pool and feeds `tx` until the directory is exhausted
/// or the receiver is dropped.
pub(super) fn list_worker(
    root: &Dir,
    rel: &Path,
    read_dir: cap_std::fs::ReadDir,
    tx: &tokio::sync::mpsc::Sender<Result<Entry, FsError>>,
) {
    for item in read_dir {
        let dirent = match item {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.blocking_send(Err(from_io(e)));
                return;
            }
        };
        let name = dirent.file_name();
        let name = name.as_bytes();
        if is_reserved_name(name) {
            continue;
        }
        let entry = match dirent.metadata() {
            // `DirEntry::metadata` does not follow symlinks.
            Ok(lmd) if lmd.is_symlink() => match root.metadata(rel.join(OsStr::from_bytes(name))) {
                Ok(md) => entry_from(name.to_vec(), &md),
                // Dangling, looping or leading outside the root: describe the
                // link itself and never follow it.
                Err(_) => entry_from(name.to_vec(), &lmd),
            },
            Ok(lmd) => entry_from(name.to_vec(), &lmd),
            Err(e) if is_not_found(&e) => continue, // removed meanwhile
            Err(e) => {
                // Cannot stat (e.g. no search permission): still list the name.
                tracing::debug!(error = %e, "cannot stat directory entry");
                unstated_entry(name, &dirent)
            }
        };
        if tx.blocking_send(Ok(entry)).is_err() {
            return; // receiver dropped: stop listing
        }
    }
}

/// An entry whose metadata cannot be read: its name and, where the
/// directory tells it, its type.
fn unstated_entry(name: &[u8], dirent: &cap_std::fs::DirEntry) -> Entry {
    let kind = match dirent.file_type() {
        Ok(ft) if ft.is_dir() => EntryKind::Dir,
        Ok(ft) if ft.is_file() => EntryKind::File,
        Ok(ft) if ft.is_symlink() => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    Entry {
        name: name.to_vec(),
        kind,
        size: 0,
        modified: None,
        mode: None,
        owner: None,
        group: None,
        unique: None,
    }
}
