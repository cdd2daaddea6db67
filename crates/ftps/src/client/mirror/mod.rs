//! `ftps mirror URL DIR` (download) and `ftps mirror --reverse DIR URL`
//! (upload): walk the source tree, create missing directories, plan the
//! files to copy — a file is skipped when the target has one of the same
//! size that is not older (compared in whole seconds; when the server gives
//! no time, size alone decides) — and with `--delete` remove what the source
//! side does not have. Downloads get the remote modification time, so the
//! next run skips them. Symbolic links and special files are left alone.
//!
//! The walk and the deletions use one control connection; the planned files
//! are then shared out from one queue between `--parallel N` connections,
//! each taking the next file when it is done with one (a downloaded file's
//! fsync and rename run on a blocking thread meanwhile, at most
//! [`COMMITS_IN_FLIGHT`](jobs::COMMITS_IN_FLIGHT) per connection). A failed
//! file is reported and counted, its connection replaced, and the rest go
//! on; the exit code is non-zero when any failed.
//!
//! Here: the command, the plan and the paths both walks share. The rules
//! in `plan`, the walks in `download` and `upload`, the copying in `jobs`.

mod download;
mod jobs;
mod plan;
mod upload;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ftps_client::Entry;

use self::plan::Kind;
use super::args::MirrorArgs;
use super::connect::{Conn, Prepared};
use super::progress::{time_and_rate, Bar, Output};
use super::transfer::checks::verify_offered;
use super::Failure;

/// One file to copy.
#[derive(Debug, Clone)]
struct Job {
    remote: Vec<u8>,
    local: PathBuf,
    size: u64,
    mtime: Option<i64>,
}

/// What the walk did and found.
#[derive(Debug, Default)]
struct Plan {
    jobs: Vec<Job>,
    up_to_date: usize,
    deleted: usize,
    dirs_created: usize,
    problems: usize,
}

fn show(path: &[u8]) -> String {
    if path.is_empty() {
        ".".into()
    } else {
        String::from_utf8_lossy(path).into_owned()
    }
}

/// The remote root without trailing slashes (but `/` stays `/`).
fn remote_root(path: &[u8]) -> Vec<u8> {
    let mut root = path.to_vec();
    while root.len() > 1 && root.ends_with(b"/") {
        root.pop();
    }
    root
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = dir.to_vec();
    if !out.is_empty() && !out.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// A remote directory's entries. Lines of its listing that are no entry
/// this client can read are reported and count as failed items: a mirror
/// that silently missed a file would look complete.
async fn list(
    conn: &mut Conn,
    dir: &[u8],
    plan: &mut Plan,
    bar: &Bar,
) -> Result<Vec<Entry>, Failure> {
    bar.set_message(format!("mirror: scanning {}", show(dir)));
    let listing = conn
        .listing(dir)
        .await
        .map_err(|e| Failure::from(e).context(format!("listing {}", show(dir))))?;
    if let Some(first) = listing.unreadable.first() {
        bar.eprintln(&format!(
            "error: listing {}: {} line(s) are no entry this client can read; the first: {}",
            show(dir),
            listing.unreadable_count,
            String::from_utf8_lossy(first)
        ));
        plan.problems += listing.unreadable_count;
    }
    Ok(listing.entries)
}

/// `name` in the local directory `dir`.
fn local_path(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

/// The entries of a local directory (symbolic links are not followed; a
/// file without a modification time counts as from 1970).
fn local_entries(dir: &Path) -> Result<HashMap<Vec<u8>, Kind>, Failure> {
    let context = |e: std::io::Error| Failure::new(format!("{}: {e}", dir.display()));
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(dir).map_err(context)? {
        let entry = entry.map_err(context)?;
        let meta = entry.metadata().map_err(context)?;
        let kind = if meta.file_type().is_dir() {
            Kind::Dir
        } else if meta.file_type().is_file() {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            Kind::File {
                size: meta.len(),
                mtime: Some(mtime),
            }
        } else {
            Kind::Other
        };
        out.insert(entry.file_name().as_bytes().to_vec(), kind);
    }
    Ok(out)
}

/// The URL and the local directory, in the order the direction wants.
fn url_and_dir(args: &MirrorArgs) -> Result<(&str, PathBuf), Failure> {
    let is_url = |s: &str| s.contains("://");
    if args.reverse {
        if !is_url(&args.target) {
            return Err(Failure::usage(
                "with --reverse the local directory comes first: ftps mirror --reverse DIR URL",
            ));
        }
        Ok((&args.target, PathBuf::from(&args.source)))
    } else {
        if !is_url(&args.source) {
            return Err(Failure::usage(
                "mirror downloads URL to DIR; to upload use: ftps mirror --reverse DIR URL",
            ));
        }
        Ok((&args.source, PathBuf::from(&args.target)))
    }
}

/// `ftps mirror URL DIR` / `ftps mirror --reverse DIR URL`.
pub async fn mirror(args: MirrorArgs) -> Result<(), Failure> {
    let common = &args.common;
    let output = Output::new(common);
    let (url_text, local_root) = url_and_dir(&args)?;
    let (url, prepared) = Prepared::from_url(url_text, common)?;
    let root = remote_root(&url.path);
    let mut conn = prepared.connect().await?;
    let walk_bar = output.bar(None, "mirror: scanning".into());
    let verify = args.verify && verify_offered(&conn, &walk_bar);
    let started = std::time::Instant::now();
    let plan = if args.reverse {
        upload::plan_upload(&mut conn, &root, &local_root, args.delete, &walk_bar).await?
    } else {
        download::plan_download(&mut conn, &root, &local_root, args.delete, &walk_bar).await?
    };
    walk_bar.finish();
    let count = plan.jobs.len();
    let bytes: u64 = plan.jobs.iter().map(|j| j.size).sum();
    let bar = output.bar(Some(bytes), jobs::files_done(0, count));
    let parallel = usize::from(args.parallel);
    let options = jobs::JobOptions {
        upload: args.reverse,
        verify,
    };
    let failed = jobs::run_jobs(conn, &prepared, plan.jobs, parallel, options, &bar).await;
    bar.finish();
    let verb = if args.reverse {
        "uploaded"
    } else {
        "downloaded"
    };
    let (time, rate) = time_and_rate(bytes, started.elapsed());
    output.note(&format!(
        "mirror: {} {verb} ({bytes} bytes in {time}, {rate}), {} up to date, \
         {} directories created, {} deleted",
        count - failed.min(count),
        plan.up_to_date,
        plan.dirs_created,
        plan.deleted
    ));
    let problems = failed + plan.problems;
    if problems > 0 {
        return Err(Failure::new(format!(
            "mirror incomplete: {problems} of {} items failed",
            count + plan.problems
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths() {
        assert_eq!(remote_root(b"a/b//"), b"a/b");
        assert_eq!(remote_root(b"/"), b"/");
        assert_eq!(join(b"", b"x"), b"x");
        assert_eq!(join(b"/", b"x"), b"/x");
        assert_eq!(join(b"a", b"x"), b"a/x");
    }

    #[test]
    fn local_entries_tell_files_from_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"abc").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let entries = local_entries(dir.path()).unwrap();
        assert_eq!(entries.get(b"d".as_slice()), Some(&Kind::Dir));
        assert!(matches!(
            entries.get(b"f".as_slice()),
            Some(Kind::File {
                size: 3,
                mtime: Some(_)
            })
        ));
    }
}
