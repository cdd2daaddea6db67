//! Finds which dotted key a byte offset of a TOML text belongs to, and the line of a key.
//!
//! A small scanner over the token structure of TOML (tables, arrays of tables, dotted and
//! quoted keys, inline tables and arrays, strings, comments). It is only used for error
//! messages, after `toml` has reported an error, so it is best-effort and never fails.

use std::collections::HashMap;

/// 1-based line number of byte `offset`.
pub(super) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The dotted key (e.g. `users[1].policy.allow_ccc`) whose key or value holds `offset`.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    scan(text)
        .into_iter()
        .take_while(|(_, start)| *start <= offset)
        .last()
        .map(|(key, _)| key)
}

/// Line of the first place `key` is written.
pub(super) fn line_of_key(text: &str, key: &str) -> Option<usize> {
    scan(text)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, start)| line_at(text, start))
}

enum Frame {
    /// An array value; `key` is its dotted key, `index` the element being read (the
    /// commas seen so far), so `["a", { b = 1 }]` names the table `key[1]`.
    Array { key: String, index: usize },
    /// An inline table value with its dotted key.
    Table(String),
}

/// Every key and table header with the byte offset where it starts, in text order.
fn scan(text: &str) -> Vec<(String, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut aot: HashMap<String, usize> = HashMap::new();
    let mut table = String::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut expect_key = true;
    let mut parts: Vec<String> = Vec::new();
    let mut key_start = 0;
    let mut pending: Option<String> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\n' if stack.is_empty() => {
                expect_key = true;
                parts.clear();
            }
            b'"' | b'\'' => {
                let (s, next) = string(text, i);
                if expect_key {
                    if parts.is_empty() {
                        key_start = i;
                    }
                    parts.push(s);
                }
                i = next;
                continue;
            }
            b'[' if stack.is_empty() && expect_key => {
                let double = b.get(i + 1) == Some(&b'[');
                let start = i;
                i += if double { 2 } else { 1 };
                let mut raw = Vec::new();
                while i < b.len() && b[i] != b']' && b[i] != b'\n' {
                    if b[i] == b'"' || b[i] == b'\'' {
                        let (s, next) = string(text, i);
                        raw.push(s);
                        i = next;
                    } else if is_bare(b[i]) {
                        let s = i;
                        while i < b.len() && is_bare(b[i]) {
                            i += 1;
                        }
                        raw.push(text[s..i].to_owned());
                    } else {
                        i += 1;
                    }
                }
                table = header_path(&raw, double, &mut aot);
                out.push((table.clone(), start));
                while i < b.len() && b[i] != b'\n' && b[i] != b'#' {
                    i += 1;
                }
                continue;
            }
            b'=' if expect_key => {
                let prefix = match stack.last() {
                    Some(Frame::Table(k)) => k.clone(),
                    _ => table.clone(),
                };
                let key = join(&prefix, &parts.join("."));
                out.push((key.clone(), key_start));
                pending = Some(key);
                parts.clear();
                expect_key = false;
            }
            b'[' => {
                let key = pending.take().unwrap_or_default();
                stack.push(Frame::Array { key, index: 0 });
            }
            b'{' => {
                let key = match stack.last() {
                    Some(Frame::Array { key, index }) if pending.is_none() => {
                        // An array element has no key of its own: name it.
                        let element = format!("{key}[{index}]");
                        out.push((element.clone(), i));
                        element
                    }
                    _ => pending.take().unwrap_or_default(),
                };
                stack.push(Frame::Table(key));
                expect_key = true;
            }
            b']' | b'}' => {
                stack.pop();
                pending = None;
            }
            b',' => {
                if let Some(Frame::Array { index, .. }) = stack.last_mut() {
                    *index += 1;
                }
                pending = None;
                expect_key = matches!(stack.last(), Some(Frame::Table(_)));
            }
            _ if expect_key && is_bare(c) => {
                if parts.is_empty() {
                    key_start = i;
                }
                let s = i;
                while i < b.len() && is_bare(b[i]) {
                    i += 1;
                }
                parts.push(text[s..i].to_owned());
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn header_path(raw: &[String], double: bool, aot: &mut HashMap<String, usize>) -> String {
    let mut path = String::new();
    let mut dotted = String::new();
    for (n, part) in raw.iter().enumerate() {
        dotted = join(&dotted, part);
        path = join(&path, part);
        let last = n + 1 == raw.len();
        if last && double {
            let count = aot.entry(dotted.clone()).or_insert(0);
            *count += 1;
            path = format!("{path}[{}]", *count - 1);
        } else if let Some(count) = aot.get(&dotted) {
            path = format!("{path}[{}]", count.saturating_sub(1));
        }
    }
    path
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn is_bare(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// The contents of the string starting at `start` and the offset just after it.
fn string(text: &str, start: usize) -> (String, usize) {
    let b = text.as_bytes();
    let quote = b[start];
    let triple = b.get(start + 1) == Some(&quote) && b.get(start + 2) == Some(&quote);
    let open = if triple { 3 } else { 1 };
    let mut i = start + open;
    while i < b.len() {
        if quote == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if !triple && b[i] == b'\n' {
            break;
        }
        if b[i] == quote && (!triple || b[i..].starts_with(&[quote; 3])) {
            let body = text.get(start + open..i).unwrap_or_default().to_owned();
            return (body, i + open);
        }
        i += 1;
    }
    let end = i.min(b.len());
    (
        text.get(start + open..end).unwrap_or_default().to_owned(),
        end,
    )
}
