//! An instance before its processes run ([`Instance`]): its own temporary
//! directory, the root the test user sees, the test account, the server
//! certificate and the ports.

use std::fs;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use super::error::{fatal, StartError};
use super::files::set_mode;
use super::pki::server_certificate;
use super::ports::{free_ports, pasv_range};
use super::{password_file, system_user, Kind, TEST_USER};

/// Everything of an instance before its processes run.
pub(super) struct Instance {
    pub(super) dir: tempfile::TempDir,
    pub(super) root: PathBuf,
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) password: String,
    pub(super) port: u16,
    pub(super) extra_ports: [u16; 3],
    pub(super) pasv: RangeInclusive<u16>,
}

/// Makes the instance directory: root, certificate, ports.
pub(super) fn prepare(kind: Kind) -> Result<Instance, StartError> {
    let (uid, gid) = system_user(TEST_USER)
        .ok_or_else(|| StartError::Fatal(format!("no system user {TEST_USER}")))?;
    let password = fs::read_to_string(password_file())
        .map_err(|e| fatal(&format!("reading {}", password_file().display()), e))?
        .trim()
        .to_string();
    if password.is_empty() {
        return Err(StartError::Fatal(format!(
            "{} is empty",
            password_file().display()
        )));
    }
    let dir = tempfile::Builder::new()
        .prefix(&format!("ftps-ext-{}-", kind.name()))
        .tempdir()
        .map_err(|e| fatal("creating the instance directory", e))?;
    // The servers reach the root as the test user (and ProFTPD's listener
    // runs as nobody): let everyone traverse, not list.
    set_mode(dir.path(), 0o711)?;
    let root = dir.path().join("root");
    fs::create_dir(&root).map_err(|e| fatal("creating the root", e))?;
    std::os::unix::fs::chown(&root, Some(uid), Some(gid))
        .map_err(|e| fatal("chown of the root to the test user", e))?;
    set_mode(&root, 0o755)?;
    // vsftpd's secure_chroot_dir: empty, owned by root, not writable.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).map_err(|e| fatal("creating empty/", e))?;
    set_mode(&empty, 0o555)?;

    let (cert, key) = server_certificate(dir.path())?;
    let [port, extra_ports @ ..] = free_ports::<4>()?;
    let pasv = pasv_range();
    Ok(Instance {
        dir,
        root,
        cert,
        key,
        uid,
        gid,
        password,
        port,
        extra_ports,
        pasv,
    })
}
