//! `ftps get URL [DEST]`: a download into a file (see `download`), or with
//! `-` as DEST to standard output, written by the same [`Writer`] thread
//! as a file. `--verify` compares the server's SHA-256 (HASH) with the
//! file's, also for a file `-c` finds complete.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::checks::{self, compare, local_sha256, remote_sha256};
use super::download::{download_to_file, start_bar, start_retr};
use super::{copy_data, DownloadOptions, Outcome, Writer};
use crate::client::args::GetArgs;
use crate::client::connect::{base_name, redact_url, Conn, Prepared};
use crate::client::progress::{Bar, Output};
use crate::client::Failure;

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
    if args.verify && (common.ascii || to_stdout) {
        return Err(Failure::usage(
            "--verify compares the file's SHA-256: not for an ASCII transfer (the bytes differ on \
             both sides) or standard output",
        ));
    }
    let dest = dest_path(&name, args.dest);
    let mut conn = prepared.connect().await?;
    let shown = String::from_utf8_lossy(&name).into_owned();
    let bar = output.bar(None, shown.clone());
    let started = std::time::Instant::now();
    let verify = args.verify && checks::verify_offered(&conn, &bar);
    let result = if to_stdout {
        download_to_stdout(&mut conn, &url.path, common.ascii, &bar).await
    } else {
        let opts = DownloadOptions {
            resume: common.resume,
            ascii: common.ascii,
            verify,
            ..DownloadOptions::default()
        };
        download_to_file(&mut conn, &url.path, &dest, opts, &bar, true).await
    };
    bar.finish();
    let what = format!("get {}", String::from_utf8_lossy(&url.path));
    let outcome = result.map_err(|f| f.context(&what))?;
    if outcome == Outcome::AlreadyComplete && verify {
        if let Some(there) = remote_sha256(&mut conn, &url.path, &bar).await? {
            let here = local_sha256(&dest).await?;
            compare(&dest, &here, &there).map_err(|f| f.context(&what))?;
        }
    }
    let took = started.elapsed();
    conn.quit().await;
    match outcome {
        Outcome::AlreadyComplete => output.note(&format!("{}: already complete", dest.display())),
        Outcome::Done(bytes) => output.summary(&shown, "received", bytes, took),
    }
    Ok(())
}

/// Where the download of the remote file `name` goes: DEST, or the same
/// name in the current directory or in DEST when that is a directory.
fn dest_path(name: &[u8], dest: Option<PathBuf>) -> PathBuf {
    match dest {
        None => PathBuf::from(OsStr::from_bytes(name)),
        Some(d) if d.is_dir() => d.join(OsStr::from_bytes(name)),
        Some(d) => d,
    }
}

/// Download `remote` to standard output.
async fn download_to_stdout(
    conn: &mut Conn,
    remote: &[u8],
    ascii: bool,
    bar: &Bar,
) -> Result<Outcome, Failure> {
    conn.prepare_data().await?;
    let idle = conn.idle_timeout;
    let mut stream = start_retr(conn, remote, 0, ascii).await?;
    start_bar(bar, true, &stream, 0, None);
    let stdout_error = |e| Failure::new(format!("standard output: {e}"));
    let mut out = Writer::start(stdout_file().map_err(stdout_error)?, false);
    let copied = copy_data(&mut stream, idle, ascii, &mut out, bar).await;
    out.finish().await.map_err(stdout_error)?;
    copied?;
    Ok(Outcome::Done(stream.finish().await?))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn without_dest_the_remote_name_is_used_here() {
        assert_eq!(dest_path(b"a.txt", None), PathBuf::from("a.txt"));
    }

    #[test]
    fn a_dest_directory_gets_the_remote_name() {
        let dir = tempfile::tempdir().unwrap();
        let got = dest_path(b"a.txt", Some(dir.path().to_path_buf()));
        assert_eq!(got, dir.path().join("a.txt"));
    }

    #[test]
    fn a_dest_that_is_no_directory_is_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("b.txt");
        assert_eq!(dest_path(b"a.txt", Some(dest.clone())), dest);
    }
}
