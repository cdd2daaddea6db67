//! Which multipart uploads belong to this node, and the reclaiming of those
//! nobody owns any more (a node killed mid-upload, a store that went away
//! during an abort).
//!
//! The rule (docs/security.md, "Object storage"):
//!
//! * Every upload this node starts carries the node's identity in its object
//!   metadata ([`NODE_METADATA_KEY`]) and is registered in [`NodeUploads`]
//!   from before its multipart upload is created until it is completed or
//!   aborted.
//! * Every node keeps a heartbeat object per bucket it uses,
//!   `.ftps-upload.nodes/NODE`, rewritten every [`heartbeat`] interval, whose
//!   body lists the keys it has uploads in progress to. (Names starting with
//!   `.ftps-upload.` are reserved: never listed, never reachable by a user.)
//! * At start and then every [`reclaim_every`] interval (the threshold
//!   `server.abandoned_upload_secs`, at most an hour), a node lists the
//!   bucket's multipart uploads (`ListMultipartUploads`) and aborts
//!   (`AbortMultipartUpload`) one only when it was initiated longer than
//!   `server.abandoned_upload_secs` ago **and** no live node lists its key — a
//!   node is live while its heartbeat is younger than
//!   [`LIVE_HEARTBEATS`] intervals. Ages are measured on the store's clock
//!   (the `Last-Modified` of this node's fresh heartbeat), never this
//!   machine's.
//!
//! So a starting node never aborts another node's upload in progress: that
//! node's heartbeat lists the key. The threshold covers an upload created
//! after the last heartbeat was written.
//!
//! OpenDAL does not offer `ListMultipartUploads` or an abort by upload id;
//! those two requests are signed with `rusty-s3` (a maintained, small,
//! sans-IO S3 request signer) and sent with `reqwest`, the HTTP client
//! OpenDAL itself uses.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use opendal::Operator;
use serde::Deserialize;

use crate::config::S3Section;

/// The user-metadata key (`x-amz-meta-ftps-node`) naming the node that
/// started an upload.
pub const NODE_METADATA_KEY: &str = "ftps-node";

/// Where the heartbeats live, at the top of each bucket.
pub const HEARTBEAT_PREFIX: &str = ".ftps-upload.nodes/";

/// The longest interval between two reclaiming passes.
pub const MAX_RECLAIM_EVERY_SECS: u64 = 3600;

/// A node whose heartbeat is older than this many intervals is not live.
pub const LIVE_HEARTBEATS: u32 = 3;

/// The longest interval between two heartbeats.
const MAX_HEARTBEAT_SECS: u64 = 30;

/// How long a signed request stays valid.
const SIGNATURE_SECS: u64 = 300;

/// How often the reclaimer runs after the pass at start: as often as an
/// upload may become abandoned (`server.abandoned_upload_secs`), so a dead
/// node's upload is aborted within about twice the threshold, but at most
/// every [`MAX_RECLAIM_EVERY_SECS`]. A pass costs one `ListMultipartUploads`
/// request per 1,000 uploads in progress.
pub fn reclaim_every(abandoned_upload_secs: u64) -> Duration {
    Duration::from_secs(abandoned_upload_secs.clamp(1, MAX_RECLAIM_EVERY_SECS))
}

/// The interval between heartbeats: a quarter of the age an upload must
/// reach before it may be reclaimed (so a live node has listed it by then),
/// between 1 and 30 seconds.
pub fn heartbeat(abandoned_upload_secs: u64) -> Duration {
    Duration::from_secs((abandoned_upload_secs / 4).clamp(1, MAX_HEARTBEAT_SECS))
}

/// The uploads in progress on this node, by bucket and key.
#[derive(Debug)]
pub struct NodeUploads {
    node_id: String,
    keys: Mutex<HashMap<(String, String), usize>>,
}

impl NodeUploads {
    /// The registry of node `node_id`.
    pub fn new(node_id: String) -> Arc<NodeUploads> {
        Arc::new(NodeUploads {
            node_id,
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// This node's identity.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Record an upload to `key` of `bucket` until the returned value is
    /// dropped.
    pub fn register(self: &Arc<Self>, bucket: &str, key: &str) -> Registration {
        let id = (bucket.to_owned(), key.to_owned());
        *self.lock().entry(id.clone()).or_insert(0) += 1;
        Registration {
            uploads: Arc::clone(self),
            id,
        }
    }

    /// The keys of `bucket` this node has uploads in progress to.
    pub fn keys_in(&self, bucket: &str) -> Vec<String> {
        self.lock()
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), usize>> {
        match self.keys.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// An upload in progress; dropping it ends the record.
#[derive(Debug)]
pub struct Registration {
    uploads: Arc<NodeUploads>,
    id: (String, String),
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut keys = self.uploads.lock();
        if let Some(count) = keys.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                keys.remove(&self.id);
            }
        }
    }
}

/// One multipart upload in progress, from `ListMultipartUploads`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PendingUpload {
    /// The target key.
    #[serde(rename = "Key")]
    pub key: String,
    /// The store's id of the upload.
    #[serde(rename = "UploadId")]
    pub upload_id: String,
    /// When it was created (RFC 3339, the store's clock).
    #[serde(rename = "Initiated")]
    pub initiated: String,
}

#[derive(Debug, Default, Deserialize)]
struct ListResult {
    #[serde(rename = "Upload", default)]
    uploads: Vec<PendingUpload>,
    #[serde(rename = "IsTruncated", default)]
    is_truncated: bool,
    #[serde(rename = "NextKeyMarker", default)]
    next_key_marker: Option<String>,
    #[serde(rename = "NextUploadIdMarker", default)]
    next_upload_id_marker: Option<String>,
}

/// Parse one page of a `ListMultipartUploads` answer.
fn parse_list(xml: &str) -> Result<ListResult, String> {
    quick_xml::de::from_str(xml).map_err(|e| format!("ListMultipartUploads answer: {e}"))
}

/// The requests OpenDAL does not make: list and abort multipart uploads.
pub struct MultipartApi {
    bucket: rusty_s3::Bucket,
    credentials: rusty_s3::Credentials,
    http: reqwest::Client,
}

impl MultipartApi {
    /// The API of `bucket` in the store of `s3`, with the credentials of
    /// `[s3]` or of the AWS environment variables; `None` without any.
    pub fn new(s3: &S3Section, bucket: &str) -> Result<Option<MultipartApi>, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (key, secret, token) = match (&s3.access_key_id, &s3.secret_access_key) {
            (Some(key), Some(secret)) => (key.clone(), secret.clone(), s3.session_token.clone()),
            _ => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(key), Some(secret)) => (key, secret, env("AWS_SESSION_TOKEN")),
                _ => return Ok(None),
            },
        };
        let credentials = match token {
            Some(token) => rusty_s3::Credentials::new_with_token(key, secret, token),
            None => rusty_s3::Credentials::new(key, secret),
        };
        let endpoint = match &s3.endpoint {
            Some(e) => e.clone(),
            None => format!("https://s3.{}.amazonaws.com", s3.region),
        };
        let endpoint = endpoint.parse().map_err(|e| format!("s3.endpoint: {e}"))?;
        let style = if s3.path_style {
            rusty_s3::UrlStyle::Path
        } else {
            rusty_s3::UrlStyle::VirtualHost
        };
        let bucket = rusty_s3::Bucket::new(endpoint, style, bucket.to_owned(), s3.region.clone())
            .map_err(|e| format!("bucket: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(s3.timeout_secs))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Some(MultipartApi {
            bucket,
            credentials,
            http,
        }))
    }

    /// Every multipart upload in progress in the bucket.
    pub async fn list(&self) -> Result<Vec<PendingUpload>, String> {
        let mut all = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query = vec![("uploads", "")];
            if let Some((key, id)) = &markers {
                query.push(("key-marker", key.as_str()));
                query.push(("upload-id-marker", id.as_str()));
            }
            let url = rusty_s3::signing::sign(
                &jiff::Timestamp::now(),
                rusty_s3::Method::Get,
                self.bucket.base_url().clone(),
                self.credentials.key(),
                self.credentials.secret(),
                self.credentials.token(),
                self.bucket.region(),
                SIGNATURE_SECS,
                query.iter().copied(),
                std::iter::empty(),
            );
            let body = self.send(self.http.get(url)).await?;
            let page = parse_list(&body)?;
            all.extend(page.uploads);
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(key), Some(id)) => markers = Some((key, id)),
                _ => return Ok(all),
            }
        }
    }

    /// Abort one upload.
    pub async fn abort(&self, upload: &PendingUpload) -> Result<(), String> {
        use rusty_s3::S3Action;
        let action = rusty_s3::actions::AbortMultipartUpload::new(
            &self.bucket,
            Some(&self.credentials),
            &upload.key,
            &upload.upload_id,
        );
        let url = action.sign(Duration::from_secs(SIGNATURE_SECS));
        self.send(self.http.delete(url)).await.map(|_| ())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<String, String> {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!(
                "{status}: {}",
                body.chars().take(300).collect::<String>()
            ))
        }
    }
}

/// Seconds since the epoch of an RFC 3339 time.
fn unix_secs(rfc3339: &str) -> Option<i64> {
    rfc3339
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Write this node's heartbeat in `bucket` (the keys it is uploading to)
/// and return the store's time of it.
pub async fn write_heartbeat(
    op: &Operator,
    uploads: &NodeUploads,
    bucket: &str,
) -> Result<i64, opendal::Error> {
    let path = format!("{HEARTBEAT_PREFIX}{}", uploads.node_id());
    let body = uploads.keys_in(bucket).join("\n");
    op.write(&path, body.into_bytes()).await?;
    let md = op.stat(&path).await?;
    Ok(md
        .last_modified()
        .map(|t| t.into_inner().as_second())
        .unwrap_or_default())
}

/// The keys live nodes (heartbeat at most `live_secs` old at `now`) are
/// uploading to in this bucket.
async fn protected_keys(
    op: &Operator,
    now: i64,
    live_secs: i64,
) -> Result<HashSet<String>, opendal::Error> {
    let mut keys = HashSet::new();
    let mut lister = op.lister(HEARTBEAT_PREFIX).await?;
    while let Some(entry) = lister.try_next().await? {
        if entry.path() == HEARTBEAT_PREFIX {
            continue;
        }
        let md = op.stat(entry.path()).await?;
        let at = md.last_modified().map(|t| t.into_inner().as_second());
        if at.is_some_and(|at| now - at <= live_secs) {
            let body = op.read(entry.path()).await?.to_vec();
            let text = String::from_utf8_lossy(&body);
            keys.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
        }
    }
    Ok(keys)
}

/// Which of `pending` may be aborted at store time `now`.
pub fn abandoned<'a>(
    pending: &'a [PendingUpload],
    protected: &HashSet<String>,
    now: i64,
    abandoned_secs: u64,
) -> Vec<&'a PendingUpload> {
    let min_age = i64::try_from(abandoned_secs).unwrap_or(i64::MAX);
    pending
        .iter()
        .filter(|u| !protected.contains(&u.key))
        .filter(|u| unix_secs(&u.initiated).is_some_and(|t| now - t >= min_age))
        .collect()
}

/// One reclaiming pass over a bucket; returns how many uploads it aborted.
pub async fn reclaim_bucket(
    op: &Operator,
    api: &MultipartApi,
    uploads: &NodeUploads,
    bucket: &str,
    abandoned_secs: u64,
) -> Result<usize, String> {
    let now = write_heartbeat(op, uploads, bucket)
        .await
        .map_err(|e| format!("heartbeat: {e}"))?;
    let interval = heartbeat(abandoned_secs).as_secs();
    let live_secs = i64::try_from(interval * u64::from(LIVE_HEARTBEATS)).unwrap_or(i64::MAX);
    let mut protected = protected_keys(op, now, live_secs)
        .await
        .map_err(|e| format!("heartbeats: {e}"))?;
    protected.extend(uploads.keys_in(bucket));
    let pending = api.list().await?;
    let mut aborted = 0;
    for upload in abandoned(&pending, &protected, now, abandoned_secs) {
        match api.abort(upload).await {
            Ok(()) => {
                tracing::info!(bucket, key = %upload.key, initiated = %upload.initiated, "aborted an abandoned multipart upload");
                aborted += 1;
            }
            Err(e) => {
                tracing::warn!(bucket, key = %upload.key, error = %e, "cannot abort an abandoned multipart upload")
            }
        }
    }
    Ok(aborted)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn upload(key: &str, initiated: &str) -> PendingUpload {
        PendingUpload {
            key: key.into(),
            upload_id: format!("id-{key}"),
            initiated: initiated.into(),
        }
    }

    #[test]
    fn only_old_uploads_no_live_node_lists_are_abandoned() {
        let now = unix_secs("2024-05-01T12:00:00Z").unwrap();
        let pending = [
            upload("old-orphan", "2024-04-30T11:00:00.000Z"),
            upload("old-but-live-elsewhere", "2024-04-30T11:00:00.000Z"),
            upload("young", "2024-05-01T11:59:00.000Z"),
            upload("bad-time", "yesterday"),
        ];
        let protected = HashSet::from(["old-but-live-elsewhere".to_owned()]);
        let keys: Vec<&str> = abandoned(&pending, &protected, now, 86_400)
            .iter()
            .map(|u| u.key.as_str())
            .collect();
        assert_eq!(keys, ["old-orphan"]);
    }

    #[test]
    fn heartbeat_is_a_quarter_of_the_threshold_within_bounds() {
        assert_eq!(heartbeat(86_400), Duration::from_secs(30));
        assert_eq!(heartbeat(40), Duration::from_secs(10));
        assert_eq!(heartbeat(2), Duration::from_secs(1));
    }

    #[test]
    fn reclaiming_runs_every_threshold_at_most_hourly() {
        assert_eq!(reclaim_every(600), Duration::from_secs(600));
        assert_eq!(reclaim_every(8), Duration::from_secs(8));
        assert_eq!(reclaim_every(86_400), Duration::from_secs(3600));
        assert_eq!(reclaim_every(0), Duration::from_secs(1));
    }

    #[test]
    fn list_multipart_uploads_answers_parse() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>k2</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>
  <MaxUploads>1000</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>k1</Key><UploadId>u1</UploadId><Initiated>2024-05-01T12:00:00.000Z</Initiated></Upload>
  <Upload><Key>k2</Key><UploadId>u2</UploadId><Initiated>2024-05-01T12:00:01.000Z</Initiated></Upload>
</ListMultipartUploadsResult>"#;
        let page = parse_list(xml).unwrap();
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.uploads[1].key, "k2");
        assert!(page.is_truncated);
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("u2"));
        let empty =
            parse_list("<ListMultipartUploadsResult></ListMultipartUploadsResult>").unwrap();
        assert!(empty.uploads.is_empty() && !empty.is_truncated);
    }
}
