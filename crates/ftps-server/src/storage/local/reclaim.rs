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

use super::upload::link_no_replace;
use crate::storage::{Reclaimed, UPLOAD_TEMP_PREFIX};

/// Suffix of upload temp file names.
pub(super) const TEMP_SUFFIX: &[u8] = b".tmp";

/// Most directories one pass looks into (a bound on a huge tree: the rest
/// waits for the next pass).
const MAX_DIRS_PER_PASS: usize = 100_000;

/// The name of a new upload temp file: random, whether it replaces a file
/// (`r`) or makes a new one (`n`), and the target's name when it fits.
pub(super) fn temp_name(random: u64, replaces: bool, target: &[u8]) -> Vec<u8> {
    let mut name = UPLOAD_TEMP_PREFIX.to_vec();
    name.extend_from_slice(format!("{random:016x}").as_bytes());
    name.push(b'.');
    name.push(if replaces { b'r' } else { b'n' });
    // 255 bytes per name on common file systems.
    if name.len() + 1 + target.len() + TEMP_SUFFIX.len() <= 255 {
        name.push(b'.');
        name.extend_from_slice(target);
    }
    name.extend_from_slice(TEMP_SUFFIX);
    name
}

/// The target's name of a temp file made for a *new* file, if its name says so.
fn new_file_target(temp: &[u8]) -> Option<&[u8]> {
    let rest = temp
        .strip_prefix(UPLOAD_TEMP_PREFIX)?
        .strip_suffix(TEMP_SUFFIX)?;
    let rest = rest.get(17..)?; // 16 hex digits and a dot
    let target = rest.strip_prefix(b"n.")?;
    (!target.is_empty() && target != b"." && target != b"..").then_some(target)
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_the_kind_and_the_target() {
        let name = temp_name(0xabc, false, b"report 2024.v1.pdf");
        assert_eq!(
            name,
            b".ftps-upload.0000000000000abc.n.report 2024.v1.pdf.tmp"
        );
        assert_eq!(new_file_target(&name), Some(&b"report 2024.v1.pdf"[..]));
        let replacing = temp_name(1, true, b"a");
        assert_eq!(new_file_target(&replacing), None);
        let long = temp_name(1, false, &[b'x'; 250]);
        assert_eq!(long, b".ftps-upload.0000000000000001.n.tmp");
        assert_eq!(new_file_target(&long), None);
        assert_eq!(new_file_target(b".ftps-upload.0123456789abcdef.tmp"), None);
    }
}
