//! Quota usage in the database several servers share (table `ftps_usage`,
//! created by [`crate::database::SCHEMA_SQL`]): one row per user with the
//! bytes and files the user stores.
//!
//! Every change is one atomic statement (`UPDATE ... SET bytes =
//! GREATEST(bytes + $delta, 0) ... WHERE <the growth stays within the
//! quota>`), so two servers changing one user's usage at once never lose an
//! update, and two uploads racing for the last room never both get it. The
//! row is the truth across restarts: it is made once, by the first server
//! that needs it, from a measurement of the user's tree (`INSERT ... ON
//! CONFLICT DO NOTHING`: a second measurement does not replace the first).
//! Deleting the row has the next change measure the tree again (for files
//! changed outside FTP; see `docs/operations.md`).

use super::store::{Added, QuotaLimits, Usage, UsageDelta, UsageError, UsageStore};
use crate::database::Database;

/// Quota usage kept in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresUsageStore {
    db: Database,
}

impl PostgresUsageStore {
    /// The store on `db`.
    pub fn new(db: Database) -> PostgresUsageStore {
        PostgresUsageStore { db }
    }
}

impl PostgresUsageStore {
    /// Every recorded usage, by user name.
    pub async fn list(&self) -> Result<Vec<(String, Usage)>, UsageError> {
        self.db
            .run(|client| async move {
                let rows = client
                    .query(
                        "SELECT name, bytes, files FROM ftps_usage ORDER BY name",
                        &[],
                    )
                    .await?;
                rows.iter()
                    .map(|row| Ok((row.try_get("name")?, usage_of(row)?)))
                    .collect()
            })
            .await
            .map_err(failed)
    }
}

/// A `bigint` column as a count (the table's CHECK keeps it ≥ 0).
fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A count as a `bigint`.
fn bigint(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn usage_of(row: &tokio_postgres::Row) -> Result<Usage, tokio_postgres::Error> {
    Ok(Usage {
        bytes: count(row.try_get("bytes")?),
        files: count(row.try_get("files")?),
    })
}

fn failed(error: crate::users::StoreError) -> UsageError {
    UsageError(error.to_string())
}

/// The change, applied only when each growing part stays within its limit
/// (a NULL limit holds nothing); the row afterwards, or — when the change
/// was refused — the row as it is, marked not applied. No row: no result.
const ADD_SQL: &str = "
WITH changed AS (
    UPDATE ftps_usage
       SET bytes = GREATEST(bytes + $2::bigint, 0),
           files = GREATEST(files + $3::bigint, 0),
           updated_at = now()
     WHERE name = $1::text
       AND ($2::bigint <= 0 OR $4::bigint IS NULL OR bytes + $2::bigint <= $4::bigint)
       AND ($3::bigint <= 0 OR $5::bigint IS NULL OR files + $3::bigint <= $5::bigint)
 RETURNING bytes, files
)
SELECT bytes, files, true AS applied FROM changed
UNION ALL
SELECT bytes, files, false AS applied FROM ftps_usage
 WHERE name = $1::text AND NOT EXISTS (SELECT 1 FROM changed)";

#[async_trait::async_trait]
impl UsageStore for PostgresUsageStore {
    async fn get(&self, user: &str) -> Result<Option<Usage>, UsageError> {
        let user = user.to_owned();
        self.db
            .run(|client| async move {
                client
                    .query_opt(
                        "SELECT bytes, files FROM ftps_usage WHERE name = $1",
                        &[&user],
                    )
                    .await?
                    .as_ref()
                    .map(usage_of)
                    .transpose()
            })
            .await
            .map_err(failed)
    }

    async fn initialize(&self, user: &str, measured: Usage) -> Result<Usage, UsageError> {
        let user = user.to_owned();
        let (bytes, files) = (bigint(measured.bytes), bigint(measured.files));
        self.db
            .run(|client| async move {
                // Inserted, or the row another server made first (a no-op
                // update so that RETURNING gives it in the same statement).
                let row = client
                    .query_one(
                        "INSERT INTO ftps_usage AS u (name, bytes, files) VALUES ($1::text, $2::bigint, $3::bigint) \
                         ON CONFLICT (name) DO UPDATE SET name = u.name \
                         RETURNING u.bytes, u.files",
                        &[&user, &bytes, &files],
                    )
                    .await?;
                usage_of(&row)
            })
            .await
            .map_err(failed)
    }

    async fn add(
        &self,
        user: &str,
        delta: UsageDelta,
        within: QuotaLimits,
    ) -> Result<Added, UsageError> {
        let user = user.to_owned();
        let max_bytes = within.bytes.map(bigint);
        let max_files = within.files.map(bigint);
        self.db
            .run(|client| async move {
                let row = client
                    .query_opt(
                        ADD_SQL,
                        &[&user, &delta.bytes, &delta.files, &max_bytes, &max_files],
                    )
                    .await?;
                let Some(row) = row else {
                    return Ok(Added::NotRecorded);
                };
                let usage = usage_of(&row)?;
                Ok(match row.try_get::<_, bool>("applied")? {
                    true => Added::Done(usage),
                    false => Added::OverQuota(usage),
                })
            })
            .await
            .map_err(failed)
    }

    async fn forget(&self, user: &str) -> Result<(), UsageError> {
        let user = user.to_owned();
        self.db
            .run(|client| async move {
                client
                    .execute("DELETE FROM ftps_usage WHERE name = $1", &[&user])
                    .await
            })
            .await
            .map(|_| ())
            .map_err(failed)
    }
}
