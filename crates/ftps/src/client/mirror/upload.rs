//! The walk of `ftps mirror --reverse DIR URL`: read the local tree
//! directory by directory, list the remote one beside it, make the missing
//! remote directories (the remote root too), plan the files to upload, and
//! with `--delete` remove the remote entries the local tree does not have.
//! The rules are in [`super::plan`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ftps_client::{Entry, EntryKind};

use super::plan::{decide, extras, Kind, Step};
use super::{join, list, local_entries, local_path, show, Job, Plan};
use crate::client::connect::Conn;
use crate::client::progress::Bar;
use crate::client::Failure;

/// A directory still to walk: local, remote, and the remote entries when
/// already known (a directory just made has none).
type Pending = (PathBuf, Vec<u8>, Option<Vec<Entry>>);

/// Walk the local tree, create remote directories, plan the uploads.
pub async fn plan_upload(
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
    let first = remote_root_entries(conn, root, &mut plan, bar).await?;
    let mut stack: Vec<Pending> = vec![(local_root.to_path_buf(), root.to_vec(), first)];
    while let Some((ldir, rdir, known)) = stack.pop() {
        let remote = match known {
            Some(entries) => entries,
            None => list(conn, &rdir, &mut plan, bar).await?,
        };
        let remote: HashMap<Vec<u8>, Entry> =
            remote.into_iter().map(|e| (e.name.clone(), e)).collect();
        let mut local: Vec<(Vec<u8>, Kind)> = local_entries(&ldir)?.into_iter().collect();
        local.sort_by(|a, b| a.0.cmp(&b.0));
        let list_times = !conn.client.features().mlst;
        let now = unix_now();
        for (name, kind) in &local {
            let target = remote
                .get(name)
                .map(|e| Kind::of_target(e, list_times, now));
            let step = decide(*kind, target, delete);
            let (lpath, rpath) = (local_path(&ldir, name), join(&rdir, name));
            if let Some(dir) = take_step(conn, step, lpath, rpath, &mut plan, bar).await? {
                stack.push(dir);
            }
        }
        if delete {
            let names: HashSet<&[u8]> = local.iter().map(|(n, _)| n.as_slice()).collect();
            for (name, entry) in extras(&remote, &names) {
                remove_remote(conn, &join(&rdir, name), entry).await?;
                plan.deleted += 1;
            }
        }
    }
    Ok(plan)
}

/// The entries of the remote root, making it when missing (then it has
/// none); `None` for the login directory, which the walk lists.
///
/// Servers say "missing" differently: 550 (RFC 959), 501 (pyftpdlib), 451
/// (ftp-srv), or an empty listing (vsftpd). So a listing that is refused
/// or empty is followed by MKD: if that succeeds, the directory was
/// missing; if it fails, the refusal stands (an empty directory stays
/// empty).
async fn remote_root_entries(
    conn: &mut Conn,
    root: &[u8],
    plan: &mut Plan,
    bar: &Bar,
) -> Result<Option<Vec<Entry>>, Failure> {
    if root.is_empty() {
        return Ok(None);
    }
    match list(conn, root, plan, bar).await {
        Ok(entries) if entries.is_empty() => {
            if conn.client.mkdir(root).await.is_ok() {
                plan.dirs_created += 1;
            }
            Ok(Some(entries))
        }
        Ok(entries) => Ok(Some(entries)),
        Err(refused) => match conn.client.mkdir(root).await {
            Ok(()) => {
                plan.dirs_created += 1;
                Ok(Some(Vec::new()))
            }
            Err(_) => Err(refused),
        },
    }
}

/// Carry out `step` for the local entry at `lpath` (on the server
/// `rpath`): the directory to walk next, if any.
async fn take_step(
    conn: &mut Conn,
    step: Step,
    lpath: PathBuf,
    rpath: Vec<u8>,
    plan: &mut Plan,
    bar: &Bar,
) -> Result<Option<Pending>, Failure> {
    match step {
        Step::Enter => return Ok(Some((lpath, rpath, None))),
        Step::MakeDir { replace } => {
            if replace {
                remote_delete(conn, &rpath).await?;
                plan.deleted += 1;
            }
            remote_mkdir(conn, &rpath).await?;
            plan.dirs_created += 1;
            return Ok(Some((lpath, rpath, Some(Vec::new()))));
        }
        Step::Copy {
            size,
            mtime,
            replace,
        } => {
            if replace {
                remove_remote_tree(conn, &rpath).await?;
                plan.deleted += 1;
            }
            // The local time, given to the remote file where the server
            // has MFMT (else the server gives it the upload's time).
            plan.jobs.push(Job {
                remote: rpath,
                local: lpath,
                size,
                mtime,
            });
        }
        Step::UpToDate => plan.up_to_date += 1,
        Step::Conflict(what) => {
            bar.eprintln(&format!(
                "error: {} is {what} on the server (--delete replaces it)",
                show(&rpath)
            ));
            plan.problems += 1;
        }
        Step::Skip => {}
    }
    Ok(None)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Remove the remote `entry` at `path`, a directory with everything in it.
async fn remove_remote(conn: &mut Conn, path: &[u8], entry: &Entry) -> Result<(), Failure> {
    match entry.kind {
        EntryKind::Dir => remove_remote_tree(conn, path).await,
        _ => remote_delete(conn, path).await,
    }
}

/// Delete a remote directory and everything in it.
async fn remove_remote_tree(conn: &mut Conn, path: &[u8]) -> Result<(), Failure> {
    let mut pending = vec![path.to_vec()];
    let mut dirs = Vec::new();
    let mut ignored = Plan::default();
    while let Some(dir) = pending.pop() {
        for e in list(conn, &dir, &mut ignored, &Bar::hidden()).await? {
            let child = join(&dir, &e.name);
            if e.kind == EntryKind::Dir {
                pending.push(child);
            } else {
                remote_delete(conn, &child).await?;
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

/// DELE.
async fn remote_delete(conn: &mut Conn, path: &[u8]) -> Result<(), Failure> {
    conn.client
        .delete(path)
        .await
        .map_err(|e| Failure::from(e).context(format!("deleting {}", show(path))))
}

/// MKD.
async fn remote_mkdir(conn: &mut Conn, path: &[u8]) -> Result<(), Failure> {
    conn.client
        .mkdir(path)
        .await
        .map_err(|e| Failure::from(e).context(format!("creating {}", show(path))))
}
