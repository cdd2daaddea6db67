//! Uploads: STOR and APPE (RFC 959 §4.1.3), a resumed STOR after REST
//! (RFC 3659 §5) that becomes APPE where the server refuses it, and the end
//! of the data connection with a TLS close_notify (RFC 4217 §7). A data
//! connection set up with a full TLS handshake is watched briefly for the
//! server closing it at once — a server that requires the control
//! connection's session to be resumed (RFC 4217 §10.2) — and then set up
//! again on a renewed control connection.

use std::time::Duration;

use ftps_proto::command::TransferType;
use ftps_proto::session::DataProtection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tracing::debug;

use super::Client;
use crate::control::{tls_error, Stream};
use crate::Error;

/// How an upload treats the remote file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// STOR: create or replace.
    Replace,
    /// APPE: append.
    Append,
    /// REST n + STOR: resume at byte n (the remote file holds exactly the
    /// first n bytes); where the server refuses restarted uploads, APPE.
    Resume(u64),
}

/// How long an upload waits to see whether the server refused its full
/// TLS handshake (it then closes the data connection at once).
const REUSE_PROBE: Duration = Duration::from_millis(300);

/// How long an upload waits, after its close_notify, for the server's
/// session ticket and close_notify.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The command an upload sends: its line, its verb, the REST offset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreCommand {
    line: Vec<u8>,
    verb: &'static str,
    rest: Option<u64>,
}

impl StoreCommand {
    /// STOR, APPE, or REST n + STOR (a plain STOR for n = 0).
    fn new(path: &[u8], mode: StoreMode) -> StoreCommand {
        let (verb, rest) = match mode {
            StoreMode::Replace | StoreMode::Resume(0) => ("STOR", None),
            StoreMode::Append => ("APPE", None),
            StoreMode::Resume(n) => ("STOR", Some(n)),
        };
        StoreCommand {
            line: Client::with_arg(verb, path),
            verb,
            rest,
        }
    }
}

impl Client {
    /// Upload from `reader`; returns the bytes sent. The data connection ends
    /// with a TLS close_notify, and the client reads to the server's own
    /// close (collecting the fresh session ticket it may send).
    pub async fn stor<R: AsyncRead + Unpin>(
        &mut self,
        path: &[u8],
        reader: &mut R,
        mode: StoreMode,
        ascii: bool,
    ) -> Result<u64, Error> {
        self.set_type(if ascii {
            TransferType::Ascii
        } else {
            TransferType::Image
        })
        .await?;
        let protected = self.protection == DataProtection::Private;
        let command = StoreCommand::new(path, mode);
        let data = self.open_upload(path, &command, protected).await?;
        let mut data = self.confirm_reuse(data, &command, protected).await?;
        let sent = send_all(reader, &mut data, self.options.idle_data_timeout).await;
        drop(data);
        let reply = self.control.read_reply().await?;
        let sent = sent?;
        if !matches!(reply.code, 226 | 250) {
            return Err(self.unexpected(command.verb, "226", reply));
        }
        Ok(sent)
    }

    /// Send the upload command and set up its data connection.
    async fn open_upload(
        &mut self,
        path: &[u8],
        command: &StoreCommand,
        protected: bool,
    ) -> Result<Stream, Error> {
        let StoreCommand { line, verb, rest } = command;
        match self.data_command(line, verb, *rest, protected).await {
            // Some servers refuse restarted uploads (ProFTPD without
            // AllowStoreRestart): the remote file holds exactly the first n
            // bytes, so appending the rest is the same upload.
            Err(Error::UnexpectedReply { reply, .. })
                if rest.is_some() && matches!(reply.code, 450..=559) =>
            {
                debug!(
                    code = reply.code,
                    "restarted STOR refused; appending instead"
                );
                let line = Self::with_arg("APPE", path);
                let (data, _) = self.data_command(&line, "APPE", None, protected).await?;
                Ok(data)
            }
            other => other.map(|(data, _)| data),
        }
    }

    /// A full handshake where the server may require session reuse:
    /// find out before sending a byte whether it refused (it closes the
    /// data connection at once) — then renew the control connection and
    /// try once more; an accepting server just waits for the data.
    async fn confirm_reuse(
        &mut self,
        mut data: Stream,
        command: &StoreCommand,
        protected: bool,
    ) -> Result<Stream, Error> {
        if !protected || self.last_data_resumed || self.reuse_required == Some(false) {
            return Ok(data);
        }
        if !closed_at_once(&mut data).await {
            self.reuse_required = Some(false);
            return Ok(data);
        }
        drop(data);
        let reply = self.control.read_reply().await?;
        self.reuse_required = Some(true);
        if reply.is_completion() {
            return Err(Error::Protocol(
                "the server closed the data connection".into(),
            ));
        }
        self.reconnect().await?;
        let StoreCommand { line, verb, rest } = command;
        let (again, _) = self.data_command(line, verb, *rest, protected).await?;
        Ok(again)
    }
}

/// Does the server close the data connection within [`REUSE_PROBE`]?
async fn closed_at_once(data: &mut Stream) -> bool {
    let mut probe = [0u8; 1];
    matches!(
        tokio::time::timeout(REUSE_PROBE, data.read(&mut probe)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// Copy `reader` to the data connection, then close it ([`close_upload`]);
/// the bytes sent.
async fn send_all<R: AsyncRead + Unpin>(
    reader: &mut R,
    data: &mut Stream,
    idle: Duration,
) -> Result<u64, Error> {
    let mut sent = 0u64;
    // Large reads: a file reader hands each read to tokio's blocking pool.
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        match tokio::time::timeout(idle, data.write_all(chunk)).await {
            Ok(r) => r.map_err(tls_error)?,
            Err(_) => return Err(Error::Timeout("writing the data connection")),
        }
        sent += n as u64;
    }
    close_upload(data, idle).await?;
    Ok(sent)
}

/// The end of an upload: close_notify, then FIN; then read until the
/// server closes (its session ticket and close_notify).
async fn close_upload(data: &mut Stream, idle: Duration) -> Result<(), Error> {
    match tokio::time::timeout(idle, data.shutdown()).await {
        Ok(r) => r.map_err(tls_error)?,
        Err(_) => return Err(Error::Timeout("closing the data connection")),
    }
    let drain = async {
        let mut sink = [0u8; 1024];
        while matches!(data.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(line: &[u8], verb: &'static str, rest: Option<u64>) -> StoreCommand {
        StoreCommand {
            line: line.to_vec(),
            verb,
            rest,
        }
    }

    #[test]
    fn replace_is_a_plain_stor() {
        let expected = command(b"STOR f", "STOR", None);
        assert_eq!(StoreCommand::new(b"f", StoreMode::Replace), expected);
    }

    #[test]
    fn append_is_appe() {
        let expected = command(b"APPE f", "APPE", None);
        assert_eq!(StoreCommand::new(b"f", StoreMode::Append), expected);
    }

    #[test]
    fn resume_sends_rest_before_stor() {
        let expected = command(b"STOR f", "STOR", Some(7));
        assert_eq!(StoreCommand::new(b"f", StoreMode::Resume(7)), expected);
    }

    #[test]
    fn resume_at_zero_is_a_plain_stor() {
        let expected = command(b"STOR f", "STOR", None);
        assert_eq!(StoreCommand::new(b"f", StoreMode::Resume(0)), expected);
    }
}
