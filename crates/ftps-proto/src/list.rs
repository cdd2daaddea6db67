//! Human-readable directory listings: `LIST` and `NLST` output.
//!
//! RFC 959 §4.1.3 leaves the format of `LIST` to the server and makes `NLST`
//! a plain list of names. This module owns the formats used in practice:
//! producing Unix `ls -l` style lines, and, for the client side, reading the
//! Unix style lines of common servers (vsftpd, ProFTPD, Pure-FTPd, GNU ls)
//! and the DOS style lines of IIS. Dates use [`crate::timefmt`].

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::entry::{push_listing_name, Entry, EntryKind};
use crate::timefmt::{format_list_time, month_from_abbrev};

/// Owner and group shown when an entry has none.
const DEFAULT_OWNER: &str = "ftp";

/// Permission letters and their bits, per user class, with the special bit
/// (setuid, setgid, sticky) shown in that class's execute column.
const CLASSES: [(u32, u32, u32, u32, u8); 3] = [
    (0o400, 0o200, 0o100, 0o4000, b's'),
    (0o040, 0o020, 0o010, 0o2000, b's'),
    (0o004, 0o002, 0o001, 0o1000, b't'),
];

/// Format one `LIST` line, `ls -l` style, without a line ending:
/// `-rw-r--r-- 1 ftp ftp        12 Nov 21 15:10 name`.
///
/// The type letter comes from `kind` (`-`, `d`, `l`; `-` for other kinds),
/// the permission letters from `mode & 0o7777` (default `0o644` for files,
/// `0o755` for directories; symlinks always show `rwxrwxrwx`). Owner and
/// group default to `ftp`; spaces and control characters in them become
/// `_`. An unknown modification time shows as the Unix epoch. CR and LF in
/// the name are written as `?`.
pub fn format_list_line(entry: &Entry, now_unix_secs: i64) -> Vec<u8> {
    let (type_char, mode) = match entry.kind {
        EntryKind::Dir => ('d', entry.mode.unwrap_or(0o755)),
        EntryKind::Symlink => ('l', 0o777),
        EntryKind::File | EntryKind::Other => ('-', entry.mode.unwrap_or(0o644)),
    };
    let mut perms = String::with_capacity(10);
    perms.push(type_char);
    for (r, w, x, special, letter) in CLASSES {
        perms.push(if mode & r != 0 { 'r' } else { '-' });
        perms.push(if mode & w != 0 { 'w' } else { '-' });
        let exec = match (mode & special != 0, mode & x != 0) {
            (true, true) => char::from(letter),
            (true, false) => char::from(letter.to_ascii_uppercase()),
            (false, true) => 'x',
            (false, false) => '-',
        };
        perms.push(exec);
    }
    let owner = account_name(entry.owner.as_deref());
    let group = account_name(entry.group.as_deref());
    let when = format_list_time(entry.modified.unwrap_or(0), now_unix_secs);
    let mut out = format!("{perms} 1 {owner} {group} {:>9} {when} ", entry.size).into_bytes();
    push_listing_name(&mut out, &entry.name);
    out
}

fn account_name(name: Option<&str>) -> String {
    let cleaned: String = name
        .unwrap_or(DEFAULT_OWNER)
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if cleaned.is_empty() {
        DEFAULT_OWNER.to_string()
    } else {
        cleaned
    }
}

/// Format one `NLST` line: just the name (CR and LF written as `?`), without
/// a line ending.
pub fn format_nlst_line(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.name.len());
    push_listing_name(&mut out, &entry.name);
    out
}

/// Read one line of `LIST` output from a server (client side).
///
/// Understands Unix `ls -l` style lines (with a year or a time of day in
/// the date column; for a time of day the year is the latest one that puts
/// the date no more than a day after `now_unix_secs`; a symlink's
/// ` -> target` is dropped from the name) and DOS/IIS style lines. Dates are
/// taken as UTC. Returns `None` for `total N` lines and anything else it
/// cannot read.
pub fn parse_list_line(line: &[u8], now_unix_secs: i64) -> Option<Entry> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let spans = token_spans(line);
    let first = line.get(spans.first()?.0..spans.first()?.1)?;
    if first.eq_ignore_ascii_case(b"total") {
        return None;
    }
    parse_unix(line, &spans, now_unix_secs).or_else(|| parse_dos(line, &spans))
}

/// Start and end offsets of the space- or tab-separated tokens of `line`.
fn token_spans(line: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, &b) in line.iter().enumerate() {
        let sep = b == b' ' || b == b'\t';
        match (start, sep) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, line.len()));
    }
    spans
}

fn is_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

fn parse_num<T: std::str::FromStr>(s: &[u8]) -> Option<T> {
    if !is_digits(s) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn unix_time(year: i32, month: Month, day: u8, hour: u8, minute: u8) -> Option<i64> {
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, 0).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// The kind and permission bits of an `ls -l` mode string like
/// `drwxr-xr-x` (an ACL marker `+`, `@` or `.` may follow).
fn parse_mode_string(s: &[u8]) -> Option<(EntryKind, u32)> {
    let (kind_char, rest) = s.split_first()?;
    let rest = match rest {
        [letters @ .., b'+' | b'@' | b'.'] if letters.len() == 9 => letters,
        _ => rest,
    };
    if rest.len() != 9 {
        return None;
    }
    let kind = match kind_char {
        b'-' => EntryKind::File,
        b'd' => EntryKind::Dir,
        b'l' => EntryKind::Symlink,
        b'b' | b'c' | b'p' | b's' | b'D' => EntryKind::Other,
        _ => return None,
    };
    let mut mode = 0;
    for ((r, w, x, special, letter), triple) in CLASSES.into_iter().zip(rest.chunks(3)) {
        let [rc, wc, xc] = triple else { return None };
        mode |= match rc {
            b'r' => r,
            b'-' => 0,
            _ => return None,
        };
        mode |= match wc {
            b'w' => w,
            b'-' => 0,
            _ => return None,
        };
        mode |= match *xc {
            b'x' => x,
            b'-' => 0,
            c if c == letter => x | special,
            c if c == letter.to_ascii_uppercase() => special,
            _ => return None,
        };
    }
    Some((kind, mode))
}

fn parse_unix(line: &[u8], spans: &[(usize, usize)], now: i64) -> Option<Entry> {
    let tok = |i: usize| spans.get(i).and_then(|&(s, e)| line.get(s..e));
    let (kind, mode) = parse_mode_string(tok(0)?)?;
    // The date is "Mon DD HH:MM" or "Mon DD YYYY", right after the size.
    let (month_at, month) = (3..spans.len()).find_map(|i| {
        Some((i, month_from_abbrev(tok(i)?)?)).filter(|&(i, _)| {
            tok(i - 1).is_some_and(is_digits)
                && tok(i + 1)
                    .and_then(parse_num::<u8>)
                    .is_some_and(|d| (1..=31).contains(&d))
                && tok(i + 2).is_some_and(|t| {
                    matches!(t, [_, _, b':', _, _]) || (t.len() == 4 && is_digits(t))
                })
        })
    })?;
    let size: u64 = parse_num(tok(month_at - 1)?)?;
    let day: u8 = parse_num(tok(month_at + 1)?)?;
    let when = tok(month_at + 2)?;
    let modified = match when {
        [h1, h2, b':', m1, m2] => {
            let hour: u8 = parse_num(&[*h1, *h2])?;
            let minute: u8 = parse_num(&[*m1, *m2])?;
            let this_year = OffsetDateTime::from_unix_timestamp(now).ok()?.year();
            [this_year + 1, this_year, this_year - 1]
                .into_iter()
                .filter_map(|y| unix_time(y, month, day, hour, minute))
                .find(|&t| t <= now.saturating_add(86_400))?
        }
        _ if when.len() == 4 => unix_time(parse_num(when)?, month, day, 0, 0)?,
        _ => return None,
    };
    // Between the mode and the size: optional link count, owner, group.
    let mut middle: Vec<&[u8]> = (1..month_at - 1).filter_map(tok).collect();
    if middle.first().is_some_and(|t| is_digits(t)) {
        middle.remove(0);
    }
    let text = |t: &&[u8]| String::from_utf8_lossy(t).into_owned();
    let &(_, when_end) = spans.get(month_at + 2)?;
    let mut name = line.get(when_end + 1..)?;
    if kind == EntryKind::Symlink {
        if let Some(arrow) = name.windows(4).position(|w| w == b" -> ") {
            name = name.get(..arrow)?;
        }
    }
    if name.is_empty() {
        return None;
    }
    Some(Entry {
        name: name.to_vec(),
        kind,
        size,
        modified: Some(modified),
        mode: Some(mode),
        owner: middle.first().map(text),
        group: middle.get(1).map(text),
        unique: None,
    })
}

/// `MM-DD-YY  HH:MMAM  <DIR>|size  name` as IIS writes it.
fn parse_dos(line: &[u8], spans: &[(usize, usize)]) -> Option<Entry> {
    let tok = |i: usize| spans.get(i).and_then(|&(s, e)| line.get(s..e));
    let date = tok(0)?;
    let mut parts = date.split(|&b| b == b'-' || b == b'/');
    let (Some(mm), Some(dd), Some(yy), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let month = Month::try_from(parse_num::<u8>(mm)?).ok()?;
    let day: u8 = parse_num(dd)?;
    let year: i32 = match yy.len() {
        2 => {
            let y: i32 = parse_num(yy)?;
            if y < 70 {
                2000 + y
            } else {
                1900 + y
            }
        }
        4 => parse_num(yy)?,
        _ => return None,
    };
    let mut next = 1;
    let time = tok(next)?;
    next += 1;
    let (clock, mut suffix) = match time {
        [clock @ .., a, b'M' | b'm'] if matches!(a, b'A' | b'a' | b'P' | b'p') => {
            (clock, Some(a.to_ascii_uppercase()))
        }
        _ => (time, None),
    };
    if suffix.is_none() {
        if let Some(t @ (b"AM" | b"PM" | b"am" | b"pm")) = tok(next) {
            suffix = t.first().map(u8::to_ascii_uppercase);
            next += 1;
        }
    }
    let colon = clock.iter().position(|&b| b == b':')?;
    let hour: u8 = parse_num(clock.get(..colon)?)?;
    let minute: u8 = parse_num(clock.get(colon + 1..)?)?;
    let hour = match suffix {
        None => hour,
        Some(_) if !(1..=12).contains(&hour) => return None,
        Some(b'A') => hour % 12,
        Some(_) => hour % 12 + 12,
    };
    let modified = unix_time(year, month, day, hour, minute)?;
    let size_tok = tok(next)?;
    let (kind, size) = if size_tok.eq_ignore_ascii_case(b"<DIR>") {
        (EntryKind::Dir, 0)
    } else {
        let digits: Vec<u8> = size_tok.iter().copied().filter(|&b| b != b',').collect();
        (EntryKind::File, parse_num(&digits)?)
    };
    let &(name_start, _) = spans.get(next + 1)?;
    let name = line.get(name_start..)?;
    Some(Entry {
        modified: Some(modified),
        size,
        ..Entry::new(name, kind)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: i64 = 1_795_276_800; // 2026-11-21 16:00:00 UTC

    fn entry(name: &str, kind: EntryKind, size: u64, modified: i64) -> Entry {
        Entry {
            size,
            modified: Some(modified),
            ..Entry::new(name.as_bytes(), kind)
        }
    }

    #[test]
    fn now_constant_is_what_the_tests_assume() {
        assert_eq!(datetime!(2026-11-21 16:00 UTC).unix_timestamp(), NOW);
    }

    #[test]
    fn unix_list_line_format_for_file_dir_and_symlink() {
        let t = datetime!(2026-11-21 15:10 UTC).unix_timestamp();
        let f = entry("name", EntryKind::File, 12, t);
        assert_eq!(
            format_list_line(&f, NOW),
            b"-rw-r--r-- 1 ftp ftp        12 Nov 21 15:10 name"
        );
        let d = Entry {
            owner: Some("alice".into()),
            group: Some("staff".into()),
            ..entry("sub dir", EntryKind::Dir, 4096, t)
        };
        assert_eq!(
            format_list_line(&d, NOW),
            b"drwxr-xr-x 1 alice staff      4096 Nov 21 15:10 sub dir"
        );
        let l = Entry {
            mode: Some(0o600),
            ..entry("link", EntryKind::Symlink, 4, t)
        };
        assert_eq!(
            format_list_line(&l, NOW),
            b"lrwxrwxrwx 1 ftp ftp         4 Nov 21 15:10 link"
        );
        let old = entry(
            "old",
            EntryKind::File,
            1,
            datetime!(2024-02-29 12:00 UTC).unix_timestamp(),
        );
        assert_eq!(
            format_list_line(&old, NOW),
            b"-rw-r--r-- 1 ftp ftp         1 Feb 29  2024 old"
        );
    }

    #[test]
    fn unix_list_line_mode_bits_including_special_bits() {
        let t = NOW;
        let with_mode = |m| {
            format_list_line(
                &Entry {
                    mode: Some(m),
                    ..entry("x", EntryKind::File, 0, t)
                },
                NOW,
            )
        };
        assert!(with_mode(0o100755).starts_with(b"-rwxr-xr-x "));
        assert!(with_mode(0o4755).starts_with(b"-rwsr-xr-x "));
        assert!(with_mode(0o2644).starts_with(b"-rw-r-Sr-- "));
        assert!(with_mode(0o1777).starts_with(b"-rwxrwxrwt "));
        assert!(with_mode(0o1000).starts_with(b"---------T "));
    }

    #[test]
    fn list_names_and_owners_cannot_break_the_line() {
        let e = Entry {
            owner: Some("a b".into()),
            group: Some(String::new()),
            ..entry("x\r\ny", EntryKind::File, 0, NOW)
        };
        assert_eq!(
            format_list_line(&e, NOW),
            b"-rw-r--r-- 1 a_b ftp         0 Nov 21 16:00 x??y"
        );
        assert_eq!(format_nlst_line(&e), b"x??y");
    }

    #[test]
    fn rfc959_nlst_line_is_just_the_name() {
        assert_eq!(
            format_nlst_line(&entry("a b.txt", EntryKind::File, 3, 0)),
            b"a b.txt"
        );
    }

    #[test]
    fn parse_vsftpd_style_lines() {
        let e = parse_list_line(
            b"-rw-r--r--    1 1000     1000           12 Nov 21 15:10 notes.txt\r\n",
            NOW,
        )
        .unwrap();
        assert_eq!(e.name, b"notes.txt");
        assert_eq!(
            (e.kind.clone(), e.size, e.mode),
            (EntryKind::File, 12, Some(0o644))
        );
        assert_eq!(
            e.modified,
            Some(datetime!(2026-11-21 15:10 UTC).unix_timestamp())
        );
        assert_eq!(
            (e.owner.as_deref(), e.group.as_deref()),
            (Some("1000"), Some("1000"))
        );
        let d = parse_list_line(
            b"drwxr-xr-x    2 0        0            4096 Jan 02  2020 pub",
            NOW,
        )
        .unwrap();
        assert_eq!(
            (d.kind, d.name.as_slice()),
            (EntryKind::Dir, b"pub".as_slice())
        );
        assert_eq!(
            d.modified,
            Some(datetime!(2020-01-02 0:00 UTC).unix_timestamp())
        );
    }

    #[test]
    fn parse_time_of_day_picks_the_latest_plausible_year() {
        // December seen in November 2026 must be December 2025.
        let e = parse_list_line(b"-rw-r--r-- 1 u g 1 Dec 24 10:00 gift", NOW).unwrap();
        assert_eq!(
            e.modified,
            Some(datetime!(2025-12-24 10:00 UTC).unix_timestamp())
        );
        // On New Year's Eve a file stamped just after midnight is next year.
        let eve = datetime!(2026-12-31 23:30 UTC).unix_timestamp();
        let e = parse_list_line(b"-rw-r--r-- 1 u g 1 Jan  1 00:20 new", eve).unwrap();
        assert_eq!(
            e.modified,
            Some(datetime!(2027-01-01 00:20 UTC).unix_timestamp())
        );
    }

    #[test]
    fn parse_proftpd_pureftpd_and_gnu_ls_variants() {
        let e = parse_list_line(
            b"-rw-r--r--   1 ftp      ftp      1048576 Mar  3 09:05 big file.bin",
            NOW,
        )
        .unwrap();
        assert_eq!(
            (e.name.as_slice(), e.size),
            (b"big file.bin".as_slice(), 1_048_576)
        );
        // No group column, ACL marker, symlink target.
        let e =
            parse_list_line(b"lrwxrwxrwx+ 1 owner 7 Oct 10  2019 latest -> v1.2.3", NOW).unwrap();
        assert_eq!(
            (e.kind.clone(), e.name.as_slice()),
            (EntryKind::Symlink, b"latest".as_slice())
        );
        assert_eq!((e.owner.as_deref(), e.group), (Some("owner"), None));
        // Device file with "major, minor" in place of the size.
        let e = parse_list_line(b"crw-rw-rw- 1 root root 1, 3 Nov 21 15:10 null", NOW).unwrap();
        assert_eq!((e.kind, e.size), (EntryKind::Other, 3));
        // Leading space in a name is kept (exactly one separator is removed).
        let e = parse_list_line(b"-rw-r--r-- 1 u g 1 Nov 21 15:10  spaced", NOW).unwrap();
        assert_eq!(e.name, b" spaced");
    }

    #[test]
    fn parse_total_and_garbage_lines_are_none() {
        for line in [
            &b"total 12"[..],
            b"TOTAL 0",
            b"",
            b"   ",
            b"-rw-r--r-- 1 u g 12 Nov 21 15:10",
            b"hello world",
            b"-rw-r--r-- 1 u g 12 Nov 32 15:10 x",
            b"-rw-r--r-- 1 u g 12 Foo 21 15:10 x",
            b"-rwxr-xr-q 1 u g 12 Nov 21 15:10 x",
            b"-rw-r--r-- 1 u g 12 Feb 30  2020 x",
        ] {
            assert_eq!(
                parse_list_line(line, NOW),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn parse_dos_iis_lines() {
        let d = parse_list_line(b"11-21-26  03:10PM       <DIR>          my dir", NOW).unwrap();
        assert_eq!(
            d,
            entry(
                "my dir",
                EntryKind::Dir,
                0,
                datetime!(2026-11-21 15:10 UTC).unix_timestamp()
            )
        );
        let f = parse_list_line(b"11-21-26  03:10PM                12 name\r\n", NOW).unwrap();
        assert_eq!(
            f,
            entry(
                "name",
                EntryKind::File,
                12,
                datetime!(2026-11-21 15:10 UTC).unix_timestamp()
            )
        );
        let f = parse_list_line(b"01-02-1999  12:05 AM   1,234 midnight.txt", NOW).unwrap();
        assert_eq!(
            f,
            entry(
                "midnight.txt",
                EntryKind::File,
                1234,
                datetime!(1999-01-02 00:05 UTC).unix_timestamp()
            )
        );
        let f = parse_list_line(b"07-04-95  12:00PM  5 noon", NOW).unwrap();
        assert_eq!(
            f.modified,
            Some(datetime!(1995-07-04 12:00 UTC).unix_timestamp())
        );
        let f = parse_list_line(b"07-04-2020  23:59  5 h24", NOW).unwrap();
        assert_eq!(
            f.modified,
            Some(datetime!(2020-07-04 23:59 UTC).unix_timestamp())
        );
        assert_eq!(parse_list_line(b"07-04-2020  13:00PM  5 bad", NOW), None);
        assert_eq!(parse_list_line(b"13-04-2020  10:00AM  5 bad", NOW), None);
    }

    fn list_entry() -> impl Strategy<Value = Entry> {
        let name = proptest::collection::vec(
            any::<u8>().prop_filter("no line end", |b| *b != b'\r' && *b != b'\n'),
            1..24,
        )
        .prop_filter("no arrow, not blank", |n| {
            !n.windows(4).any(|w| w == b" -> ") && n.iter().any(|b| *b != b' ')
        });
        (
            name,
            prop_oneof![
                Just(EntryKind::File),
                Just(EntryKind::Dir),
                Just(EntryKind::Symlink)
            ],
            any::<u64>(),
            prop_oneof![
                (0i64..180 * 1440).prop_map(|m| NOW - m * 60),
                (0i64..700_000)
                    .prop_map(|d| NOW - 181 * 86_400 - d * 86_400)
                    .prop_map(|t| t - t.rem_euclid(86_400)),
            ],
            0u32..=0o7777,
            "[a-z][a-z0-9_]{0,8}",
            "[a-z][a-z0-9_]{0,8}",
        )
            .prop_map(|(name, kind, size, modified, mode, owner, group)| {
                Entry {
                    mode: Some(if kind == EntryKind::Symlink {
                        0o777
                    } else {
                        mode
                    }),
                    owner: Some(owner),
                    group: Some(group),
                    ..entry("", kind, size, modified)
                }
                .with_name(name)
            })
    }

    trait WithName {
        fn with_name(self, name: Vec<u8>) -> Self;
    }
    impl WithName for Entry {
        fn with_name(mut self, name: Vec<u8>) -> Self {
            self.name = name;
            self
        }
    }

    proptest! {
        #[test]
        fn prop_parse_format_round_trip(e in list_entry()) {
            let line = format_list_line(&e, NOW);
            prop_assert_eq!(parse_list_line(&line, NOW), Some(e));
        }

        #[test]
        fn prop_parse_list_line_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..100),
            text in "[-drwxlst0-9 :<>DIRAPMNovJanDec,/]{0,80}",
            now in any::<i64>(),
        ) {
            let _ = parse_list_line(&bytes, now);
            let _ = parse_list_line(text.as_bytes(), now);
        }
    }
}
