//! The catalogue of checks: for each, its identifier, group, the section it
//! tests, what a pass proves and what the check cannot see — the text of
//! docs/check.md and of `ftps check --list` — and the function that runs it.

use std::future::Future;
use std::pin::Pin;

use crate::checks::{control, data, extras, security, sessions, tls};
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

/// Every check, in the order they run.
pub fn all() -> Vec<Check> {
    let mut checks = Vec::new();
    checks.extend(tls::checks());
    checks.extend(control::checks());
    checks.extend(data::checks());
    checks.extend(sessions::checks());
    checks.extend(extras::checks());
    checks.extend(security::checks());
    checks
}

/// Make a [`Check`] from an `async fn(&mut Ctx) -> Result<Outcome, ProbeError>`.
#[macro_export]
#[doc(hidden)]
macro_rules! check {
    (
        id: $id:literal, group: $group:ident, title: $title:literal, section: $section:literal,
        proves: $proves:literal, cannot: $cannot:literal, uploads: $uploads:literal, run: $f:path $(,)?
    ) => {
        $crate::catalog::Check {
            id: $id,
            group: $crate::catalog::Group::$group,
            title: $title,
            section: $section,
            proves: $proves,
            cannot: $cannot,
            uploads: $uploads,
            run: |ctx| Box::pin($f(ctx)),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_unique_and_grouped() {
        let checks = all();
        let mut seen = std::collections::HashSet::new();
        for c in &checks {
            assert!(seen.insert(c.id), "{} twice", c.id);
            assert!(
                c.id.starts_with(&format!("{}.", c.group.name())),
                "{} is not in group {}",
                c.id,
                c.group.name()
            );
            assert!(!c.section.is_empty() && !c.proves.is_empty() && !c.cannot.is_empty());
        }
        // Groups run in order.
        let order: Vec<usize> = checks
            .iter()
            .map(|c| Group::ALL.iter().position(|g| *g == c.group).unwrap_or(99))
            .collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    }
}
