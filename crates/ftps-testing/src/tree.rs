//! Directory trees read into memory and compared, for the mirror and
//! round-trip tests (a local tree sent to a server and fetched back, by
//! lftp, by `ftps mirror`, against our server or a third-party one):
//!
//! * [`read`]: every file and directory below a root, relative path →
//!   content (`None` for a directory);
//! * [`assert_same`]: the same names (files and directories, empty ones
//!   too) and, file by file, the same bytes; a failure names the first
//!   difference instead of dumping the bytes;
//! * [`assert_same_files`]: the same for regular files only (directories
//!   that hold no file are not compared).
//!
//! Symbolic links are followed: a link to a directory is read as a
//! directory, any other link as the file it points to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A directory tree: path relative to its root → the file's content, or
/// `None` for a directory.
pub type Tree = BTreeMap<PathBuf, Option<Vec<u8>>>;

/// Every file and directory below `root` (not `root` itself).
pub fn read(root: &Path) -> Tree {
    let mut out = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading directory {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("reading directory {}: {e}", dir.display()))
                .path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(rel, None);
                stack.push(path);
            } else {
                let content = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                out.insert(rel, Some(content));
            }
        }
    }
    out
}

/// The same files and directories below `actual` as below `expected`, with
/// the same bytes in each file. Panics naming the first difference.
#[track_caller]
pub fn assert_same(actual: &Path, expected: &Path) {
    compare(actual, read(actual), expected, read(expected), "names");
}

/// The same regular files below `actual` as below `expected` (directories
/// are not compared, except as parts of the files' paths), with the same
/// bytes. Panics naming the first difference.
#[track_caller]
pub fn assert_same_files(actual: &Path, expected: &Path) {
    let files = |tree: Tree| -> Tree { tree.into_iter().filter(|(_, c)| c.is_some()).collect() };
    compare(
        actual,
        files(read(actual)),
        expected,
        files(read(expected)),
        "files",
    );
}

#[track_caller]
fn compare(actual_root: &Path, actual: Tree, expected_root: &Path, expected: Tree, what: &str) {
    let actual_names: Vec<&PathBuf> = actual.keys().collect();
    let expected_names: Vec<&PathBuf> = expected.keys().collect();
    assert_eq!(
        actual_names,
        expected_names,
        "{} and {} hold different {what}",
        actual_root.display(),
        expected_root.display()
    );
    for (name, want) in &expected {
        match (want, &actual[name]) {
            (None, None) => {}
            (Some(want), Some(got)) => assert!(
                want == got,
                "{}: {} bytes below {}, expected {} bytes as below {} (or the same length, \
                 different bytes)",
                name.display(),
                got.len(),
                actual_root.display(),
                want.len(),
                expected_root.display()
            ),
            _ => panic!(
                "{}: a file on one side, a directory on the other ({} and {})",
                name.display(),
                actual_root.display(),
                expected_root.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(root: &Path) {
        std::fs::create_dir_all(root.join("a/empty")).unwrap();
        std::fs::write(root.join("top.txt"), b"top").unwrap();
        std::fs::write(root.join("a/one.bin"), b"one").unwrap();
    }

    #[test]
    fn trees_compare_names_and_bytes_and_name_the_difference() {
        let (x, y) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        sample(x.path());
        sample(y.path());
        let tree = read(x.path());
        assert_eq!(tree.len(), 4);
        assert_eq!(tree[Path::new("a/empty")], None);
        assert_eq!(tree[Path::new("a/one.bin")].as_deref(), Some(&b"one"[..]));
        assert_same(x.path(), y.path());

        // Same length, other bytes.
        std::fs::write(y.path().join("a/one.bin"), b"0ne").unwrap();
        let message = std::panic::catch_unwind(|| assert_same(x.path(), y.path()))
            .unwrap_err()
            .downcast::<String>()
            .unwrap();
        assert!(message.starts_with("a/one.bin: 3 bytes below"), "{message}");
        std::fs::write(y.path().join("a/one.bin"), b"one").unwrap();

        // An empty directory only on one side: a difference of names, not of files.
        std::fs::remove_dir(y.path().join("a/empty")).unwrap();
        assert!(std::panic::catch_unwind(|| assert_same(x.path(), y.path())).is_err());
        assert_same_files(x.path(), y.path());
        std::fs::write(y.path().join("extra"), b"").unwrap();
        assert!(std::panic::catch_unwind(|| assert_same_files(x.path(), y.path())).is_err());
    }
}
