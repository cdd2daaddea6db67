//! The audit log: one JSON object per line per event, to a file and/or
//! standard output, and the transfers in the xferlog format to a file of
//! their own ([`super::xferlog`]).
//!
//! Lines are formatted where the event happens and written by one thread of
//! their own, through a bounded queue, so a slow disk never holds up a
//! transfer; a line that does not fit in the queue is dropped, counted
//! (`ftps_audit_dropped_total`) and logged. The files are opened for
//! appending and opened again on SIGHUP ([`Audit::reconfigure`], which takes
//! the new `[audit]` section too), so logrotate can move them away and
//! signal the server.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;

use super::event::Event;
use super::xferlog;
use crate::config::AuditSection;

/// Lines waiting for the writer at most.
pub const AUDIT_QUEUE_LINES: usize = 65_536;

enum Message {
    Event {
        json: Option<String>,
        xferlog: Option<String>,
    },
    Reconfigure(AuditSection),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The audit log's handle: formats events and queues them for the writer.
#[derive(Debug)]
pub struct Audit {
    sender: SyncSender<Message>,
    config: arc_swap::ArcSwap<AuditSection>,
    dropped: Counter,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("audit message")
    }
}

impl Audit {
    /// Start the writer thread with `config`; `dropped` counts lost lines.
    pub fn start(config: &AuditSection, dropped: Counter) -> std::io::Result<Audit> {
        let (sender, receiver) = sync_channel(AUDIT_QUEUE_LINES);
        let mut writer = Writer::default();
        writer.open(config);
        std::thread::Builder::new()
            .name("ftps-audit".into())
            .spawn(move || writer.run(receiver))?;
        Ok(Audit {
            sender,
            config: arc_swap::ArcSwap::from_pointee(config.clone()),
            dropped,
        })
    }

    /// Queue the lines `event` makes.
    pub fn record(&self, event: &Event) {
        let config = self.config.load();
        if !config.enabled() {
            return;
        }
        let json = (config.file.is_some() || config.stdout).then(|| event.to_json());
        let xferlog = match config.xferlog {
            Some(_) => xferlog::line(event),
            None => None,
        };
        if json.is_none() && xferlog.is_none() {
            return;
        }
        match self.sender.try_send(Message::Event { json, xferlog }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.inc();
                let dropped = self.dropped.get();
                if dropped.is_power_of_two() {
                    tracing::error!(dropped, "audit log writer falls behind: lines dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Use `config` from now on, and open the files again (SIGHUP: after
    /// logrotate moved them).
    pub fn reconfigure(&self, config: &AuditSection) {
        self.config.store(Arc::new(config.clone()));
        let _ = self.sender.send(Message::Reconfigure(config.clone()));
    }

    /// Wait until every line queued so far is written and flushed.
    pub fn flush(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(std::time::Duration::from_secs(5));
        }
    }
}

#[derive(Default)]
struct Writer {
    json: Option<BufWriter<File>>,
    stdout: bool,
    xferlog: Option<BufWriter<File>>,
}

fn open_append(path: &Path) -> Option<BufWriter<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
    {
        Ok(file) => Some(BufWriter::new(file)),
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "cannot open the audit log");
            None
        }
    }
}

fn write_line(out: &mut impl Write, line: &str) -> std::io::Result<()> {
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")
}

impl Writer {
    fn open(&mut self, config: &AuditSection) {
        self.flush();
        self.json = config.file.as_deref().and_then(open_append);
        self.stdout = config.stdout;
        self.xferlog = config.xferlog.as_deref().and_then(open_append);
    }

    fn flush(&mut self) {
        for out in [self.json.as_mut(), self.xferlog.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Err(error) = out.flush() {
                tracing::error!(%error, "cannot write the audit log");
            }
        }
        if self.stdout {
            let _ = std::io::stdout().flush();
        }
    }

    fn run(mut self, receiver: Receiver<Message>) {
        while let Ok(message) = receiver.recv() {
            self.handle(message);
            // Write out as soon as nothing else is waiting.
            while let Ok(message) = receiver.try_recv() {
                self.handle(message);
            }
            self.flush();
        }
        self.flush();
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Event { json, xferlog } => {
                if let Some(json) = json {
                    if let Some(out) = self.json.as_mut() {
                        if let Err(error) = write_line(out, &json) {
                            tracing::error!(%error, "cannot write the audit log");
                        }
                    }
                    if self.stdout {
                        let _ = write_line(&mut std::io::stdout().lock(), &json);
                    }
                }
                if let (Some(line), Some(out)) = (xferlog, self.xferlog.as_mut()) {
                    if let Err(error) = write_line(out, &line) {
                        tracing::error!(%error, "cannot write the xferlog");
                    }
                }
            }
            Message::Reconfigure(config) => self.open(&config),
            Message::Flush(done) => {
                self.flush();
                let _ = done.send(());
            }
        }
    }
}
