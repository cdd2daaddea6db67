//! The evidence behind a check's result: what was sent on which connection,
//! what came back, what a TLS handshake showed, and notes. Every connection
//! a check opens records into the check's [`Recorder`]; passwords are never
//! recorded (`PASS ****`), and both the number of lines and the length of a
//! line are bounded, so an overlong line or a flood of replies cannot make
//! the report unbounded.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Lines of evidence kept per check; later lines are counted, not kept.
pub const MAX_LINES: usize = 400;
/// Characters kept of one line of evidence.
pub const MAX_LINE_CHARS: usize = 240;

/// What a line of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Bytes or a command line the checker sent (`>`).
    Sent,
    /// A reply or bytes the server sent (`<`).
    Received,
    /// What a TLS handshake showed, or how it failed (`*`).
    Tls,
    /// A connection event or a remark of the check (`#`).
    Note,
}

impl Kind {
    /// The marker shown in front of the line in the terminal report.
    pub fn marker(self) -> &'static str {
        match self {
            Kind::Sent => ">",
            Kind::Received => "<",
            Kind::Tls => "*",
            Kind::Note => "#",
        }
    }
}

/// One line of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// The connection it belongs to: `c1`, `c2` … for control connections,
    /// `d1` … for data connections, empty for the check itself.
    pub conn: String,
    /// Sent, received, TLS or note.
    pub kind: Kind,
    /// The text (printable, bounded).
    pub text: String,
}

#[derive(Debug, Default)]
struct Inner {
    lines: Vec<Line>,
    dropped: usize,
}

/// Collects the evidence of one check; cheap to clone (the clones share it).
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Inner>>);

impl Recorder {
    /// A new, empty recorder.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Record one line.
    pub fn push(&self, conn: &str, kind: Kind, text: impl AsRef<str>) {
        let mut inner = match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if inner.lines.len() >= MAX_LINES {
            inner.dropped += 1;
            return;
        }
        inner.lines.push(Line {
            conn: conn.to_string(),
            kind,
            text: printable(text.as_ref()),
        });
    }

    /// A note of the check itself.
    pub fn note(&self, text: impl AsRef<str>) {
        self.push("", Kind::Note, text);
    }

    /// All lines recorded so far (and a last line counting those dropped).
    pub fn lines(&self) -> Vec<Line> {
        let inner = match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut lines = inner.lines.clone();
        if inner.dropped > 0 {
            lines.push(Line {
                conn: String::new(),
                kind: Kind::Note,
                text: format!("({} more lines not kept)", inner.dropped),
            });
        }
        lines
    }
}

/// Control characters shown as `\xNN`, the text cut at [`MAX_LINE_CHARS`]
/// with the full length named.
pub fn printable(text: &str) -> String {
    let mut out = String::new();
    for (shown, c) in text.chars().enumerate() {
        if shown >= MAX_LINE_CHARS {
            out.push_str(&format!("… ({} characters in all)", text.chars().count()));
            return out;
        }
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c) & 0xff));
        } else {
            out.push(c);
        }
    }
    out
}

/// A command line as it may be recorded: the argument of PASS masked.
pub fn masked_command(line: &str) -> String {
    let verb = line.split(' ').next().unwrap_or_default();
    if verb.eq_ignore_ascii_case("PASS") {
        "PASS ****".to_string()
    } else {
        line.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_recorded() {
        assert_eq!(masked_command("PASS secret"), "PASS ****");
        assert_eq!(masked_command("pass secret"), "PASS ****");
        assert_eq!(masked_command("USER alice"), "USER alice");
    }

    #[test]
    fn lines_are_bounded_and_printable() {
        let long = "A".repeat(100_000);
        let shown = printable(&long);
        assert!(shown.len() < MAX_LINE_CHARS + 40, "{}", shown.len());
        assert!(shown.ends_with("(100000 characters in all)"), "{shown}");
        assert_eq!(printable("a\r\nb"), "a\\x0d\\x0ab");
        let rec = Recorder::new();
        for i in 0..MAX_LINES + 5 {
            rec.note(i.to_string());
        }
        let lines = rec.lines();
        assert_eq!(lines.len(), MAX_LINES + 1);
        assert_eq!(lines.last().unwrap().text, "(5 more lines not kept)");
    }
}
