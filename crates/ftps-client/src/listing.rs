//! Listings, normalized: MLSD fact lines (RFC 3659 §7) and LIST output in
//! Unix and DOS formats become the same [`Entry`] values whatever the server.

use ftps_proto::entry::Entry;

fn lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// Parse MLSD output; `.` and `..` (cdir/pdir) are left out.
pub fn parse_mlsd(raw: &[u8]) -> Vec<Entry> {
    lines(raw)
        .filter_map(|l| ftps_proto::facts::parse_entry(l).ok())
        .filter(|e| e.name != b"." && e.name != b"..")
        .collect()
}

/// Parse LIST output (Unix or DOS); `.`, `..` and `total` lines are left out.
pub fn parse_list(raw: &[u8], now_unix: i64) -> Vec<Entry> {
    lines(raw)
        .filter_map(|l| ftps_proto::list::parse_list_line(l, now_unix))
        .filter(|e| e.name != b"." && e.name != b"..")
        .collect()
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
}
