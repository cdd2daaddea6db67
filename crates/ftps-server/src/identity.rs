//! TLS client certificates as identities (RFC 4217 §12.2, §15.1.2): which
//! user a verified client certificate belongs to — by subject CN, by an
//! e-mail or DNS name in the subject alternative names, or by SHA-256
//! fingerprint — as configured per user.

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::CertificateMatch;

/// What a certificate says about its holder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertIdentity {
    /// Subject common names.
    pub cns: Vec<String>,
    /// rfc822Name subject alternative names.
    pub emails: Vec<String>,
    /// dNSName subject alternative names.
    pub dns_names: Vec<String>,
    /// SHA-256 of the DER certificate, lowercase hex.
    pub sha256: String,
}

impl CertIdentity {
    /// Read the identity of a (TLS-verified) end-entity certificate.
    pub fn from_der(cert: &CertificateDer<'_>) -> Option<CertIdentity> {
        let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
        let cns = parsed
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect();
        let mut emails = Vec::new();
        let mut dns_names = Vec::new();
        if let Ok(Some(san)) = parsed.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::RFC822Name(e) => emails.push(e.to_string()),
                    GeneralName::DNSName(d) => dns_names.push(d.to_string()),
                    _ => {}
                }
            }
        }
        let sha256 = Sha256::digest(cert.as_ref())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(CertIdentity {
            cns,
            emails,
            dns_names,
            sha256,
        })
    }

    /// Does this identity satisfy every field of the rule? (An empty rule
    /// matches nothing.)
    pub fn matches(&self, rule: &CertificateMatch) -> bool {
        if rule.is_empty() {
            return false;
        }
        let cn_ok = rule
            .cn
            .as_ref()
            .is_none_or(|cn| self.cns.iter().any(|c| c == cn));
        let email_ok = rule
            .email
            .as_ref()
            .is_none_or(|e| self.emails.iter().any(|x| x.eq_ignore_ascii_case(e)));
        let dns_ok = rule
            .dns
            .as_ref()
            .is_none_or(|d| self.dns_names.iter().any(|x| x.eq_ignore_ascii_case(d)));
        let sha_ok = rule.sha256.as_ref().is_none_or(|h| {
            let wanted: String = h
                .chars()
                .filter(|c| *c != ':')
                .collect::<String>()
                .to_ascii_lowercase();
            wanted == self.sha256
        });
        cn_ok && email_ok && dns_ok && sha_ok
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cert(cn: &str, sans: Vec<rcgen::SanType>) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.subject_alt_names = sans;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn rfc4217_s12_2_matches_by_cn_email_dns_and_fingerprint() {
        let der = cert(
            "alice",
            vec![
                rcgen::SanType::Rfc822Name("alice@example.com".try_into().unwrap()),
                rcgen::SanType::DnsName("alice.example.com".try_into().unwrap()),
            ],
        );
        let id = CertIdentity::from_der(&der).unwrap();
        let rule =
            |cn: Option<&str>, email: Option<&str>, dns: Option<&str>, sha: Option<String>| {
                CertificateMatch {
                    cn: cn.map(Into::into),
                    email: email.map(Into::into),
                    dns: dns.map(Into::into),
                    sha256: sha,
                }
            };
        assert!(id.matches(&rule(Some("alice"), None, None, None)));
        assert!(!id.matches(&rule(Some("bob"), None, None, None)));
        assert!(id.matches(&rule(None, Some("ALICE@example.com"), None, None)));
        assert!(id.matches(&rule(None, None, Some("alice.example.com"), None)));
        assert!(id.matches(&rule(None, None, None, Some(id.sha256.to_uppercase()))));
        assert!(!id.matches(&rule(Some("alice"), Some("bob@example.com"), None, None)));
        assert!(!id.matches(&CertificateMatch::default()));
    }
}
