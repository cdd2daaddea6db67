//! The draft's extras and the FTP features FTPS must keep working: implicit
//! FTPS (draft-murray-auth-ftp-ssl §4.2, §8), AUTH SSL implying private
//! data (draft §6), REIN (RFC 959 §4.1.1, RFC 4217 §13), STAT and ABOR
//! while a protected transfer runs (RFC 959 §4.1.3, RFC 4217 §14), EPSV
//! (RFC 2428 §3) and active mode with EPRT and PORT (RFC 2428 §2, RFC 959
//! §4.1.2, RFC 4217 §7).

use std::time::Duration;

use crate::check;
use crate::check::Check;
use crate::context::{login, Ctx, Endpoint, Session};
use crate::probe::control::line_of;
use crate::probe::data::{self, run_transfer, DataTls, Direction, Pending};
use crate::probe::tls::{ProbeStore, Versions};
use crate::probe::ProbeError;
use crate::report::Outcome;

use super::data::judge;
use super::{no_explicit, no_implicit};

/// The extras.
pub fn checks() -> Vec<Check> {
    vec![
        check! {
            id: "extras.implicit", group: Extras,
            title: "implicit FTPS: protected greeting, private data",
            section: "draft-murray-auth-ftp-ssl §4.2, §8",
            proves: "On the implicit port TLS starts with the first byte (the 220 greeting comes over TLS), and after login, without any PBSZ or PROT, a LIST runs over a TLS data connection (data are Private by default).",
            cannot: "Other ports. Skipped without an implicit port (ftps:// URL or --implicit-port).",
            uploads: false, run: implicit,
        },
        check! {
            id: "extras.auth-ssl", group: Extras,
            title: "AUTH SSL makes data private",
            section: "draft-murray-auth-ftp-ssl §6",
            proves: "After AUTH SSL (the draft's name) and login, without PBSZ or PROT, a LIST runs over a TLS data connection. A server that keeps data clear after AUTH SSL gets a warning (RFC 4217 dropped AUTH SSL). Skipped when AUTH SSL is refused.",
            cannot: "AUTH TLS-P, which the draft treats the same way.",
            uploads: false, run: auth_ssl,
        },
        check! {
            id: "extras.rein", group: Extras,
            title: "REIN resets the session",
            section: "RFC 959 §4.1.1, RFC 4217 §13",
            proves: "REIN is answered 220, a command that needs a login is then refused (530), and the client can log in again (after AUTH TLS again when the server cleared TLS, as RFC 4217 §13 has it; the evidence says which). Skipped when REIN is not implemented.",
            cannot: "REIN during a transfer.",
            uploads: false, run: rein,
        },
        check! {
            id: "extras.stat-during-transfer", group: Extras,
            title: "STAT while a protected transfer runs",
            section: "RFC 959 §4.1.3, RFC 4217 §14",
            proves: "While a PROT P upload is under way (or, in read-only mode, a download of a large file is held up), STAT on the TLS control connection is answered with a 2xx status reply before the transfer ends, and the transfer then completes.",
            cannot: "STAT's content. Skipped without --dir and without a file of at least 32 MiB to download.",
            uploads: false, run: super::during::stat_during_transfer,
        },
        check! {
            id: "extras.abor-during-transfer", group: Extras,
            title: "ABOR while a protected transfer runs",
            section: "RFC 959 §4.1.3, RFC 4217 §14",
            proves: "ABOR sent in-band on the TLS control connection during a PROT P transfer is answered 426 then 226 (RFC 959: 226 alone when the transfer had already ended), and the session goes on (NOOP is 200).",
            cannot: "ABOR with Telnet IP/Synch urgent data (not usable over TLS). Skipped as stat-during-transfer is.",
            uploads: false, run: super::during::abor_during_transfer,
        },
        check! {
            id: "extras.epsv", group: Extras,
            title: "EPSV",
            section: "RFC 2428 §3",
            proves: "EPSV is answered 229 with a port only, and a protected LIST through that port completes.",
            cannot: "EPSV ALL and IPv6 (unless the URL is IPv6).",
            uploads: false, run: epsv,
        },
        check! {
            id: "extras.active", group: Extras,
            title: "active mode: EPRT and PORT",
            section: "RFC 2428 §2, RFC 959 §4.1.2, RFC 4217 §7",
            proves: "EPRT and PORT naming the checker's own address are accepted, the server connects to it, and the checker — still the TLS client, as RFC 4217 §7 has it — completes a protected LIST each way.",
            cannot: "Active mode through NAT or a firewall: a server that cannot reach the checker fails here without being at fault (the evidence says whether it connected).",
            uploads: false, run: active,
        },
    ]
}

async fn implicit(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    if ctx.env.addr(Endpoint::Implicit).is_none() {
        return Ok(no_implicit());
    }
    let store = ProbeStore::new();
    let conn = match ctx.greeted(Endpoint::Implicit, Versions::Any, &store).await {
        Ok(conn) => conn,
        Err(ProbeError::Tls(e)) => {
            return Ok(Outcome::fail(format!(
                "no TLS from the first byte: {e} (is the greeting sent in plaintext?)"
            )))
        }
        Err(e) => return Err(e),
    };
    let mut s = Session {
        conn,
        store,
        versions: Versions::Any,
    };
    let (user, password) = (ctx.env.user.clone(), ctx.env.password.clone());
    login(&mut s.conn, &user, &password).await?;
    let t = ctx
        .own_transfer(&mut s, "LIST", Direction::Download)
        .await?;
    s.conn.quit().await;
    Ok(private_by_default("implicit port", &t, true))
}

fn private_by_default(what: &str, t: &data::Transfer, strict: bool) -> Outcome {
    let outcome = judge("LIST without PBSZ/PROT", t);
    if outcome.verdict == crate::report::Verdict::Pass {
        return Outcome::pass(format!("{what}: protected greeting; {}", outcome.summary));
    }
    let text = format!("{what}: data not private by default: {}", outcome.summary);
    if strict {
        Outcome::fail(text)
    } else {
        Outcome::warn(text)
    }
}

async fn auth_ssl(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = super::plain_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    let reply = conn.cmd("AUTH SSL").await?;
    if reply.code != 234 {
        conn.quit().await;
        return Ok(Outcome::skip(format!(
            "AUTH SSL refused: {}",
            line_of(&reply)
        )));
    }
    let store = ProbeStore::new();
    let config = ctx.env.tls.config(Versions::Any, Some(&store));
    conn.start_tls(config, ctx.env.tls.name.clone()).await?;
    let (user, password) = (ctx.env.user.clone(), ctx.env.password.clone());
    login(&mut conn, &user, &password).await?;
    let mut s = Session {
        conn,
        store,
        versions: Versions::Any,
    };
    let t = ctx
        .own_transfer(&mut s, "LIST", Direction::Download)
        .await?;
    s.conn.quit().await;
    let outcome = private_by_default("AUTH SSL", &t, false);
    Ok(if outcome.verdict == crate::report::Verdict::Pass {
        Outcome::pass(outcome.summary.replace("protected greeting; ", ""))
    } else {
        outcome
    })
}

async fn rein(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(Versions::Any).await?;
    let reply = s.conn.cmd("REIN").await?;
    match reply.code {
        220 => {}
        500 | 502 => {
            s.conn.quit().await;
            return Ok(Outcome::skip(format!(
                "REIN is not implemented: {}",
                line_of(&reply)
            )));
        }
        _ => {
            return Ok(Outcome::fail(format!(
                "REIN: {} (expected 220)",
                line_of(&reply)
            )));
        }
    }
    let quiet = ctx.env.limits.quiet;
    let cleared = match s.conn.clear_tls(quiet).await {
        Ok(()) => true,
        Err(ProbeError::Timeout(_)) => false,
        Err(e) => return Ok(Outcome::fail(format!("after REIN: {e}"))),
    };
    let pwd = s.conn.cmd("PWD").await?;
    if pwd.code != 530 {
        return Ok(Outcome::fail(format!(
            "after REIN a command needing a login got {} (530 expected)",
            line_of(&pwd)
        )));
    }
    if cleared {
        let reply = s.conn.cmd("AUTH TLS").await?;
        if reply.code != 234 {
            return Ok(Outcome::fail(format!(
                "AUTH TLS after REIN: {}",
                line_of(&reply)
            )));
        }
        let config = ctx.env.tls.config(Versions::Any, Some(&s.store));
        s.conn.start_tls(config, ctx.env.tls.name.clone()).await?;
    }
    let (user, password) = (ctx.env.user.clone(), ctx.env.password.clone());
    let again = login(&mut s.conn, &user, &password).await;
    s.conn.quit().await;
    Ok(match again {
        Ok(_) => Outcome::pass(format!(
            "220, PWD then 530, and a new login worked ({})",
            if cleared {
                "TLS cleared by REIN, AUTH TLS again"
            } else {
                "TLS kept"
            }
        )),
        Err(e) => Outcome::fail(format!("no new login after REIN: {e}")),
    })
}

async fn epsv(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(Versions::Any).await?;
    let reply = s.conn.cmd("EPSV").await?;
    if reply.code != 229 {
        s.conn.quit().await;
        return Ok(Outcome::fail(format!(
            "EPSV: {} (229 expected)",
            line_of(&reply)
        )));
    }
    let port = match ftps_proto::address::parse_epsv_reply_text(&reply.text()) {
        Ok(port) => port,
        Err(e) => {
            return Ok(Outcome::fail(format!(
                "EPSV reply not in the RFC 2428 form: {e:?}"
            )))
        }
    };
    let label = ctx.data_label();
    let addr = std::net::SocketAddr::new(s.conn.peer.ip(), port);
    let tcp = data::connect(addr, &label, &ctx.rec, ctx.env.limits.reply).await?;
    let config = ctx.env.tls.config(s.versions, Some(&s.store));
    let t = run_transfer(
        &mut s.conn,
        "LIST",
        &DataTls::With(config),
        Direction::Download,
        ctx.env.tls.name.clone(),
        &label,
        Pending::Connected(tcp),
    )
    .await?;
    s.conn.quit().await;
    Ok(judge(&format!("EPSV port {port}, LIST"), &t))
}

async fn active(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(Versions::Any).await?;
    let mut results = Vec::new();
    let mut failed = false;
    for verb in ["EPRT", "PORT"] {
        let listener =
            tokio::net::TcpListener::bind(std::net::SocketAddr::new(s.conn.local.ip(), 0)).await?;
        let addr = listener.local_addr()?;
        let arg = match (verb, addr) {
            ("EPRT", _) => ftps_proto::address::format_eprt_arg(addr),
            (_, std::net::SocketAddr::V4(v4)) => ftps_proto::address::format_port_arg(v4),
            _ => {
                results.push("PORT: not possible over IPv6".to_string());
                continue;
            }
        };
        let reply = s.conn.cmd(&format!("{verb} {arg}")).await?;
        if !reply.is_completion() {
            failed = true;
            results.push(format!("{verb}: {}", line_of(&reply)));
            continue;
        }
        let label = ctx.data_label();
        let config = ctx.env.tls.config(s.versions, Some(&s.store));
        let t = run_transfer(
            &mut s.conn,
            "LIST",
            &DataTls::With(config),
            Direction::Download,
            ctx.env.tls.name.clone(),
            &label,
            Pending::Listening(listener),
        )
        .await?;
        let outcome = judge(verb, &t);
        if outcome.verdict == crate::report::Verdict::Fail {
            failed = true;
        }
        results.push(outcome.summary);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.conn.quit().await;
    let text = results.join("; ");
    Ok(if failed {
        Outcome::fail(text)
    } else {
        Outcome::pass(text)
    })
}
