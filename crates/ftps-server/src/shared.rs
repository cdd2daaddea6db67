//! The state every connection of a server shares. Owned by
//! [`crate::server::Server`]; read by each control connection
//! ([`crate::connection`]).
//!
//! What the configuration decides and a reload may change — the
//! configuration itself, TLS set-up, users, policy, address rules, the
//! server's bandwidth limits — is a [`Live`] snapshot behind an
//! `arc-swap`: a connection takes the current one once, at connect, and
//! keeps it to its end, so a reload applies to new sessions while running
//! ones keep theirs ([`crate::reload`]). The rest lives as long as the
//! server: bans, the session limits and counts, the shutdown token, the open
//! storage roots, quota usage, the metrics, audit log and hooks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use ftps_proto::session::{AnonymousTls, Policy};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::access::AddressRules;
use crate::config::{ClientCertificates, Config, PassiveSettings, UserStorage};
use crate::limits::{RateLimit, UserLimiters, UserSessions};
use crate::ops::Ops;
use crate::quota::Quotas;
use crate::storage::local::LocalFs;
use crate::storage::s3::S3Stores;
use crate::storage::{FsError, Storage};
use crate::tls::TlsSetup;
use crate::users::UserDb;

/// What a configuration decides, as one snapshot (see the module doc).
pub(crate) struct Live {
    pub(crate) config: Config,
    pub(crate) tls: TlsSetup,
    pub(crate) users: UserDb,
    pub(crate) policy: Policy,
    pub(crate) anonymous: Option<AnonymousTls>,
    pub(crate) max_login_failures: u32,
    /// `[access]`: decided at connect.
    pub(crate) access: AddressRules,
    /// `[limits]`: the server's upload and download rates.
    pub(crate) upload_limit: Option<Arc<RateLimit>>,
    pub(crate) download_limit: Option<Arc<RateLimit>>,
}

/// State shared by every connection.
pub(crate) struct Shared {
    /// The configuration in force for new connections.
    pub(crate) live: ArcSwap<Live>,
    pub(crate) shutdown: CancellationToken,
    /// The shutdown's grace period is over: running transfers are stopped
    /// and answered before their sessions close.
    pub(crate) stop_now: CancellationToken,
    pub(crate) bans: Arc<dyn crate::bans::BanStore>,
    /// The shared database's accounts, when `[database]` is set (it changes
    /// only with a restart); else the accounts of each snapshot's `[[users]]`.
    pub(crate) user_store: Option<Arc<dyn crate::users::UserStore>>,
    /// Concurrent argon2 password checks (one per core).
    pub(crate) password_checks: Arc<Semaphore>,
    /// Open user roots, shared by the sessions of the same root (one file
    /// descriptor per root rather than per session).
    pub(crate) roots: Mutex<HashMap<std::path::PathBuf, std::sync::Weak<LocalFs>>>,
    /// The object store of `[s3]`, for users whose files live there.
    pub(crate) s3: S3Stores,
    pub(crate) sessions: Arc<Semaphore>,
    pub(crate) per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Metrics, audit log and hooks.
    pub(crate) ops: Arc<Ops>,
    /// Quota usage of the users with a quota.
    pub(crate) quotas: Quotas,
    /// Logged-in sessions per user.
    pub(crate) user_sessions: UserSessions,
    /// Per-user bandwidth limiters.
    pub(crate) user_limiters: UserLimiters,
    /// The metrics endpoint while it runs.
    pub(crate) metrics_endpoint: crate::ops::endpoint::MetricsEndpoint,
}

impl Shared {
    /// The storage of a user: a local root or a place in the object store.
    pub(crate) fn open_storage(&self, storage: &UserStorage) -> Result<Arc<dyn Storage>, FsError> {
        match storage {
            UserStorage::Local(root) => self.open_root(root),
            UserStorage::S3(location) => self.s3.open(location),
        }
    }

    /// The storage rooted at `root`: the handle another session already has
    /// open when it is still that directory, else a newly opened one.
    pub(crate) fn open_root(&self, root: &std::path::Path) -> Result<Arc<dyn Storage>, FsError> {
        let mut roots = match self.roots.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(fs) = roots.get(root).and_then(std::sync::Weak::upgrade) {
            if fs.is_at(root) {
                return Ok(fs);
            }
        }
        let fs = Arc::new(LocalFs::open(root)?);
        roots.retain(|_, weak| weak.strong_count() > 0);
        roots.insert(root.to_path_buf(), Arc::downgrade(&fs));
        Ok(fs)
    }

    /// The configuration in force now.
    pub(crate) fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }
}

/// What a listener's connections start with: implicit TLS or not, whether
/// they are asked for a client certificate, whether they start with a PROXY
/// protocol header, and the passive settings of their sessions.
#[derive(Debug, Clone)]
pub(crate) struct ListenerKind {
    pub(crate) implicit: bool,
    pub(crate) client_certificates: ClientCertificates,
    pub(crate) proxy_protocol: bool,
    pub(crate) passive: Arc<PassiveSettings>,
    /// The listener's own `accept_upload_without_close_notify`.
    pub(crate) accept_upload_without_close_notify: Option<bool>,
}
