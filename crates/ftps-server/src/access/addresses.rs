//! Client addresses allowed and denied, in CIDR form: `[access]` for the
//! whole server (decided at connect, before any TLS work) and `allow`/`deny`
//! of a `[[users]]` entry (decided at login).
//!
//! A deny entry that matches refuses; otherwise, when there are allow
//! entries, one must match. The refusal names the entry that decided, for
//! the log.

use std::net::IpAddr;

use crate::config::Cidr;

/// Allow and deny lists, with the configuration key they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressRules {
    key: String,
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
}

impl AddressRules {
    /// The lists of the section whose dotted key is `key` (`access`,
    /// `users[2]`).
    pub fn new(key: impl Into<String>, allow: &[Cidr], deny: &[Cidr]) -> AddressRules {
        AddressRules {
            key: key.into(),
            allow: allow.to_vec(),
            deny: deny.to_vec(),
        }
    }

    /// Whether no list is set (everything is allowed).
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// `Ok` when `ip` may pass; otherwise which rule refused it, e.g.
    /// `access.deny[1] (10.0.0.0/8)` or `users[0].allow (no entry matches)`.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        if let Some((i, net)) = self.deny.iter().enumerate().find(|(_, n)| n.contains(ip)) {
            return Err(format!("{}.deny[{i}] ({net})", self.key));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(ip)) {
            return Err(format!("{}.allow (no entry matches)", self.key));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn deny_wins_then_allow_must_match() {
        let rules = AddressRules::new(
            "access",
            &cidrs(&["10.0.0.0/8", "2001:db8::/32"]),
            &cidrs(&["10.9.0.0/16"]),
        );
        assert_eq!(rules.check("10.1.2.3".parse().unwrap()), Ok(()));
        assert_eq!(
            rules.check("10.9.1.1".parse().unwrap()),
            Err("access.deny[0] (10.9.0.0/16)".into())
        );
        assert_eq!(
            rules.check("192.0.2.1".parse().unwrap()),
            Err("access.allow (no entry matches)".into())
        );
        assert_eq!(rules.check("2001:db8::7".parse().unwrap()), Ok(()));
        // An IPv4-mapped IPv6 address is its IPv4 address.
        assert_eq!(rules.check("::ffff:10.1.2.3".parse().unwrap()), Ok(()));
        assert!(AddressRules::default()
            .check("192.0.2.1".parse().unwrap())
            .is_ok());
    }

    #[test]
    fn cidr_parses_networks_and_single_hosts_and_refuses_host_bits() {
        assert_eq!(cidrs(&["192.0.2.7"])[0].to_string(), "192.0.2.7/32");
        assert_eq!(cidrs(&["::1"])[0].to_string(), "::1/128");
        assert!("10.1.2.3/8"
            .parse::<Cidr>()
            .unwrap_err()
            .contains("10.0.0.0/8"));
        assert!("example.org".parse::<Cidr>().is_err());
    }
}
