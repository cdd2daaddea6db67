//! Listeners and the server's life cycle: bind explicit (AUTH TLS) and
//! implicit FTPS listeners (draft §4.2), each with the client-certificate
//! setting of its connections, and the metrics endpoint; accept with
//! back-off, refuse denied and banned addresses and cap sessions in total
//! and per address — all before any TLS work — and shut down gracefully:
//! stop accepting, 421 to idle sessions, `/healthz` 503, let running
//! transfers finish within the grace period.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::certs::CertifiedKey;
use crate::config::{self, ClientCertificates, Config, PassiveSettings};
use crate::limits::{UserLimiters, UserSessions};
use crate::ops::Ops;
use crate::proxy::ClientAddress;
use crate::quota::{MemoryUsageStore, Quotas, UsageStore};
use crate::reload::{build_live, Reloader};
use crate::shared::{ListenerKind, Shared};
use crate::ServerError;

/// The bound listening sockets.
#[derive(Debug)]
pub struct Listeners {
    /// Explicit FTPS (AUTH TLS) listeners.
    pub explicit: Vec<BoundListener>,
    /// Implicit FTPS listeners.
    pub implicit: Vec<BoundListener>,
    /// The metrics endpoint, when `[metrics]` is enabled.
    pub metrics: Option<TcpListener>,
}

/// One bound listener and the settings of the connections it accepts: the
/// client-certificate setting (its own, or the global
/// `tls.client_certificates`), the PROXY protocol and the passive settings.
#[derive(Debug)]
pub struct BoundListener {
    /// The listening socket.
    pub socket: TcpListener,
    /// Whether connections accepted here are asked for a client certificate.
    pub client_certificates: ClientCertificates,
    /// Whether connections accepted here start with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// The passive settings of the sessions accepted here.
    pub passive: PassiveSettings,
    /// This listener's `accept_upload_without_close_notify`, if it sets one.
    pub accept_upload_without_close_notify: Option<bool>,
}

impl Listeners {
    /// Bind every address in the configuration.
    pub async fn bind(config: &Config) -> Result<Listeners, ServerError> {
        let explicit = bind_all(config, &config.server.listen).await?;
        let implicit = bind_all(config, &config.server.implicit_listen).await?;
        let metrics = match config.metrics.enabled {
            true => Some(crate::listen::bind_one(config.metrics.listen).await?),
            false => None,
        };
        Ok(Listeners {
            explicit,
            implicit,
            metrics,
        })
    }

    /// The metrics endpoint's address, when enabled.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The addresses actually bound (ports resolved when 0 was asked for).
    pub fn addresses(&self) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
        let addrs = |ls: &[BoundListener]| {
            ls.iter()
                .filter_map(|l| l.socket.local_addr().ok())
                .collect()
        };
        (addrs(&self.explicit), addrs(&self.implicit))
    }
}

pub use crate::listen::LISTEN_BACKLOG;

/// Reclaim the upload temp files that servers sharing the users' roots
/// left behind (see `Storage::reclaim_abandoned_uploads`): at start-up,
/// then every `server.abandoned_upload_secs` until shutdown.
async fn reclaim_abandoned_uploads(shared: Arc<Shared>) {
    loop {
        // The roots of the configuration in force (a reload may add some).
        let live = shared.live();
        let config = &live.config;
        let unchanged_for = Duration::from_secs(config.server.abandoned_upload_secs);
        let mut roots: Vec<std::path::PathBuf> =
            config.users.iter().filter_map(|u| u.root.clone()).collect();
        if let (true, Some(root)) = (config.anonymous.enabled, &config.anonymous.root) {
            roots.push(root.clone());
        }
        roots.sort();
        roots.dedup();
        for root in &roots {
            let Ok(storage) = shared.open_root(root) else {
                continue;
            };
            match storage.reclaim_abandoned_uploads(unchanged_for).await {
                Ok(done) if done != crate::storage::Reclaimed::default() => {
                    info!(root = %root.display(), removed = done.removed, kept_as_partial = done.kept, "abandoned uploads reclaimed");
                }
                Ok(_) => {}
                Err(error) => {
                    warn!(root = %root.display(), %error, "cannot reclaim abandoned uploads")
                }
            }
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(unchanged_for.clamp(Duration::from_secs(1), Duration::from_secs(3600))) => {}
        }
    }
}

/// Say at start-up which accounts cannot log in because their root is not
/// a directory that can be opened (the server still starts: a root may be
/// mounted later, and is checked again at each login).
fn report_unusable_roots(config: &Config) {
    let roots = config
        .users
        .iter()
        .filter_map(|u| u.root.as_ref().map(|root| (u.name.as_str(), root)))
        .chain(
            config
                .anonymous
                .root
                .iter()
                .filter(|_| config.anonymous.enabled)
                .map(|root| ("anonymous", root)),
        );
    for (user, root) in roots {
        if let Err(error) = crate::storage::LocalFs::open(root) {
            error!(%user, root = %root.display(), %error, "the user's root directory cannot be opened: this user cannot log in until it can");
        }
    }
}

async fn bind_all(
    config: &Config,
    entries: &[config::ListenerConfig],
) -> Result<Vec<BoundListener>, ServerError> {
    let mut bound = Vec::with_capacity(entries.len());
    for entry in entries {
        bound.push(BoundListener {
            socket: crate::listen::bind_one(entry.address).await?,
            client_certificates: config.client_certificates_on(entry),
            proxy_protocol: entry.proxy_protocol,
            passive: config.passive_on(entry),
            accept_upload_without_close_notify: entry.accept_upload_without_close_notify,
        });
    }
    Ok(bound)
}

/// An FTPS server, ready to run on bound listeners.
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    /// Build from a validated configuration and the server certificate,
    /// with quota usage kept in memory ([`MemoryUsageStore`]).
    pub fn new(config: Config, cert: CertifiedKey) -> Result<Server, ServerError> {
        Server::with_usage_store(config, cert, Arc::new(MemoryUsageStore::new()))
    }

    /// [`Server::new`] with quota usage kept in `usage` (a store shared by
    /// several servers, for one). Call inside a tokio runtime: the hooks
    /// start their workers.
    pub fn with_usage_store(
        config: Config,
        cert: CertifiedKey,
        usage: Arc<dyn UsageStore>,
    ) -> Result<Server, ServerError> {
        let (user_store, bans) = accounts_and_bans(&config)?;
        let s3 = crate::storage::s3::S3Stores::new(
            &config.s3,
            &config.s3_buckets(),
            config.server.abandoned_upload_secs,
        );
        report_unusable_roots(&config);
        let sessions = Arc::new(Semaphore::new(config.server.max_sessions.max(1)));
        let ops = Arc::new(Ops::start(&config.audit, &config.hooks)?);
        let live = build_live(config, cert, user_store.clone())?;
        Ok(Server {
            shared: Arc::new(Shared {
                live: arc_swap::ArcSwap::from_pointee(live),
                shutdown: CancellationToken::new(),
                stop_now: CancellationToken::new(),
                bans,
                user_store,
                roots: Mutex::new(HashMap::new()),
                s3,
                password_checks: Arc::new(Semaphore::new(
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                )),
                sessions,
                per_ip: Mutex::new(HashMap::new()),
                ops,
                quotas: Quotas::new(usage),
                user_sessions: UserSessions::default(),
                user_limiters: UserLimiters::default(),
                metrics_endpoint: Default::default(),
            }),
        })
    }

    /// A handle that reloads the configuration or the certificates (SIGHUP)
    /// while the server runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The server's metrics (for embedding and tests).
    pub fn metrics(&self) -> Arc<crate::ops::Metrics> {
        Arc::clone(&self.shared.ops.metrics)
    }

    /// Serve until `shutdown` completes, then stop accepting, send 421 to idle
    /// sessions and wait up to the grace period for running transfers.
    pub async fn run(self, listeners: Listeners, shutdown: impl Future<Output = ()>) {
        let tracker = TaskTracker::new();
        let accept_stop = CancellationToken::new();
        if let Some(listener) = listeners.metrics {
            let shared = &self.shared;
            shared
                .metrics_endpoint
                .start(listener, &shared.ops.metrics, &shared.shutdown);
        }
        let all = listeners
            .explicit
            .into_iter()
            .map(|l| (l, false))
            .chain(listeners.implicit.into_iter().map(|l| (l, true)));
        for (listener, implicit) in all {
            let kind = ListenerKind {
                implicit,
                client_certificates: listener.client_certificates,
                proxy_protocol: listener.proxy_protocol,
                passive: Arc::new(listener.passive),
                accept_upload_without_close_notify: listener.accept_upload_without_close_notify,
            };
            if !self.shared.live().tls.supports(kind.client_certificates) {
                // Only when the listeners were bound from another configuration
                // than the server's: validation requires tls.client_ca.
                error!(
                    address = ?listener.socket.local_addr().ok(),
                    client_certificates = %kind.client_certificates,
                    "listener asks for client certificates but no tls.client_ca is configured: not serving it"
                );
                continue;
            }
            let shared = Arc::clone(&self.shared);
            let stop = accept_stop.clone();
            let tracker_inner = tracker.clone();
            tracker.spawn(async move {
                accept_loop(shared, listener.socket, kind, stop, tracker_inner).await;
            });
        }
        let maintenance = {
            let shared = Arc::clone(&self.shared);
            let stop = self.shared.shutdown.clone();
            tokio::spawn(async move { shared.s3.maintain(stop).await })
        };
        tracker.spawn(reclaim_abandoned_uploads(Arc::clone(&self.shared)));
        shutdown.await;
        info!("shutting down: no new connections, 421 to idle sessions");
        maintenance.abort();
        accept_stop.cancel();
        self.shared.shutdown.cancel();
        tracker.close();
        let grace = self.shared.live().config.server.shutdown_grace();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            warn!(
                "grace period of {}s over: stopping the transfers still running",
                grace.as_secs()
            );
            // Their sessions answer (426, then 421) and close; a client that
            // does not read its replies does not hold the shutdown up.
            self.shared.stop_now.cancel();
            let _ = tokio::time::timeout(FINAL_REPLIES_WAIT, tracker.wait()).await;
        }
        let waiting = self.shared.ops.hooks_queued();
        if waiting > 0 {
            warn!(
                events = waiting,
                "shutting down with events still waiting for the hooks: not run"
            );
        }
        self.shared.ops.flush_audit();
        self.shared.metrics_endpoint.stop();
    }
}

/// The shared database's user store (`None`: the accounts of `[[users]]`,
/// read again at each reload) and where bans are kept.
type AccountsAndBans = (
    Option<Arc<dyn crate::users::UserStore>>,
    Arc<dyn crate::bans::BanStore>,
);

fn accounts_and_bans(config: &Config) -> Result<AccountsAndBans, ServerError> {
    let (threshold, window, duration) = (
        config.server.ban_after_failures,
        Duration::from_secs(config.server.ban_window_secs),
        Duration::from_secs(config.server.ban_secs),
    );
    if !config.database.enabled() {
        return Ok((
            None,
            Arc::new(crate::bans::Bans::new(threshold, window, duration)),
        ));
    }
    let db = crate::database::Database::new(&config.database).map_err(ServerError::Database)?;
    info!(database = %db.describe(), "users and bans in the shared database");
    let store: Arc<dyn crate::users::UserStore> =
        Arc::new(crate::users::PostgresStore::new(db.clone()));
    Ok((
        Some(store),
        Arc::new(crate::bans::PostgresBans::new(
            db, threshold, window, duration,
        )),
    ))
}

/// After the grace period, how long stopped transfers get to send their
/// final replies before the server stops.
pub const FINAL_REPLIES_WAIT: Duration = Duration::from_secs(3);

/// Releases a session slot (global and per address) when dropped.
struct SessionSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut map = match self.shared.per_ip.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(count) = map.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

fn admit(shared: &Arc<Shared>, ip: IpAddr) -> Option<SessionSlot> {
    let permit = Arc::clone(&shared.sessions).try_acquire_owned().ok()?;
    let mut map = match shared.per_ip.lock() {
        Ok(map) => map,
        Err(poisoned) => poisoned.into_inner(),
    };
    let count = map.entry(ip).or_insert(0);
    if *count >= shared.live().config.server.max_sessions_per_ip {
        return None;
    }
    *count += 1;
    Some(SessionSlot {
        shared: Arc::clone(shared),
        ip,
        _permit: permit,
    })
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    kind: ListenerKind,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(10);
                pair
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                error!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        tracker.spawn(admit_and_serve(
            Arc::clone(&shared),
            tcp,
            peer,
            kind.clone(),
        ));
    }
}

/// The real client of an accepted connection: the PROXY protocol header's
/// source on a listener that expects one (only from a trusted balancer),
/// else the TCP peer. `None`: refused.
///
/// Everything after this point — bans, the session caps, logs, the data
/// connections' address check, and any rule on client addresses — sees the
/// address returned here.
async fn client_address(
    shared: &Shared,
    tcp: &mut TcpStream,
    peer: SocketAddr,
    kind: &ListenerKind,
) -> Option<ClientAddress> {
    if !kind.proxy_protocol {
        return Some(ClientAddress {
            peer,
            balancer: None,
        });
    }
    let live = shared.live();
    let proxy = &live.config.proxy_protocol;
    match crate::proxy::accept_header(tcp, peer, &proxy.trusted, proxy.header_timeout()).await {
        Ok(client) => Some(client),
        Err(error) => {
            warn!(%peer, %error, "connection refused: PROXY protocol");
            None
        }
    }
}

/// Find the real client, refuse it when an address rule denies it, when it
/// is banned or over a limit, else serve it — all before any TLS work.
async fn admit_and_serve(
    shared: Arc<Shared>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    kind: ListenerKind,
) {
    let implicit = kind.implicit;
    let Some(client) = client_address(&shared, &mut tcp, peer, &kind).await else {
        shared.ops.metrics.connection("proxy_refused");
        return;
    };
    let ip = client.peer.ip().to_canonical();
    if let Err(rule) = shared.live().access.check(ip) {
        warn!(peer = %client.peer, %rule, "connection refused by an access rule");
        shared.ops.metrics.connection("denied");
        shared
            .ops
            .metrics
            .access_refusals
            .get_or_create(&[("where", "connect")])
            .inc();
        refuse(
            tcp,
            implicit,
            "421 Connections from your address are not allowed.\r\n",
        )
        .await;
        return;
    }
    if shared.bans.is_banned(ip).await {
        shared.ops.metrics.connection("banned");
        refuse(
            tcp,
            implicit,
            "421 Too many failed logins from your address; try again later.\r\n",
        )
        .await;
        return;
    }
    let Some(slot) = admit(&shared, ip) else {
        shared.ops.metrics.connection("limit");
        warn!(peer = %client.peer, "session limit reached: refusing connection");
        refuse(
            tcp,
            implicit,
            "421 Too many connections; try again later.\r\n",
        )
        .await;
        return;
    };
    shared.ops.metrics.connection("accepted");
    crate::connection::serve(shared, tcp, kind, client).await;
    drop(slot);
}

/// Over a limit or banned: a plaintext 421 on explicit listeners, a plain
/// close on implicit ones — before any TLS work.
async fn refuse(mut tcp: TcpStream, implicit: bool, reply: &'static str) {
    if !implicit {
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(reply.as_bytes())).await;
    }
}
