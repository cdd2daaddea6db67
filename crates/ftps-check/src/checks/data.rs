//! Data connections over PROT P (RFC 4217 §7, §8, §9, §10.2): LIST, RETR
//! and MLSD, each data connection resuming its control connection's
//! session and ending with close_notify; PROT C refused with 521 before any
//! 1xx where clear data is not allowed; the session going on after a
//! failed data connection (the 522 of §10.2); several protected uploads and
//! downloads in a row.

use crate::check;
use crate::check::Check;
use crate::context::{Ctx, Session};
use crate::probe::control::line_of;
use crate::probe::data::{self, last_line, DataTls, Direction, Transfer};
use crate::probe::tls::Versions;
use crate::probe::ProbeError;
use crate::report::Outcome;

/// Sizes of the files of `data.repeated-transfers`.
const REPEATED_SIZES: [usize; 5] = [0, 1, 1_500, 70_000, 1_000_000];

/// The data-connection checks (see also `sessions`).
pub fn checks() -> Vec<Check> {
    vec![
        check! {
            id: "data.list", group: Data,
            title: "LIST over PROT P",
            section: "RFC 4217 §8, §9, §12.4",
            proves: "After PBSZ 0 and PROT P, LIST is answered 150, its data connection runs TLS (the checker resuming the control connection's session), ends with close_notify, and 226 follows.",
            cannot: "Listings of other directories or very long ones.",
            uploads: false, run: list,
        },
        check! {
            id: "data.retr", group: Data,
            title: "RETR over PROT P",
            section: "RFC 4217 §8, §9, RFC 959 §4.1.3",
            proves: "RETR of a file is answered 150, its data arrives over TLS, ends with close_notify, is as long as the file (and, when the checker uploaded the file, byte for byte the same), and 226 follows.",
            cannot: "Large or resumed downloads. In read-only mode the file is one the server lists; without one the check is skipped.",
            uploads: false, run: retr,
        },
        check! {
            id: "data.mlsd", group: Data,
            title: "MLSD over PROT P",
            section: "RFC 3659 §7, RFC 4217 §9",
            proves: "When FEAT lists MLST: MLSD is answered 150, its data arrives over TLS with close_notify, 226 follows, and every line parses as RFC 3659 facts and a name.",
            cannot: "The accuracy of the facts. Skipped when FEAT does not list MLST.",
            uploads: false, run: mlsd,
        },
        check! {
            id: "data.prot-c-refused", group: Data,
            title: "clear data refused with 521 before any 1xx",
            section: "RFC 4217 §10.2",
            proves: "With PROT C, LIST is refused with 521 before any 1xx reply (or PROT C itself is refused), so data cannot travel in clear. A server that sends the listing in clear gets a warning (its policy allows clear data).",
            cannot: "Per-user policies other than this account's; other data commands than LIST.",
            uploads: false, run: prot_c_refused,
        },
        check! {
            id: "data.after-522", group: Data,
            title: "the session works after a failed data connection",
            section: "RFC 4217 §10.2",
            proves: "When the client sends garbage instead of a TLS handshake on a data connection, the server refuses the transfer (522 expected; another code is a warning) and the control connection goes on: NOOP is 200 and the next LIST completes.",
            cannot: "Every way a data handshake can fail (the refusals of data.full-handshake and the foreign-session checks are other ways).",
            uploads: false, run: after_522,
        },
        check! {
            id: "data.repeated-transfers", group: Data,
            title: "several protected uploads, then downloads",
            section: "RFC 4217 §10.2, RFC 959 §4.1.3",
            proves: "On one control connection, five uploads (0 B to 1 MB) then five downloads of them all complete with 226 and the same bytes, each data connection resuming the control connection's session — with TLS 1.3 and with TLS 1.2, where the server takes them. The files are deleted afterwards.",
            cannot: "Longer sequences, parallel transfers, or clients that use each TLS 1.3 ticket more than once.",
            uploads: true, run: repeated,
        },
    ]
}

/// A transfer that worked, or the reason it did not.
pub fn judge(what: &str, t: &Transfer) -> Outcome {
    if !t.completed() {
        let why = match (&t.tls_error, &t.last) {
            (Some(e), _) => format!("data TLS failed ({e}); {}", last_line(t)),
            (None, _) => last_line(t),
        };
        return Outcome::fail(format!("{what}: {why}"));
    }
    if t.tls.is_none() {
        return Outcome::fail(format!("{what}: the data connection did not run TLS"));
    }
    if !t.clean_end {
        return Outcome::warn(format!(
            "{what}: completed, but the data ended without close_notify (a client cannot tell it from a truncation)"
        ));
    }
    let resumed = t.tls.as_ref().is_some_and(|i| i.resumed);
    Outcome::pass(format!(
        "{what}: 150, {} bytes over TLS ({}), close_notify, {}",
        t.bytes,
        if resumed {
            "session resumed"
        } else {
            "full handshake"
        },
        last_line(t)
    ))
}

async fn list(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(Versions::Any).await?;
    let t = ctx
        .own_transfer(&mut s, "LIST", Direction::Download)
        .await?;
    s.conn.quit().await;
    Ok(judge("LIST", &t))
}

async fn retr(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(Versions::Any).await?;
    let mut uploaded = None;
    let path = if let Some(path) = ctx.env.upload_path(&ctx.scratch_name("retr")) {
        let content = ftps_content(4096);
        let up = ctx
            .own_transfer(&mut s, &format!("STOR {path}"), Direction::Upload(&content))
            .await?;
        if !up.completed() {
            s.conn.quit().await;
            return Ok(Outcome::warn(format!(
                "could not upload a file to download: {}",
                last_line(&up)
            )));
        }
        uploaded = Some(content);
        path
    } else if let Some(file) = ctx.facts.files.iter().min_by_key(|f| f.size) {
        file.path.clone()
    } else {
        s.conn.quit().await;
        return Ok(Outcome::skip(
            "no file to download: the login directory lists none (give --dir to upload one)",
        ));
    };
    let t = ctx
        .own_transfer(&mut s, &format!("RETR {path}"), Direction::Download)
        .await?;
    if uploaded.is_some() {
        ctx.remove(&mut s.conn, &path).await;
    }
    s.conn.quit().await;
    let outcome = judge(&format!("RETR {path}"), &t);
    if let Some(content) = uploaded {
        if t.completed() && t.data != content {
            return Ok(Outcome::fail(format!(
                "RETR {path}: {} bytes came back, not the {} uploaded",
                t.bytes,
                content.len()
            )));
        }
    }
    Ok(outcome)
}

async fn mlsd(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    if !ctx.facts.has_feature("MLST") {
        return Ok(Outcome::skip(
            "FEAT does not list MLST: the server has no MLSD",
        ));
    }
    let mut s = ctx.session(Versions::Any).await?;
    let t = ctx
        .own_transfer(&mut s, "MLSD", Direction::Download)
        .await?;
    s.conn.quit().await;
    let outcome = judge("MLSD", &t);
    if outcome.verdict == crate::report::Verdict::Fail {
        return Ok(outcome);
    }
    let bad: Vec<String> = t
        .data
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .filter(|l| ftps_proto::facts::parse_entry(l).is_err())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    if let Some(first) = bad.first() {
        return Ok(Outcome::fail(format!(
            "{} MLSD lines are not RFC 3659 facts, e.g. {first:?}",
            bad.len()
        )));
    }
    Ok(outcome)
}

async fn prot_c_refused(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(Versions::Any).await?;
    let prot = s.conn.cmd("PROT C").await?;
    if !prot.is_completion() {
        s.conn.quit().await;
        return Ok(Outcome::pass(format!(
            "PROT C itself refused: {}",
            line_of(&prot)
        )));
    }
    let t = ctx
        .transfer_with(&mut s, "LIST", DataTls::Plain, Direction::Download)
        .await?;
    s.conn.quit().await;
    Ok(match (&t.preliminary, t.last_code()) {
        (None, Some(521)) => Outcome::pass(format!("LIST with PROT C: {}", last_line(&t))),
        (None, Some(code)) if code >= 400 => Outcome::fail(format!(
            "LIST with PROT C refused, but with {} (521 expected)",
            last_line(&t)
        )),
        (Some(_), _) if t.completed() => Outcome::warn(format!(
            "the server sends data in clear after PROT C ({} bytes, {}): its policy allows unprotected data",
            t.bytes,
            last_line(&t)
        )),
        (Some(first), _) => Outcome::fail(format!(
            "refused only after {} ({}): RFC 4217 §10.2 asks for 521 before any 1xx",
            line_of(first),
            last_line(&t)
        )),
        _ => Outcome::fail(format!("LIST with PROT C: {}", last_line(&t))),
    })
}

async fn after_522(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(Versions::Any).await?;
    let label = ctx.data_label();
    let addr = data::passive(&mut s.conn).await?;
    let mut tcp = data::connect(addr, &label, &ctx.rec, ctx.env.limits.reply).await?;
    let first = s.conn.cmd("LIST").await?;
    if !first.is_preliminary() {
        s.conn.quit().await;
        return Ok(Outcome::warn(format!("LIST: {}", line_of(&first))));
    }
    use tokio::io::AsyncWriteExt;
    let garbage: Vec<u8> = (0..512u32).map(|i| (i * 7 + 3) as u8).collect();
    ctx.rec.push(
        &label,
        crate::evidence::Kind::Sent,
        "512 bytes that are not a ClientHello",
    );
    let _ = tcp.write_all(&garbage).await;
    let refusal = match s.conn.reply().await {
        Ok(r) => r,
        Err(e) => {
            return Ok(Outcome::fail(format!(
                "the control connection broke after the failed data connection: {e}"
            )))
        }
    };
    drop(tcp);
    let noop = s.conn.cmd("NOOP").await;
    let next = match noop {
        Ok(ref r) if r.is_completion() => ctx
            .own_transfer(&mut s, "LIST", Direction::Download)
            .await
            .ok(),
        _ => None,
    };
    s.conn.quit().await;
    let works = next.as_ref().is_some_and(Transfer::completed);
    Ok(if !works {
        Outcome::fail(format!(
            "after {} the session did not go on: NOOP {}, next LIST {}",
            line_of(&refusal),
            crate::context::shown(&noop),
            next.as_ref()
                .map(last_line)
                .unwrap_or_else(|| "not tried".into())
        ))
    } else if refusal.code == 522 {
        Outcome::pass(format!(
            "{}; then NOOP 200 and a LIST completed",
            line_of(&refusal)
        ))
    } else if refusal.is_completion() {
        Outcome::fail(format!(
            "the failed data connection was reported as {}",
            line_of(&refusal)
        ))
    } else {
        Outcome::warn(format!(
            "refused with {} (522 expected); the session goes on",
            line_of(&refusal)
        ))
    })
}

/// Deterministic content that is easy to recognise.
pub fn ftps_content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Note how many TLS 1.3 tickets the session holds before a transfer.
fn tickets_note(ctx: &Ctx, s: &Session) -> usize {
    let held = s.store.tickets();
    if s.versions == Versions::Tls13 {
        ctx.note(format!("TLS 1.3 tickets held: {held}"));
    }
    held
}

/// Why a TLS 1.3 transfer may have been refused: no ticket was left to
/// resume (this client uses each ticket once, as RFC 8446 §C.4 advises).
fn out_of_tickets(s: &Session, held: usize) -> String {
    if s.versions == Versions::Tls13 && held == 0 {
        format!(
            " (no TLS 1.3 ticket was left to resume: the server issued {} in all, each used once as RFC 8446 §C.4 advises)",
            s.store.received().0
        )
    } else {
        String::new()
    }
}

async fn repeated_once(
    ctx: &mut Ctx,
    versions: Versions,
) -> Result<Result<String, String>, ProbeError> {
    let mut s: Session = match ctx.session(versions).await {
        Ok(s) => s,
        Err(ProbeError::Tls(e)) => {
            return Ok(Err(format!("{} not available: {e}", versions.name())))
        }
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    let mut failure = None;
    for (i, size) in REPEATED_SIZES.iter().enumerate() {
        let Some(path) = ctx.env.upload_path(&ctx.scratch_name(&format!("seq{i}"))) else {
            break;
        };
        let content = ftps_content(*size);
        let held = tickets_note(ctx, &s);
        let t = ctx
            .own_transfer(&mut s, &format!("STOR {path}"), Direction::Upload(&content))
            .await?;
        if t.preliminary.is_some() {
            names.push((path.clone(), content));
        }
        if !t.completed() {
            failure = Some(format!(
                "upload {} ({} bytes): {}{}",
                i + 1,
                size,
                last_line(&t),
                out_of_tickets(&s, held)
            ));
            break;
        }
    }
    if failure.is_none() {
        for (i, (path, content)) in names.iter().enumerate() {
            let held = tickets_note(ctx, &s);
            let t = ctx
                .own_transfer(&mut s, &format!("RETR {path}"), Direction::Download)
                .await?;
            if !t.completed() {
                failure = Some(format!(
                    "download {}: {}{}",
                    i + 1,
                    last_line(&t),
                    out_of_tickets(&s, held)
                ));
                break;
            }
            if &t.data != content {
                failure = Some(format!(
                    "download {}: {} bytes, not the {} uploaded",
                    i + 1,
                    t.bytes,
                    content.len()
                ));
                break;
            }
        }
    }
    for (path, _) in &names {
        ctx.remove(&mut s.conn, path).await;
    }
    s.conn.quit().await;
    Ok(match failure {
        Some(f) => Err(format!("{}: {f}", versions.name())),
        None => Ok(format!("{}: 5 uploads and 5 downloads", versions.name())),
    })
}

async fn repeated(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let mut unavailable = Vec::new();
    for versions in [Versions::Tls13, Versions::Tls12] {
        match repeated_once(ctx, versions).await? {
            Ok(text) => done.push(text),
            Err(text) if text.contains("not available") => unavailable.push(text),
            Err(text) => failed.push(text),
        }
    }
    Ok(if !failed.is_empty() {
        Outcome::fail(failed.join("; "))
    } else if done.is_empty() {
        Outcome::warn(format!(
            "no TLS version to run them with: {}",
            unavailable.join("; ")
        ))
    } else {
        Outcome::pass(done.join("; "))
    })
}
