//! Per-directory permissions of a user (`[[users.rules]]`): what the user
//! may do at and below a path of the user's name space — list, download,
//! upload, overwrite, delete, rename, mkdir.
//!
//! The rule with the longest path that is a prefix (by whole components) of
//! the path in question decides alone; where no rule applies, the user's
//! `write` setting does (everything, or list and download). [`DirRules::check`]
//! names the rule that refused, for the log line; the command gets 550
//! ([`super::RulesStorage`]).

use ftps_proto::path::VirtualPath;

use crate::config::{DirRule, Permission};

/// A set of [`Permission`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions(u8);

impl Permissions {
    fn bit(permission: Permission) -> u8 {
        1 << (permission as u8)
    }

    /// The set of `list`.
    pub fn of(list: &[Permission]) -> Permissions {
        Permissions(list.iter().fold(0, |bits, p| bits | Self::bit(*p)))
    }

    /// Whether `permission` is in the set.
    pub fn allows(self, permission: Permission) -> bool {
        self.0 & Self::bit(permission) != 0
    }

    fn names(self) -> String {
        let names: Vec<&str> = Permission::ALL
            .iter()
            .filter(|p| self.allows(**p))
            .map(|p| p.name())
            .collect();
        match names.is_empty() {
            true => "nothing".into(),
            false => names.join(", "),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    path: VirtualPath,
    permissions: Permissions,
    /// `users[0].rules[1] (/incoming: list, upload)`, for the log.
    name: String,
}

/// One user's per-directory rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRules {
    rules: Vec<Rule>,
    default: Permissions,
    default_name: String,
}

impl DirRules {
    /// The rules of the user whose configuration key is `key` (`users[3]`),
    /// whose `write` setting covers the paths no rule covers. A rule whose
    /// path is not a valid path is skipped (validation refuses such a file).
    pub fn new(key: &str, write: bool, rules: &[DirRule]) -> DirRules {
        let default = match write {
            true => Permissions::of(&Permission::ALL),
            false => Permissions::of(&[Permission::List, Permission::Download]),
        };
        let rules = rules
            .iter()
            .enumerate()
            .filter_map(|(r, rule)| {
                let path = VirtualPath::root().resolve(rule.path.as_bytes()).ok()?;
                let permissions = Permissions::of(&rule.permissions);
                Some(Rule {
                    name: format!(
                        "{key}.rules[{r}] ({}: {})",
                        path.to_string_lossy(),
                        permissions.names()
                    ),
                    path,
                    permissions,
                })
            })
            .collect();
        DirRules {
            rules,
            default,
            default_name: format!("{key}.write = {write}"),
        }
    }

    /// Whether there is no rule (the user's `write` setting decides alone).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether anything anywhere may be changed (the session then lets
    /// changing commands through to the rules).
    pub fn grants_any_write(&self) -> bool {
        let writes = |p: Permissions| Permission::ALL.iter().any(|w| w.writes() && p.allows(*w));
        writes(self.default) || self.rules.iter().any(|r| writes(r.permissions))
    }

    /// `Ok` when `permission` is granted at `path`; otherwise the rule that
    /// refused it.
    pub fn check(&self, path: &VirtualPath, permission: Permission) -> Result<(), String> {
        let rule = self
            .rules
            .iter()
            .filter(|r| path.starts_with(&r.path))
            .max_by_key(|r| r.path.components().len());
        let (granted, name) = match rule {
            Some(rule) => (rule.permissions, &rule.name),
            None => (self.default, &self.default_name),
        };
        match granted.allows(permission) {
            true => Ok(()),
            false => Err(name.clone()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn path(p: &str) -> VirtualPath {
        VirtualPath::root().resolve(p.as_bytes()).unwrap()
    }

    fn rule(p: &str, permissions: &[Permission]) -> DirRule {
        DirRule {
            path: p.into(),
            permissions: permissions.to_vec(),
        }
    }

    #[test]
    fn the_longest_matching_prefix_decides_and_write_covers_the_rest() {
        use Permission::*;
        let rules = DirRules::new(
            "users[3]",
            false,
            &[
                rule("/in", &[List, Upload, Mkdir]),
                rule("/in/archive", &[List, Download]),
            ],
        );
        assert!(rules.grants_any_write());
        assert_eq!(rules.check(&path("/in/a.txt"), Upload), Ok(()));
        assert_eq!(rules.check(&path("/in/sub/a.txt"), Upload), Ok(()));
        assert_eq!(
            rules.check(&path("/in/a.txt"), Delete),
            Err("users[3].rules[0] (/in: list, upload, mkdir)".into())
        );
        assert_eq!(
            rules.check(&path("/in/archive/x"), Upload),
            Err("users[3].rules[1] (/in/archive: list, download)".into())
        );
        // `/inbox` is not below `/in`: whole components only.
        assert_eq!(
            rules.check(&path("/inbox/a"), Upload),
            Err("users[3].write = false".into())
        );
        assert_eq!(rules.check(&path("/other"), Download), Ok(()));
        let read_only = DirRules::new("users[0]", false, &[]);
        assert!(read_only.is_empty() && !read_only.grants_any_write());
    }
}
