//! Command-line arguments of the client subcommands (`ls`, `get`, `put`,
//! `rm`, `mkdir`, `rmdir`, `mv`, `mirror`, `quote`): one struct per
//! subcommand, each flattening the connection options every client
//! subcommand shares ([`CommonArgs`]), so they may be given before or after
//! the positional arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use ftps_client::{DataProtection, ProtTiming};

/// The client subcommands, flattened into the `ftps` command.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List a remote directory (`ls -l` style, or --json).
    Ls(LsArgs),
    /// Download a file (to DEST.part, renamed to DEST when complete).
    Get(GetArgs),
    /// Upload a file (a URL ending in `/` keeps the file name).
    Put(PutArgs),
    /// Delete a remote file.
    Rm(RemoteArgs),
    /// Create a remote directory.
    Mkdir(RemoteArgs),
    /// Remove an empty remote directory.
    Rmdir(RemoteArgs),
    /// Rename or move a remote file or directory.
    Mv(MvArgs),
    /// Mirror a remote tree into a local directory (or, with --reverse, a local tree to the server).
    Mirror(MirrorArgs),
    /// Send raw commands on the control connection and print the replies.
    Quote(QuoteArgs),
}

impl ClientCommand {
    /// The connection options of whichever subcommand this is.
    pub fn common(&self) -> &CommonArgs {
        match self {
            ClientCommand::Ls(a) => &a.common,
            ClientCommand::Get(a) => &a.common,
            ClientCommand::Put(a) => &a.common,
            ClientCommand::Rm(a) | ClientCommand::Mkdir(a) | ClientCommand::Rmdir(a) => &a.common,
            ClientCommand::Mv(a) => &a.common,
            ClientCommand::Mirror(a) => &a.common,
            ClientCommand::Quote(a) => &a.common,
        }
    }
}

/// A PROT level (RFC 4217 §9): C (clear) or P (private).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtLevel {
    /// PROT C: the data connection is not protected.
    #[value(name = "C", alias = "c")]
    Clear,
    /// PROT P: the data connection runs TLS (the default).
    #[value(name = "P", alias = "p")]
    Private,
}

impl From<ProtLevel> for DataProtection {
    fn from(level: ProtLevel) -> DataProtection {
        match level {
            ProtLevel::Clear => DataProtection::Clear,
            ProtLevel::Private => DataProtection::Private,
        }
    }
}

/// When PBSZ 0 / PROT are sent (RFC 4217 §10.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PbszTiming {
    /// Right after AUTH, before USER.
    AfterAuth,
    /// After login (the default).
    AfterLogin,
    /// Not during set-up: just before the first data transfer.
    Manual,
}

impl From<PbszTiming> for ProtTiming {
    fn from(timing: PbszTiming) -> ProtTiming {
        match timing {
            PbszTiming::AfterAuth => ProtTiming::AfterAuth,
            PbszTiming::AfterLogin => ProtTiming::AfterLogin,
            PbszTiming::Manual => ProtTiming::Manual,
        }
    }
}

/// Who logs in and which server is trusted: the options every client
/// subcommand and `ftps check` share.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection options")]
pub struct LoginArgs {
    /// User name, optionally with the password (else: the URL, ~/.netrc, or a prompt).
    #[arg(short = 'u', long = "user", value_name = "USER[:PASSWORD]")]
    pub user: Option<String>,
    /// Read credentials from this netrc file instead of ~/.netrc.
    #[arg(long, value_name = "PATH")]
    pub netrc_file: Option<PathBuf>,
    /// Trust only the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Trust exactly the server whose certificate or public key has this SHA-256 hash.
    #[arg(long, value_name = "sha256:HASH", conflicts_with = "cacert")]
    pub pin: Option<String>,
    /// Do not verify the server certificate (anyone on the path can read the session).
    #[arg(long, conflicts_with_all = ["cacert", "pin"])]
    pub insecure: bool,
    /// Client certificate (PEM) to present (RFC 4217 §15.1.2); needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
}

impl LoginArgs {
    /// The TLS options these arguments ask for, with the version limits
    /// the caller allows.
    pub fn tls(&self, tls13_only: bool, tls12_only: bool) -> ftps_client::TlsOptions {
        ftps_client::TlsOptions {
            ca_file: self.cacert.clone(),
            pin: self.pin.clone(),
            insecure: self.insecure,
            client_cert: self.cert.clone().zip(self.key.clone()),
            tls13_only,
            tls12_only,
        }
    }
}

/// Options shared by every client subcommand.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection options")]
pub struct CommonArgs {
    #[command(flatten)]
    pub login: LoginArgs,
    /// Allow plain FTP without TLS: the password and all data travel in clear text.
    #[arg(long, conflicts_with_all = ["ccc", "prot", "prot_list"])]
    pub plain: bool,
    /// Active mode: the server connects to us (EPRT, falling back to PORT).
    #[arg(long)]
    pub active: bool,
    /// Data protection for file transfers: C (clear) or P (private, the default).
    #[arg(long, value_enum, value_name = "C|P")]
    pub prot: Option<ProtLevel>,
    /// Data protection for directory listings, when it should differ (RFC 4217 §10.4).
    #[arg(long, value_enum, value_name = "C|P")]
    pub prot_list: Option<ProtLevel>,
    /// When PBSZ/PROT are sent (RFC 4217 §10.3).
    #[arg(long, value_enum, default_value = "after-login", value_name = "WHEN")]
    pub pbsz_timing: PbszTiming,
    /// A command line to send before AUTH (repeatable; RFC 4217 §10.3).
    #[arg(long, value_name = "CMD")]
    pub before_auth: Vec<String>,
    /// A command line to send after login (repeatable).
    #[arg(long, value_name = "CMD")]
    pub after_login: Vec<String>,
    /// Clear the control connection with CCC after login (RFC 4217 §5); data stays protected.
    #[arg(long)]
    pub ccc: bool,
    /// Use TLS 1.3 only.
    #[arg(long, conflicts_with = "tls12")]
    pub tls13: bool,
    /// Use TLS 1.2 only.
    #[arg(long)]
    pub tls12: bool,
    /// Resume: get continues DEST.part (or DEST), put continues the remote file.
    #[arg(short = 'c', long = "continue")]
    pub resume: bool,
    /// ASCII transfer (TYPE A): line endings converted.
    #[arg(long)]
    pub ascii: bool,
    /// Limit on connecting, on each reply and on an idle data connection, in seconds.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Show the control connection dialogue (the password masked) on standard error.
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// No progress bars or notes; only errors and warnings.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `ftps ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// ftp://, ftpes:// (explicit TLS) or ftps:// (implicit TLS) URL of a directory.
    pub url: String,
    /// Print a JSON array of entries instead.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `ftps get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// URL of the file.
    pub url: String,
    /// Local file or directory (default: the file name in the current directory; `-`: standard output).
    pub dest: Option<PathBuf>,
    /// Compare the file's SHA-256 with the server's (HASH), where the server offers it.
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `ftps put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// Local file (`-`: standard input).
    pub file: PathBuf,
    /// URL of the remote file, or of a directory when it ends in `/`.
    pub url: String,
    /// Compare the file's SHA-256 with the server's (HASH), where the server offers it.
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `ftps rm`, `ftps mkdir`, `ftps rmdir`.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// URL of the remote file or directory.
    pub url: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `ftps mv`.
#[derive(Debug, Args)]
pub struct MvArgs {
    /// URL of the file or directory to rename.
    pub url: String,
    /// The new path on the same server, relative to the login directory (or
    /// starting with `/`); ending in `/` keeps the name.
    pub new_path: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `ftps mirror`.
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// Upload: mirror a local DIR to the URL (`ftps mirror --reverse DIR URL`).
    #[arg(short = 'R', long)]
    pub reverse: bool,
    /// Delete what is not on the source side.
    #[arg(long)]
    pub delete: bool,
    /// Transfer files over N control connections at once.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=32))]
    pub parallel: u16,
    /// Compare each copied file's SHA-256 with the server's (HASH), where the server offers it.
    #[arg(long)]
    pub verify: bool,
    /// The source: a URL (or with --reverse a local directory).
    pub source: String,
    /// The target: a local directory (or with --reverse a URL).
    pub target: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `ftps quote`.
#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// URL of the server (a path in it becomes the working directory first).
    pub url: String,
    /// Command lines, one per argument, e.g. "SITE HELP".
    #[arg(required = true, value_name = "CMD")]
    pub commands: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}
