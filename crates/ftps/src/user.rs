//! `ftps user add|passwd|del|list`: manage the accounts in whichever store
//! the configuration names — the PostgreSQL database of `[database]` (every
//! node sees the change at its next login) or the file's own `[[users]]`
//! (edited in place, comments kept; a running server reads it at its next
//! start). `ftps user usage`: the quota usage the nodes share in the
//! database, and measuring a user's usage again.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use ftps_server::config;
use ftps_server::users::{self, NewUser, UserStore};

/// Options of `ftps user`.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// The server's configuration file: its `[database]`, else its `[[users]]`.
    #[arg(long, short, env = "FTPS_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add an account; the password is asked for (or read from standard input).
    Add {
        /// The login name.
        name: String,
        /// The directory the user sees as `/`. Without it the user's files
        /// are in `[s3].bucket` under the prefix NAME/ (needs `[storage]
        /// backend = "s3"`).
        #[arg(long)]
        root: Option<PathBuf>,
        /// No uploads, deletions, renames or new directories.
        #[arg(long)]
        read_only: bool,
        /// Make up a random password and print it once, instead of asking.
        #[arg(long)]
        generate_password: bool,
    },
    /// Give an account a new password.
    Passwd {
        /// The login name.
        name: String,
        /// Make up a random password and print it once, instead of asking.
        #[arg(long)]
        generate_password: bool,
    },
    /// Remove an account.
    Del {
        /// The login name.
        name: String,
    },
    /// List the accounts.
    List,
    /// Show the quota usage recorded in the database (`[database]`), or
    /// delete a user's record so that the next upload, delete or rename on
    /// any node measures the user's tree again.
    Usage {
        /// Only this user.
        name: Option<String>,
        /// Delete the user's record: it is measured again at the next change.
        #[arg(long, requires = "name")]
        measure_again: bool,
    },
}

/// Run `ftps user ...`.
pub fn run(args: UserArgs) -> anyhow::Result<()> {
    let config = config::load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        if let UserCommand::Usage {
            name,
            measure_again,
        } = &args.command
        {
            return usage(&config, name.as_deref(), *measure_again).await;
        }
        let store = open_store(&config, &args.config)?;
        match args.command {
            UserCommand::Add {
                name,
                root,
                read_only,
                generate_password,
            } => {
                let password = new_password(generate_password)?;
                let user = NewUser {
                    name: name.clone(),
                    password_hash: users::hash_password(&password)?,
                    root,
                    write: !read_only,
                };
                store.add(&user).await?;
                announce(&name, generate_password.then_some(&password), "added");
            }
            UserCommand::Passwd {
                name,
                generate_password,
            } => {
                let password = new_password(generate_password)?;
                store
                    .set_password(&name, &users::hash_password(&password)?)
                    .await?;
                announce(
                    &name,
                    generate_password.then_some(&password),
                    "password changed",
                );
            }
            UserCommand::Del { name } => {
                store.remove(&name).await?;
                println!("user {name} removed ({})", store.describe());
            }
            UserCommand::List => {
                for stored in store.list().await? {
                    let u = &stored.user;
                    println!(
                        "{}\t{}\t{}\t{}",
                        u.name,
                        location(u),
                        if u.write { "read-write" } else { "read-only" },
                        if stored.enabled {
                            "enabled"
                        } else {
                            "disabled"
                        }
                    );
                }
            }
            UserCommand::Usage { .. } => {}
        }
        Ok(())
    })
}

/// `ftps user usage [NAME] [--measure-again]`.
async fn usage(config: &config::Config, name: Option<&str>, again: bool) -> anyhow::Result<()> {
    use ftps_server::quota::{PostgresUsageStore, UsageStore};
    anyhow::ensure!(
        config.database.enabled(),
        "without [database], quota usage lives in the memory of the running server and is measured again at each start"
    );
    let db = ftps_server::database::Database::new(&config.database).context("[database]")?;
    let store = PostgresUsageStore::new(db);
    if let (Some(name), true) = (name, again) {
        store.forget(name).await?;
        println!("usage of {name} deleted: the next upload, delete or rename measures it again");
        return Ok(());
    }
    for (user, usage) in store.list().await? {
        if name.is_none_or(|n| n == user) {
            println!("{user}\t{} bytes\t{} files", usage.bytes, usage.files);
        }
    }
    Ok(())
}

fn open_store(
    config: &config::Config,
    path: &std::path::Path,
) -> anyhow::Result<Arc<dyn UserStore>> {
    if config.database.enabled() {
        let db = ftps_server::database::Database::new(&config.database).context("[database]")?;
        Ok(Arc::new(users::PostgresStore::new(db)))
    } else {
        Ok(Arc::new(users::TomlUsers::from_config(config, Some(path))))
    }
}

/// Where a listed user's files are.
fn location(u: &ftps_server::config::UserSection) -> String {
    match (&u.root, &u.s3) {
        (Some(root), _) => root.display().to_string(),
        (None, Some(s3)) => format!("s3:{s3:?}"),
        (None, None) => format!("s3:[s3].bucket/{}/", u.name),
    }
}

fn announce(name: &str, generated: Option<&String>, what: &str) {
    println!("user {name} {what}");
    if let Some(password) = generated {
        println!("password: {password}   (shown once; only its hash is kept)");
    }
}

/// A generated password, or one asked twice at a terminal, or one line of
/// standard input.
fn new_password(generate: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if generate {
        return Ok(users::random_password());
    }
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == again, "the passwords differ");
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    anyhow::ensure!(!password.is_empty(), "empty password");
    Ok(password)
}
