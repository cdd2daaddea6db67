//! `ftps serve`: configuration (file, or zero-config with `--root`), the
//! certificate (configured, or self-signed and kept in the state directory),
//! logging, signals: SIGINT and SIGTERM stop the server gracefully, SIGHUP
//! reads the configuration again and applies it to new sessions (a file
//! that does not load keeps the running configuration).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use ftps_server::config::{self, Config};
use ftps_server::{certs, users, Listeners, Server};

/// Options of `ftps serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Serve this directory to one user created on first start (zero-config).
    #[arg(long)]
    root: Option<PathBuf>,
    /// TOML configuration file (see examples/ftps.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Where the generated certificate and the zero-config user are kept.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Explicit FTPS (AUTH TLS) listen address; repeat for several (overrides the config).
    #[arg(long)]
    listen: Vec<SocketAddr>,
    /// Implicit FTPS listen address; repeat for several (overrides the config).
    #[arg(long)]
    implicit_listen: Vec<SocketAddr>,
    /// Log filter (tracing syntax), e.g. `info` or `ftps_server=debug`.
    #[arg(long, default_value = "info", env = "FTPS_LOG")]
    log: String,
}

/// Run the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    crate::logging::init(&args.log)?;
    let (config, state_dir, new_password) = load_config(&args)?;
    let cert = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => certs::load_pem(cert, key)?,
        _ => certs::load_or_generate(&state_dir, &[])?,
    };
    match ftps_server::privileges::raise_open_files_limit() {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async move {
        let listeners = Listeners::bind(&config).await?;
        match &config.server.run_as {
            Some(user) if ftps_server::privileges::is_root() => {
                let (uid, gid) = ftps_server::privileges::drop_to(user)?;
                tracing::info!(user = %user, uid = uid.as_raw(), gid = gid.as_raw(), "dropped root privileges");
            }
            Some(user) => tracing::info!(user = %user, "not running as root: run_as has nothing to do"),
            None if ftps_server::privileges::is_root() => {
                tracing::warn!("running as root: set server.run_as to switch to an unprivileged user after binding")
            }
            None => {}
        }
        let (explicit, implicit) = listeners.addresses();
        print_banner(
            &config,
            &cert,
            &state_dir,
            &explicit,
            &implicit,
            new_password,
        );
        let server = Server::new(config, cert)?;
        tokio::spawn(reload_on_sighup(server.reloader(), args.clone()));
        server.run(listeners, shutdown_signal()).await;
        Ok(())
    });
    // Sessions still running after the grace period end here; do not wait
    // for blocking work they leave behind.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// The new password of a zero-config user created by this start.
type NewPassword = Option<Option<(String, String)>>;

/// The configuration as the file and the command line make it, validated,
/// with its state directory (read at start and again on SIGHUP).
fn load_config(args: &ServeArgs) -> anyhow::Result<(Config, PathBuf, NewPassword)> {
    let mut config = match &args.config {
        Some(path) => config::load(path)?,
        None => Config::default(),
    };
    if !args.listen.is_empty() {
        config.server.listen = args.listen.iter().map(|a| (*a).into()).collect();
    }
    if !args.implicit_listen.is_empty() {
        config.server.implicit_listen = args.implicit_listen.iter().map(|a| (*a).into()).collect();
    }
    let state_dir = args
        .state_dir
        .clone()
        .or_else(|| config.server.state_dir.clone())
        .unwrap_or_else(certs::default_state_dir);
    let new_password = match &args.root {
        Some(root) => Some(add_zero_config_user(&mut config, root, &state_dir)?),
        None => None,
    };
    anyhow::ensure!(
        !config.users.is_empty() || config.anonymous.enabled || config.database.enabled(),
        "no users: start with `ftps serve --root DIR`, or add [[users]] (or a [database]) to the configuration"
    );
    config.validate(&origin(&args.config))?;
    config.server.state_dir = Some(state_dir.clone());
    Ok((config, state_dir, new_password))
}

fn origin(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "command line".into())
}

/// The zero-config user: created (random password, printed once) on first
/// start, kept hashed in the state directory afterwards.
fn add_zero_config_user(
    config: &mut Config,
    root: &Path,
    state_dir: &Path,
) -> anyhow::Result<Option<(String, String)>> {
    let root = root
        .canonicalize()
        .with_context(|| format!("--root {}", root.display()))?;
    anyhow::ensure!(
        root.is_dir(),
        "--root {} is not a directory",
        root.display()
    );
    let user = users::load_or_create_zero_config_user(state_dir, "ftps")?;
    config.users.retain(|u| u.name != user.name);
    config.users.push(user.to_user_section(root));
    Ok(user.new_password.map(|p| (user.name, p)))
}

fn print_banner(
    config: &Config,
    cert: &certs::CertifiedKey,
    state_dir: &Path,
    explicit: &[SocketAddr],
    implicit: &[SocketAddr],
    new_password: Option<Option<(String, String)>>,
) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "ftps server");
    for addr in explicit {
        let _ = writeln!(out, "  explicit FTPS (AUTH TLS): ftp://{addr}/");
    }
    for addr in implicit {
        let _ = writeln!(out, "  implicit FTPS:            ftps://{addr}/");
    }
    let cert_path = state_dir.join(certs::CERT_FILE);
    if cert.generated {
        let _ = writeln!(
            out,
            "  generated a self-signed certificate: {}",
            cert_path.display()
        );
    } else if config.tls.cert.is_none() {
        let _ = writeln!(out, "  self-signed certificate: {}", cert_path.display());
    }
    let _ = writeln!(
        out,
        "  certificate SHA-256 fingerprint: {}",
        cert.fingerprint_sha256
    );
    match new_password {
        Some(Some((name, password))) => {
            let _ = writeln!(out);
            let _ = writeln!(out, "  user: {name}");
            let _ = writeln!(
                out,
                "  password: {password}   (shown once; only its hash is kept)"
            );
            if let Some(addr) = explicit.first() {
                let cacert = if config.tls.cert.is_none() {
                    format!(" --cacert '{}'", cert_path.display())
                } else {
                    String::new()
                };
                let _ = writeln!(out);
                let _ = writeln!(out, "  try it:");
                let _ = writeln!(
                    out,
                    "  curl --ssl-reqd{cacert} --user '{name}:{password}' ftp://{}/",
                    host_port(addr)
                );
            }
        }
        Some(None) => {
            let _ = writeln!(
                out,
                "  user: the zero-config user from {} (password shown at first start; delete that file for a new one)",
                state_dir.join(users::ZERO_CONFIG_USER_FILE).display()
            );
        }
        None if config.database.enabled() => {
            println!("  users: table ftps_users of the [database] (ftps user --config FILE add NAME --root DIR)");
        }
        None => {}
    }
    let _ = writeln!(out);
    // The banner is for whoever started the server: a standard output
    // that is closed or a pipe nobody reads must not stop it.
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

fn host_port(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// SIGHUP: read the configuration (and with it the certificates) again and
/// apply it to new sessions, without dropping any; reopen the audit files.
async fn reload_on_sighup(reloader: ftps_server::Reloader, args: ServeArgs) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reopening the audit files, reloading the configuration");
        reloader.reopen_logs();
        let loaded = load_config(&args);
        let applied = match loaded {
            Ok((config, _, _)) => reloader.apply(config).await.map_err(anyhow::Error::from),
            Err(error) => Err(error),
        };
        if let Err(error) = applied {
            tracing::error!(
                "configuration reload refused, the running configuration stays: {error:#}"
            );
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
