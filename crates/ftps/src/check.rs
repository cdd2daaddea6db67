//! `ftps check URL`: audit an FTPS server against RFC 4217, RFC 2228 and
//! its security with the checks of the `ftps-check` crate, and print the
//! report (for a terminal, or `--json`). The URL, credentials and trust
//! options are those of the other client commands. Exit code 0 when no
//! check failed, 1 when one did, 2 when the audit could not run.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use ftps_check::report::EXIT_NOT_RUN;
use ftps_check::{Options, Security};

use crate::client::args::LoginArgs;
use crate::client::{parse_url, redact_url, user_and_password};

/// `ftps check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// ftp:// or ftpes:// (explicit TLS) or ftps:// (implicit TLS) URL of the server.
    #[arg(required_unless_present = "list")]
    pub url: Option<String>,
    /// Print the report as JSON (the schema is in docs/check.md).
    #[arg(long)]
    pub json: bool,
    /// Show, under each check, its section, what it proves and cannot, and its evidence.
    #[arg(short, long)]
    pub verbose: bool,
    /// Create nothing on the server (checks that upload are skipped).
    #[arg(long, conflicts_with = "dir")]
    pub read_only: bool,
    /// A directory the upload checks may use; they remove what they create.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<String>,
    /// Also check this implicit FTPS port of the same host (with an ftp:// URL).
    #[arg(long, value_name = "PORT")]
    pub implicit_port: Option<u16>,
    /// Also check this explicit FTPS port of the same host (with an ftps:// URL).
    #[arg(long, value_name = "PORT")]
    pub explicit_port: Option<u16>,
    /// Run only the checks whose identifier starts with one of these (e.g. tls,data.foreign).
    #[arg(long, value_name = "PREFIX", value_delimiter = ',')]
    pub only: Vec<String>,
    /// List the checks and exit.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub login: LoginArgs,
    /// Limit on connecting, a TLS handshake and each reply, in seconds (default 15).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
}

/// Run `ftps check`; returns the exit code.
pub fn run(args: CheckArgs) -> i32 {
    if args.list {
        print!(
            "{}",
            ftps_check::render::catalogue(&ftps_check::catalogue())
        );
        return 0;
    }
    let options = match options(&args) {
        Ok(options) => options,
        Err(failure) => {
            eprintln!("error: {}", failure.message());
            if let Some(hint) = failure.hint() {
                eprintln!("hint: {hint}");
            }
            return EXIT_NOT_RUN;
        }
    };
    if args.login.insecure {
        eprintln!("warning: --insecure: the server certificate is not verified; the password goes to whoever answers");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return EXIT_NOT_RUN;
        }
    };
    let report = runtime.block_on(ftps_check::run(options));
    runtime.shutdown_timeout(Duration::from_millis(100));
    let text = if args.json {
        report.to_json() + "\n"
    } else {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        ftps_check::render::terminal(&report, args.verbose, color)
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    report.exit_code
}

fn options(args: &CheckArgs) -> Result<Options, crate::client::Failure> {
    let text = args.url.as_deref().unwrap_or_default();
    let url = parse_url(text)?;
    let (user, password) = user_and_password(
        &url,
        args.login.user.as_ref(),
        args.login.netrc_file.as_ref(),
    )?;
    let mut options = Options::new(&url.host, url.port, &user, &password);
    options.security = url.security;
    options.url = redact_url(text);
    options.tls = args.login.tls(false, false);
    match url.security {
        Security::Implicit if args.implicit_port.is_some() => {
            return Err(crate::client::Failure::usage(
                "--implicit-port goes with an ftp:// URL; with ftps:// use --explicit-port",
            ))
        }
        Security::Explicit if args.explicit_port.is_some() => {
            return Err(crate::client::Failure::usage(
                "--explicit-port goes with an ftps:// URL; with ftp:// use --implicit-port",
            ))
        }
        Security::None => {
            return Err(crate::client::Failure::usage(
                "plain FTP cannot be audited for FTPS",
            ))
        }
        _ => {}
    }
    options.implicit_port = args.implicit_port;
    options.explicit_port = args.explicit_port;
    options.read_only = args.read_only;
    options.dir = args.dir.clone();
    options.only = args.only.clone();
    if let Some(secs) = args.timeout {
        options.timeout = Duration::from_secs(secs);
    }
    Ok(options)
}
