//! The server's TLS certificate: loading PEM files, or generating a self-signed one.
//!
//! With `tls.cert`/`tls.key` set, [`load_pem`] reads the chain and key and checks that they
//! belong together. Without them, [`load_or_generate`] keeps a self-signed ECDSA P-256
//! certificate in the state directory ([`default_state_dir`] unless `server.state_dir` is
//! set): generated on the first start, reused afterwards, so its SHA-256 fingerprint (which
//! the server prints, and clients pin) stays the same. Files are written atomically (temporary
//! file, then rename); the key is 0600 and the directory 0700 on Unix.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use rand::RngCore;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::aws_lc_rs::default_provider;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};

/// File name of the generated certificate inside the state directory.
pub const CERT_FILE: &str = "cert.pem";
/// File name of the generated private key inside the state directory.
pub const KEY_FILE: &str = "key.pem";
/// Validity of a generated certificate, in days (about ten years: it is pinned by
/// fingerprint, not checked against a CA, so rotation is by deleting the files).
pub const GENERATED_VALIDITY_DAYS: i64 = 3650;
/// Names always in a generated certificate's subjectAltName.
pub const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate chain with its private key.
#[derive(Debug)]
pub struct CertifiedKey {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 of the leaf certificate's DER, uppercase hex with `:` separators (as
    /// `openssl x509 -fingerprint -sha256` prints it).
    pub fingerprint_sha256: String,
    /// Whether the certificate was generated on this start.
    pub generated: bool,
}

/// An error loading, generating or storing a certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("{path}: malformed PEM: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The certificate file holds no certificate.
    #[error("{path}: no certificate found (expected \"-----BEGIN CERTIFICATE-----\" blocks)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error("{path}: no private key found (expected a PKCS#8, PKCS#1 or SEC1 PEM block)")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key cannot be used by rustls (unsupported algorithm or malformed).
    #[error("{path}: unusable private key: {message}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        message: String,
    },
    /// The key does not belong to the leaf certificate.
    #[error("{key} is not the private key of the certificate in {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The state directory could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A generated file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A name given for the generated certificate is neither a DNS name nor an IP address.
    #[error("cannot generate a certificate for {0:?}: not a DNS name or IP address")]
    BadHostname(String),
    /// rcgen could not build the certificate.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Loads a PEM certificate chain (leaf first) and its PEM private key, and checks that the
/// key matches the leaf.
pub fn load_pem(cert: &Path, key: &Path) -> Result<CertifiedKey, CertError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(cert, e))?;
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCertificate {
            path: cert.to_path_buf(),
        });
    };
    let fingerprint_sha256 = sha256_fingerprint(leaf);
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        pem::Error::NoItemsFound => CertError::NoKey {
            path: key.to_path_buf(),
        },
        other => pem_error(key, other),
    })?;
    let signing = default_provider()
        .key_provider
        .load_private_key(private.clone_key())
        .map_err(|e| CertError::BadKey {
            path: key.to_path_buf(),
            message: e.to_string(),
        })?;
    let pair = rustls::sign::CertifiedKey::new(chain.clone(), signing);
    match pair.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(CertError::KeyMismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            })
        }
        Err(e) => {
            return Err(CertError::Pem {
                path: cert.to_path_buf(),
                message: format!("unusable leaf certificate: {e}"),
            })
        }
    }
    Ok(CertifiedKey {
        chain,
        key: private,
        fingerprint_sha256,
        generated: false,
    })
}

fn pem_error(path: &Path, e: pem::Error) -> CertError {
    match e {
        pem::Error::Io(source) => CertError::Read {
            path: path.to_path_buf(),
            source,
        },
        pem::Error::NoItemsFound => CertError::NoCertificate {
            path: path.to_path_buf(),
        },
        other => CertError::Pem {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}

/// Loads `state_dir/cert.pem` and `state_dir/key.pem`, or, when either is missing, creates
/// the directory (0700), generates a self-signed ECDSA P-256 certificate for `hostnames`
/// plus `localhost`, `127.0.0.1` and `::1`, and writes the files atomically (key 0600,
/// certificate 0644). `generated` tells which happened.
pub fn load_or_generate(state_dir: &Path, hostnames: &[String]) -> Result<CertifiedKey, CertError> {
    let cert_path = state_dir.join(CERT_FILE);
    let key_path = state_dir.join(KEY_FILE);
    if cert_path.is_file() && key_path.is_file() {
        return load_pem(&cert_path, &key_path);
    }
    let (cert_pem, key_pem) = generate_self_signed(hostnames)?;
    create_state_dir(state_dir).map_err(|source| CertError::CreateDir {
        path: state_dir.to_path_buf(),
        source,
    })?;
    // The key first: a crash between the two writes leaves no certificate, so the next start
    // generates both again instead of pairing a new certificate with an old key.
    for (path, text, mode) in [(&key_path, &key_pem, 0o600), (&cert_path, &cert_pem, 0o644)] {
        write_atomic(path, text.as_bytes(), mode).map_err(|source| CertError::Write {
            path: path.clone(),
            source,
        })?;
    }
    tracing::info!(path = %cert_path.display(), "generated a self-signed certificate");
    let mut loaded = load_pem(&cert_path, &key_path)?;
    loaded.generated = true;
    Ok(loaded)
}

/// A new self-signed certificate and key as PEM: ECDSA P-256, SANs = `hostnames` plus
/// [`DEFAULT_SANS`] (IP addresses as IP SANs), server-auth only, not a CA.
fn generate_self_signed(hostnames: &[String]) -> Result<(String, String), CertError> {
    let mut sans: Vec<String> = Vec::new();
    for name in hostnames
        .iter()
        .map(String::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .chain(DEFAULT_SANS)
    {
        if ServerName::try_from(name).is_err() {
            return Err(CertError::BadHostname(name.to_owned()));
        }
        if !sans.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            sans.push(name.to_owned());
        }
    }
    let common_name = sans.first().cloned().unwrap_or_default();
    let mut params = CertificateParams::new(sans)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "ftps self-signed");
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(GENERATED_VALIDITY_DAYS);
    let mut serial = [0u8; 16];
    OsRng.fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key_pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key_pair)?;
    Ok((cert.pem(), key_pair.serialize_pem()))
}

/// SHA-256 of `der`, uppercase hex with `:` separators.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{byte:02X}");
    }
    out
}

/// The default state directory: `$FTPS_STATE_DIR`, else `$XDG_STATE_HOME/ftps`, else
/// `$HOME/.local/state/ftps`, else `./.ftps-state`. Empty variables count as unset, and
/// `$XDG_STATE_HOME` only when absolute (as the XDG base directory specification says).
pub fn default_state_dir() -> PathBuf {
    state_dir_from(|name| std::env::var_os(name))
}

fn state_dir_from(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let var = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("FTPS_STATE_DIR") {
        return dir;
    }
    if let Some(dir) = var("XDG_STATE_HOME").filter(|d| d.is_absolute()) {
        return dir.join("ftps");
    }
    if let Some(home) = var("HOME") {
        return home.join(".local").join("state").join("ftps");
    }
    PathBuf::from(".ftps-state")
}

/// Creates `dir` and its missing parents, with mode 0700 on Unix. An existing directory is
/// left as it is.
pub fn create_state_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes `contents` to `path` atomically: a new temporary file in the same directory with
/// permissions `mode` (Unix), synced, then renamed over `path`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", OsRng.next_u64()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = options.open(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn server_config(ck: &CertifiedKey) -> Result<rustls::ServerConfig, rustls::Error> {
        rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(ck.chain.clone(), ck.key.clone_key())
    }

    #[test]
    fn generate_then_reload() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a").join("state");
        let hosts = vec!["ftp.example.org".to_owned(), "192.0.2.1".to_owned()];
        let first = load_or_generate(&state, &hosts).unwrap();
        assert!(first.generated);
        assert_eq!(first.chain.len(), 1);
        assert_eq!(first.fingerprint_sha256.len(), 32 * 3 - 1);
        assert!(first
            .fingerprint_sha256
            .chars()
            .all(|c| c == ':' || c.is_ascii_digit() || c.is_ascii_uppercase()));
        let again = load_or_generate(&state, &hosts).unwrap();
        assert!(!again.generated);
        assert_eq!(again.fingerprint_sha256, first.fingerprint_sha256);
        assert_eq!(again.chain, first.chain);
        assert_eq!(
            first.fingerprint_sha256,
            sha256_fingerprint(first.chain[0].as_ref())
        );
        server_config(&first).unwrap();
        server_config(&again).unwrap();
        let leftovers: Vec<_> = fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    /// Runs an in-memory TLS handshake of a client trusting only `ck`'s certificate.
    fn handshake(ck: &CertifiedKey, name: &str) -> Result<(), rustls::Error> {
        let provider = Arc::new(default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ck.chain[0].clone())?;
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server_name = ServerName::try_from(name.to_owned()).unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(client_config), server_name)?;
        let mut server = rustls::ServerConnection::new(Arc::new(server_config(ck)?))?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            server.read_tls(&mut buf.as_slice()).unwrap();
            server.process_new_packets()?;
            buf.clear();
            server.write_tls(&mut buf).unwrap();
            client.read_tls(&mut buf.as_slice()).unwrap();
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        Err(rustls::Error::General("handshake did not finish".into()))
    }

    #[test]
    fn generated_certificate_is_trusted_for_its_names() {
        let dir = tempfile::tempdir().unwrap();
        let ck = load_or_generate(dir.path(), &["ftp.example.org".to_owned()]).unwrap();
        for name in ["ftp.example.org", "localhost", "127.0.0.1", "::1"] {
            handshake(&ck, name).unwrap();
        }
        assert!(handshake(&ck, "other.example.org").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn file_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        load_or_generate(&state, &[]).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&state.join(CERT_FILE)), 0o644);
        assert_eq!(mode(&state), 0o700);
    }

    #[test]
    fn missing_key_regenerates() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path(), &[]).unwrap();
        fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        let second = load_or_generate(dir.path(), &[]).unwrap();
        assert!(second.generated);
        assert_ne!(second.fingerprint_sha256, first.fingerprint_sha256);
    }

    #[test]
    fn garbage_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        fs::write(&garbage, "this is not a certificate\n").unwrap();
        let e = load_pem(&garbage, &garbage).unwrap_err();
        assert!(matches!(e, CertError::NoCertificate { .. }), "{e:?}");
        assert!(e.to_string().contains("garbage.pem"), "{e}");

        let broken = dir.path().join("broken.pem");
        fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = load_pem(&broken, &broken).unwrap_err();
        assert!(e.to_string().contains("broken.pem"), "{e}");

        let missing = dir.path().join("missing.pem");
        let e = load_pem(&missing, &missing).unwrap_err();
        assert!(matches!(e, CertError::Read { .. }), "{e:?}");
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }

    #[test]
    fn key_problems_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        load_or_generate(&a, &[]).unwrap();
        load_or_generate(&b, &[]).unwrap();
        let e = load_pem(&a.join(CERT_FILE), &b.join(KEY_FILE)).unwrap_err();
        assert!(matches!(e, CertError::KeyMismatch { .. }), "{e:?}");
        let e = load_pem(&a.join(CERT_FILE), &a.join(CERT_FILE)).unwrap_err();
        assert!(matches!(e, CertError::NoKey { .. }), "{e:?}");
        assert!(e.to_string().contains("cert.pem"), "{e}");
        let ok = load_pem(&a.join(CERT_FILE), &a.join(KEY_FILE)).unwrap();
        assert!(!ok.generated);
    }

    #[test]
    fn bad_hostname_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["bad host", "b\u{e9}b.example", "a..b"] {
            let e = load_or_generate(dir.path(), &[bad.to_owned()]);
            assert!(matches!(e, Err(CertError::BadHostname(_))), "{e:?}");
        }
        assert!(!dir.path().join(CERT_FILE).exists());
    }

    #[test]
    fn state_dir_precedence() {
        fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        }
        let all = [
            ("FTPS_STATE_DIR", "/s"),
            ("XDG_STATE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(state_dir_from(env(&all)), PathBuf::from("/s"));
        assert_eq!(
            state_dir_from(env(&[("FTPS_STATE_DIR", ""), ("XDG_STATE_HOME", "/x")])),
            PathBuf::from("/x/ftps")
        );
        assert_eq!(
            state_dir_from(env(&[("XDG_STATE_HOME", "rel"), ("HOME", "/h")])),
            PathBuf::from("/h/.local/state/ftps")
        );
        assert_eq!(state_dir_from(env(&[])), PathBuf::from(".ftps-state"));
    }

    #[test]
    fn fingerprint_format() {
        assert_eq!(
            sha256_fingerprint(b""),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }
}
