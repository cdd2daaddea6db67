//! Control-connection line framing for the server side.
//!
//! This module owns splitting the bytes a client sends on the control
//! connection into command lines: RFC 959 §4.1.3 (commands are Telnet strings
//! ended by CRLF; a bare LF is tolerated too) and the parts of RFC 854
//! (Telnet) that FTP clients actually send: `IAC IAC` stands for one literal
//! 0xFF byte, option negotiation (`IAC WILL/WONT/DO/DONT option`) and other
//! Telnet commands such as `IAC IP` and `IAC DM` (sent before `ABOR`,
//! RFC 959 §4.1.3) are removed. Memory is bounded: an overlong line is
//! discarded and reported once as [`LineError::TooLong`].

use std::collections::VecDeque;

/// Default longest command line accepted, in bytes (without the line end).
pub const MAX_LINE_BYTES: usize = 4096;

/// Extra raw bytes a line may take beyond the limit for Telnet escapes and
/// its line ending before it is treated as overlong.
const RAW_SLACK: usize = 64;

/// Telnet "interpret as command" byte.
const IAC: u8 = 0xFF;

/// Why a line was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    /// The line was longer than the reader's limit; it was discarded.
    #[error("line too long")]
    TooLong,
}

/// Where the Telnet decoder is inside an `IAC` sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Telnet {
    /// Ordinary data.
    #[default]
    Data,
    /// After `IAC`.
    Iac,
    /// After `IAC WILL/WONT/DO/DONT`, waiting for the option byte.
    Option,
}

/// A complete line waiting in the raw buffer.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Raw bytes of the line stored at the front of the buffer.
    raw_len: usize,
    /// The line was overlong; its stored bytes are only to be dropped.
    too_long: bool,
}

/// Splits control-connection bytes into lines (see the module docs).
///
/// Received bytes are kept raw until their line is returned, so that
/// [`buffered_len`](Self::buffered_len) and
/// [`take_buffered`](Self::take_buffered) can tell what a client sent after
/// a line (for example plaintext pipelined after `AUTH TLS`, RFC 4217 §4).
#[derive(Debug)]
pub struct LineReader {
    max: usize,
    raw: VecDeque<u8>,
    ready: VecDeque<Mark>,
    telnet: Telnet,
    /// Raw bytes of the current, incomplete line stored in `raw`.
    cur_raw: usize,
    /// Decoded length of the current line so far.
    cur_len: usize,
    /// The current line exceeded the limit; its further bytes are dropped.
    overlong: bool,
}

impl Default for LineReader {
    fn default() -> Self {
        Self::new(MAX_LINE_BYTES)
    }
}

impl LineReader {
    /// A reader accepting lines of at most `max_line_bytes` bytes after
    /// Telnet decoding, not counting the line ending.
    pub fn new(max_line_bytes: usize) -> Self {
        LineReader {
            max: max_line_bytes,
            raw: VecDeque::new(),
            ready: VecDeque::new(),
            telnet: Telnet::Data,
            cur_raw: 0,
            cur_len: 0,
            overlong: false,
        }
    }

    /// Append bytes received from the client.
    ///
    /// Complete lines are queued; of an incomplete line at most
    /// `max_line_bytes` plus a small constant are kept, the rest of an
    /// overlong line is discarded up to its end.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push_byte(b);
        }
    }

    fn push_byte(&mut self, b: u8) {
        if !self.overlong {
            self.raw.push_back(b);
            self.cur_raw += 1;
        }
        let line_end = match self.telnet {
            Telnet::Data if b == IAC => {
                self.telnet = Telnet::Iac;
                false
            }
            Telnet::Data => {
                self.cur_len += 1;
                b == b'\n'
            }
            Telnet::Iac => {
                self.telnet = match b {
                    IAC => {
                        self.cur_len += 1;
                        Telnet::Data
                    }
                    251..=254 => Telnet::Option,
                    _ => Telnet::Data,
                };
                false
            }
            Telnet::Option => {
                self.telnet = Telnet::Data;
                false
            }
        };
        if line_end {
            self.ready.push_back(Mark {
                raw_len: self.cur_raw,
                too_long: self.overlong,
            });
            self.cur_raw = 0;
            self.cur_len = 0;
            self.overlong = false;
        } else if !self.overlong
            && (self.cur_len > self.max.saturating_add(1)
                || self.cur_raw > self.max.saturating_add(RAW_SLACK))
        {
            // Even with a trailing CR removed, this line cannot fit.
            self.overlong = true;
        }
    }

    /// The next complete line without its line ending and with Telnet
    /// sequences decoded, `None` if no complete line is buffered.
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, LineError>> {
        let mark = self.ready.pop_front()?;
        let n = mark.raw_len.min(self.raw.len());
        let raw: Vec<u8> = self.raw.drain(..n).collect();
        if mark.too_long {
            return Some(Err(LineError::TooLong));
        }
        let mut line = decode_telnet(&raw);
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > self.max {
            return Some(Err(LineError::TooLong));
        }
        Some(Ok(line))
    }

    /// Bytes received and not yet returned as lines (raw, before Telnet
    /// decoding; the discarded part of an overlong line is not counted).
    pub fn buffered_len(&self) -> usize {
        self.raw.len()
    }

    /// Remove and return all raw bytes not yet returned as lines, forgetting
    /// any queued lines and any partial line.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.ready.clear();
        self.telnet = Telnet::Data;
        self.cur_raw = 0;
        self.cur_len = 0;
        self.overlong = false;
        self.raw.drain(..).collect()
    }
}

/// Decode the Telnet sequences of one raw line that starts in data state.
fn decode_telnet(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut state = Telnet::Data;
    for &b in raw {
        state = match (state, b) {
            (Telnet::Data, IAC) => Telnet::Iac,
            (Telnet::Data, _) => {
                out.push(b);
                Telnet::Data
            }
            (Telnet::Iac, IAC) => {
                out.push(IAC);
                Telnet::Data
            }
            (Telnet::Iac, 251..=254) => Telnet::Option,
            (Telnet::Iac, _) | (Telnet::Option, _) => Telnet::Data,
        };
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines_of(reader: &mut LineReader) -> Vec<Result<Vec<u8>, LineError>> {
        std::iter::from_fn(|| reader.next_line()).collect()
    }

    #[test]
    fn rfc959_crlf_ends_a_command_line() {
        let mut r = LineReader::default();
        r.push(b"USER anonymous\r\nPASS x\r\n");
        assert_eq!(
            lines_of(&mut r),
            vec![Ok(b"USER anonymous".to_vec()), Ok(b"PASS x".to_vec())]
        );
        assert_eq!(r.buffered_len(), 0);
    }

    #[test]
    fn bare_lf_also_ends_a_line_and_one_trailing_cr_is_removed() {
        let mut r = LineReader::default();
        r.push(b"NOOP\nSTAT\r\r\n");
        assert_eq!(
            lines_of(&mut r),
            vec![Ok(b"NOOP".to_vec()), Ok(b"STAT\r".to_vec())]
        );
    }

    #[test]
    fn incomplete_line_is_not_returned() {
        let mut r = LineReader::default();
        r.push(b"NO");
        assert_eq!(r.next_line(), None);
        r.push(b"OP\r");
        assert_eq!(r.next_line(), None);
        r.push(b"\n");
        assert_eq!(r.next_line(), Some(Ok(b"NOOP".to_vec())));
    }

    #[test]
    fn rfc854_iac_iac_is_one_literal_ff_byte() {
        let mut r = LineReader::default();
        r.push(b"RETR a\xff\xffb\r\n");
        assert_eq!(r.next_line(), Some(Ok(b"RETR a\xffb".to_vec())));
    }

    #[test]
    fn rfc854_option_negotiation_is_removed() {
        let mut r = LineReader::default();
        // IAC WILL x, IAC WONT \n (the option byte is not a line end), IAC DO, IAC DONT.
        r.push(b"NO\xff\xfb\x01O\xff\xfc\nP\xff\xfd\xff\xff\xfe\x03\r\n");
        assert_eq!(r.next_line(), Some(Ok(b"NOOP".to_vec())));
    }

    #[test]
    fn rfc959_iac_ip_and_iac_dm_before_abor_are_removed() {
        let mut r = LineReader::default();
        r.push(b"\xff\xf4\xff\xf2ABOR\r\n");
        assert_eq!(r.next_line(), Some(Ok(b"ABOR".to_vec())));
    }

    #[test]
    fn rfc854_iac_sequence_split_across_pushes() {
        let mut r = LineReader::default();
        for b in b"A\xff\xffB\xff\xfb\x18C\xff\xf4D\r\n" {
            r.push(&[*b]);
        }
        assert_eq!(r.next_line(), Some(Ok(b"A\xffBCD".to_vec())));
    }

    #[test]
    fn nul_bytes_inside_a_line_are_kept() {
        let mut r = LineReader::default();
        r.push(b"CWD a\0b\r\n");
        assert_eq!(r.next_line(), Some(Ok(b"CWD a\0b".to_vec())));
    }

    #[test]
    fn overlong_line_yields_one_error_then_framing_continues() {
        let mut r = LineReader::new(10);
        r.push(b"0123456789\r\n");
        assert_eq!(r.next_line(), Some(Ok(b"0123456789".to_vec())));
        r.push(b"0123456789A\r\n");
        assert_eq!(r.next_line(), Some(Err(LineError::TooLong)));
        for _ in 0..1000 {
            r.push(b"xxxxxxxxxxxxxxxxxxxx");
            assert!(r.buffered_len() <= 10 + RAW_SLACK + 1);
            assert_eq!(r.next_line(), None);
        }
        r.push(b"yyy\r\nNOOP\r\n");
        assert_eq!(
            lines_of(&mut r),
            vec![Err(LineError::TooLong), Ok(b"NOOP".to_vec())]
        );
        assert_eq!(r.buffered_len(), 0);
    }

    #[test]
    fn telnet_only_flood_is_bounded() {
        let mut r = LineReader::new(16);
        for _ in 0..1000 {
            r.push(b"\xff\xf1");
        }
        assert!(r.buffered_len() <= 16 + RAW_SLACK + 1);
        r.push(b"\r\n");
        assert_eq!(r.next_line(), Some(Err(LineError::TooLong)));
    }

    #[test]
    fn rfc4217_bytes_pipelined_after_auth_are_visible_and_drainable() {
        let mut r = LineReader::default();
        r.push(b"AUTH TLS\r\nUSER evil\r\nPA");
        assert_eq!(r.next_line(), Some(Ok(b"AUTH TLS".to_vec())));
        assert_eq!(r.buffered_len(), 13);
        assert_eq!(r.take_buffered(), b"USER evil\r\nPA");
        assert_eq!(r.buffered_len(), 0);
        assert_eq!(r.next_line(), None);
        r.push(b"SS x\r\n");
        assert_eq!(r.next_line(), Some(Ok(b"SS x".to_vec())));
    }

    proptest! {
        #[test]
        fn prop_never_panics_and_stays_bounded(
            max in 0usize..64,
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
        ) {
            let mut r = LineReader::new(max);
            for c in &chunks {
                r.push(c);
                while let Some(line) = r.next_line() {
                    if let Ok(l) = line {
                        prop_assert!(l.len() <= max);
                        prop_assert!(!l.contains(&b'\n'));
                    }
                }
                prop_assert!(r.buffered_len() <= max + RAW_SLACK + 1);
            }
        }

        #[test]
        fn prop_chunking_does_not_change_lines(
            data in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(0xffu8), Just(0xf4u8), Just(0xfbu8), any::<u8>()], 0..300),
            split in proptest::collection::vec(0usize..300, 0..10),
        ) {
            let mut whole = LineReader::new(32);
            whole.push(&data);
            let expected = lines_of(&mut whole);
            let mut cuts: Vec<usize> = split.into_iter().map(|s| s.min(data.len())).collect();
            cuts.sort_unstable();
            let mut parts = LineReader::new(32);
            let mut got = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain(std::iter::once(data.len())) {
                parts.push(&data[start..cut]);
                got.extend(lines_of(&mut parts));
                start = cut;
            }
            prop_assert_eq!(got, expected);
        }
    }
}
