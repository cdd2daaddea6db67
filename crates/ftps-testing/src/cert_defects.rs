//! Server certificates with a defect, for the tests of what the client
//! says about them: issued for another name, expired, or a CA certificate
//! standing for a server. [`write_server_certificate`] puts one where
//! [`crate::TestServer`] picks it up (its state directory), so the real
//! server presents it.

use std::path::Path;

/// What is wrong with the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// Valid, but for `ftp.example.com` only (not `127.0.0.1`).
    OtherName,
    /// For `127.0.0.1`, but it expired in 2021.
    Expired,
    /// For `127.0.0.1`, but a CA certificate (`CA:TRUE`), as `openssl req
    /// -x509` makes them by default.
    CaAsServer,
}

/// Writes a self-signed P-256 certificate with `defect` and its key as
/// `cert.pem` and `key.pem` into `dir`. Use it from
/// [`crate::TestServer::start_with`]: `write_server_certificate(
/// config.server.state_dir.as_ref().unwrap(), Defect::Expired)`.
pub fn write_server_certificate(dir: &Path, defect: Defect) {
    let names = match defect {
        Defect::OtherName => vec!["ftp.example.com".to_string()],
        Defect::Expired | Defect::CaAsServer => vec!["127.0.0.1".to_string()],
    };
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftps test server");
    match defect {
        Defect::Expired => {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        Defect::CaAsServer => {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        Defect::OtherName => {}
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(ftps_server::certs::CERT_FILE), cert.pem()).unwrap();
    std::fs::write(dir.join(ftps_server::certs::KEY_FILE), key.serialize_pem()).unwrap();
}
