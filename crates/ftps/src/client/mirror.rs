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
//! [`COMMITS_IN_FLIGHT`] per connection). A failed file is
//! reported and counted, its connection replaced, and the rest go on; the
//! exit code is non-zero when any failed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ftps_client::{EntryKind, StoreMode};

use super::args::MirrorArgs;
use super::connect::{Conn, Prepared};
use super::progress::{Bar, Output};
use super::transfer::{download, send, verify_size, Commit, DownloadOptions, Downloaded};
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

/// A local directory entry (symbolic links are not followed).
#[derive(Debug, Clone, Copy)]
enum Local {
    File { size: u64, mtime: i64 },
    Dir,
    Other,
}

/// Is the target copy not older than the source (whole seconds)? When
/// either time is unknown, the size alone decides.
fn not_older(target: Option<i64>, source: Option<i64>) -> bool {
    match (target, source) {
        (Some(t), Some(s)) => t >= s,
        _ => true,
    }
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

fn local_entries(dir: &Path) -> Result<HashMap<Vec<u8>, Local>, Failure> {
    let context = |e: std::io::Error| Failure::new(format!("{}: {e}", dir.display()));
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(dir).map_err(context)? {
        let entry = entry.map_err(context)?;
        let meta = entry.metadata().map_err(context)?;
        let kind = if meta.file_type().is_dir() {
            Local::Dir
        } else if meta.file_type().is_file() {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            Local::File {
                size: meta.len(),
                mtime,
            }
        } else {
            Local::Other
        };
        out.insert(entry.file_name().as_bytes().to_vec(), kind);
    }
    Ok(out)
}

fn remove_local(path: &Path, kind: Local) -> Result<(), Failure> {
    match kind {
        Local::Dir => std::fs::remove_dir_all(path),
        _ => std::fs::remove_file(path),
    }
    .map_err(|e| Failure::new(format!("deleting {}: {e}", path.display())))
}

fn local_path(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

/// Walk the remote tree, create local directories, plan the downloads.
async fn plan_download(
    conn: &mut Conn,
    root: &[u8],
    local_root: &Path,
    delete: bool,
    bar: &Bar,
) -> Result<Plan, Failure> {
    let mut plan = Plan::default();
    if !local_root.is_dir() {
        std::fs::create_dir_all(local_root)
            .map_err(|e| Failure::new(format!("{}: {e}", local_root.display())))?;
        plan.dirs_created += 1;
    }
    let mut stack = vec![(root.to_vec(), local_root.to_path_buf())];
    while let Some((rdir, ldir)) = stack.pop() {
        let entries = conn
            .list(&rdir)
            .await
            .map_err(|e| Failure::from(e).context(format!("listing {}", show(&rdir))))?;
        let local = local_entries(&ldir)?;
        let mut seen = HashSet::new();
        for e in entries {
            seen.insert(e.name.clone());
            let lpath = local_path(&ldir, &e.name);
            let rpath = join(&rdir, &e.name);
            let existing = local.get(&e.name).copied();
            let conflict = |what: &str| {
                bar.eprintln(&format!(
                    "error: {} is {what} locally but not on the server (--delete replaces it)",
                    lpath.display()
                ));
            };
            match e.kind {
                EntryKind::Dir => {
                    match existing {
                        Some(Local::Dir) => {}
                        Some(other) if delete => {
                            remove_local(&lpath, other)?;
                            std::fs::create_dir(&lpath)
                                .map_err(|e| Failure::new(format!("{}: {e}", lpath.display())))?;
                            plan.dirs_created += 1;
                        }
                        Some(_) => {
                            conflict("not a directory");
                            plan.problems += 1;
                            continue;
                        }
                        None => {
                            std::fs::create_dir(&lpath)
                                .map_err(|e| Failure::new(format!("{}: {e}", lpath.display())))?;
                            plan.dirs_created += 1;
                        }
                    }
                    stack.push((rpath, lpath));
                }
                EntryKind::File => {
                    match existing {
                        Some(Local::File { size, mtime })
                            if size == e.size && not_older(Some(mtime), e.modified) =>
                        {
                            plan.up_to_date += 1;
                            continue;
                        }
                        Some(Local::Dir) if !delete => {
                            conflict("a directory");
                            plan.problems += 1;
                            continue;
                        }
                        Some(Local::Dir) => remove_local(&lpath, Local::Dir)?,
                        _ => {}
                    }
                    plan.jobs.push(Job {
                        remote: rpath,
                        local: lpath,
                        size: e.size,
                        mtime: e.modified,
                    });
                }
                EntryKind::Symlink | EntryKind::Other => {}
            }
        }
        if delete {
            for (name, kind) in &local {
                if !seen.contains(name) {
                    remove_local(&local_path(&ldir, name), *kind)?;
                    plan.deleted += 1;
                }
            }
        }
    }
    Ok(plan)
}

/// Delete a remote directory and everything in it.
async fn remove_remote_tree(conn: &mut Conn, path: &[u8]) -> Result<(), Failure> {
    let mut pending = vec![path.to_vec()];
    let mut dirs = Vec::new();
    while let Some(dir) = pending.pop() {
        let entries = conn
            .list(&dir)
            .await
            .map_err(|e| Failure::from(e).context(format!("listing {}", show(&dir))))?;
        for e in entries {
            let child = join(&dir, &e.name);
            if e.kind == EntryKind::Dir {
                pending.push(child);
            } else {
                conn.client
                    .delete(&child)
                    .await
                    .map_err(|e| Failure::from(e).context(format!("deleting {}", show(&child))))?;
            }
        }
        dirs.push(dir);
    }
    for dir in dirs.iter().rev() {
        conn.client
            .rmdir(dir)
            .await
            .map_err(|e| Failure::from(e).context(format!("removing {}", show(dir))))?;
    }
    Ok(())
}

async fn remote_mkdir(conn: &mut Conn, path: &[u8]) -> Result<(), Failure> {
    conn.client
        .mkdir(path)
        .await
        .map_err(|e| Failure::from(e).context(format!("creating {}", show(path))))
}

/// Walk the local tree, create remote directories, plan the uploads.
async fn plan_upload(
    conn: &mut Conn,
    root: &[u8],
    local_root: &Path,
    delete: bool,
    bar: &Bar,
) -> Result<Plan, Failure> {
    let mut plan = Plan::default();
    if !local_root.is_dir() {
        return Err(Failure::usage(format!(
            "{} is not a directory",
            local_root.display()
        )));
    }
    // Does the remote root exist? A 550 to the listing says no.
    let mut first = None;
    if !root.is_empty() {
        match conn.list(root).await {
            Ok(entries) if entries.is_empty() => {
                // Some servers (vsftpd) list a missing directory as empty
                // instead of answering 550: make sure it exists. If it did,
                // the MKD fails harmlessly.
                if conn.client.mkdir(root).await.is_ok() {
                    plan.dirs_created += 1;
                }
                first = Some(entries);
            }
            Ok(entries) => first = Some(entries),
            Err(e) if e.reply().is_some_and(|r| r.code == 550) => {
                remote_mkdir(conn, root).await?;
                plan.dirs_created += 1;
                first = Some(Vec::new());
            }
            Err(e) => {
                return Err(Failure::from(e).context(format!("listing {}", show(root))));
            }
        }
    }
    let mut stack = vec![(local_root.to_path_buf(), root.to_vec(), first)];
    while let Some((ldir, rdir, known)) = stack.pop() {
        let remote = match known {
            Some(entries) => entries,
            None => conn
                .list(&rdir)
                .await
                .map_err(|e| Failure::from(e).context(format!("listing {}", show(&rdir))))?,
        };
        let remote: HashMap<Vec<u8>, ftps_client::Entry> =
            remote.into_iter().map(|e| (e.name.clone(), e)).collect();
        let mut local: Vec<(Vec<u8>, Local)> = local_entries(&ldir)?.into_iter().collect();
        local.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, kind) in &local {
            let rpath = join(&rdir, name);
            let lpath = local_path(&ldir, name);
            let there = remote.get(name);
            let conflict = |what: &str| {
                bar.eprintln(&format!(
                    "error: {} is {what} on the server (--delete replaces it)",
                    show(&rpath)
                ));
            };
            match *kind {
                Local::Dir => match there.map(|e| &e.kind) {
                    Some(EntryKind::Dir) => stack.push((lpath, rpath, None)),
                    Some(_) if !delete => {
                        conflict("not a directory");
                        plan.problems += 1;
                    }
                    other => {
                        if other.is_some() {
                            conn.client.delete(&rpath).await.map_err(|e| {
                                Failure::from(e).context(format!("deleting {}", show(&rpath)))
                            })?;
                            plan.deleted += 1;
                        }
                        remote_mkdir(conn, &rpath).await?;
                        plan.dirs_created += 1;
                        stack.push((lpath, rpath, Some(Vec::new())));
                    }
                },
                Local::File { size, mtime } => {
                    match there {
                        Some(e)
                            if e.kind == EntryKind::File
                                && e.size == size
                                && not_older(e.modified, Some(mtime)) =>
                        {
                            plan.up_to_date += 1;
                            continue;
                        }
                        Some(e) if e.kind == EntryKind::Dir && !delete => {
                            conflict("a directory");
                            plan.problems += 1;
                            continue;
                        }
                        Some(e) if e.kind == EntryKind::Dir => {
                            remove_remote_tree(conn, &rpath).await?;
                            plan.deleted += 1;
                        }
                        _ => {}
                    }
                    plan.jobs.push(Job {
                        remote: rpath,
                        local: lpath,
                        size,
                        mtime: None,
                    });
                }
                Local::Other => {}
            }
        }
        if delete {
            let names: HashSet<&Vec<u8>> = local.iter().map(|(n, _)| n).collect();
            for (name, entry) in &remote {
                if names.contains(name) {
                    continue;
                }
                let rpath = join(&rdir, name);
                match entry.kind {
                    EntryKind::Dir => remove_remote_tree(conn, &rpath).await?,
                    _ => conn.client.delete(&rpath).await.map_err(|e| {
                        Failure::from(e).context(format!("deleting {}", show(&rpath)))
                    })?,
                }
                plan.deleted += 1;
            }
        }
    }
    Ok(plan)
}

/// Downloaded files whose local end (fsync, time, rename) may still run
/// while a connection goes on with the next file.
const COMMITS_IN_FLIGHT: usize = 16;

/// Download one file; its commit joins `commits`.
async fn download_job(
    conn: &mut Conn,
    job: &Job,
    bar: &Bar,
    commits: &mut Commits,
) -> Result<(), Failure> {
    let opts = DownloadOptions {
        mtime: job.mtime,
        size: Some(job.size),
        ..DownloadOptions::default()
    };
    if let Downloaded::Received { commit, .. } =
        download(conn, &job.remote, &job.local, opts, bar, false).await?
    {
        commits.add(job.remote.clone(), commit).await;
    }
    Ok(())
}

/// A worker's downloads still being written locally; a failed one is
/// reported and counted like any other failed file.
struct Commits {
    pending: VecDeque<(Vec<u8>, Commit)>,
    failures: Arc<AtomicUsize>,
    bar: Bar,
}

impl Commits {
    /// One more; waits for the oldest while more than
    /// [`COMMITS_IN_FLIGHT`] are running.
    async fn add(&mut self, remote: Vec<u8>, commit: Commit) {
        self.pending.push_back((remote, commit));
        while self.pending.len() > COMMITS_IN_FLIGHT {
            self.wait_one().await;
        }
    }

    /// Wait for the oldest.
    async fn wait_one(&mut self) {
        if let Some((remote, commit)) = self.pending.pop_front() {
            if let Err(f) = commit.wait().await {
                report(&self.failures, &self.bar, &remote, &f);
            }
        }
    }

    async fn wait_all(&mut self) {
        while !self.pending.is_empty() {
            self.wait_one().await;
        }
    }
}

fn report(failures: &AtomicUsize, bar: &Bar, remote: &[u8], f: &Failure) {
    failures.fetch_add(1, Ordering::Relaxed);
    bar.eprintln(&format!("error: {}: {}", show(remote), f.message()));
    if let Some(hint) = f.hint() {
        bar.eprintln(&format!("hint: {hint}"));
    }
}

async fn upload_job(conn: &mut Conn, job: &Job, bar: &Bar) -> Result<(), Failure> {
    let file = tokio::fs::File::open(&job.local)
        .await
        .map_err(|e| Failure::new(format!("{}: {e}", job.local.display())))?;
    send(conn, &job.remote, file, StoreMode::Replace, false, bar).await?;
    verify_size(conn, &job.remote, job.size).await
}

type Queue = Arc<Mutex<VecDeque<Job>>>;

fn next_job(queue: &Queue) -> Option<Job> {
    queue.lock().ok().and_then(|mut q| q.pop_front())
}

/// One connection's share: take files from the queue until it is empty.
async fn worker(
    mut conn: Option<Conn>,
    prepared: Prepared,
    queue: Queue,
    failures: Arc<AtomicUsize>,
    upload: bool,
    bar: Bar,
) {
    let mut commits = Commits {
        pending: VecDeque::new(),
        failures: failures.clone(),
        bar: bar.clone(),
    };
    while let Some(job) = next_job(&queue) {
        if conn.is_none() {
            match prepared.connect().await {
                Ok(c) => conn = Some(c),
                Err(f) => {
                    bar.eprintln(&format!("error: another connection: {}", f.message()));
                    if let Ok(mut q) = queue.lock() {
                        q.push_front(job);
                    }
                    commits.wait_all().await;
                    return;
                }
            }
        }
        let Some(c) = conn.as_mut() else { break };
        bar.set_message(format!("mirror: {}", show(&job.remote)));
        let result = if upload {
            upload_job(c, &job, &bar).await
        } else {
            download_job(c, &job, &bar, &mut commits).await
        };
        if let Err(f) = result {
            report(&failures, &bar, &job.remote, &f);
            // The control connection may be out of step: use a fresh one.
            conn = None;
        }
    }
    commits.wait_all().await;
    if let Some(c) = conn {
        c.quit().await;
    }
}

/// Share the jobs out between `parallel` connections (the first is `conn`);
/// returns how many files failed or were left undone.
async fn run_jobs(
    conn: Conn,
    prepared: &Prepared,
    jobs: Vec<Job>,
    parallel: usize,
    upload: bool,
    bar: &Bar,
) -> usize {
    let workers = parallel.min(jobs.len()).max(1);
    let queue: Queue = Arc::new(Mutex::new(jobs.into()));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let mut first = Some(conn);
    for _ in 0..workers {
        tasks.spawn(worker(
            first.take(),
            prepared.clone(),
            queue.clone(),
            failures.clone(),
            upload,
            bar.clone(),
        ));
    }
    let mut crashed = 0;
    while let Some(joined) = tasks.join_next().await {
        if joined.is_err() {
            crashed += 1;
        }
    }
    let left = queue.lock().map(|q| q.len()).unwrap_or(0);
    failures.load(Ordering::Relaxed) + left + crashed
}

/// `ftps mirror URL DIR` / `ftps mirror --reverse DIR URL`.
pub async fn mirror(args: MirrorArgs) -> Result<(), Failure> {
    let common = &args.common;
    let output = Output::new(common);
    let is_url = |s: &str| s.contains("://");
    let (url_text, local_root) = if args.reverse {
        if !is_url(&args.target) {
            return Err(Failure::usage(
                "with --reverse the local directory comes first: ftps mirror --reverse DIR URL",
            ));
        }
        (&args.target, PathBuf::from(&args.source))
    } else {
        if !is_url(&args.source) {
            return Err(Failure::usage(
                "mirror downloads URL to DIR; to upload use: ftps mirror --reverse DIR URL",
            ));
        }
        (&args.source, PathBuf::from(&args.target))
    };
    let (url, prepared) = Prepared::from_url(url_text, common)?;
    let root = remote_root(&url.path);
    let mut conn = prepared.connect().await?;
    let walk_bar = Bar::hidden();
    let plan = if args.reverse {
        plan_upload(&mut conn, &root, &local_root, args.delete, &walk_bar).await?
    } else {
        plan_download(&mut conn, &root, &local_root, args.delete, &walk_bar).await?
    };
    let count = plan.jobs.len();
    let bytes: u64 = plan.jobs.iter().map(|j| j.size).sum();
    let bar = output.bar(Some(bytes), format!("mirror: {count} files"));
    let failed = run_jobs(
        conn,
        &prepared,
        plan.jobs,
        usize::from(args.parallel),
        args.reverse,
        &bar,
    )
    .await;
    bar.finish();
    let verb = if args.reverse {
        "uploaded"
    } else {
        "downloaded"
    };
    output.note(&format!(
        "mirror: {} {verb} ({bytes} bytes), {} up to date, {} directories created, {} deleted",
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
}
