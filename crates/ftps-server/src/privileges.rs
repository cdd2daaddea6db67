//! Dropping root after binding (RFC 2577 §8 and common practice): a server
//! started as root to bind ports 21 and 990 switches to an unprivileged user
//! before it accepts a single connection.

use nix::unistd::{getuid, setgid, setgroups, setuid, Gid, Uid, User};

/// Why the switch failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// No such user.
    #[error("run_as: no user named {0:?}")]
    UnknownUser(String),
    /// A system call failed.
    #[error("run_as {user:?}: {call} failed: {source}")]
    Call {
        /// The user.
        user: String,
        /// Which call.
        call: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// Still root afterwards.
    #[error("run_as {0:?}: still privileged after the switch")]
    StillRoot(String),
}

/// Raise this process's soft limit on open files to its hard limit: every
/// session holds a socket (two during a transfer), and the common soft limit
/// of 1024 would cap a server far below `server.max_sessions`. Returns the
/// limit now in force.
pub fn raise_open_files_limit() -> Result<u64, nix::Error> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}

/// True when running as root.
pub fn is_root() -> bool {
    getuid().is_root()
}

/// Switch to `name`: supplementary groups cleared, primary group and user set.
/// Returns the uid and gid now in force.
pub fn drop_to(name: &str) -> Result<(Uid, Gid), PrivilegeError> {
    let user = User::from_name(name)
        .map_err(|source| PrivilegeError::Call {
            user: name.into(),
            call: "getpwnam",
            source,
        })?
        .ok_or_else(|| PrivilegeError::UnknownUser(name.into()))?;
    let call = |call: &'static str| {
        move |source| PrivilegeError::Call {
            user: name.into(),
            call,
            source,
        }
    };
    setgroups(&[user.gid]).map_err(call("setgroups"))?;
    setgid(user.gid).map_err(call("setgid"))?;
    setuid(user.uid).map_err(call("setuid"))?;
    if !user.uid.is_root() && setuid(Uid::from_raw(0)).is_ok() {
        return Err(PrivilegeError::StillRoot(name.into()));
    }
    Ok((user.uid, user.gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_is_an_error() {
        assert!(matches!(
            drop_to("no-such-user-ftps-test"),
            Err(PrivilegeError::UnknownUser(_)) | Err(PrivilegeError::Call { .. })
        ));
    }
}
