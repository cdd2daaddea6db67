//! Downloads: RETR (RFC 959 §4.1.3) in TYPE I or A, from an offset with
//! REST STREAM (RFC 3659 §5), handed out as a [`RetrStream`] that knows the
//! size the 150 reply announced, so that [`RetrStream::finish`] can tell a
//! truncated download (no TLS close_notify, or short of that size) from a
//! complete one.

use ftps_proto::command::TransferType;
use ftps_proto::session::DataProtection;

use super::Client;
use crate::data::RetrStream;
use crate::Error;

impl Client {
    /// RETR from `offset` (REST STREAM when non-zero): read the returned
    /// stream, then call its `finish()`.
    pub async fn retr(&mut self, path: &[u8], offset: u64) -> Result<RetrStream<'_>, Error> {
        self.set_type(TransferType::Image).await?;
        self.retr_typed(path, offset).await
    }

    /// RETR in TYPE A (line endings converted by the server to CRLF on the wire;
    /// the bytes read are as sent).
    pub async fn retr_ascii(&mut self, path: &[u8]) -> Result<RetrStream<'_>, Error> {
        self.set_type(TransferType::Ascii).await?;
        self.retr_typed(path, 0).await
    }

    /// RETR in the current TYPE.
    async fn retr_typed(&mut self, path: &[u8], offset: u64) -> Result<RetrStream<'_>, Error> {
        let protected = self.protection == DataProtection::Private;
        let rest = (offset > 0).then_some(offset);
        let (data, reply) = self
            .data_command(&Self::with_arg("RETR", path), "RETR", rest, protected)
            .await?;
        let announced = if self.transfer_type == Some(TransferType::Image) {
            size_from_150(&reply.text())
        } else {
            None
        };
        let (expected, expected_whole) = expected_sizes(announced, offset);
        let idle_limit = self.options.idle_data_timeout;
        Ok(RetrStream {
            client: self,
            data,
            received: 0,
            expected,
            expected_alternative: expected_whole,
            eof: false,
            idle: Box::pin(tokio::time::sleep(idle_limit)),
            idle_limit,
        })
    }
}

/// The byte counts a download from `offset` may end with, given the size
/// its 150 reply announced: that size, and after REST also that size minus
/// the offset. Servers differ on what the 150 size means after REST: the
/// bytes left (this project's server) or the whole file (vsftpd).
fn expected_sizes(announced: Option<u64>, offset: u64) -> (Option<u64>, Option<u64>) {
    match announced {
        Some(n) if offset > 0 => (Some(n), n.checked_sub(offset)),
        other => (other, None),
    }
}

/// "150 Opening ... (1234 bytes)": the size some servers announce.
pub fn size_from_150(text: &str) -> Option<u64> {
    let open = text.rfind('(')?;
    let rest = &text[open + 1..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let after = rest[digits.len()..].trim_start();
    if !digits.is_empty() && after.to_ascii_lowercase().starts_with("byte") {
        digits.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_in_150_replies() {
        assert_eq!(
            size_from_150("Opening BINARY mode data connection for f (1234 bytes)."),
            Some(1234)
        );
        assert_eq!(size_from_150("Opening data connection (5 bytes)."), Some(5));
        assert_eq!(size_from_150("Opening data connection."), None);
        assert_eq!(size_from_150("Here comes the directory listing."), None);
    }

    #[test]
    fn announced_size_is_expected_from_the_start() {
        assert_eq!(expected_sizes(Some(100), 0), (Some(100), None));
        assert_eq!(expected_sizes(None, 0), (None, None));
    }

    #[test]
    fn after_rest_the_announced_size_may_count_the_whole_file_or_the_rest() {
        assert_eq!(expected_sizes(Some(100), 40), (Some(100), Some(60)));
        assert_eq!(expected_sizes(Some(30), 40), (Some(30), None));
        assert_eq!(expected_sizes(None, 40), (None, None));
    }
}
