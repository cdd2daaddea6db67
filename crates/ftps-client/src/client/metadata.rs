//! One file's facts on the control connection: MLST (RFC 3659 §7.2, the
//! entry line inside the 250 reply), MFMT to set its modification time
//! (draft-somers-ftp-mfxx §3: `MFMT YYYYMMDDHHMMSS path` → `213
//! Modify=...; path`) and HASH for its digest (draft-bryan-ftpext-hash
//! §3: `OPTS HASH SHA-256` → `200`, `HASH path` → `213 SHA-256 0-N
//! <hex> path`). Each is used only where FEAT lists it.

use ftps_proto::entry::Entry;
use ftps_proto::timefmt::format_time_val;

use super::Client;
use crate::Error;

/// A file's digest as the server's HASH reply gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    /// The algorithm, as the server names it (`SHA-256`).
    pub algorithm: String,
    /// The first byte hashed.
    pub start: u64,
    /// The end of the range hashed, as the server writes it.
    pub end: u64,
    /// The digest in lower-case hex.
    pub hex: String,
}

/// `SHA-256 0-1234 9f86...08 path` (the text of a 213 reply to HASH);
/// `None` when it is not in that form or the digest is not hex.
pub fn parse_hash_reply(text: &str) -> Option<FileHash> {
    let mut words = text.trim_start().splitn(4, ' ');
    let algorithm = words.next()?.to_string();
    let (start, end) = words.next()?.split_once('-')?;
    let hex = words.next()?;
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(FileHash {
        algorithm,
        start: start.parse().ok()?,
        end: end.parse().ok()?,
        hex: hex.to_ascii_lowercase(),
    })
}

/// `SHA-256` and `sha256` are the same algorithm.
fn same_algorithm(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect()
    };
    norm(a) == norm(b)
}

impl Client {
    /// MLST: the facts of one file or directory (RFC 3659 §7.2); the name
    /// is the server's (often the full path).
    pub async fn mlst(&mut self, path: &[u8]) -> Result<Entry, Error> {
        if !self.features().mlst {
            return Err(Error::Unsupported("MLST"));
        }
        let reply = self.control.command(&Self::with_arg("MLST", path)).await?;
        if reply.code != 250 {
            return Err(self.unexpected("MLST", "250", reply));
        }
        // The entry is the line that starts with a space (§7.2).
        let line = reply
            .lines
            .iter()
            .skip(1)
            .find_map(|l| l.strip_prefix(b" "))
            .ok_or_else(|| Error::Protocol("MLST reply without an entry line".into()))?;
        ftps_proto::facts::parse_entry(line)
            .map_err(|e| Error::Protocol(format!("MLST entry line: {e}")))
    }

    /// MFMT: set the modification time of a remote file (Unix seconds, UTC),
    /// where FEAT lists MFMT.
    pub async fn set_modified(&mut self, path: &[u8], unix_secs: i64) -> Result<(), Error> {
        if !self.features().mfmt {
            return Err(Error::Unsupported("MFMT"));
        }
        let mut line = format!("MFMT {} ", format_time_val(unix_secs)).into_bytes();
        line.extend_from_slice(path);
        let reply = self.control.command(&line).await?;
        if reply.code != 213 {
            return Err(self.unexpected("MFMT", "213", reply));
        }
        Ok(())
    }

    /// HASH with `algorithm` (selected first with OPTS HASH when another
    /// one is), where FEAT lists it: the digest of the whole remote file.
    pub async fn hash(&mut self, path: &[u8], algorithm: &'static str) -> Result<FileHash, Error> {
        if !self.features().has_hash(algorithm) {
            return Err(Error::Unsupported("HASH"));
        }
        let selected = self.features().hash_selected.as_deref();
        if !selected.is_some_and(|s| same_algorithm(s, algorithm)) {
            let reply = self
                .control
                .command(format!("OPTS HASH {algorithm}").as_bytes())
                .await?;
            if reply.code != 200 {
                return Err(self.unexpected("OPTS HASH", "200", reply));
            }
            self.features.hash_selected = Some(algorithm.to_string());
        }
        let reply = self.control.command(&Self::with_arg("HASH", path)).await?;
        if reply.code != 213 {
            return Err(self.unexpected("HASH", "213", reply));
        }
        // The digest is on the last line; ProFTPD says "213-Computing
        // SHA-256 digest" first.
        let digest = reply
            .lines
            .iter()
            .rev()
            .find_map(|line| parse_hash_reply(&String::from_utf8_lossy(line)));
        match digest {
            Some(hash) if same_algorithm(&hash.algorithm, algorithm) => Ok(hash),
            _ => Err(Error::Protocol(format!(
                "HASH reply is not a {algorithm} digest: {}",
                reply.text()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_bryan_ftpext_hash_s3_reply_is_algorithm_range_digest_path() {
        let hash = parse_hash_reply("SHA-256 0-49 9F86D081884C7D659A2FEAA0C55AD015 dir/my file")
            .unwrap_or_else(|| unreachable!());
        assert_eq!(hash.algorithm, "SHA-256");
        assert_eq!((hash.start, hash.end), (0, 49));
        assert_eq!(hash.hex, "9f86d081884c7d659a2feaa0c55ad015");
        assert_eq!(parse_hash_reply("SHA-256 0-49 xyz f"), None);
        assert_eq!(parse_hash_reply("SHA-256 49 abcd f"), None);
        assert_eq!(parse_hash_reply("File not found"), None);
    }

    #[test]
    fn algorithm_names_compare_without_dashes_and_case() {
        assert!(same_algorithm("SHA-256", "sha256"));
        assert!(!same_algorithm("SHA-256", "SHA-512"));
    }
}
