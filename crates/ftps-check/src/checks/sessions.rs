//! Whose TLS session a data connection may use (RFC 4217 §10.2, §15.1.2,
//! §15.2.6, §18): a full handshake (no session at all), the session of
//! *another* control connection (TLS 1.2 and TLS 1.3), and a client
//! certificate other than the control connection's.
//!
//! Binding a data connection to its control connection's TLS session is
//! what stops a third party who races the client to the passive port: it
//! can open a TCP connection, but it has no session of that control
//! connection to resume.

use crate::check;
use crate::check::Check;
use crate::context::Ctx;
use crate::probe::data::{last_line, DataTls, Direction, Transfer};
use crate::probe::tls::{throwaway_client_certificate, Versions};
use crate::probe::ProbeError;
use crate::report::Outcome;

/// The checks on data-connection sessions.
pub fn checks() -> Vec<Check> {
    vec![
        check! {
            id: "data.full-handshake", group: Data,
            title: "data connection with a full handshake",
            section: "RFC 4217 §10.2, §18",
            proves: "What the server does with a data connection that resumes no session (a fresh TLS handshake): refused (it insists on the control connection's session — the port cannot be taken by someone without it) passes; accepted is a warning: data connections are then bound to the control connection by nothing but the IP address (RFC 4217 lets a server insist, it does not require it).",
            cannot: "Why a refusal happened (the server's reply text may say).",
            uploads: false, run: full_handshake,
        },
        check! {
            id: "data.foreign-session-tls12", group: Data,
            title: "data connection resuming another connection's TLS 1.2 session",
            section: "RFC 4217 §10.2, §15.2.6",
            proves: "A data connection of control connection B that resumes the TLS 1.2 session of control connection A (same account, same client) is refused. Accepted after resuming it is a failure (the session does not bind data to control); when the server does not resume A's session but accepts a full handshake instead, the verdict is that of data.full-handshake.",
            cannot: "Sessions of other clients' or other accounts' connections (the same would hold). Skipped when TLS 1.2 is not offered or connection A got no session to resume.",
            uploads: false, run: foreign_tls12,
        },
        check! {
            id: "data.foreign-session-tls13", group: Data,
            title: "data connection resuming another connection's TLS 1.3 session",
            section: "RFC 4217 §10.2, §15.2.6",
            proves: "The same with TLS 1.3: a ticket that control connection A received, offered on a data connection of control connection B, is refused. Servers that only check \"was a session resumed\" accept it (stateless tickets are valid across connections), which is a failure.",
            cannot: "As for TLS 1.2. Skipped when TLS 1.3 is not offered or A received no ticket.",
            uploads: false, run: foreign_tls13,
        },
        check! {
            id: "data.client-certificate", group: Data,
            title: "data connection with another client certificate",
            section: "RFC 4217 §10.2, §15.1.2",
            proves: "When the server asks for client certificates (a CertificateRequest was seen): a data connection presenting a certificate other than the control connection's (a fresh self-signed one) is refused.",
            cannot: "Whether the server compares the two certificates or merely refuses one it cannot verify (the throwaway certificate is signed by no CA the server trusts, and a different certificate needs a full handshake, which data.full-handshake may show refused anyway). Skipped when no CertificateRequest was seen.",
            uploads: false, run: client_certificate,
        },
    ]
}

fn accepted(t: &Transfer) -> bool {
    t.completed()
}

fn refusal(t: &Transfer) -> String {
    match &t.tls_error {
        Some(e) => format!("handshake refused ({e}); {}", last_line(t)),
        None => last_line(t),
    }
}

async fn full_handshake(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(Versions::Any).await?;
    let config = ctx.env.tls.config(Versions::Any, None);
    let t = ctx
        .transfer_with(&mut s, "LIST", DataTls::With(config), Direction::Download)
        .await?;
    // The session still works afterwards (it is not the point here, but a
    // refusal must not break it).
    s.conn.quit().await;
    ctx.facts.full_handshake_accepted = Some(accepted(&t));
    Ok(if accepted(&t) {
        Outcome::warn(format!(
            "accepted ({}): data connections are not tied to the control connection's TLS session",
            last_line(&t)
        ))
    } else if t.preliminary.is_none() {
        Outcome::warn(format!(
            "LIST refused before the data connection: {}",
            last_line(&t)
        ))
    } else {
        Outcome::pass(format!("refused: {}", refusal(&t)))
    })
}

async fn foreign(ctx: &mut Ctx, versions: Versions) -> Result<Outcome, ProbeError> {
    let mut a = match ctx.session(versions).await {
        Ok(s) => s,
        Err(ProbeError::Tls(e)) => {
            return Ok(Outcome::skip(format!(
                "{} not available: {e}",
                versions.name()
            )))
        }
        Err(e) => return Err(e),
    };
    // TLS 1.3 tickets arrive after the handshake: a NOOP makes sure they are read.
    a.conn.cmd("NOOP").await?;
    if !a.store.can_resume() {
        let label = a.conn.label.clone();
        a.conn.quit().await;
        return Ok(Outcome::skip(format!(
            "control connection {label} got no {} session to resume",
            versions.name()
        )));
    }
    let mut b = ctx.session(versions).await?;
    ctx.note(format!(
        "data connection of {} offered the session of {}",
        b.conn.label, a.conn.label
    ));
    let config = ctx.env.tls.config(versions, Some(&a.store));
    let t = ctx
        .transfer_with(&mut b, "LIST", DataTls::With(config), Direction::Download)
        .await?;
    let (a_label, b_label) = (a.conn.label.clone(), b.conn.label.clone());
    b.conn.quit().await;
    a.conn.quit().await;
    let resumed = t.tls.as_ref().is_some_and(|i| i.resumed);
    Ok(match (accepted(&t), resumed) {
        (true, true) => Outcome::fail(format!(
            "accepted: the server resumed {a_label}'s session on {b_label}'s data connection ({})",
            last_line(&t)
        )),
        (true, false) => Outcome::warn(format!(
            "the server did not resume the foreign session but accepted a full handshake instead ({}): see data.full-handshake",
            last_line(&t)
        )),
        (false, _) if t.preliminary.is_none() => Outcome::warn(format!(
            "LIST refused before the data connection: {}",
            last_line(&t)
        )),
        (false, resumed) => Outcome::pass(format!(
            "refused{}: {}",
            if resumed { " (after resuming it)" } else { "" },
            refusal(&t)
        )),
    })
}

async fn foreign_tls12(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    foreign(ctx, Versions::Tls12).await
}

async fn foreign_tls13(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    foreign(ctx, Versions::Tls13).await
}

async fn client_certificate(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    if !ctx.env.tls.server_asked_for_certificate() {
        return Ok(Outcome::skip(
            "the server never asked for a client certificate (no CertificateRequest)",
        ));
    }
    let mut s = ctx.session(Versions::Any).await?;
    let key = throwaway_client_certificate()?;
    ctx.note("the data connection presents a fresh self-signed certificate");
    let config = ctx.env.tls.config_with_certificate(Versions::Any, key);
    let t = ctx
        .transfer_with(&mut s, "LIST", DataTls::With(config), Direction::Download)
        .await?;
    s.conn.quit().await;
    let full_refused = ctx.facts.full_handshake_accepted == Some(false);
    Ok(if accepted(&t) {
        Outcome::fail(format!(
            "accepted a data connection with another client certificate ({})",
            last_line(&t)
        ))
    } else if full_refused {
        Outcome::pass(format!(
            "refused: {} (full handshakes are refused anyway, so a different certificate cannot reach a data connection)",
            refusal(&t)
        ))
    } else {
        Outcome::pass(format!("refused: {}", refusal(&t)))
    })
}
