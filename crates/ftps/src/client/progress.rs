//! Progress and notes on standard error: indicatif bars only when standard
//! error is a terminal and neither `--quiet` nor `--verbose` is given (so
//! nothing lands in a pipe or a log, and bars do not garble the dialogue),
//! laid out for the terminal's width so that a narrow one does not wrap
//! them; notes ("already complete", the one-line summary of a transfer —
//! bytes, time, rate —, mirror summaries) unless `--quiet`. Also the
//! reader adapters for uploads: counting bytes into a bar, and converting
//! local line ends to the network's CRLF for `--ascii` (RFC 959 §3.1.1.1).

use std::io::IsTerminal;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ftps_proto::ascii::ToNetwork;
use indicatif::{BinaryBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::{AsyncRead, ReadBuf};

use super::args::CommonArgs;

/// What may be shown on standard error.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    bars: bool,
    quiet: bool,
}

impl Output {
    /// Decide once, from the options and whether standard error is a terminal.
    pub fn new(common: &CommonArgs) -> Output {
        Output {
            bars: !common.quiet && !common.verbose && std::io::stderr().is_terminal(),
            quiet: common.quiet,
        }
    }

    /// A note for the user (suppressed by `--quiet`).
    pub fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// The line that stays after a transfer: what, bytes, time and rate.
    pub fn summary(&self, what: &str, verb: &str, bytes: u64, took: Duration) {
        self.note(&summary_line(what, verb, bytes, took));
    }

    /// A byte-counting bar (hidden when bars are off).
    pub fn bar(&self, total: Option<u64>, message: String) -> Bar {
        if !self.bars {
            return Bar::hidden();
        }
        let width = console::Term::stderr().size().1;
        Bar::to(ProgressDrawTarget::stderr(), width, total, message)
    }
}

/// `big.iso: 17.00 MiB received in 1.20 s (14.17 MiB/s)`.
pub fn summary_line(what: &str, verb: &str, bytes: u64, took: Duration) -> String {
    let (time, rate) = time_and_rate(bytes, took);
    format!("{what}: {} {verb} in {time} ({rate})", BinaryBytes(bytes))
}

/// `1.20 s` and `14.17 MiB/s` for `bytes` moved in `took`.
pub fn time_and_rate(bytes: u64, took: Duration) -> (String, String) {
    let secs = took.as_secs_f64();
    let time = if secs < 10.0 {
        format!("{secs:.2} s")
    } else {
        format!("{secs:.0} s")
    };
    let rate = if secs > 0.0 {
        format!("{}/s", BinaryBytes((bytes as f64 / secs) as u64))
    } else {
        "-".into()
    };
    (time, rate)
}

/// The layout of a bar for a terminal `width` columns wide: the message
/// (a file name, or mirror's file count) takes what is left and is cut to
/// fit; the fixed parts shrink with the width, so the line never wraps.
fn style(known_total: bool, width: u16) -> ProgressStyle {
    let template = match (known_total, width) {
        (true, 80..) => "{wide_msg} [{bar:20}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        (true, 50..) => "{wide_msg} {bytes}/{total_bytes} {percent:>3}%",
        (true, _) => "{wide_msg} {percent:>3}%",
        (false, 60..) => "{wide_msg} {spinner} {bytes} {bytes_per_sec}",
        (false, _) => "{wide_msg} {bytes}",
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A progress bar, or nothing.
#[derive(Debug, Clone)]
pub struct Bar {
    bar: Option<ProgressBar>,
    width: u16,
}

impl Bar {
    /// No bar.
    pub fn hidden() -> Bar {
        Bar {
            bar: None,
            width: 0,
        }
    }

    /// A bar drawn to `target`, `width` columns wide.
    fn to(target: ProgressDrawTarget, width: u16, total: Option<u64>, message: String) -> Bar {
        let bar = ProgressBar::with_draw_target(total, target);
        bar.set_style(style(total.is_some(), width));
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar {
            bar: Some(bar),
            width,
        }
    }

    /// Count `n` more bytes.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Set the position (resumed transfers start part-way).
    pub fn set_position(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(n);
        }
    }

    /// Set the total, once known.
    pub fn set_length(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.set_style(style(true, self.width));
            bar.set_length(n);
        }
    }

    /// Change the message.
    pub fn set_message(&self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    /// Print a line on standard error without garbling the bar.
    pub fn eprintln(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Remove the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Counts the bytes read through it into a [`Bar`].
#[derive(Debug)]
pub struct CountingReader<R> {
    inner: R,
    bar: Bar,
}

impl<R> CountingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R, bar: Bar) -> CountingReader<R> {
        CountingReader { inner, bar }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for CountingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            this.bar.inc((buf.filled().len() - before) as u64);
        }
        result
    }
}

/// Converts LF line ends to CRLF on the way out (TYPE A uploads); existing
/// CRLF pairs stay as they are.
#[derive(Debug)]
pub struct AsciiReader<R> {
    inner: R,
    converter: ToNetwork,
    pending: Vec<u8>,
    pos: usize,
}

impl<R> AsciiReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> AsciiReader<R> {
        AsciiReader {
            inner,
            converter: ToNetwork::default(),
            pending: Vec::new(),
            pos: 0,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for AsciiReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.pending.len() {
                let n = buf.remaining().min(this.pending.len() - this.pos);
                buf.put_slice(&this.pending[this.pos..this.pos + n]);
                this.pos += n;
                return Poll::Ready(Ok(()));
            }
            this.pending.clear();
            this.pos = 0;
            let mut chunk = [0u8; 16 * 1024];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf) {
                Poll::Ready(Ok(())) => {
                    if chunk_buf.filled().is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    this.converter
                        .convert(chunk_buf.filled(), &mut this.pending);
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncReadExt;

    /// A terminal of a given width that keeps what is drawn on it.
    #[derive(Debug, Clone)]
    struct Screen {
        width: u16,
        written: Arc<Mutex<Vec<String>>>,
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            self.width
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.written.lock().unwrap().push(s.to_string());
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_bar_never_wraps_in_a_narrow_terminal() {
        let name = "a-rather-long-file-name-of-a-nightly-backup-archive.tar.zst".to_string();
        for width in [20u16, 32, 49, 50, 64, 79, 80, 120] {
            for total in [Some(123_456_789_012), None] {
                let screen = Screen {
                    width,
                    written: Arc::default(),
                };
                let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
                let bar = Bar::to(target, width, total, name.clone());
                bar.inc(98_765_432_100);
                std::thread::sleep(Duration::from_millis(50));
                bar.bar.as_ref().unwrap().tick();
                let written = screen.written.lock().unwrap().clone();
                assert!(!written.is_empty(), "nothing drawn at width {width}");
                for line in written.iter().flat_map(|w| w.split('\n')) {
                    let shown = console::measure_text_width(line);
                    assert!(shown <= usize::from(width), "{shown} > {width}: {line:?}");
                }
                bar.finish();
            }
        }
    }

    #[test]
    fn the_summary_gives_bytes_time_and_rate() {
        let line = summary_line(
            "big.iso",
            "received",
            17 * 1024 * 1024,
            Duration::from_millis(1200),
        );
        assert_eq!(line, "big.iso: 17.00 MiB received in 1.20 s (14.17 MiB/s)");
        let slow = summary_line("x", "sent", 0, Duration::ZERO);
        assert_eq!(slow, "x: 0 B sent in 0.00 s (-)");
    }

    #[tokio::test]
    async fn ascii_reader_makes_crlf() {
        let input: &[u8] = b"a\nb\r\nc\n";
        let mut reader = AsciiReader::new(CountingReader::new(input, Bar::hidden()));
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"a\r\nb\r\nc\r\n");
    }
}
