//! Live reload (SIGHUP): a new configuration becomes a new [`Live`]
//! snapshot for new connections, while running sessions keep the one they
//! started with — their user, policy, limits, rules and certificate.
//!
//! [`Reloader::apply`] builds everything from the new configuration first —
//! certificates, TLS set-up, users, the hooks' HTTPS client, a moved metrics
//! listener — and only then swaps it in, so a configuration that fails
//! anywhere is refused as a whole and the old one stays. The audit files
//! are opened again on every reload (logrotate). Keys that only a restart
//! can change ([`RESTART_KEYS`]) keep their old value, with a warning.

use std::sync::Arc;

use tracing::{info, warn};

use crate::access::AddressRules;
use crate::certs::CertifiedKey;
use crate::config::Config;
use crate::limits::RateLimit;
use crate::shared::{Live, Shared};
use crate::tls::TlsSetup;
use crate::users::UserDb;
use crate::ServerError;

/// The keys a reload cannot change: listeners are bound with their passive
/// settings, privileges
/// dropped, the ban table and session cap sized, and the object store's
/// client and the database's pool made once.
pub const RESTART_KEYS: [&str; 13] = [
    "server.listen",
    "server.implicit_listen",
    "server.max_sessions",
    "server.passive_ports",
    "server.passive_address",
    "server.passive_host",
    "server.run_as",
    "server.state_dir",
    "server.ban_after_failures",
    "server.ban_window_secs",
    "server.ban_secs",
    "s3",
    "database",
];

/// The keys of [`RESTART_KEYS`] whose value differs between `old` and `new`.
pub fn restart_keys_changed(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.server, &new.server);
    let changed = [
        o.listen != n.listen,
        o.implicit_listen != n.implicit_listen,
        o.max_sessions != n.max_sessions,
        o.passive_ports != n.passive_ports,
        o.passive_address != n.passive_address,
        o.passive_host != n.passive_host,
        o.run_as != n.run_as,
        o.state_dir != n.state_dir,
        o.ban_after_failures != n.ban_after_failures,
        o.ban_window_secs != n.ban_window_secs,
        o.ban_secs != n.ban_secs,
        old.s3 != new.s3,
        old.database != new.database,
    ];
    RESTART_KEYS
        .iter()
        .zip(changed)
        .filter_map(|(key, changed)| changed.then_some(*key))
        .collect()
}

/// The snapshot of `config` with the server certificate `cert`.
/// The accounts come from `store` when the server has a shared database,
/// else from the configuration's `[[users]]`.
pub(crate) fn build_live(
    config: Config,
    cert: CertifiedKey,
    store: Option<Arc<dyn crate::users::UserStore>>,
) -> Result<Live, ServerError> {
    // The CA is read only when some listener asks for client certificates.
    let client_auth = match &config.tls.client_ca {
        Some(ca) if config.any_client_certificates() => Some(crate::tls::load_client_auth(
            ca,
            config.tls.client_crl.as_deref(),
        )?),
        _ => None,
    };
    let provider = config.tls.crypto_provider();
    let certs = cert_set(&config, &provider, cert)?;
    let tls = TlsSetup::new(
        certs,
        provider,
        &config.tls.protocol_versions(),
        client_auth,
    )?;
    Ok(Live {
        users: match store {
            Some(store) => UserDb::with_store(&config, store),
            None => UserDb::from_config(&config),
        },
        policy: config.policy,
        anonymous: config.anonymous.enabled.then_some(config.anonymous.tls),
        max_login_failures: config.server.max_login_failures.max(1),
        access: AddressRules::new("access", &config.access.allow, &config.access.deny),
        upload_limit: RateLimit::new(config.limits.upload_bytes_per_sec),
        download_limit: RateLimit::new(config.limits.download_bytes_per_sec),
        tls,
        config,
    })
}

/// The default certificate plus the SNI ones from the configuration.
pub(crate) fn cert_set(
    config: &Config,
    provider: &rustls::crypto::CryptoProvider,
    cert: CertifiedKey,
) -> Result<crate::tls::CertSet, ServerError> {
    let mut sni = Vec::new();
    for entry in &config.tls.sni {
        let loaded = crate::certs::load_pem(&entry.cert, &entry.key)?;
        sni.push((entry.name.clone(), loaded.chain, loaded.key));
    }
    Ok(crate::tls::CertSet::new(
        provider,
        (cert.chain, cert.key),
        sni,
    )?)
}

/// The server certificate `config` names, or the generated one of the
/// state directory.
fn load_certificate(config: &Config) -> Result<CertifiedKey, ServerError> {
    Ok(match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => crate::certs::load_pem(cert, key)?,
        _ => {
            let dir = config
                .server
                .state_dir
                .clone()
                .unwrap_or_else(crate::certs::default_state_dir);
            crate::certs::load_or_generate(&dir, &[])?
        }
    })
}

/// Reloads a running server: the whole configuration ([`Reloader::apply`])
/// or only the certificates ([`Reloader::reload`]).
#[derive(Clone)]
pub struct Reloader {
    pub(crate) shared: Arc<Shared>,
}

impl Reloader {
    /// Read the certificate files of the configuration in force again and
    /// swap them in: new connections get the new ones, running sessions
    /// keep theirs (and their data connections keep presenting the same
    /// certificate, RFC 4217 §15.1.1).
    pub fn reload(&self) -> Result<(), ServerError> {
        let live = self.shared.live();
        let cert = load_certificate(&live.config)?;
        let provider = live.config.tls.crypto_provider();
        let certs = cert_set(&live.config, &provider, cert)?;
        live.tls.reload(certs);
        info!("certificates reloaded");
        Ok(())
    }

    /// Open the audit files again (logrotate moved them), whatever happens
    /// to the rest of a reload.
    pub fn reopen_logs(&self) {
        let live = self.shared.live();
        self.shared.ops.reopen_audit(&live.config.audit);
    }

    /// Make `config` the configuration of new connections. Everything is
    /// built before anything changes: on an error the old configuration
    /// stays in force and the error says why. (Keys of [`RESTART_KEYS`]
    /// keep their old values.)
    pub async fn apply(&self, mut config: Config) -> Result<(), ServerError> {
        let result = self.try_apply(&mut config).await;
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        self.shared
            .ops
            .metrics
            .reloads
            .get_or_create(&[("outcome", outcome)])
            .inc();
        result
    }

    async fn try_apply(&self, config: &mut Config) -> Result<(), ServerError> {
        config.validate("reload")?;
        let old = self.shared.live();
        for key in restart_keys_changed(&old.config, config) {
            warn!(
                key,
                "reload: this key changes only with a restart; keeping its old value"
            );
        }
        keep_restart_keys(&old.config, config);
        let cert = load_certificate(config)?;
        crate::ops::Ops::check_hooks(&config.hooks)?;
        let metrics =
            crate::ops::endpoint::change_for(&old.config.metrics, &config.metrics).await?;
        let live = build_live(config.clone(), cert, self.shared.user_store.clone())?;
        // Committed from here on.
        self.forget_dropped_quotas(&old.config, config).await;
        self.shared.ops.reconfigure(&config.audit, &config.hooks)?;
        if let Some(change) = metrics {
            let shared = &self.shared;
            shared
                .metrics_endpoint
                .apply(change, &shared.ops.metrics, &shared.shutdown);
        }
        self.shared.live.store(Arc::new(live));
        info!("configuration reloaded: new sessions use it, running sessions keep theirs");
        Ok(())
    }

    /// Users of `[[users]]` whose quota the new configuration removes:
    /// forget their usage. (Accounts in the shared database are not part of
    /// the file: their quota follows the database.)
    async fn forget_dropped_quotas(&self, old: &Config, new: &Config) {
        let has_quota =
            |u: &crate::config::UserSection| u.quota_bytes.is_some() || u.quota_files.is_some();
        for user in old.users.iter().filter(|u| has_quota(u)) {
            let kept = new
                .users
                .iter()
                .any(|n| n.name == user.name && has_quota(n));
            if !kept {
                self.shared.quotas.forget(&user.name).await;
            }
        }
    }
}

/// Put the values of the restart-only keys of `old` into `new`.
fn keep_restart_keys(old: &Config, new: &mut Config) {
    let (o, n) = (&old.server, &mut new.server);
    n.listen.clone_from(&o.listen);
    n.implicit_listen.clone_from(&o.implicit_listen);
    n.max_sessions = o.max_sessions;
    n.passive_ports = o.passive_ports;
    n.passive_address = o.passive_address;
    n.passive_host.clone_from(&o.passive_host);
    n.run_as.clone_from(&o.run_as);
    n.state_dir.clone_from(&o.state_dir);
    n.ban_after_failures = o.ban_after_failures;
    n.ban_window_secs = o.ban_window_secs;
    n.ban_secs = o.ban_secs;
    new.s3.clone_from(&old.s3);
    new.database.clone_from(&old.database);
}
