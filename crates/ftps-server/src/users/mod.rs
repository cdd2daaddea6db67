//! Accounts and password authentication (RFC 959 USER/PASS, RFC 2577 §5).
//!
//! Passwords are stored only as argon2id PHC strings ([`hash_password`]); verification is
//! constant-time in the password ([`verify_password`]). [`UserDb::verify`] runs a full
//! argon2 verification even for a name that does not exist, against a fixed dummy hash, so the
//! time a PASS takes does not tell a client which user names exist (RFC 2577 §7, Protecting
//! Usernames). The delay after a failed login (`server.failed_login_delay_ms`, RFC 2577 §5,
//! Protecting Passwords) is the caller's job.
//!
//! Anonymous access (user names `anonymous` and `ftp`, case-insensitive) is read-only and
//! accepts any password, conventionally an e-mail address.
//!
//! Accounts other than the anonymous one live in a [`UserStore`] and are read at each login
//! ([`UserDb::lookup`]), so a change in the store holds from the next login on: the
//! configuration's `[[users]]` ([`TomlUsers`], the zero-config default) or a PostgreSQL
//! table ([`PostgresStore`], for several nodes sharing their users).
//!
//! [`load_or_create_zero_config_user`] keeps the single user of a zero-config start
//! (`ftps serve --root DIR`) in the state directory, so its random password is printed once
//! and keeps working across restarts.

mod postgres;
mod store;
mod toml_store;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ftps_proto::policy::{AnonymousTls, Policy};
use rand::rngs::OsRng;
use rand::Rng;
use serde::Deserialize;

use crate::config::{Config, StorageSection, UserSection, UserStorage, ANONYMOUS_NAMES};
pub use postgres::PostgresStore;
pub use store::{check_user, NewUser, StoreError, StoredUser, UserStore};
pub use toml_store::TomlUsers;

/// Length of [`random_password`]'s result.
pub const RANDOM_PASSWORD_LEN: usize = 20;

/// Letters and digits without the look-alikes `0 O o 1 l I` (56 symbols, ~5.8 bits each).
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";

/// An argon2id hash (default parameters) of a password nobody knows, verified against when the
/// user name is unknown so that the reply takes as long as for a known user.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$KHuk3mHnxtQ/EQUxU6uJNQ$Rey89Yk0fOk2v0JO4JbFn20IvlmjYjlv2j1EUbD4eDY";

/// Name of the zero-config user file inside the state directory.
pub const ZERO_CONFIG_USER_FILE: &str = "user.toml";

/// An error hashing a password or handling the zero-config user file.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// argon2 refused to hash (should not happen with default parameters).
    #[error("cannot hash password: {0}")]
    Hash(argon2::password_hash::Error),
    /// The zero-config user file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The zero-config user file (or its directory) cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The zero-config user file is not what this module writes.
    #[error("{path}: {message} (delete the file to create a new user and password)")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Hashes `password` with argon2id, default parameters and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, UserError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(UserError::Hash)
}

/// Whether `password` matches the PHC string `hash` (argon2, any variant). Constant-time in
/// the password; false for a malformed hash. CPU-heavy: call it from `spawn_blocking`.
///
/// The argon2 working memory (`m` KiB, 19 MiB with the default parameters) comes from a
/// small pool instead of a fresh allocation per check: the allocator would otherwise keep
/// one such block resident in each thread's arena that ever ran a check.
pub fn verify_password(hash: &str, password: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let mut blocks = memory_pool::take(params.block_count());
    let hashed = Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut blocks)
        .is_ok();
    memory_pool::give_back(blocks);
    // `Output` compares in constant time.
    hashed && argon2::password_hash::Output::new(&out).is_ok_and(|out| out == expected)
}

/// Reused argon2 working memory (see [`verify_password`]).
mod memory_pool {
    use std::sync::Mutex;

    use argon2::Block;

    /// Blocks kept for reuse: one per concurrent check (the server bounds those).
    const KEPT: usize = 4;

    static POOL: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

    pub(super) fn take(count: usize) -> Vec<Block> {
        let reused = match POOL.lock() {
            Ok(mut pool) => pool.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        match reused {
            Some(mut blocks) => {
                blocks.resize(count, Block::default());
                blocks
            }
            None => vec![Block::default(); count],
        }
    }

    pub(super) fn give_back(blocks: Vec<Block>) {
        let mut pool = match POOL.lock() {
            Ok(pool) => pool,
            Err(poisoned) => poisoned.into_inner(),
        };
        if pool.len() < KEPT {
            pool.push(blocks);
        }
    }
}

/// A fresh random password: [`RANDOM_PASSWORD_LEN`] letters and digits without look-alikes
/// (about 116 bits), from the operating system's random source.
pub fn random_password() -> String {
    (0..RANDOM_PASSWORD_LEN)
        .map(|_| char::from(PASSWORD_ALPHABET[OsRng.gen_range(0..PASSWORD_ALPHABET.len())]))
        .collect()
}

/// What a session knows about the logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The login name (`anonymous` for anonymous sessions).
    pub name: String,
    /// Where the user's files live: the directory the user sees as `/` (as
    /// configured; may be relative) or a place in the object store.
    pub storage: UserStorage,
    /// Whether the user may change files (always false for anonymous).
    pub write: bool,
    /// The effective TLS policy: the global `[policy]` with the user's overrides applied.
    /// For anonymous users `require_tls` and `require_prot_p` follow `anonymous.tls`.
    pub policy: Policy,
    /// The user's own `policy` table (what it sets, unmerged): a listener's
    /// setting applies only where the user sets nothing.
    pub policy_override: ftps_proto::policy::PolicyOverride,
    /// Whether this is the anonymous account.
    pub anonymous: bool,
    /// `anonymous.tls` for the anonymous account; `None` for other users. With
    /// [`AnonymousTls::Refuse`] a USER anonymous on a TLS-secured control connection must be
    /// refused (RFC 4217 §10.1).
    pub anonymous_tls: Option<AnonymousTls>,
    /// How the user logs in (password, certificate, or both).
    pub auth: crate::config::AuthMethod,
    /// The client certificates that belong to the user.
    pub certificate: crate::config::CertificateMatch,
    /// What the user may store.
    pub quota: crate::quota::QuotaLimits,
    /// Bytes per second of the user's uploads, all sessions together (0: no limit).
    pub upload_bytes_per_sec: u64,
    /// Bytes per second of the user's downloads, all sessions together (0: no limit).
    pub download_bytes_per_sec: u64,
    /// Sessions logged in as this user at once (0: no limit).
    pub max_sessions: usize,
    /// Where the user may log in from.
    pub addresses: crate::access::AddressRules,
    /// What the user may do where.
    pub rules: std::sync::Arc<crate::access::DirRules>,
}

/// How a client certificate relates to the user named in USER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertCheck {
    /// Go on with PASS.
    Password,
    /// The certificate logs the user in (232).
    Certificate(Box<Account>),
    /// The certificate belongs to someone else (530).
    Refused,
}

/// One entry of the [`UserDb`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The account a successful login yields.
    pub account: Account,
    /// The argon2id PHC string; `None` for the anonymous account, which takes any password.
    pub password_hash: Option<String>,
}

impl UserRecord {
    /// The record of a `[[users]]` entry (from the file or a database row)
    /// under the global `policy` and `[storage]`; `None` when nothing says
    /// where the user's files live.
    pub fn from_section(
        u: &UserSection,
        policy: &Policy,
        storage: &StorageSection,
    ) -> Option<UserRecord> {
        // How the logs name the account's settings, in every store.
        let key = format!("users[{:?}]", u.name);
        Some(UserRecord {
            account: Account {
                name: u.name.clone(),
                storage: u.storage(storage)?,
                write: u.write,
                policy: policy.with(&u.policy),
                policy_override: u.policy,
                anonymous: false,
                anonymous_tls: None,
                auth: u.auth,
                certificate: u.certificate.clone(),
                quota: crate::quota::QuotaLimits {
                    bytes: u.quota_bytes,
                    files: u.quota_files,
                },
                upload_bytes_per_sec: u.upload_bytes_per_sec,
                download_bytes_per_sec: u.download_bytes_per_sec,
                max_sessions: u.max_sessions,
                addresses: crate::access::AddressRules::new(key.clone(), &u.allow, &u.deny),
                rules: Arc::new(crate::access::DirRules::new(&key, u.write, &u.rules)),
            },
            password_hash: Some(u.password_hash.clone()),
        })
    }
}

/// The accounts: the anonymous one from `[anonymous]`, the others from a
/// [`UserStore`] (the configuration's `[[users]]`, or PostgreSQL), read at
/// each login; plus the memory of recent successful password checks.
#[derive(Clone)]
pub struct UserDb {
    store: Arc<dyn UserStore>,
    policy: Policy,
    storage: StorageSection,
    anonymous: Option<UserRecord>,
    cache: Arc<crate::login_cache::LoginCache>,
}

impl std::fmt::Debug for UserDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserDb")
            .field("store", &self.store.describe())
            .field("anonymous", &self.anonymous.is_some())
            .finish()
    }
}

impl UserDb {
    /// The accounts of `[[users]]`, `[policy]` and `[anonymous]`. Expects a
    /// validated configuration; an enabled anonymous section without a root
    /// is ignored.
    pub fn from_config(cfg: &Config) -> UserDb {
        UserDb::with_store(cfg, Arc::new(TomlUsers::from_config(cfg, None)))
    }

    /// The accounts of `store`, with `[policy]` and `[anonymous]` from `cfg`.
    pub fn with_store(cfg: &Config, store: Arc<dyn UserStore>) -> UserDb {
        let anon = &cfg.anonymous;
        let anonymous = match (&anon.root, anon.enabled) {
            (Some(root), true) => Some(UserRecord {
                account: Account {
                    name: ANONYMOUS_NAMES[0].to_owned(),
                    storage: UserStorage::Local(root.clone()),
                    write: false,
                    policy: anonymous_policy(&cfg.policy, anon.tls),
                    policy_override: Default::default(),
                    anonymous: true,
                    anonymous_tls: Some(anon.tls),
                    auth: crate::config::AuthMethod::Password,
                    certificate: Default::default(),
                    quota: Default::default(),
                    upload_bytes_per_sec: 0,
                    download_bytes_per_sec: 0,
                    max_sessions: 0,
                    addresses: Default::default(),
                    rules: std::sync::Arc::new(crate::access::DirRules::new(
                        "anonymous",
                        false,
                        &[],
                    )),
                },
                password_hash: None,
            }),
            _ => None,
        };
        UserDb {
            store,
            policy: cfg.policy,
            storage: cfg.storage.clone(),
            anonymous,
            cache: Arc::new(crate::login_cache::LoginCache::new(
                std::time::Duration::from_secs(cfg.server.login_cache_secs),
            )),
        }
    }

    /// The record for login name `name` (`anonymous`/`ftp` case-insensitively, other names
    /// exactly), if it exists and is enabled: asked of the store now, so a change in the
    /// store holds from the next login on.
    pub async fn lookup(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        if is_anonymous_name(name) {
            return Ok(self.anonymous.clone());
        }
        let Some(section) = self.store.find(name).await? else {
            return Ok(None);
        };
        match UserRecord::from_section(&section, &self.policy, &self.storage) {
            Some(record) => Ok(Some(record)),
            None => Err(StoreError::Invalid {
                name: name.to_owned(),
                message: "no root, no s3 location, and [storage] backend is not \"s3\"".into(),
            }),
        }
    }

    /// Whether anonymous login is enabled.
    pub fn anonymous_enabled(&self) -> bool {
        self.anonymous.is_some()
    }

    /// The store behind the password accounts.
    pub fn store(&self) -> &Arc<dyn UserStore> {
        &self.store
    }

    /// Checks `password` against `record` (what [`UserDb::lookup`] found for
    /// the name) and the client certificate's identity, if any; the account on
    /// success. Users whose `auth` involves a certificate also need a matching
    /// one; certificate-only users never log in with a password.
    ///
    /// Blocking: argon2 is CPU-heavy, so async callers run this in `spawn_blocking`. Without
    /// a record it still verifies against a fixed dummy hash, so timing does not reveal
    /// which names exist. The anonymous account accepts any password.
    pub fn verify(
        &self,
        record: Option<&UserRecord>,
        password: &[u8],
        cert: Option<&crate::identity::CertIdentity>,
    ) -> Option<Account> {
        let Some(record) = record else {
            let _ = verify_password(DUMMY_HASH, password);
            return None;
        };
        if !password_login_allowed(record, cert) {
            let _ = verify_password(DUMMY_HASH, password);
            return None;
        }
        match record {
            UserRecord {
                account,
                password_hash: None,
            } if account.anonymous => Some(account.clone()),
            UserRecord {
                account,
                password_hash: Some(hash),
            } => verify_password(hash, password).then(|| {
                self.cache
                    .insert(&account.name, hash, password, std::time::Instant::now());
                account.clone()
            }),
            _ => {
                let _ = verify_password(DUMMY_HASH, password);
                None
            }
        }
    }

    /// The account, when `password` was verified recently against the
    /// record's current hash (see [`crate::login_cache`]) and the user's
    /// certificate rule still holds; `None` means: run [`UserDb::verify`].
    /// Cheap, non-blocking. A changed password hash misses.
    pub fn verify_cached(
        &self,
        record: Option<&UserRecord>,
        password: &[u8],
        cert: Option<&crate::identity::CertIdentity>,
    ) -> Option<Account> {
        let record = record?;
        let hash = record.password_hash.as_deref()?;
        if !password_login_allowed(record, cert) {
            return None;
        }
        self.cache
            .hit(
                &record.account.name,
                hash,
                password,
                std::time::Instant::now(),
            )
            .then(|| record.account.clone())
    }

    /// USER with a client certificate (RFC 4217 §12.2), given what
    /// [`UserDb::lookup`] found: log in by certificate, ask for the password,
    /// or refuse.
    pub fn check_certificate(
        &self,
        record: Option<&UserRecord>,
        cert: &crate::identity::CertIdentity,
    ) -> CertCheck {
        use crate::config::AuthMethod;
        let Some(record) = record else {
            // Unknown names behave like password users: nothing is revealed.
            return CertCheck::Password;
        };
        let account = &record.account;
        if account.anonymous || account.certificate.is_empty() {
            return CertCheck::Password;
        }
        if !cert.matches(&account.certificate) {
            return CertCheck::Refused;
        }
        match account.auth {
            AuthMethod::Certificate => CertCheck::Certificate(Box::new(account.clone())),
            AuthMethod::CertificateAndPassword | AuthMethod::Password => CertCheck::Password,
        }
    }
}

/// Whether the user's `auth` rule lets a password log in with this client
/// certificate: never for certificate-only users, and only with a matching
/// certificate for `certificate_and_password`.
fn password_login_allowed(
    record: &UserRecord,
    cert: Option<&crate::identity::CertIdentity>,
) -> bool {
    use crate::config::AuthMethod;
    match record.account.auth {
        AuthMethod::Certificate => false,
        AuthMethod::CertificateAndPassword => {
            cert.is_some_and(|c| c.matches(&record.account.certificate))
        }
        _ => true,
    }
}

/// Whether `name` is one of the anonymous login names (case-insensitive).
pub fn is_anonymous_name(name: &str) -> bool {
    ANONYMOUS_NAMES.iter().any(|a| a.eq_ignore_ascii_case(name))
}

fn anonymous_policy(global: &Policy, tls: AnonymousTls) -> Policy {
    match tls {
        AnonymousTls::Require => Policy {
            require_tls: true,
            ..*global
        },
        AnonymousTls::Allow | AnonymousTls::Refuse => Policy {
            require_tls: false,
            require_prot_p: false,
            ..*global
        },
    }
}

/// The single user of a zero-config start, as kept in the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroConfigUser {
    /// The login name.
    pub name: String,
    /// The argon2id PHC string of the password.
    pub password_hash: String,
    /// The password in clear, only when the user was created by this call: print it once.
    pub new_password: Option<String>,
}

impl ZeroConfigUser {
    /// A `[[users]]` entry for this user with write access to `root` and the global policy.
    pub fn to_user_section(&self, root: PathBuf) -> UserSection {
        UserSection {
            name: self.name.clone(),
            password_hash: self.password_hash.clone(),
            root: Some(root),
            s3: None,
            write: true,
            ..Default::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    name: String,
    password_hash: String,
}

/// Loads the zero-config user from `state_dir/user.toml`, or creates it there with the name
/// `default_name` and a [`random_password`] (directory 0700, file 0600, written atomically).
/// Only a newly created user has [`ZeroConfigUser::new_password`] set. Deleting the file
/// makes the next start create a new password.
pub fn load_or_create_zero_config_user(
    state_dir: &Path,
    default_name: &str,
) -> Result<ZeroConfigUser, UserError> {
    let path = state_dir.join(ZERO_CONFIG_USER_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let invalid = |message: String| UserError::Invalid {
                path: path.clone(),
                message,
            };
            let file: UserFile = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
            if PasswordHash::new(&file.password_hash).is_err() {
                return Err(invalid("password_hash is not a PHC string".to_owned()));
            }
            if file.name.is_empty() || is_anonymous_name(&file.name) {
                return Err(invalid(format!("unusable user name {:?}", file.name)));
            }
            Ok(ZeroConfigUser {
                name: file.name,
                password_hash: file.password_hash,
                new_password: None,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let password = random_password();
            let hash = hash_password(&password)?;
            let text = format!(
                "# The user of `ftps serve` without a [[users]] configuration.\n\
                 # Delete this file to get a new password on the next start.\n\
                 name = {}\npassword_hash = {}\n",
                toml_string(default_name),
                toml_string(&hash)
            );
            crate::certs::create_state_dir(state_dir).map_err(|source| UserError::Write {
                path: state_dir.to_path_buf(),
                source,
            })?;
            crate::certs::write_atomic(&path, text.as_bytes(), 0o600).map_err(|source| {
                UserError::Write {
                    path: path.clone(),
                    source,
                }
            })?;
            Ok(ZeroConfigUser {
                name: default_name.to_owned(),
                password_hash: hash,
                new_password: Some(password),
            })
        }
        Err(source) => Err(UserError::Read { path, source }),
    }
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{parse, PolicyOverride};

    /// The hash of "correct horse".
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$KHuk3mHnxtQ/EQUxU6uJNQ$3jJaqxVILffIGwUjXRCcoMCvwBQlW1TErg99BSg2DdA";

    fn look(db: &UserDb, name: &str) -> Option<UserRecord> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(db.lookup(name))
            .unwrap()
    }

    fn auth(db: &UserDb, name: &str, password: &[u8]) -> Option<Account> {
        db.verify(look(db, name).as_ref(), password, None)
    }

    fn cached(db: &UserDb, name: &str, password: &[u8]) -> Option<Account> {
        db.verify_cached(look(db, name).as_ref(), password, None)
    }

    fn db(extra: &str) -> UserDb {
        let text = format!(
            "[policy]\nallow_ccc = false\n\n[[users]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\nroot = \"/srv/alice\"\n\n\
             [[users]]\nname = \"bob\"\npassword_hash = \"{HASH}\"\nroot = \"/srv/bob\"\nwrite = false\n\
             policy = {{ allow_ccc = true, require_prot_p = false }}\n{extra}"
        );
        UserDb::from_config(&parse(&text, "t").unwrap())
    }

    #[test]
    fn hash_verify_round_trip() {
        let h = hash_password("s3cret pass").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, b"s3cret pass"));
        assert!(!verify_password(&h, b"s3cret pasS"));
        assert_ne!(h, hash_password("s3cret pass").unwrap(), "salt is random");
        assert!(verify_password(HASH, b"correct horse"));
    }

    #[test]
    fn a_successful_login_is_remembered_only_for_that_password() {
        let db = db("");
        assert_eq!(cached(&db, "alice", b"correct horse"), None);
        assert!(auth(&db, "alice", b"wrong").is_none());
        assert_eq!(cached(&db, "alice", b"wrong"), None);
        let account = auth(&db, "alice", b"correct horse").unwrap();
        assert_eq!(cached(&db, "alice", b"correct horse"), Some(account));
        assert_eq!(cached(&db, "alice", b"correct hors"), None);
        assert_eq!(cached(&db, "bob", b"correct horse"), None);
        assert_eq!(cached(&db, "nobody", b"correct horse"), None);
    }

    #[test]
    fn login_cache_can_be_turned_off() {
        let db = db("[server]\nlogin_cache_secs = 0\n");
        assert!(auth(&db, "alice", b"correct horse").is_some());
        assert_eq!(cached(&db, "alice", b"correct horse"), None);
    }

    #[test]
    fn pooled_argon2_memory_gives_the_same_answers_for_other_parameters() {
        // A smaller memory cost than the pooled blocks were sized for, and back.
        let params = argon2::Params::new(1024, 1, 1, None).unwrap();
        let small = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"pw", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(verify_password(HASH, b"correct horse"));
        assert!(verify_password(&small, b"pw"));
        assert!(!verify_password(&small, b"pW"));
        assert!(verify_password(HASH, b"correct horse"));
    }

    #[test]
    fn wrong_and_malformed() {
        assert!(!verify_password(HASH, b"wrong"));
        assert!(!verify_password(HASH, b""));
        assert!(!verify_password("", b"correct horse"));
        assert!(!verify_password("$argon2id$v=19$garbage", b"correct horse"));
        assert!(!verify_password("correct horse", b"correct horse"));
        assert!(!verify_password(DUMMY_HASH, b"correct horse"));
    }

    #[test]
    fn random_passwords() {
        let a = random_password();
        assert_eq!(a.len(), RANDOM_PASSWORD_LEN);
        assert!(a.bytes().all(|c| PASSWORD_ALPHABET.contains(&c)));
        assert!(!a.contains(['0', 'O', 'o', '1', 'l', 'I']));
        assert_ne!(a, random_password());
    }

    #[test]
    fn authenticate_users() {
        let db = db("");
        let alice = auth(&db, "alice", b"correct horse").unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(
            alice.storage,
            UserStorage::Local(PathBuf::from("/srv/alice"))
        );
        assert!(alice.write && !alice.anonymous && alice.anonymous_tls.is_none());
        assert!(auth(&db, "alice", b"wrong").is_none());
        assert!(
            auth(&db, "Alice", b"correct horse").is_none(),
            "names are exact"
        );
        assert!(auth(&db, "mallory", b"correct horse").is_none());
        assert!(look(&db, "mallory").is_none());
    }

    #[test]
    fn per_user_policy_override() {
        let db = db("");
        let global = Policy::default();
        assert_eq!(look(&db, "alice").unwrap().account.policy, global);
        let bob = auth(&db, "bob", b"correct horse").unwrap();
        assert!(!bob.write);
        assert_eq!(
            bob.policy,
            Policy {
                allow_ccc: true,
                require_prot_p: false,
                ..global
            }
        );
        let o = PolicyOverride {
            require_tls: Some(false),
            ..Default::default()
        };
        assert!(!global.with(&o).require_tls);
        assert_eq!(global.with(&PolicyOverride::default()), global);
    }

    #[test]
    fn anonymous_only_when_enabled() {
        let off = db("");
        assert!(!off.anonymous_enabled());
        assert!(look(&off, "anonymous").is_none());
        assert!(auth(&off, "anonymous", b"me@example.org").is_none());
        assert!(auth(&off, "ftp", b"").is_none());

        let on = db("[anonymous]\nenabled = true\nroot = \"/srv/pub\"\ntls = \"refuse\"\n");
        for name in ["anonymous", "ANONYMOUS", "ftp", "Ftp"] {
            let a = auth(&on, name, b"me@example.org").unwrap();
            assert!(a.anonymous && !a.write, "{name}");
            assert_eq!(a.name, "anonymous");
            assert_eq!(a.storage, UserStorage::Local(PathBuf::from("/srv/pub")));
            assert_eq!(a.anonymous_tls, Some(AnonymousTls::Refuse));
            assert!(!a.policy.require_tls && !a.policy.require_prot_p);
        }
        assert!(look(&on, "ftp").unwrap().password_hash.is_none());

        let req = db("[anonymous]\nenabled = true\nroot = \"/srv/pub\"\n");
        let a = auth(&req, "anonymous", b"").unwrap();
        assert!(a.policy.require_tls && a.policy.require_prot_p);
        assert_eq!(a.anonymous_tls, Some(AnonymousTls::Require));
    }

    #[test]
    fn zero_config_user_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = load_or_create_zero_config_user(&state, "ftps").unwrap();
        let password = first.new_password.clone().unwrap();
        assert_eq!(first.name, "ftps");
        assert!(verify_password(&first.password_hash, password.as_bytes()));
        let again = load_or_create_zero_config_user(&state, "other").unwrap();
        assert_eq!(again.name, "ftps");
        assert_eq!(again.password_hash, first.password_hash);
        assert!(again.new_password.is_none());
        let section = again.to_user_section(PathBuf::from("/data"));
        let mut cfg = Config::default();
        cfg.users.push(section);
        cfg.validate("zero").unwrap();
        assert!(auth(&UserDb::from_config(&cfg), "ftps", password.as_bytes()).is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(state.join(ZERO_CONFIG_USER_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(state.join(ZERO_CONFIG_USER_FILE), "nonsense = 1\n").unwrap();
        let e = load_or_create_zero_config_user(&state, "ftps").unwrap_err();
        assert!(e.to_string().contains("user.toml"), "{e}");
    }

    #[test]
    fn toml_string_escapes() {
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
    }
}
