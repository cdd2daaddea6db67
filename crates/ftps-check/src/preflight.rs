//! The audit's frame: resolve the server, build the TLS configurations, log
//! in once (the preflight — if that fails, the audit cannot run and the
//! report says why, exit code 2), learn FEAT and the login directory's
//! files, then run each check of the catalogue with a time limit and
//! collect the report.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftps_proto::client::Security;

use crate::catalog::{self, Check};
use crate::context::{feat, Ctx, Endpoint, Env, Facts, RemoteFile};
use crate::probe::data::Direction;
use crate::probe::tls::{TlsSetup, Versions};
use crate::probe::{Limits, ProbeError};
use crate::report::{CheckReport, Outcome, Report, Summary, TargetReport, FORMAT_VERSION};
use crate::Options;

/// Longest a single check may run.
const CHECK_LIMIT: Duration = Duration::from_secs(180);

/// Run the whole audit.
pub async fn audit(options: Options) -> Report {
    let started_at = Instant::now();
    let mut report = empty_report(&options);
    let env = match environment(&options).await {
        Ok(env) => Arc::new(env),
        Err(why) => return finish(report, started_at, Some(why)),
    };
    let mut ctx = Ctx::new(Arc::clone(&env), Facts::default());
    match preflight(&mut ctx).await {
        Ok(lines) => report.server = lines,
        Err(why) => return finish(report, started_at, Some(why)),
    }
    let mut facts = ctx.facts;
    for check in catalog::all() {
        if !options.only.is_empty()
            && !options
                .only
                .iter()
                .any(|p| check.id.starts_with(p.as_str()))
        {
            continue;
        }
        let (entry, back) = run_one(&check, &env, facts).await;
        facts = back;
        report.checks.push(entry);
    }
    if !facts.left_behind.is_empty() {
        report.server.push(format!(
            "could not remove what the checks uploaded: {}",
            facts.left_behind.join(", ")
        ));
    }
    finish(report, started_at, None)
}

fn empty_report(options: &Options) -> Report {
    Report {
        format: FORMAT_VERSION,
        tool: format!("ftps check {}", env!("CARGO_PKG_VERSION")),
        started: now_rfc3339(),
        duration_ms: 0,
        target: TargetReport {
            url: options.url.clone(),
            host: options.host.clone(),
            port: options.port,
            security: match options.security {
                Security::Implicit => "implicit",
                _ => "explicit",
            },
            user: options.user.clone(),
            implicit_port: options.implicit_port,
            explicit_port: options.explicit_port,
        },
        read_only: options.read_only,
        upload_dir: options.dir.clone().filter(|_| !options.read_only),
        error: None,
        server: Vec::new(),
        summary: Summary::default(),
        exit_code: 0,
        checks: Vec::new(),
    }
}

fn finish(mut report: Report, started: Instant, error: Option<String>) -> Report {
    report.error = error;
    report.summary = Summary::of(&report.checks);
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.exit_code = report.compute_exit_code();
    report
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn environment(options: &Options) -> Result<Env, String> {
    let main = resolve(&options.host, options.port).await?;
    let tls = TlsSetup::new(&options.tls, &options.host).map_err(|e| e.to_string())?;
    let at = |port: Option<u16>| port.map(|p| SocketAddr::new(main.ip(), p));
    let (explicit, implicit) = match options.security {
        Security::Implicit => (at(options.explicit_port), Some(main)),
        _ => (Some(main), at(options.implicit_port)),
    };
    Ok(Env {
        main,
        security: options.security,
        explicit,
        implicit,
        user: options.user.clone(),
        password: options.password.clone(),
        tls,
        trust: options.tls.clone(),
        limits: Limits {
            reply: options.timeout,
            ..Limits::default()
        },
        read_only: options.read_only,
        dir: options.dir.clone().filter(|_| !options.read_only),
        host: options.host.clone(),
    })
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    match tokio::net::lookup_host((host, port)).await {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{host}: no address found")),
        Err(e) => Err(format!("{host}: cannot resolve: {e}")),
    }
}

/// Log in once; what the server showed, for the report's heading.
async fn preflight(ctx: &mut Ctx) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    let mut session = ctx
        .session_at(Endpoint::Main, Versions::Any)
        .await
        .map_err(|e| why_not(&e))?;
    let evidence = ctx.rec.lines();
    if let Some(greeting) = evidence.iter().find(|l| l.text.starts_with("220")) {
        lines.push(format!("greeting: {}", greeting.text));
    }
    if let Some(tls) = session.conn.tls() {
        let info = crate::probe::tls::TlsInfo::of(tls);
        lines.push(format!("control connection: {}", info.describe()));
    }
    if let Ok((_, features)) = feat(&mut session.conn).await {
        lines.push(format!("FEAT: {}", features.join(", ")));
        ctx.facts.feat = features;
    }
    let listing = if ctx.facts.has_feature("MLST") {
        "MLSD"
    } else {
        "LIST"
    };
    match ctx
        .own_transfer(&mut session, listing, Direction::Download)
        .await
    {
        Ok(t) if t.completed() => {
            let entries = if listing == "MLSD" {
                ftps_client::listing::parse_mlsd(&t.data)
            } else {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                ftps_client::listing::parse_list(&t.data, now)
            };
            ctx.facts.files = entries
                .entries
                .into_iter()
                .filter(|e| e.kind == ftps_proto::entry::EntryKind::File)
                .filter_map(|e| {
                    String::from_utf8(e.name)
                        .ok()
                        .filter(|n| !n.contains(['\r', '\n']))
                        .map(|path| RemoteFile { path, size: e.size })
                })
                .collect();
            lines.push(format!(
                "login directory: {} files listed with {listing}",
                ctx.facts.files.len()
            ));
        }
        Ok(t) => lines.push(format!(
            "login directory: {listing} did not complete ({})",
            crate::probe::data::last_line(&t)
        )),
        Err(e) => lines.push(format!("login directory: {listing} failed: {e}")),
    }
    session.conn.quit().await;
    Ok(lines)
}

/// Why the audit cannot run, with the way out where there is one.
fn why_not(e: &ProbeError) -> String {
    match e {
        ProbeError::Tls(rustls::Error::InvalidCertificate(c)) => format!(
            "the server's certificate is not trusted ({c:?}): nothing was sent; \
             pass --cacert FILE, --pin sha256:HASH, or --insecure to audit it anyway"
        ),
        ProbeError::Refused {
            command,
            code,
            text,
        } if command.starts_with("USER") || command.starts_with("PASS") => {
            format!("login refused: {command}: {code} {text}")
        }
        ProbeError::Refused {
            command,
            code,
            text,
        } => {
            format!("cannot set up a protected session: {command}: {code} {text}")
        }
        ProbeError::Tls(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
            | rustls::AlertDescription::HandshakeFailure,
        )) => format!(
            "the server ended the TLS handshake ({e}): if it requires a client certificate, \
             pass --cert FILE --key FILE"
        ),
        other => format!("cannot connect: {other}"),
    }
}

async fn run_one(check: &Check, env: &Arc<Env>, facts: Facts) -> (CheckReport, Facts) {
    let started = Instant::now();
    let mut ctx = Ctx::new(Arc::clone(env), facts);
    let outcome = if check.uploads && env.read_only {
        Outcome::skip("read-only mode: this check uploads files")
    } else if check.uploads && env.dir.is_none() {
        Outcome::skip("needs a directory to upload to: give --dir DIR (or --read-only)")
    } else {
        match tokio::time::timeout(CHECK_LIMIT, (check.run)(&mut ctx)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Outcome::warn(format!("could not complete: {e}")),
            Err(_) => Outcome::warn(format!(
                "did not complete within {} s",
                CHECK_LIMIT.as_secs()
            )),
        }
    };
    let entry = CheckReport {
        id: check.id,
        group: check.group.name(),
        title: check.title,
        section: check.section,
        result: outcome.verdict,
        summary: outcome.summary,
        proves: check.proves,
        cannot: check.cannot,
        duration_ms: started.elapsed().as_millis() as u64,
        evidence: ctx.rec.lines(),
    };
    (entry, ctx.facts)
}
