//! Who may log in: `[anonymous]` (read-only, for the names `anonymous` and
//! `ftp`) and `[[users]]` (accounts with an argon2id password hash, a local root
//! or a place in the object store, write
//! permission, changes to the global `[policy]` and certificate login).
//!
//! `anonymous.tls` chooses one of the per-user TLS policies of RFC 4217 §10.1
//! ("deny secure USER commands for certain users"); `auth` and `certificate`
//! are certificate login (RFC 4217 §12.2, §15.1.2). The policy types themselves
//! are [`ftps_proto::policy`]'s.

use std::path::PathBuf;

use serde::Deserialize;

use super::{AnonymousTls, Backend, PolicyOverride, S3Location, StorageSection, UserStorage};

/// The user names reserved for the `[anonymous]` section (compared case-insensitively).
pub const ANONYMOUS_NAMES: [&str; 2] = ["anonymous", "ftp"];

/// `[anonymous]`: read-only access for the user names `anonymous` and `ftp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnonymousSection {
    /// Whether anonymous login is allowed. Default false.
    pub enabled: bool,
    /// The read-only directory anonymous users see; required when `enabled`.
    pub root: Option<PathBuf>,
    /// Whether anonymous users must, may or must not use TLS. Default `"require"`.
    pub tls: AnonymousTls,
}

/// `[[users]]`: one account that logs in with a password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSection {
    /// The login name (case-sensitive). `anonymous` and `ftp` are reserved.
    pub name: String,
    /// An argon2id PHC string (`$argon2id$v=19$m=...`), never the password itself. May be
    /// left out when `auth = "certificate"`.
    #[serde(default)]
    pub password_hash: String,
    /// The directory this user sees as `/` (local storage).
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// The user's place in the `[s3]` object store, instead of `root`.
    #[serde(default)]
    pub s3: Option<S3Location>,
    /// Whether the user may upload, delete, rename and create directories. Default true.
    #[serde(default = "default_true")]
    pub write: bool,
    /// Changes to the global `[policy]` for this user (`[users.policy]` or
    /// `policy = { allow_ccc = true }`).
    #[serde(default)]
    pub policy: PolicyOverride,
    /// How this user logs in: `"password"` (default), `"certificate"` or
    /// `"certificate_and_password"`.
    #[serde(default)]
    pub auth: AuthMethod,
    /// The client certificates that belong to this user (`certificate = { cn = "alice" }`).
    #[serde(default)]
    pub certificate: CertificateMatch,
}

impl UserSection {
    /// Where this user's files live: `root` (local), else `s3`, else, when
    /// `[storage] backend = "s3"`, the prefix `NAME` of `[s3].bucket`. `None`
    /// when nothing says (a configuration error `check` reports).
    pub fn storage(&self, section: &StorageSection) -> Option<UserStorage> {
        match (&self.root, &self.s3, section.backend) {
            (Some(root), _, _) => Some(UserStorage::Local(root.clone())),
            (None, Some(location), _) => Some(UserStorage::S3(location.clone())),
            (None, None, Backend::S3) => Some(UserStorage::S3(S3Location {
                bucket: None,
                prefix: self.name.clone(),
            })),
            (None, None, Backend::Local) => None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// How a user proves who they are (RFC 4217 §12.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// USER/PASS (the default).
    #[default]
    Password,
    /// A TLS client certificate matching `certificate`: USER gets 232, no PASS.
    Certificate,
    /// Both: the certificate must match, then the password.
    CertificateAndPassword,
}

/// Which client certificates belong to a user; every field given must match.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CertificateMatch {
    /// The subject's common name (CN).
    pub cn: Option<String>,
    /// An e-mail address in the subject alternative names.
    pub email: Option<String>,
    /// A DNS name in the subject alternative names.
    pub dns: Option<String>,
    /// The SHA-256 fingerprint of the certificate (hex, colons allowed).
    pub sha256: Option<String>,
}

impl CertificateMatch {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.cn.is_none() && self.email.is_none() && self.dns.is_none() && self.sha256.is_none()
    }
}
