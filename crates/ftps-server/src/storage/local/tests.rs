//! Tests of the local back-end: confinement, names, listings, uploads and
//! their no-partial-replace rule, downloads.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::storage::UPLOAD_TEMP_PREFIX;
use std::os::unix::fs::{symlink, PermissionsExt};
use upload::sync_dir;

fn vp(s: &[u8]) -> VirtualPath {
    match VirtualPath::root().resolve(s) {
        Ok(p) => p,
        Err(_) => panic!("bad test path"),
    }
}

fn err<T>(r: Result<T, FsError>) -> FsError {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn setup() -> (tempfile::TempDir, LocalFs) {
    let dir = tempfile::tempdir().unwrap();
    let fs = LocalFs::open(dir.path()).unwrap();
    (dir, fs)
}

/// An upload's 226 (RFC 959 §4.2) is sent once the file and its name
/// are on disk, so the directory holding the renamed upload must really
/// be synced: an `O_PATH` descriptor, as `Dir::open_dir` returns, fails
/// with EBADF.
#[test]
fn upload_directories_can_be_synced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let root = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
    sync_dir(&root, Path::new(".")).unwrap();
    sync_dir(&root, Path::new("sub")).unwrap();
    assert!(sync_dir(&root, Path::new("missing")).is_err());
    // What the old code did, to show the test would catch it.
    let path_only = root.open_dir("sub").unwrap().into_std_file();
    assert!(path_only.sync_all().is_err());
}

async fn read_all(fs: &LocalFs, path: &[u8], offset: u64) -> Result<Vec<u8>, FsError> {
    let r = fs.read(&vp(path), offset).await?;
    read_to_end(r).await
}

/// Every remaining byte of a download, read chunk by chunk.
async fn read_to_end(mut r: Box<dyn Download>) -> Result<Vec<u8>, FsError> {
    let mut all = Vec::new();
    loop {
        let chunk = r.read_chunk(Vec::new(), 7).await?;
        if chunk.is_empty() {
            return Ok(all);
        }
        all.extend_from_slice(&chunk);
    }
}

async fn list_entries(fs: &LocalFs, path: &[u8]) -> Vec<Entry> {
    let mut rx = fs.list(&vp(path)).await.unwrap();
    let mut out = Vec::new();
    while let Some(e) = rx.recv().await {
        out.push(e.unwrap());
    }
    out
}

async fn list_names(fs: &LocalFs, path: &[u8]) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = list_entries(fs, path)
        .await
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    names
}

/// Names on disk (std, not through the storage) in directory `dir`.
fn disk_names(dir: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    v.sort();
    v
}

fn temp_files(dir: &Path) -> usize {
    disk_names(dir)
        .iter()
        .filter(|n| n.starts_with(UPLOAD_TEMP_PREFIX))
        .count()
}

async fn upload(fs: &LocalFs, path: &[u8], mode: WriteMode, data: &[u8]) -> Box<dyn Upload> {
    let mut up = fs.write(&vp(path), mode).await.unwrap();
    up.write(data).await.unwrap();
    up
}

#[tokio::test]
async fn local_fs_is_usable_as_dyn_storage() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    let storage: Arc<dyn Storage> = Arc::new(fs);
    assert_eq!(storage.metadata(&vp(b"/f")).await.unwrap().size, 1);
    assert!(format!("{storage:?}").contains("LocalFs"));
}

#[tokio::test]
async fn symlink_pointing_outside_root_is_refused() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(outer.path().join("secret.txt"), b"secret").unwrap();
    std::fs::create_dir(outer.path().join("outdir")).unwrap();
    std::fs::write(outer.path().join("outdir/inner.txt"), b"x").unwrap();
    symlink("../secret.txt", root.join("rel")).unwrap();
    symlink(outer.path().join("secret.txt"), root.join("abs")).unwrap();
    symlink("../outdir", root.join("dirlink")).unwrap();
    let fs = LocalFs::open(&root).unwrap();

    for name in [&b"/rel"[..], b"/abs"] {
        assert!(matches!(
            err(read_all(&fs, name, 0).await),
            FsError::OutsideRoot
        ));
        assert!(matches!(
            err(fs.metadata(&vp(name)).await),
            FsError::OutsideRoot
        ));
        for mode in [
            WriteMode::Create,
            WriteMode::CreateNew,
            WriteMode::Append,
            WriteMode::Resume(0),
            WriteMode::Resume(3),
        ] {
            let e = err(fs.write(&vp(name), mode).await);
            assert!(matches!(e, FsError::OutsideRoot), "{mode:?}: {e:?}");
        }
    }
    // Listing through, reading through and writing into an outside dir.
    assert!(matches!(
        err(fs.list(&vp(b"/dirlink")).await),
        FsError::OutsideRoot
    ));
    assert!(matches!(
        err(read_all(&fs, b"/dirlink/inner.txt", 0).await),
        FsError::OutsideRoot
    ));
    assert!(matches!(
        err(fs.write(&vp(b"/dirlink/new.txt"), WriteMode::Create).await),
        FsError::OutsideRoot
    ));
    assert!(matches!(
        err(fs.create_dir(&vp(b"/dirlink/newdir")).await),
        FsError::OutsideRoot
    ));
    assert!(matches!(
        err(fs.remove_file(&vp(b"/dirlink/inner.txt")).await),
        FsError::OutsideRoot
    ));
    // Listing the root shows the links themselves, never followed.
    let entries = list_entries(&fs, b"/").await;
    assert_eq!(entries.len(), 3);
    for e in &entries {
        assert!(matches!(e.kind, EntryKind::Symlink), "{:?}", e.name);
        let target = std::fs::read_link(root.join(OsStr::from_bytes(&e.name))).unwrap();
        assert_eq!(e.size, target.as_os_str().len() as u64);
    }
    // Nothing outside changed.
    assert_eq!(
        std::fs::read(outer.path().join("secret.txt")).unwrap(),
        b"secret"
    );
    assert_eq!(
        disk_names(&outer.path().join("outdir")),
        vec![b"inner.txt".to_vec()]
    );
}

#[tokio::test]
async fn symlink_inside_root_works() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("data.txt"), b"hello").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    symlink("../data.txt", dir.path().join("sub/link")).unwrap();
    symlink("sub", dir.path().join("dirlink")).unwrap();

    assert_eq!(read_all(&fs, b"/sub/link", 0).await.unwrap(), b"hello");
    assert_eq!(read_all(&fs, b"/dirlink/link", 1).await.unwrap(), b"ello");
    let md = fs.metadata(&vp(b"/sub/link")).await.unwrap();
    assert!(matches!(md.kind, EntryKind::File));
    assert_eq!(md.size, 5);
    assert_eq!(md.name, b"link");

    let entries = list_entries(&fs, b"/sub").await;
    assert_eq!(entries.len(), 1);
    assert!(matches!(entries[0].kind, EntryKind::File));
    assert_eq!(entries[0].size, 5);
    assert_eq!(list_names(&fs, b"/dirlink").await, vec![b"link".to_vec()]);
    let root_entries = list_entries(&fs, b"/").await;
    let dl = root_entries.iter().find(|e| e.name == b"dirlink").unwrap();
    assert!(matches!(dl.kind, EntryKind::Dir));

    // Appending through an inside link writes the link target.
    let up = upload(&fs, b"/sub/link", WriteMode::Append, b"!").await;
    assert_eq!(up.commit().await.unwrap(), 6);
    assert_eq!(
        std::fs::read(dir.path().join("data.txt")).unwrap(),
        b"hello!"
    );
}

#[tokio::test]
async fn dangling_symlink_is_listed_not_followed() {
    let (dir, fs) = setup();
    symlink("nowhere", dir.path().join("dangling")).unwrap();
    symlink("loop", dir.path().join("loop")).unwrap();
    let entries = list_entries(&fs, b"/").await;
    assert_eq!(entries.len(), 2);
    for e in &entries {
        assert!(matches!(e.kind, EntryKind::Symlink));
    }
    assert!(matches!(
        err(fs.metadata(&vp(b"/dangling")).await),
        FsError::NotFound
    ));
    assert!(fs.metadata(&vp(b"/loop")).await.is_err());
}

#[tokio::test]
async fn non_utf8_file_names_round_trip() {
    let (dir, fs) = setup();
    let name: &[u8] = b"caf\xe9.txt";
    std::fs::write(dir.path().join(OsStr::from_bytes(name)), b"latin-1").unwrap();

    let names = list_names(&fs, b"/").await;
    assert_eq!(names, vec![name.to_vec()]);
    let path = vp(b"/caf\xe9.txt");
    let r = fs.read(&path, 0).await.unwrap();
    assert_eq!(read_to_end(r).await.unwrap(), b"latin-1");
    assert_eq!(fs.metadata(&path).await.unwrap().name, name);

    // And the other way round: written through the storage.
    let other: &[u8] = b"\xff\xfe-\x80";
    let mut up = fs.write(&vp(other), WriteMode::Create).await.unwrap();
    up.write(b"raw").await.unwrap();
    up.commit().await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(OsStr::from_bytes(other))).unwrap(),
        b"raw"
    );
    let names = list_names(&fs, b"/").await;
    assert!(names.contains(&other.to_vec()));
}

#[tokio::test]
async fn create_replaces_atomically_only_on_commit() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"old content").unwrap();
    let up = upload(&fs, b"/f", WriteMode::Create, b"new").await;
    assert_eq!(up.bytes_written(), 3);
    // During the upload readers see the old content; the temp is hidden.
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"old content");
    assert_eq!(temp_files(dir.path()), 1);
    assert_eq!(list_names(&fs, b"/").await, vec![b"f".to_vec()]);
    assert_eq!(up.commit().await.unwrap(), 3);
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"new");
    assert_eq!(temp_files(dir.path()), 0);
}

#[tokio::test]
async fn create_keeps_permissions_of_replaced_file() {
    let (dir, fs) = setup();
    let p = dir.path().join("f");
    std::fs::write(&p, b"old").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    let up = upload(&fs, b"/f", WriteMode::Create, b"new").await;
    up.commit().await.unwrap();
    let md = fs.metadata(&vp(b"/f")).await.unwrap();
    assert_eq!(md.mode, Some(0o640));
}

#[tokio::test]
async fn abort_of_create_keeps_old_content_and_leaves_no_temp() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"old content").unwrap();
    let up = upload(&fs, b"/f", WriteMode::Create, b"partial").await;
    assert!(!up.abort().await);
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"old content");
    assert_eq!(disk_names(dir.path()), vec![b"f".to_vec()]);
}

#[tokio::test]
async fn abort_of_create_on_new_name_with_zero_bytes_leaves_nothing() {
    let (dir, fs) = setup();
    for mode in [
        WriteMode::Create,
        WriteMode::CreateNew,
        WriteMode::Append,
        WriteMode::Resume(0),
    ] {
        let up = fs.write(&vp(b"/new"), mode).await.unwrap();
        assert!(!up.abort().await);
        assert!(disk_names(dir.path()).is_empty(), "{mode:?}");
    }
}

#[tokio::test]
async fn abort_of_create_on_new_name_with_data_keeps_partial() {
    let (dir, fs) = setup();
    let up = upload(&fs, b"/new", WriteMode::Create, b"part").await;
    assert!(up.abort().await);
    assert_eq!(read_all(&fs, b"/new", 0).await.unwrap(), b"part");
    assert_eq!(disk_names(dir.path()), vec![b"new".to_vec()]);

    // ...but never over a file that appeared meanwhile.
    let up = upload(&fs, b"/other", WriteMode::Create, b"part").await;
    std::fs::write(dir.path().join("other"), b"theirs").unwrap();
    assert!(!up.abort().await);
    assert_eq!(read_all(&fs, b"/other", 0).await.unwrap(), b"theirs");
    assert_eq!(temp_files(dir.path()), 0);
}

#[tokio::test]
async fn create_new_refuses_existing_name() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"old").unwrap();
    assert!(matches!(
        err(fs.write(&vp(b"/f"), WriteMode::CreateNew).await),
        FsError::AlreadyExists
    ));
    assert_eq!(disk_names(dir.path()), vec![b"f".to_vec()]);

    // Commit does not overwrite a file created during the upload.
    let up = upload(&fs, b"/g", WriteMode::CreateNew, b"mine").await;
    std::fs::write(dir.path().join("g"), b"theirs").unwrap();
    assert!(matches!(err(up.commit().await), FsError::AlreadyExists));
    assert_eq!(read_all(&fs, b"/g", 0).await.unwrap(), b"theirs");
    assert_eq!(temp_files(dir.path()), 0);

    let up = upload(&fs, b"/h", WriteMode::CreateNew, b"mine").await;
    assert_eq!(up.commit().await.unwrap(), 4);
    assert_eq!(read_all(&fs, b"/h", 0).await.unwrap(), b"mine");
    assert_eq!(temp_files(dir.path()), 0);
}

#[tokio::test]
async fn append_commit_and_abort() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"abc").unwrap();
    let up = upload(&fs, b"/f", WriteMode::Append, b"def").await;
    assert_eq!(up.commit().await.unwrap(), 6);
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"abcdef");

    let up = upload(&fs, b"/f", WriteMode::Append, b"XYZ").await;
    assert!(!up.abort().await);
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"abcdef");

    // APPE to a missing file creates it.
    let up = upload(&fs, b"/g", WriteMode::Append, b"new").await;
    assert_eq!(up.commit().await.unwrap(), 3);
    assert_eq!(read_all(&fs, b"/g", 0).await.unwrap(), b"new");
    assert_eq!(temp_files(dir.path()), 0);
}

#[tokio::test]
async fn resume_at_end_of_file_appends_in_place() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"12345").unwrap();
    let up = upload(&fs, b"/f", WriteMode::Resume(5), b"678").await;
    assert_eq!(up.commit().await.unwrap(), 8);
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"12345678");

    let up = upload(&fs, b"/f", WriteMode::Resume(8), b"zzz").await;
    assert!(!up.abort().await);
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"12345678");
    assert_eq!(temp_files(dir.path()), 0);
}

#[tokio::test]
async fn resume_before_end_keeps_old_bytes_on_abort() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
    let up = upload(&fs, b"/f", WriteMode::Resume(4), b"ab").await;
    assert_eq!(up.bytes_written(), 2);
    // Until commit the whole old content is intact.
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"0123456789");
    assert!(!up.abort().await);
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"0123456789");
    assert_eq!(temp_files(dir.path()), 0);

    let up = upload(&fs, b"/f", WriteMode::Resume(4), b"ab").await;
    assert_eq!(up.commit().await.unwrap(), 6);
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"0123ab");
    assert_eq!(temp_files(dir.path()), 0);
}

#[tokio::test]
async fn resume_beyond_end_is_an_error() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"abc").unwrap();
    assert!(matches!(
        err(fs.write(&vp(b"/f"), WriteMode::Resume(4)).await),
        FsError::OffsetBeyondEnd
    ));
    assert!(matches!(
        err(fs.write(&vp(b"/missing"), WriteMode::Resume(1)).await),
        FsError::OffsetBeyondEnd
    ));
    assert_eq!(disk_names(dir.path()), vec![b"f".to_vec()]);
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"abc");

    // Resume(0) on a missing file is a plain create.
    let up = upload(&fs, b"/missing", WriteMode::Resume(0), b"x").await;
    assert_eq!(up.commit().await.unwrap(), 1);
}

#[tokio::test]
async fn list_streams_more_than_a_thousand_entries() {
    let (dir, fs) = setup();
    let n = 1500;
    for i in 0..n {
        std::fs::write(dir.path().join(format!("file{i:05}")), b"x").unwrap();
    }
    let mut rx = fs.list(&vp(b"/")).await.unwrap();
    assert_eq!(rx.max_capacity(), LIST_CHANNEL_CAPACITY);
    let mut count = 0;
    while let Some(e) = rx.recv().await {
        let e = e.unwrap();
        assert!(matches!(e.kind, EntryKind::File));
        assert_eq!(e.size, 1);
        count += 1;
    }
    assert_eq!(count, n);

    // Dropping the receiver early stops the producer without error.
    let mut rx = fs.list(&vp(b"/")).await.unwrap();
    assert!(rx.recv().await.is_some());
    drop(rx);
}

#[tokio::test]
async fn list_has_facts_and_no_dot_entries() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"12345").unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let entries = list_entries(&fs, b"/").await;
    assert_eq!(entries.len(), 2);
    let f = entries.iter().find(|e| e.name == b"f").unwrap();
    assert!(matches!(f.kind, EntryKind::File));
    assert_eq!(f.size, 5);
    assert!(f.modified.unwrap() > 1_600_000_000);
    assert!(f.mode.is_some());
    let std_md = std::fs::metadata(dir.path().join("f")).unwrap();
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(
        f.unique.as_deref().unwrap(),
        format!("{:x}g{:x}", std_md.dev(), std_md.ino())
    );
    let d = entries.iter().find(|e| e.name == b"d").unwrap();
    assert!(matches!(d.kind, EntryKind::Dir));
}

#[tokio::test]
async fn temp_files_are_hidden_and_reserved() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join(".ftps-upload.0123.tmp"), b"x").unwrap();
    std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
    let _up = upload(&fs, b"/f", WriteMode::Create, b"abc").await;
    assert_eq!(list_names(&fs, b"/").await, vec![b".hidden".to_vec()]);
    let reserved = vp(b"/.ftps-upload.0123.tmp");
    assert!(matches!(
        err(fs.metadata(&reserved).await),
        FsError::InvalidName
    ));
    assert!(matches!(
        err(fs.read(&reserved, 0).await),
        FsError::InvalidName
    ));
    assert!(matches!(
        err(fs.write(&reserved, WriteMode::Create).await),
        FsError::InvalidName
    ));
    assert!(matches!(
        err(fs.remove_file(&reserved).await),
        FsError::InvalidName
    ));
    assert!(matches!(
        err(fs.rename(&reserved, &vp(b"/g")).await),
        FsError::InvalidName
    ));
    assert!(matches!(
        err(fs.rename(&vp(b"/.hidden"), &reserved).await),
        FsError::InvalidName
    ));
    assert!(matches!(
        err(fs.create_dir(&vp(b"/.ftps-upload.d")).await),
        FsError::InvalidName
    ));
}

#[tokio::test]
async fn dropped_upload_is_aborted() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"old").unwrap();
    let up = upload(&fs, b"/f", WriteMode::Create, b"new").await;
    drop(up);
    let up = upload(&fs, b"/f", WriteMode::Append, b"more").await;
    drop(up);
    for _ in 0..200 {
        if temp_files(dir.path()) == 0 && std::fs::read(dir.path().join("f")).unwrap() == b"old" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(temp_files(dir.path()), 0);
    assert_eq!(read_all(&fs, b"/f", 0).await.unwrap(), b"old");
}

#[tokio::test]
async fn write_to_missing_parent_is_not_found() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    for mode in [
        WriteMode::Create,
        WriteMode::CreateNew,
        WriteMode::Append,
        WriteMode::Resume(0),
    ] {
        assert!(matches!(
            err(fs.write(&vp(b"/nodir/f"), mode).await),
            FsError::NotFound
        ));
        assert!(matches!(
            err(fs.write(&vp(b"/d"), mode).await),
            FsError::IsADirectory
        ));
        assert!(matches!(
            err(fs.write(&vp(b"/file/f"), mode).await),
            FsError::NotADirectory
        ));
    }
    assert!(matches!(
        err(fs.write(&VirtualPath::root(), WriteMode::Create).await),
        FsError::IsADirectory
    ));
    assert_eq!(
        disk_names(dir.path()),
        vec![b"d".to_vec(), b"file".to_vec()]
    );
    assert!(disk_names(&dir.path().join("d")).is_empty());
}

#[tokio::test]
async fn create_over_read_only_file_is_refused() {
    let (dir, fs) = setup();
    let p = dir.path().join("ro");
    std::fs::write(&p, b"keep").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    if std::fs::OpenOptions::new().write(true).open(&p).is_ok() {
        return; // running with privileges that bypass permissions
    }
    assert!(matches!(
        err(fs.write(&vp(b"/ro"), WriteMode::Create).await),
        FsError::PermissionDenied
    ));
    assert_eq!(disk_names(dir.path()), vec![b"ro".to_vec()]);
}

#[tokio::test]
async fn read_from_offset_and_errors() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    assert_eq!(read_all(&fs, b"/f", 7).await.unwrap(), b"789");
    assert_eq!(read_all(&fs, b"/f", 10).await.unwrap(), b"");
    assert_eq!(read_all(&fs, b"/f", 1000).await.unwrap(), b"");
    assert_eq!(read_all(&fs, b"/f", u64::MAX).await.unwrap(), b"");
    assert!(matches!(
        err(read_all(&fs, b"/d", 0).await),
        FsError::IsADirectory
    ));
    assert!(matches!(
        err(read_all(&fs, b"/", 0).await),
        FsError::IsADirectory
    ));
    assert!(matches!(
        err(read_all(&fs, b"/missing", 0).await),
        FsError::NotFound
    ));
    assert!(matches!(
        err(read_all(&fs, b"/f/x", 0).await),
        FsError::NotADirectory
    ));
}

#[tokio::test]
async fn metadata_of_root_and_list_of_file() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    let md = fs.metadata(&VirtualPath::root()).await.unwrap();
    assert_eq!(md.name, b"/");
    assert!(matches!(md.kind, EntryKind::Dir));
    assert!(matches!(
        err(fs.list(&vp(b"/f")).await),
        FsError::NotADirectory
    ));
    assert!(matches!(
        err(fs.list(&vp(b"/missing")).await),
        FsError::NotFound
    ));
    assert!(matches!(
        err(fs.metadata(&vp(b"/missing")).await),
        FsError::NotFound
    ));
}

#[tokio::test]
async fn mkdir_and_remove_error_mapping() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    fs.create_dir(&vp(b"/d")).await.unwrap();
    fs.create_dir(&vp(b"/d/sub")).await.unwrap();
    assert!(matches!(
        err(fs.create_dir(&vp(b"/d")).await),
        FsError::AlreadyExists
    ));
    assert!(matches!(
        err(fs.create_dir(&vp(b"/f")).await),
        FsError::AlreadyExists
    ));
    assert!(matches!(
        err(fs.create_dir(&VirtualPath::root()).await),
        FsError::AlreadyExists
    ));
    assert!(matches!(
        err(fs.create_dir(&vp(b"/nodir/x")).await),
        FsError::NotFound
    ));
    assert!(matches!(
        err(fs.remove_dir(&vp(b"/d")).await),
        FsError::DirectoryNotEmpty
    ));
    assert!(matches!(
        err(fs.remove_dir(&vp(b"/f")).await),
        FsError::NotADirectory
    ));
    assert!(matches!(
        err(fs.remove_dir(&vp(b"/missing")).await),
        FsError::NotFound
    ));
    assert!(matches!(
        err(fs.remove_dir(&VirtualPath::root()).await),
        FsError::PermissionDenied
    ));
    assert!(matches!(
        err(fs.remove_file(&vp(b"/d")).await),
        FsError::IsADirectory
    ));
    assert!(matches!(
        err(fs.remove_file(&vp(b"/missing")).await),
        FsError::NotFound
    ));
    fs.remove_dir(&vp(b"/d/sub")).await.unwrap();
    fs.remove_dir(&vp(b"/d")).await.unwrap();
    fs.remove_file(&vp(b"/f")).await.unwrap();
    assert!(disk_names(dir.path()).is_empty());
}

#[tokio::test]
async fn rename_error_mapping() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("a"), b"a").unwrap();
    std::fs::write(dir.path().join("b"), b"b").unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::create_dir(dir.path().join("e")).unwrap();
    std::fs::create_dir(dir.path().join("d/sub")).unwrap();

    assert!(matches!(
        err(fs.rename(&vp(b"/missing"), &vp(b"/x")).await),
        FsError::NotFound
    ));
    assert!(matches!(
        err(fs.rename(&vp(b"/a"), &vp(b"/d")).await),
        FsError::IsADirectory
    ));
    // Even an empty directory is not replaced.
    assert!(matches!(
        err(fs.rename(&vp(b"/d"), &vp(b"/e")).await),
        FsError::AlreadyExists
    ));
    assert!(matches!(
        err(fs.rename(&vp(b"/d"), &vp(b"/d/sub/inner")).await),
        FsError::InvalidName
    ));
    assert!(matches!(
        err(fs.rename(&vp(b"/d"), &vp(b"/a")).await),
        FsError::NotADirectory
    ));
    assert!(matches!(
        err(fs.rename(&vp(b"/a"), &vp(b"/nodir/a")).await),
        FsError::NotFound
    ));
    assert!(matches!(
        err(fs.rename(&VirtualPath::root(), &vp(b"/x")).await),
        FsError::PermissionDenied
    ));
    // File onto file replaces; file into a directory; dir rename.
    fs.rename(&vp(b"/a"), &vp(b"/b")).await.unwrap();
    assert_eq!(read_all(&fs, b"/b", 0).await.unwrap(), b"a");
    fs.rename(&vp(b"/b"), &vp(b"/d/b")).await.unwrap();
    fs.rename(&vp(b"/d"), &vp(b"/moved")).await.unwrap();
    fs.rename(&vp(b"/moved"), &vp(b"/moved")).await.unwrap();
    assert_eq!(read_all(&fs, b"/moved/b", 0).await.unwrap(), b"a");
    assert_eq!(
        disk_names(dir.path()),
        vec![b"e".to_vec(), b"moved".to_vec()]
    );
}

/// A bulk upload's own thread writes through `write_blocking` after the
/// async writes: the bytes land in order, count, and commit like the rest.
#[tokio::test]
async fn blocking_writes_continue_where_async_writes_left_off() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"old").unwrap();
    let mut up = fs.write(&vp(b"/f"), WriteMode::Create).await.unwrap();
    up.write(b"abc").await.unwrap();
    assert!(up.begin_blocking().await.unwrap());
    let big = vec![9u8; 9 * 1024 * 1024];
    let expected_len = 3 + big.len() as u64;
    let mut up = tokio::task::spawn_blocking(move || {
        up.write_blocking(&big).unwrap();
        up
    })
    .await
    .unwrap();
    assert_eq!(up.bytes_written(), expected_len);
    // Not visible before the commit.
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"old");
    up.write_blocking(b"z").unwrap();
    assert_eq!(up.commit().await.unwrap(), expected_len + 1);
    let content = std::fs::read(dir.path().join("f")).unwrap();
    assert_eq!(&content[..3], b"abc");
    assert_eq!(content.len() as u64, expected_len + 1);
    assert_eq!(content.last(), Some(&b'z'));
    assert_eq!(temp_files(dir.path()), 0);
}

#[tokio::test]
async fn aborting_after_blocking_writes_restores_an_append() {
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"keep").unwrap();
    let mut up = fs.write(&vp(b"/f"), WriteMode::Append).await.unwrap();
    assert!(up.begin_blocking().await.unwrap());
    up.write_blocking(b"-lost").unwrap();
    assert!(!up.abort().await);
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"keep");
}

/// The local disk's downloads copy to a socket without passing through
/// the process, and read directly from a blocking thread.
#[tokio::test]
async fn downloads_copy_to_a_socket_and_read_directly() {
    use std::io::Read;
    use std::os::fd::AsFd;
    let (dir, fs) = setup();
    std::fs::write(dir.path().join("f"), b"0123456789").unwrap();

    let mut d = fs.read(&vp(b"/f"), 2).await.unwrap();
    assert_eq!(d.remaining(), Some(8));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut inbound, _) = listener.accept().unwrap();
    let mut sent = 0;
    loop {
        match d.copy_to_socket(out.as_fd(), 3) {
            Some(Ok(0)) => break,
            Some(Ok(n)) => sent += n,
            other => panic!("copy failed: {other:?}"),
        }
    }
    assert_eq!(sent, 8);
    drop(out);
    let mut got = Vec::new();
    inbound.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"23456789");

    let mut d = fs.read(&vp(b"/f"), 7).await.unwrap();
    assert!(d.reads_blocking());
    let mut buf = [0u8; 16];
    let n = d.read_blocking(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"789");
    assert_eq!(d.read_blocking(&mut buf).unwrap(), 0);
}
