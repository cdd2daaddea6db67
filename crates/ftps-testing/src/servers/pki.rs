//! Certificates and credentials of an instance: the server's certificate
//! ([`server_certificate`]), the client CA and client certificate of
//! ProFTPD's client-certificate port ([`ClientPki`]), and crypt(3) password
//! hashes for the servers' own user files ([`crypt_sha512`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{fatal, StartError};
use super::files::write_file;

/// The server's self-signed P-256 certificate (CN and SAN `localhost`, SAN
/// `127.0.0.1`, valid two days) and its key, made with `openssl req` as
/// `cert.pem` and `key.pem` in `dir`.
pub(super) fn server_certificate(dir: &Path) -> Result<(PathBuf, PathBuf), StartError> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fatal("running openssl req", e))?;
    if !out.status.success() {
        return Err(StartError::Fatal(format!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok((cert, key))
}

/// A client CA generated for one instance (with rcgen) and a client
/// certificate it signed, as PEM files in the instance directory.
#[derive(Debug, Clone)]
pub struct ClientPki {
    /// The CA certificate the server trusts for client certificates.
    pub ca: PathBuf,
    /// A client certificate (CN `ftps-test-client`) signed by the CA.
    pub cert: PathBuf,
    /// Its private key (PKCS#8).
    pub key: PathBuf,
}

impl ClientPki {
    /// Makes a CA called `ca_name` and a client certificate it signed under
    /// `dir`. (A CA with the same name as the server's trusted one would
    /// be taken for it by OpenSSL, and fail on the signature instead.)
    pub fn generate(dir: &Path, ca_name: &str) -> Result<ClientPki, String> {
        Self::make(dir, ca_name).map_err(|e| match e {
            StartError::Retry(why) | StartError::Fatal(why) => why,
        })
    }

    /// [`ClientPki::generate`], failing as a start attempt does.
    pub(super) fn make(dir: &Path, ca_name: &str) -> Result<ClientPki, StartError> {
        let rcgen_error = |what: &str, e: rcgen::Error| fatal(what, e);
        let mut ca_params = rcgen::CertificateParams::default();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        let ca_key = rcgen::KeyPair::generate().map_err(|e| rcgen_error("CA key", e))?;
        let ca = ca_params
            .self_signed(&ca_key)
            .map_err(|e| rcgen_error("CA certificate", e))?;
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ftps-test-client");
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().map_err(|e| rcgen_error("client key", e))?;
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .map_err(|e| rcgen_error("client certificate", e))?;
        let pki = ClientPki {
            ca: dir.join("client-ca.pem"),
            cert: dir.join("client-cert.pem"),
            key: dir.join("client-key.pem"),
        };
        write_file(&pki.ca, &ca.pem(), 0o644)?;
        write_file(&pki.cert, &cert.pem(), 0o644)?;
        write_file(&pki.key, &key.serialize_pem(), 0o600)?;
        Ok(pki)
    }
}

/// A crypt(3) SHA-512 hash of `password`, from `openssl passwd -6`.
pub(super) fn crypt_sha512(password: &str) -> Result<String, StartError> {
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fatal("running openssl passwd", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}").map_err(|e| fatal("writing to openssl passwd", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fatal("running openssl passwd", e))?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !hash.starts_with("$6$") {
        return Err(StartError::Fatal(format!(
            "openssl passwd -6 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(hash)
}
