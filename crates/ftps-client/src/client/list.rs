//! Directory listings: MLSD (RFC 3659 §7) when the server announces MLST,
//! else LIST (RFC 959 §4.1.3) parsed by [`crate::listing`], and NLST; read
//! whole from the data connection, under their own PROT level when one is
//! set for listings (RFC 4217 §10.4). A listing none of whose lines could
//! be read is an error, never an empty directory.

use ftps_proto::entry::Entry;
use ftps_proto::session::DataProtection;
use tokio::io::AsyncReadExt;
use tracing::warn;

use super::Client;
use crate::control::{tls_error, Stream};
use crate::listing::{self, Listing};
use crate::Error;

impl Client {
    /// Directory entries: MLSD when the server has MLST, else LIST parsed
    /// (Unix and DOS formats). The same normalized entries either way.
    /// Lines that are no entry are logged as a warning; use
    /// [`Client::listing`] to see them.
    pub async fn list(&mut self, path: &[u8]) -> Result<Vec<Entry>, Error> {
        let listing = self.listing(path).await?;
        if let Some(first) = listing.unreadable.first() {
            warn!(
                lines = listing.unreadable_count,
                first = %String::from_utf8_lossy(first),
                "listing lines that are no entry were left out"
            );
        }
        Ok(listing.entries)
    }

    /// [`Client::list`] with the lines that could not be read. A listing
    /// whose every line is unreadable is an error
    /// ([`Error::UnreadableListing`]), never an empty directory.
    pub async fn listing(&mut self, path: &[u8]) -> Result<Listing, Error> {
        let verb = if self.features.mlst { "MLSD" } else { "LIST" };
        self.listing_by(path, verb).await
    }

    /// [`Client::listing`] with LIST, whatever FEAT says: for a path that
    /// may name a file (LIST then shows that one file on most servers).
    pub async fn listing_by_list(&mut self, path: &[u8]) -> Result<Listing, Error> {
        self.listing_by(path, "LIST").await
    }

    async fn listing_by(&mut self, path: &[u8], verb: &'static str) -> Result<Listing, Error> {
        let protected = self.listing_prot().await?;
        let line = Self::listing_line(verb, path);
        let (data, _) = self.data_command(&line, verb, None, protected).await?;
        let raw = self.read_all_data(data, verb).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let parsed = if verb == "MLSD" {
            listing::parse_mlsd(&raw)
        } else {
            listing::parse_list(&raw, now)
        };
        self.restore_prot().await?;
        match parsed.unreadable.first() {
            Some(first) if parsed.entries.is_empty() => Err(Error::UnreadableListing {
                verb,
                line: first.clone(),
                lines: parsed.unreadable_count,
            }),
            _ => Ok(parsed),
        }
    }

    /// NLST: names only.
    pub async fn nlst(&mut self, path: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        let protected = self.listing_prot().await?;
        let line = Self::listing_line("NLST", path);
        let (data, _) = self.data_command(&line, "NLST", None, protected).await?;
        let raw = self.read_all_data(data, "NLST").await?;
        self.restore_prot().await?;
        Ok(raw
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// The listing command: the verb alone for the current directory.
    fn listing_line(verb: &str, path: &[u8]) -> Vec<u8> {
        if path.is_empty() {
            verb.as_bytes().to_vec()
        } else {
            Self::with_arg(verb, path)
        }
    }

    /// Listing protection for this call (RFC 4217 §10.4: listings may differ).
    async fn listing_prot(&mut self) -> Result<bool, Error> {
        if let Some(level) = self.options.listing_protection {
            self.set_prot(level).await?;
        }
        Ok(self.protection == DataProtection::Private)
    }

    /// Back to the PROT level of file transfers after a listing.
    async fn restore_prot(&mut self) -> Result<(), Error> {
        if self.options.listing_protection.is_some() {
            let level = self.options.login.protection;
            self.set_prot(level).await?;
        }
        Ok(())
    }

    /// Read the data connection to its end, then the 226.
    async fn read_all_data(&mut self, mut data: Stream, verb: &str) -> Result<Vec<u8>, Error> {
        let mut raw = Vec::new();
        let idle = self.options.idle_data_timeout;
        loop {
            let mut buf = [0u8; 16 * 1024];
            match tokio::time::timeout(idle, data.read(&mut buf)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => raw.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Ok(Err(e)) => {
                    let _ = self.control.read_reply().await;
                    return Err(match tls_error(e) {
                        Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            Error::Truncated {
                                received: raw.len() as u64,
                                expected: None,
                            }
                        }
                        other => other,
                    });
                }
                Err(_) => return Err(Error::Timeout("reading the data connection")),
            }
        }
        drop(data);
        let reply = self.control.read_reply().await?;
        if !matches!(reply.code, 226 | 250) {
            return Err(self.unexpected(verb, "226", reply));
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_of_the_current_directory_sends_the_verb_alone() {
        assert_eq!(Client::listing_line("MLSD", b""), b"MLSD");
        assert_eq!(Client::listing_line("NLST", b"a b"), b"NLST a b");
    }
}
