//! HASH (draft-bryan-ftpext-hash §3): a file's SHA-256 or SHA-512 digest,
//! over the whole file or the octets RANG chose (draft-bryan-ftp-range).
//!
//! The file is read through [`Storage::read`] like a download, so every
//! back-end supports HASH and the root confinement holds. The hash runs in a
//! task of its own, the way a transfer does: the control task keeps
//! answering ABOR (which cancels it), STAT (octets hashed so far) and NOOP.
//! Memory is bounded (one chunk of [`HASH_CHUNK_BYTES`] at a time) and each
//! chunk is hashed on tokio's blocking pool, off the async workers. So that
//! one command cannot keep a disk and a core busy for hours, a file or range
//! larger than `server.hash_max_bytes` is refused up front with 556 (RANG
//! hashes it in parts).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ftps_proto::session::{FsError, HashAlgorithm, HashDigest, HashFailure, HashRequest};
use sha2::Digest;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::storage::Storage;
use crate::transfer::TransferEvent;

/// Octets read and hashed at a time.
pub const HASH_CHUNK_BYTES: usize = 256 * 1024;

/// The running hash function.
enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algorithm: HashAlgorithm) -> Hasher {
        match algorithm {
            HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    fn hex(self) -> String {
        let digest: Vec<u8> = match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Start hashing in a task of its own; its result arrives as
/// [`TransferEvent::Hashed`] on the returned channel. `cancel` stops it
/// (ABOR), `progress` counts the octets hashed (STAT).
pub(crate) fn spawn(
    storage: Arc<dyn Storage>,
    request: HashRequest,
    limit: u64,
    cancel: CancellationToken,
    progress: Arc<AtomicU64>,
) -> mpsc::Receiver<TransferEvent> {
    let (events, receiver) = mpsc::channel(1);
    tokio::spawn(async move {
        let path = String::from_utf8_lossy(&request.path.to_bytes()).into_owned();
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(HashFailure::Aborted),
            r = compute(storage.as_ref(), &request, limit, &progress) => r,
        };
        tracing::info!(
            target: "ftps::transfer",
            verb = "HASH",
            path,
            algorithm = request.algorithm.name(),
            bytes = progress.load(Ordering::Relaxed),
            outcome = ?result.as_ref().map(|d| &d.hex),
            "hash"
        );
        let _ = events.send(TransferEvent::Hashed(result)).await;
    });
    receiver
}

/// The octets `start..end` a request covers in a file of `size` octets.
fn span(range: Option<(u64, u64)>, size: u64) -> Result<(u64, u64), HashFailure> {
    match range {
        None => Ok((0, size)),
        Some((start, _)) if start >= size => Err(HashFailure::RangeBeyondEnd),
        // The RANG end point is inclusive; past the end means up to it.
        Some((start, end)) => Ok((start, end.saturating_add(1).min(size))),
    }
}

/// Hash the requested octets of the file.
async fn compute(
    storage: &dyn Storage,
    request: &HashRequest,
    limit: u64,
    progress: &AtomicU64,
) -> Result<HashDigest, HashFailure> {
    let entry = storage
        .metadata(&request.path)
        .await
        .map_err(HashFailure::Fs)?;
    if entry.kind == ftps_proto::entry::EntryKind::Dir {
        return Err(HashFailure::Fs(FsError::IsADirectory));
    }
    let (start, end) = span(request.range, entry.size)?;
    let wanted = end - start;
    if wanted > limit {
        return Err(HashFailure::TooLarge {
            bytes: wanted,
            limit,
        });
    }
    let mut download = storage
        .read(&request.path, start)
        .await
        .map_err(HashFailure::Fs)?;
    let mut hasher = Hasher::new(request.algorithm);
    let mut done = 0u64;
    let mut spare = Vec::with_capacity(HASH_CHUNK_BYTES);
    while done < wanted {
        let max = usize::try_from(wanted - done)
            .map_or(HASH_CHUNK_BYTES, |left| left.min(HASH_CHUNK_BYTES));
        let chunk = download
            .read_chunk(std::mem::take(&mut spare), max)
            .await
            .map_err(HashFailure::Fs)?;
        if chunk.is_empty() {
            // The file shrank while it was hashed: no digest of octets
            // that are not there.
            return Err(HashFailure::Fs(FsError::Other(
                "the file changed while it was hashed".into(),
            )));
        }
        done += chunk.len() as u64;
        let hashed = tokio::task::spawn_blocking(move || {
            hasher.update(&chunk);
            (hasher, chunk)
        })
        .await
        .map_err(|e| HashFailure::Fs(FsError::Other(e.to_string())))?;
        hasher = hashed.0;
        spare = hashed.1;
        spare.clear();
        progress.store(done, Ordering::Relaxed);
    }
    Ok(HashDigest {
        algorithm: request.algorithm,
        start,
        end,
        hex: hasher.hex(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn range_draft_end_point_is_inclusive_and_clamped_to_the_file() {
        assert_eq!(span(None, 100), Ok((0, 100)));
        assert_eq!(span(Some((10, 19)), 100), Ok((10, 20)));
        assert_eq!(span(Some((90, 500)), 100), Ok((90, 100)));
        assert_eq!(
            span(Some((100, 200)), 100),
            Err(HashFailure::RangeBeyondEnd)
        );
        assert_eq!(span(None, 0), Ok((0, 0)));
    }

    #[test]
    fn digests_are_lower_case_hex_of_fips_180_4() {
        let mut h = Hasher::new(HashAlgorithm::Sha256);
        h.update(b"abc");
        assert_eq!(
            h.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Hasher::new(HashAlgorithm::Sha512);
        h.update(b"abc");
        assert!(h.hex().starts_with("ddaf35a193617aba"));
    }
}
