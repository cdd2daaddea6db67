//! vsftpd: two processes (explicit and implicit FTPS) from `vsftpd.conf.in`,
//! each with half of the passive range, logging in the system test user
//! through a PAM service of its own.

use std::path::PathBuf;
use std::process::Command;

use super::error::StartError;
use super::files::{path_str, render, write_file};
use super::instance::Instance;
use super::process::{spawn_logged, stop_children, Spawned};
use super::{Profile, MOST_SECURE_CIPHERS};

/// The PAM service (in /etc/pam.d) of the vsftpd instances.
const PAM_SERVICE: &str = "ftps-test-vsftpd";
/// The binary, from the distribution's package.
const BIN: &str = "/usr/sbin/vsftpd";
const CONF: &str = include_str!("vsftpd.conf.in");

/// The binary.
pub(super) fn binary() -> PathBuf {
    PathBuf::from(BIN)
}

/// The PAM service file the install script writes.
pub(super) fn pam_service_file() -> PathBuf {
    PathBuf::from("/etc/pam.d").join(PAM_SERVICE)
}

/// Starts the explicit and the implicit process.
pub(super) fn spawn(inst: &Instance, profile: Profile) -> Result<Spawned, StartError> {
    let dir = inst.dir.path();
    let implicit_port = inst.extra_ports[0];
    // Two processes, two halves of the passive range.
    let (lo, hi) = (*inst.pasv.start(), *inst.pasv.end());
    let mid = lo + (hi - lo) / 2;
    let (tlsv1, ciphers, strict) = match profile {
        Profile::Interop => ("YES", "HIGH", "NO"),
        Profile::MostSecure => ("NO", MOST_SECURE_CIPHERS, "YES"),
    };
    let mut children = Vec::new();
    for (name, port, implicit, pasv_min, pasv_max) in [
        ("vsftpd", inst.port, "NO", lo, mid),
        ("vsftpd-implicit", implicit_port, "YES", mid + 1, hi),
    ] {
        let conf = render(
            CONF,
            &[
                ("PORT", port.to_string()),
                ("IMPLICIT", implicit.to_string()),
                ("PAM_SERVICE", PAM_SERVICE.to_string()),
                ("ROOT", path_str(&inst.root)?),
                ("DIR", path_str(dir)?),
                ("NAME", name.to_string()),
                ("PASV_MIN", pasv_min.to_string()),
                ("PASV_MAX", pasv_max.to_string()),
                ("CERT", path_str(&inst.cert)?),
                ("KEY", path_str(&inst.key)?),
                ("TLSV1", tlsv1.to_string()),
                ("CIPHERS", ciphers.to_string()),
                ("STRICT", strict.to_string()),
            ],
        )?;
        let conf_path = dir.join(format!("{name}.conf"));
        // vsftpd refuses a config file not owned by root or writable by others.
        write_file(&conf_path, &conf, 0o600)?;
        let mut cmd = Command::new(BIN);
        cmd.arg(&conf_path);
        if let Err(e) = spawn_logged(cmd, dir, name, &mut children) {
            stop_children(&mut children);
            return Err(e);
        }
    }
    Ok(Spawned {
        children,
        implicit_port: Some(implicit_port),
        ..Spawned::default()
    })
}
