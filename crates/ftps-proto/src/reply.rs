//! FTP replies: building and encoding them on the server side and parsing
//! them incrementally on the client side.
//!
//! This module owns the wire format of replies described in RFC 959 §4.2
//! (three-digit codes, single-line `CODE SP text` replies and multi-line
//! `CODE-text ... CODE SP text` replies, including the rule that middle lines
//! starting with digits must be indented) and the pathname quoting of
//! RFC 959 Appendix II used in `257` replies. Reply text is kept as bytes so
//! that non-UTF-8 pathnames survive unchanged.

use std::collections::VecDeque;

/// Longest reply line (without its line ending) that [`ReplyParser`] buffers.
pub const MAX_REPLY_LINE_BYTES: usize = 8192;

/// Largest number of lines one reply may have in [`ReplyParser`].
pub const MAX_REPLY_LINES: usize = 10_000;

/// One FTP reply: a three-digit code and one or more lines of text.
///
/// `lines` holds the text of each line without the code, the separator
/// character and the line ending. For a multi-line reply the middle lines are
/// kept exactly as they appear between the first and the last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code, normally in `100..=599`.
    pub code: u16,
    /// The text lines, first to last.
    pub lines: Vec<Vec<u8>>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: u16, text: impl AsRef<[u8]>) -> Reply {
        Reply {
            code,
            lines: vec![text.as_ref().to_vec()],
        }
    }

    /// A reply made of the given lines: the first line, the middle lines and
    /// the last line. With fewer than two lines it encodes as a single line.
    pub fn multi(code: u16, lines: Vec<Vec<u8>>) -> Reply {
        Reply { code, lines }
    }

    /// The reply as sent on the control connection, each line ended by CRLF.
    ///
    /// CR and LF bytes inside a line are replaced by spaces so that text taken
    /// from a peer or the file system cannot inject extra reply lines. Middle
    /// lines of a multi-line reply that would look like a reply line (three
    /// digits followed by a space, a hyphen or nothing) get a leading space,
    /// as RFC 959 §4.2 requires.
    pub fn encode(&self) -> Vec<u8> {
        let code = format!("{:03}", self.code);
        let mut out = Vec::new();
        match self.lines.as_slice() {
            [] => push_line(&mut out, &code, b' ', b""),
            [only] => push_line(&mut out, &code, b' ', only),
            [first, middle @ .., last] => {
                push_line(&mut out, &code, b'-', first);
                for line in middle {
                    if looks_like_reply_line(line) {
                        out.push(b' ');
                    }
                    push_sanitized(&mut out, line);
                    out.extend_from_slice(b"\r\n");
                }
                push_line(&mut out, &code, b' ', last);
            }
        }
        out
    }

    /// All lines joined with `'\n'`, decoded as lossy UTF-8 (for logs and tests).
    pub fn text(&self) -> String {
        let joined = self.lines.join(&b'\n');
        String::from_utf8_lossy(&joined).into_owned()
    }

    /// `1xx`: positive preliminary reply.
    pub fn is_preliminary(&self) -> bool {
        (100..200).contains(&self.code)
    }

    /// `2xx`: positive completion reply.
    pub fn is_completion(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// `3xx`: positive intermediate reply.
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// `4xx`: transient negative completion reply.
    pub fn is_transient_negative(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// `5xx`: permanent negative completion reply.
    pub fn is_permanent_negative(&self) -> bool {
        (500..600).contains(&self.code)
    }
}

fn push_line(out: &mut Vec<u8>, code: &str, sep: u8, text: &[u8]) {
    out.extend_from_slice(code.as_bytes());
    out.push(sep);
    push_sanitized(out, text);
    out.extend_from_slice(b"\r\n");
}

fn push_sanitized(out: &mut Vec<u8>, text: &[u8]) {
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

/// Whether a middle line would be mistaken for a reply line: three ASCII
/// digits followed by a space, a hyphen or the end of the line.
fn looks_like_reply_line(line: &[u8]) -> bool {
    match line {
        [a, b, c, rest @ ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            matches!(rest.first(), None | Some(b' ') | Some(b'-'))
        }
        _ => false,
    }
}

/// Quote a pathname for a `257` reply (RFC 959 Appendix II): the name is put
/// in double quotes and every double quote inside it is doubled.
pub fn quote_path(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 2);
    out.push(b'"');
    for &b in path {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

/// Why [`ReplyParser`] rejected the server's bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplyError {
    /// A line was longer than [`MAX_REPLY_LINE_BYTES`].
    #[error("reply line longer than {MAX_REPLY_LINE_BYTES} bytes")]
    LineTooLong,
    /// A multi-line reply had more than [`MAX_REPLY_LINES`] lines.
    #[error("reply has more than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    /// A line did not have the form of a reply line.
    #[error("malformed reply: {0}")]
    Malformed(String),
}

/// Incremental parser for the replies a server sends (client side).
///
/// Feed received bytes with [`push`](Self::push) and take complete replies
/// with [`next_reply`](Self::next_reply) until it returns `Ok(None)`. Lines
/// may end in CRLF or a bare LF. Memory stays bounded as long as
/// `next_reply` is drained after each `push`: an unterminated line longer
/// than [`MAX_REPLY_LINE_BYTES`] is reported as [`ReplyError::LineTooLong`].
/// After any error the parser discards its buffered input and any partially
/// received reply; the connection should be considered broken.
#[derive(Debug, Default)]
pub struct ReplyParser {
    buf: VecDeque<u8>,
    pending: Option<(u16, Vec<Vec<u8>>)>,
}

impl ReplyParser {
    /// An empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append bytes received from the server.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
    }

    /// Number of received bytes not yet part of a returned reply line.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// The next complete reply, `Ok(None)` if more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        let result = self.next_reply_inner();
        if result.is_err() {
            self.buf.clear();
            self.pending = None;
        }
        result
    }

    fn next_reply_inner(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let Some(line) = self.take_line()? else {
                return Ok(None);
            };
            match self.pending.take() {
                None => {
                    let (code, sep, text) = split_reply_line(&line)?;
                    if sep == Some(b'-') {
                        self.pending = Some((code, vec![text.to_vec()]));
                    } else {
                        return Ok(Some(Reply::new(code, text)));
                    }
                }
                Some((code, mut lines)) => {
                    if let Some(text) = final_line_text(&line, code) {
                        lines.push(text.to_vec());
                        return Ok(Some(Reply { code, lines }));
                    }
                    if lines.len() + 1 >= MAX_REPLY_LINES {
                        return Err(ReplyError::TooManyLines);
                    }
                    lines.push(line);
                    self.pending = Some((code, lines));
                }
            }
        }
    }

    /// Remove one line (without its CRLF or LF) from the buffer.
    fn take_line(&mut self) -> Result<Option<Vec<u8>>, ReplyError> {
        let Some(pos) = self.buf.iter().position(|&b| b == b'\n') else {
            if self.buf.len() > MAX_REPLY_LINE_BYTES + 1 {
                return Err(ReplyError::LineTooLong);
            }
            return Ok(None);
        };
        let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > MAX_REPLY_LINE_BYTES {
            return Err(ReplyError::LineTooLong);
        }
        Ok(Some(line))
    }
}

/// Split the first line of a reply into code, separator and text.
fn split_reply_line(line: &[u8]) -> Result<(u16, Option<u8>, &[u8]), ReplyError> {
    let malformed = || {
        let shown: String = String::from_utf8_lossy(line).chars().take(64).collect();
        ReplyError::Malformed(format!("not a reply line: {shown:?}"))
    };
    let Some((digits, rest)) = line.split_at_checked(3) else {
        return Err(malformed());
    };
    let code = parse_code(digits).ok_or_else(malformed)?;
    match rest.split_first() {
        None => Ok((code, None, rest)),
        Some((&sep @ (b' ' | b'-'), text)) => Ok((code, Some(sep), text)),
        Some(_) => Err(malformed()),
    }
}

/// If `line` is the last line of a multi-line reply with `code`, its text.
fn final_line_text(line: &[u8], code: u16) -> Option<&[u8]> {
    let (digits, rest) = line.split_at_checked(3)?;
    if parse_code(digits)? != code {
        return None;
    }
    match rest.split_first() {
        None => Some(rest),
        Some((b' ', text)) => Some(text),
        Some(_) => None,
    }
}

/// Three ASCII digits, the first in `1..=5`, as a reply code.
fn parse_code(digits: &[u8]) -> Option<u16> {
    match digits {
        [a @ b'1'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(bytes: &[u8]) -> Vec<Reply> {
        let mut p = ReplyParser::new();
        p.push(bytes);
        let mut out = Vec::new();
        while let Some(r) = p.next_reply().unwrap() {
            out.push(r);
        }
        out
    }

    #[test]
    fn rfc959_single_line_reply_is_code_space_text_crlf() {
        assert_eq!(Reply::new(220, "Ready").encode(), b"220 Ready\r\n");
        assert_eq!(Reply::new(200, "").encode(), b"200 \r\n");
    }

    #[test]
    fn rfc959_multiline_reply_first_line_hyphen_last_line_space() {
        let r = Reply::multi(
            211,
            vec![b"Features:".to_vec(), b" UTF8".to_vec(), b"End".to_vec()],
        );
        assert_eq!(r.encode(), b"211-Features:\r\n UTF8\r\n211 End\r\n");
    }

    #[test]
    fn rfc959_multiline_reply_middle_lines_starting_with_digits_are_indented() {
        let r = Reply::multi(
            250,
            vec![
                b"first".to_vec(),
                b"123 looks like a reply".to_vec(),
                b"250-also".to_vec(),
                b"999".to_vec(),
                b"12 not three digits".to_vec(),
                b"1234 four digits".to_vec(),
                b"last".to_vec(),
            ],
        );
        assert_eq!(
            r.encode(),
            b"250-first\r\n 123 looks like a reply\r\n 250-also\r\n 999\r\n12 not three digits\r\n1234 four digits\r\n250 last\r\n"
        );
    }

    #[test]
    fn reply_injection_cr_lf_inside_text_become_spaces() {
        let r = Reply::new(550, b"no\r\n230 fake");
        assert_eq!(r.encode(), b"550 no  230 fake\r\n");
        let m = Reply::multi(211, vec![b"a".to_vec(), b"x\ny".to_vec(), b"b\r".to_vec()]);
        assert_eq!(m.encode(), b"211-a\r\nx y\r\n211 b \r\n");
    }

    #[test]
    fn rfc959_appendix2_257_path_quotes_are_doubled() {
        assert_eq!(quote_path(b"/usr/dm"), b"\"/usr/dm\"");
        assert_eq!(quote_path(b"/a\"b"), b"\"/a\"\"b\"");
        assert_eq!(quote_path(b""), b"\"\"");
    }

    #[test]
    fn rfc959_reply_code_classes() {
        assert!(Reply::new(150, "").is_preliminary());
        assert!(Reply::new(226, "").is_completion());
        assert!(Reply::new(331, "").is_intermediate());
        assert!(Reply::new(421, "").is_transient_negative());
        assert!(Reply::new(530, "").is_permanent_negative());
        assert!(!Reply::new(530, "").is_completion());
    }

    #[test]
    fn text_joins_lines_with_newline_lossily() {
        let r = Reply::multi(211, vec![b"a".to_vec(), vec![0xff], b"c".to_vec()]);
        assert_eq!(r.text(), "a\n\u{fffd}\nc");
    }

    #[test]
    fn rfc959_parser_single_line_reply() {
        assert_eq!(
            parse_all(b"220 Service ready\r\n"),
            vec![Reply::new(220, "Service ready")]
        );
    }

    #[test]
    fn rfc959_parser_code_without_text_is_accepted() {
        assert_eq!(parse_all(b"220\r\n"), vec![Reply::new(220, "")]);
    }

    #[test]
    fn rfc959_parser_accepts_bare_lf_line_endings() {
        assert_eq!(
            parse_all(b"211-a\nb\n211 c\n200 ok\n"),
            vec![
                Reply::multi(211, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]),
                Reply::new(200, "ok")
            ]
        );
    }

    #[test]
    fn rfc959_parser_multiline_ends_only_at_same_code_and_space() {
        let input =
            b"230-Welcome\r\n 230 indented\r\n220 other code\r\n230-still going\r\n230 done\r\n";
        let replies = parse_all(input);
        assert_eq!(replies.len(), 1);
        assert_eq!(
            replies[0].lines,
            vec![
                b"Welcome".to_vec(),
                b" 230 indented".to_vec(),
                b"220 other code".to_vec(),
                b"230-still going".to_vec(),
                b"done".to_vec()
            ]
        );
    }

    #[test]
    fn rfc959_parser_handles_bytes_split_across_pushes() {
        let mut p = ReplyParser::new();
        for b in b"211-x\r\n y\r\n211 end\r\n" {
            assert_eq!(p.next_reply().unwrap(), None);
            p.push(&[*b]);
        }
        let r = p.next_reply().unwrap().unwrap();
        assert_eq!(
            r.lines,
            vec![b"x".to_vec(), b" y".to_vec(), b"end".to_vec()]
        );
        assert_eq!(p.buffered_len(), 0);
    }

    #[test]
    fn rfc959_parser_rejects_lines_without_code() {
        let mut p = ReplyParser::new();
        p.push(b"hello\r\n");
        assert!(matches!(p.next_reply(), Err(ReplyError::Malformed(_))));
        p.push(b"22x ok\r\n");
        assert!(matches!(p.next_reply(), Err(ReplyError::Malformed(_))));
        p.push(b"220ok\r\n");
        assert!(matches!(p.next_reply(), Err(ReplyError::Malformed(_))));
        p.push(b"620 bad class\r\n");
        assert!(matches!(p.next_reply(), Err(ReplyError::Malformed(_))));
    }

    #[test]
    fn parser_bounds_line_length() {
        let mut p = ReplyParser::new();
        p.push(&vec![b'2'; MAX_REPLY_LINE_BYTES + 2]);
        assert_eq!(p.next_reply(), Err(ReplyError::LineTooLong));
        assert_eq!(p.buffered_len(), 0);
        let mut line = b"220 ".to_vec();
        line.resize(MAX_REPLY_LINE_BYTES, b'a');
        line.extend_from_slice(b"\r\n");
        p.push(&line);
        assert_eq!(
            p.next_reply().unwrap().unwrap().lines[0].len(),
            MAX_REPLY_LINE_BYTES - 4
        );
    }

    #[test]
    fn parser_bounds_line_count() {
        let mut p = ReplyParser::new();
        p.push(b"211-start\r\n");
        for _ in 0..MAX_REPLY_LINES {
            p.push(b"x\r\n");
        }
        assert_eq!(p.next_reply(), Err(ReplyError::TooManyLines));
    }

    fn line_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            any::<u8>().prop_filter("no line end", |b| *b != b'\r' && *b != b'\n'),
            0..40,
        )
    }

    proptest! {
        #[test]
        fn prop_parse_encode_round_trip(
            code in 100u16..600,
            lines in proptest::collection::vec(line_bytes(), 1..6),
        ) {
            // Middle lines that get indented are kept verbatim by the parser,
            // so only use middle lines that need no indentation.
            prop_assume!(lines.len() < 3 || lines[1..lines.len() - 1].iter().all(|l| !looks_like_reply_line(l)));
            let reply = Reply::multi(code, lines);
            prop_assert_eq!(parse_all(&reply.encode()), vec![reply]);
        }

        #[test]
        fn prop_encoded_middle_lines_never_end_the_reply(
            code in 100u16..600,
            middle in proptest::collection::vec(line_bytes(), 0..6),
        ) {
            let mut lines = vec![b"first".to_vec()];
            lines.extend(middle.iter().cloned());
            lines.push(b"last".to_vec());
            let parsed = parse_all(&Reply::multi(code, lines).encode());
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(parsed[0].lines.len(), middle.len() + 2);
        }

        #[test]
        fn prop_parser_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut p = ReplyParser::new();
            for c in &chunks {
                p.push(c);
                while let Ok(Some(_)) = p.next_reply() {}
            }
        }
    }
}
