//! The [`UserStore`] trait: where the password accounts live, read at each
//! login and changed by `ftps user add|passwd|del|list`. An account is the
//! same serde type in every store, a `[[users]]` entry
//! ([`crate::config::UserSection`]), so a per-user setting added to that type
//! is stored and read everywhere without a change here.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::config::UserSection;

/// Why a user store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached (database down, timeout): try later.
    #[error("user store unavailable: {0}")]
    Unavailable(String),
    /// A stored account is not valid (a bad hash, an unknown setting).
    #[error("user {name:?}: {message}")]
    Invalid {
        /// The login name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// No such user.
    #[error("no user {0:?}")]
    NotFound(String),
    /// The user exists already.
    #[error("user {0:?} exists already")]
    Exists(String),
    /// The store cannot do this (e.g. change a configuration it was not
    /// read from).
    #[error("{0}")]
    Unsupported(String),
}

/// One stored account and whether it may log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    /// The account, as a `[[users]]` entry.
    pub user: UserSection,
    /// Whether it may log in (a disabled account is kept but refused).
    pub enabled: bool,
}

/// A new account as `ftps user add` makes it: the core fields; every other
/// setting at its default (change them in the file or the table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The login name.
    pub name: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// The directory seen as `/`; `None`: the object store's prefix `NAME/`
    /// (`[storage] backend = "s3"`).
    pub root: Option<PathBuf>,
    /// Whether the user may change files.
    pub write: bool,
}

impl NewUser {
    /// As a `[[users]]` entry (every other setting at its serde default).
    pub fn to_section(&self) -> Result<UserSection, StoreError> {
        let mut user = serde_json::json!({
            "name": self.name,
            "password_hash": self.password_hash,
            "write": self.write,
        });
        if let (Some(root), Some(map)) = (&self.root, user.as_object_mut()) {
            map.insert("root".into(), serde_json::json!(root));
        }
        serde_json::from_value(user).map_err(|e| StoreError::Invalid {
            name: self.name.clone(),
            message: e.to_string(),
        })
    }
}

/// A place accounts are kept.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The enabled account named exactly `name`, as it is now.
    async fn find(&self, name: &str) -> Result<Option<UserSection>, StoreError>;
    /// Every account, by name.
    async fn list(&self) -> Result<Vec<StoredUser>, StoreError>;
    /// Adds a new account (enabled).
    async fn add(&self, user: &NewUser) -> Result<(), StoreError>;
    /// Replaces an account's password hash.
    async fn set_password(&self, name: &str, password_hash: &str) -> Result<(), StoreError>;
    /// Removes an account.
    async fn remove(&self, name: &str) -> Result<(), StoreError>;
    /// What the store is, for logs (never a password).
    fn describe(&self) -> String;
}

/// The checks of `config::check` on one account, for accounts that do not
/// come from the configuration file (a database row, `ftps user add`).
pub fn check_user(user: &UserSection) -> Result<(), StoreError> {
    let mut config = crate::config::Config::default();
    // Certificate login needs a listener asking for certificates: that is
    // the serving node's business, not the account's. Where the files live
    // (a root, else the object store) is checked at login against the
    // node's [storage].
    config.tls.client_certificates = crate::config::ClientCertificates::Requested;
    config.tls.client_ca = Some("ca.pem".into());
    let mut user = user.clone();
    if user.root.is_none() && user.s3.is_none() {
        user.root = Some(PathBuf::from("/"));
    }
    config.users.push(user);
    config.validate("user").map_err(|e| StoreError::Invalid {
        name: config
            .users
            .first()
            .map(|u| u.name.clone())
            .unwrap_or_default(),
        message: e.to_string(),
    })
}
