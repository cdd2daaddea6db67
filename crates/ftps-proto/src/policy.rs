//! The server's TLS policy (RFC 4217 §10.1, §10.2, §5) and its secure defaults.
//!
//! One definition for the whole workspace: the session state machine enforces
//! these types, and the server's configuration file deserialises into them
//! (with the optional `serde` feature), so a policy flag is added in one place.
//! Each `Default` impl is the secure choice; a weaker setting is only in force
//! when the configuration says so.

use std::fmt;

/// The TLS policy (RFC 4217 §10.1, §10.2). Global (`[policy]` in the server's
/// configuration), and overridden per user with a [`PolicyOverride`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields, default)
)]
pub struct Policy {
    /// USER/PASS are refused until TLS protects the control connection
    /// (RFC 4217 §10.1). Default true.
    pub require_tls: bool,
    /// Data-opening commands are refused with 521 unless `PROT P` is in effect
    /// (RFC 4217 §10.2). Default true.
    pub require_prot_p: bool,
    /// Protected data connections must resume this control connection's TLS
    /// session, so a third party cannot take over the data connection
    /// (RFC 4217 §10.2). Default true.
    pub require_session_reuse: bool,
    /// CCC (clear the control connection) is accepted; otherwise it gets 534
    /// (RFC 4217 §5). Default false.
    pub allow_ccc: bool,
    /// A protected upload whose data connection ends with a TCP close but
    /// without the client's TLS close_notify is kept as complete. Default
    /// false: such an upload may have been cut short (by an attacker who
    /// injects a TCP FIN, or by a client that closes too early), so it is
    /// answered 426 and does not replace the file. Some OpenSSL-based
    /// legacy clients never send close_notify; see docs/security.md.
    pub accept_upload_without_close_notify: bool,
}

impl Default for Policy {
    /// The secure defaults: TLS and PROT P required, session reuse required,
    /// no CCC, protected uploads complete only with close_notify.
    fn default() -> Self {
        Policy {
            require_tls: true,
            require_prot_p: true,
            require_session_reuse: true,
            allow_ccc: false,
            accept_upload_without_close_notify: false,
        }
    }
}

impl Policy {
    /// This policy with the fields set in `o` replaced.
    pub fn with(&self, o: &PolicyOverride) -> Policy {
        Policy {
            require_tls: o.require_tls.unwrap_or(self.require_tls),
            require_prot_p: o.require_prot_p.unwrap_or(self.require_prot_p),
            require_session_reuse: o
                .require_session_reuse
                .unwrap_or(self.require_session_reuse),
            allow_ccc: o.allow_ccc.unwrap_or(self.allow_ccc),
            accept_upload_without_close_notify: o
                .accept_upload_without_close_notify
                .unwrap_or(self.accept_upload_without_close_notify),
        }
    }
}

/// A user's changes to the global [`Policy`]; unset fields keep the global value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields, default)
)]
pub struct PolicyOverride {
    /// Overrides [`Policy::require_tls`].
    pub require_tls: Option<bool>,
    /// Overrides [`Policy::require_prot_p`].
    pub require_prot_p: Option<bool>,
    /// Overrides [`Policy::require_session_reuse`].
    pub require_session_reuse: Option<bool>,
    /// Overrides [`Policy::allow_ccc`].
    pub allow_ccc: Option<bool>,
    /// Overrides [`Policy::accept_upload_without_close_notify`].
    pub accept_upload_without_close_notify: Option<bool>,
}

/// How the anonymous account treats TLS (RFC 4217 §10.1: a server may deny
/// insecure or secure USER commands for certain users). Written `"require"`,
/// `"allow"` or `"refuse"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum AnonymousTls {
    /// Anonymous login only after AUTH TLS (the global policy applies). The default.
    #[default]
    Require,
    /// Anonymous login with or without TLS; PROT C data connections allowed.
    Allow,
    /// Anonymous login only without TLS: a USER anonymous on a secured control
    /// connection is refused (RFC 4217 §10.1, "deny secure USER commands for
    /// certain users"), keeping public downloads off the server's TLS resources.
    Refuse,
}

impl fmt::Display for AnonymousTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnonymousTls::Require => "require",
            AnonymousTls::Allow => "allow",
            AnonymousTls::Refuse => "refuse",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_secure() {
        let p = Policy::default();
        assert!(p.require_tls && p.require_prot_p && p.require_session_reuse && !p.allow_ccc);
        assert!(!p.accept_upload_without_close_notify);
        assert_eq!(AnonymousTls::default(), AnonymousTls::Require);
    }

    #[test]
    fn override_replaces_only_the_fields_it_sets() {
        let global = Policy::default();
        assert_eq!(global.with(&PolicyOverride::default()), global);
        let o = PolicyOverride {
            allow_ccc: Some(true),
            require_prot_p: Some(false),
            ..PolicyOverride::default()
        };
        assert_eq!(
            global.with(&o),
            Policy {
                allow_ccc: true,
                require_prot_p: false,
                ..global
            }
        );
    }

    #[test]
    fn anonymous_tls_displays_as_written() {
        for (tls, text) in [
            (AnonymousTls::Require, "require"),
            (AnonymousTls::Allow, "allow"),
            (AnonymousTls::Refuse, "refuse"),
        ] {
            assert_eq!(tls.to_string(), text);
        }
    }
}
