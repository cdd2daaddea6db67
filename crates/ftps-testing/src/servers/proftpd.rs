//! ProFTPD: one process from `proftpd.conf.in` with four ports (explicit,
//! implicit, CCC and client-certificate virtual hosts), its own user and
//! group files, and a client CA made for the instance.

use std::path::PathBuf;
use std::process::Command;

use super::error::StartError;
use super::files::{path_str, render, write_file};
use super::instance::Instance;
use super::pki::{crypt_sha512, ClientPki};
use super::process::{spawn_logged, Spawned};
use super::{prefix, Profile, MOST_SECURE_CIPHERS, TEST_USER};

const CONF: &str = include_str!("proftpd.conf.in");

/// The binary, unpacked by the install script.
pub(super) fn binary() -> PathBuf {
    prefix().join("proftpd/usr/sbin/proftpd")
}

/// Where its modules (mod_tls) are.
pub(super) fn module_dir() -> PathBuf {
    prefix().join("proftpd/usr/lib/proftpd")
}

/// Writes the account and configuration files and starts the server.
pub(super) fn spawn(inst: &Instance, profile: Profile) -> Result<Spawned, StartError> {
    let dir = inst.dir.path();
    let [implicit_port, ccc_port, client_cert_port] = inst.extra_ports;
    let client_pki = ClientPki::make(dir, "ftps test client CA")?;
    let hash = crypt_sha512(&inst.password)?;
    // /etc/passwd format: name:hash:uid:gid:gecos:home:shell.
    write_file(
        &dir.join("ftpd.passwd"),
        &format!(
            "{TEST_USER}:{hash}:{}:{}::{}:/bin/sh\n",
            inst.uid,
            inst.gid,
            path_str(&inst.root)?
        ),
        0o600,
    )?;
    write_file(
        &dir.join("ftpd.group"),
        &format!("{TEST_USER}:x:{}:\n", inst.gid),
        0o644,
    )?;
    let hardening = match profile {
        Profile::Interop => String::new(),
        Profile::MostSecure => format!(
            "TLSCipherSuite {MOST_SECURE_CIPHERS}\n  TLSServerCipherPreference on\n  TLSRenegotiate none"
        ),
    };
    let conf = render(
        CONF,
        &[
            ("HARDENING", hardening),
            ("PORT", inst.port.to_string()),
            ("IMPLICIT_PORT", implicit_port.to_string()),
            ("CCC_PORT", ccc_port.to_string()),
            ("CLIENT_CERT_PORT", client_cert_port.to_string()),
            ("CLIENT_CA", path_str(&client_pki.ca)?),
            ("PASV_MIN", inst.pasv.start().to_string()),
            ("PASV_MAX", inst.pasv.end().to_string()),
            ("DIR", path_str(dir)?),
            ("MODULE_PATH", path_str(&module_dir())?),
            ("CERT", path_str(&inst.cert)?),
            ("KEY", path_str(&inst.key)?),
        ],
    )?;
    let conf_path = dir.join("proftpd.conf");
    write_file(&conf_path, &conf, 0o644)?;
    let mut cmd = Command::new(binary());
    cmd.arg("-n").arg("-c").arg(&conf_path);
    let mut children = Vec::new();
    spawn_logged(cmd, dir, "proftpd", &mut children)?;
    Ok(Spawned {
        children,
        implicit_port: Some(implicit_port),
        ccc_port: Some(ccc_port),
        client_cert_port: Some(client_cert_port),
        client_pki: Some(client_pki),
    })
}
