//! The client subcommands of `ftps` (`ls`, `get`, `put`, `rm`, `mkdir`,
//! `rmdir`, `mv`, `mirror`, `quote`) on top of the `ftps-client` library.
//!
//! Every failure ends the process with a non-zero exit code and one
//! `error: ...` line on standard error, followed by a `hint: ...` line when
//! there is advice for it. Passwords are never printed: the dialogue shown
//! by `--verbose` masks PASS, and URLs in messages have their password
//! replaced by `****`.

pub mod args;
mod commands;
mod connect;
mod listing;
mod mirror;
mod netrc;
mod progress;
mod transfer;

use std::io::Write;

use ftps_client::Error;
use ftps_proto::client::LoginError;
use ftps_proto::reply::Reply;

pub use args::ClientCommand;
pub use connect::{parse_url, redact_url, user_and_password};

/// Exit code for a failed operation.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for unusable arguments (clap uses the same for its own).
pub const EXIT_USAGE: i32 = 2;

/// Why a command failed: the message, an optional hint, the exit code.
#[derive(Debug)]
pub struct Failure {
    message: String,
    hint: Option<String>,
    code: i32,
}

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            hint: None,
            code: EXIT_FAILURE,
        }
    }

    /// An unusable argument.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            ..Failure::new(message)
        }
    }

    /// Add (or replace) the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// Put what was being done in front of the message.
    pub fn context(mut self, what: impl std::fmt::Display) -> Failure {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// The message (without `error: `).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The hint (without `hint: `), if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match e {
            Error::InvalidArgument(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        };
        Failure {
            message: describe(&e),
            hint: e.hint().map(str::to_string).or_else(|| extra_hint(&e)),
            code,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::new(e.to_string())
    }
}

/// `214 text` (lines joined by spaces), for messages.
pub fn reply_line(reply: &Reply) -> String {
    format!("{} {}", reply.code, reply.text().replace('\n', " "))
}

/// A one-line description of a library error, with replies shown as
/// `CODE text` rather than debug structures.
fn describe(e: &Error) -> String {
    let Error::Login(login) = e else {
        return e.to_string();
    };
    match login {
        LoginError::Greeting(r) => format!("the server refused the connection: {}", reply_line(r)),
        LoginError::TlsRefused(r) => format!("the server refused TLS: {}", reply_line(r)),
        LoginError::LoginRefused(r) => format!("login refused: {}", reply_line(r)),
        LoginError::ProtectionRefused { command, reply } => {
            format!("{command} refused: {}", reply_line(reply))
        }
        LoginError::CccRefused(r) => format!("CCC refused: {}", reply_line(r)),
        LoginError::CommandFailed { command, reply } => {
            format!("command `{command}` failed: {}", reply_line(reply))
        }
        LoginError::Unexpected { command, reply } => {
            format!("unexpected reply to {command}: {}", reply_line(reply))
        }
        other => other.to_string(),
    }
}

/// Hints the library does not give.
fn extra_hint(e: &Error) -> Option<String> {
    match e {
        Error::Login(LoginError::LoginRefused(_)) => Some(
            "check the user name and password (-u USER[:PASSWORD], the URL, or --netrc-file)"
                .into(),
        ),
        Error::Login(LoginError::CccRefused(_)) => {
            Some("the server does not allow CCC; run without --ccc".into())
        }
        Error::Login(LoginError::ProtectionRefused { .. }) => Some(
            "the server refuses this data protection level; try --prot P (the default)".into(),
        ),
        Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => Some(
            "nothing listens there: ftp:// and ftpes:// are explicit TLS (port 21 by default), \
             ftps:// implicit TLS (port 990)"
                .into(),
        ),
        Error::Tls(tls) => {
            let text = format!("{tls:?}");
            (text.contains("PeerIncompatible") || text.contains("ProtocolVersion")).then(|| {
                "the server does not speak the TLS version chosen by --tls13/--tls12".into()
            })
        }
        Error::Timeout("in the TLS handshake") => Some(
            "no TLS handshake: is this an implicit FTPS port (ftps://) or an explicit one (ftp://)?"
                .into(),
        ),
        Error::Protocol(p) if p.contains("bad reply") => Some(
            "the server did not answer in FTP: is this an implicit FTPS port? Use ftps:// for it"
                .into(),
        ),
        _ => None,
    }
}

fn init_logging(common: &args::CommonArgs) {
    let filter = if common.verbose {
        "ftps::dialogue=debug,warn"
    } else {
        "off"
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_level(false)
        .try_init();
}

/// Run one client subcommand; returns the process exit code.
pub fn run(command: ClientCommand) -> i32 {
    init_logging(command.common());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return EXIT_FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            ClientCommand::Ls(a) => commands::ls(a).await,
            ClientCommand::Get(a) => transfer::get(a).await,
            ClientCommand::Put(a) => transfer::put(a).await,
            ClientCommand::Rm(a) => commands::simple(a, commands::Simple::Rm).await,
            ClientCommand::Mkdir(a) => commands::simple(a, commands::Simple::Mkdir).await,
            ClientCommand::Rmdir(a) => commands::simple(a, commands::Simple::Rmdir).await,
            ClientCommand::Mv(a) => commands::mv(a).await,
            ClientCommand::Mirror(a) => mirror::mirror(a).await,
            ClientCommand::Quote(a) => commands::quote(a).await,
        }
    });
    // Background tasks (progress ticks) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            if let Some(hint) = &failure.hint {
                eprintln!("hint: {hint}");
            }
            failure.code
        }
    }
}
