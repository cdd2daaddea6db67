//! Security (RFC 2577, RFC 4217 §15.2, and known bug classes): STARTTLS
//! command injection, bounce attacks with PORT/EPRT, passive port stealing,
//! path traversal, overlong command lines, and garbage where a ClientHello
//! should be.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket};

use crate::check;
use crate::check::Check;
use crate::context::{greeting, Ctx, Endpoint};
use crate::evidence::Kind;
use crate::probe::control::line_of;
use crate::probe::data::{self, DataTls};
use crate::probe::tls::{ProbeStore, Versions};
use crate::probe::ProbeError;
use crate::report::Outcome;

use super::{no_explicit, plain_explicit};

/// The overlong command line of `security.overlong-line`.
const OVERLONG_BYTES: usize = 100_000;
/// A privileged port for the bounce check (RFC 2577 §3).
const PRIVILEGED_PORT: u16 = 1023;

/// The security checks.
pub fn checks() -> Vec<Check> {
    vec![
        check! {
            id: "security.starttls-injection", group: Security,
            title: "plaintext pipelined after AUTH TLS is not executed",
            section: "RFC 4217 §4, CVE-2011-0411 class",
            proves: "`AUTH TLS` and `SYST` sent in one plaintext write: after the 234 and the handshake, no reply to the SYST comes over TLS (the server discarded it or closed the connection), so an attacker cannot inject commands that run as if protected.",
            cannot: "Other buffering paths (after CCC or REIN).",
            uploads: false, run: starttls_injection,
        },
        check! {
            id: "security.bounce-foreign-host", group: Security,
            title: "PORT/EPRT to a foreign host refused",
            section: "RFC 2577 §3, RFC 4217 §15.2.1",
            proves: "PORT and EPRT naming an address other than the client's are refused, or (on loopback, where the checker listens on 127.0.0.2 to see) accepted but never connected to: the server cannot be used to connect elsewhere (FTP bounce).",
            cannot: "Away from loopback, an accepted PORT is not followed by a transfer (the checker makes the server connect nowhere), so it counts as a failure without proof of a connection.",
            uploads: false, run: bounce_foreign_host,
        },
        check! {
            id: "security.bounce-privileged-port", group: Security,
            title: "PORT/EPRT to a privileged port refused",
            section: "RFC 2577 §3",
            proves: "PORT and EPRT naming the client's own address with port 1023 are refused (504 recommended), or accepted without the server connecting there (verified on loopback when the checker may listen on that port).",
            cannot: "Other privileged ports.",
            uploads: false, run: bounce_privileged_port,
        },
        check! {
            id: "security.pasv-steal", group: Security,
            title: "a passive port cannot be taken by another connection",
            section: "RFC 4217 §15.2.6, RFC 2577 §4",
            proves: "A second client connects to control connection A's passive port before A does — from another address (127.0.0.2 when the server is on loopback, else from the same address) — and offers the TLS session of its own control connection B; it receives none of A's listing.",
            cannot: "Attackers that can spoof A's address and have A's session (not possible without breaking TLS). Away from loopback the thief shares A's address, which only the TLS binding can tell apart.",
            uploads: false, run: pasv_steal,
        },
        check! {
            id: "security.path-traversal", group: Security,
            title: "paths cannot climb out of the root",
            section: "RFC 2577 §3 (restricting access), RFC 4217 §15.2.2",
            proves: "`CWD ..` from `/` stays at `/`, and SIZE/MLST of `../../etc/passwd`-style paths (with `..`, `\\`, `....//` and %2e forms) reach nothing that `/etc/passwd` does not.",
            cannot: "Symbolic links inside the root pointing out of it (the checker creates none). When `/etc/passwd` itself is reachable, the account is not confined and traversal cannot be told apart (a warning).",
            uploads: false, run: path_traversal,
        },
        check! {
            id: "security.overlong-line", group: Security,
            title: "an overlong command line gets 500, the session goes on",
            section: "RFC 959 §4.2 (500: command line too long), robustness",
            proves: "A 100,000-byte command line on the TLS control connection is answered with one 500 — not split into several commands, not ending the session — and NOOP afterwards is 200.",
            cannot: "Longer lines, or many of them (memory exhaustion).",
            uploads: false, run: overlong_line,
        },
        check! {
            id: "security.garbage-hello", group: Security,
            title: "garbage instead of a ClientHello does not take the server down",
            section: "RFC 4217 §4, robustness",
            proves: "After AUTH TLS (or on the implicit port) 4 KiB of random bytes instead of a ClientHello end that connection, and a new connection is greeted and logs in.",
            cannot: "Slower or larger floods, or other malformed handshakes (fuzzing is beyond an audit).",
            uploads: false, run: garbage_hello,
        },
    ]
}

async fn starttls_injection(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = plain_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    conn.send_raw(
        b"AUTH TLS\r\nSYST\r\n",
        "AUTH TLS\\r\\nSYST\\r\\n (one plaintext write)",
    )
    .await?;
    let reply = conn.reply().await?;
    if reply.code != 234 {
        return Ok(Outcome::warn(format!("AUTH TLS: {}", line_of(&reply))));
    }
    if conn.buffered() > 0 {
        conn.note("plaintext after the 234 before the handshake");
    }
    let config = ctx.env.tls.config(Versions::Any, None);
    if let Err(e) = conn.start_tls(config, ctx.env.tls.name.clone()).await {
        return Ok(Outcome::pass(format!(
            "234, then the server ended the handshake ({e}): the pipelined SYST was not run"
        )));
    }
    let quiet = ctx.env.limits.quiet;
    match conn.reply_within(quiet).await {
        Ok(Some(r)) => {
            return Ok(Outcome::fail(format!(
                "the SYST sent in plaintext was answered over TLS: {}",
                line_of(&r)
            )))
        }
        Ok(None) => {}
        Err(_) => return Ok(Outcome::pass(
            "234, handshake, then the server closed the connection: the pipelined SYST was not run",
        )),
    }
    let next = match conn.cmd("NOOP").await {
        Ok(r) => r,
        Err(_) => {
            return Ok(Outcome::pass(
                "the server closed the connection: the pipelined SYST was not run",
            ))
        }
    };
    conn.quit().await;
    Ok(if next.code == 215 {
        Outcome::fail(format!(
            "the SYST sent in plaintext ran after the handshake: {}",
            line_of(&next)
        ))
    } else {
        Outcome::pass(format!(
            "the pipelined SYST was discarded; NOOP over TLS: {}",
            line_of(&next)
        ))
    })
}

/// Another loopback address to listen on, when the server is on loopback.
fn other_loopback(local: IpAddr) -> Option<IpAddr> {
    match local {
        IpAddr::V4(v4) if v4.is_loopback() => {
            Some(IpAddr::V4(if v4 == Ipv4Addr::new(127, 0, 0, 2) {
                Ipv4Addr::new(127, 0, 0, 3)
            } else {
                Ipv4Addr::new(127, 0, 0, 2)
            }))
        }
        _ => None,
    }
}

fn port_command(verb: &str, addr: SocketAddr) -> Option<String> {
    match (verb, addr) {
        ("EPRT", _) => Some(format!(
            "EPRT {}",
            ftps_proto::address::format_eprt_arg(addr)
        )),
        (_, SocketAddr::V4(v4)) => {
            Some(format!("PORT {}", ftps_proto::address::format_port_arg(v4)))
        }
        _ => None,
    }
}

/// Send PORT/EPRT naming `target`; when accepted and `listener` is given,
/// ask for a LIST and see whether the server connects there.
/// `Ok(None)`: refused; `Ok(Some(true))`: the server connected.
async fn try_bounce(
    ctx: &mut Ctx,
    conn: &mut crate::probe::control::Conn,
    verb: &str,
    target: SocketAddr,
    listener: Option<&TcpListener>,
) -> Result<Option<Option<bool>>, ProbeError> {
    let Some(command) = port_command(verb, target) else {
        return Ok(None);
    };
    let reply = conn.cmd(&command).await?;
    if !reply.is_completion() {
        return Ok(None);
    }
    let Some(listener) = listener else {
        ctx.note(format!(
            "{verb} accepted; no transfer asked for (the address is not ours)"
        ));
        return Ok(Some(None));
    };
    conn.send("LIST").await?;
    let wait = ctx.env.limits.quiet * 2;
    let connected = tokio::time::timeout(wait, listener.accept()).await;
    let hit = matches!(connected, Ok(Ok(_)));
    ctx.note(if hit {
        format!("the server connected to {target}")
    } else {
        format!(
            "the server did not connect to {target} within {} ms",
            wait.as_millis()
        )
    });
    drop(connected);
    // The LIST's replies (150 and an error, or a refusal), whatever they are.
    let _ = conn.reply_within(ctx.env.limits.reply).await;
    let _ = conn.reply_within(ctx.env.limits.quiet).await;
    Ok(Some(Some(hit)))
}

async fn bounce(ctx: &mut Ctx, foreign: bool) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(Versions::Any).await?;
    let local = s.conn.local.ip();
    let (target_ip, listen) = if foreign {
        match other_loopback(local) {
            Some(ip) => (ip, true),
            None => (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), false),
        }
    } else {
        (local, local.is_loopback())
    };
    let mut listener = None;
    if listen {
        let port = if foreign { 0 } else { PRIVILEGED_PORT };
        match TcpListener::bind(SocketAddr::new(target_ip, port)).await {
            Ok(l) => listener = Some(l),
            Err(e) => ctx.note(format!(
                "cannot listen on {target_ip}:{port} to verify: {e}"
            )),
        }
    }
    let port = match (&listener, foreign) {
        (Some(l), _) => l.local_addr()?.port(),
        (None, true) => 40_000,
        (None, false) => PRIVILEGED_PORT,
    };
    let target = SocketAddr::new(target_ip, port);
    let mut accepted = Vec::new();
    let mut connected = Vec::new();
    for verb in ["PORT", "EPRT"] {
        match try_bounce(ctx, &mut s.conn, verb, target, listener.as_ref()).await? {
            None => {}
            Some(Some(true)) => connected.push(verb),
            Some(_) => accepted.push(verb),
        }
    }
    s.conn.quit().await;
    let what = if foreign {
        format!("a foreign host ({target})")
    } else {
        format!("a privileged port ({target})")
    };
    Ok(if !connected.is_empty() {
        Outcome::fail(format!(
            "{} to {what}: the server connected there (bounce)",
            connected.join(" and ")
        ))
    } else if !accepted.is_empty() && listener.is_none() {
        Outcome::fail(format!(
            "{} to {what} accepted (not followed by a transfer)",
            accepted.join(" and ")
        ))
    } else if !accepted.is_empty() {
        Outcome::pass(format!(
            "{} to {what} accepted, but the server never connected there",
            accepted.join(" and ")
        ))
    } else {
        Outcome::pass(format!("PORT and EPRT to {what} refused"))
    })
}

async fn bounce_foreign_host(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    bounce(ctx, true).await
}

async fn bounce_privileged_port(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    bounce(ctx, false).await
}

async fn pasv_steal(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut a = ctx.session(Versions::Any).await?;
    let b = ctx.session(Versions::Any).await?;
    let addr = data::passive(&mut a.conn).await?;
    let thief_label = ctx.data_label();
    let source = other_loopback(a.conn.local.ip());
    let rec = ctx.rec.clone();
    let thief_config = ctx.env.tls.config(Versions::Any, Some(&b.store));
    let name = ctx.env.tls.name.clone();
    let limit = ctx.env.limits.quiet * 3;
    let label = thief_label.clone();
    let thief = tokio::spawn(async move {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }?;
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let tcp = socket.connect(addr).await?;
        rec.push(
            &label,
            Kind::Note,
            format!("thief connected from {}", tcp.local_addr()?),
        );
        let (mut stream, _) = data::handshake(tcp, thief_config, name, &label, &rec, limit).await?;
        let (_, total, _, _) = stream.read_to_end(limit).await;
        rec.push(
            &label,
            Kind::Received,
            format!("thief received {total} bytes"),
        );
        Ok::<u64, ProbeError>(total)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let own_label = ctx.data_label();
    let config = ctx.env.tls.config(Versions::Any, Some(&a.store));
    let own = data::connect(addr, &own_label, &ctx.rec, ctx.env.limits.reply).await;
    let t = match own {
        Ok(tcp) => {
            data::run_transfer(
                &mut a.conn,
                "LIST",
                &DataTls::With(config),
                data::Direction::Download,
                ctx.env.tls.name.clone(),
                &own_label,
                data::Pending::Connected(tcp),
            )
            .await?
        }
        Err(e) => {
            ctx.note(format!("the client's own data connection failed: {e}"));
            data::Transfer {
                last: a.conn.cmd("NOOP").await.ok(),
                ..Default::default()
            }
        }
    };
    let stolen = match thief.await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            ctx.rec
                .push(&thief_label, Kind::Note, format!("thief got nothing: {e}"));
            0
        }
        Err(_) => 0,
    };
    a.conn.quit().await;
    b.conn.quit().await;
    let from = source
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "the same address".into());
    Ok(if stolen > 0 {
        Outcome::fail(format!(
            "a connection from {from} with another control connection's session received {stolen} bytes of the listing"
        ))
    } else if t.completed() {
        Outcome::pass(format!(
            "the thief (from {from}) got nothing; the client's own LIST completed ({})",
            data::last_line(&t)
        ))
    } else {
        Outcome::pass(format!(
            "the thief (from {from}) got nothing; the client's own LIST did not complete ({}): the race costs the client its transfer, not its data",
            data::last_line(&t)
        ))
    })
}

async fn path_traversal(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(Versions::Any).await?;
    s.conn.cmd("CWD /").await?;
    let top = s.conn.cmd("PWD").await?;
    s.conn.cmd("CWD ..").await?;
    let after = s.conn.cmd("PWD").await?;
    let climbed = after.text() != top.text();
    let verb = if ctx.facts.has_feature("MLST") {
        "MLST"
    } else {
        "SIZE"
    };
    let baseline = s.conn.cmd(&format!("{verb} /etc/passwd")).await?;
    let mut escaped = Vec::new();
    for path in [
        "../../../../../../../../etc/passwd",
        "/../../../../../../../../etc/passwd",
        "..\\..\\..\\..\\..\\..\\..\\..\\etc\\passwd",
        "....//....//....//....//etc/passwd",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/./../.././../etc/passwd",
    ] {
        let reply = s.conn.cmd(&format!("{verb} {path}")).await?;
        if reply.is_completion() {
            escaped.push(path);
        }
    }
    s.conn.quit().await;
    Ok(if climbed {
        Outcome::fail(format!(
            "CWD .. from / moved to {}",
            after.text().replace('\n', " ")
        ))
    } else if baseline.is_completion() {
        Outcome::warn(format!(
            "/etc/passwd itself is reachable ({}): the account is not confined to a directory",
            line_of(&baseline)
        ))
    } else if !escaped.is_empty() {
        Outcome::fail(format!(
            "{verb} reached a file outside the root through {}",
            escaped.join(", ")
        ))
    } else {
        Outcome::pass(format!(
            "CWD .. stays at /; {verb} of 6 traversal forms of /etc/passwd all refused"
        ))
    })
}

async fn overlong_line(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(Versions::Any).await?;
    let mut line = vec![b'X'; OVERLONG_BYTES];
    line.extend_from_slice(b"\r\nNOOP\r\n");
    let mut before = Vec::new();
    let shown = format!("{OVERLONG_BYTES} bytes of X, CRLF, then NOOP, in one write");
    if let Err(e) = s.conn.send_raw(&line, &shown).await {
        // The server stopped reading (and maybe said why first).
        while let Ok(Some(r)) = s.conn.reply_within(ctx.env.limits.quiet).await {
            before.push(r.code);
        }
        return Ok(Outcome::fail(format!(
            "the server closed the connection while the line was sent ({e}; replies: {before:?})"
        )));
    }
    loop {
        match s.conn.reply().await {
            Ok(r) if r.code == 200 => break,
            Ok(r) => {
                before.push(r.code);
                if before.len() > 100 {
                    break;
                }
            }
            Err(e) => {
                return Ok(Outcome::fail(format!(
                    "the session did not go on after the overlong line: {e} (replies before: {before:?})"
                )))
            }
        }
    }
    let again = s.conn.cmd("NOOP").await;
    s.conn.quit().await;
    let goes_on = matches!(&again, Ok(r) if r.code == 200);
    Ok(match before.as_slice() {
        [500] if goes_on => Outcome::pass("one 500, then NOOP 200 twice: the session goes on"),
        [] if goes_on => Outcome::warn("no reply to the overlong line (silently dropped); NOOP 200"),
        [code] if goes_on => Outcome::warn(format!("answered {code} (500 expected); NOOP 200")),
        codes if codes.len() > 1 => Outcome::fail(format!(
            "the line was taken as {} commands ({codes:?}): the tail of an overlong line runs as a command",
            codes.len()
        )),
        codes => Outcome::fail(format!("replies {codes:?}, then NOOP: {}", crate::context::shown(&again))),
    })
}

async fn garbage_hello(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut conn = ctx.tcp(Endpoint::Main).await?;
    if !ctx.env.is_implicit(Endpoint::Main) {
        greeting(&mut conn).await?;
        let reply = conn.cmd("AUTH TLS").await?;
        if reply.code != 234 {
            return Ok(Outcome::warn(format!("AUTH TLS: {}", line_of(&reply))));
        }
    }
    let label = conn.label.clone();
    let mut tcp = conn
        .into_plain()
        .ok_or_else(|| ProbeError::Local("no plain stream".into()))?;
    let garbage: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
    ctx.rec.push(
        &label,
        Kind::Sent,
        "4096 random bytes instead of a ClientHello",
    );
    let _ = tcp.write_all(&garbage).await;
    let mut buf = [0u8; 256];
    use tokio::io::AsyncReadExt;
    let end = tokio::time::timeout(ctx.env.limits.reply, tcp.read(&mut buf)).await;
    ctx.rec.push(
        &label,
        Kind::Received,
        match end {
            Ok(Ok(0)) => "connection closed".to_string(),
            Ok(Ok(n)) => {
                format!("{n} bytes (an alert?), then the connection is dropped by the checker")
            }
            Ok(Err(e)) => format!("connection ended: {e}"),
            Err(_) => "nothing; the connection stays open".to_string(),
        },
    );
    drop(tcp);
    let store = ProbeStore::new();
    let fresh = ctx.secured(Endpoint::Main, Versions::Any, &store).await;
    let mut fresh = match fresh {
        Ok(c) => c,
        Err(e) => return Ok(Outcome::fail(format!("no new connection afterwards: {e}"))),
    };
    let (user, password) = (ctx.env.user.clone(), ctx.env.password.clone());
    let login = crate::context::login(&mut fresh, &user, &password).await;
    fresh.quit().await;
    Ok(match login {
        Ok(_) => Outcome::pass(
            "the garbage connection ended; a new connection was greeted and logged in",
        ),
        Err(e) => Outcome::fail(format!("a new connection could not log in afterwards: {e}")),
    })
}
