//! Commands and replies on the control connection of the test client:
//! sending (byte for byte: [`Client::send_raw`]; one line:
//! [`Client::send`], [`Client::cmd`]), reading what comes next ([`Next`],
//! [`Client::next_within`], [`Client::read_reply`]), checked replies
//! ([`Client::expect`], [`Client::expect_reply`], [`Client::expect_closed`])
//! and tables of command and expected reply code
//! ([`Client::expect_replies`]). Every command and reply goes into the
//! dialogue that failure messages show, the password of `PASS` masked.

use std::io;
use std::time::Duration;

use ftps_proto::reply::{Reply, ReplyError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Client, REPLY_TIMEOUT};

/// A command line as the dialogue and failure messages show it: the
/// password of `PASS` masked, long lines shortened.
fn shown(line: &[u8]) -> String {
    if line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"PASS ") {
        "PASS ****".to_string()
    } else if line.len() > 200 {
        format!(
            "{}... ({} bytes)",
            String::from_utf8_lossy(&line[..60]),
            line.len()
        )
    } else {
        String::from_utf8_lossy(line).escape_debug().to_string()
    }
}

/// What came next on the control connection.
#[derive(Debug)]
pub enum Next {
    /// One complete reply.
    Reply(Reply),
    /// The server closed the connection (TCP FIN or TLS close_notify).
    Eof,
    /// A read error (reset, TLS error, ...).
    Error(io::Error),
    /// Nothing complete arrived in time.
    Timeout,
    /// The bytes were not an FTP reply.
    Malformed(ReplyError),
}

impl Client {
    /// Send bytes as they are (no CRLF added).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.log.push(format!(
            "C> {}",
            String::from_utf8_lossy(bytes).escape_debug()
        ));
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(REPLY_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("send failed: {e}\n{}", self.dialogue()),
            Err(_) => panic!("send timed out\n{}", self.dialogue()),
        }
    }

    /// Send bytes, reporting failure instead of panicking.
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.log.push(format!(
            "C> {}",
            String::from_utf8_lossy(bytes).escape_debug()
        ));
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        tokio::time::timeout(REPLY_TIMEOUT, write)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "send timed out")))
    }

    /// Send one command line (CRLF appended).
    pub async fn send(&mut self, line: &str) {
        self.send_line_bytes(line.as_bytes()).await;
    }

    /// Send one command line given as bytes (CRLF appended).
    pub async fn send_line_bytes(&mut self, line: &[u8]) {
        let mut bytes = line.to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.log.push(format!("C> {}", shown(line)));
        let write = async {
            self.stream.write_all(&bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(REPLY_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("send failed: {e}\n{}", self.dialogue()),
            Err(_) => panic!("send timed out\n{}", self.dialogue()),
        }
    }

    /// What comes next: a reply, EOF, an error or nothing within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = [0u8; 8192];
        loop {
            match self.parser.next_reply() {
                Ok(Some(reply)) => {
                    for (i, line) in reply.lines.iter().enumerate() {
                        let sep = if i + 1 == reply.lines.len() { ' ' } else { '-' };
                        self.log.push(format!(
                            "S< {}{sep}{}",
                            reply.code,
                            String::from_utf8_lossy(line).escape_debug()
                        ));
                    }
                    return Next::Reply(reply);
                }
                Ok(None) => {}
                Err(e) => {
                    self.log.push(format!("S< (malformed: {e})"));
                    return Next::Malformed(e);
                }
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => {
                    self.log.push("S< (timeout)".into());
                    return Next::Timeout;
                }
                Ok(Ok(0)) => {
                    self.log.push("S< (EOF)".into());
                    return Next::Eof;
                }
                Ok(Ok(n)) => self.parser.push(&buf[..n]),
                Ok(Err(e)) => {
                    self.log.push(format!("S< (error: {e})"));
                    return Next::Error(e);
                }
            }
        }
    }

    /// What comes next, within [`REPLY_TIMEOUT`].
    pub async fn next(&mut self) -> Next {
        self.next_within(REPLY_TIMEOUT).await
    }

    /// Read one complete reply (panics on EOF, error or timeout).
    pub async fn read_reply(&mut self) -> Reply {
        match self.next().await {
            Next::Reply(reply) => reply,
            other => panic!("expected a reply, got {other:?}\n{}", self.dialogue()),
        }
    }

    /// Read one reply and check its code.
    pub async fn expect_reply(&mut self, code: u16) -> Reply {
        let reply = self.read_reply().await;
        if reply.code != code {
            panic!(
                "expected {code}, got {} {:?}\n--- dialogue:\n{}",
                reply.code,
                reply.text(),
                self.dialogue()
            );
        }
        reply
    }

    /// Send a command and read one complete reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send(line).await;
        self.read_reply().await
    }

    /// Send a command given as bytes and read one complete reply.
    pub async fn cmd_bytes(&mut self, line: &[u8]) -> Reply {
        self.send_line_bytes(line).await;
        self.read_reply().await
    }

    /// Send a command and check the code of its reply (a wrong one panics
    /// with the command, the reply and the dialogue).
    pub async fn expect(&mut self, line: &str, code: u16) -> Reply {
        self.send(line).await;
        let reply = self.read_reply().await;
        if reply.code != code {
            panic!(
                "{}: expected {code}, got {} {:?}\n--- dialogue:\n{}",
                shown(line.as_bytes()),
                reply.code,
                reply.text(),
                self.dialogue()
            );
        }
        reply
    }

    /// A table of commands and the reply code each must get, sent in order
    /// (one reply read per command). A wrong code panics naming the row,
    /// the command and the reply, with the dialogue so far. Returns the
    /// replies.
    ///
    /// ```ignore
    /// c.expect_replies(&[("PBSZ 0", 200), ("PROT S", 536), ("PROT P", 200)]).await;
    /// ```
    pub async fn expect_replies(&mut self, rows: &[(&str, u16)]) -> Vec<Reply> {
        let mut replies = Vec::with_capacity(rows.len());
        for (i, (line, code)) in rows.iter().enumerate() {
            self.send(line).await;
            let reply = self.read_reply().await;
            if reply.code != *code {
                panic!(
                    "row {} of {}: {}: expected {code}, got {} {:?}\n--- dialogue:\n{}",
                    i + 1,
                    rows.len(),
                    shown(line.as_bytes()),
                    reply.code,
                    reply.text(),
                    self.dialogue()
                );
            }
            replies.push(reply);
        }
        replies
    }

    /// Expect the server to close the control connection with no further
    /// reply. A reset counts as a close.
    pub async fn expect_closed(&mut self) {
        match self.next().await {
            Next::Eof | Next::Error(_) => {}
            other => panic!(
                "expected the server to close the connection, got {other:?}\n{}",
                self.dialogue()
            ),
        }
    }

    /// Read raw bytes until the server closes (or `limit` passes). Returns
    /// the bytes and whether the connection was closed (EOF or error).
    pub async fn read_raw_until_closed(&mut self, limit: Duration) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => {
                    self.log.push(format!("S< (raw {out:02x?}, timeout)"));
                    return (out, false);
                }
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.log.push(format!("S< (raw {out:02x?}, closed)"));
                    return (out, true);
                }
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::AsyncWriteExt;

    use super::*;

    /// A plaintext server that greets and then answers each command line
    /// with the next of `replies`.
    async fn scripted_server(replies: &'static [&'static str]) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (read, mut write) = tcp.into_split();
            write.write_all(b"220 ready\r\n").await.unwrap();
            let mut lines = tokio::io::BufReader::new(read);
            for reply in replies {
                let mut line = String::new();
                if tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line)
                    .await
                    .unwrap()
                    == 0
                {
                    return;
                }
                write.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_failing_table_row_names_its_command_and_the_reply_with_the_dialogue() {
        let addr = scripted_server(&["200 ok\r\n", "503 PBSZ first\r\n", "200 ok\r\n"]).await;
        let run = tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            c.expect_replies(&[("NOOP", 200), ("PROT P", 200), ("NOOP", 200)])
                .await;
        });
        let message = crate::hostile::panic_text(run.await.unwrap_err());
        assert!(
            message.starts_with("row 2 of 3: PROT P: expected 200, got 503 \"PBSZ first\""),
            "{message}"
        );
        assert!(
            message.contains(
                "--- dialogue:\nS< 220 ready\nC> NOOP\nS< 200 ok\nC> PROT P\nS< 503 PBSZ first"
            ),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_wrong_reply_names_the_command_but_never_the_password() {
        let addr = scripted_server(&["331 password\r\n", "530 no\r\n"]).await;
        let run = tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            c.login_as("alice", "s3cret").await;
        });
        let message = crate::hostile::panic_text(run.await.unwrap_err());
        assert!(
            message.starts_with("PASS ****: expected 230, got 530 \"no\""),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }
}
