//! Upload temp files of the local back-end: their names, which say what
//! they were for (`.ftps-upload.<random>.<n|r>.<target name>.tmp`: a new
//! file or a replacement, and its target), and moving one to its target
//! without ever replacing what is there. Made by [`super::upload`], and
//! read back by [`super::reclaim`] after a crash.

use std::path::Path;

use cap_std::fs::Dir;

use super::is_not_found;
use crate::storage::error::{from_io, IoResultExt};
use crate::storage::{FsError, UPLOAD_TEMP_PREFIX};

/// Suffix of upload temp file names.
const TEMP_SUFFIX: &[u8] = b".tmp";

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
pub(super) fn new_file_target(temp: &[u8]) -> Option<&[u8]> {
    let rest = temp
        .strip_prefix(UPLOAD_TEMP_PREFIX)?
        .strip_suffix(TEMP_SUFFIX)?;
    let rest = rest.get(17..)?; // 16 hex digits and a dot
    let target = rest.strip_prefix(b"n.")?;
    (!target.is_empty() && target != b"." && target != b"..").then_some(target)
}

/// Move `from` to `to` without ever replacing an existing `to`.
pub(super) fn link_no_replace(root: &Dir, from: &Path, to: &Path) -> Result<(), FsError> {
    match root.hard_link(from, root, to) {
        Ok(()) => {
            if let Err(e) = root.remove_file(from) {
                tracing::warn!(error = %e, temp = ?from, "cannot remove upload temp file");
            }
            Ok(())
        }
        Err(e) => match from_io(e) {
            FsError::AlreadyExists => Err(FsError::AlreadyExists),
            // Hard links unsupported here: check, then rename (racy, but the
            // best a plain POSIX interface offers).
            FsError::PermissionDenied | FsError::Unsupported | FsError::Other(_) => {
                match root.symlink_metadata(to) {
                    Ok(_) => Err(FsError::AlreadyExists),
                    Err(e) if is_not_found(&e) => root.rename(from, root, to).fs(),
                    Err(e) => Err(from_io(e)),
                }
            }
            other => Err(other),
        },
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
