//! The report of an audit: one [`CheckReport`] per check (identifier,
//! group, the section it tests, its [`Verdict`], a one-line summary, what
//! the check proves and what it cannot, and its evidence), the counts, and
//! the exit code. Serialised as JSON in the schema of
//! `report.schema.json` ([`crate::SCHEMA`]); docs/check.md describes it.

use serde::Serialize;

use crate::evidence::Line;

/// Exit code: every check passed, was skipped or is informational (warnings allowed).
pub const EXIT_OK: i32 = 0;
/// Exit code: at least one check failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: the audit could not run (no connection, TLS refused, login refused).
pub const EXIT_NOT_RUN: i32 = 2;

/// The version of the JSON report format (`format` in the JSON).
pub const FORMAT_VERSION: u32 = 1;

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The server does what the rule asks.
    Pass,
    /// The server breaks a rule (a wrong reply code counts) or is unsafe.
    Fail,
    /// A deviation from a recommendation ("should", good practice), or a
    /// relaxed setting that is only safe under conditions the check cannot see.
    Warn,
    /// Not run: not applicable, not possible in this mode, or a prerequisite missing.
    Skip,
    /// An observation without a verdict.
    Info,
}

impl Verdict {
    /// Upper-case label: `PASS`, `FAIL`, `WARN`, `SKIP`, `INFO`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Warn => "WARN",
            Verdict::Skip => "SKIP",
            Verdict::Info => "INFO",
        }
    }
}

/// The outcome a check function returns: its verdict and a one-line summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// One line saying what was seen.
    pub summary: String,
}

impl Outcome {
    /// A pass.
    pub fn pass(summary: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Pass, summary)
    }
    /// A failure.
    pub fn fail(summary: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Fail, summary)
    }
    /// A warning.
    pub fn warn(summary: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Warn, summary)
    }
    /// A skip.
    pub fn skip(summary: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Skip, summary)
    }
    /// An observation.
    pub fn info(summary: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Info, summary)
    }
    /// Any verdict.
    pub fn new(verdict: Verdict, summary: impl Into<String>) -> Outcome {
        Outcome {
            verdict,
            summary: summary.into(),
        }
    }
}

/// One check in the report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Stable identifier, `group.name` (e.g. `control.prot-before-pbsz`).
    pub id: &'static str,
    /// The group: `tls`, `control`, `data`, `extras` or `security`.
    pub group: &'static str,
    /// What is checked, in a few words.
    pub title: &'static str,
    /// The section(s) tested, e.g. "RFC 4217 §9".
    pub section: &'static str,
    /// The result.
    pub result: Verdict,
    /// What was seen, in one line.
    pub summary: String,
    /// What a pass of this check proves.
    pub proves: &'static str,
    /// What this check cannot see (a server may pass for another reason).
    pub cannot: &'static str,
    /// Milliseconds the check took.
    pub duration_ms: u64,
    /// Commands sent and replies received, TLS handshakes, notes.
    pub evidence: Vec<Line>,
}

/// The server that was audited (the password is never part of it).
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// The URL, without its password.
    pub url: String,
    /// Host name or address.
    pub host: String,
    /// Control port.
    pub port: u16,
    /// `explicit` (AUTH TLS) or `implicit` (TLS from the first byte).
    pub security: &'static str,
    /// The user logged in as.
    pub user: String,
    /// The implicit port also checked, if any.
    pub implicit_port: Option<u16>,
    /// The explicit port also checked, if any.
    pub explicit_port: Option<u16>,
}

/// Counts of each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Checks passed.
    pub pass: usize,
    /// Checks failed.
    pub fail: usize,
    /// Warnings.
    pub warn: usize,
    /// Checks skipped.
    pub skip: usize,
    /// Observations.
    pub info: usize,
}

impl Summary {
    /// Count the verdicts of these checks.
    pub fn of(checks: &[CheckReport]) -> Summary {
        let mut s = Summary::default();
        for c in checks {
            match c.result {
                Verdict::Pass => s.pass += 1,
                Verdict::Fail => s.fail += 1,
                Verdict::Warn => s.warn += 1,
                Verdict::Skip => s.skip += 1,
                Verdict::Info => s.info += 1,
            }
        }
        s
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// `ftps check` and the version of ftps.
    pub tool: String,
    /// When the audit started, RFC 3339 UTC.
    pub started: String,
    /// Milliseconds the audit took.
    pub duration_ms: u64,
    /// The server.
    pub target: TargetReport,
    /// Whether the audit avoided creating anything on the server.
    pub read_only: bool,
    /// The directory uploads went to, if any.
    pub upload_dir: Option<String>,
    /// Why the audit could not run (then `checks` is empty and the exit code 2).
    pub error: Option<String>,
    /// What the server greeted with and the session it gave (for the heading).
    pub server: Vec<String>,
    /// Verdict counts.
    pub summary: Summary,
    /// 0, 1 or 2 (see [`EXIT_OK`], [`EXIT_FAILED`], [`EXIT_NOT_RUN`]).
    pub exit_code: i32,
    /// The checks, in the order they ran.
    pub checks: Vec<CheckReport>,
}

impl Report {
    /// The exit code for these checks (or 2 when the audit did not run).
    pub fn compute_exit_code(&self) -> i32 {
        if self.error.is_some() {
            EXIT_NOT_RUN
        } else if self.summary.fail > 0 {
            EXIT_FAILED
        } else {
            EXIT_OK
        }
    }

    /// The check with this identifier.
    pub fn check(&self, id: &str) -> Option<&CheckReport> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"))
    }
}
