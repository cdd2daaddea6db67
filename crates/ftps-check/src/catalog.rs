//! The catalogue of checks: for each, its identifier, group, the section it
//! tests, what a pass proves and what the check cannot see — the text of
//! docs/check.md and of `ftps check --list` — and the function that runs it.

pub use crate::check::{Check, CheckFuture, Group};
use crate::checks::{control, data, extras, security, sessions, tls};

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
