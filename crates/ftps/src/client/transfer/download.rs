//! A download into a file: `-c` deciding where to continue (`DEST.part`,
//! else `DEST`, against the server's size), RETR (REST when continuing),
//! the data into `DEST.part` — a small file through memory — and the local
//! end, fsync then rename to `DEST`, left running on a blocking thread
//! ([`Commit`]) for `mirror` to wait for when it suits it. With `--verify`
//! the server's SHA-256 (HASH) is asked for once the data is in, and the
//! local end compares it with `DEST.part`'s before the rename: a download
//! that differs never becomes `DEST`.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use ftps_client::RetrStream;

use super::checks::{bytes_sha256, compare, file_sha256, remote_sha256};
use super::{
    copy_data, joined, local_error, part_path, read_to_memory, resume_point, Outcome, Resume,
    Writer,
};
use crate::client::connect::Conn;
use crate::client::progress::Bar;
use crate::client::Failure;

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

/// What the local end of a download checks and keeps.
#[derive(Debug, Clone, Default)]
struct Keep {
    /// The modification time to give the file (Unix seconds).
    mtime: Option<i64>,
    /// The server's SHA-256 of the file (`--verify`), hex.
    sha256: Option<String>,
}

/// The local end of a download, run on a blocking thread: give the file its
/// time, make it durable, compare its SHA-256 when the server's is known,
/// and only then rename `DEST.part` to `DEST`.
fn commit(file: std::fs::File, part: &Path, dest: &Path, keep: Keep) -> Result<(), Failure> {
    if let Some(time) = keep.mtime.and_then(system_time) {
        // Best effort: a file system without times still gets the content.
        let _ = file.set_modified(time);
    }
    file.sync_all().map_err(local_error(part))?;
    drop(file);
    if let Some(there) = &keep.sha256 {
        let here = file_sha256(part).map_err(local_error(part))?;
        compare(part, &here, there).map_err(differs)?;
    }
    std::fs::rename(part, dest).map_err(local_error(dest))
}

/// The hint of a download whose SHA-256 differs from the server's.
fn differs(failure: Failure) -> Failure {
    failure.with_hint(
        "the download was changed on the way, or the file changed on the server meanwhile: \
         delete the .part file and download again",
    )
}

/// The local end of a small download held in memory: compare its SHA-256,
/// write `DEST.part`, then [`commit`] it.
fn commit_small(data: &[u8], part: &Path, dest: &Path, keep: Keep) -> Result<(), Failure> {
    use std::io::Write;
    let mut file = std::fs::File::create(part).map_err(local_error(part))?;
    file.write_all(data).map_err(local_error(part))?;
    if let Some(there) = &keep.sha256 {
        compare(part, &bytes_sha256(data), there).map_err(differs)?;
    }
    commit(
        file,
        part,
        dest,
        Keep {
            sha256: None,
            ..keep
        },
    )
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

/// RETR from `offset` (or in TYPE A).
pub(super) async fn start_retr<'a>(
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
pub(super) fn start_bar(
    bar: &Bar,
    single: bool,
    stream: &RetrStream<'_>,
    offset: u64,
    known: Option<u64>,
) {
    if single {
        if let Some(total) = known.or_else(|| stream.expected().map(|n| n + offset)) {
            bar.set_length(total);
        }
        bar.set_position(offset);
    }
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
    /// `--verify`: compare the server's SHA-256 (the caller has checked
    /// that the server offers HASH).
    pub verify: bool,
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
    let (offset, from_dest) = if opts.resume {
        resume_offset(&part, dest)
    } else {
        (0, false)
    };
    conn.prepare_data().await?;
    let size = remote_size(conn, remote, opts).await;
    if offset > 0 {
        if let Some(done) = settle_resume(offset, from_dest, size, &part, dest)? {
            return Ok(done);
        }
    }
    let idle = conn.idle_timeout;
    let dest = dest.to_path_buf();
    let mut keep = Keep {
        mtime: opts.mtime,
        sha256: None,
    };
    // The file is made only once the server has agreed to send (150).
    let mut stream = start_retr(conn, remote, offset, opts.ascii).await?;
    start_bar(bar, single, &stream, offset, size);
    let small = size.filter(|&n| offset == 0 && !opts.ascii && n <= SMALL_FILE_BYTES);
    let mut out = if let Some(n) = small {
        let limit = SMALL_FILE_BYTES as usize;
        let mut data = Vec::with_capacity(n as usize);
        if read_to_memory(&mut stream, idle, &mut data, limit, bar).await? {
            let bytes = stream.finish().await?;
            if opts.verify {
                keep.sha256 = remote_sha256(conn, remote, bar).await?;
            }
            let commit = Commit::spawn(move || commit_small(&data, &part, &dest, keep));
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
    if opts.verify {
        keep.sha256 = remote_sha256(conn, remote, bar).await?;
    }
    let commit = Commit::spawn(move || commit(file, &part, &dest, keep));
    Ok(Downloaded::Received { bytes, commit })
}

/// Where a `-c` download continues: after the bytes of `DEST.part`, else
/// of `DEST` (then true: it becomes `DEST.part` before the transfer);
/// from the start when neither is a file.
fn resume_offset(part: &Path, dest: &Path) -> (u64, bool) {
    if let Ok(meta) = std::fs::metadata(part) {
        (meta.len(), false)
    } else {
        match std::fs::metadata(dest) {
            Ok(meta) if meta.is_file() => (meta.len(), true),
            _ => (0, false),
        }
    }
}

/// The remote size: as given, else SIZE where the server has it (not for
/// TYPE A); `None` when unknown.
async fn remote_size(conn: &mut Conn, remote: &[u8], opts: DownloadOptions) -> Option<u64> {
    match opts.size {
        Some(n) => Some(n),
        None if !opts.ascii && conn.client.features().size => conn.client.size(remote).await.ok(),
        None => None,
    }
}

/// A `-c` download with `offset` bytes here (in `DEST` when `from_dest`)
/// and `size` on the server, when known: already complete (`DEST.part`
/// renamed to `DEST`), refused (more here than there), or `None`: to be
/// continued in `DEST.part`.
fn settle_resume(
    offset: u64,
    from_dest: bool,
    size: Option<u64>,
    part: &Path,
    dest: &Path,
) -> Result<Option<Downloaded>, Failure> {
    if let Some(size) = size {
        let holder = if from_dest { dest } else { part };
        match resume_point(offset, size) {
            Resume::Complete => {
                if !from_dest {
                    std::fs::rename(part, dest).map_err(local_error(dest))?;
                }
                return Ok(Some(Downloaded::AlreadyComplete));
            }
            Resume::Longer(_) => {
                return Err(Failure::new(format!(
                    "{} has {offset} bytes, more than the {size} on the server: not resuming",
                    holder.display()
                ))
                .with_hint("delete it, or download again without -c"));
            }
            Resume::From(_) => {}
        }
    }
    if from_dest {
        std::fs::rename(dest, part).map_err(local_error(dest))?;
    }
    Ok(None)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resume_continues_the_part_file_first() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        std::fs::write(&dest, b"12345").unwrap();
        std::fs::write(part_path(&dest), b"12").unwrap();
        assert_eq!(resume_offset(&part_path(&dest), &dest), (2, false));
    }

    #[test]
    fn resume_without_part_file_continues_dest() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        std::fs::write(&dest, b"12345").unwrap();
        assert_eq!(resume_offset(&part_path(&dest), &dest), (5, true));
    }

    #[test]
    fn resume_starts_over_without_a_file_to_continue() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("d");
        assert_eq!(resume_offset(&part_path(&dest), &dest), (0, false));
        std::fs::create_dir(&dest).unwrap();
        assert_eq!(resume_offset(&part_path(&dest), &dest), (0, false));
    }

    #[test]
    fn resume_of_a_complete_part_file_renames_it() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let part = part_path(&dest);
        std::fs::write(&part, b"123").unwrap();
        let done = settle_resume(3, false, Some(3), &part, &dest).unwrap();
        assert!(matches!(done, Some(Downloaded::AlreadyComplete)));
        assert_eq!(std::fs::read(&dest).unwrap(), b"123");
        assert!(!part.exists());
    }

    #[test]
    fn resume_of_a_longer_local_file_is_refused_and_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let part = part_path(&dest);
        std::fs::write(&dest, b"12345").unwrap();
        let refused = settle_resume(5, true, Some(3), &part, &dest).unwrap_err();
        assert!(
            refused.message().contains("more than the 3"),
            "{}",
            refused.message()
        );
        assert!(dest.exists() && !part.exists());
    }

    #[test]
    fn resume_of_dest_moves_it_to_the_part_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let part = part_path(&dest);
        std::fs::write(&dest, b"12").unwrap();
        assert!(settle_resume(2, true, None, &part, &dest)
            .unwrap()
            .is_none());
        assert_eq!(std::fs::read(&part).unwrap(), b"12");
        assert!(!dest.exists());
    }
}
