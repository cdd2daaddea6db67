//! `ftps`: FTP over TLS. `ftps serve` runs the server; `ftps hash-password`
//! makes a password hash for the configuration file; `ftps user` manages
//! accounts (in PostgreSQL or the configuration file); `ftps ls`, `get`,
//! `put`, `rm`, `mkdir`, `rmdir`, `mv`, `mirror` and `quote` are the client;
//! `ftps check` audits any FTPS server (RFC 4217 and its security).

mod check;
mod client;
mod logging;
mod serve;
mod user;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// FTP over TLS (RFC 4217): server and tools.
#[derive(Debug, Parser)]
#[command(name = "ftps", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the FTPS server (zero configuration: `ftps serve --root DIR`).
    Serve(serve::ServeArgs),
    /// Read a password (prompt, or one line on standard input) and print its argon2id hash.
    HashPassword {
        /// Read the password from this file's first line instead.
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// Manage accounts: `ftps user --config FILE add|passwd|del|list` (in the
    /// configured PostgreSQL database, else in the file's [[users]]).
    User(user::UserArgs),
    /// Audit an FTPS server against RFC 4217, RFC 2228 and its security (exit 0, 1 on a failed check, 2 when it cannot run).
    Check(check::CheckArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Commands::Serve(args) => serve::run(args),
        Commands::HashPassword { from_file } => hash_password(from_file),
        Commands::User(args) => user::run(args),
        Commands::Check(args) => std::process::exit(check::run(args)),
        Commands::Client(command) => std::process::exit(client::run(command)),
    }
}

fn hash_password(from_file: Option<PathBuf>) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal};
    let password = match from_file {
        Some(path) => std::fs::read_to_string(&path)?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        None if std::io::stdin().is_terminal() => {
            let first = rpassword::prompt_password("Password: ")?;
            let again = rpassword::prompt_password("Again: ")?;
            anyhow::ensure!(first == again, "the passwords differ");
            first
        }
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    anyhow::ensure!(!password.is_empty(), "empty password");
    println!("{}", ftps_server::users::hash_password(&password)?);
    Ok(())
}
