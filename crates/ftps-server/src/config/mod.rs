//! The server's TOML configuration file (`ftps serve --config FILE`).
//!
//! This module owns the configuration schema, its defaults and its validation. Every option
//! has a secure default, so an empty file is a valid configuration: listeners on the loopback
//! address only, TLS required before USER/PASS (RFC 4217 §10.1), PROT P required for every
//! data connection and TLS session reuse required on it (RFC 4217 §10.2), CCC refused
//! (RFC 4217 §5), bounded sessions, line length and timeouts, and a delay after each failed
//! login (RFC 2577 §5). Unknown keys are errors (`deny_unknown_fields` everywhere), so a typo
//! never silently falls back to a default.
//!
//! Every error names the file, the line and the dotted key, e.g.
//! `ftps.toml line 12: server.max_sesions: unknown field ...`. Checks that look at more than
//! one value (a certificate without a key, duplicate user names) run after deserialising and
//! give [`ConfigError::Invalid`]; [`parse`] appends the line of the key to their message when
//! it can find it.
//!
//! Relative paths are kept as written; the caller resolves them.
//!
//! One file per concern:
//!
//! - `server`: `[server]`, listeners, passive ports, limits and timeouts
//! - `tls`: `[tls]`, certificates, versions, cipher suites, client certificates, SNI
//! - `accounts`: `[anonymous]` and `[[users]]`, with each user's quota, rates, sessions,
//!   addresses and per-directory rules
//! - `limits`: `[limits]` (bandwidth of the whole server) and `[access]` (client addresses)
//! - `operations`: `[metrics]`, `[audit]` and `[hooks]`
//! - `storage`: `[storage]`, `[s3]` and a user's storage location
//! - `proxy`: `[proxy_protocol]` and the passive settings per listener
//! - `database`: `[database]`, the PostgreSQL database nodes share
//! - `[policy]` (RFC 4217 §10.1, §10.2, §5) is [`ftps_proto::policy::Policy`], defined once
//!   with its secure defaults in the protocol crate and re-exported here
//! - `check`: the validation after deserialising
//! - `errors`: [`ConfigError`] and its messages
//! - `locate`: the line and dotted key of a place in the text

mod accounts;
mod check;
mod database;
mod errors;
mod limits;
mod locate;
mod operations;
mod proxy;
mod server;
mod storage;
mod tls;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::path::Path;

use serde::Deserialize;

pub use accounts::{
    AnonymousSection, AuthMethod, CertificateMatch, DirRule, Permission, UserSection,
    ANONYMOUS_NAMES,
};
pub use database::{DatabaseSection, DEFAULT_DATABASE_POOL_SIZE, DEFAULT_DATABASE_TIMEOUT_SECS};
pub use errors::ConfigError;
pub use ftps_proto::policy::{AnonymousTls, Policy, PolicyOverride};
pub use limits::{AccessSection, Cidr, LimitsSection};
pub use operations::{
    AuditSection, HookEvent, HooksSection, MetricsSection, DEFAULT_HOOK_QUEUE,
    DEFAULT_HOOK_RETRIES, DEFAULT_HOOK_TIMEOUT_SECS, DEFAULT_HOOK_WORKERS, DEFAULT_METRICS_LISTEN,
};
pub use proxy::{
    PassiveSettings, ProxyProtocolSection, TrustedRange, DEFAULT_PROXY_HEADER_TIMEOUT_SECS,
};
pub use server::{
    ListenerConfig, PortRange, PortRangeError, ServerSection, DEFAULT_BANNER,
    DEFAULT_BAN_AFTER_FAILURES, DEFAULT_BAN_SECS, DEFAULT_BAN_WINDOW_SECS,
    DEFAULT_DATA_CONNECT_TIMEOUT_SECS, DEFAULT_FAILED_LOGIN_DELAY_MS, DEFAULT_IDLE_TIMEOUT_SECS,
    DEFAULT_IMPLICIT_LISTEN, DEFAULT_LISTEN, DEFAULT_LOGIN_CACHE_SECS, DEFAULT_LOGIN_TIMEOUT_SECS,
    DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_LOGIN_FAILURES, DEFAULT_MAX_SESSIONS,
    DEFAULT_MAX_SESSIONS_PER_IP, DEFAULT_SHUTDOWN_GRACE_SECS, DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECS,
    DEFAULT_TRANSFER_STALL_TIMEOUT_SECS, MAX_BANNER_BYTES, MAX_MAX_LINE_BYTES, MIN_MAX_LINE_BYTES,
};
pub use storage::{
    is_valid_bucket_name, Backend, S3Location, S3Section, StorageSection, UserStorage,
    DEFAULT_S3_CONCURRENT_PARTS, DEFAULT_S3_PART_SIZE_MIB, DEFAULT_S3_REGION,
    DEFAULT_S3_TIMEOUT_SECS, MAX_S3_CONCURRENT_PARTS, MAX_S3_PART_SIZE_MIB, MIN_S3_PART_SIZE_MIB,
};
pub use tls::{
    cipher_suite_name, find_cipher_suite, ClientCertificates, SniCertificate, TlsSection,
    TlsVersion,
};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: listeners, limits and timeouts.
    pub server: ServerSection,
    /// `[tls]`: certificate, protocol versions and cipher suites.
    pub tls: TlsSection,
    /// `[policy]`: the global TLS policy (each user may override it).
    pub policy: Policy,
    /// `[storage]`: the back-end of users that name none.
    pub storage: StorageSection,
    /// `[s3]`: the object store reached over the S3 API.
    pub s3: S3Section,
    /// `[anonymous]`: read-only anonymous access (off by default).
    pub anonymous: AnonymousSection,
    /// `[[users]]`: the accounts that log in with a password.
    pub users: Vec<UserSection>,
    /// `[limits]`: bandwidth of the whole server.
    pub limits: LimitsSection,
    /// `[access]`: which client addresses may connect.
    pub access: AccessSection,
    /// `[metrics]`: the Prometheus endpoint (off by default).
    pub metrics: MetricsSection,
    /// `[audit]`: the audit log and the xferlog (off by default).
    pub audit: AuditSection,
    /// `[hooks]`: a command and/or a webhook per event (off by default).
    pub hooks: HooksSection,
    /// `[proxy_protocol]`: the balancers trusted to send PROXY protocol headers.
    pub proxy_protocol: ProxyProtocolSection,
    /// `[database]`: the PostgreSQL database nodes share (users, bans).
    pub database: DatabaseSection,
}

/// Reads and parses the configuration file at `path` (see [`parse`]).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates configuration text; `origin` (usually the file name) starts every
/// error message.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let config: Config =
        toml::from_str(text).map_err(|e| errors::syntax_error(text, origin, &e))?;
    config
        .check()
        .map_err(|(key, message)| errors::invalid_error(origin, Some(text), key, message))?;
    Ok(config)
}

impl Config {
    /// Checks the values that deserialising alone cannot (ranges, checks across keys).
    /// [`parse`] and [`load`] call it; call it on a configuration built in code.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.check()
            .map_err(|(key, message)| errors::invalid_error(origin, None, key, message))
    }

    /// Every listener with its dotted key (`server.listen[0]`, `server.implicit_listen[1]`).
    pub fn listeners(&self) -> impl Iterator<Item = (String, &ListenerConfig)> {
        let explicit = self
            .server
            .listen
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("server.listen[{i}]"), l));
        let implicit = self
            .server
            .implicit_listen
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("server.implicit_listen[{i}]"), l));
        explicit.chain(implicit)
    }

    /// The client-certificate setting in effect on `listener`.
    pub fn client_certificates_on(&self, listener: &ListenerConfig) -> ClientCertificates {
        listener.client_certificates_or(self.tls.client_certificates)
    }

    /// The buckets the configuration puts users' files in (`[s3].bucket`
    /// when a user takes it by default, and always under `[storage] backend
    /// = "s3"`, where accounts from the database land in it), sorted,
    /// without repeats.
    pub fn s3_buckets(&self) -> Vec<String> {
        let mut buckets: Vec<String> = self
            .users
            .iter()
            .filter_map(|u| match u.storage(&self.storage) {
                Some(UserStorage::S3(location)) => {
                    location.bucket.or_else(|| self.s3.bucket.clone())
                }
                _ => None,
            })
            .collect();
        if self.storage.backend == Backend::S3 {
            buckets.extend(self.s3.bucket.clone());
        }
        buckets.sort();
        buckets.dedup();
        buckets
    }

    /// Whether any listener asks for client certificates (so certificate login is possible).
    pub fn any_client_certificates(&self) -> bool {
        self.listeners()
            .any(|(_, l)| self.client_certificates_on(l) != ClientCertificates::Off)
    }
}
