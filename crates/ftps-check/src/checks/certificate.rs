//! The server certificate (RFC 4217 §15.1.1, RFC 5280, RFC 6125, RFC 9325
//! §4.3): whether its chain verifies against the system's roots (or the
//! user's `--cacert`), whether it names the host, whether it is in its
//! validity period, and the strength of its key and signatures.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::check;
use crate::check::Check;
use crate::context::{Ctx, Endpoint};
use crate::probe::tls::{ProbeStore, Versions};
use crate::probe::ProbeError;
use crate::report::Outcome;

/// Days before expiry from which a certificate gets a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// Signature algorithms that no longer protect a certificate (OIDs).
const WEAK_SIGNATURES: [(&str, &str); 4] = [
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.10040.4.3", "dsa-with-sha1"),
];

/// The certificate checks.
pub fn checks() -> Vec<Check> {
    vec![
        check! {
            id: "tls.certificate-chain", group: Tls,
            title: "certificate chain verifies",
            section: "RFC 4217 §15.1.1, RFC 5280 §6",
            proves: "The chain the server sends verifies up to a root the system trusts (or, with --cacert, to that file): any client can authenticate the server without a pin.",
            cannot: "Revocation (no OCSP or CRL is fetched), Certificate Transparency, and what other clients' trust stores hold.",
            uploads: false, run: chain,
        },
        check! {
            id: "tls.certificate-name", group: Tls,
            title: "certificate names the host",
            section: "RFC 6125, RFC 4217 §15.1.1",
            proves: "The certificate's subject alternative names include the host of the URL (a DNS name or an IP address), whatever trust option the audit ran with.",
            cannot: "Other names clients may use for the same server.",
            uploads: false, run: name,
        },
        check! {
            id: "tls.certificate-expiry", group: Tls,
            title: "certificates within their validity",
            section: "RFC 5280 §4.1.2.5",
            proves: "Every certificate the server sends is valid now; fewer than 30 days left is a warning.",
            cannot: "The machine's clock is taken as right.",
            uploads: false, run: expiry,
        },
        check! {
            id: "tls.certificate-key", group: Tls,
            title: "certificate key and signature strength",
            section: "RFC 9325 §4.3, §4.4",
            proves: "The server's key is RSA of at least 2048 bits or an elliptic-curve key, and no certificate in the chain (other than a self-signed root, whose signature nobody checks) is signed with MD5 or SHA-1.",
            cannot: "The quality of the key's randomness, or keys the server uses for other names.",
            uploads: false, run: key,
        },
    ]
}

/// The server's chain from a full handshake (a fresh session store).
async fn server_chain(ctx: &mut Ctx) -> Result<Vec<CertificateDer<'static>>, ProbeError> {
    let store = ProbeStore::new();
    let conn = ctx.secured(Endpoint::Main, Versions::Any, &store).await?;
    let chain = conn
        .tls()
        .and_then(|t| t.peer_certificates())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    conn.quit().await;
    if chain.is_empty() {
        return Err(ProbeError::Local("the server sent no certificate".into()));
    }
    for (i, cert) in chain.iter().enumerate() {
        if let Ok((_, parsed)) = X509Certificate::from_der(cert.as_ref()) {
            ctx.note(format!(
                "certificate {i}: subject {}, issuer {}, valid {} to {}",
                parsed.subject(),
                parsed.issuer(),
                parsed.validity().not_before,
                parsed.validity().not_after
            ));
        }
    }
    Ok(chain)
}

fn verify_with(
    roots: RootCertStore,
    chain: &[CertificateDer<'static>],
    name: &ServerName<'static>,
) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
    let (ee, rest) = chain.split_first().ok_or("no certificate")?;
    verifier
        .verify_server_cert(ee, rest, name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| format!("{e}"))
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

async fn chain(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let chain = server_chain(ctx).await?;
    let name = ctx.env.tls.name.clone();
    let system = verify_with(system_roots(), &chain, &name);
    if system.is_ok() {
        return Ok(Outcome::pass("verifies against the system's trusted roots"));
    }
    let system_err = system.err().unwrap_or_default();
    if let Some(path) = ctx.env.trust.ca_file.clone() {
        let file: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| ProbeError::Local(format!("--cacert {}: {e}", path.display())))?;
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(file.clone());
        let by_file = verify_with(roots, &chain, &name);
        let exact = chain.first().is_some_and(|ee| file.iter().any(|c| c == ee));
        if by_file.is_ok() || exact {
            return Ok(Outcome::pass(format!(
                "verifies against --cacert {} (not against the system's roots: {system_err})",
                path.display()
            )));
        }
        return Ok(Outcome::fail(format!(
            "verifies neither against the system's roots ({system_err}) nor against --cacert"
        )));
    }
    if ctx.env.trust.pin.is_some() {
        return Ok(Outcome::warn(format!(
            "trusted here by its pinned key only; clients without the pin cannot verify it: {system_err}"
        )));
    }
    Ok(Outcome::fail(format!(
        "not trusted by the system's roots ({system_err}); the audit ran with --insecure"
    )))
}

async fn name(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let chain = server_chain(ctx).await?;
    let Some(ee) = chain.first() else {
        return Ok(Outcome::fail("no certificate"));
    };
    let parsed = rustls::server::ParsedCertificate::try_from(ee)?;
    let name = ctx.env.tls.name.clone();
    Ok(match rustls::client::verify_server_name(&parsed, &name) {
        Ok(()) => Outcome::pass(format!("names {}", ctx.env.host)),
        Err(e) => Outcome::fail(format!("does not name {}: {e}", ctx.env.host)),
    })
}

async fn expiry(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let chain = server_chain(ctx).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut soonest: Option<(i64, String)> = None;
    for (i, cert) in chain.iter().enumerate() {
        let Ok((_, parsed)) = X509Certificate::from_der(cert.as_ref()) else {
            return Ok(Outcome::fail(format!("certificate {i} cannot be parsed")));
        };
        let validity = parsed.validity();
        if validity.not_before.timestamp() > now {
            return Ok(Outcome::fail(format!(
                "certificate {i} is not valid before {}",
                validity.not_before
            )));
        }
        let end = validity.not_after.timestamp();
        if end < now {
            return Ok(Outcome::fail(format!(
                "certificate {i} expired on {}",
                validity.not_after
            )));
        }
        if soonest.as_ref().is_none_or(|(s, _)| end < *s) {
            soonest = Some((end, validity.not_after.to_string()));
        }
    }
    let Some((end, when)) = soonest else {
        return Ok(Outcome::fail("no certificate"));
    };
    let days = (end - now) / 86_400;
    Ok(if days < EXPIRY_WARNING_DAYS {
        Outcome::warn(format!("the chain expires in {days} days ({when})"))
    } else {
        Outcome::pass(format!("valid for {days} more days (until {when})"))
    })
}

async fn key(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let chain = server_chain(ctx).await?;
    let mut problems = Vec::new();
    let mut described = String::new();
    for (i, cert) in chain.iter().enumerate() {
        let Ok((_, parsed)) = X509Certificate::from_der(cert.as_ref()) else {
            return Ok(Outcome::fail(format!("certificate {i} cannot be parsed")));
        };
        if i == 0 {
            described = match parsed.public_key().parsed() {
                Ok(PublicKey::RSA(rsa)) => {
                    let bits = rsa.key_size();
                    if bits < 2048 {
                        problems.push(format!("RSA key of {bits} bits"));
                    }
                    format!("RSA {bits} bits")
                }
                Ok(PublicKey::EC(ec)) => format!("EC {} bits", ec.key_size()),
                Ok(other) => format!("{other:?}").chars().take(40).collect(),
                Err(_) => "unreadable key".into(),
            };
        }
        let self_signed = parsed.subject() == parsed.issuer();
        let oid = parsed.signature_algorithm.algorithm.to_id_string();
        if let Some((_, weak)) = WEAK_SIGNATURES.iter().find(|(o, _)| *o == oid) {
            if !self_signed {
                problems.push(format!("certificate {i} signed with {weak}"));
            } else {
                ctx.note(format!(
                    "certificate {i} is self-signed with {weak} (not checked by clients)"
                ));
            }
        }
    }
    Ok(if problems.is_empty() {
        Outcome::pass(format!("{described}; no MD5 or SHA-1 signatures"))
    } else {
        Outcome::fail(problems.join("; "))
    })
}
