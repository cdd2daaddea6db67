//! File-system probes: leftover upload temp files ([`upload_temp_files`],
//! [`wait_no_temp_files`], and on either back-end [`wait_no_leftovers`]), directory snapshots to compare
//! ([`snapshot`], [`file_hash`]), names with given bytes
//! ([`names_containing`], [`contains`], [`bytes_path`]).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::wait_until;

/// Upload temp files (`.ftps-upload.*`) anywhere below `root` (symbolic
/// links are not followed).
pub fn upload_temp_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry
                .file_name()
                .as_encoded_bytes()
                .starts_with(b".ftps-upload.")
            {
                out.push(path.clone());
            }
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(path);
            }
        }
    }
    out
}

/// Wait (bounded) until no upload temp file is left below `root`; returns
/// the ones still there.
pub async fn wait_no_temp_files(root: &Path, limit: Duration) -> Vec<PathBuf> {
    wait_until(limit, || upload_temp_files(root).is_empty()).await;
    upload_temp_files(root)
}

/// Wait (bounded) until the test account's store holds nothing an upload
/// left behind (temp files on the local disk, multipart uploads in progress
/// on S3, see [`crate::Store::leftovers`]); returns what is still there.
pub async fn wait_no_leftovers(store: &crate::Store, limit: Duration) -> Vec<String> {
    wait_until(limit, || store.leftovers().is_empty()).await;
    store.leftovers()
}

/// A description of everything below `dir` (not following symbolic links):
/// relative path → kind, size and content hash, or link target.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let desc = if md.file_type().is_symlink() {
                format!("link -> {:?}", std::fs::read_link(&path).ok())
            } else if md.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else {
                format!("file {} bytes, hash {:x}", md.len(), file_hash(&path))
            };
            out.insert(rel, desc);
        }
    }
    out
}

/// A hash of a file's content (0 when unreadable).
pub fn file_hash(path: &Path) -> u64 {
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Entries of `dir` whose names contain `needle` (no recursion).
pub fn names_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .as_encoded_bytes()
                        .windows(needle.len())
                        .any(|w| w == needle)
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A path from raw bytes (non-UTF-8 names).
pub fn bytes_path(dir: &Path, name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    dir.join(std::ffi::OsStr::from_bytes(name))
}
