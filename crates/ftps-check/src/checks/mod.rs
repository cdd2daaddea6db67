//! The checks, by group: TLS posture and the certificate (`tls`,
//! `certificate`), RFC 4217 / RFC 2228 on the control connection
//! (`control`), data connections (`data`) and whose TLS session they may
//! use (`sessions`), the draft's extras and RFC 959/2428/3659 features
//! (`extras`), and security (`security`). Each module lists its checks
//! with [`crate::check!`]: identifier, section, what a pass proves, what the
//! check cannot see, and the function that runs it.

pub mod certificate;
pub mod control;
pub mod data;
pub mod during;
pub mod extras;
pub mod security;
pub mod sessions;
pub mod tls;

use ftps_proto::reply::Reply;

use crate::context::{greeting, Ctx, Endpoint};
use crate::probe::control::{line_of, Conn};
use crate::probe::tls::{ProbeStore, Versions};
use crate::probe::ProbeError;
use crate::report::Outcome;

/// The verdict on a reply that must have one code: pass on it, fail on
/// any other (a wrong code is a deviation even when it refuses).
pub fn expect_code(what: &str, reply: &Reply, code: u16) -> Outcome {
    if reply.code == code {
        Outcome::pass(format!("{what}: {}", line_of(reply)))
    } else {
        Outcome::fail(format!("{what}: {} (expected {code})", line_of(reply)))
    }
}

/// A plaintext control connection on the explicit endpoint, greeted;
/// `None` when the audit knows no explicit port.
pub async fn plain_explicit(ctx: &mut Ctx) -> Result<Option<Conn>, ProbeError> {
    if ctx.env.addr(Endpoint::Explicit).is_none() {
        return Ok(None);
    }
    let mut conn = ctx.tcp(Endpoint::Explicit).await?;
    greeting(&mut conn).await?;
    Ok(Some(conn))
}

/// An explicit control connection after AUTH TLS and the handshake.
pub async fn secured_explicit(ctx: &mut Ctx) -> Result<Option<Conn>, ProbeError> {
    if ctx.env.addr(Endpoint::Explicit).is_none() {
        return Ok(None);
    }
    let store = ProbeStore::new();
    ctx.secured(Endpoint::Explicit, Versions::Any, &store)
        .await
        .map(Some)
}

/// The skip of a check that needs an explicit FTPS port.
pub fn no_explicit() -> Outcome {
    Outcome::skip("no explicit FTPS port to check: the URL is ftps:// (give --explicit-port PORT)")
}

/// The skip of a check that needs an implicit FTPS port.
pub fn no_implicit() -> Outcome {
    Outcome::skip("no implicit FTPS port to check (give --implicit-port PORT, or an ftps:// URL)")
}
