//! `get` and `put`, and the transfer steps `mirror` shares with them.
//!
//! A download goes to `DEST.part` and is renamed to `DEST` only after the
//! server's 226, the TLS close_notify and the announced size all check out
//! (`RetrStream::finish`), so an interrupted download never leaves a
//! truncated `DEST` that looks complete; `-c` continues `DEST.part` (or
//! `DEST`) with REST. An upload with `-c` asks SIZE and continues with
//! REST + STOR when the server announces REST STREAM, else with APPE. A
//! binary upload is checked with SIZE afterwards when the server has it.

use std::ffi::OsStr;
use std::io::SeekFrom;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use ftps_client::control::tls_error;
use ftps_client::{Error, RetrStream, StoreMode};
use ftps_proto::ascii::FromNetwork;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use super::args::{GetArgs, PutArgs};
use super::connect::{base_name, redact_url, Conn, Prepared};
use super::progress::{AsciiReader, Bar, CountingReader, Output};
use super::Failure;

/// How a transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This many bytes moved.
    Done(u64),
    /// `-c` found nothing left to move.
    AlreadyComplete,
}

/// `DEST.part`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Set a file's modification time (Unix seconds); best effort.
pub fn set_mtime(path: &Path, secs: i64) {
    let time = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    if let (Some(time), Ok(file)) = (time, std::fs::File::options().write(true).open(path)) {
        let _ = file.set_modified(time);
    }
}

fn local_error(path: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |e| Failure::new(format!("{}: {e}", path.display()))
}

/// RETR from `offset` (or in TYPE A).
async fn start_retr<'a>(
    conn: &'a mut Conn,
    remote: &[u8],
    offset: u64,
    ascii: bool,
) -> Result<RetrStream<'a>, Failure> {
    Ok(if ascii {
        conn.client.retr_ascii(remote).await?
    } else {
        conn.client.retr(remote, offset).await?
    })
}

/// Copy a download into `out` (TYPE A line ends become LF), each read
/// bounded by the idle timeout, then check its end. Returns the bytes received.
#[allow(clippy::too_many_arguments)]
async fn pump<W: AsyncWrite + Unpin>(
    mut stream: RetrStream<'_>,
    idle: Duration,
    offset: u64,
    ascii: bool,
    known_size: Option<u64>,
    out: &mut W,
    bar: &Bar,
    single: bool,
) -> Result<u64, Failure> {
    if single {
        if let Some(total) = known_size.or_else(|| stream.expected().map(|n| n + offset)) {
            bar.set_length(total);
        }
        bar.set_position(offset);
    }
    let mut buf = vec![0u8; 64 * 1024];
    // TLS hands over a record (~16 KiB) at a time; the destination (a file or
    // standard output, each write a hand-off to tokio's blocking pool) gets
    // large writes instead.
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, out);
    let mut converter = FromNetwork::default();
    let mut converted = Vec::new();
    loop {
        let n = match tokio::time::timeout(idle, stream.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                let (received, expected) = (stream.received(), stream.expected());
                return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    Error::Truncated { received, expected }
                } else {
                    tls_error(e)
                }
                .into());
            }
            Err(_) => return Err(Error::Timeout("reading the data connection").into()),
        };
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if ascii {
            converted.clear();
            converter.convert(chunk, &mut converted);
            out.write_all(&converted).await?;
        } else {
            out.write_all(chunk).await?;
        }
        bar.inc(n as u64);
    }
    if ascii {
        converted.clear();
        converter.finish(&mut converted);
        out.write_all(&converted).await?;
    }
    let received = stream.finish().await?;
    out.flush().await?;
    Ok(received)
}

/// What a download into a file needs to know.
#[derive(Debug, Clone, Copy, Default)]
pub struct DownloadOptions {
    /// Continue DEST.part (or DEST).
    pub resume: bool,
    /// TYPE A.
    pub ascii: bool,
    /// Give the file this modification time (Unix seconds).
    pub mtime: Option<i64>,
    /// The remote size, when already known (else SIZE is asked).
    pub size: Option<u64>,
}

/// Download `remote` into `dest` through `dest.part`.
pub async fn download_to_file(
    conn: &mut Conn,
    remote: &[u8],
    dest: &Path,
    opts: DownloadOptions,
    bar: &Bar,
    single: bool,
) -> Result<Outcome, Failure> {
    let part = part_path(dest);
    let (mut offset, mut from_dest) = (0, false);
    if opts.resume {
        if let Ok(meta) = std::fs::metadata(&part) {
            offset = meta.len();
        } else if let Ok(meta) = std::fs::metadata(dest) {
            if meta.is_file() {
                (offset, from_dest) = (meta.len(), true);
            }
        }
    }
    conn.prepare_data().await?;
    let size = match opts.size {
        Some(n) => Some(n),
        None if !opts.ascii && conn.client.features().size => conn.client.size(remote).await.ok(),
        None => None,
    };
    if offset > 0 {
        if let Some(size) = size {
            let holder = if from_dest { dest } else { &part };
            if offset == size {
                if !from_dest {
                    std::fs::rename(&part, dest).map_err(local_error(dest))?;
                }
                return Ok(Outcome::AlreadyComplete);
            }
            if offset > size {
                return Err(Failure::new(format!(
                    "{} has {offset} bytes, more than the {size} on the server: not resuming",
                    holder.display()
                ))
                .with_hint("delete it, or download again without -c"));
            }
        }
        if from_dest {
            std::fs::rename(dest, &part).map_err(local_error(dest))?;
        }
    }
    let idle = conn.idle_timeout;
    // The file is made only once the server has agreed to send (150).
    let stream = start_retr(conn, remote, offset, opts.ascii).await?;
    let file = if offset > 0 {
        tokio::fs::OpenOptions::new().append(true).open(&part).await
    } else {
        tokio::fs::File::create(&part).await
    };
    let mut file = file.map_err(local_error(&part))?;
    let received = pump(
        stream, idle, offset, opts.ascii, size, &mut file, bar, single,
    )
    .await?;
    file.sync_all().await.map_err(local_error(&part))?;
    drop(file);
    if let Some(t) = opts.mtime {
        set_mtime(&part, t);
    }
    std::fs::rename(&part, dest).map_err(local_error(dest))?;
    Ok(Outcome::Done(received))
}

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

/// `ftps get URL [DEST]`.
pub async fn get(args: GetArgs) -> Result<(), Failure> {
    let common = &args.common;
    let output = Output::new(common);
    let (url, prepared) = Prepared::from_url(&args.url, common)?;
    let name = base_name(&url.path)
        .ok_or_else(|| Failure::usage(format!("{} names no file", redact_url(&args.url))))?
        .to_vec();
    let to_stdout = args.dest.as_deref() == Some(Path::new("-"));
    if common.resume && (common.ascii || to_stdout) {
        return Err(Failure::usage(
            "-c cannot resume an ASCII transfer (its byte counts differ on both sides) or standard output",
        ));
    }
    let dest = match args.dest {
        None => PathBuf::from(OsStr::from_bytes(&name)),
        Some(d) if d.is_dir() => d.join(OsStr::from_bytes(&name)),
        Some(d) => d,
    };
    let mut conn = prepared.connect().await?;
    let bar = output.bar(None, String::from_utf8_lossy(&name).into_owned());
    let result = if to_stdout {
        async {
            conn.prepare_data().await?;
            let idle = conn.idle_timeout;
            let stream = start_retr(&mut conn, &url.path, 0, common.ascii).await?;
            let mut stdout = tokio::io::stdout();
            let n = pump(stream, idle, 0, common.ascii, None, &mut stdout, &bar, true).await?;
            Ok(Outcome::Done(n))
        }
        .await
    } else {
        let opts = DownloadOptions {
            resume: common.resume,
            ascii: common.ascii,
            ..DownloadOptions::default()
        };
        download_to_file(&mut conn, &url.path, &dest, opts, &bar, true).await
    };
    bar.finish();
    let outcome =
        result.map_err(|f| f.context(format!("get {}", String::from_utf8_lossy(&url.path))))?;
    conn.quit().await;
    if outcome == Outcome::AlreadyComplete {
        output.note(&format!("{}: already complete", dest.display()));
    }
    Ok(())
}

/// `ftps put FILE URL`.
pub async fn put(args: PutArgs) -> Result<(), Failure> {
    let common = &args.common;
    let output = Output::new(common);
    let (url, prepared) = Prepared::from_url(&args.url, common)?;
    let from_stdin = args.file == Path::new("-");
    let mut remote = url.path.clone();
    if remote.is_empty() || remote.ends_with(b"/") {
        let name = match args.file.file_name() {
            Some(name) if !from_stdin => name,
            _ => {
                return Err(Failure::usage(format!(
                    "{} names no file: give the remote file name",
                    redact_url(&args.url)
                )))
            }
        };
        remote.extend_from_slice(name.as_bytes());
    }
    if common.resume && (common.ascii || from_stdin) {
        return Err(Failure::usage(
            "-c cannot resume an ASCII transfer (its byte counts differ on both sides) or standard input",
        ));
    }
    let shown = String::from_utf8_lossy(&remote).into_owned();
    let bar = output.bar(None, shown.clone());
    let result = if from_stdin {
        let mut conn = prepared.connect().await?;
        let r = send(
            &mut conn,
            &remote,
            tokio::io::stdin(),
            StoreMode::Replace,
            common.ascii,
            &bar,
        )
        .await
        .map(Outcome::Done);
        (conn, r)
    } else {
        let mut file = tokio::fs::File::open(&args.file)
            .await
            .map_err(local_error(&args.file))?;
        let meta = file.metadata().await.map_err(local_error(&args.file))?;
        if meta.is_dir() {
            return Err(Failure::usage(format!(
                "{} is a directory: use `ftps mirror --reverse DIR URL`",
                args.file.display()
            )));
        }
        let len = meta.len();
        let mut conn = prepared.connect().await?;
        let r = async {
            let mut mode = StoreMode::Replace;
            let mut offset = 0;
            if common.resume {
                conn.prepare_data().await?;
                let there = match conn.client.size(&remote).await {
                    Ok(n) => n,
                    Err(e) if e.reply().is_some_and(|r| r.code == 550) => 0,
                    Err(e) => return Err(Failure::from(e).context("SIZE (needed for -c)")),
                };
                if there == len {
                    return Ok(Outcome::AlreadyComplete);
                }
                if there > len {
                    return Err(Failure::new(format!(
                        "the server has {there} bytes, more than the {len} of {}: not resuming",
                        args.file.display()
                    ))
                    .with_hint("upload again without -c to replace it"));
                }
                if there > 0 {
                    file.seek(SeekFrom::Start(there)).await?;
                    offset = there;
                    mode = if conn.client.features().rest_stream {
                        StoreMode::Resume(there)
                    } else {
                        StoreMode::Append
                    };
                }
            }
            bar.set_length(len);
            bar.set_position(offset);
            let sent = send(&mut conn, &remote, file, mode, common.ascii, &bar).await?;
            if !common.ascii {
                verify_size(&mut conn, &remote, len).await?;
            }
            Ok(Outcome::Done(sent))
        }
        .await;
        (conn, r)
    };
    bar.finish();
    let (conn, result) = result;
    let outcome = result.map_err(|f| f.context(format!("put {shown}")))?;
    conn.quit().await;
    if outcome == Outcome::AlreadyComplete {
        output.note(&format!("{shown}: already complete on the server"));
    }
    Ok(())
}
