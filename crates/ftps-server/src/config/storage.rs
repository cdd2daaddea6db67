//! Where users' files live: `[storage]` (the back-end of users that name
//! none), `[s3]` (the object store reached over the S3 API: endpoint, region,
//! addressing style, credentials, default bucket, part size, how uploads are
//! reclaimed) and the per-user choice ([`UserStorage`]: a local `root`, or an
//! `s3 = { bucket, prefix }` location).
//!
//! These types are the one description of a user's storage: the `[[users]]`
//! entries of the file and any other user store (a database row) fill the
//! same [`UserStorage`], and `crate::shared::Shared::open_storage` opens it.

use std::path::PathBuf;

use serde::Deserialize;

/// Default region of `[s3]`.
pub const DEFAULT_S3_REGION: &str = "us-east-1";
/// Default size of one part of a multipart upload, in MiB.
pub const DEFAULT_S3_PART_SIZE_MIB: usize = 8;
/// Smallest part size S3 accepts (except for the last part), in MiB.
pub const MIN_S3_PART_SIZE_MIB: usize = 5;
/// Largest accepted `part_size_mib` (S3 allows 5 GiB; more memory per upload
/// than that makes no sense here).
pub const MAX_S3_PART_SIZE_MIB: usize = 512;
/// Default number of parts of one upload (or ranges of one download) in
/// flight at once.
pub const DEFAULT_S3_CONCURRENT_PARTS: usize = 4;
/// Largest accepted `concurrent_parts`.
pub const MAX_S3_CONCURRENT_PARTS: usize = 32;
/// Default bound on one request to the store (connect, headers and body
/// chunk), in seconds.
pub const DEFAULT_S3_TIMEOUT_SECS: u64 = 60;

/// `[storage]`: the back-end of users that name neither `root` nor `s3`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// `"local"` (default): every user names a `root`. `"s3"`: a user without
    /// `root` or `s3` keeps files in `[s3].bucket` under the prefix `NAME/`.
    pub backend: Backend,
}

/// A kind of storage back-end.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The local file system.
    #[default]
    Local,
    /// An object store over the S3 API (`[s3]`).
    S3,
}

/// `[s3]`: the object store reached over the S3 API.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct S3Section {
    /// The store's URL (`http://127.0.0.1:8333`); unset: AWS S3 in `region`.
    pub endpoint: Option<String>,
    /// The region requests are signed for. Default `"us-east-1"`.
    pub region: String,
    /// Path-style addressing (`ENDPOINT/BUCKET/KEY`) instead of virtual-hosted
    /// style (`BUCKET.ENDPOINT/KEY`). Default false; most self-hosted stores
    /// (SeaweedFS, MinIO, Ceph) want true.
    pub path_style: bool,
    /// The bucket of users whose `s3` location names none.
    pub bucket: Option<String>,
    /// The access key; unset: `AWS_ACCESS_KEY_ID` (and the rest of the
    /// standard AWS credential chain).
    pub access_key_id: Option<String>,
    /// The secret key; unset: `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// A session token for temporary credentials; unset: `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
    /// The size of one part of a multipart upload and of one ranged read, in
    /// MiB. Default 8, at least 5 (S3's minimum part size).
    pub part_size_mib: usize,
    /// Parts of one upload (ranges of one download) in flight at once.
    /// Default 4. Memory per transfer is about `part_size_mib ×
    /// (concurrent_parts + 2)` per upload.
    pub concurrent_parts: usize,
    /// Bound on one request to the store, in seconds. Default 60.
    pub timeout_secs: u64,
    /// This node's name in the uploads it starts (so that another node never
    /// aborts them); unset: the host name and the process id. A multipart
    /// upload older than `server.abandoned_upload_secs` that no live node is
    /// writing is aborted.
    pub node_id: Option<String>,
}

impl Default for S3Section {
    fn default() -> S3Section {
        S3Section {
            endpoint: None,
            region: DEFAULT_S3_REGION.to_owned(),
            path_style: false,
            bucket: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            part_size_mib: DEFAULT_S3_PART_SIZE_MIB,
            concurrent_parts: DEFAULT_S3_CONCURRENT_PARTS,
            timeout_secs: DEFAULT_S3_TIMEOUT_SECS,
            node_id: None,
        }
    }
}

/// A user's place in the object store: `s3 = { bucket = "..", prefix = ".." }`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct S3Location {
    /// The bucket; unset: `[s3].bucket`.
    #[serde(default)]
    pub bucket: Option<String>,
    /// The key prefix the user sees as `/` (`"partners/alice"`); empty: the
    /// whole bucket. Leading and trailing slashes are ignored.
    #[serde(default)]
    pub prefix: String,
}

impl S3Location {
    /// The prefix in its one normal form: no leading or trailing `/`, no
    /// empty components (`"a/b"`, or `""` for the whole bucket).
    pub fn normalized_prefix(&self) -> String {
        self.prefix
            .split('/')
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Where one user's files live.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserStorage {
    /// A directory of the local file system (`root`).
    Local(PathBuf),
    /// A bucket and key prefix of the `[s3]` object store.
    S3(S3Location),
}

impl std::fmt::Display for UserStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserStorage::Local(root) => write!(f, "{}", root.display()),
            UserStorage::S3(loc) => write!(
                f,
                "s3://{}/{}",
                loc.bucket.as_deref().unwrap_or("[s3].bucket"),
                loc.normalized_prefix()
            ),
        }
    }
}

/// Whether `name` is a bucket name S3 accepts (DNS-style: 3 to 63
/// characters, lower-case letters, digits, `-` and `.`, starting and ending
/// with a letter or digit).
pub fn is_valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}
