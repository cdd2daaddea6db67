//! Reclaiming upload temp files that a server left behind when it was
//! killed (SIGKILL, a crash, a power cut) in the middle of an upload.
//!
//! Safe when several servers share one storage root, by two rules that
//! must both hold before a temp file is touched:
//!
//! 1. **Nobody holds it.** Every upload keeps an exclusive `flock` on its
//!    temp file from creation until it is committed or aborted (see
//!    [`super::upload`]). The lock belongs to the open file, so it goes
//!    away with the process, however that ends; a temp file whose lock can
//!    be taken has no live upload in this or any other process that shares
//!    the lock manager (one machine; NFSv4 and other file systems that
//!    share locks between clients).
//! 2. **It has been left alone long enough.** Its modification time is
//!    older than `server.abandoned_upload_secs` (default 600), which must
//!    be longer than any server's `transfer_stall_timeout_secs`: a live
//!    upload writes at least that often, or it is cut. This also covers the
//!    instant between a temp file's creation and its lock, and storage whose
//!    locks are not shared between machines.
//!
//! A reclaimed temp file of a *replacement* is removed (the old file was
//! never touched). One of a *new* file that holds bytes becomes the
//! resumable partial under the target name, as an interrupted upload's
//! would, when that name is still free; otherwise it is removed. The temp
//! file's name says which it was and for which target:
//! `.ftps-upload.<random>.<n|r>.<target name>.tmp`.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cap_std::fs::Dir;

use super::temp::{link_no_replace, new_file_target};
use crate::storage::{Reclaimed, UPLOAD_TEMP_PREFIX};

/// Most directories one pass looks into (a bound on a huge tree: the rest
/// waits for the next pass).
const MAX_DIRS_PER_PASS: usize = 100_000;

/// One pass over the whole tree under `root`.
pub(super) fn reclaim(root: &Dir, unchanged_for: Duration) -> Reclaimed {
    let mut done = Reclaimed::default();
    let mut dirs = vec![PathBuf::new()];
    let mut visited = 0usize;
    while let Some(dir) = dirs.pop() {
        visited += 1;
        if visited > MAX_DIRS_PER_PASS {
            break;
        }
        let Ok(entries) = root.read_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &dir
        }) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let path = dir.join(&name);
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() && name.as_bytes().starts_with(UPLOAD_TEMP_PREFIX) {
                reclaim_one(root, &dir, &path, name.as_bytes(), unchanged_for, &mut done);
            }
        }
    }
    done
}

/// Reclaim one temp file if both rules of the module docs hold.
fn reclaim_one(
    root: &Dir,
    dir: &Path,
    path: &Path,
    name: &[u8],
    unchanged_for: Duration,
    done: &mut Reclaimed,
) {
    let Ok(file) = root.open(path).map(cap_std::fs::File::into_std) else {
        return;
    };
    match file.try_lock() {
        Ok(()) => {}
        // A live upload holds it (or the lock cannot be asked: leave it).
        Err(_) => return,
    }
    let Ok(meta) = file.metadata() else {
        return;
    };
    let idle = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    if idle < unchanged_for {
        return;
    }
    let kept = match new_file_target(name) {
        Some(target) if meta.len() > 0 && file.sync_all().is_ok() => {
            let target = dir.join(OsStr::from_bytes(target));
            link_no_replace(root, path, &target).is_ok()
        }
        _ => false,
    };
    if kept {
        tracing::info!(temp = ?path, bytes = meta.len(), "abandoned upload of a new file kept as its resumable partial");
        done.kept += 1;
        return;
    }
    match root.remove_file(path) {
        Ok(()) => {
            tracing::info!(temp = ?path, bytes = meta.len(), "abandoned upload temp file removed");
            done.removed += 1;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(temp = ?path, error = %e, "cannot remove an abandoned upload temp file")
        }
    }
}
