//! Running the planned files: one queue shared out between `--parallel N`
//! connections, each taking the next file when it is done with one. A
//! downloaded file's fsync and rename run on a blocking thread meanwhile
//! (at most [`COMMITS_IN_FLIGHT`] per connection). A failed file is
//! reported and counted, its connection replaced, and the rest go on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ftps_client::StoreMode;

use super::{show, Job};
use crate::client::connect::{Conn, Prepared};
use crate::client::progress::Bar;
use crate::client::transfer::checks::after_upload;
use crate::client::transfer::{download, send, verify_size, Commit, DownloadOptions, Downloaded};
use crate::client::Failure;

/// Downloaded files whose local end (fsync, time, rename) may still run
/// while a connection goes on with the next file.
pub const COMMITS_IN_FLIGHT: usize = 16;

/// Download one file; its commit joins `commits`.
async fn download_job(
    conn: &mut Conn,
    job: &Job,
    verify: bool,
    bar: &Bar,
    commits: &mut Commits,
) -> Result<(), Failure> {
    let opts = DownloadOptions {
        mtime: job.mtime,
        size: Some(job.size),
        verify,
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

/// Upload one file, check its size, `--verify` it and give it the local
/// modification time (MFMT), where the server offers those.
async fn upload_job(conn: &mut Conn, job: &Job, verify: bool, bar: &Bar) -> Result<(), Failure> {
    let file = tokio::fs::File::open(&job.local)
        .await
        .map_err(|e| Failure::new(format!("{}: {e}", job.local.display())))?;
    send(conn, &job.remote, file, StoreMode::Replace, false, bar).await?;
    verify_size(conn, &job.remote, job.size).await?;
    after_upload(conn, &job.remote, Some(&job.local), job.mtime, verify, bar).await
}

/// How the jobs run: the direction and `--verify`.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Uploads (`--reverse`) rather than downloads.
    pub upload: bool,
    /// `--verify`, and the server offers HASH.
    pub verify: bool,
}

/// The bar's message: `mirror 3/20 files` (the bar shows the bytes).
pub fn files_done(done: usize, total: usize) -> String {
    format!("mirror {done}/{total} files")
}

/// Files finished (copied or failed), shown on the bar.
#[derive(Debug, Clone)]
struct Done {
    count: Arc<AtomicUsize>,
    total: usize,
}

impl Done {
    fn one_more(&self, bar: &Bar) {
        let done = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        bar.set_message(files_done(done, self.total));
    }
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
    options: JobOptions,
    done: Done,
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
        let result = if options.upload {
            upload_job(c, &job, options.verify, &bar).await
        } else {
            download_job(c, &job, options.verify, &bar, &mut commits).await
        };
        done.one_more(&bar);
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
pub async fn run_jobs(
    conn: Conn,
    prepared: &Prepared,
    jobs: Vec<Job>,
    parallel: usize,
    options: JobOptions,
    bar: &Bar,
) -> usize {
    let workers = parallel.min(jobs.len()).max(1);
    let done = Done {
        count: Arc::default(),
        total: jobs.len(),
    };
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
            options.clone(),
            done.clone(),
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
