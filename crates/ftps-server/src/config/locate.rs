//! Where things are in a configuration text: the line of a byte offset, the dotted key
//! (`users[1].policy.allow_ccc`) a byte offset belongs to, and the line a key is written on.
//!
//! The places come from `toml_edit`, the parser `toml` itself is built on, which keeps the
//! span of every key, value and table header. Only error messages use them, after `toml`
//! has reported an error, so everything here is best-effort and never fails. A text that
//! is not valid TOML has no spans; for it the statement the error is in is found by
//! re-parsing: the longest run of whole lines before the error that parses, then the
//! statement that follows it with its value (or the rest of its header) replaced.

use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike, Value};

/// Lines tried, from the error backwards, to find where a broken statement starts.
const MAX_LINES_BACK: usize = 200;

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
    match places(text) {
        Some(places) => innermost(&places, offset),
        None => broken_statement_key(text, offset),
    }
}

/// Line of the first place `key` is written.
pub(super) fn line_of_key(text: &str, key: &str) -> Option<usize> {
    places(text)?
        .into_iter()
        .filter(|p| p.key == key)
        .map(|p| p.span.start)
        .min()
        .map(|start| line_at(text, start))
}

/// A dotted key and the bytes it covers: a key with its value, a table from its header to
/// its last value, or an inline table that is an element of an array.
#[derive(Debug)]
struct Place {
    key: String,
    span: Range<usize>,
    /// A table header (`[a]`, `[[a]]`) rather than a key or an array element.
    header: bool,
}

/// Every place of a valid TOML text, parents before their children; `None` when the text
/// does not parse.
fn places(text: &str) -> Option<Vec<Place>> {
    let document = ImDocument::parse(text).ok()?;
    let mut out = Vec::new();
    walk_table(document.as_table(), "", None, &mut out);
    Some(out)
}

/// The innermost place holding `offset`; else the last one starting before it.
fn innermost(places: &[Place], offset: usize) -> Option<String> {
    let holding = places
        .iter()
        .enumerate()
        .filter(|(_, p)| p.span.contains(&offset))
        // Smallest span first; of equal spans the child (pushed later).
        .min_by_key(|(i, p)| (p.span.len(), std::cmp::Reverse(*i)));
    match holding {
        Some((_, p)) => Some(p.key.clone()),
        None => places
            .iter()
            .filter(|p| p.span.start <= offset)
            .max_by_key(|p| p.span.start)
            .map(|p| p.key.clone()),
    }
}

/// Collects the places under `table`, whose dotted key is `prefix`. `dotted_start` is where
/// the statement starts when `table` is the middle of a dotted key (`a.b.c = 1`): the whole
/// key `a.b.c` then starts at `a`. Returns the end of the last value under `table`.
fn walk_table(
    table: &dyn TableLike,
    prefix: &str,
    dotted_start: Option<usize>,
    out: &mut Vec<Place>,
) -> Option<usize> {
    let mut end = None;
    for (name, _) in table.iter() {
        let Some((key, item)) = table.get_key_value(name) else {
            continue;
        };
        let path = join(prefix, key.get());
        let start = dotted_start.or_else(|| key.span().map(|s| s.start));
        let item_end = match item {
            Item::Value(value) => walk_value(value, &path, start, out),
            Item::Table(t) if t.is_dotted() => dotted(t, &path, start, out),
            Item::Table(t) => {
                let span = t.span();
                push_header(out, &path, span.clone());
                walk_table(t, &path, None, out).max(span.map(|s| s.end))
            }
            Item::ArrayOfTables(tables) => {
                let mut last = None;
                for (i, t) in tables.iter().enumerate() {
                    let element = format!("{path}[{i}]");
                    push_header(out, &element, t.span());
                    last = walk_table(t, &element, None, out).max(t.span().map(|s| s.end));
                }
                last
            }
            Item::None => None,
        };
        end = end.max(item_end);
    }
    end
}

/// A key with its value (and, for inline tables and arrays, what is inside).
fn walk_value(
    value: &Value,
    path: &str,
    start: Option<usize>,
    out: &mut Vec<Place>,
) -> Option<usize> {
    if let Value::InlineTable(t) = value {
        if t.is_dotted() {
            return dotted(t, path, start, out);
        }
    }
    let end = value.span().map(|s| s.end);
    if let (Some(start), Some(end)) = (start, end) {
        push(out, path, start..end, false);
    }
    match value {
        Value::InlineTable(t) => {
            walk_table(t, path, None, out);
        }
        Value::Array(array) => walk_array(array, path, out),
        _ => {}
    }
    end
}

/// The elements of an array: inline tables are named `key[i]`, the other values are part
/// of the array's key.
fn walk_array(array: &toml_edit::Array, path: &str, out: &mut Vec<Place>) {
    for (i, element) in array.iter().enumerate() {
        let element_path = format!("{path}[{i}]");
        match element {
            Value::InlineTable(t) => {
                if let Some(span) = element.span() {
                    push(out, &element_path, span, false);
                }
                walk_table(t, &element_path, None, out);
            }
            Value::Array(inner) => walk_array(inner, &element_path, out),
            _ => {}
        }
    }
}

/// The middle of a dotted key: a place from the statement's start to its last value.
fn dotted(
    table: &dyn TableLike,
    path: &str,
    start: Option<usize>,
    out: &mut Vec<Place>,
) -> Option<usize> {
    let at = out.len();
    let end = walk_table(table, path, start, out);
    if let (Some(start), Some(end)) = (start, end) {
        out.insert(
            at,
            Place {
                key: path.to_owned(),
                span: start..end,
                header: false,
            },
        );
    }
    end
}

fn push(out: &mut Vec<Place>, key: &str, span: Range<usize>, header: bool) {
    out.push(Place {
        key: key.to_owned(),
        span,
        header,
    });
}

fn push_header(out: &mut Vec<Place>, key: &str, span: Option<Range<usize>>) {
    if let Some(span) = span {
        push(out, key, span, true);
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The dotted key of the statement that holds `offset` in a text that is not valid TOML.
///
/// The statement starts on the last line at which everything before it parses. Its first
/// line is repaired (a key keeps `key =` and gets the value `0`; a header gets its closing
/// brackets) and parsed after what comes before it; if that clashes with the lines before
/// (a duplicate key), the repaired statement is read alone, under the table in force.
fn broken_statement_key(text: &str, offset: usize) -> Option<String> {
    let head = text.get(..offset.min(text.len()))?;
    let line_starts = std::iter::once(0)
        .chain(head.match_indices('\n').map(|(i, _)| i + 1))
        .collect::<Vec<_>>();
    let (start, before) = line_starts
        .iter()
        .rev()
        .take(MAX_LINES_BACK)
        .find_map(|&start| Some((start, places(&text[..start])?)))?;
    let line = text[start..].lines().next().unwrap_or_default();
    let statement = line.trim_start();
    let start = start + (line.len() - statement.len());
    let repaired = repair(statement)?;
    if let Some(places) = places(&format!("{}{repaired}\n", &text[..start])) {
        return innermost(&places, start);
    }
    let alone = places(&repaired)?;
    let key = innermost(&alone, 0)?;
    if alone.iter().any(|p| p.header) {
        return Some(key);
    }
    // The table in force at the statement: the last header before it.
    let table = before
        .iter()
        .filter(|p| p.header)
        .max_by_key(|p| p.span.start)
        .map_or("", |p| p.key.as_str());
    Some(join(table, &key))
}

/// The first line of a broken statement made whole: `key = 0`, `[header]` or `[[header]]`.
fn repair(statement: &str) -> Option<String> {
    let header = |inner: &str| {
        inner
            .split(']')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    if let Some(inner) = statement.strip_prefix("[[") {
        Some(format!("[[{}]]", header(inner)))
    } else if let Some(inner) = statement.strip_prefix('[') {
        Some(format!("[{}]", header(inner)))
    } else {
        let (key, _) = statement.split_once('=')?;
        Some(format!("{key}= 0"))
    }
}
