//! What the server announces it can do: the FEAT reply (RFC 2389 §3) read
//! into [`Features`] — MLST (RFC 3659 §7), REST STREAM (RFC 3659 §5), SIZE
//! (RFC 3659 §4), MDTM (RFC 3659 §3), UTF8 (RFC 2640) and CCC (RFC 4217 §5,
//! §6).

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
        Features {
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
    }
}
