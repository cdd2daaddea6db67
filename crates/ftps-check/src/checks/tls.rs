//! TLS posture (RFC 8996, RFC 9325, RFC 5746, RFC 4217 §15.1): protocol
//! versions and cipher suites offered, compression and renegotiation — from
//! raw ClientHellos where rustls cannot ask (`probe::hello`) — and the
//! certificate (`certificate.rs`).

use tokio::net::TcpStream;

use crate::check;
use crate::check::Check;
use crate::context::{greeting, Ctx, Endpoint};
use crate::evidence::Kind;
use crate::probe::control::refused;
use crate::probe::hello::{
    self, broken, cbc, exchange, forward_secret, legacy_suites, suite_name, tls13_suites,
    version_name, Answer, Hello, SSL3, TLS10, TLS11, TLS12, TLS13,
};
use crate::probe::ProbeError;
use crate::report::Outcome;

use super::certificate;

/// Suites a server may accept before the enumeration stops (a bound).
const MAX_SUITES: usize = 64;

/// The TLS checks.
pub fn checks() -> Vec<Check> {
    let mut list = vec![
        check! {
            id: "tls.versions", group: Tls,
            title: "protocol versions accepted",
            section: "RFC 8996, RFC 9325 §3.1",
            proves: "The server answered a ClientHello for each of SSL 3.0, TLS 1.0, TLS 1.1, TLS 1.2 and TLS 1.3 offering only that version, with every registered cipher suite: a ServerHello of that version means it is accepted. Anything below TLS 1.2 accepted is a failure; no TLS 1.3 is a warning.",
            cannot: "SSL 2.0 (its ClientHello format is not sent). A server may accept a version only with suites or extensions not offered here, or only on other ports or for other SNI names.",
            uploads: false, run: versions,
        },
        check! {
            id: "tls.cipher-suites", group: Tls,
            title: "cipher suites accepted (forward secrecy)",
            section: "RFC 9325 §4.1, §4.2",
            proves: "Every cipher suite the server accepts with TLS 1.2 and 1.3, found by offering all registered suites and removing each one it chooses until it refuses. A suite without forward secrecy (static RSA or DH key exchange), with a broken cipher (NULL, RC4, DES, 3DES, export, anonymous, MD5) or a DHE prime under 2048 bits is a failure; CBC suites are a warning.",
            cannot: "Suites the server accepts only with extensions or groups not offered here. The order of preference is not reported. Older versions' suites are covered only as far as tls.versions finds the version refused.",
            uploads: false, run: cipher_suites,
        },
        check! {
            id: "tls.compression", group: Tls,
            title: "no TLS compression",
            section: "RFC 9325 §3.3 (CRIME)",
            proves: "Offered DEFLATE and no compression with TLS 1.2 (or the best older version the server takes), the server chose no compression.",
            cannot: "Compression above TLS (FTP MODE Z) is not looked at.",
            uploads: false, run: compression,
        },
        check! {
            id: "tls.renegotiation", group: Tls,
            title: "secure renegotiation",
            section: "RFC 5746, RFC 9325 §3.5",
            proves: "With TLS 1.2 the server's ServerHello carries the renegotiation_info extension (RFC 5746), so a renegotiation could not be spliced onto another connection; with TLS 1.3 only, there is no renegotiation at all. Whether extended_master_secret (RFC 7627) is offered is shown in the evidence.",
            cannot: "Whether the server accepts or starts a renegotiation: rustls never renegotiates and the checker completes no TLS 1.2 handshake by hand, so client-initiated renegotiation (a denial-of-service vector) is not tried.",
            uploads: false, run: renegotiation,
        },
    ];
    list.extend(certificate::checks());
    list
}

/// A TCP stream where a ClientHello goes: after `AUTH TLS` and 234 on an
/// explicit endpoint, at once on an implicit one.
pub async fn raw_tls_start(ctx: &mut Ctx) -> Result<(TcpStream, String), ProbeError> {
    let endpoint = Endpoint::Main;
    let mut conn = ctx.tcp(endpoint).await?;
    let label = conn.label.clone();
    if !ctx.env.is_implicit(endpoint) {
        greeting(&mut conn).await?;
        let reply = conn.cmd("AUTH TLS").await?;
        if reply.code != 234 {
            return Err(refused("AUTH TLS", &reply));
        }
    }
    let tcp = conn
        .into_plain()
        .ok_or_else(|| ProbeError::Local("no plain stream".into()))?;
    Ok((tcp, label))
}

/// Send one ClientHello on a fresh connection and record both sides.
pub async fn offer(ctx: &mut Ctx, hello: &Hello) -> Result<Answer, ProbeError> {
    let (mut tcp, label) = raw_tls_start(ctx).await?;
    let comp = if hello.compression.contains(&1) {
        ", DEFLATE offered"
    } else {
        ""
    };
    ctx.rec.push(
        &label,
        Kind::Tls,
        format!(
            "ClientHello {} with {} suites{comp}",
            version_name(hello.version),
            hello.suites.len()
        ),
    );
    let answer = exchange(&mut tcp, hello, ctx.env.limits.reply).await;
    ctx.rec.push(&label, Kind::Tls, answer.describe());
    Ok(answer)
}

fn hello(ctx: &Ctx, version: u16, suites: Vec<u16>) -> Hello {
    Hello {
        version,
        suites,
        compression: vec![0],
        sni: ctx.env.sni(),
    }
}

/// The verdict on the versions accepted and refused.
fn versions_outcome(accepted: &[u16], refused_list: &[u16]) -> Outcome {
    let names = |list: &[u16]| {
        list.iter()
            .map(|v| version_name(*v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let old: Vec<u16> = accepted.iter().copied().filter(|v| *v < TLS12).collect();
    let summary = format!(
        "accepted: {}; refused: {}",
        if accepted.is_empty() {
            "none".into()
        } else {
            names(accepted)
        },
        if refused_list.is_empty() {
            "none".into()
        } else {
            names(refused_list)
        }
    );
    if !old.is_empty() {
        Outcome::fail(format!(
            "{} accepted (RFC 8996 forbids them); {summary}",
            names(&old)
        ))
    } else if !accepted.contains(&TLS12) && !accepted.contains(&TLS13) {
        Outcome::fail(format!("neither TLS 1.2 nor TLS 1.3 accepted; {summary}"))
    } else if !accepted.contains(&TLS13) {
        Outcome::warn(format!(
            "no TLS 1.3 (RFC 9325 §3.1 recommends it); {summary}"
        ))
    } else {
        Outcome::pass(summary)
    }
}

async fn versions(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut accepted = Vec::new();
    let mut refused_list = Vec::new();
    for v in [SSL3, TLS10, TLS11, TLS12, TLS13] {
        let suites = if v == TLS13 {
            tls13_suites()
        } else {
            legacy_suites()
        };
        let h = hello(ctx, v, suites);
        match offer(ctx, &h).await? {
            Answer::Hello(sh) if sh.version == v => accepted.push(v),
            Answer::Hello(sh) if sh.version < v && !accepted.contains(&sh.version) => {
                ctx.note(format!(
                    "answered {} to a {} ClientHello",
                    version_name(sh.version),
                    version_name(v)
                ));
                accepted.push(sh.version);
                refused_list.push(v);
            }
            _ => refused_list.push(v),
        }
    }
    Ok(versions_outcome(&accepted, &refused_list))
}

/// The suites a server accepts with one version, found by removing each
/// chosen suite from the offer until the server refuses.
async fn enumerate(
    ctx: &mut Ctx,
    version: u16,
    all: Vec<u16>,
) -> Result<Vec<(u16, Option<usize>)>, ProbeError> {
    let mut found: Vec<(u16, Option<usize>)> = Vec::new();
    while found.len() < MAX_SUITES {
        let offered: Vec<u16> = all
            .iter()
            .copied()
            .filter(|id| !found.iter().any(|(f, _)| f == id))
            .collect();
        if offered.is_empty() {
            break;
        }
        let h = hello(ctx, version, offered.clone());
        match offer(ctx, &h).await? {
            Answer::Hello(sh) if sh.version == version && offered.contains(&sh.suite) => {
                found.push((sh.suite, sh.dh_prime_bits));
            }
            _ => break,
        }
    }
    Ok(found)
}

/// The verdict on the suites accepted (with the DH prime size of DHE
/// suites), and a note per suite.
fn suites_outcome(
    tls12: &[(u16, Option<usize>)],
    tls13: &[(u16, Option<usize>)],
) -> (Outcome, Vec<String>) {
    let mut notes = Vec::new();
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    for (version, list) in [(TLS12, tls12), (TLS13, tls13)] {
        for (id, dh_bits) in list {
            let name = suite_name(*id);
            let mut what = Vec::new();
            if !forward_secret(*id) {
                what.push("no forward secrecy".to_string());
                fails.push(format!("{name} (no forward secrecy)"));
            }
            if let Some(why) = broken(*id) {
                what.push(why.to_string());
                fails.push(format!("{name} ({why})"));
            }
            if let Some(bits) = dh_bits {
                what.push(format!("DH prime {bits} bits"));
                if *bits < 2048 {
                    fails.push(format!("{name} (DH prime of {bits} bits)"));
                }
            }
            if cbc(*id) {
                what.push("CBC".into());
                warns.push(name.clone());
            }
            if what.is_empty() {
                what.push("forward secret, AEAD".into());
            }
            notes.push(format!(
                "{}: {name} — {}",
                version_name(version),
                what.join(", ")
            ));
        }
    }
    let summary = format!(
        "TLS 1.2: {} suites, TLS 1.3: {} suites",
        tls12.len(),
        tls13.len()
    );
    let outcome = if tls12.is_empty() && tls13.is_empty() {
        Outcome::fail("no cipher suite accepted with TLS 1.2 or 1.3")
    } else if !fails.is_empty() {
        Outcome::fail(format!("{summary}; unacceptable: {}", fails.join(", ")))
    } else if !warns.is_empty() {
        Outcome::warn(format!(
            "{summary}; CBC suites accepted (RFC 9325 §4.2 recommends AEAD only): {}",
            warns.join(", ")
        ))
    } else {
        Outcome::pass(format!("{summary}, all forward-secret AEAD"))
    };
    (outcome, notes)
}

async fn cipher_suites(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let tls12 = enumerate(ctx, TLS12, legacy_suites()).await?;
    let tls13 = enumerate(ctx, TLS13, tls13_suites()).await?;
    let (outcome, notes) = suites_outcome(&tls12, &tls13);
    for note in notes {
        ctx.note(note);
    }
    Ok(outcome)
}

/// A ServerHello for TLS 1.2 (or the best older version accepted), with
/// DEFLATE offered too; `None` when the server takes only TLS 1.3.
async fn legacy_hello(ctx: &mut Ctx) -> Result<Option<hello::ServerHello>, ProbeError> {
    for v in [TLS12, TLS11, TLS10] {
        let mut h = hello(ctx, v, legacy_suites());
        h.compression = vec![1, 0];
        if let Answer::Hello(sh) = offer(ctx, &h).await? {
            if sh.version < TLS13 {
                return Ok(Some(sh));
            }
        }
    }
    Ok(None)
}

async fn compression(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    Ok(match legacy_hello(ctx).await? {
        None => Outcome::pass("only TLS 1.3 accepted, which has no compression"),
        Some(sh) if sh.compression == 0 => Outcome::pass(format!(
            "{}: DEFLATE offered, no compression chosen",
            version_name(sh.version)
        )),
        Some(sh) => Outcome::fail(format!(
            "{}: compression method {} chosen (CRIME)",
            version_name(sh.version),
            sh.compression
        )),
    })
}

async fn renegotiation(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let Some(sh) = legacy_hello(ctx).await? else {
        return Ok(Outcome::pass(
            "only TLS 1.3 accepted, which has no renegotiation",
        ));
    };
    ctx.note(format!(
        "extended_master_secret (RFC 7627): {}",
        if sh.extended_master_secret {
            "offered"
        } else {
            "not offered"
        }
    ));
    Ok(if sh.secure_renegotiation {
        Outcome::pass(format!(
            "{}: renegotiation_info in the ServerHello (RFC 5746); client-initiated renegotiation not tried",
            version_name(sh.version)
        ))
    } else {
        Outcome::warn(format!(
            "{}: no renegotiation_info in the ServerHello: should the server renegotiate, it is open to CVE-2009-3555",
            version_name(sh.version)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;

    #[test]
    fn rfc8996_versions_below_tls12_fail_and_no_tls13_warns() {
        assert_eq!(
            versions_outcome(&[TLS12, TLS13], &[SSL3, TLS10, TLS11]).verdict,
            Verdict::Pass
        );
        let old = versions_outcome(&[TLS10, TLS12, TLS13], &[SSL3, TLS11]);
        assert_eq!(old.verdict, Verdict::Fail);
        assert!(
            old.summary.starts_with("TLS 1.0 accepted"),
            "{}",
            old.summary
        );
        assert_eq!(versions_outcome(&[TLS12], &[TLS13]).verdict, Verdict::Warn);
        assert_eq!(
            versions_outcome(&[], &[TLS12, TLS13]).verdict,
            Verdict::Fail
        );
    }

    #[test]
    fn rfc9325_suites_without_forward_secrecy_or_with_small_dh_fail_and_cbc_warns() {
        let aead = [(0xc02b, None), (0xc030, None)];
        let tls13 = [(0x1301, None)];
        assert_eq!(suites_outcome(&aead, &tls13).0.verdict, Verdict::Pass);
        // TLS_RSA_WITH_AES_128_GCM_SHA256: static RSA.
        let (o, notes) = suites_outcome(&[(0xc02b, None), (0x009c, None)], &tls13);
        assert_eq!(o.verdict, Verdict::Fail);
        assert!(
            o.summary
                .contains("TLS_RSA_WITH_AES_128_GCM_SHA256 (no forward secrecy)"),
            "{}",
            o.summary
        );
        assert_eq!(notes.len(), 3);
        // TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 with a 1024-bit prime.
        let (o, _) = suites_outcome(&[(0x009e, Some(1024))], &tls13);
        assert_eq!(o.verdict, Verdict::Fail);
        assert!(o.summary.contains("DH prime of 1024 bits"), "{}", o.summary);
        assert_eq!(
            suites_outcome(&[(0x009e, Some(2048))], &tls13).0.verdict,
            Verdict::Pass
        );
        // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: forward secret, CBC.
        assert_eq!(
            suites_outcome(&[(0xc009, None)], &tls13).0.verdict,
            Verdict::Warn
        );
        // 3DES.
        assert_eq!(
            suites_outcome(&[(0xc012, None)], &tls13).0.verdict,
            Verdict::Fail
        );
        assert_eq!(suites_outcome(&[], &[]).0.verdict, Verdict::Fail);
    }
}
