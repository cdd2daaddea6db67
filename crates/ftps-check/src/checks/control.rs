//! RFC 4217 and RFC 2228 on the control connection: FEAT (RFC 4217 §6),
//! AUTH and its mechanisms (RFC 4217 §4, RFC 2228 §3, the draft's §6),
//! PBSZ and PROT and their order (RFC 4217 §8, §9), CCC (RFC 4217 §5), a
//! second AUTH, USER before TLS (§10.1), and AUTH resetting the session
//! (§4.2). Each check opens its own connection to the explicit port.

use crate::check;
use crate::check::Check;
use crate::context::{feat, login, Ctx};
use crate::probe::control::line_of;
use crate::probe::ProbeError;
use crate::report::Outcome;

use super::{expect_code, no_explicit, plain_explicit, secured_explicit};

/// The control-connection checks.
pub fn checks() -> Vec<Check> {
    let mut list = auth_checks();
    list.extend(protection_checks());
    list
}

/// FEAT and AUTH.
fn auth_checks() -> Vec<Check> {
    vec![
        check! {
            id: "control.feat", group: Control,
            title: "FEAT lists AUTH TLS, PBSZ and PROT",
            section: "RFC 4217 §6, RFC 2389 §3",
            proves: "FEAT, sent in plaintext before AUTH, answers 211 with the lines AUTH TLS (a mechanism list containing TLS), PBSZ and PROT, so clients can discover FTPS.",
            cannot: "Whether the features listed work (the other checks try them).",
            uploads: false, run: feat_lists,
        },
        check! {
            id: "control.auth-tls", group: Control,
            title: "AUTH TLS is 234, then TLS",
            section: "RFC 4217 §4, §4.2",
            proves: "AUTH TLS is answered 234 (never 334, which would announce an ADAT exchange) and a TLS handshake follows on the same connection.",
            cannot: "Nothing beyond the handshake: later checks use the secured connection.",
            uploads: false, run: auth_tls,
        },
        check! {
            id: "control.auth-case", group: Control,
            title: "AUTH parameters are case-insensitive",
            section: "RFC 2228 §3, RFC 4217 §4",
            proves: "`auth tls` in lower case is answered 234 like AUTH TLS.",
            cannot: "Mixed-case forms other than the one sent.",
            uploads: false, run: auth_case,
        },
        check! {
            id: "control.auth-legacy", group: Control,
            title: "AUTH TLS-C, SSL and TLS-P",
            section: "draft-murray-auth-ftp-ssl §6, RFC 4217 §4",
            proves: "Which of the draft's mechanism names the server accepts, and that any it accepts is answered 234. Refusing them is allowed (information only); a 334 or another 2xx/3xx code is a failure.",
            cannot: "What data protection each implies: extras.auth-ssl checks that AUTH SSL makes data private.",
            uploads: false, run: auth_legacy,
        },
        check! {
            id: "control.auth-unknown", group: Control,
            title: "unknown AUTH mechanism is 504",
            section: "RFC 2228 §3 (AUTH), RFC 4217 §4",
            proves: "AUTH with a mechanism nobody implements gets 504 (\"not understood\").",
            cannot: "Other unknown names.",
            uploads: false, run: auth_unknown,
        },
    ]
}

/// PBSZ, PROT, CCC, a second AUTH, USER before AUTH and AUTH's reset.
fn protection_checks() -> Vec<Check> {
    vec![
        check! {
            id: "control.pbsz-before-auth", group: Control,
            title: "PBSZ before AUTH is 503",
            section: "RFC 4217 §9, RFC 2228 §3 (PBSZ)",
            proves: "PBSZ 0 on a connection without a security exchange is answered 503 (bad sequence).",
            cannot: "Other argument values.",
            uploads: false, run: pbsz_before_auth,
        },
        check! {
            id: "control.prot-before-auth", group: Control,
            title: "PROT before AUTH is 503",
            section: "RFC 4217 §9, RFC 2228 §3 (PROT)",
            proves: "PROT P on a connection without a security exchange is answered 503.",
            cannot: "Other levels.",
            uploads: false, run: prot_before_auth,
        },
        check! {
            id: "control.prot-before-pbsz", group: Control,
            title: "PROT before PBSZ is 503",
            section: "RFC 4217 §9, RFC 2228 §3 (PROT)",
            proves: "After AUTH TLS and login, PROT P without a PBSZ first is answered 503.",
            cannot: "The same order before login (some servers refuse PBSZ/PROT before login with 530, which RFC 4217 §12.1 allows either way).",
            uploads: false, run: prot_before_pbsz,
        },
        check! {
            id: "control.pbsz", group: Control,
            title: "PBSZ 0 is 200 (and PBSZ=0 for other sizes)",
            section: "RFC 4217 §9",
            proves: "After AUTH TLS and login, PBSZ 0 is answered 200; PBSZ 1024 is answered 200 with PBSZ=0 in the text (TLS needs no buffer size) — otherwise a warning.",
            cannot: "Whether the server would encapsulate data for another size (it must not; no data is sent after PBSZ 1024).",
            uploads: false, run: pbsz,
        },
        check! {
            id: "control.prot-s-e", group: Control,
            title: "PROT S and PROT E are 536",
            section: "RFC 4217 §9",
            proves: "PROT S (Safe) and PROT E (Confidential), which TLS does not provide, are refused with 536 — not accepted, and not silently turned into P.",
            cannot: "What level the server uses for data after a wrong acceptance (no data is sent).",
            uploads: false, run: prot_s_e,
        },
        check! {
            id: "control.prot-unknown", group: Control,
            title: "unknown PROT level is 504",
            section: "RFC 2228 §3 (PROT), RFC 4217 §9",
            proves: "PROT X (no such level) is answered 504.",
            cannot: "Other malformed levels.",
            uploads: false, run: prot_unknown,
        },
        check! {
            id: "control.ccc-unprotected", group: Control,
            title: "CCC without TLS is 533",
            section: "RFC 4217 §5, RFC 2228 §3 (CCC)",
            proves: "CCC on a connection that is not protected is answered 533. A server without CCC (500/502) is skipped; one that asks for a login first (530) gets a warning.",
            cannot: "Anything about CCC on a protected connection (control.ccc).",
            uploads: false, run: ccc_unprotected,
        },
        check! {
            id: "control.ccc", group: Control,
            title: "CCC on a protected connection",
            section: "RFC 4217 §5, §15.3",
            proves: "Whether a logged-in client may clear the control connection: refused (534, or CCC not implemented) passes; 200 is a warning — the connection then continues in plaintext, open to injection (RFC 4217 §15.3).",
            cannot: "Per-user or per-listener CCC policies other than this account's.",
            uploads: false, run: ccc_protected,
        },
        check! {
            id: "control.second-auth", group: Control,
            title: "a second AUTH is refused",
            section: "RFC 4217 §4.2, RFC 2228 §3 (AUTH)",
            proves: "AUTH TLS on a connection that already runs TLS is answered 503 (another refusal is a warning; 234 a failure).",
            cannot: "Re-negotiation after REIN (extras.rein).",
            uploads: false, run: second_auth,
        },
        check! {
            id: "control.user-before-auth", group: Control,
            title: "USER before AUTH is refused",
            section: "RFC 4217 §10.1, §15.2.3",
            proves: "USER in plaintext is refused, so no password is ever asked for before TLS. (The check never sends the password in plaintext.)",
            cannot: "Policies for other accounts (anonymous, or users allowed without TLS).",
            uploads: false, run: user_before_auth,
        },
        check! {
            id: "control.auth-resets", group: Control,
            title: "AUTH resets the login",
            section: "RFC 4217 §4.2",
            proves: "A USER sent before AUTH is forgotten by AUTH: PASS after the handshake is refused (503) instead of logging in. Skipped when USER before AUTH is refused (nothing to reset).",
            cannot: "The reset of TYPE, the working directory and the data port (they cannot be set before AUTH on such a server).",
            uploads: false, run: auth_resets,
        },
    ]
}

async fn feat_lists(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = plain_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    let (reply, lines) = feat(&mut conn).await?;
    conn.quit().await;
    if reply.code != 211 {
        return Ok(Outcome::fail(format!(
            "FEAT in plaintext: {}",
            line_of(&reply)
        )));
    }
    let auth = lines
        .iter()
        .any(|l| l.starts_with("AUTH ") && l[5..].split([';', ' ', ',']).any(|m| m == "TLS"));
    let missing: Vec<&str> = [
        ("AUTH TLS", auth),
        ("PBSZ", has(&lines, "PBSZ")),
        ("PROT", has(&lines, "PROT")),
    ]
    .iter()
    .filter(|(_, ok)| !ok)
    .map(|(n, _)| *n)
    .collect();
    Ok(if missing.is_empty() {
        Outcome::pass("211 with AUTH TLS, PBSZ and PROT")
    } else {
        Outcome::fail(format!("FEAT does not list {}", missing.join(", ")))
    })
}

fn has(lines: &[String], name: &str) -> bool {
    lines
        .iter()
        .any(|l| l == name || l.starts_with(&format!("{name} ")))
}

async fn auth_tls(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = plain_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    let reply = conn.cmd("AUTH TLS").await?;
    if reply.code != 234 {
        return Ok(expect_code("AUTH TLS", &reply, 234));
    }
    let config = ctx.env.tls.config(crate::probe::tls::Versions::Any, None);
    let outcome = match conn.start_tls(config, ctx.env.tls.name.clone()).await {
        Ok(info) => Outcome::pass(format!("234, then {}", info.describe())),
        Err(e) => Outcome::fail(format!("234, but the handshake failed: {e}")),
    };
    conn.quit().await;
    Ok(outcome)
}

async fn auth_case(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = plain_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    let reply = conn.cmd("auth tls").await?;
    Ok(expect_code("auth tls", &reply, 234))
}

async fn auth_legacy(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for mechanism in ["TLS-C", "SSL", "TLS-P"] {
        let Some(mut conn) = plain_explicit(ctx).await? else {
            return Ok(no_explicit());
        };
        let reply = conn.cmd(&format!("AUTH {mechanism}")).await?;
        match reply.code {
            234 => accepted.push(mechanism),
            400..=599 => refused.push(format!("{mechanism} ({})", reply.code)),
            _ => {
                return Ok(Outcome::fail(format!(
                    "AUTH {mechanism}: {} (an accepted AUTH is 234)",
                    line_of(&reply)
                )))
            }
        }
    }
    let text = format!(
        "accepted: {}; refused: {}",
        if accepted.is_empty() {
            "none".into()
        } else {
            accepted.join(", ")
        },
        if refused.is_empty() {
            "none".into()
        } else {
            refused.join(", ")
        }
    );
    Ok(if refused.is_empty() {
        Outcome::pass(text)
    } else {
        Outcome::info(text)
    })
}

async fn auth_unknown(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = plain_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    let reply = conn.cmd("AUTH FTPS-CHECK-UNKNOWN").await?;
    conn.quit().await;
    Ok(expect_code("AUTH FTPS-CHECK-UNKNOWN", &reply, 504))
}

async fn pbsz_before_auth(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = plain_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    let reply = conn.cmd("PBSZ 0").await?;
    conn.quit().await;
    Ok(expect_code("PBSZ 0 before AUTH", &reply, 503))
}

async fn prot_before_auth(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = plain_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    let reply = conn.cmd("PROT P").await?;
    conn.quit().await;
    Ok(expect_code("PROT P before AUTH", &reply, 503))
}

async fn logged_in(ctx: &mut Ctx) -> Result<Option<crate::probe::control::Conn>, ProbeError> {
    let Some(mut conn) = secured_explicit(ctx).await? else {
        return Ok(None);
    };
    let (user, password) = (ctx.env.user.clone(), ctx.env.password.clone());
    login(&mut conn, &user, &password).await?;
    Ok(Some(conn))
}

async fn prot_before_pbsz(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = logged_in(ctx).await? else {
        return Ok(no_explicit());
    };
    let reply = conn.cmd("PROT P").await?;
    conn.quit().await;
    Ok(expect_code("PROT P before PBSZ", &reply, 503))
}

async fn pbsz(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = logged_in(ctx).await? else {
        return Ok(no_explicit());
    };
    let zero = conn.cmd("PBSZ 0").await?;
    if zero.code != 200 {
        conn.quit().await;
        return Ok(expect_code("PBSZ 0", &zero, 200));
    }
    let other = conn.cmd("PBSZ 1024").await?;
    conn.quit().await;
    Ok(
        if other.code == 200 && other.text().to_ascii_uppercase().contains("PBSZ=0") {
            Outcome::pass(format!("PBSZ 0: 200; PBSZ 1024: {}", line_of(&other)))
        } else {
            Outcome::warn(format!(
                "PBSZ 0: 200; PBSZ 1024: {} (RFC 4217 §9: 200 with PBSZ=0)",
                line_of(&other)
            ))
        },
    )
}

async fn prot_s_e(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = logged_in(ctx).await? else {
        return Ok(no_explicit());
    };
    conn.cmd_ok("PBSZ 0").await?;
    let s = conn.cmd("PROT S").await?;
    let e = conn.cmd("PROT E").await?;
    conn.quit().await;
    let text = format!("PROT S: {}; PROT E: {}", line_of(&s), line_of(&e));
    Ok(if s.code == 536 && e.code == 536 {
        Outcome::pass(text)
    } else if s.is_completion() || e.is_completion() {
        Outcome::fail(format!("accepted a level TLS does not provide: {text}"))
    } else {
        Outcome::fail(format!("{text} (expected 536)"))
    })
}

async fn prot_unknown(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = logged_in(ctx).await? else {
        return Ok(no_explicit());
    };
    conn.cmd_ok("PBSZ 0").await?;
    let reply = conn.cmd("PROT X").await?;
    conn.quit().await;
    Ok(expect_code("PROT X", &reply, 504))
}

async fn ccc_unprotected(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = plain_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    let reply = conn.cmd("CCC").await?;
    conn.quit().await;
    Ok(match reply.code {
        500 | 502 => Outcome::skip(format!("CCC is not implemented: {}", line_of(&reply))),
        530 => Outcome::warn(format!(
            "CCC before AUTH: {} — a login is asked for before anything else (533 expected)",
            line_of(&reply)
        )),
        _ => expect_code("CCC before AUTH", &reply, 533),
    })
}

async fn ccc_protected(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = logged_in(ctx).await? else {
        return Ok(no_explicit());
    };
    let reply = conn.cmd("CCC").await?;
    Ok(match reply.code {
        200 => Outcome::warn(format!(
            "CCC allowed ({}): the control connection may continue in plaintext (RFC 4217 §15.3)",
            line_of(&reply)
        )),
        _ => {
            conn.quit().await;
            Outcome::pass(format!("refused: {}", line_of(&reply)))
        }
    })
}

async fn second_auth(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = secured_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    let reply = conn.cmd("AUTH TLS").await?;
    Ok(match reply.code {
        503 => {
            conn.quit().await;
            Outcome::pass(format!("refused: {}", line_of(&reply)))
        }
        234 | 334 => Outcome::fail(format!("a second AUTH accepted: {}", line_of(&reply))),
        _ if reply.code >= 400 => {
            conn.quit().await;
            Outcome::warn(format!(
                "refused, but with {} (503 expected)",
                line_of(&reply)
            ))
        }
        _ => Outcome::fail(format!("{} (503 expected)", line_of(&reply))),
    })
}

async fn user_before_auth(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = plain_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    let user = ctx.env.user.clone();
    let reply = conn.cmd(&format!("USER {user}")).await?;
    conn.quit().await;
    Ok(match reply.code {
        331 | 332 => Outcome::fail(format!(
            "USER accepted in plaintext ({}): the password would follow in clear",
            line_of(&reply)
        )),
        230 | 232 => Outcome::fail(format!("logged in without TLS: {}", line_of(&reply))),
        _ if reply.code >= 400 => Outcome::pass(format!("refused: {}", line_of(&reply))),
        _ => Outcome::fail(format!("unexpected: {}", line_of(&reply))),
    })
}

async fn auth_resets(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(mut conn) = plain_explicit(ctx).await? else {
        return Ok(no_explicit());
    };
    let user = ctx.env.user.clone();
    let first = conn.cmd(&format!("USER {user}")).await?;
    if first.code != 331 {
        conn.quit().await;
        return Ok(Outcome::skip(format!(
            "USER before AUTH is refused ({}): nothing for AUTH to reset",
            line_of(&first)
        )));
    }
    let reply = conn.cmd("AUTH TLS").await?;
    if reply.code != 234 {
        return Ok(Outcome::fail(format!(
            "AUTH TLS after USER: {}",
            line_of(&reply)
        )));
    }
    let config = ctx.env.tls.config(crate::probe::tls::Versions::Any, None);
    conn.start_tls(config, ctx.env.tls.name.clone()).await?;
    let password = ctx.env.password.clone();
    let pass = conn.cmd(&format!("PASS {password}")).await?;
    conn.quit().await;
    Ok(match pass.code {
        230 | 202 => Outcome::fail(format!(
            "the USER sent before AUTH was kept: PASS logged in ({})",
            line_of(&pass)
        )),
        503 => Outcome::pass(format!("PASS after AUTH: {}", line_of(&pass))),
        _ => Outcome::warn(format!(
            "PASS after AUTH refused, but with {} (503 expected)",
            line_of(&pass)
        )),
    })
}
