//! `[database]`: the PostgreSQL database that several nodes share. When
//! `url` is set, the accounts come from its `ftps_users` table instead of
//! `[[users]]` (which must then be empty), and failed-login bans are kept
//! there for every node. What is stored and how: `crate::database`,
//! `docs/cluster.md`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use super::Config;

/// Default for [`DatabaseSection::pool_size`].
pub const DEFAULT_DATABASE_POOL_SIZE: usize = 8;
/// Default for [`DatabaseSection::timeout_secs`].
pub const DEFAULT_DATABASE_TIMEOUT_SECS: u64 = 5;

/// `[database]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// A libpq-style URL or key=value string,
    /// `postgresql://ftps@db.example.org:5432/ftps?sslmode=require`. `None`
    /// (the default): no database; users from `[[users]]`, bans in memory.
    pub url: Option<String>,
    /// A file whose first line is the database password (keeps it out of
    /// the configuration file).
    pub password_file: Option<PathBuf>,
    /// CA certificates (PEM) that verify the database's TLS certificate;
    /// default: the system's.
    pub ca_file: Option<PathBuf>,
    /// Connections kept open at most. Default 8.
    pub pool_size: usize,
    /// Seconds a connection or a statement may take before the login it
    /// serves fails with 421. Default 5.
    pub timeout_secs: u64,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            url: None,
            password_file: None,
            ca_file: None,
            pool_size: DEFAULT_DATABASE_POOL_SIZE,
            timeout_secs: DEFAULT_DATABASE_TIMEOUT_SECS,
        }
    }
}

impl DatabaseSection {
    /// Whether a database is configured.
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// `timeout_secs` as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

impl Config {
    pub(super) fn check_database(&self) -> Result<(), (String, String)> {
        let d = &self.database;
        let Some(url) = &d.url else {
            return Ok(());
        };
        if let Err(e) = tokio_postgres::Config::from_str(url) {
            return Err(("database.url".into(), format!("not a PostgreSQL URL: {e}")));
        }
        if d.pool_size == 0 {
            return Err(("database.pool_size".into(), "must be at least 1".into()));
        }
        if d.timeout_secs == 0 {
            return Err((
                "database.timeout_secs".into(),
                "must be at least 1 (a timeout of 0 would disable it)".into(),
            ));
        }
        if !self.users.is_empty() {
            return Err((
                "users".into(),
                "[[users]] and [database] are both set: with a database the accounts live in its ftps_users table (add them with `ftps user add`)".into(),
            ));
        }
        Ok(())
    }
}
