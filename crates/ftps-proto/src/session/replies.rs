//! Reply texts and the mappings from failures to reply codes, in one place so
//! each mapping is tested once: file-system errors (RFC 959 §4.2: 451,
//! 550, 552, 553), transfer outcomes (RFC 959 226/425/426, RFC 4217 §10.2
//! 522), FEAT (RFC 2389 §3.2, RFC 4217 §6) and HELP.

use super::types::{
    FsError, HashAlgorithm, HashDigest, HashFailure, ReuseRefusal, TransferOutcome, TransferStarted,
};
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
        TransferOutcome::SessionReuseRequired(reason) => reuse_refused(*reason),
        TransferOutcome::ConnectionLost => Reply::new(
            426,
            "Data connection lost before the transfer completed: transfer failed.",
        ),
        TransferOutcome::Stalled => Reply::new(
            426,
            "Data connection stalled (no data moved within the time limit): transfer failed.",
        ),
        TransferOutcome::NoCloseNotify => Reply::new(
            426,
            "Data connection closed without TLS close_notify: the upload may be truncated, \
             so it was not kept. Close the data connection with TLS close_notify.",
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

/// The 522 of a refused protected data connection (RFC 4217 §10.2,
/// §15.1.2): the case and the fix, with the case's key in brackets.
pub fn reuse_refused(reason: ReuseRefusal) -> Reply {
    let text = match reason {
        ReuseRefusal::NoSessionOffered => {
            "TLS session reuse required [no-session]: the data connection offered no TLS session \
             (a full handshake); the client must resume the control connection's TLS session on \
             its data connections (RFC 4217 §10.2)."
        }
        ReuseRefusal::ForeignSession => {
            "TLS session reuse required [foreign-session]: the data connection offered a TLS \
             session of another control connection; the client must resume this control \
             connection's own session (one session cache per connection) (RFC 4217 §10.2)."
        }
        ReuseRefusal::SessionNotResumable => {
            "TLS session reuse required [unresumable-session]: the data connection offered this \
             control connection's session with another server name or cipher suite; use the \
             same TLS settings as on the control connection (RFC 4217 §10.2)."
        }
        ReuseRefusal::CertificateMismatch => {
            "TLS session reuse required [certificate-mismatch]: the data connection presented \
             another client certificate than the control connection (RFC 4217 §15.1.2)."
        }
    };
    Reply::new(522, text)
}

/// The FEAT line of HASH (draft-bryan-ftpext-hash §2.4): the offered
/// algorithms, the selected one starred.
pub fn hash_feat_line(selected: HashAlgorithm) -> String {
    let names: Vec<String> = HashAlgorithm::ALL
        .iter()
        .map(|a| {
            let star = if *a == selected { "*" } else { "" };
            format!("{}{star}", a.name())
        })
        .collect();
    format!("HASH {}", names.join(";"))
}

/// The reply to HASH (draft-bryan-ftpext-hash §3): `213 <algorithm>
/// <start>-<end> <hex> <path>` with `end` one past the last octet hashed
/// (as ProFTPD's mod_digest answers: `0-<size>` for a whole file); a
/// directory or special file 553, a file over the server's limit 556, a
/// RANG start past the end 501, ABOR 426.
pub fn hash_done(result: &Result<HashDigest, HashFailure>, shown: &[u8]) -> Reply {
    match result {
        Ok(digest) => {
            let mut text = format!(
                "{} {}-{} {} ",
                digest.algorithm.name(),
                digest.start,
                digest.end,
                digest.hex
            )
            .into_bytes();
            text.extend_from_slice(shown);
            Reply::new(213, text)
        }
        Err(HashFailure::Fs(FsError::IsADirectory | FsError::NotAFile)) => {
            Reply::new(553, "HASH works on regular files only.")
        }
        Err(HashFailure::Fs(error)) => fs_error_reply(error),
        Err(HashFailure::TooLarge { bytes, limit }) => Reply::new(
            556,
            format!(
                "HASH refused: {bytes} octets is more than this server hashes at once ({limit}); \
                 use RANG to hash it in parts."
            ),
        ),
        Err(HashFailure::RangeBeyondEnd) => {
            Reply::new(501, "RANG start point is past the end of the file.")
        }
        Err(HashFailure::Aborted) => Reply::new(426, "HASH aborted."),
    }
}

/// FEAT (RFC 2389 §3.2): every extension, one per line, each indented by a space.
pub fn feat(allow_ccc: bool, facts: &FactSet, hash: HashAlgorithm) -> Reply {
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
            "MFMT",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
        ]
        .iter()
        .map(|f| format!(" {f}")),
    );
    features.push(format!(" {}", hash_feat_line(hash)));
    features.push(format!(" {}", facts::feat_line(facts)));
    lines.extend(features.into_iter().map(String::into_bytes));
    lines.push(b"END".to_vec());
    Reply::multi(211, lines)
}

/// The commands HELP lists.
pub const HELP_COMMANDS: &[&str] = &[
    "ABOR", "ACCT", "ALLO", "APPE", "AUTH", "CCC", "CDUP", "CWD", "DELE", "EPRT", "EPSV", "FEAT",
    "HASH", "HELP", "LIST", "MDTM", "MFMT", "MKD", "MLSD", "MLST", "MODE", "NLST", "NOOP", "OPTS",
    "PASS", "PASV", "PBSZ", "PORT", "PROT", "PWD", "QUIT", "RANG", "REIN", "REST", "RETR", "RMD",
    "RNFR", "RNTO", "SITE", "SIZE", "STAT", "STOR", "STOU", "STRU", "SYST", "TYPE", "USER", "XCUP",
    "XCWD", "XMKD", "XPWD", "XRMD",
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

    /// RFC 4217 §10.2: each refused data connection says which case it is,
    /// with its key in brackets, and the fix.
    #[test]
    fn rfc4217_s10_2_full_handshake_522_says_no_session_was_offered() {
        let r = reuse_refused(ReuseRefusal::NoSessionOffered);
        assert_eq!(r.code, 522);
        assert!(r.text().contains("[no-session]"), "{}", r.text());
        assert!(r.text().contains("offered no TLS session"), "{}", r.text());
    }

    #[test]
    fn rfc4217_s10_2_foreign_session_522_names_another_control_connection() {
        let r = reuse_refused(ReuseRefusal::ForeignSession);
        assert_eq!(r.code, 522);
        assert!(r.text().contains("[foreign-session]"), "{}", r.text());
        assert!(
            r.text().contains("another control connection"),
            "{}",
            r.text()
        );
    }

    #[test]
    fn rfc4217_s10_2_unresumable_session_522_names_the_settings() {
        let r = reuse_refused(ReuseRefusal::SessionNotResumable);
        assert_eq!(r.code, 522);
        assert!(r.text().contains("[unresumable-session]"), "{}", r.text());
    }

    #[test]
    fn rfc4217_s15_1_2_other_client_certificate_522_says_so() {
        let r = reuse_refused(ReuseRefusal::CertificateMismatch);
        assert_eq!(r.code, 522);
        assert!(r.text().contains("[certificate-mismatch]"), "{}", r.text());
        assert!(
            r.text().contains("another client certificate"),
            "{}",
            r.text()
        );
    }

    #[test]
    fn reuse_refusal_keys_are_in_their_replies() {
        for reason in [
            ReuseRefusal::NoSessionOffered,
            ReuseRefusal::ForeignSession,
            ReuseRefusal::SessionNotResumable,
            ReuseRefusal::CertificateMismatch,
        ] {
            let text = reuse_refused(reason).text().to_string();
            assert!(text.contains(&format!("[{}]", reason.key())), "{text}");
        }
    }

    /// A stall and a missing close_notify are told apart from a broken
    /// connection; only the upload case speaks of TLS close_notify.
    #[test]
    fn rfc959_426_texts_name_the_cause() {
        let text = |o: TransferOutcome| transfer_done("RETR", false, &o)[0].text().to_string();
        assert!(text(TransferOutcome::Stalled).contains("stalled"));
        assert!(!text(TransferOutcome::Stalled).contains("close_notify"));
        assert!(!text(TransferOutcome::ConnectionLost).contains("close_notify"));
        assert!(text(TransferOutcome::NoCloseNotify).contains("close_notify"));
    }
}
