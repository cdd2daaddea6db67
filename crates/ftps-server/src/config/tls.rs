//! `[tls]`: the server certificate (and more by SNI, RFC 6066 §3), the protocol
//! versions, the cipher suites and TLS client certificates.
//!
//! RFC 4217 §10.1 lets a server "define the level(s) of TLS to be allowed" and
//! "define the CipherSuites allowed to be used"; client certificates, and the
//! CA that verifies them, are RFC 4217 §15.1.2 (certificate login, §12.2, is in
//! `accounts`). This file turns the section into what rustls takes: protocol
//! versions and a crypto provider restricted to the named suites.

use std::fmt;
use std::path::PathBuf;

use rustls::crypto::aws_lc_rs::{default_provider, ALL_CIPHER_SUITES};
use rustls::crypto::CryptoProvider;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use serde::Deserialize;

/// `[tls]`: certificate, protocol versions and cipher suites.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM certificate chain, leaf first. Set both `cert` and `key`, or neither; neither means
    /// a self-signed certificate generated once and kept in the state directory.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) matching `cert`.
    pub key: Option<PathBuf>,
    /// Enabled protocol versions, `"1.2"` and/or `"1.3"`. Default both.
    pub versions: Vec<TlsVersion>,
    /// Cipher suites by exact rustls name (e.g. `"TLS13_AES_256_GCM_SHA384"`); empty (the
    /// default) means rustls' defaults.
    pub cipher_suites: Vec<String>,
    /// TLS client certificates (RFC 4217 §15.1.2): `"off"` (default), `"requested"` or
    /// `"required"`, verified against `client_ca`.
    pub client_certificates: ClientCertificates,
    /// PEM bundle of the CAs that sign client certificates; needed unless `client_certificates`
    /// is `"off"`.
    pub client_ca: Option<PathBuf>,
    /// Optional PEM certificate revocation list for client certificates.
    pub client_crl: Option<PathBuf>,
    /// More certificates, chosen by the server name the client asks for (SNI):
    /// `[[tls.sni]] name = "ftp.example.com", cert = "...", key = "..."`.
    pub sni: Vec<SniCertificate>,
}

/// A certificate served for one server name (SNI).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SniCertificate {
    /// The server name (DNS name the client connects to).
    pub name: String,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Whether the server asks for TLS client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertificates {
    /// Never asked for.
    #[default]
    Off,
    /// Asked for; a client without one may still log in with a password.
    Requested,
    /// Every TLS connection must present a certificate signed by `client_ca`.
    Required,
}

impl fmt::Display for ClientCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientCertificates::Off => "off",
            ClientCertificates::Requested => "requested",
            ClientCertificates::Required => "required",
        })
    }
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            cert: None,
            key: None,
            versions: vec![TlsVersion::V1_2, TlsVersion::V1_3],
            cipher_suites: Vec::new(),
            client_certificates: ClientCertificates::Off,
            client_ca: None,
            client_crl: None,
            sni: Vec::new(),
        }
    }
}

impl TlsSection {
    /// The enabled protocol versions for `rustls::ServerConfig::builder_with_provider(..)
    /// .with_protocol_versions(..)`.
    pub fn protocol_versions(&self) -> Vec<&'static SupportedProtocolVersion> {
        let mut out: Vec<&'static SupportedProtocolVersion> = Vec::new();
        for v in &self.versions {
            let r = v.rustls_version();
            if !out.iter().any(|o| o.version == r.version) {
                out.push(r);
            }
        }
        out
    }

    /// The aws-lc-rs crypto provider restricted to the configured cipher suites (all of its
    /// defaults when `cipher_suites` is empty). Unknown names are skipped here; validation
    /// has already refused them.
    pub fn crypto_provider(&self) -> CryptoProvider {
        let mut provider = default_provider();
        if !self.cipher_suites.is_empty() {
            provider.cipher_suites = self
                .cipher_suites
                .iter()
                .filter_map(|name| find_cipher_suite(name))
                .collect();
        }
        provider
    }
}

/// The rustls name of a cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
pub fn cipher_suite_name(suite: &SupportedCipherSuite) -> String {
    let id = suite.suite();
    id.as_str()
        .map_or_else(|| format!("{id:?}"), ToOwned::to_owned)
}

/// The aws-lc-rs cipher suite called exactly `name`, if rustls has it.
pub fn find_cipher_suite(name: &str) -> Option<SupportedCipherSuite> {
    ALL_CIPHER_SUITES
        .iter()
        .find(|s| cipher_suite_name(s) == name)
        .copied()
}

/// A TLS protocol version, `"1.2"` or `"1.3"` in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "1.2")]
    V1_2,
    /// TLS 1.3.
    #[serde(rename = "1.3")]
    V1_3,
}

impl TlsVersion {
    /// The matching rustls protocol version.
    pub fn rustls_version(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::V1_2 => &rustls::version::TLS12,
            TlsVersion::V1_3 => &rustls::version::TLS13,
        }
    }

    pub(super) fn matches(self, suite: &SupportedCipherSuite) -> bool {
        suite.version().version == self.rustls_version().version
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        })
    }
}
