//! One check of the audit: its identifier, group, the section it tests,
//! what a pass proves and what it cannot see, and the function that runs
//! it; the [`crate::check!`] macro the check modules list theirs with.

use std::future::Future;
use std::pin::Pin;

use crate::context::Ctx;
use crate::probe::ProbeError;
use crate::report::Outcome;

/// The groups, in the order they run and are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// TLS posture.
    Tls,
    /// RFC 4217 / RFC 2228 on the control connection.
    Control,
    /// Data connections.
    Data,
    /// The draft's extras and RFC 959/2428/3659 features.
    Extras,
    /// RFC 2577 and known bug classes.
    Security,
}

impl Group {
    /// All groups, in order.
    pub const ALL: [Group; 5] = [
        Group::Tls,
        Group::Control,
        Group::Data,
        Group::Extras,
        Group::Security,
    ];

    /// The identifier prefix: `tls`, `control`, `data`, `extras`, `security`.
    pub fn name(self) -> &'static str {
        match self {
            Group::Tls => "tls",
            Group::Control => "control",
            Group::Data => "data",
            Group::Extras => "extras",
            Group::Security => "security",
        }
    }

    /// The heading in the report.
    pub fn title(self) -> &'static str {
        match self {
            Group::Tls => "TLS posture",
            Group::Control => "Control connection (RFC 4217, RFC 2228)",
            Group::Data => "Data connections (RFC 4217 §7, §10.2)",
            Group::Extras => {
                "Draft and extras (implicit FTPS, AUTH SSL, REIN, ABOR, MLSD, EPSV/EPRT)"
            }
            Group::Security => "Security (RFC 2577 and known bug classes)",
        }
    }
}

/// The future of a running check.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome, ProbeError>> + 'a>>;

/// One check of the catalogue.
#[derive(Clone, Copy)]
pub struct Check {
    /// `group.name`.
    pub id: &'static str,
    /// Its group.
    pub group: Group,
    /// What is checked, in a few words.
    pub title: &'static str,
    /// The section(s) it tests.
    pub section: &'static str,
    /// What a pass proves.
    pub proves: &'static str,
    /// What it cannot see.
    pub cannot: &'static str,
    /// Whether it uploads (skipped in read-only mode or without `--dir`).
    pub uploads: bool,
    /// The check itself.
    pub run: for<'a> fn(&'a mut Ctx) -> CheckFuture<'a>,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Make a [`Check`] from an `async fn(&mut Ctx) -> Result<Outcome, ProbeError>`.
#[macro_export]
#[doc(hidden)]
macro_rules! check {
    (
        id: $id:literal, group: $group:ident, title: $title:literal, section: $section:literal,
        proves: $proves:literal, cannot: $cannot:literal, uploads: $uploads:literal, run: $f:path $(,)?
    ) => {
        $crate::check::Check {
            id: $id,
            group: $crate::check::Group::$group,
            title: $title,
            section: $section,
            proves: $proves,
            cannot: $cannot,
            uploads: $uploads,
            run: |ctx| Box::pin($f(ctx)),
        }
    };
}
