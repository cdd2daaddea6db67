//! Operating the server: what it tells its operator and what it runs when
//! something happens.
//!
//! * [`event`]: the one [`Event`] type — a login, a transfer's end, a
//!   file-system change, a ban — made where it happens and fanned out by
//!   [`Ops::emit`] to
//! * [`metrics`]: the Prometheus metrics, served by [`http`] on a listener
//!   of their own (`GET /metrics`, `GET /healthz`);
//! * [`audit`]: the audit log, JSON lines, and the xferlog ([`xferlog`]);
//! * [`hooks`]: a command and/or an HTTPS POST per event, run from a
//!   bounded queue off the transfer path.

pub mod audit;
pub(crate) mod endpoint;
pub mod event;
pub mod hooks;
pub mod http;
pub mod metrics;
pub mod session;
pub mod timed;
pub mod xferlog;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use event::{Event, EventKind, Outcome};
pub use metrics::Metrics;
pub use session::SessionEvents;

use crate::config::{AuditSection, HooksSection};

/// The metrics, the audit log and the hooks of a running server.
#[derive(Debug)]
pub struct Ops {
    /// Every metric.
    pub metrics: Arc<Metrics>,
    audit: audit::Audit,
    hooks: arc_swap::ArcSwapOption<hooks::Hooks>,
    hooks_config: Mutex<HooksSection>,
    next_session: AtomicU64,
}

/// Why the operations could not start or be reconfigured.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The audit writer thread could not start.
    #[error("audit log: {0}")]
    Audit(#[from] std::io::Error),
    /// The hooks could not be set up.
    #[error(transparent)]
    Hooks(#[from] hooks::HookError),
}

impl Ops {
    /// Start the audit writer and the hooks (inside a tokio runtime).
    pub fn start(audit: &AuditSection, hooks: &HooksSection) -> Result<Ops, OpsError> {
        let metrics = Arc::new(Metrics::new());
        let audit = audit::Audit::start(audit, metrics.audit_dropped.clone())?;
        let started = hooks::Hooks::start(hooks, Arc::clone(&metrics))?;
        Ok(Ops {
            metrics,
            audit,
            hooks: arc_swap::ArcSwapOption::from(started.map(Arc::new)),
            hooks_config: Mutex::new(hooks.clone()),
            next_session: AtomicU64::new(1),
        })
    }

    /// Count, log and hand `event` to the hooks. Never waits.
    pub fn emit(&self, event: Event) {
        self.metrics.record(&event);
        self.audit.record(&event);
        if let Some(hooks) = self.hooks.load().as_deref() {
            hooks.offer(&event);
        }
    }

    /// A number for a new control connection.
    pub fn next_session(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Check that `hooks` can be set up (its URL, its CA file) before a
    /// reload commits to it.
    pub fn check_hooks(hooks: &HooksSection) -> Result<(), OpsError> {
        Ok(hooks::check(hooks)?)
    }

    /// The new `[audit]` and `[hooks]` (SIGHUP): the audit files are opened
    /// again; changed hooks start afresh while the old ones finish what they
    /// have queued.
    pub fn reconfigure(&self, audit: &AuditSection, hooks: &HooksSection) -> Result<(), OpsError> {
        let mut current = match self.hooks_config.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if *current != *hooks {
            let started = hooks::Hooks::start(hooks, Arc::clone(&self.metrics))?;
            self.hooks.store(started.map(Arc::new));
            *current = hooks.clone();
        }
        drop(current);
        self.audit.reconfigure(audit);
        Ok(())
    }

    /// Open the audit files again with `audit` (SIGHUP).
    pub fn reopen_audit(&self, audit: &AuditSection) {
        self.audit.reconfigure(audit);
    }

    /// Wait until the audit lines queued so far are written.
    pub fn flush_audit(&self) {
        self.audit.flush();
    }

    /// Events waiting for a hook.
    pub fn hooks_queued(&self) -> usize {
        self.hooks.load().as_deref().map_or(0, hooks::Hooks::queued)
    }
}
