//! The configuration file's `[[users]]` as a [`UserStore`]: the zero-config
//! default. The server reads the accounts once at start; `ftps user
//! add|passwd|del` edit the file itself (comments and layout kept, with
//! `toml_edit`), check the whole result as `ftps serve` would, and replace
//! it atomically. A running server sees the change after a restart; with
//! several nodes use the PostgreSQL store instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use async_trait::async_trait;
use toml_edit::{value, ArrayOfTables, DocumentMut, Item, Table};

use super::store::{check_user, NewUser, StoreError, StoredUser, UserStore};
use crate::config::{Config, UserSection};

/// The `[[users]]` of a configuration, and the file they came from (needed
/// only to change them).
#[derive(Debug)]
pub struct TomlUsers {
    users: RwLock<HashMap<String, UserSection>>,
    file: Option<PathBuf>,
}

impl TomlUsers {
    /// The accounts of `config` (read from `file`, if it came from one).
    pub fn from_config(config: &Config, file: Option<&Path>) -> TomlUsers {
        TomlUsers {
            users: RwLock::new(
                config
                    .users
                    .iter()
                    .map(|u| (u.name.clone(), u.clone()))
                    .collect(),
            ),
            file: file.map(Path::to_path_buf),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, UserSection>> {
        match self.users.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Applies `change` to the file's document, checks the result as a whole
    /// configuration, writes it back and takes its accounts.
    fn edit(
        &self,
        change: impl FnOnce(&mut ArrayOfTables) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let Some(path) = &self.file else {
            return Err(StoreError::Unsupported(
                "the accounts were not read from a configuration file: nothing to change".into(),
            ));
        };
        let unavailable =
            |e: &dyn std::fmt::Display| StoreError::Unavailable(format!("{}: {e}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| unavailable(&e))?;
        let mut doc: DocumentMut = text.parse().map_err(|e| unavailable(&e))?;
        if !doc.contains_key("users") {
            doc.insert("users", Item::ArrayOfTables(ArrayOfTables::new()));
        }
        let users = doc
            .get_mut("users")
            .and_then(Item::as_array_of_tables_mut)
            .ok_or_else(|| unavailable(&"`users` is not an array of tables ([[users]])"))?;
        change(users)?;
        let text = doc.to_string();
        let config = crate::config::parse(&text, &path.display().to_string()).map_err(|e| {
            StoreError::Invalid {
                name: String::new(),
                message: e.to_string(),
            }
        })?;
        let mode = file_mode(path);
        crate::certs::write_atomic(path, text.as_bytes(), mode).map_err(|e| unavailable(&e))?;
        let mut users = match self.users.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *users = config
            .users
            .into_iter()
            .map(|u| (u.name.clone(), u))
            .collect();
        Ok(())
    }
}

fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600)
}

fn position(users: &ArrayOfTables, name: &str) -> Option<usize> {
    users
        .iter()
        .position(|t| t.get("name").and_then(Item::as_str) == Some(name))
}

/// A `[[users]]` table for a new account.
fn table_for(user: &NewUser) -> Table {
    let mut table = Table::new();
    table.insert("name", value(user.name.as_str()));
    table.insert("password_hash", value(user.password_hash.as_str()));
    if let Some(root) = &user.root {
        table.insert("root", value(root.display().to_string()));
    }
    if !user.write {
        table.insert("write", value(false));
    }
    table
}

#[async_trait]
impl UserStore for TomlUsers {
    async fn find(&self, name: &str) -> Result<Option<UserSection>, StoreError> {
        Ok(self.read().get(name).cloned())
    }

    async fn list(&self) -> Result<Vec<StoredUser>, StoreError> {
        let mut users: Vec<StoredUser> = self
            .read()
            .values()
            .map(|u| StoredUser {
                user: u.clone(),
                enabled: true,
            })
            .collect();
        users.sort_by(|a, b| a.user.name.cmp(&b.user.name));
        Ok(users)
    }

    async fn add(&self, user: &NewUser) -> Result<(), StoreError> {
        check_user(&user.to_section()?)?;
        let table = table_for(user);
        self.edit(|users| {
            if position(users, &user.name).is_some() {
                return Err(StoreError::Exists(user.name.clone()));
            }
            users.push(table);
            Ok(())
        })
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<(), StoreError> {
        self.edit(|users| {
            let i = position(users, name).ok_or_else(|| StoreError::NotFound(name.into()))?;
            if let Some(table) = users.get_mut(i) {
                table.insert("password_hash", value(password_hash));
            }
            Ok(())
        })
    }

    async fn remove(&self, name: &str) -> Result<(), StoreError> {
        self.edit(|users| {
            let i = position(users, name).ok_or_else(|| StoreError::NotFound(name.into()))?;
            users.remove(i);
            Ok(())
        })
    }

    fn describe(&self) -> String {
        match &self.file {
            Some(path) => format!("[[users]] of {}", path.display()),
            None => "[[users]] of the configuration".into(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn new_user(name: &str) -> NewUser {
        NewUser {
            name: name.into(),
            password_hash: crate::users::hash_password("pw").unwrap(),
            root: Some("/srv/ftp/x".into()),
            write: false,
        }
    }

    #[test]
    fn ftps_user_edits_the_file_keeping_its_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ftps.toml");
        std::fs::write(&path, "# my server\n[server]\nbanner = \"hi\" # greeting\n").unwrap();
        let config = crate::config::load(&path).unwrap();
        let store = TomlUsers::from_config(&config, Some(&path));
        block_on(store.add(&new_user("carol"))).unwrap();
        assert!(matches!(
            block_on(store.add(&new_user("carol"))),
            Err(StoreError::Exists(_))
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# my server\n") && text.contains("# greeting"),
            "{text}"
        );
        let reread = crate::config::load(&path).unwrap();
        assert_eq!(reread.users.len(), 1);
        assert!(!reread.users[0].write);
        assert!(block_on(store.find("carol")).unwrap().is_some());

        let hash = crate::users::hash_password("new").unwrap();
        block_on(store.set_password("carol", &hash)).unwrap();
        assert_eq!(
            crate::config::load(&path).unwrap().users[0].password_hash,
            hash
        );
        assert!(matches!(
            block_on(store.set_password("dave", &hash)),
            Err(StoreError::NotFound(_))
        ));
        let listed = block_on(store.list()).unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].enabled);

        block_on(store.remove("carol")).unwrap();
        assert!(crate::config::load(&path).unwrap().users.is_empty());
        assert!(block_on(store.find("carol")).unwrap().is_none());
    }

    #[test]
    fn an_account_the_configuration_would_refuse_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ftps.toml");
        std::fs::write(&path, "").unwrap();
        let store = TomlUsers::from_config(&Config::default(), Some(&path));
        for bad in ["anonymous", "has space", ""] {
            assert!(
                matches!(
                    block_on(store.add(&new_user(bad))),
                    Err(StoreError::Invalid { .. })
                ),
                "{bad:?}"
            );
        }
        let mut weak = new_user("eve");
        weak.password_hash = "plaintext".into();
        assert!(block_on(store.add(&weak)).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let no_file = TomlUsers::from_config(&Config::default(), None);
        assert!(matches!(
            block_on(no_file.add(&new_user("x"))),
            Err(StoreError::Unsupported(_))
        ));
    }
}
