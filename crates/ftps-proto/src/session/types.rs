//! The inputs and outputs of the server session state machine: its
//! configuration, the actions it asks the I/O layer to carry out and the
//! results the I/O layer hands back.
//!
//! Nothing here performs I/O; the server crate executes each [`Action`] and
//! reports the result through the matching `handle_*` method of
//! [`ServerSession`](super::ServerSession).

use std::net::SocketAddr;
use std::time::Duration;

use crate::command::TransferType;
use crate::entry::Entry;
use crate::path::VirtualPath;
use crate::reply::Reply;

// The TLS policy types are defined in `crate::policy`; the session's
// configuration and grants carry them, so they are re-exported here.
pub use crate::policy::{AnonymousTls, Policy, PolicyOverride};

/// Whether and how a data connection is protected (RFC 4217 §9: only Clear and
/// Private exist for TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataProtection {
    /// `PROT C`: the data connection carries plain TCP.
    Clear,
    /// `PROT P`: the data connection is a TLS connection (the FTP client is the TLS client).
    Private,
}

/// The security state of the control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlSecurity {
    /// No TLS has been negotiated (yet).
    Plain,
    /// TLS is active on the control connection.
    Tls,
    /// TLS was active and has been cleared with CCC (RFC 4217 §5): the
    /// connection is plaintext again and PBSZ/PROT are no longer accepted.
    Cleared,
}

/// What a session needs to know before the first byte arrives.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The connection came in on an implicit-FTPS listener (draft §4.2): TLS is
    /// already up and data protection starts as Private.
    pub implicit: bool,
    /// The policy that applies before login (and to users without overrides).
    pub policy: Policy,
    /// `Some` when anonymous login is enabled.
    pub anonymous: Option<AnonymousTls>,
    /// The control connection's remote address (for PORT/EPRT checks, RFC 2577).
    pub peer: SocketAddr,
    /// The control connection's local address (decides PASV vs EPSV families).
    pub local: SocketAddr,
    /// Wrong passwords allowed per session before the connection is closed.
    pub max_login_failures: u32,
    /// The text of the 220 greeting.
    pub banner: String,
    /// From connect (or logout) to a successful login, however chatty the
    /// client is meanwhile; then 421 and close.
    pub login_timeout: Duration,
    /// After login, the longest time without a received byte (a transfer
    /// pauses it); then 421 and close.
    pub idle_timeout: Duration,
}

/// What authentication grants: the only way into the logged-in state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginGrant {
    /// The account name.
    pub name: String,
    /// May the user change anything (STOR, DELE, MKD, ...)?
    pub write: bool,
    /// The policy that applies to this user.
    pub policy: Policy,
    /// The anonymous account (read-only whatever `write` says).
    pub anonymous: bool,
}

/// What logged a user in (for the I/O layer's log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// USER and PASS (with or without a client certificate on the connection).
    Password,
    /// The TLS client certificate alone: 232 without PASS (RFC 4217 §12.2).
    Certificate,
}

/// How a TLS client certificate relates to the user named in USER
/// (RFC 4217 §12.2, §15.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCheck {
    /// Ask for the password (331): the certificate does not log this user
    /// in by itself (or the user has no certificate rule).
    Password,
    /// The certificate suffices: 232, logged in without PASS.
    Certificate(LoginGrant),
    /// The certificate belongs to someone else: 530.
    Refused,
}

/// Which address family a passive listener must use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassiveKind {
    /// `PASV`: an IPv4 listener announced as h1,h2,h3,h4,p1,p2.
    Pasv,
    /// `EPSV`: a listener on the control connection's local address, announced by port only.
    Epsv,
}

/// Where the data connection for the next transfer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataEndpoint {
    /// The client connects to the passive listener the server opened.
    Passive,
    /// The server connects to this address (PORT/EPRT).
    Active(SocketAddr),
}

/// How an upload treats the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// STOR: replace the file when the upload completes.
    Create,
    /// REST n + STOR: keep the first n bytes, write from there.
    Resume(u64),
    /// APPE: append to the file.
    Append,
    /// STOU: create a new, unique file in the given directory.
    Unique,
}

/// Which listing format a LIST-like command wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// LIST: `ls -l` style lines.
    List,
    /// NLST: names only.
    Nlst,
    /// MLSD: RFC 3659 fact lines.
    Mlsd,
}

/// The file operation of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferKind {
    /// RETR, from an offset (REST).
    Retrieve {
        /// The file to send.
        path: VirtualPath,
        /// Where to start (REST STREAM), 0 otherwise.
        offset: u64,
    },
    /// STOR, STOU, APPE.
    Store {
        /// The target file (for STOU: the directory plus a name hint).
        path: VirtualPath,
        /// Replace, resume, append or unique.
        mode: StoreMode,
    },
    /// LIST, NLST, MLSD.
    List {
        /// The directory (or file) to list.
        path: VirtualPath,
        /// The output format.
        format: ListFormat,
    },
}

/// Everything the I/O layer needs to run one transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// What to read or write.
    pub kind: TransferKind,
    /// TYPE A converts line endings, TYPE I sends bytes as they are.
    pub transfer_type: TransferType,
    /// Whether the data connection must be TLS.
    pub protection: DataProtection,
    /// Whether a protected data connection must resume this control connection's session.
    pub require_session_reuse: bool,
    /// Whether a protected upload that ends without TLS close_notify is kept
    /// ([`Policy::accept_upload_without_close_notify`]).
    pub accept_upload_without_close_notify: bool,
    /// Where the data connection comes from.
    pub endpoint: DataEndpoint,
    /// The MLSD fact selection (OPTS MLST) and the user's permissions, for listings.
    pub facts: crate::facts::FactSet,
    /// What this user may do, for the MLSx `perm` fact.
    pub permissions: crate::entry::Permissions,
}

/// A file-system request the session needs answered before it can reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsRequest {
    /// Metadata of a path (CWD, SIZE, MDTM, MLST, RNFR, STAT path).
    Stat(VirtualPath),
    /// The entries of a directory, for STAT with a path argument.
    List(VirtualPath),
    /// MKD.
    MakeDir(VirtualPath),
    /// RMD.
    RemoveDir(VirtualPath),
    /// DELE.
    Delete(VirtualPath),
    /// RNFR + RNTO.
    Rename {
        /// The existing name.
        from: VirtualPath,
        /// The new name.
        to: VirtualPath,
    },
    /// MFMT (draft-somers-ftp-mfxx): set the modification time.
    SetModified {
        /// The file.
        path: VirtualPath,
        /// Seconds since the Unix epoch.
        modified: i64,
    },
}

/// The hash functions HASH offers (draft-bryan-ftpext-hash §2), by their
/// IANA names. SHA-256 is the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// `SHA-256` (FIPS 180-4).
    #[default]
    Sha256,
    /// `SHA-512` (FIPS 180-4).
    Sha512,
}

impl HashAlgorithm {
    /// Every algorithm, in the order FEAT lists them.
    pub const ALL: [HashAlgorithm; 2] = [HashAlgorithm::Sha256, HashAlgorithm::Sha512];

    /// The IANA hash function textual name.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha512 => "SHA-512",
        }
    }

    /// The algorithm named `name` (case-insensitive), if offered.
    pub fn from_name(name: &[u8]) -> Option<HashAlgorithm> {
        HashAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// What HASH asks the I/O layer to compute (draft-bryan-ftpext-hash §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashRequest {
    /// The file.
    pub path: VirtualPath,
    /// The hash function (OPTS HASH).
    pub algorithm: HashAlgorithm,
    /// The octets `start..=end` set by RANG; `None` for the whole file.
    pub range: Option<(u64, u64)>,
}

/// A computed hash: the algorithm, the octets it covers (`start..end`, end
/// exclusive) and the lower-case hex digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashDigest {
    /// The hash function.
    pub algorithm: HashAlgorithm,
    /// The first octet hashed.
    pub start: u64,
    /// One past the last octet hashed.
    pub end: u64,
    /// The digest, lower-case hexadecimal.
    pub hex: String,
}

/// Why HASH failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashFailure {
    /// The file could not be opened or read.
    Fs(FsError),
    /// The octets to hash are more than the server hashes for one command.
    TooLarge {
        /// How many octets the request covers.
        bytes: u64,
        /// The server's limit.
        limit: u64,
    },
    /// The RANG start point is at or past the end of the file.
    RangeBeyondEnd,
    /// ABOR stopped it.
    Aborted,
}

/// Why a file-system request or a storage operation failed: the one error
/// type of every storage back-end, mapped to a reply code by
/// [`fs_error_reply`](super::replies::fs_error_reply).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// No such file or directory.
    #[error("not found")]
    NotFound,
    /// Not allowed (by the storage's own permissions).
    #[error("permission denied")]
    PermissionDenied,
    /// The path leads outside the user's root (through a symbolic link):
    /// refused like [`FsError::PermissionDenied`], told apart in the log.
    #[error("outside the root")]
    OutsideRoot,
    /// The target exists.
    #[error("already exists")]
    AlreadyExists,
    /// A directory was needed.
    #[error("not a directory")]
    NotADirectory,
    /// A file was needed.
    #[error("is a directory")]
    IsADirectory,
    /// A regular file was needed (the path is a FIFO, socket or device).
    #[error("not a regular file")]
    NotAFile,
    /// RMD on a directory with entries.
    #[error("directory not empty")]
    DirectoryNotEmpty,
    /// Disk full or quota exceeded.
    #[error("no space left")]
    NoSpace,
    /// The name is not allowed.
    #[error("invalid name")]
    InvalidName,
    /// REST offset beyond the end of the file.
    #[error("offset beyond end of file")]
    OffsetBeyondEnd,
    /// The operation is not supported by this storage.
    #[error("not supported")]
    Unsupported,
    /// Anything else; the text goes to the log, not to the client.
    #[error("{0}")]
    Other(String),
}

/// The answer to an [`FsRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsResponse {
    /// The operation succeeded and has nothing to return.
    Done,
    /// Metadata for [`FsRequest::Stat`].
    Metadata(Entry),
    /// Entries for [`FsRequest::List`] (possibly capped by the I/O layer).
    Entries(Vec<Entry>),
    /// The operation failed.
    Failed(FsError),
}

/// Facts about a transfer that has opened its file and is about to use the
/// data connection; the session answers with the 150 reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferStarted {
    /// The name STOU picked (RFC 1123 §4.1.2.9: `150 FILE: name`).
    pub unique_name: Option<Vec<u8>>,
    /// The number of bytes that will be sent, when known (RETR).
    pub size: Option<u64>,
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// All bytes moved and the data connection closed cleanly.
    Complete {
        /// Bytes moved over the data connection.
        bytes: u64,
    },
    /// The file could not be opened (before the 150 reply).
    OpenFailed(FsError),
    /// No data connection could be established.
    DataConnectionFailed,
    /// The TLS handshake on the data connection failed.
    TlsFailed,
    /// The data connection's TLS handshake was refused (RFC 4217 §10.2,
    /// §15.1.2): it did not resume this control connection's TLS session, or
    /// it presented another client certificate. The reason says which.
    SessionReuseRequired(ReuseRefusal),
    /// ABOR stopped it.
    Aborted,
    /// The data connection broke.
    ConnectionLost,
    /// No byte moved for the stall limit.
    Stalled,
    /// A protected upload ended with a TCP close but without the client's
    /// TLS close_notify: the end may have been cut off (a truncation attack
    /// or a client that closes too early), so the upload was not kept.
    NoCloseNotify,
    /// Reading or writing the file failed mid-transfer.
    StorageFailed(FsError),
}

/// Why a protected data connection was refused with 522 (RFC 4217 §10.2,
/// §15.1.2). Each reason has its own reply text with the fix for the
/// client, and a stable key ([`ReuseRefusal::key`]) for logs and for
/// clients that turn the reply into a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReuseRefusal {
    /// The client offered no TLS session at all: a full handshake (a client
    /// that does not reuse sessions, such as Python's stock `FTP_TLS`).
    NoSessionOffered,
    /// The client offered a session (ticket or ID) this control connection
    /// never issued: another control connection's, or an expired one (a
    /// client that shares one session cache across connections).
    ForeignSession,
    /// The client offered a session of this control connection that could
    /// not be resumed (another server name or cipher suite).
    SessionNotResumable,
    /// The data connection presented another client certificate than the
    /// control connection (RFC 4217 §15.1.2).
    CertificateMismatch,
}

impl ReuseRefusal {
    /// A stable key naming the case, for log lines and hints:
    /// `no-session`, `foreign-session`, `unresumable-session`,
    /// `certificate-mismatch`.
    pub fn key(self) -> &'static str {
        match self {
            ReuseRefusal::NoSessionOffered => "no-session",
            ReuseRefusal::ForeignSession => "foreign-session",
            ReuseRefusal::SessionNotResumable => "unresumable-session",
            ReuseRefusal::CertificateMismatch => "certificate-mismatch",
        }
    }
}

/// How a TLS handshake on the control connection failed (RFC 4217 §10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// Nothing was negotiated: the connection is still plaintext; answer 421.
    Complete,
    /// The handshake broke half-way: the state is unknown; just drop it.
    MidHandshake,
}

/// What the session asks the I/O layer to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this reply on the control connection.
    Reply(Reply),
    /// After writing the preceding 234 reply, run the TLS handshake on the
    /// control connection, then call `handle_tls_established` or `handle_tls_failed`.
    /// Bytes the client sent after the AUTH line must not be read as commands.
    UpgradeTls,
    /// After writing the preceding reply protected, send TLS close_notify and
    /// continue the control connection in plaintext (CCC, REIN).
    ClearTls,
    /// USER on a connection with a TLS client certificate: check how the
    /// certificate relates to this user, then call `handle_user_check`.
    CheckUser {
        /// The name from USER.
        user: Vec<u8>,
    },
    /// Check this user's password, then call `handle_auth_result`.
    Authenticate {
        /// The name from USER.
        user: Vec<u8>,
        /// The password from PASS.
        password: Vec<u8>,
    },
    /// Carry out a file-system request, then call `handle_fs_result`.
    Fs(FsRequest),
    /// Open a passive listener, then call `handle_passive_opened`.
    OpenPassive(PassiveKind),
    /// Close any passive listener (data port reset).
    ClosePassive,
    /// Run a transfer in its own task; report `handle_transfer_started` and
    /// `handle_transfer_done`.
    StartTransfer(TransferRequest),
    /// Compute a file's hash in a task of its own (bounded, cancellable by
    /// `AbortTransfer` like a transfer); report `handle_hash_done`.
    StartHash(HashRequest),
    /// Stop the running transfer (ABOR); it still reports `handle_transfer_done`.
    AbortTransfer,
    /// The user logged in (the 230 or 232 reply precedes this): the one
    /// place where the I/O layer records a login (its user name, its log).
    /// The user's storage was opened before the grant was handed in.
    LoggedIn {
        /// What the authenticator or the certificate check granted.
        grant: LoginGrant,
        /// Password or certificate.
        method: LoginMethod,
    },
    /// The user was logged out (REIN, AUTH, a new USER): storage is closed.
    LoggedOut,
    /// Close the control connection after writing the preceding replies.
    Close,
}
