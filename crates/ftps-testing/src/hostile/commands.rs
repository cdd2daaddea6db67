//! Commands that never panic but return `Err` with what went wrong:
//! [`try_cmd`], [`expect_code`], the table [`expect_codes`], [`epsv_addr`],
//! and [`attempt`] / [`attempt_expect`]: one command, with EPSV before it
//! and the TLS data connection after a 150 for the data-opening verbs. And
//! how failures show bytes and the dialogue ([`show`], [`tail`]).

use std::net::SocketAddr;
use std::time::Duration;

use ftps_proto::reply::Reply;
use tokio::io::AsyncWriteExt;

use super::connect;
use crate::client::{self, Client, Next};

/// Bytes for a message: escaped, long ones shortened.
pub fn show(bytes: &[u8]) -> String {
    let text = bytes.escape_ascii().to_string();
    if text.len() > 120 {
        format!("{}...({} bytes)", &text[..100], bytes.len())
    } else {
        text
    }
}

/// The last `n` lines of the dialogue (long lines shortened).
pub fn tail(c: &Client, n: usize) -> String {
    let all = c.dialogue();
    let lines: Vec<&str> = all.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| {
            if l.len() > 300 {
                let mut cut = 200;
                while !l.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}...({} chars)", &l[..cut], l.len())
            } else {
                (*l).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The next reply, or why there is none.
pub async fn next_reply(c: &mut Client) -> Result<Reply, String> {
    next_reply_within(c, client::REPLY_TIMEOUT).await
}

/// The next reply within `limit`, or why there is none.
pub async fn next_reply_within(c: &mut Client, limit: Duration) -> Result<Reply, String> {
    match c.next_within(limit).await {
        Next::Reply(r) => Ok(r),
        other => Err(format!("expected a reply, got {other:?}")),
    }
}

/// Send `line` + CRLF and read one reply, never panicking.
pub async fn try_cmd(c: &mut Client, line: &[u8]) -> Result<Reply, String> {
    let mut bytes = line.to_vec();
    bytes.extend_from_slice(b"\r\n");
    write_quiet(c, &bytes, &show(line)).await?;
    next_reply(c).await
}

/// Write bytes on the control connection, noting `what` in the dialogue
/// (not the bytes themselves: they may be megabytes).
pub async fn write_quiet(c: &mut Client, bytes: &[u8], what: &str) -> Result<(), String> {
    c.note(format!("C> {what}"));
    let write = async {
        c.stream.write_all(bytes).await?;
        c.stream.flush().await
    };
    match tokio::time::timeout(client::REPLY_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("send {what}: {e}")),
        Err(_) => Err(format!("send {what}: timed out")),
    }
}

/// Send a command and compare the reply code.
pub async fn expect_code(c: &mut Client, line: &[u8], code: u16) -> Result<Reply, String> {
    let r = try_cmd(c, line).await?;
    if r.code != code {
        return Err(format!(
            "{}: expected {code}, got {} {:?}",
            show(line),
            r.code,
            r.text()
        ));
    }
    Ok(r)
}

/// A table of commands and the reply code each must get, sent in order;
/// the first wrong code (or missing reply) ends it with an error that names
/// the row and the command.
pub async fn expect_codes(c: &mut Client, rows: &[(&[u8], u16)]) -> Result<(), String> {
    for (i, (line, code)) in rows.iter().enumerate() {
        expect_code(c, line, *code)
            .await
            .map_err(|e| format!("row {} of {}: {e}", i + 1, rows.len()))?;
    }
    Ok(())
}

/// EPSV and the address to connect to.
pub async fn epsv_addr(c: &mut Client) -> Result<SocketAddr, String> {
    let r = try_cmd(c, b"EPSV").await?;
    if r.code != 229 {
        return Err(format!("EPSV: {} {:?}", r.code, r.text()));
    }
    let port = ftps_proto::address::parse_epsv_reply_text(&r.text())
        .map_err(|e| format!("bad 229: {e:?}"))?;
    Ok(SocketAddr::new(c.peer.ip(), port))
}

/// The data-opening verbs (they need a data port first).
pub fn is_data_verb(line: &[u8]) -> bool {
    let verb = line
        .split(|b| *b == b' ')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(
        verb.as_slice(),
        b"RETR" | b"STOR" | b"APPE" | b"STOU" | b"LIST" | b"NLST" | b"MLSD"
    )
}

/// What a command led to.
#[derive(Debug, Default)]
pub struct Attempt {
    /// Reply codes in order (e.g. `[150, 226]` or `[550]`).
    pub codes: Vec<u16>,
    /// Reply texts in order.
    pub texts: Vec<String>,
    /// Bytes received on the data connection.
    pub data: Vec<u8>,
}

/// One command. Data-opening verbs get EPSV first and, after a 150, a TLS
/// data connection that resumes the control session: reads for downloads
/// and listings, writes `upload` (or nothing) for uploads. Never panics.
pub async fn attempt(
    c: &mut Client,
    line: &[u8],
    upload: Option<&[u8]>,
) -> Result<Attempt, String> {
    let addr = if is_data_verb(line) {
        Some(epsv_addr(c).await?)
    } else {
        None
    };
    let first = try_cmd(c, line).await?;
    let mut out = Attempt {
        codes: vec![first.code],
        texts: vec![first.text()],
        data: Vec::new(),
    };
    if first.code == 150 || first.code == 125 {
        let addr = addr.ok_or("a 150 without a data port")?;
        let tcp = connect(addr).await?;
        match client::data_tls(tcp, &c.config()).await {
            Ok(mut tls) => {
                let writes = is_upload(line);
                if writes {
                    if let Err(e) =
                        client::write_all_and_close(&mut tls, upload.unwrap_or_default()).await
                    {
                        c.note(format!("data write: {e}"));
                    }
                    let _ = client::read_all(&mut tls).await;
                } else {
                    match client::read_all(&mut tls).await {
                        Ok(d) => out.data = d,
                        Err(e) => c.note(format!("data read: {e}")),
                    }
                }
            }
            Err(e) => c.note(format!("data TLS handshake: {e}")),
        }
        let fin = next_reply(c).await?;
        out.codes.push(fin.code);
        out.texts.push(fin.text());
    }
    Ok(out)
}

/// STOR, APPE, STOU.
pub fn is_upload(line: &[u8]) -> bool {
    let verb = line
        .split(|b| *b == b' ')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(verb.as_slice(), b"STOR" | b"APPE" | b"STOU")
}

/// [`attempt`], then compare the codes.
pub async fn attempt_expect(
    c: &mut Client,
    line: &[u8],
    upload: Option<&[u8]>,
    expected: &[u16],
) -> Result<Attempt, String> {
    let a = attempt(c, line, upload).await?;
    if a.codes != expected {
        return Err(format!(
            "{}: expected {expected:?}, got {:?} {:?}",
            show(line),
            a.codes,
            a.texts
        ));
    }
    Ok(a)
}
