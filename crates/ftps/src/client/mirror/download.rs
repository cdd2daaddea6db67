//! The walk of `ftps mirror URL DIR`: list the remote tree directory by
//! directory, read the local one beside it, make the missing local
//! directories, plan the files to download, and with `--delete` remove the
//! local entries the server does not have. The rules are in [`super::plan`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::plan::{decide, extras, Kind, Step};
use super::{join, list, local_entries, local_path, Job, Plan};
use crate::client::connect::Conn;
use crate::client::progress::Bar;
use crate::client::Failure;

fn remove_local(path: &Path, kind: Kind) -> Result<(), Failure> {
    match kind {
        Kind::Dir => std::fs::remove_dir_all(path),
        _ => std::fs::remove_file(path),
    }
    .map_err(|e| Failure::new(format!("deleting {}: {e}", path.display())))
}

fn make_local_dir(path: &Path) -> Result<(), Failure> {
    std::fs::create_dir(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))
}

/// Walk the remote tree, create local directories, plan the downloads.
pub async fn plan_download(
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
        let entries = list(conn, &rdir, &mut plan, bar).await?;
        let local = local_entries(&ldir)?;
        for entry in &entries {
            let existing = local.get(&entry.name).copied();
            let step = decide(Kind::of(entry), existing, delete);
            let lpath = local_path(&ldir, &entry.name);
            let rpath = join(&rdir, &entry.name);
            if let Some(dir) = take_step(step, existing, rpath, lpath, &mut plan, bar)? {
                stack.push(dir);
            }
        }
        if delete {
            let names: HashSet<&[u8]> = entries.iter().map(|e| e.name.as_slice()).collect();
            for (name, kind) in extras(&local, &names) {
                remove_local(&local_path(&ldir, name), *kind)?;
                plan.deleted += 1;
            }
        }
    }
    Ok(plan)
}

/// Carry out `step` for the remote entry at `rpath` (locally `lpath`, where
/// `existing` is): the directory to walk next, if any.
fn take_step(
    step: Step,
    existing: Option<Kind>,
    rpath: Vec<u8>,
    lpath: PathBuf,
    plan: &mut Plan,
    bar: &Bar,
) -> Result<Option<(Vec<u8>, PathBuf)>, Failure> {
    match step {
        Step::Enter => return Ok(Some((rpath, lpath))),
        Step::MakeDir { replace } => {
            if let (true, Some(in_the_way)) = (replace, existing) {
                remove_local(&lpath, in_the_way)?;
            }
            make_local_dir(&lpath)?;
            plan.dirs_created += 1;
            return Ok(Some((rpath, lpath)));
        }
        Step::Copy {
            size,
            mtime,
            replace,
        } => {
            if replace {
                remove_local(&lpath, Kind::Dir)?;
            }
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
                "error: {} is {what} locally but not on the server (--delete replaces it)",
                lpath.display()
            ));
            plan.problems += 1;
        }
        Step::Skip => {}
    }
    Ok(None)
}
