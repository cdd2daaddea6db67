//! Commands answered on the control connection alone: PWD with its quoting
//! undone (RFC 959 §4.1.3, Appendix II), CWD (§4.1.1), MKD, RMD, DELE and
//! RNFR/RNTO (§4.1.3), SIZE (RFC 3659 §4), MDTM (RFC 3659 §3) and any
//! command quoted as it is.

use ftps_proto::command::TransferType;
use ftps_proto::reply::Reply;

use super::Client;
use crate::Error;

impl Client {
    /// Any command; the reply is returned whatever its code.
    pub async fn quote(&mut self, line: &str) -> Result<Reply, Error> {
        self.control.command(line.as_bytes()).await
    }

    /// PWD: the current directory (RFC 959 Appendix II quoting undone).
    pub async fn pwd(&mut self) -> Result<Vec<u8>, Error> {
        let reply = self.control.command(b"PWD").await?;
        if reply.code != 257 {
            return Err(self.unexpected("PWD", "257", reply));
        }
        let line = reply.lines.first().cloned().unwrap_or_default();
        quoted_path(&line).ok_or_else(|| Error::Protocol("PWD reply without a quoted path".into()))
    }

    /// CWD.
    pub async fn cwd(&mut self, path: &[u8]) -> Result<(), Error> {
        self.expect_ok("CWD", &Self::with_arg("CWD", path))
            .await
            .map(|_| ())
    }

    /// MKD.
    pub async fn mkdir(&mut self, path: &[u8]) -> Result<(), Error> {
        self.expect_ok("MKD", &Self::with_arg("MKD", path))
            .await
            .map(|_| ())
    }

    /// RMD.
    pub async fn rmdir(&mut self, path: &[u8]) -> Result<(), Error> {
        self.expect_ok("RMD", &Self::with_arg("RMD", path))
            .await
            .map(|_| ())
    }

    /// DELE.
    pub async fn delete(&mut self, path: &[u8]) -> Result<(), Error> {
        self.expect_ok("DELE", &Self::with_arg("DELE", path))
            .await
            .map(|_| ())
    }

    /// RNFR + RNTO.
    pub async fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), Error> {
        let reply = self.control.command(&Self::with_arg("RNFR", from)).await?;
        if reply.code != 350 {
            return Err(self.unexpected("RNFR", "350", reply));
        }
        self.expect_ok("RNTO", &Self::with_arg("RNTO", to))
            .await
            .map(|_| ())
    }

    /// SIZE (in TYPE I: the number of bytes RETR would send).
    pub async fn size(&mut self, path: &[u8]) -> Result<u64, Error> {
        self.set_type(TransferType::Image).await?;
        let reply = self.control.command(&Self::with_arg("SIZE", path)).await?;
        if reply.code != 213 {
            return Err(self.unexpected("SIZE", "213", reply));
        }
        reply
            .text()
            .trim()
            .parse()
            .map_err(|_| Error::Protocol(format!("bad SIZE reply {:?}", reply.text())))
    }

    /// MDTM: modification time, Unix seconds (UTC).
    pub async fn mdtm(&mut self, path: &[u8]) -> Result<i64, Error> {
        let reply = self.control.command(&Self::with_arg("MDTM", path)).await?;
        if reply.code != 213 {
            return Err(self.unexpected("MDTM", "213", reply));
        }
        ftps_proto::timefmt::parse_time_val(reply.text().trim())
            .ok_or_else(|| Error::Protocol(format!("bad MDTM reply {:?}", reply.text())))
    }
}

/// The path in a 257 reply line: from the first double quote to the next
/// single one, a doubled quote standing for one (RFC 959 Appendix II). An
/// unterminated path runs to the end of the line; `None` without a quote.
fn quoted_path(line: &[u8]) -> Option<Vec<u8>> {
    let start = line.iter().position(|b| *b == b'"')?;
    let mut out = Vec::new();
    let mut rest = line.get(start + 1..).unwrap_or_default().iter();
    while let Some(&b) = rest.next() {
        if b == b'"' {
            if rest.as_slice().first() == Some(&b'"') {
                out.push(b'"');
                rest.next();
                continue;
            }
            break;
        }
        out.push(b);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pwd_path_is_read_between_the_quotes() {
        assert_eq!(
            quoted_path(b"257 \"/home/a b\" is the current directory"),
            Some(b"/home/a b".to_vec())
        );
    }

    #[test]
    fn pwd_doubled_quote_stands_for_one() {
        assert_eq!(
            quoted_path(b"257 \"/say \"\"hi\"\"\" created"),
            Some(b"/say \"hi\"".to_vec())
        );
    }

    #[test]
    fn pwd_unterminated_path_runs_to_the_end() {
        assert_eq!(quoted_path(b"257 \"/tmp"), Some(b"/tmp".to_vec()));
    }

    #[test]
    fn pwd_reply_without_quote_has_no_path() {
        assert_eq!(quoted_path(b"257 /tmp"), None);
    }
}
