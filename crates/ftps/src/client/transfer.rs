//! `get` and `put`, and the transfer steps `mirror` shares with them.
//!
//! A download goes to `DEST.part` and is renamed to `DEST` only after the
//! server's 226, the TLS close_notify and the announced size all check out
//! (`RetrStream::finish`), so an interrupted download never leaves a
//! truncated `DEST` that looks complete; the rename waits for the file's
//! fsync, so a crash cannot leave a `DEST` without its content either
//! (its write-back starts during the download: [`WriteBack`]). That
//! local end runs on a blocking thread ([`Commit`]), which `mirror` leaves
//! running while it fetches the next files. `-c` continues `DEST.part` (or
//! `DEST`) with REST. An upload with `-c` asks SIZE and continues with
//! REST + STOR when the server announces REST STREAM, else with APPE. A
//! binary upload is checked with SIZE afterwards when the server has it.

use std::ffi::OsStr;
use std::io::SeekFrom;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use ftps_client::control::tls_error;
use ftps_client::{Error, RetrStream, StoreMode};
use ftps_proto::ascii::FromNetwork;
use ftps_server::disk::{start_write_back, WRITE_BACK_BYTES};
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

/// A modification time (Unix seconds) as a `SystemTime`.
fn system_time(secs: i64) -> Option<std::time::SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

/// Downloads up to this size (known from SIZE or the listing) are collected
/// in memory and written by one blocking job: one hand-off to tokio's
/// blocking pool per file instead of one per file operation.
pub const SMALL_FILE_BYTES: u64 = 256 * 1024;

/// The local end of a download, run on a blocking thread: give the file its
/// time, make it durable, and only then rename `DEST.part` to `DEST`.
fn commit(
    file: std::fs::File,
    part: &Path,
    dest: &Path,
    mtime: Option<i64>,
) -> Result<(), Failure> {
    if let Some(time) = mtime.and_then(system_time) {
        // Best effort: a file system without times still gets the content.
        let _ = file.set_modified(time);
    }
    file.sync_all().map_err(local_error(part))?;
    drop(file);
    std::fs::rename(part, dest).map_err(local_error(dest))
}

/// The local end of a small download held in memory: write `DEST.part`, then
/// [`commit`] it.
fn commit_small(data: &[u8], part: &Path, dest: &Path, mtime: Option<i64>) -> Result<(), Failure> {
    use std::io::Write;
    let mut file = std::fs::File::create(part).map_err(local_error(part))?;
    file.write_all(data).map_err(local_error(part))?;
    commit(file, part, dest, mtime)
}

/// A download whose data has all arrived and checked out, while its local
/// end ([`commit`]) runs on a blocking thread. Await it with [`Commit::wait`];
/// `mirror` keeps a few in flight while the next files download.
#[derive(Debug)]
pub struct Commit {
    task: tokio::task::JoinHandle<Result<(), Failure>>,
}

impl Commit {
    fn spawn(job: impl FnOnce() -> Result<(), Failure> + Send + 'static) -> Commit {
        Commit {
            task: tokio::task::spawn_blocking(job),
        }
    }

    /// The outcome of the local end.
    pub async fn wait(self) -> Result<(), Failure> {
        self.task
            .await
            .map_err(|e| Failure::new(format!("writing the downloaded file: {e}")))?
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

/// Show the download's size on a single transfer's bar.
fn start_bar(bar: &Bar, single: bool, stream: &RetrStream<'_>, offset: u64, known: Option<u64>) {
    if single {
        if let Some(total) = known.or_else(|| stream.expected().map(|n| n + offset)) {
            bar.set_length(total);
        }
        bar.set_position(offset);
    }
}

/// One read from the data connection, bounded by the idle timeout. A close
/// without TLS close_notify is a truncation.
async fn read_some(
    stream: &mut RetrStream<'_>,
    idle: Duration,
    buf: &mut [u8],
) -> Result<usize, Failure> {
    match tokio::time::timeout(idle, stream.read(buf)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => {
            let (received, expected) = (stream.received(), stream.expected());
            Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Truncated { received, expected }
            } else {
                tls_error(e)
            }
            .into())
        }
        Err(_) => Err(Error::Timeout("reading the data connection").into()),
    }
}

/// Copy the rest of a download into `out` (TYPE A line ends become LF).
async fn copy_data<W: AsyncWrite + Unpin>(
    stream: &mut RetrStream<'_>,
    idle: Duration,
    ascii: bool,
    out: &mut W,
    mut write_back: Option<WriteBack>,
    bar: &Bar,
) -> Result<(), Failure> {
    let mut buf = vec![0u8; 64 * 1024];
    // TLS hands over a record (~16 KiB) at a time; the destination (a file or
    // standard output, each write a hand-off to tokio's blocking pool) gets
    // large writes instead.
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, out);
    let mut converter = FromNetwork::default();
    let mut converted = Vec::new();
    loop {
        let n = read_some(stream, idle, &mut buf).await?;
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
        if let Some(write_back) = write_back.as_mut() {
            write_back.wrote(n).await;
        }
        bar.inc(n as u64);
    }
    if ascii {
        converted.clear();
        converter.finish(&mut converted);
        out.write_all(&converted).await?;
    }
    out.flush().await?;
    Ok(())
}

/// Starts the disk's write-back of a download's `.part` every
/// [`WRITE_BACK_BYTES`] on the blocking pool, one step at a time, so the
/// fsync before the rename finds little left ([`ftps_server::disk`]).
#[derive(Debug)]
struct WriteBack {
    file: Arc<std::fs::File>,
    unstarted: u64,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl WriteBack {
    /// For `file`, through a second descriptor of it; `None` when that
    /// cannot be had (the download goes on, its fsync does all the work).
    async fn new(file: &tokio::fs::File) -> Option<WriteBack> {
        let clone = file.try_clone().await.ok()?.into_std().await;
        Some(WriteBack {
            file: Arc::new(clone),
            unstarted: 0,
            running: None,
        })
    }

    /// `n` more bytes were written.
    async fn wrote(&mut self, n: usize) {
        self.unstarted += n as u64;
        if self.unstarted < WRITE_BACK_BYTES {
            return;
        }
        self.unstarted = 0;
        if let Some(previous) = self.running.take() {
            // It only ever costs speed: its outcome does not matter.
            let _ = previous.await;
        }
        let file = Arc::clone(&self.file);
        self.running = Some(tokio::task::spawn_blocking(move || {
            start_write_back(&file);
        }));
    }
}

/// Read a whole download into `data`, unless it grows past `limit`: returns
/// false then, with the rest still to read.
async fn read_to_memory(
    stream: &mut RetrStream<'_>,
    idle: Duration,
    data: &mut Vec<u8>,
    limit: usize,
    bar: &Bar,
) -> Result<bool, Failure> {
    let mut buf = vec![0u8; 16 * 1024];
    while data.len() <= limit {
        let n = read_some(stream, idle, &mut buf).await?;
        if n == 0 {
            return Ok(true);
        }
        data.extend_from_slice(&buf[..n]);
        bar.inc(n as u64);
    }
    Ok(false)
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

/// How [`download`] ended.
#[derive(Debug)]
pub enum Downloaded {
    /// `-c` found nothing left to move.
    AlreadyComplete,
    /// All data arrived and checked out (226, close_notify, size); the file
    /// becomes `DEST` when `commit` succeeds.
    Received { bytes: u64, commit: Commit },
}

/// Download `remote` into `dest` through `dest.part`, waiting for the file
/// to be in place.
pub async fn download_to_file(
    conn: &mut Conn,
    remote: &[u8],
    dest: &Path,
    opts: DownloadOptions,
    bar: &Bar,
    single: bool,
) -> Result<Outcome, Failure> {
    match download(conn, remote, dest, opts, bar, single).await? {
        Downloaded::AlreadyComplete => Ok(Outcome::AlreadyComplete),
        Downloaded::Received { bytes, commit } => {
            commit.wait().await?;
            Ok(Outcome::Done(bytes))
        }
    }
}

/// Download `remote` into `dest` through `dest.part`; the local end (fsync,
/// time, rename) is left running in the returned [`Commit`]. A small file
/// (its size known and at most [`SMALL_FILE_BYTES`]) is held in memory and
/// written by that job in one go; `DEST.part` then only exists while it runs.
pub async fn download(
    conn: &mut Conn,
    remote: &[u8],
    dest: &Path,
    opts: DownloadOptions,
    bar: &Bar,
    single: bool,
) -> Result<Downloaded, Failure> {
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
                return Ok(Downloaded::AlreadyComplete);
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
    let dest = dest.to_path_buf();
    let mtime = opts.mtime;
    // The file is made only once the server has agreed to send (150).
    let mut stream = start_retr(conn, remote, offset, opts.ascii).await?;
    start_bar(bar, single, &stream, offset, size);
    let small = size.filter(|&n| offset == 0 && !opts.ascii && n <= SMALL_FILE_BYTES);
    let mut file = if let Some(n) = small {
        let limit = SMALL_FILE_BYTES as usize;
        let mut data = Vec::with_capacity(n as usize);
        if read_to_memory(&mut stream, idle, &mut data, limit, bar).await? {
            let bytes = stream.finish().await?;
            let commit = Commit::spawn(move || commit_small(&data, &part, &dest, mtime));
            return Ok(Downloaded::Received { bytes, commit });
        }
        // It grew since it was listed: the rest goes through the file.
        let mut file = tokio::fs::File::create(&part)
            .await
            .map_err(local_error(&part))?;
        file.write_all(&data).await.map_err(local_error(&part))?;
        file
    } else if offset > 0 {
        tokio::fs::OpenOptions::new()
            .append(true)
            .open(&part)
            .await
            .map_err(local_error(&part))?
    } else {
        tokio::fs::File::create(&part)
            .await
            .map_err(local_error(&part))?
    };
    let write_back = WriteBack::new(&file).await;
    copy_data(&mut stream, idle, opts.ascii, &mut file, write_back, bar).await?;
    let bytes = stream.finish().await?;
    let file = file.into_std().await;
    let commit = Commit::spawn(move || commit(file, &part, &dest, mtime));
    Ok(Downloaded::Received { bytes, commit })
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
            let mut stream = start_retr(&mut conn, &url.path, 0, common.ascii).await?;
            start_bar(&bar, true, &stream, 0, None);
            let mut stdout = tokio::io::stdout();
            copy_data(&mut stream, idle, common.ascii, &mut stdout, None, &bar).await?;
            Ok(Outcome::Done(stream.finish().await?))
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
