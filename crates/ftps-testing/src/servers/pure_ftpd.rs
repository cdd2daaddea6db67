//! Pure-FTPd: one process configured by flags (`--tls 3`, a PureDB
//! virtual user with the test user's ids), explicit FTPS only; its control
//! port also takes CCC.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::error::{fatal, StartError};
use super::files::{path_str, write_file};
use super::instance::Instance;
use super::pki::crypt_sha512;
use super::process::{spawn_logged, Spawned};
use super::{prefix, Profile, MOST_SECURE_CIPHERS, TEST_USER};

/// The binary, unpacked by the install script.
pub(super) fn binary() -> PathBuf {
    prefix().join("pure-ftpd/usr/sbin/pure-ftpd")
}

/// `pure-pw`, which makes the PureDB file.
pub(super) fn pure_pw() -> PathBuf {
    prefix().join("pure-ftpd/usr/bin/pure-pw")
}

/// Writes the PureDB file and starts the server.
pub(super) fn spawn(inst: &Instance, profile: Profile) -> Result<Spawned, StartError> {
    let dir = inst.dir.path();
    let hash = crypt_sha512(&inst.password)?;
    // pure-pw's own format: user:hash:uid:gid:gecos:home/./ and 12 more
    // (empty) fields for quotas, ratios, bandwidth, times and IP limits.
    // "/./" makes the home the user's chroot. Written by hand rather than
    // with `pure-pw useradd`, which hashes with a deliberately slow argon2id
    // (every login would cost about a second).
    let passwd = dir.join("pureftpd.passwd");
    write_file(
        &passwd,
        &format!(
            "{TEST_USER}:{hash}:{}:{}::{}/./::::::::::::\n",
            inst.uid,
            inst.gid,
            path_str(&inst.root)?
        ),
        0o600,
    )?;
    let pdb = dir.join("pureftpd.pdb");
    let out = Command::new(pure_pw())
        .arg("mkdb")
        .arg(&pdb)
        .arg("-f")
        .arg(&passwd)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fatal("running pure-pw mkdb", e))?;
    if !out.status.success() {
        return Err(StartError::Fatal(format!(
            "pure-pw mkdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let mut cmd = Command::new(binary());
    cmd.arg("--bind")
        .arg(format!("127.0.0.1,{}", inst.port))
        .arg("--passiveportrange")
        .arg(format!("{}:{}", inst.pasv.start(), inst.pasv.end()))
        .arg("--forcepassiveip")
        .arg("127.0.0.1")
        .arg("--login")
        .arg(format!("puredb:{}", path_str(&pdb)?))
        // 3: TLS required on the control connection and on data connections.
        .arg("--tls")
        .arg("3")
        .arg("--certfile")
        .arg(format!(
            "{},{}",
            path_str(&inst.cert)?,
            path_str(&inst.key)?
        ))
        .arg("--noanonymous")
        .arg("--chrooteveryone")
        .arg("--dontresolve")
        // The test user is a system user (uid < 1000).
        .arg("--minuid")
        .arg("1")
        // Room for tests that open many connections (default 10 clients).
        .arg("--maxclientsnumber")
        .arg("50")
        .arg("--maxclientsperip")
        .arg("50")
        .arg("--pidfile")
        .arg(dir.join("pure-ftpd.pid"))
        .arg("--altlog")
        .arg(format!(
            "clf:{}",
            path_str(&dir.join("pure-ftpd-xfer.log"))?
        ));
    if profile == Profile::MostSecure {
        cmd.arg("--tlsciphersuite").arg(MOST_SECURE_CIPHERS);
    }
    let mut children = Vec::new();
    spawn_logged(cmd, dir, "pure-ftpd", &mut children)?;
    Ok(Spawned {
        children,
        ccc_port: Some(inst.port),
        ..Spawned::default()
    })
}
