//! `ftps put FILE URL`, and the upload steps `mirror` shares: STOR or APPE
//! from a reader counted into the progress bar (TYPE A converting LF to
//! CRLF), the SIZE check after a binary upload, and `-c`, which asks SIZE
//! and continues with REST + STOR where the server announces REST STREAM,
//! else with APPE. Afterwards, where the server offers them ([`checks`]):
//! `--verify` compares HASH SHA-256, and MFMT gives the remote file the
//! local file's modification time.

use std::io::SeekFrom;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ftps_client::StoreMode;
use tokio::io::{AsyncRead, AsyncSeekExt};

use super::checks::{self, after_upload, mtime_of};
use super::{local_error, resume_point, Outcome, Resume};
use crate::client::args::{CommonArgs, PutArgs};
use crate::client::connect::{redact_url, Conn, Prepared};
use crate::client::progress::{AsciiReader, Bar, CountingReader, Output};
use crate::client::Failure;

/// STOR/APPE from `reader`, counting into `bar`; TYPE A converts LF to CRLF.
pub async fn send<R: AsyncRead + Unpin>(
    conn: &mut Conn,
    remote: &[u8],
    reader: R,
    mode: StoreMode,
    ascii: bool,
    bar: &Bar,
) -> Result<u64, Failure> {
    conn.prepare_data().await?;
    let counted = CountingReader::new(reader, bar.clone());
    let sent = if ascii {
        let mut reader = AsciiReader::new(counted);
        conn.client.stor(remote, &mut reader, mode, true).await?
    } else {
        let mut reader = counted;
        conn.client.stor(remote, &mut reader, mode, false).await?
    };
    Ok(sent)
}

/// After a binary upload: does the server have `expected` bytes?
pub async fn verify_size(conn: &mut Conn, remote: &[u8], expected: u64) -> Result<(), Failure> {
    if !conn.client.features().size {
        return Ok(());
    }
    match conn.client.size(remote).await {
        Ok(n) if n != expected => Err(Failure::new(format!(
            "upload incomplete: the server has {n} of {expected} bytes"
        ))
        .with_hint("retry with -c to resume")),
        _ => Ok(()),
    }
}

/// A connection and how the upload on it went (the connection is closed
/// after the progress bar).
type Attempt = (Conn, Result<Outcome, Failure>);

/// `ftps put FILE URL`.
pub async fn put(args: PutArgs) -> Result<(), Failure> {
    let common = &args.common;
    let output = Output::new(common);
    let (url, prepared) = Prepared::from_url(&args.url, common)?;
    let from_stdin = args.file == Path::new("-");
    let remote = remote_name(&url.path, &args.file, from_stdin).ok_or_else(|| {
        Failure::usage(format!(
            "{} names no file: give the remote file name",
            redact_url(&args.url)
        ))
    })?;
    if common.resume && (common.ascii || from_stdin) {
        return Err(Failure::usage(
            "-c cannot resume an ASCII transfer (its byte counts differ on both sides) or standard input",
        ));
    }
    if args.verify && (common.ascii || from_stdin) {
        return Err(Failure::usage(
            "--verify compares the file's SHA-256: not for an ASCII transfer (the bytes differ on \
             both sides) or standard input (it cannot be read again)",
        ));
    }
    let shown = String::from_utf8_lossy(&remote).into_owned();
    let bar = output.bar(None, shown.clone());
    let started = std::time::Instant::now();
    let (conn, result) = if from_stdin {
        put_stdin(&prepared, &remote, common.ascii, &bar).await?
    } else {
        put_file(&prepared, &args.file, &remote, common, args.verify, &bar).await?
    };
    bar.finish();
    let outcome = result.map_err(|f| f.context(format!("put {shown}")))?;
    let took = started.elapsed();
    conn.quit().await;
    match outcome {
        Outcome::AlreadyComplete => {
            output.note(&format!("{shown}: already complete on the server"))
        }
        Outcome::Done(bytes) => output.summary(&shown, "sent", bytes, took),
    }
    Ok(())
}

/// The remote file `put` writes: the URL's path, or when that names a
/// directory (empty or ending in `/`) the local file's name in it; `None`
/// when there is no local name to take (standard input).
fn remote_name(url_path: &[u8], file: &Path, from_stdin: bool) -> Option<Vec<u8>> {
    let mut remote = url_path.to_vec();
    if remote.is_empty() || remote.ends_with(b"/") {
        let name = file.file_name().filter(|_| !from_stdin)?;
        remote.extend_from_slice(name.as_bytes());
    }
    Some(remote)
}

/// Upload standard input.
async fn put_stdin(
    prepared: &Prepared,
    remote: &[u8],
    ascii: bool,
    bar: &Bar,
) -> Result<Attempt, Failure> {
    let mut conn = prepared.connect().await?;
    let stdin = tokio::io::stdin();
    let r = send(&mut conn, remote, stdin, StoreMode::Replace, ascii, bar)
        .await
        .map(Outcome::Done);
    Ok((conn, r))
}

/// Upload the local file `path` (a directory is refused before connecting).
async fn put_file(
    prepared: &Prepared,
    path: &Path,
    remote: &[u8],
    common: &CommonArgs,
    verify: bool,
    bar: &Bar,
) -> Result<Attempt, Failure> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(local_error(path))?;
    let meta = file.metadata().await.map_err(local_error(path))?;
    if meta.is_dir() {
        return Err(Failure::usage(format!(
            "{} is a directory: use `ftps mirror --reverse DIR URL`",
            path.display()
        )));
    }
    let mut conn = prepared.connect().await?;
    let upload = Upload {
        file,
        path,
        len: meta.len(),
        mtime: mtime_of(&meta),
        resume: common.resume,
        ascii: common.ascii,
        verify: verify && checks::verify_offered(&conn, bar),
    };
    let r = upload_file(&mut conn, upload, remote, bar).await;
    Ok((conn, r))
}

/// A local file to upload.
struct Upload<'a> {
    file: tokio::fs::File,
    path: &'a Path,
    len: u64,
    /// Its modification time (Unix seconds), kept with MFMT.
    mtime: Option<i64>,
    /// `-c`.
    resume: bool,
    /// TYPE A.
    ascii: bool,
    /// `--verify` (and the server offers HASH).
    verify: bool,
}

/// Upload `upload` to `remote`, with `-c` from where the server's copy ends,
/// then check the size the server has.
async fn upload_file(
    conn: &mut Conn,
    mut upload: Upload<'_>,
    remote: &[u8],
    bar: &Bar,
) -> Result<Outcome, Failure> {
    let len = upload.len;
    let mut mode = StoreMode::Replace;
    let mut offset = 0;
    if upload.resume {
        match remote_resume_point(conn, remote, len).await? {
            Resume::Complete => return Ok(Outcome::AlreadyComplete),
            Resume::Longer(there) => {
                return Err(Failure::new(format!(
                    "the server has {there} bytes, more than the {len} of {}: not resuming",
                    upload.path.display()
                ))
                .with_hint("upload again without -c to replace it"));
            }
            Resume::From(0) => {}
            Resume::From(there) => {
                upload.file.seek(SeekFrom::Start(there)).await?;
                offset = there;
                mode = resume_mode(there, conn.client.features().rest_stream);
            }
        }
    }
    bar.set_length(len);
    bar.set_position(offset);
    let sent = send(conn, remote, upload.file, mode, upload.ascii, bar).await?;
    if !upload.ascii {
        verify_size(conn, remote, len).await?;
    }
    let local = upload.path.to_path_buf();
    after_upload(conn, remote, Some(&local), upload.mtime, upload.verify, bar).await?;
    Ok(Outcome::Done(sent))
}

/// Where `put -c` of a `len`-byte file continues: SIZE on the server (a
/// missing file has 0 bytes).
async fn remote_resume_point(conn: &mut Conn, remote: &[u8], len: u64) -> Result<Resume, Failure> {
    conn.prepare_data().await?;
    let there = match conn.client.size(remote).await {
        Ok(n) => n,
        Err(e) if e.reply().is_some_and(|r| r.code == 550) => 0,
        Err(e) => return Err(Failure::from(e).context("SIZE (needed for -c)")),
    };
    Ok(resume_point(there, len))
}

/// How an upload continues after the `there` bytes the server has: REST +
/// STOR where the server announces REST STREAM, else APPE.
fn resume_mode(there: u64, rest_stream: bool) -> StoreMode {
    if rest_stream {
        StoreMode::Resume(there)
    } else {
        StoreMode::Append
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_naming_a_file_is_the_remote_name() {
        let got = remote_name(b"dir/b.txt", Path::new("a.txt"), false);
        assert_eq!(got, Some(b"dir/b.txt".to_vec()));
    }

    #[test]
    fn a_url_naming_a_directory_gets_the_local_file_name() {
        let got = remote_name(b"dir/", Path::new("x/a.txt"), false);
        assert_eq!(got, Some(b"dir/a.txt".to_vec()));
        let got = remote_name(b"", Path::new("a.txt"), false);
        assert_eq!(got, Some(b"a.txt".to_vec()));
    }

    #[test]
    fn standard_input_needs_a_file_name_in_the_url() {
        assert_eq!(remote_name(b"dir/", Path::new("-"), true), None);
        let got = remote_name(b"dir/f", Path::new("-"), true);
        assert_eq!(got, Some(b"dir/f".to_vec()));
    }

    #[test]
    fn resume_uses_rest_where_the_server_has_rest_stream_else_appe() {
        assert_eq!(resume_mode(5, true), StoreMode::Resume(5));
        assert_eq!(resume_mode(5, false), StoreMode::Append);
    }
}
