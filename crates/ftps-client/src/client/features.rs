//! What the server announces it can do: the FEAT reply (RFC 2389 §3) read
//! into [`Features`] — MLST (RFC 3659 §7), REST STREAM (RFC 3659 §5), SIZE
//! (RFC 3659 §4), MDTM (RFC 3659 §3), UTF8 (RFC 2640), CCC (RFC 4217 §5,
//! §6), MFMT (draft-somers-ftp-mfxx §3) and HASH with its algorithms
//! (draft-bryan-ftpext-hash §3.1: `HASH SHA-1;SHA-256*;MD5`, the selected
//! one starred).

use ftps_proto::reply::Reply;

use super::Client;
use crate::Error;

/// Features from FEAT (RFC 2389).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// The raw feature lines.
    pub lines: Vec<String>,
    /// MLST/MLSD (RFC 3659 §7).
    pub mlst: bool,
    /// REST STREAM (RFC 3659 §5).
    pub rest_stream: bool,
    /// SIZE.
    pub size: bool,
    /// MDTM.
    pub mdtm: bool,
    /// UTF8 (RFC 2640).
    pub utf8: bool,
    /// CCC (RFC 4217 §5).
    pub ccc: bool,
    /// MFMT: set a file's modification time (draft-somers-ftp-mfxx).
    pub mfmt: bool,
    /// HASH algorithms, upper case as listed (draft-bryan-ftpext-hash);
    /// empty without HASH.
    pub hash: Vec<String>,
    /// The HASH algorithm selected now (starred in FEAT, or set with OPTS
    /// HASH).
    pub hash_selected: Option<String>,
}

impl Features {
    /// The features of a 211 reply to FEAT.
    pub(super) fn parse(reply: &Reply) -> Features {
        let lines: Vec<String> = reply
            .lines
            .iter()
            .skip(1)
            .map(|l| String::from_utf8_lossy(l).trim().to_string())
            .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("END"))
            .collect();
        let has = |name: &str| {
            lines.iter().any(|l| {
                let upper = l.to_ascii_uppercase();
                upper == name || upper.starts_with(&format!("{name} "))
            })
        };
        let (hash, hash_selected) = hash_algorithms(&lines);
        Features {
            mfmt: has("MFMT"),
            hash,
            hash_selected,
            mlst: has("MLST"),
            rest_stream: has("REST STREAM") || has("REST"),
            size: has("SIZE"),
            mdtm: has("MDTM"),
            utf8: has("UTF8"),
            ccc: has("CCC"),
            lines,
        }
    }
}

/// The algorithms of a `HASH SHA-1;SHA-256*;MD5` feature line, and the
/// starred (selected) one.
fn hash_algorithms(lines: &[String]) -> (Vec<String>, Option<String>) {
    let Some(list) = lines.iter().find_map(|l| {
        let (name, rest) = l.split_once(' ')?;
        name.eq_ignore_ascii_case("HASH").then_some(rest)
    }) else {
        return (Vec::new(), None);
    };
    let mut selected = None;
    let mut all = Vec::new();
    for item in list.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let name = item.trim_end_matches('*').to_ascii_uppercase();
        if item.ends_with('*') {
            selected = Some(name.clone());
        }
        all.push(name);
    }
    (all, selected)
}

impl Features {
    /// Does the server offer HASH with this algorithm (e.g. `SHA-256`)?
    pub fn has_hash(&self, algorithm: &str) -> bool {
        self.hash.iter().any(|a| a.eq_ignore_ascii_case(algorithm))
    }
}

impl Client {
    /// The features the server announced.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// FEAT again.
    pub async fn feat(&mut self) -> Result<Features, Error> {
        let reply = self.control.command(b"FEAT").await?;
        if reply.code != 211 {
            return Err(self.unexpected("FEAT", "211", reply));
        }
        self.features = Features::parse(&reply);
        Ok(self.features.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn feat_parsing() {
        let reply = Reply::multi(
            211,
            vec![
                b"Features:".to_vec(),
                b" MLST type*;size*;".to_vec(),
                b" REST STREAM".to_vec(),
                b" SIZE".to_vec(),
                b" UTF8".to_vec(),
                b"End".to_vec(),
            ],
        );
        let f = Features::parse(&reply);
        assert!(f.mlst && f.rest_stream && f.size && f.utf8 && !f.ccc && !f.mdtm);
        assert!(!f.mfmt && f.hash.is_empty() && !f.has_hash("SHA-256"));
    }

    #[test]
    fn draft_bryan_ftpext_hash_s3_1_feat_lists_algorithms_with_the_selected_starred() {
        let reply = Reply::multi(
            211,
            vec![
                b"Features:".to_vec(),
                b" HASH SHA-1;sha-256*;SHA-512;MD5".to_vec(),
                b" MFMT".to_vec(),
                b"End".to_vec(),
            ],
        );
        let f = Features::parse(&reply);
        assert_eq!(f.hash, ["SHA-1", "SHA-256", "SHA-512", "MD5"]);
        assert_eq!(f.hash_selected.as_deref(), Some("SHA-256"));
        assert!(f.has_hash("sha-256") && f.mfmt);
    }
}
