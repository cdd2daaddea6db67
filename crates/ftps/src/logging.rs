//! The server's log: `tracing` to standard error, filtered by `--log` /
//! `FTPS_LOG`, with ANSI colours only when standard error is a terminal
//! (a log file or a pipe gets plain text).
//!
//! rustls logs (through the `log` crate) a warning for every ClientHello
//! whose SNI names an IP address, which some clients send on every control
//! and data connection; [`WarnOnce`] lets the first through and drops the
//! repeats, so the log says it once per process.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// The text of the rustls warning that [`WarnOnce`] shows once.
const IP_SNI_WARNING: &str = "IP address presented as hostname";

/// Install the subscriber for `ftps serve`.
pub fn init(filter: &str) -> anyhow::Result<()> {
    let ansi = std::io::stderr().is_terminal();
    let format = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false);
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::try_new(filter)?)
        .with(WarnOnce::default())
        .with(format)
        .try_init()?;
    Ok(())
}

/// Drops every repeat of the rustls warning about an IP address sent as
/// server name (see the module docs).
#[derive(Debug, Default)]
pub struct WarnOnce {
    seen: AtomicBool,
}

impl<S: Subscriber> Layer<S> for WarnOnce {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let mut visitor = MessageContains {
            needle: IP_SNI_WARNING,
            found: false,
        };
        event.record(&mut visitor);
        !visitor.found || !self.seen.swap(true, Ordering::Relaxed)
    }
}

/// Whether an event's message contains `needle`.
struct MessageContains {
    needle: &'static str,
    found: bool,
}

impl Visit for MessageContains {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && format!("{value:?}").contains(self.needle) {
            self.found = true;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what the format layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_ip_sni_warning_is_logged_once_and_others_always() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(WarnOnce::default())
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || writer.clone()),
            );
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                tracing::warn!(
                    "Illegal SNI extension: ignoring IP address presented as hostname ([127, 0, 0, 1])"
                );
                tracing::warn!("something else");
            }
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches(IP_SNI_WARNING).count(), 1, "{text}");
        assert_eq!(text.matches("something else").count(), 3, "{text}");
    }
}
