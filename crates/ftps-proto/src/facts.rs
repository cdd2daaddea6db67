//! Machine-readable listings: the facts of `MLST` and `MLSD`.
//!
//! This module owns RFC 3659 §7: the fact names this crate supports
//! (`type`, `size`, `modify`, `perm`, `unique`, `UNIX.mode`), the fact
//! selection made with `OPTS MLST` (§7.9), the `MLST` line of the `FEAT`
//! reply (§7.8), and the `facts SP pathname` entry format (§7.2, §7.5),
//! both for producing entries (server side) and reading them (client side).

use crate::entry::{push_listing_name, Entry, EntryKind, Permissions};
use crate::timefmt::{format_time_val, parse_time_val};

/// A fact this crate can produce and parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// `type`: file, dir, cdir, pdir or an `OS.unix=` type (§7.5.1).
    Type,
    /// `size`: size in bytes (§7.5.7).
    Size,
    /// `modify`: last modification time (§7.5.3).
    Modify,
    /// `perm`: what the current user may do (§7.5.5).
    Perm,
    /// `unique`: server-wide identifier of the object (§7.5.2).
    Unique,
    /// `UNIX.mode`: Unix permission bits in octal (an `OS.` extension fact).
    UnixMode,
}

/// All supported facts, in the order they are listed and formatted.
pub const SUPPORTED_FACTS: [Fact; 6] = [
    Fact::Type,
    Fact::Size,
    Fact::Modify,
    Fact::Perm,
    Fact::Unique,
    Fact::UnixMode,
];

impl Fact {
    /// The fact name as written in listings and `FEAT`.
    pub fn name(self) -> &'static str {
        match self {
            Fact::Type => "type",
            Fact::Size => "size",
            Fact::Modify => "modify",
            Fact::Perm => "perm",
            Fact::Unique => "unique",
            Fact::UnixMode => "UNIX.mode",
        }
    }

    /// The fact with this name, case-insensitive.
    pub fn from_name(name: &[u8]) -> Option<Fact> {
        SUPPORTED_FACTS
            .into_iter()
            .find(|f| f.name().as_bytes().eq_ignore_ascii_case(name))
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A selection of facts to include in `MLST`/`MLSD` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactSet(u8);

impl Default for FactSet {
    fn default() -> Self {
        Self::default_set()
    }
}

impl FactSet {
    /// The facts sent before any `OPTS MLST`: type, size, modify, perm and
    /// unique.
    pub fn default_set() -> Self {
        let mut set = FactSet(0);
        for f in [
            Fact::Type,
            Fact::Size,
            Fact::Modify,
            Fact::Perm,
            Fact::Unique,
        ] {
            set.0 |= f.bit();
        }
        set
    }

    /// The selection requested by `OPTS MLST` (RFC 3659 §7.9): the argument
    /// is a list of fact names each followed by `;` (a leading `MLST` word
    /// is skipped). Names are case-insensitive; unknown names are ignored;
    /// an empty list selects no facts.
    pub fn from_opts(arg: &[u8]) -> FactSet {
        let mut list = arg;
        if let Some((word, rest)) = split_word(arg) {
            if word.eq_ignore_ascii_case(b"MLST") {
                list = rest;
            }
        }
        let mut set = FactSet(0);
        for name in list.split(|&b| b == b';') {
            if let Some(f) = Fact::from_name(name.trim_ascii()) {
                set.0 |= f.bit();
            }
        }
        set
    }

    /// The text of the `200` reply to `OPTS MLST`: `MLST OPTS type;size;`.
    pub fn opts_reply_text(&self) -> String {
        let mut out = String::from("MLST OPTS");
        let mut first = true;
        for f in self.iter() {
            if first {
                out.push(' ');
                first = false;
            }
            out.push_str(f.name());
            out.push(';');
        }
        out
    }

    /// Whether `f` is selected.
    pub fn contains(&self, f: Fact) -> bool {
        self.0 & f.bit() != 0
    }

    /// The selected facts in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = Fact> + '_ {
        SUPPORTED_FACTS.into_iter().filter(|&f| self.contains(f))
    }
}

/// Split off the first space-separated word (only if a space follows it or
/// it is the whole input).
fn split_word(s: &[u8]) -> Option<(&[u8], &[u8])> {
    match s.iter().position(|&b| b == b' ') {
        Some(i) => Some((s.get(..i)?, s.get(i + 1..)?)),
        None => Some((s, &[])),
    }
}

/// The `MLST` line of the `FEAT` reply (RFC 3659 §7.8): every supported fact
/// followed by `;`, selected ones marked with `*`.
pub fn feat_line(selected: &FactSet) -> String {
    let mut out = String::from("MLST ");
    for f in SUPPORTED_FACTS {
        out.push_str(f.name());
        if selected.contains(f) {
            out.push('*');
        }
        out.push(';');
    }
    out
}

/// Format one entry as `fact=value;...; name` (RFC 3659 §7.2), without a
/// line ending.
///
/// Only selected facts with a known value are written: `size` is left out
/// for directories (§7.5.7), `modify`, `unique` and `UNIX.mode` when the
/// entry has no value. Directories named `.` and `..` get the types `cdir`
/// and `pdir` (used by `MLSD`). `name_override` replaces the entry's name
/// (`MLST` shows the full path). CR and LF in the name are written as `?`.
pub fn format_entry(
    entry: &Entry,
    perms: Permissions,
    selected: &FactSet,
    name_override: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for f in selected.iter() {
        let value = match f {
            Fact::Type => Some(type_value(entry).to_string()),
            Fact::Size if entry.kind == EntryKind::Dir => None,
            Fact::Size => Some(entry.size.to_string()),
            Fact::Modify => entry.modified.map(format_time_val),
            Fact::Perm => Some(perm_value(&entry.kind, perms)),
            Fact::Unique => entry.unique.as_deref().map(|u| {
                u.chars()
                    .filter(|&c| !matches!(c, ';' | ' ' | '=' | '\r' | '\n'))
                    .collect()
            }),
            Fact::UnixMode => entry.mode.map(|m| format!("{:04o}", m & 0o7777)),
        };
        if let Some(value) = value {
            out.extend_from_slice(f.name().as_bytes());
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
            out.push(b';');
        }
    }
    out.push(b' ');
    push_listing_name(&mut out, name_override.unwrap_or(&entry.name));
    out
}

fn type_value(entry: &Entry) -> &'static str {
    match entry.kind {
        EntryKind::File => "file",
        EntryKind::Dir if entry.name == b"." => "cdir",
        EntryKind::Dir if entry.name == b".." => "pdir",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "OS.unix=symlink",
        EntryKind::Other => "OS.unix=special",
    }
}

/// The `perm` value (RFC 3659 §7.5.5), letters in alphabetical order.
fn perm_value(kind: &EntryKind, perms: Permissions) -> String {
    let mut letters: Vec<char> = Vec::new();
    if *kind == EntryKind::Dir {
        if perms.read {
            letters.extend(['e', 'l']);
        }
        if perms.write {
            letters.extend(['c', 'd', 'f', 'm', 'p']);
        }
    } else {
        if perms.read {
            letters.push('r');
        }
        if perms.write {
            letters.extend(['a', 'd', 'f', 'w']);
        }
    }
    letters.sort_unstable();
    letters.into_iter().collect()
}

/// Why an `MLSD`/`MLST` entry line could not be read at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum FactsError {
    /// There is no space separating the facts from the name.
    #[error("no space before the pathname")]
    MissingName,
    /// The space is there, but no name follows it.
    #[error("no pathname after the facts")]
    EmptyName,
}

/// Read an entry line `fact=value;...; name` (client side, the inverse of
/// [`format_entry`]). A trailing CRLF is removed; the name is everything
/// after the first space, verbatim. The `type`, `size`, `modify`, `unique`
/// and `UNIX.mode` facts are read, others are ignored. Without a `type`
/// fact the entry is taken to be a file.
///
/// Lenient, as RFC 3659 §7.2 asks of clients ("facts that are not
/// understood ... should be ignored"): a fact whose value cannot be read
/// is left out as if the server had not sent it, and never costs the
/// entry. `UNIX.mode` is octal with or without a leading `0o` (pyftpdlib
/// writes `0o644`). Only a line with no name at all is an error.
pub fn parse_entry(line: &[u8]) -> Result<Entry, FactsError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let space = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(FactsError::MissingName)?;
    let (facts, name) = line
        .split_at_checked(space)
        .ok_or(FactsError::MissingName)?;
    let name = name.get(1..).unwrap_or_default();
    if name.is_empty() {
        return Err(FactsError::EmptyName);
    }
    let mut entry = Entry::new(name, EntryKind::File);
    for fact in facts.split(|&b| b == b';') {
        let Some(eq) = fact.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = fact.split_at_checked(eq).unwrap_or((fact, b""));
        let value = value.get(1..).unwrap_or_default();
        let (Some(f), Ok(text)) = (Fact::from_name(key), std::str::from_utf8(value)) else {
            continue;
        };
        read_fact(&mut entry, f, text);
    }
    Ok(entry)
}

/// Put the value of one fact into `entry`; a value that cannot be read
/// changes nothing.
fn read_fact(entry: &mut Entry, fact: Fact, text: &str) {
    match fact {
        Fact::Type => entry.kind = kind_from_type(text),
        Fact::Size => entry.size = parse_decimal(text).unwrap_or(entry.size),
        Fact::Modify => entry.modified = parse_time_val(text).or(entry.modified),
        Fact::Unique => entry.unique = Some(text.to_string()),
        Fact::UnixMode => entry.mode = parse_octal_mode(text).or(entry.mode),
        Fact::Perm => {}
    }
}

/// A `UNIX.mode` value: octal digits, optionally after `0o`/`0O`; only the
/// permission bits (`& 0o7777`) are kept.
fn parse_octal_mode(text: &str) -> Option<u32> {
    let digits = text
        .strip_prefix("0o")
        .or_else(|| text.strip_prefix("0O"))
        .unwrap_or(text);
    if digits.is_empty() || digits.len() > 11 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().map(|m| m & 0o7777)
}

fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn kind_from_type(value: &str) -> EntryKind {
    let lower = value.to_ascii_lowercase();
    match lower.as_str() {
        "file" => EntryKind::File,
        "dir" | "cdir" | "pdir" => EntryKind::Dir,
        _ if lower.starts_with("os.unix=symlink") || lower.starts_with("os.unix=slink") => {
            EntryKind::Symlink
        }
        _ => EntryKind::Other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RW: Permissions = Permissions {
        read: true,
        write: true,
    };

    fn file(name: &str, size: u64) -> Entry {
        Entry {
            size,
            ..Entry::new(name.as_bytes(), EntryKind::File)
        }
    }

    #[test]
    fn rfc3659_7_8_feat_line_stars_selected_facts() {
        assert_eq!(
            feat_line(&FactSet::default_set()),
            "MLST type*;size*;modify*;perm*;unique*;UNIX.mode;"
        );
        assert_eq!(
            feat_line(&FactSet::from_opts(b"")),
            "MLST type;size;modify;perm;unique;UNIX.mode;"
        );
    }

    #[test]
    fn rfc3659_7_9_opts_mlst_selects_known_facts_case_insensitively() {
        let set = FactSet::from_opts(b"Type;SIZE;bogus;unix.MODE;");
        assert!(
            set.contains(Fact::Type) && set.contains(Fact::Size) && set.contains(Fact::UnixMode)
        );
        assert!(!set.contains(Fact::Modify) && !set.contains(Fact::Perm));
        assert_eq!(set.opts_reply_text(), "MLST OPTS type;size;UNIX.mode;");
        assert_eq!(
            FactSet::from_opts(b"MLST size;type"),
            FactSet::from_opts(b"type;size;")
        );
    }

    #[test]
    fn rfc3659_7_9_opts_mlst_empty_selects_nothing() {
        let set = FactSet::from_opts(b"");
        assert_eq!(set.iter().count(), 0);
        assert_eq!(set.opts_reply_text(), "MLST OPTS");
        assert_eq!(FactSet::from_opts(b"MLST"), set);
    }

    #[test]
    fn rfc3659_7_2_entry_is_facts_then_one_space_then_name() {
        let mut e = file("notes.txt", 12);
        e.modified = Some(1_795_273_800); // 2026-11-21 15:10:00 UTC
        e.unique = Some("801g1".into());
        assert_eq!(
            format_entry(&e, RW, &FactSet::default_set(), None),
            b"type=file;size=12;modify=20261121151000;perm=adfrw;unique=801g1; notes.txt"
        );
    }

    #[test]
    fn rfc3659_7_5_5_perm_letters_for_files_and_dirs() {
        let set = FactSet::from_opts(b"perm;");
        let f = file("f", 0);
        let d = Entry::new(*b"d", EntryKind::Dir);
        let read = Permissions {
            read: true,
            write: false,
        };
        assert_eq!(format_entry(&f, read, &set, None), b"perm=r; f");
        assert_eq!(
            format_entry(&f, Permissions::default(), &set, None),
            b"perm=; f"
        );
        assert_eq!(format_entry(&d, read, &set, None), b"perm=el; d");
        assert_eq!(format_entry(&d, RW, &set, None), b"perm=cdeflmp; d");
    }

    #[test]
    fn rfc3659_7_5_1_type_values() {
        let set = FactSet::from_opts(b"type;size;");
        let dir = |n: &str| Entry::new(n.as_bytes(), EntryKind::Dir);
        assert_eq!(format_entry(&dir("."), RW, &set, None), b"type=cdir; .");
        assert_eq!(format_entry(&dir(".."), RW, &set, None), b"type=pdir; ..");
        assert_eq!(format_entry(&dir("sub"), RW, &set, None), b"type=dir; sub");
        let link = Entry {
            size: 3,
            ..Entry::new(*b"l", EntryKind::Symlink)
        };
        assert_eq!(
            format_entry(&link, RW, &set, None),
            b"type=OS.unix=symlink;size=3; l"
        );
    }

    #[test]
    fn mlst_name_override_shows_full_path_and_unix_mode_is_octal() {
        let e = Entry {
            mode: Some(0o100644),
            ..file("a b", 1)
        };
        let set = FactSet::from_opts(b"UNIX.mode;");
        assert_eq!(
            format_entry(&e, RW, &set, Some(b"/dir/a b")),
            b"UNIX.mode=0644; /dir/a b"
        );
    }

    #[test]
    fn format_entry_cannot_be_split_by_hostile_names_or_unique_values() {
        let e = Entry {
            unique: Some("a;b c=d".into()),
            ..file("x\r\ntype=file; y", 1)
        };
        let out = format_entry(&e, RW, &FactSet::from_opts(b"unique;"), None);
        assert_eq!(out, b"unique=abcd; x??type=file; y");
    }

    #[test]
    fn rfc3659_parse_entry_reads_known_facts() {
        let e = parse_entry(
            b"Type=dir;Modify=20261121151000.5;UNIX.mode=0755;unique=U1;x.y=z; my dir\r\n",
        )
        .unwrap();
        assert_eq!(e.kind, EntryKind::Dir);
        assert_eq!(e.name, b"my dir");
        assert_eq!(e.modified, Some(1_795_273_800));
        assert_eq!(e.mode, Some(0o755));
        assert_eq!(e.unique.as_deref(), Some("U1"));
        assert_eq!(
            parse_entry(b"type=OS.unix=slink:/tmp; l").unwrap().kind,
            EntryKind::Symlink
        );
        assert_eq!(
            parse_entry(b"type=OS.unix=chr-13/29; tty").unwrap().kind,
            EntryKind::Other
        );
        assert_eq!(
            parse_entry(b" bare").unwrap(),
            Entry::new(*b"bare", EntryKind::File)
        );
    }

    #[test]
    fn rfc3659_7_2_a_line_without_a_name_is_unreadable() {
        assert_eq!(parse_entry(b"type=file;"), Err(FactsError::MissingName));
        assert_eq!(parse_entry(b"type=file; "), Err(FactsError::EmptyName));
    }

    #[test]
    fn rfc3659_7_2_an_unreadable_fact_value_never_drops_the_entry() {
        for line in [
            &b"size=x; f"[..],
            b"size=-1; f",
            b"modify=2026; f",
            b"UNIX.mode=0999; f",
            b"unix.mode=rw-r--r--; f",
            b"type=file;size=\xff; f",
        ] {
            let e = parse_entry(line).unwrap_or_else(|err| panic!("{line:?}: {err}"));
            assert_eq!(e.name, b"f", "{line:?}");
            assert_eq!((e.size, e.modified, e.mode), (0, None, None), "{line:?}");
        }
        // The readable facts of the same line still count.
        let e = parse_entry(b"type=dir;size=oops;modify=20261121151000; d").unwrap();
        assert_eq!((e.kind, e.modified), (EntryKind::Dir, Some(1_795_273_800)));
    }

    #[test]
    fn rfc3659_7_2_unknown_facts_are_ignored() {
        let e = parse_entry(b"type=file;x.vendor=1;UNIX.owner=ftp;sizd=9;perm=r; f").unwrap();
        assert_eq!(e, Entry::new(*b"f", EntryKind::File));
    }

    #[test]
    fn unix_mode_is_octal_with_or_without_0o() {
        // pyftpdlib writes Python's oct(): `unix.mode=0o644`.
        let mode = |line: &[u8]| parse_entry(line).unwrap().mode;
        assert_eq!(mode(b"type=file;unix.mode=0o644; f"), Some(0o644));
        assert_eq!(mode(b"type=file;UNIX.mode=0O755; f"), Some(0o755));
        assert_eq!(mode(b"type=file;UNIX.mode=0644; f"), Some(0o644));
        assert_eq!(mode(b"type=file;UNIX.mode=755; f"), Some(0o755));
        assert_eq!(mode(b"type=file;UNIX.mode=104755; f"), Some(0o4755));
        assert_eq!(mode(b"type=file;UNIX.mode=0o; f"), None);
    }

    fn entry_strategy() -> impl Strategy<Value = Entry> {
        (
            proptest::collection::vec(
                any::<u8>().prop_filter("no line end", |b| *b != b'\r' && *b != b'\n'),
                // An entry has a name: a line without one is unreadable.
                1..20,
            ),
            prop_oneof![
                Just(EntryKind::File),
                Just(EntryKind::Dir),
                Just(EntryKind::Symlink),
                Just(EntryKind::Other)
            ],
            any::<u64>(),
            proptest::option::of(-62_167_219_200i64..=253_402_300_799),
            proptest::option::of(0u32..=0o7777),
            proptest::option::of("[A-Za-z0-9.:_-]{0,12}"),
        )
            .prop_map(|(name, kind, size, modified, mode, unique)| Entry {
                size: if kind == EntryKind::Dir { 0 } else { size },
                modified,
                mode,
                unique,
                ..Entry::new(name, kind)
            })
    }

    proptest! {
        #[test]
        fn prop_parse_format_round_trip(e in entry_strategy(), read in any::<bool>(), write in any::<bool>()) {
            let all = FactSet::from_opts(b"type;size;modify;perm;unique;UNIX.mode;");
            let line = format_entry(&e, Permissions { read, write }, &all, None);
            prop_assert_eq!(parse_entry(&line), Ok(e));
        }

        #[test]
        fn prop_opts_reply_round_trip(bits in 0u8..64) {
            let set = FactSet(bits);
            let text = set.opts_reply_text();
            prop_assert_eq!(FactSet::from_opts(text.trim_start_matches("MLST OPTS").as_bytes()), set);
        }

        #[test]
        fn prop_parse_entry_never_panics(line in proptest::collection::vec(any::<u8>(), 0..80), s in "[a-zA-Z=;. 0-9]{0,60}") {
            let _ = parse_entry(&line);
            let _ = parse_entry(s.as_bytes());
            let _ = FactSet::from_opts(&line);
        }
    }
}
