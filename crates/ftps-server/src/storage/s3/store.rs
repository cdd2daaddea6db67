//! The object store of `[s3]`: one OpenDAL `Operator` per bucket (sharing
//! its HTTP connections among every user of the bucket), built on first use,
//! with a timeout on every request and a few retries of transient failures.
//! Credentials come from `[s3]` or, when it names none, from the standard AWS
//! environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`) and the rest of the AWS credential chain.
//!
//! [`S3Stores::maintain`] runs for the server's lifetime: this node's
//! heartbeat in every bucket in use, and the reclaiming of abandoned
//! multipart uploads ([`super::reclaim`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::Operator;

use super::reclaim::{self, NodeUploads};
use super::{S3Fs, Tuning};
use crate::config::{S3Location, S3Section};
use crate::storage::{FsError, Storage};

/// Retries of a failed request (connection refused, 5xx) before it fails.
const RETRIES: usize = 2;

/// The object store and its operators.
#[derive(Debug)]
pub struct S3Stores {
    section: S3Section,
    /// `server.abandoned_upload_secs`.
    abandoned_upload_secs: u64,
    uploads: Arc<NodeUploads>,
    operators: Mutex<HashMap<String, Operator>>,
    /// The HTTP client of every operator (its own connection pool).
    http: reqwest::Client,
}

impl S3Stores {
    /// The store of `section`, with the buckets the configuration names
    /// (no request is made yet).
    pub fn new(section: &S3Section, buckets: &[String], abandoned_upload_secs: u64) -> S3Stores {
        let node_id = section.node_id.clone().unwrap_or_else(default_node_id);
        let stores = S3Stores {
            section: section.clone(),
            abandoned_upload_secs,
            uploads: NodeUploads::new(node_id),
            operators: Mutex::new(HashMap::new()),
            http: http_client(),
        };
        for bucket in buckets {
            if let Err(e) = stores.operator(bucket) {
                tracing::error!(bucket, error = %e, "object store");
            }
        }
        stores
    }

    /// The buckets in use so far.
    fn buckets(&self) -> Vec<(String, Operator)> {
        let operators = match self.operators.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        operators
            .iter()
            .map(|(b, op)| (b.clone(), op.clone()))
            .collect()
    }

    /// Until `stop` is cancelled: write this node's heartbeat in every
    /// bucket in use each [`reclaim::heartbeat`] interval, and reclaim
    /// abandoned multipart uploads at start and every
    /// [`reclaim::reclaim_every`] interval.
    pub async fn maintain(&self, stop: tokio_util::sync::CancellationToken) {
        let abandoned = self.abandoned_upload_secs;
        let mut tick = tokio::time::interval(reclaim::heartbeat(abandoned));
        let reclaim_every = reclaim::reclaim_every(abandoned);
        let mut last_reclaim: HashMap<String, tokio::time::Instant> = HashMap::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            for (bucket, op) in self.buckets() {
                let due = last_reclaim
                    .get(&bucket)
                    .is_none_or(|at| at.elapsed() >= reclaim_every);
                if due {
                    last_reclaim.insert(bucket.clone(), tokio::time::Instant::now());
                    self.reclaim(&bucket, &op).await;
                } else if let Err(e) = reclaim::write_heartbeat(&op, &self.uploads, &bucket).await {
                    tracing::warn!(bucket, error = %e, "cannot write this node's heartbeat");
                }
            }
        }
    }

    /// One reclaiming pass over `bucket` (which also writes the heartbeat).
    pub async fn reclaim(&self, bucket: &str, op: &Operator) {
        let api = match reclaim::MultipartApi::new(&self.section, bucket) {
            Ok(Some(api)) => api,
            Ok(None) => {
                tracing::warn!(bucket, "no credentials in [s3] or AWS_ACCESS_KEY_ID: abandoned multipart uploads are not reclaimed");
                if let Err(e) = reclaim::write_heartbeat(op, &self.uploads, bucket).await {
                    tracing::warn!(bucket, error = %e, "cannot write this node's heartbeat");
                }
                return;
            }
            Err(e) => {
                tracing::warn!(bucket, error = %e, "cannot reclaim abandoned multipart uploads");
                return;
            }
        };
        let abandoned = self.abandoned_upload_secs;
        match reclaim::reclaim_bucket(op, &api, &self.uploads, bucket, abandoned).await {
            Ok(n) => tracing::debug!(bucket, aborted = n, "reclaimed abandoned multipart uploads"),
            Err(e) => {
                tracing::warn!(bucket, error = %e, "cannot reclaim abandoned multipart uploads")
            }
        }
    }

    /// This node's uploads in progress.
    pub fn uploads(&self) -> &Arc<NodeUploads> {
        &self.uploads
    }

    /// The `[s3]` section.
    pub fn section(&self) -> &S3Section {
        &self.section
    }

    /// The storage of a user at `location`.
    pub fn open(&self, location: &S3Location) -> Result<Arc<dyn Storage>, FsError> {
        let bucket = location
            .bucket
            .as_ref()
            .or(self.section.bucket.as_ref())
            .ok_or_else(|| FsError::Other("no bucket configured".into()))?;
        let op = self.operator(bucket)?;
        let prefix = location.normalized_prefix();
        Ok(Arc::new(S3Fs {
            op,
            bucket: bucket.clone(),
            keys: super::keys::Keys::new(&prefix),
            tuning: Tuning {
                part_bytes: self.section.part_size_mib * 1024 * 1024,
                concurrent: self.section.concurrent_parts,
            },
            uploads: Arc::clone(&self.uploads),
            label: format!("s3://{bucket}/{prefix}"),
        }))
    }

    /// The operator of `bucket`, built on first use.
    pub fn operator(&self, bucket: &str) -> Result<Operator, FsError> {
        let mut operators = match self.operators.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(op) = operators.get(bucket) {
            return Ok(op.clone());
        }
        let op = build_operator(&self.section, bucket, &self.http)
            .map_err(|e| FsError::Other(format!("object store configuration: {e}")))?;
        operators.insert(bucket.to_owned(), op.clone());
        Ok(op)
    }
}

/// The host name and process id: unique among running nodes.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".to_owned());
    format!("{host}-{}", std::process::id())
}

fn build_operator(
    s: &S3Section,
    bucket: &str,
    http: &reqwest::Client,
) -> Result<Operator, opendal::Error> {
    let transport = opendal::HttpTransporter::new(
        opendal_http_transport_reqwest::ReqwestTransport::new(http.clone()),
    );
    let context = opendal::OperationContext::new().with_http_transport(transport);
    let mut builder = opendal::services::S3::default()
        .bucket(bucket)
        .root("/")
        .region(&s.region);
    if let Some(endpoint) = &s.endpoint {
        builder = builder.endpoint(endpoint);
    }
    if !s.path_style {
        builder = builder.enable_virtual_host_style();
    }
    if let (Some(key), Some(secret)) = (&s.access_key_id, &s.secret_access_key) {
        builder = builder.access_key_id(key).secret_access_key(secret);
    }
    if let Some(token) = &s.session_token {
        builder = builder.session_token(token);
    }
    let timeout = Duration::from_secs(s.timeout_secs);
    Ok(Operator::new(builder)?
        .with_context(context)
        .layer(
            TimeoutLayer::new()
                .with_timeout(timeout)
                .with_io_timeout(timeout),
        )
        .layer(RetryLayer::new().with_max_times(RETRIES).with_jitter()))
}

/// Idle connections to the store kept per host, and for how long: enough
/// for the next requests of busy sessions, bounded so a burst of transfers
/// does not leave its connections (and descriptors) open for minutes.
const IDLE_CONNECTIONS_PER_HOST: usize = 8;
const IDLE_CONNECTION_SECS: u64 = 30;

/// The HTTP client every operator shares (one connection pool per server).
fn http_client() -> reqwest::Client {
    let built = reqwest::Client::builder()
        .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_HOST)
        .pool_idle_timeout(std::time::Duration::from_secs(IDLE_CONNECTION_SECS))
        .build();
    built.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "object store HTTP client with default settings");
        reqwest::Client::new()
    })
}
