//! Reply texts and the mappings from failures to reply codes, in one place so
//! each mapping is tested once: file-system errors (RFC 959 §4.2: 451,
//! 550, 552, 553), transfer outcomes (RFC 959 226/425/426, RFC 4217 §10.2
//! 522), FEAT (RFC 2389 §3.2, RFC 4217 §6) and HELP.

use super::types::{FsError, TransferOutcome, TransferStarted};
use crate::entry::Entry;
use crate::facts::{self, FactSet};
use crate::path::{PathError, VirtualPath};
use crate::reply::Reply;

/// The reply for a failed file-system request.
pub fn fs_error_reply(error: &FsError) -> Reply {
    match error {
        FsError::NotFound => Reply::new(550, "No such file or directory."),
        FsError::PermissionDenied | FsError::OutsideRoot => Reply::new(550, "Permission denied."),
        FsError::AlreadyExists => Reply::new(550, "File exists."),
        FsError::NotADirectory => Reply::new(550, "Not a directory."),
        FsError::IsADirectory => Reply::new(550, "Is a directory."),
        FsError::NotAFile => Reply::new(550, "Not a regular file."),
        FsError::DirectoryNotEmpty => Reply::new(550, "Directory not empty."),
        FsError::NoSpace => Reply::new(552, "Exceeded storage allocation (disk full)."),
        FsError::InvalidName => Reply::new(553, "File name not allowed."),
        FsError::OffsetBeyondEnd => Reply::new(554, "Invalid REST parameter: beyond end of file."),
        FsError::Unsupported => Reply::new(502, "Not supported by this storage."),
        FsError::Other(_) => Reply::new(451, "Local error in processing."),
    }
}

/// The reply for a path argument that cannot be a path (NUL, too long).
pub fn path_error_reply(error: &PathError) -> Reply {
    match error {
        PathError::Nul => Reply::new(501, "Path contains a NUL byte."),
        PathError::ComponentTooLong | PathError::TooLong => Reply::new(553, "Path too long."),
        PathError::InvalidName => Reply::new(553, "File name not allowed."),
    }
}

/// The 150 reply (RFC 959 §4.2; STOU per RFC 1123 §4.1.2.9).
pub fn transfer_started(info: &TransferStarted) -> Reply {
    if let Some(name) = &info.unique_name {
        let mut text = b"FILE: ".to_vec();
        text.extend_from_slice(name);
        return Reply::new(150, text);
    }
    match info.size {
        Some(size) => Reply::new(150, format!("Opening data connection ({size} bytes).")),
        None => Reply::new(150, "Opening data connection."),
    }
}

/// The final replies of a transfer. ABOR of a running transfer gives 426 then
/// 226 (RFC 959 §4.1.3); a transfer that completed before the ABOR only 226.
pub fn transfer_done(verb: &str, aborting: bool, outcome: &TransferOutcome) -> Vec<Reply> {
    let failure = match outcome {
        TransferOutcome::Complete { bytes } => {
            return vec![Reply::new(226, format!("Transfer complete ({bytes} bytes)."))];
        }
        TransferOutcome::Aborted => Reply::new(426, "Transfer aborted."),
        TransferOutcome::OpenFailed(FsError::NotADirectory) if verb == "MLSD" => {
            // RFC 3659 §7.2.2: MLSD of something that is not a directory.
            Reply::new(501, "MLSD needs a directory; use MLST for a file.")
        }
        TransferOutcome::OpenFailed(error) => fs_error_reply(error),
        TransferOutcome::DataConnectionFailed => Reply::new(425, "Cannot open data connection."),
        TransferOutcome::TlsFailed => Reply::new(
            522,
            "TLS negotiation on the data connection failed (the FTP client must be the TLS client).",
        ),
        TransferOutcome::SessionReuseRequired => Reply::new(
            522,
            "Data connection must resume the TLS session of this control connection: \
             enable TLS session reuse in your client (RFC 4217 §10.2).",
        ),
        TransferOutcome::ConnectionLost => Reply::new(
            426,
            "Data connection closed before the transfer completed (no clean TLS close): transfer failed.",
        ),
        TransferOutcome::StorageFailed(FsError::NoSpace) => {
            Reply::new(552, "Exceeded storage allocation (disk full): transfer failed.")
        }
        TransferOutcome::StorageFailed(_) => {
            Reply::new(451, "Local error in processing: transfer failed.")
        }
    };
    if aborting {
        vec![failure, Reply::new(226, "ABOR successful.")]
    } else {
        vec![failure]
    }
}

/// FEAT (RFC 2389 §3.2): every extension, one per line, each indented by a space.
pub fn feat(allow_ccc: bool, facts: &FactSet) -> Reply {
    let mut lines: Vec<Vec<u8>> = vec![b"Extensions supported".to_vec()];
    let mut features = vec![
        " AUTH TLS".to_string(),
        " PBSZ".to_string(),
        " PROT".to_string(),
    ];
    if allow_ccc {
        features.push(" CCC".to_string());
    }
    features.extend(
        [
            "EPRT",
            "EPSV",
            "MDTM",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
        ]
        .iter()
        .map(|f| format!(" {f}")),
    );
    features.push(format!(" {}", facts::feat_line(facts)));
    lines.extend(features.into_iter().map(String::into_bytes));
    lines.push(b"END".to_vec());
    Reply::multi(211, lines)
}

/// The commands HELP lists.
pub const HELP_COMMANDS: &[&str] = &[
    "ABOR", "ACCT", "ALLO", "APPE", "AUTH", "CCC", "CDUP", "CWD", "DELE", "EPRT", "EPSV", "FEAT",
    "HELP", "LIST", "MDTM", "MKD", "MLSD", "MLST", "MODE", "NLST", "NOOP", "OPTS", "PASS", "PASV",
    "PBSZ", "PORT", "PROT", "PWD", "QUIT", "REIN", "REST", "RETR", "RMD", "RNFR", "RNTO", "SITE",
    "SIZE", "STAT", "STOR", "STOU", "STRU", "SYST", "TYPE", "USER", "XCUP", "XCWD", "XMKD", "XPWD",
    "XRMD",
];

/// HELP (RFC 959 §4.1.3): 214 with the command list, or about one command.
pub fn help(topic: Option<&[u8]>) -> Reply {
    if let Some(topic) = topic {
        let known = HELP_COMMANDS
            .iter()
            .any(|c| c.as_bytes().eq_ignore_ascii_case(topic));
        return if known {
            let name = String::from_utf8_lossy(topic).to_ascii_uppercase();
            Reply::new(
                214,
                format!("{name} is supported; see RFC 959 and RFC 4217."),
            )
        } else {
            Reply::new(502, "Unknown command.")
        };
    }
    let mut lines = vec![b"The following commands are recognized:".to_vec()];
    for chunk in HELP_COMMANDS.chunks(10) {
        lines.push(format!(" {}", chunk.join(" ")).into_bytes());
    }
    lines.push(b"Help OK.".to_vec());
    Reply::multi(214, lines)
}

/// STAT with a path (RFC 959 §4.1.3): a LIST-style listing on the control connection.
pub fn stat_listing(path: &VirtualPath, entries: &[Entry], now_unix: i64) -> Reply {
    let mut first = b"Status of ".to_vec();
    first.extend_from_slice(&path.to_bytes());
    first.push(b':');
    let mut lines = vec![first];
    for entry in entries {
        let mut line = b" ".to_vec();
        line.extend(crate::list::format_list_line(entry, now_unix));
        lines.push(line);
    }
    lines.push(b"End of status".to_vec());
    Reply::multi(213, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 959 §4.2: 550 is "file unavailable (not found, no access)" — also
    /// for a directory, FIFO or device where a file was asked for; 502 only
    /// for what the storage cannot do at all.
    #[test]
    fn rfc959_file_unavailable_is_550() {
        for error in [
            FsError::NotFound,
            FsError::PermissionDenied,
            FsError::OutsideRoot,
            FsError::IsADirectory,
            FsError::NotAFile,
        ] {
            assert_eq!(fs_error_reply(&error).code, 550, "{error:?}");
        }
        assert_eq!(fs_error_reply(&FsError::Unsupported).code, 502);
        assert_eq!(fs_error_reply(&FsError::NoSpace).code, 552);
    }
}
