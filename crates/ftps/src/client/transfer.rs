//! `get` and `put`, and the transfer steps `mirror` shares with them.
//!
//! A download goes to `DEST.part` and is renamed to `DEST` only after the
//! server's 226, the TLS close_notify and the announced size all check out
//! (`RetrStream::finish`), so an interrupted download never leaves a
//! truncated `DEST` that looks complete; the rename waits for the file's
//! fsync, so a crash cannot leave a `DEST` without its content either
//! (its write-back starts during the download: [`Writer`]). That
//! local end runs on a blocking thread ([`Commit`]), which `mirror` leaves
//! running while it fetches the next files. `-c` continues `DEST.part` (or
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
use ftps_os::WriteBack;
use ftps_proto::ascii::FromNetwork;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

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

/// Bytes the download hands to its [`Writer`] at a time.
const WRITE_BYTES: usize = 256 * 1024;
/// Buffers in circulation between a download and its [`Writer`].
const WRITE_BUFFERS: usize = 3;

/// A download's destination, owned by a blocking thread that writes whole
/// buffers to it. The data is copied once, out of the TLS stream into a
/// buffer that then changes hands (tokio's `File` and `Stdout` copy every
/// write into a buffer of their own before handing it to the blocking pool,
/// and our batching added another copy). Into a file, the thread also starts
/// the disk's write-back every 8 MiB ([`WriteBack`]), waiting for the previous
/// one, so the fsync before the rename finds little left
/// ([`ftps_server::disk`]); that wait holds the download back when the disk
/// is the slower end.
struct Writer {
    /// The buffer being filled and how much of it is.
    current: (Vec<u8>, usize),
    full: tokio::sync::mpsc::Sender<(Vec<u8>, usize)>,
    empty: tokio::sync::mpsc::Receiver<Vec<u8>>,
    thread: tokio::task::JoinHandle<std::io::Result<std::fs::File>>,
}

impl Writer {
    /// Write to `file` (`DEST.part` positioned where the bytes go, or
    /// standard output); `write_back` for a file on disk.
    fn start(file: std::fs::File, write_back: bool) -> Writer {
        let (full, full_rx) = tokio::sync::mpsc::channel(WRITE_BUFFERS);
        let (empty_tx, empty) = tokio::sync::mpsc::channel(WRITE_BUFFERS);
        for _ in 1..WRITE_BUFFERS {
            let _ = empty_tx.try_send(vec![0; WRITE_BYTES]);
        }
        let thread = tokio::task::spawn_blocking(move || {
            write_buffers(&file, write_back, full_rx, &empty_tx).map(|()| file)
        });
        Writer {
            current: (vec![0; WRITE_BYTES], 0),
            full,
            empty,
            thread,
        }
    }

    /// The unfilled part of the current buffer.
    fn space(&mut self) -> &mut [u8] {
        let (buf, filled) = &mut self.current;
        buf.get_mut(*filled..).unwrap_or_default()
    }

    /// `n` more bytes are in [`Writer::space`]; hands the buffer over when
    /// full. False when the thread has stopped ([`Writer::finish`] says why).
    async fn filled(&mut self, n: usize) -> bool {
        self.current.1 += n;
        if self.current.1 < self.current.0.len() {
            return true;
        }
        self.hand_over().await
    }

    /// Copy `bytes` in.
    async fn push(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            let space = self.space();
            let n = space.len().min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if !self.filled(n).await {
                return false;
            }
        }
        true
    }

    /// Hand `data` over as it is (a small download's bytes held in memory).
    async fn push_owned(&mut self, data: Vec<u8>) -> bool {
        let len = data.len();
        self.full.send((data, len)).await.is_ok()
    }

    async fn hand_over(&mut self) -> bool {
        let mut next = match self.empty.recv().await {
            Some(buf) => buf,
            None => return false,
        };
        if next.len() < WRITE_BYTES {
            next.resize(WRITE_BYTES, 0);
        }
        let done = std::mem::replace(&mut self.current, (next, 0));
        self.full.send(done).await.is_ok()
    }

    /// Hand over what is left and wait until it is all written; the file
    /// back, or the first write error.
    async fn finish(mut self) -> std::io::Result<std::fs::File> {
        if self.current.1 > 0 {
            let done = std::mem::take(&mut self.current);
            let _ = self.full.send(done).await;
        }
        drop(self.full);
        joined(self.thread.await)
    }
}

/// The [`Writer`]'s thread.
fn write_buffers(
    file: &std::fs::File,
    write_back: bool,
    mut full: tokio::sync::mpsc::Receiver<(Vec<u8>, usize)>,
    empty: &tokio::sync::mpsc::Sender<Vec<u8>>,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut write_back = write_back.then(WriteBack::default);
    while let Some((buf, filled)) = full.blocking_recv() {
        (&mut &*file).write_all(buf.get(..filled).unwrap_or_default())?;
        if let Some(write_back) = write_back.as_mut() {
            write_back.wrote(file, filled as u64);
        }
        // The download may have finished already: then nobody needs it.
        let _ = empty.try_send(buf);
    }
    Ok(())
}

/// Standard output as a file (a second descriptor of it): written without
/// `std::io::Stdout`'s line buffering, which would look for line ends in
/// binary data.
fn stdout_file() -> std::io::Result<std::fs::File> {
    use std::os::fd::AsFd;
    Ok(std::fs::File::from(
        std::io::stdout().as_fd().try_clone_to_owned()?,
    ))
}

/// Copy the rest of a download into `out` (TYPE A line ends become LF).
/// Stops early, without an error, when `out` has failed: its
/// [`Writer::finish`] says why.
async fn copy_data(
    stream: &mut RetrStream<'_>,
    idle: Duration,
    ascii: bool,
    out: &mut Writer,
    bar: &Bar,
) -> Result<(), Failure> {
    if ascii {
        let mut buf = vec![0u8; 64 * 1024];
        let mut converter = FromNetwork::default();
        let mut converted = Vec::new();
        loop {
            let n = read_some(stream, idle, &mut buf).await?;
            if n == 0 {
                break;
            }
            converted.clear();
            converter.convert(&buf[..n], &mut converted);
            if !out.push(&converted).await {
                return Ok(());
            }
            bar.inc(n as u64);
        }
        converted.clear();
        converter.finish(&mut converted);
        out.push(&converted).await;
    } else {
        loop {
            let n = read_some(stream, idle, out.space()).await?;
            if n == 0 {
                break;
            }
            if !out.filled(n).await {
                return Ok(());
            }
            bar.inc(n as u64);
        }
    }
    Ok(())
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
    let mut out = if let Some(n) = small {
        let limit = SMALL_FILE_BYTES as usize;
        let mut data = Vec::with_capacity(n as usize);
        if read_to_memory(&mut stream, idle, &mut data, limit, bar).await? {
            let bytes = stream.finish().await?;
            let commit = Commit::spawn(move || commit_small(&data, &part, &dest, mtime));
            return Ok(Downloaded::Received { bytes, commit });
        }
        // It grew since it was listed: the rest goes through the file.
        let mut out = Writer::start(open_part(&part, false).await?, true);
        // Should the writer have stopped, its `finish` below says why.
        out.push_owned(data).await;
        out
    } else {
        Writer::start(open_part(&part, offset > 0).await?, true)
    };
    let copied = copy_data(&mut stream, idle, opts.ascii, &mut out, bar).await;
    // Whatever arrived is written, also when the download failed (for -c).
    let file = out.finish().await.map_err(local_error(&part))?;
    copied?;
    let bytes = stream.finish().await?;
    let commit = Commit::spawn(move || commit(file, &part, &dest, mtime));
    Ok(Downloaded::Received { bytes, commit })
}

/// The outcome of a blocking job that does I/O; its panic as an error.
fn joined<T>(job: Result<std::io::Result<T>, tokio::task::JoinError>) -> std::io::Result<T> {
    job.unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// Open `DEST.part` on the blocking pool: created (or emptied), or with
/// `append` opened to continue it.
async fn open_part(part: &Path, append: bool) -> Result<std::fs::File, Failure> {
    let path = part.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || {
        let mut options = std::fs::OpenOptions::new();
        if append {
            options.append(true);
        } else {
            options.write(true).create(true).truncate(true);
        }
        options.open(path)
    })
    .await;
    joined(opened).map_err(local_error(part))
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
            let stdout_error = |e| Failure::new(format!("standard output: {e}"));
            let mut out = Writer::start(stdout_file().map_err(stdout_error)?, false);
            let copied = copy_data(&mut stream, idle, common.ascii, &mut out, &bar).await;
            out.finish().await.map_err(stdout_error)?;
            copied?;
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
