//! Accounts in PostgreSQL (table `ftps_users`, created by
//! [`crate::database::SCHEMA_SQL`]): read at each login, so a change holds
//! from the next login on every node, without a restart.
//!
//! The core fields are columns (name, password_hash, root, write, policy,
//! auth, certificate, enabled); every other per-user setting is one JSONB
//! column, `settings`. A row is read back as the same serde type as a
//! `[[users]]` entry: the `settings` object with the columns laid over it.
//! So a setting added to `[[users]]` is stored in `settings` and read here
//! without a schema change, and an unknown key is refused exactly as in the
//! file.

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio_postgres::Row;

use super::store::{check_user, NewUser, StoreError, StoredUser, UserStore};
use crate::config::UserSection;
use crate::database::Database;

/// The columns a row is read with.
const COLUMNS: &str =
    "name, password_hash, root, write, policy, auth, certificate, settings, enabled";

/// The accounts of the `ftps_users` table.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    db: Database,
}

impl PostgresStore {
    /// The store on `db` (whose schema exists).
    pub fn new(db: Database) -> PostgresStore {
        PostgresStore { db }
    }
}

/// A row as a `[[users]]` entry (checked like one) and whether it is enabled.
fn from_row(row: &Row) -> Result<StoredUser, StoreError> {
    let name: String = row.try_get("name").map_err(invalid_row)?;
    let invalid = |message: String| StoreError::Invalid {
        name: name.clone(),
        message,
    };
    let settings: Value = row
        .try_get("settings")
        .map_err(|e| invalid(e.to_string()))?;
    let mut object = match settings {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        _ => return Err(invalid("settings is not a JSON object".into())),
    };
    for column in ["name", "password_hash", "root", "auth"] {
        let text: String = row.try_get(column).map_err(|e| invalid(e.to_string()))?;
        // An empty root: the files are in the object store (settings `s3`,
        // or the prefix NAME/ of [s3].bucket).
        if column == "root" && text.is_empty() {
            continue;
        }
        object.insert(column.into(), Value::String(text));
    }
    let write: bool = row.try_get("write").map_err(|e| invalid(e.to_string()))?;
    object.insert("write".into(), Value::Bool(write));
    for column in ["policy", "certificate"] {
        let value: Value = row.try_get(column).map_err(|e| invalid(e.to_string()))?;
        object.insert(column.into(), value);
    }
    let user: UserSection =
        serde_json::from_value(Value::Object(object)).map_err(|e| invalid(e.to_string()))?;
    check_user(&user)?;
    let enabled: bool = row.try_get("enabled").map_err(|e| invalid(e.to_string()))?;
    Ok(StoredUser { user, enabled })
}

fn invalid_row(e: tokio_postgres::Error) -> StoreError {
    StoreError::Invalid {
        name: String::new(),
        message: e.to_string(),
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn find(&self, name: &str) -> Result<Option<UserSection>, StoreError> {
        let name = name.to_owned();
        let sql = format!("SELECT {COLUMNS} FROM ftps_users WHERE name = $1 AND enabled");
        let row = self
            .db
            .run(|client| async move { client.query_opt(&sql, &[&name]).await })
            .await?;
        row.map(|row| from_row(&row).map(|stored| stored.user))
            .transpose()
    }

    async fn list(&self) -> Result<Vec<StoredUser>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM ftps_users ORDER BY name");
        let rows = self
            .db
            .run(|client| async move { client.query(&sql, &[]).await })
            .await?;
        rows.iter().map(from_row).collect()
    }

    async fn add(&self, user: &NewUser) -> Result<(), StoreError> {
        check_user(&user.to_section()?)?;
        let (name, hash, root, write) = (
            user.name.clone(),
            user.password_hash.clone(),
            user.root
                .as_ref()
                .map(|r| r.display().to_string())
                .unwrap_or_default(),
            user.write,
        );
        let added = self
            .db
            .run(|client| async move {
                client
                    .execute(
                        "INSERT INTO ftps_users (name, password_hash, root, write) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                        &[&name, &hash, &root, &write],
                    )
                    .await
            })
            .await?;
        if added == 0 {
            return Err(StoreError::Exists(user.name.clone()));
        }
        Ok(())
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<(), StoreError> {
        let (n, h) = (name.to_owned(), password_hash.to_owned());
        let changed = self
            .db
            .run(|client| async move {
                client
                    .execute(
                        "UPDATE ftps_users SET password_hash = $2, updated_at = now() WHERE name = $1",
                        &[&n, &h],
                    )
                    .await
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    async fn remove(&self, name: &str) -> Result<(), StoreError> {
        let n = name.to_owned();
        let removed = self
            .db
            .run(|mut client| async move {
                // Its quota usage goes with it: an account added again
                // under the name is measured anew.
                let tx = client.transaction().await?;
                let removed = tx
                    .execute("DELETE FROM ftps_users WHERE name = $1", &[&n])
                    .await?;
                tx.execute("DELETE FROM ftps_usage WHERE name = $1", &[&n])
                    .await?;
                tx.commit().await?;
                Ok(removed)
            })
            .await?;
        if removed == 0 {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("table ftps_users of {}", self.db.describe())
    }
}
