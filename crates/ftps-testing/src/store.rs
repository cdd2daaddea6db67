//! The test account's files, wherever the server keeps them: a temporary
//! directory (the local back-end) or a key prefix of the shared SeaweedFS
//! bucket (the S3 back-end). Tests prepare and check files through
//! [`Store`], so the same test body runs on both back-ends; which one is
//! chosen by `FTPS_TEST_BACKEND` ([`Backend::from_env`]).
//!
//! The S3 side talks to the store with its own OpenDAL operator (raw keys
//! below the prefix, nothing of the server's mapping) and asks boto3 for the
//! multipart uploads in progress.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::seaweedfs::{SeaweedFs, ACCESS_KEY, BUCKET, SECRET_KEY};

/// Which storage back-end a [`crate::TestServer`] serves its test account from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary directory.
    Local,
    /// A fresh key prefix in the bucket of the shared SeaweedFS.
    S3,
}

impl Backend {
    /// `FTPS_TEST_BACKEND=s3` chooses [`Backend::S3`]; unset or `local`,
    /// [`Backend::Local`]. Any other value panics.
    pub fn from_env() -> Backend {
        match std::env::var("FTPS_TEST_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("local") => Backend::Local,
            Ok("s3") => Backend::S3,
            Ok(other) => panic!("FTPS_TEST_BACKEND={other}: expected local or s3"),
        }
    }
}

/// Whether a test that only makes sense on the local file system (symbolic
/// links, a full disk, file modes, non-UTF-8 names on disk) should run: false
/// on the S3 back-end, with a note naming the test's reason.
pub fn local_only(reason: &str) -> bool {
    if Backend::from_env() == Backend::Local {
        return true;
    }
    eprintln!("NOT APPLICABLE on the S3 back-end: {reason}");
    false
}

/// Where the test account's files are.
#[derive(Clone)]
pub enum Store {
    /// The root directory.
    Local(PathBuf),
    /// A key prefix (ending in `/`) of [`BUCKET`].
    S3 {
        /// The store's endpoint (`http://127.0.0.1:PORT`).
        endpoint: String,
        /// Raw access to [`BUCKET`].
        op: opendal::Operator,
        /// The account's prefix, `t-RANDOM/`.
        prefix: String,
    },
}

/// A runtime for the S3 helpers, which are called from inside tests' own
/// runtimes (a blocking wait there is fine in a test).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn block<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    runtime().spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv().unwrap()
}

/// An operator on [`BUCKET`] of the store at `endpoint`, signed with the
/// test identity, with an HTTP client of its own: use it only on the
/// helpers' runtime (through [`Store`]), never on a test's.
fn s3_operator(endpoint: &str) -> opendal::Operator {
    let section = ftps_server::config::S3Section {
        endpoint: Some(endpoint.to_owned()),
        path_style: true,
        access_key_id: Some(ACCESS_KEY.to_owned()),
        secret_access_key: Some(SECRET_KEY.to_owned()),
        ..Default::default()
    };
    ftps_server::storage::s3::S3Stores::new(&section, &[], 600)
        .operator(BUCKET)
        .unwrap()
}

fn utf8(name: &[u8]) -> &str {
    std::str::from_utf8(name).expect("object keys are UTF-8")
}

impl Store {
    /// A store of `backend`; `root` is the local root directory.
    pub fn new(backend: Backend, root: &Path) -> Store {
        let weed = match backend {
            Backend::Local => None,
            Backend::S3 => SeaweedFs::shared(),
        };
        match weed {
            None => Store::Local(root.to_path_buf()),
            Some(weed) => Store::s3_on(&weed.endpoint),
        }
    }

    /// A fresh prefix of [`BUCKET`] in the store at `endpoint`.
    pub fn s3_on(endpoint: &str) -> Store {
        Store::S3 {
            endpoint: endpoint.to_owned(),
            op: s3_operator(endpoint),
            prefix: format!("t-{:016x}/", rand::random::<u64>()),
        }
    }

    /// Which back-end this is.
    pub fn backend(&self) -> Backend {
        match self {
            Store::Local(_) => Backend::Local,
            Store::S3 { .. } => Backend::S3,
        }
    }

    /// Write the object `key` of the bucket (a key anywhere, not below the
    /// prefix: for tests of what lies around it).
    pub fn raw_write(&self, key: &str, data: &[u8]) {
        if let Store::S3 { op, .. } = self {
            let (op, key, data) = (op.clone(), key.to_owned(), data.to_vec());
            block(async move { op.write(&key, data).await.map(|_| ()) }).unwrap();
        }
    }

    /// The object `key` of the bucket, if it exists.
    pub fn raw_read(&self, key: &str) -> Option<Vec<u8>> {
        let Store::S3 { op, .. } = self else {
            return None;
        };
        let (op, key) = (op.clone(), key.to_owned());
        block(async move { op.read(&key).await.map(|b| b.to_vec()) }).ok()
    }

    /// Delete the object `key` of the bucket.
    pub fn raw_delete(&self, key: &str) {
        if let Store::S3 { op, .. } = self {
            let (op, key) = (op.clone(), key.to_owned());
            let _ = block(async move { op.delete(&key).await });
        }
    }

    fn key(&self, name: &[u8]) -> String {
        match self {
            Store::Local(_) => unreachable!(),
            Store::S3 { prefix, .. } => format!("{prefix}{}", utf8(name).trim_matches('/')),
        }
    }

    fn path(root: &Path, name: &[u8]) -> PathBuf {
        root.join(OsStr::from_bytes(name))
    }

    /// Write the file `name` (a path relative to the root).
    pub fn write(&self, name: impl AsRef<[u8]>, data: &[u8]) {
        let name = name.as_ref();
        match self {
            Store::Local(root) => std::fs::write(Store::path(root, name), data).unwrap(),
            Store::S3 { op, .. } => {
                let (op, key, data) = (op.clone(), self.key(name), data.to_vec());
                block(async move { op.write(&key, data).await.map(|_| ()) }).unwrap();
            }
        }
    }

    /// Write `len` random bytes to `name` and return them.
    pub fn write_random(&self, name: impl AsRef<[u8]>, len: usize) -> Vec<u8> {
        let data = crate::random_bytes(len);
        self.write(name, &data);
        data
    }

    /// The content of the file `name`, `None` when there is none.
    pub fn read(&self, name: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        let name = name.as_ref();
        match self {
            Store::Local(root) => std::fs::read(Store::path(root, name)).ok(),
            Store::S3 { op, .. } => {
                let (op, key) = (op.clone(), self.key(name));
                block(async move { op.read(&key).await.map(|b| b.to_vec()) }).ok()
            }
        }
    }

    /// Whether the file or directory `name` exists.
    pub fn exists(&self, name: impl AsRef<[u8]>) -> bool {
        let name = name.as_ref();
        match self {
            Store::Local(root) => Store::path(root, name).symlink_metadata().is_ok(),
            Store::S3 { op, .. } => {
                let (op, key) = (op.clone(), self.key(name));
                block(async move {
                    if op.stat(&key).await.is_ok() {
                        return true;
                    }
                    let dir = format!("{key}/");
                    op.list_with(&dir)
                        .limit(1)
                        .await
                        .is_ok_and(|l| !l.is_empty())
                })
            }
        }
    }

    /// Create the directory `name` and any missing parents.
    pub fn create_dir(&self, name: impl AsRef<[u8]>) {
        let name = name.as_ref();
        match self {
            Store::Local(root) => std::fs::create_dir_all(Store::path(root, name)).unwrap(),
            Store::S3 { op, .. } => {
                let mut dir = String::new();
                for part in utf8(name).split('/').filter(|p| !p.is_empty()) {
                    dir.push_str(part);
                    dir.push('/');
                    let (op, key) = (op.clone(), self.key(dir.as_bytes()) + "/");
                    block(async move { op.create_dir(&key).await }).unwrap();
                }
            }
        }
    }

    /// The modification time of the file `name`: the file's mtime, or the
    /// object's `Last-Modified`, in seconds since the Unix epoch.
    pub fn modified(&self, name: impl AsRef<[u8]>) -> i64 {
        let name = name.as_ref();
        match self {
            Store::Local(root) => {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata(Store::path(root, name)).unwrap().mtime()
            }
            Store::S3 { op, .. } => {
                let (op, key) = (op.clone(), self.key(name));
                let md = block(async move { op.stat(&key).await }).unwrap();
                md.last_modified().unwrap().into_inner().as_second()
            }
        }
    }

    /// Set the modification time of the file `name` where the back-end
    /// lets a client do it (the local disk; an object's `Last-Modified` is
    /// the store's); returns the time the file has afterwards.
    pub fn set_modified(&self, name: impl AsRef<[u8]>, unix_secs: u64) -> i64 {
        let name = name.as_ref();
        if let Store::Local(root) = self {
            let file = std::fs::File::options()
                .write(true)
                .open(Store::path(root, name))
                .unwrap();
            file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs))
                .unwrap();
        }
        self.modified(name)
    }

    /// Remove the file `name` (missing is fine).
    pub fn remove(&self, name: impl AsRef<[u8]>) {
        let name = name.as_ref();
        match self {
            Store::Local(root) => {
                let _ = std::fs::remove_file(Store::path(root, name));
            }
            Store::S3 { op, .. } => {
                let (op, key) = (op.clone(), self.key(name));
                block(async move { op.delete(&key).await }).unwrap();
            }
        }
    }

    /// The names in directory `dir` (`""` for the root), sorted; on the
    /// local disk every name there is, upload temp files included.
    pub fn names(&self, dir: impl AsRef<[u8]>) -> Vec<Vec<u8>> {
        let dir = dir.as_ref();
        let mut names: Vec<Vec<u8>> = match self {
            Store::Local(root) => match std::fs::read_dir(Store::path(root, dir)) {
                Ok(entries) => entries
                    .map(|e| e.unwrap().file_name().as_bytes().to_vec())
                    .collect(),
                Err(_) => Vec::new(),
            },
            Store::S3 { op, prefix, .. } => {
                let listed = if dir.is_empty() {
                    prefix.clone()
                } else {
                    format!("{}/", self.key(dir))
                };
                let op = op.clone();
                let keys = block(async move {
                    op.list(&listed).await.map(|entries| {
                        entries
                            .into_iter()
                            .filter_map(|e| {
                                let rest = e.path().strip_prefix(&listed)?;
                                let name = rest.trim_end_matches('/');
                                (!name.is_empty()).then(|| name.as_bytes().to_vec())
                            })
                            .collect::<Vec<_>>()
                    })
                });
                keys.unwrap_or_default()
            }
        };
        names.sort();
        names
    }

    /// What an interrupted upload may have left behind: on the local disk
    /// the upload temp files anywhere below the root, on S3 the multipart
    /// uploads in progress below the prefix (asked with boto3).
    pub fn leftovers(&self) -> Vec<String> {
        match self {
            Store::Local(root) => {
                let mut found = Vec::new();
                let mut dirs = vec![root.clone()];
                while let Some(dir) = dirs.pop() {
                    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                        let name = entry.file_name();
                        if name.as_bytes().starts_with(b".ftps-upload.") {
                            found.push(entry.path().display().to_string());
                        } else if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                            dirs.push(entry.path());
                        }
                    }
                }
                found
            }
            Store::S3 {
                endpoint, prefix, ..
            } => crate::seaweedfs::multipart_uploads(endpoint, BUCKET, prefix),
        }
    }
}
