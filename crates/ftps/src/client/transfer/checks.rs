//! What a transfer checks and keeps beyond its bytes, where the server
//! offers it: `--verify` compares the server's SHA-256 of the file (HASH,
//! draft-bryan-ftpext-hash) with the local file's; an upload gives the
//! remote file the local file's modification time (MFMT,
//! draft-somers-ftp-mfxx). A server without HASH gets one note that the
//! files were not verified; a refused HASH or MFMT for one file is a
//! warning about that file; a digest that differs is an error.

use std::io::Read;
use std::path::{Path, PathBuf};

use ftps_client::Error;
use sha2::{Digest, Sha256};

use crate::client::connect::Conn;
use crate::client::progress::Bar;
use crate::client::{reply_line, Failure};

/// The HASH algorithm `--verify` uses.
pub const ALGORITHM: &str = "SHA-256";

/// Does the server offer what `--verify` needs? If not, say once that the
/// files will not be verified.
pub fn verify_offered(conn: &Conn, bar: &Bar) -> bool {
    let offered = conn.client.features().has_hash(ALGORITHM);
    if !offered {
        bar.eprintln(&format!(
            "warning: --verify: the server offers no HASH {ALGORITHM} (FEAT): files are not \
             verified beyond their size"
        ));
    }
    offered
}

/// The server's SHA-256 of `remote` in hex; `None` (after a warning) when
/// the server refuses to hash this file.
pub async fn remote_sha256(
    conn: &mut Conn,
    remote: &[u8],
    bar: &Bar,
) -> Result<Option<String>, Failure> {
    match conn.client.hash(remote, ALGORITHM).await {
        Ok(hash) => Ok(Some(hash.hex)),
        Err(Error::UnexpectedReply { reply, .. }) => {
            bar.eprintln(&format!(
                "warning: {}: not verified: the server refused HASH: {}",
                String::from_utf8_lossy(remote),
                reply_line(&reply)
            ));
            Ok(None)
        }
        Err(e) => Err(Failure::from(e).context("HASH")),
    }
}

/// SHA-256 of a local file in hex, read on the blocking pool.
pub async fn local_sha256(path: &Path) -> Result<String, Failure> {
    let owned = path.to_path_buf();
    let job = tokio::task::spawn_blocking(move || file_sha256(&owned));
    match job.await {
        Ok(result) => result.map_err(|e| Failure::new(format!("{}: {e}", path.display()))),
        Err(e) => Err(Failure::new(format!("hashing {}: {e}", path.display()))),
    }
}

/// SHA-256 of the file at `path`, hex.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 of bytes in memory, hex.
pub fn bytes_sha256(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The local copy `local` (its SHA-256 `here`) against the server's
/// digest `there`: an error naming both when they differ.
pub fn compare(local: &Path, here: &str, there: &str) -> Result<(), Failure> {
    if here.eq_ignore_ascii_case(there) {
        return Ok(());
    }
    Err(Failure::new(format!(
        "{}: SHA-256 differs from the server's: here {here}, on the server {there}",
        local.display()
    )))
}

/// After an upload of `local` to `remote`: `--verify` (the server's digest
/// against the local file's) when `verify`; then the local modification
/// time `mtime` for the remote file, where the server has MFMT.
pub async fn after_upload(
    conn: &mut Conn,
    remote: &[u8],
    local: Option<&PathBuf>,
    mtime: Option<i64>,
    verify: bool,
    bar: &Bar,
) -> Result<(), Failure> {
    if let (true, Some(local)) = (verify, local) {
        if let Some(there) = remote_sha256(conn, remote, bar).await? {
            let here = local_sha256(local).await?;
            compare(local, &here, &there).map_err(|f| {
                f.with_hint("the upload was changed on the way or on the server: upload it again")
            })?;
        }
    }
    if let (Some(secs), true) = (mtime, conn.client.features().mfmt) {
        if let Err(e) = conn.client.set_modified(remote, secs).await {
            bar.eprintln(&format!(
                "warning: {}: modification time not kept: {}",
                String::from_utf8_lossy(remote),
                Failure::from(e).message()
            ));
        }
    }
    Ok(())
}

/// A local file's modification time in whole Unix seconds.
pub fn mtime_of(meta: &std::fs::Metadata) -> Option<i64> {
    let modified = meta.modified().ok()?;
    match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok(),
        Err(e) => i64::try_from(e.duration().as_secs()).ok().map(|s| -s),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_file_and_of_bytes_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(file_sha256(&path).unwrap(), expected);
        assert_eq!(bytes_sha256(b"abc"), expected);
        assert!(compare(&path, expected, &expected.to_ascii_uppercase()).is_ok());
        let differs = compare(&path, expected, "00").unwrap_err();
        assert!(
            differs.message().contains("differs"),
            "{}",
            differs.message()
        );
    }
}
