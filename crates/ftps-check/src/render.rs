//! The report for a terminal: a heading with what the server showed, the
//! checks grouped, one line each (verdict, identifier, summary), the
//! section, what the check proves and cannot see and the evidence under
//! each with `verbose`, and a closing line with the counts and the exit
//! code. Colour only when asked (the caller decides: a terminal, no
//! `NO_COLOR`).

use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use crate::catalog::Group;
use crate::report::{CheckReport, Report, Verdict};

fn style(verdict: Verdict) -> Style {
    let color = match verdict {
        Verdict::Pass => AnsiColor::Green,
        Verdict::Fail => AnsiColor::Red,
        Verdict::Warn => AnsiColor::Yellow,
        Verdict::Skip => AnsiColor::BrightBlack,
        Verdict::Info => AnsiColor::Cyan,
    };
    Style::new().fg_color(Some(color.into())).bold()
}

fn paint(text: &str, s: Style, color: bool) -> String {
    if color {
        format!("{s}{text}{s:#}")
    } else {
        text.to_string()
    }
}

/// The whole report as text.
pub fn terminal(report: &Report, verbose: bool, color: bool) -> String {
    let mut out = String::new();
    let bold = Style::new().bold();
    let dim = Style::new().dimmed();
    let _ = writeln!(
        out,
        "{} {} ({} FTPS), user {}",
        paint("ftps check", bold, color),
        report.target.url,
        report.target.security,
        report.target.user
    );
    for line in &report.server {
        let _ = writeln!(out, "  {}", paint(line, dim, color));
    }
    if let Some(error) = &report.error {
        let _ = writeln!(
            out,
            "\n{} {error}",
            paint("the audit could not run:", style(Verdict::Fail), color)
        );
        return out;
    }
    let width = report.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for group in Group::ALL {
        let checks: Vec<&CheckReport> = report
            .checks
            .iter()
            .filter(|c| c.group == group.name())
            .collect();
        if checks.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}", paint(group.title(), bold, color));
        for c in checks {
            let _ = writeln!(
                out,
                "  {}  {:<width$}  {}",
                paint(c.result.label(), style(c.result), color),
                c.id,
                c.summary
            );
            if verbose {
                check_details(&mut out, c, color);
            }
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} {} passed, {} failed, {} warnings, {} skipped, {} info — exit code {} ({:.1} s)",
        paint("summary:", bold, color),
        s.pass,
        s.fail,
        s.warn,
        s.skip,
        s.info,
        report.exit_code,
        report.duration_ms as f64 / 1000.0
    );
    if !verbose && (s.fail > 0 || s.warn > 0) {
        let _ = writeln!(out, "(run with -v for the evidence behind each check)");
    }
    out
}

fn check_details(out: &mut String, c: &CheckReport, color: bool) {
    let dim = Style::new().dimmed();
    let indent = "          ";
    let _ = writeln!(
        out,
        "{indent}{} {}",
        paint("section:", dim, color),
        c.section
    );
    let _ = writeln!(
        out,
        "{indent}{} {}",
        paint("proves: ", dim, color),
        c.proves
    );
    let _ = writeln!(
        out,
        "{indent}{} {}",
        paint("cannot: ", dim, color),
        c.cannot
    );
    for line in &c.evidence {
        let conn = if line.conn.is_empty() {
            "  "
        } else {
            &line.conn
        };
        let _ = writeln!(
            out,
            "{indent}{:<3} {} {}",
            conn,
            line.kind.marker(),
            line.text
        );
    }
}

/// The catalogue as text (`ftps check --list`).
pub fn catalogue(checks: &[crate::catalog::Check]) -> String {
    let mut out = String::new();
    for group in Group::ALL {
        let _ = writeln!(out, "{}", group.title());
        for c in checks.iter().filter(|c| c.group == group) {
            let _ = writeln!(out, "  {:<34} {}  [{}]", c.id, c.title, c.section);
        }
        out.push('\n');
    }
    out
}

/// The catalogue as the Markdown of docs/check.md: per group a table of
/// identifier, section, what a pass proves and what the check cannot see.
pub fn catalogue_markdown(checks: &[crate::catalog::Check]) -> String {
    let mut out = String::new();
    for group in Group::ALL {
        let _ = writeln!(out, "### {}\n", group.title());
        let _ = writeln!(
            out,
            "| Check | Section | What a pass proves | What it cannot see |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for c in checks.iter().filter(|c| c.group == group) {
            let cell = |t: &str| t.replace('|', "\\|");
            let upload = if c.uploads {
                " (uploads: needs `--dir`, skipped with `--read-only`)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {}{upload} | {} |",
                c.id,
                cell(c.section),
                cell(c.proves),
                cell(c.cannot)
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Outcome, Summary, TargetReport};

    fn report() -> Report {
        let check = CheckReport {
            id: "control.pbsz-before-auth",
            group: "control",
            title: "PBSZ before AUTH is 503",
            section: "RFC 4217 §9",
            result: Outcome::fail("x").verdict,
            summary: "PBSZ 0 before AUTH: 550 (expected 503)".into(),
            proves: "p",
            cannot: "c",
            duration_ms: 1,
            evidence: vec![crate::evidence::Line {
                conn: "c1".into(),
                kind: crate::evidence::Kind::Sent,
                text: "PBSZ 0".into(),
            }],
        };
        let checks = vec![check];
        Report {
            format: 1,
            tool: "ftps check".into(),
            started: String::new(),
            duration_ms: 5,
            target: TargetReport {
                url: "ftp://h/".into(),
                host: "h".into(),
                port: 21,
                security: "explicit",
                user: "u".into(),
                implicit_port: None,
                explicit_port: None,
            },
            read_only: true,
            upload_dir: None,
            error: None,
            server: vec![],
            summary: Summary::of(&checks),
            exit_code: 1,
            checks,
        }
    }

    #[test]
    fn one_line_per_check_colour_only_when_asked_evidence_only_with_verbose() {
        let r = report();
        let plain = terminal(&r, false, false);
        assert!(!plain.contains('\u{1b}'), "{plain}");
        assert!(plain.contains("Control connection (RFC 4217, RFC 2228)\n  FAIL  control.pbsz-before-auth  PBSZ 0 before AUTH"), "{plain}");
        assert!(!plain.contains("> PBSZ 0"));
        assert!(plain.contains("exit code 1"));
        let coloured = terminal(&r, false, true);
        assert!(coloured.contains("\u{1b}["), "{coloured}");
        let verbose = terminal(&r, true, false);
        assert!(
            verbose.contains("c1  > PBSZ 0") && verbose.contains("section: RFC 4217 §9"),
            "{verbose}"
        );
    }
}
