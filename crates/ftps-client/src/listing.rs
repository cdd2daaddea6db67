//! Listings, normalized: MLSD fact lines (RFC 3659 §7) and LIST output in
//! Unix and DOS formats become the same [`Entry`] values whatever the server.
//!
//! Nothing is dropped silently: a line that cannot be read as an entry is
//! kept in [`Listing::unreadable`] for the caller to report. Only the lines
//! that carry no entry by design are left out without a word: empty lines,
//! `total N` of LIST, and `.`/`..` (MLSD's `cdir` and `pdir`).

use ftps_proto::entry::Entry;

/// Lines of a listing that could not be read, kept for a message (the
/// first few only: a listing of garbage stays small).
pub const UNREADABLE_KEPT: usize = 5;

/// A parsed listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The entries, in the server's order.
    pub entries: Vec<Entry>,
    /// The first [`UNREADABLE_KEPT`] lines that were neither an entry nor a
    /// line without one (`total N`), without their line end.
    pub unreadable: Vec<Vec<u8>>,
    /// How many lines could not be read in all.
    pub unreadable_count: usize,
}

impl Listing {
    fn skip(&mut self, line: &[u8]) {
        if self.unreadable.len() < UNREADABLE_KEPT {
            self.unreadable.push(line.to_vec());
        }
        self.unreadable_count += 1;
    }

    fn keep(&mut self, entry: Entry) {
        if entry.name != b"." && entry.name != b".." {
            self.entries.push(entry);
        }
    }
}

fn lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.trim_ascii().is_empty())
}

/// Parse MLSD output; `.` and `..` (cdir/pdir) are left out. A fact that
/// cannot be read never costs its entry (see [`ftps_proto::facts::parse_entry`]).
pub fn parse_mlsd(raw: &[u8]) -> Listing {
    let mut listing = Listing::default();
    for line in lines(raw) {
        match ftps_proto::facts::parse_entry(line) {
            Ok(entry) => listing.keep(entry),
            Err(_) => listing.skip(line),
        }
    }
    listing
}

/// Parse LIST output (Unix or DOS); `.`, `..` and `total` lines are left out.
pub fn parse_list(raw: &[u8], now_unix: i64) -> Listing {
    let mut listing = Listing::default();
    for line in lines(raw) {
        match ftps_proto::list::parse_list_line(line, now_unix) {
            Some(entry) => listing.keep(entry),
            None if is_total_line(line) => {}
            None => listing.skip(line),
        }
    }
    listing
}

/// `total 8`: the block count `ls -l` prints first, no entry.
fn is_total_line(line: &[u8]) -> bool {
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    matches!(
        (words.next(), words.next(), words.next()),
        (Some(first), Some(n), None)
            if first.eq_ignore_ascii_case(b"total") && n.iter().all(u8::is_ascii_digit)
    ) || line.eq_ignore_ascii_case(b"total")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftps_proto::entry::EntryKind;

    #[test]
    fn mlsd_and_list_give_the_same_entries() {
        let mlsd = b"type=cdir;modify=20261121151000; .\r\ntype=file;size=12;modify=20261121151000; a.txt\r\ntype=dir;modify=20261121151000; sub\r\n";
        let list = b"total 8\r\n-rw-r--r--    1 1000     1000           12 Nov 21 15:10 a.txt\r\ndrwxr-xr-x    2 1000     1000         4096 Nov 21 15:10 sub\r\n";
        let now = 1_795_000_000;
        let a = parse_mlsd(mlsd);
        let b = parse_list(list, now);
        assert_eq!((a.unreadable_count, b.unreadable_count), (0, 0));
        let (a, b) = (a.entries, b.entries);
        assert_eq!(a.len(), 2);
        assert_eq!(b.len(), 2);
        for (x, y) in a.iter().zip(b.iter()) {
            assert_eq!(x.name, y.name);
            assert_eq!(x.kind, y.kind);
        }
        assert_eq!(a[0].size, 12);
        assert_eq!(b[0].size, 12);
        assert_eq!(a[1].kind, EntryKind::Dir);
    }

    #[test]
    fn pyftpdlib_mlsd_with_0o_modes_keeps_every_entry() {
        let raw = b"type=file;size=5;modify=20240305140709;unix.mode=0o644;unix.uid=0;unix.gid=0;unique=803g2; a.txt\r\n\
                    type=dir;size=4096;modify=20240305140709;unix.mode=0o755;unix.uid=0;unix.gid=0;unique=803g3; dir\r\n";
        let listing = parse_mlsd(raw);
        assert_eq!(listing.unreadable_count, 0);
        let modes: Vec<_> = listing.entries.iter().map(|e| e.mode).collect();
        assert_eq!(modes, [Some(0o644), Some(0o755)]);
    }

    #[test]
    fn lines_that_are_no_entries_are_reported_not_dropped() {
        let list = b"total 0\r\nsomething odd\r\n-rw-r--r-- 1 a b 3 Jan  1  2024 f\r\n\r\n";
        let listing = parse_list(list, 1_795_000_000);
        assert_eq!(listing.entries.len(), 1);
        assert_eq!(listing.unreadable, [b"something odd".to_vec()]);
        let mlsd = b"no-space-here\r\ntype=file; \r\n";
        let listing = parse_mlsd(mlsd);
        assert!(listing.entries.is_empty());
        assert_eq!(listing.unreadable_count, 2);
    }

    #[test]
    fn only_the_first_unreadable_lines_are_kept() {
        let raw = b"x\n".repeat(100);
        let listing = parse_list(&raw, 0);
        assert_eq!(listing.unreadable_count, 100);
        assert_eq!(listing.unreadable.len(), UNREADABLE_KEPT);
    }
}
