//! Showing listings: `ls -l` style text (names that are not UTF-8 shown
//! lossily, with U+FFFD) and the JSON form, an array of
//! `{name, type, size, modified, mode}` objects:
//!
//! - `name`: the name; when it is not valid UTF-8, each byte that is not
//!   part of a valid UTF-8 sequence is written as the four characters `\xNN`
//!   (lowercase hex) and a backslash in such a name is doubled (`\\`), so
//!   the bytes can be recovered; valid UTF-8 names are as they are.
//! - `type`: `file`, `dir`, `symlink` or `other`.
//! - `size`: bytes (0 when the server does not say).
//! - `modified`: RFC 3339 UTC (`2026-11-21T15:10:00Z`), or `null`.
//! - `mode`: Unix permission bits as an octal string (`"0644"`), or `null`.

use ftps_client::{Entry, EntryKind};
use serde::Serialize;

/// One entry of `ls --json`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct JsonEntry {
    /// The name (see the module docs for names that are not UTF-8).
    pub name: String,
    /// file, dir, symlink or other.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// RFC 3339 UTC, or null.
    pub modified: Option<String>,
    /// Octal permission bits, or null.
    pub mode: Option<String>,
}

impl From<&Entry> for JsonEntry {
    fn from(e: &Entry) -> JsonEntry {
        JsonEntry {
            name: escape_name(&e.name),
            kind: kind_name(&e.kind),
            size: e.size,
            modified: e.modified.and_then(rfc3339),
            mode: e.mode.map(|m| format!("{:04o}", m & 0o7777)),
        }
    }
}

fn kind_name(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Other => "other",
    }
}

/// The JSON text for a listing (pretty-printed array).
pub fn to_json(entries: &[Entry]) -> String {
    let list: Vec<JsonEntry> = entries.iter().map(JsonEntry::from).collect();
    serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into())
}

/// A name as a string: UTF-8 names unchanged; otherwise invalid bytes
/// become `\xNN` and backslashes `\\`.
pub fn escape_name(name: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(name) {
        return text.to_string();
    }
    let mut out = String::with_capacity(name.len() + 8);
    for chunk in name.utf8_chunks() {
        out.push_str(&chunk.valid().replace('\\', "\\\\"));
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// Unix seconds as RFC 3339 UTC, for years 0000–9999.
pub fn rfc3339(secs: i64) -> Option<String> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn mode_string(e: &Entry) -> String {
    let kind = match e.kind {
        EntryKind::File => '-',
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Other => '?',
    };
    let mut out = String::with_capacity(10);
    out.push(kind);
    match e.mode {
        Some(mode) => {
            for shift in [6, 3, 0] {
                let bits = (mode >> shift) & 7;
                out.push(if bits & 4 != 0 { 'r' } else { '-' });
                out.push(if bits & 2 != 0 { 'w' } else { '-' });
                out.push(if bits & 1 != 0 { 'x' } else { '-' });
            }
        }
        None => out.push_str("?????????"),
    }
    out
}

/// `ls -l` style lines: mode, owner and group (when the server gives them),
/// size, date (UTC), name.
pub fn to_text(entries: &[Entry], now: i64) -> String {
    let with_owner = entries
        .iter()
        .any(|e| e.owner.is_some() || e.group.is_some());
    let owner_w = entries
        .iter()
        .map(|e| e.owner.as_deref().unwrap_or("-").len())
        .max()
        .unwrap_or(1);
    let group_w = entries
        .iter()
        .map(|e| e.group.as_deref().unwrap_or("-").len())
        .max()
        .unwrap_or(1);
    let size_w = entries
        .iter()
        .map(|e| e.size.to_string().len())
        .max()
        .unwrap_or(1);
    let mut out = String::new();
    for e in entries {
        out.push_str(&mode_string(e));
        out.push(' ');
        if with_owner {
            let owner = e.owner.as_deref().unwrap_or("-");
            let group = e.group.as_deref().unwrap_or("-");
            out.push_str(&format!("{owner:<owner_w$} {group:<group_w$} "));
        }
        let date = match e.modified {
            Some(t) => ftps_proto::timefmt::format_list_time(t, now),
            None => format!("{:<12}", "-"),
        };
        out.push_str(&format!(
            "{:>size_w$} {date} {}\n",
            e.size,
            String::from_utf8_lossy(&e.name)
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_273_800).unwrap(), "2026-11-21T15:10:00Z");
        assert_eq!(rfc3339(-1).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MAX / 2), None);
    }

    #[test]
    fn names_that_are_not_utf8_are_escaped_reversibly() {
        assert_eq!(escape_name("café\\x".as_bytes()), "café\\x");
        assert_eq!(escape_name(b"caf\xe9\\x"), "caf\\xe9\\\\x");
    }

    #[test]
    fn text_and_json_agree() {
        let mut file = Entry::new(&b"a.txt"[..], EntryKind::File);
        file.size = 12;
        file.modified = Some(0);
        file.mode = Some(0o644);
        let dir = Entry::new(&b"sub"[..], EntryKind::Dir);
        let text = to_text(&[file.clone(), dir.clone()], 0);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("-rw-r--r-- 12 Jan  1 00:00 a.txt"),
            "{text}"
        );
        assert!(lines[1].starts_with("d?????????  0 -"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&to_json(&[file, dir])).unwrap();
        assert_eq!(json[0]["name"], "a.txt");
        assert_eq!(json[0]["modified"], "1970-01-01T00:00:00Z");
        assert_eq!(json[0]["mode"], "0644");
        assert_eq!(json[1]["type"], "dir");
        assert!(json[1]["modified"].is_null());
    }
}
