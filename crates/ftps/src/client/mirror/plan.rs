//! The rules of a mirror, the same in both directions: how an entry of the
//! source tree compares with what the target has under its name, and so
//! what the walk does with it ([`decide`]); and what `--delete` removes
//! ([`extras`]). No I/O here: `download` and `upload` carry the steps out.

use std::collections::{HashMap, HashSet};

use ftps_client::{Entry, EntryKind};

/// A directory entry on either side, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file, with its modification time (Unix seconds) if known.
    File { size: u64, mtime: Option<i64> },
    /// A directory.
    Dir,
    /// A symbolic link (not followed) or a special file.
    Other,
}

impl Kind {
    /// A listed remote entry.
    pub fn of(entry: &Entry) -> Kind {
        match entry.kind {
            EntryKind::File => Kind::File {
                size: entry.size,
                mtime: entry.modified,
            },
            EntryKind::Dir => Kind::Dir,
            EntryKind::Symlink | EntryKind::Other => Kind::Other,
        }
    }

    /// A listed remote entry as the target of an upload. A time from LIST
    /// is cut to the minute (or, when older than half a year, to the day):
    /// the file may be up to that much newer than it shows, so it counts
    /// as the latest time it may have — else every file uploaded within
    /// the minute of its last change would be uploaded again.
    pub fn of_target(entry: &Entry, list_times: bool, now: i64) -> Kind {
        match Kind::of(entry) {
            Kind::File { size, mtime } if list_times => Kind::File {
                size,
                mtime: mtime.map(|t| t.saturating_add(list_time_slack(t, now))),
            },
            other => other,
        }
    }
}

/// How much later than a LIST time (whole minutes, or whole days for
/// dates shown with a year) the file's real time may be. A time with
/// seconds did not come from a LIST line.
pub fn list_time_slack(t: i64, now: i64) -> i64 {
    const HALF_YEAR_SECS: i64 = 180 * 86_400;
    if t.rem_euclid(60) != 0 {
        0
    } else if t.rem_euclid(86_400) == 0 && now.saturating_sub(t) > HALF_YEAR_SECS {
        86_399
    } else {
        59
    }
}

/// What the walk does with one source entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The target has the directory: walk into it.
    Enter,
    /// Make the directory on the target, first removing the entry in its
    /// way when `replace`, and walk into it.
    MakeDir { replace: bool },
    /// Copy the file of `size` bytes (modified at `mtime`), first removing
    /// the directory in its way when `replace`.
    Copy {
        size: u64,
        mtime: Option<i64>,
        replace: bool,
    },
    /// The target's file is the same size and not older: nothing to do.
    UpToDate,
    /// The target has something else in the way (`what` it is) and
    /// `--delete` is not given: reported, left alone.
    Conflict(&'static str),
    /// Symbolic links and special files are left alone.
    Skip,
}

/// Is the target copy not older than the source (whole seconds)? When
/// either time is unknown, the size alone decides.
pub fn not_older(target: Option<i64>, source: Option<i64>) -> bool {
    match (target, source) {
        (Some(t), Some(s)) => t >= s,
        _ => true,
    }
}

/// What to do with `source` when the target has `target` under its name;
/// `delete` (`--delete`) lets the walk replace an entry of another kind.
pub fn decide(source: Kind, target: Option<Kind>, delete: bool) -> Step {
    match (source, target) {
        (Kind::Dir, Some(Kind::Dir)) => Step::Enter,
        (Kind::Dir, None) => Step::MakeDir { replace: false },
        (Kind::Dir, Some(_)) if delete => Step::MakeDir { replace: true },
        (Kind::Dir, Some(_)) => Step::Conflict("not a directory"),
        (
            Kind::File { size, mtime },
            Some(Kind::File {
                size: target_size,
                mtime: target_mtime,
            }),
        ) if size == target_size && not_older(target_mtime, mtime) => Step::UpToDate,
        (Kind::File { size, mtime }, Some(Kind::Dir)) if delete => Step::Copy {
            size,
            mtime,
            replace: true,
        },
        (Kind::File { .. }, Some(Kind::Dir)) => Step::Conflict("a directory"),
        (Kind::File { size, mtime }, _) => Step::Copy {
            size,
            mtime,
            replace: false,
        },
        (Kind::Other, _) => Step::Skip,
    }
}

/// The target's entries whose names the source does not have: what
/// `--delete` removes.
pub fn extras<'a, V>(
    target: &'a HashMap<Vec<u8>, V>,
    source: &HashSet<&[u8]>,
) -> Vec<(&'a Vec<u8>, &'a V)> {
    target
        .iter()
        .filter(|(name, _)| !source.contains(name.as_slice()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, mtime: Option<i64>) -> Kind {
        Kind::File { size, mtime }
    }

    fn copy(size: u64, mtime: Option<i64>, replace: bool) -> Step {
        Step::Copy {
            size,
            mtime,
            replace,
        }
    }

    #[test]
    fn same_size_and_not_older_is_up_to_date() {
        let step = decide(file(5, Some(100)), Some(file(5, Some(100))), false);
        assert_eq!(step, Step::UpToDate);
        let step = decide(file(5, Some(100)), Some(file(5, Some(101))), false);
        assert_eq!(step, Step::UpToDate);
    }

    #[test]
    fn an_older_target_file_is_copied_again() {
        let step = decide(file(5, Some(100)), Some(file(5, Some(99))), false);
        assert_eq!(step, copy(5, Some(100), false));
    }

    #[test]
    fn a_target_file_of_another_size_is_copied_again() {
        let step = decide(file(5, Some(100)), Some(file(6, Some(200))), false);
        assert_eq!(step, copy(5, Some(100), false));
    }

    #[test]
    fn without_both_times_size_alone_decides() {
        assert_eq!(
            decide(file(5, None), Some(file(5, Some(1))), false),
            Step::UpToDate
        );
        assert_eq!(
            decide(file(5, Some(100)), Some(file(5, None)), false),
            Step::UpToDate
        );
        assert_eq!(
            decide(file(5, None), Some(file(4, None)), false),
            copy(5, None, false)
        );
    }

    #[test]
    fn a_missing_file_is_copied() {
        assert_eq!(decide(file(5, None), None, false), copy(5, None, false));
    }

    #[test]
    fn a_special_file_in_the_way_of_a_file_is_overwritten() {
        assert_eq!(
            decide(file(5, None), Some(Kind::Other), false),
            copy(5, None, false)
        );
    }

    #[test]
    fn a_directory_in_the_way_of_a_file_is_replaced_only_with_delete() {
        assert_eq!(
            decide(file(5, None), Some(Kind::Dir), false),
            Step::Conflict("a directory")
        );
        assert_eq!(
            decide(file(5, None), Some(Kind::Dir), true),
            copy(5, None, true)
        );
    }

    #[test]
    fn a_missing_directory_is_made() {
        assert_eq!(
            decide(Kind::Dir, None, false),
            Step::MakeDir { replace: false }
        );
    }

    #[test]
    fn an_existing_directory_is_entered() {
        assert_eq!(decide(Kind::Dir, Some(Kind::Dir), false), Step::Enter);
        assert_eq!(decide(Kind::Dir, Some(Kind::Dir), true), Step::Enter);
    }

    #[test]
    fn an_entry_in_the_way_of_a_directory_is_replaced_only_with_delete() {
        for in_the_way in [file(1, None), Kind::Other] {
            assert_eq!(
                decide(Kind::Dir, Some(in_the_way), false),
                Step::Conflict("not a directory")
            );
            assert_eq!(
                decide(Kind::Dir, Some(in_the_way), true),
                Step::MakeDir { replace: true }
            );
        }
    }

    #[test]
    fn links_and_special_files_are_left_alone() {
        for target in [
            None,
            Some(Kind::Dir),
            Some(file(1, None)),
            Some(Kind::Other),
        ] {
            assert_eq!(decide(Kind::Other, target, true), Step::Skip);
        }
    }

    #[test]
    fn remote_links_count_as_other() {
        let link = Entry::new(*b"l", EntryKind::Symlink);
        assert_eq!(Kind::of(&link), Kind::Other);
        let mut f = Entry::new(*b"f", EntryKind::File);
        (f.size, f.modified) = (3, Some(9));
        assert_eq!(Kind::of(&f), file(3, Some(9)));
    }

    #[test]
    fn a_list_time_counts_as_the_end_of_its_minute_or_day_as_upload_target() {
        let now = 1_795_273_800;
        let mut f = Entry::new(*b"f", EntryKind::File);
        (f.size, f.modified) = (3, Some(now - 120));
        assert_eq!(Kind::of_target(&f, true, now), file(3, Some(now - 61)));
        assert_eq!(Kind::of_target(&f, false, now), file(3, Some(now - 120)));
        // An old file: "Mar  5  2024" is midnight of that day.
        f.modified = Some(1_709_596_800);
        assert_eq!(
            Kind::of_target(&f, true, now),
            file(3, Some(1_709_596_800 + 86_399))
        );
        // Changed at now - 100, uploaded 20 s later, listed as that minute.
        f.modified = Some(now - 120);
        let local = file(3, Some(now - 100));
        assert_eq!(
            decide(local, Some(Kind::of_target(&f, true, now)), false),
            Step::UpToDate
        );
        assert_eq!(list_time_slack(now - 7, now), 0);
    }

    #[test]
    fn delete_removes_only_names_the_source_lacks() {
        let target: HashMap<Vec<u8>, u8> = [(b"a".to_vec(), 1), (b"b".to_vec(), 2)].into();
        let source: HashSet<&[u8]> = [b"a".as_slice(), b"c".as_slice()].into();
        assert_eq!(extras(&target, &source), vec![(&b"b".to_vec(), &2)]);
    }
}
