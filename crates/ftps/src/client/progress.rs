//! Progress and notes on standard error: indicatif bars only when standard
//! error is a terminal and neither `--quiet` nor `--verbose` is given (so
//! nothing lands in a pipe or a log, and bars do not garble the dialogue);
//! notes ("already complete", mirror summaries) unless `--quiet`. Also the
//! reader adapters for uploads: counting bytes into a bar, and converting
//! local line ends to the network's CRLF for `--ascii` (RFC 959 §3.1.1.1).

use std::io::IsTerminal;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ftps_proto::ascii::ToNetwork;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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

    /// A byte-counting bar (hidden when bars are off).
    pub fn bar(&self, total: Option<u64>, message: String) -> Bar {
        if !self.bars {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        bar.set_style(style(total.is_some()));
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(bar))
    }
}

/// A bar when the total is known, else a spinner with the count.
fn style(known_total: bool) -> ProgressStyle {
    let template = if known_total {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}"
    } else {
        "{msg} {spinner} {bytes} {bytes_per_sec}"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A progress bar, or nothing.
#[derive(Debug, Clone)]
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// No bar.
    pub fn hidden() -> Bar {
        Bar(None)
    }

    /// Count `n` more bytes.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    /// Set the position (resumed transfers start part-way).
    pub fn set_position(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(n);
        }
    }

    /// Set the total, once known.
    pub fn set_length(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.set_style(style(true));
            bar.set_length(n);
        }
    }

    /// Change the message.
    pub fn set_message(&self, message: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }

    /// Print a line on standard error without garbling the bar.
    pub fn eprintln(&self, line: &str) {
        match &self.0 {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Remove the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
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
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn ascii_reader_makes_crlf() {
        let input: &[u8] = b"a\nb\r\nc\n";
        let mut reader = AsciiReader::new(CountingReader::new(input, Bar::hidden()));
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"a\r\nb\r\nc\r\n");
    }
}
