//! The PostgreSQL database several nodes share (`[database]`): a bounded
//! pool of connections (deadpool over tokio-postgres, TLS through rustls
//! when the server offers it or `sslmode=require` asks for it), the schema
//! the nodes create on start, and a bound on every statement, so a database
//! that is down or stuck is an error in seconds, never a hang.
//!
//! Users ([`crate::users::PostgresStore`]), failed-login bans
//! ([`crate::bans::PostgresBans`]) and quota usage
//! ([`crate::quota::PostgresUsageStore`]) are kept here; see
//! `docs/cluster.md`.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};

use crate::config::DatabaseSection;
use crate::users::StoreError;

/// The tables, created when missing (`ftps serve` and `ftps user` run this
/// on start; several nodes may run it at once).
pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS ftps_users (
    name          text PRIMARY KEY CHECK (name <> ''),
    password_hash text NOT NULL DEFAULT '',
    root          text NOT NULL DEFAULT '',
    write         boolean NOT NULL DEFAULT true,
    policy        jsonb NOT NULL DEFAULT '{}',
    auth          text NOT NULL DEFAULT 'password',
    certificate   jsonb NOT NULL DEFAULT '{}',
    enabled       boolean NOT NULL DEFAULT true,
    settings      jsonb NOT NULL DEFAULT '{}',
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ftps_login_failures (
    address inet NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS ftps_login_failures_address_at ON ftps_login_failures (address, at);
CREATE TABLE IF NOT EXISTS ftps_bans (
    address      inet PRIMARY KEY,
    banned_until timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS ftps_usage (
    name        text PRIMARY KEY,
    bytes       bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    files       bigint NOT NULL DEFAULT 0 CHECK (files >= 0),
    measured_at timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
";

/// The tables of [`SCHEMA_SQL`].
const TABLES: [&str; 4] = [
    "ftps_users",
    "ftps_login_failures",
    "ftps_bans",
    "ftps_usage",
];

/// A key for `pg_advisory_xact_lock`: nodes create the schema one at a time.
const SCHEMA_LOCK_KEY: i64 = 0x6674_7073_5f73_6368; // "ftps_sch"

/// A pool of connections to the shared database.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    timeout: Duration,
    described: Arc<str>,
    /// Set once the schema is known to exist (tried again until it is).
    schema: Arc<tokio::sync::OnceCell<()>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.described)
    }
}

impl Database {
    /// A pool for `[database]` (no connection is made yet).
    pub fn new(section: &DatabaseSection) -> Result<Database, StoreError> {
        let url = section.url.as_deref().unwrap_or_default();
        let mut pg = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Unsupported(format!("database.url: {e}")))?;
        if let Some(file) = &section.password_file {
            let password = std::fs::read_to_string(file).map_err(|e| {
                StoreError::Unsupported(format!("database.password_file {}: {e}", file.display()))
            })?;
            pg.password(password.trim_end_matches(['\r', '\n']));
        }
        let timeout = section.timeout();
        pg.connect_timeout(timeout);
        let described = describe(&pg);
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(section)?);
        let manager = Manager::from_config(
            pg,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(section.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| StoreError::Unsupported(format!("database pool: {e}")))?;
        Ok(Database {
            pool,
            timeout,
            described: described.into(),
            schema: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// Host, port, database and user (never the password), for logs.
    pub fn describe(&self) -> &str {
        &self.described
    }

    /// Creates the tables that are missing (once per pool; [`Database::run`]
    /// calls it first, so a database that was down at start is set up when
    /// it comes).
    pub async fn create_schema(&self) -> Result<(), StoreError> {
        self.schema
            .get_or_try_init(|| self.create_schema_now())
            .await
            .map(|_| ())
    }

    async fn create_schema_now(&self) -> Result<(), StoreError> {
        self.run_unchecked(|mut client| async move {
            // Tables made beforehand (by a role the nodes' may not match)
            // need no CREATE privilege: only look.
            let names: Vec<&str> = TABLES.to_vec();
            let present: i64 = client
                .query_one(
                    "SELECT count(*) FROM unnest($1::text[]) AS t(name) \
                     WHERE to_regclass(t.name) IS NOT NULL",
                    &[&names],
                )
                .await?
                .try_get(0)?;
            if present == TABLES.len() as i64 {
                return Ok(());
            }
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK_KEY])
                .await?;
            tx.batch_execute(SCHEMA_SQL).await?;
            tx.commit().await
        })
        .await
    }

    /// Runs `work` on a pooled connection within the statement bound; a
    /// database that cannot be reached, fails or does not answer in time is
    /// [`StoreError::Unavailable`].
    pub async fn run<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(Object) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        self.create_schema().await?;
        self.run_unchecked(work).await
    }

    async fn run_unchecked<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(Object) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let attempt = async {
            let client = self
                .pool
                .get()
                .await
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", self.described)))?;
            work(client)
                .await
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", self.described)))
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "{}: no answer within {:?}",
                self.described, self.timeout
            ))),
        }
    }
}

fn describe(pg: &tokio_postgres::Config) -> String {
    let host = pg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgresql://{}@{host}:{port}/{}",
        pg.get_user().unwrap_or(""),
        pg.get_dbname().unwrap_or("")
    )
}

/// TLS to the database: the system's roots, or `database.ca_file`.
fn tls_config(section: &DatabaseSection) -> Result<rustls::ClientConfig, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    match &section.ca_file {
        Some(file) => {
            let pem = std::fs::read(file).map_err(|e| {
                StoreError::Unsupported(format!("database.ca_file {}: {e}", file.display()))
            })?;
            for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
                let cert: rustls_pki_types::CertificateDer<'static> = cert.map_err(|e| {
                    StoreError::Unsupported(format!("database.ca_file {}: {e}", file.display()))
                })?;
                let _ = roots.add(cert);
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Unsupported(format!("database TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
