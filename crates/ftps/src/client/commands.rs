//! The small client commands: `ls` (text or JSON), `rm`, `mkdir`, `rmdir`,
//! `mv` and `quote`.

use std::io::Write;

use ftps_client::{Entry, Error};

use super::args::{LsArgs, MvArgs, QuoteArgs, RemoteArgs};
use super::connect::{base_name, parse_url, redact_url, Conn, Prepared};
use super::{listing, reply_line, Failure};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn show(path: &[u8]) -> String {
    if path.is_empty() {
        "the login directory".into()
    } else {
        String::from_utf8_lossy(path).into_owned()
    }
}

/// Ask for the `UNIX.mode` MLSx fact when the server offers it but has it
/// off (the library does not), so listings show permissions.
async fn enable_unix_mode(conn: &mut Conn) {
    let Some(line) = conn
        .client
        .features()
        .lines
        .iter()
        .find(|l| l.to_ascii_uppercase().starts_with("MLST "))
        .cloned()
    else {
        return;
    };
    let facts: Vec<&str> = line[5..].split(';').filter(|f| !f.is_empty()).collect();
    let has_mode = facts.iter().any(|f| f.eq_ignore_ascii_case("UNIX.mode"));
    if !has_mode {
        return;
    }
    let mut wanted: Vec<&str> = facts
        .iter()
        .filter(|f| f.ends_with('*'))
        .map(|f| f.trim_end_matches('*'))
        .collect();
    wanted.push("UNIX.mode");
    let _ = conn
        .client
        .quote(&format!("OPTS MLST {};", wanted.join(";")))
        .await;
}

/// List a directory; for a plain file, MLST describes it instead.
async fn list_or_stat(conn: &mut Conn, path: &[u8]) -> Result<Vec<Entry>, Error> {
    match conn.list(path).await {
        Ok(entries) => Ok(entries),
        Err(e) if !path.is_empty() && conn.client.features().mlst && e.reply().is_some() => {
            let Ok(arg) = std::str::from_utf8(path) else {
                return Err(e);
            };
            match conn.client.quote(&format!("MLST {arg}")).await {
                Ok(reply) if reply.code == 250 && reply.lines.len() >= 3 => {
                    let line = reply.lines[1].strip_prefix(b" ").unwrap_or(&reply.lines[1]);
                    match ftps_proto::facts::parse_entry(line) {
                        Ok(mut entry) if entry.kind != ftps_client::EntryKind::Dir => {
                            entry.name = base_name(&entry.name).unwrap_or(path).to_vec();
                            Ok(vec![entry])
                        }
                        _ => Err(e),
                    }
                }
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// `ftps ls URL [--json]`.
pub async fn ls(args: LsArgs) -> Result<(), Failure> {
    let (url, prepared) = Prepared::from_url(&args.url, &args.common)?;
    let mut conn = prepared.connect().await?;
    enable_unix_mode(&mut conn).await;
    let mut entries = list_or_stat(&mut conn, &url.path)
        .await
        .map_err(|e| Failure::from(e).context(format!("listing {}", show(&url.path))))?;
    conn.quit().await;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let text = if args.json {
        listing::to_json(&entries) + "\n"
    } else {
        listing::to_text(&entries, now())
    };
    match std::io::stdout().write_all(text.as_bytes()) {
        // `ftps ls ... | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The one-command operations.
#[derive(Debug, Clone, Copy)]
pub enum Simple {
    /// DELE.
    Rm,
    /// MKD.
    Mkdir,
    /// RMD.
    Rmdir,
}

/// `ftps rm|mkdir|rmdir URL`.
pub async fn simple(args: RemoteArgs, op: Simple) -> Result<(), Failure> {
    let (url, prepared) = Prepared::from_url(&args.url, &args.common)?;
    let path = url.path.strip_suffix(b"/").unwrap_or(&url.path).to_vec();
    if path.is_empty() {
        return Err(Failure::usage(format!(
            "{} names no file or directory",
            redact_url(&args.url)
        )));
    }
    let mut conn = prepared.connect().await?;
    let (what, result) = match op {
        Simple::Rm => ("deleting", conn.client.delete(&path).await),
        Simple::Mkdir => ("creating", conn.client.mkdir(&path).await),
        Simple::Rmdir => ("removing", conn.client.rmdir(&path).await),
    };
    conn.quit().await;
    result.map_err(|e| Failure::from(e).context(format!("{what} {}", show(&path))))
}

/// `ftps mv URL NEWPATH`.
pub async fn mv(args: MvArgs) -> Result<(), Failure> {
    let (url, prepared) = Prepared::from_url(&args.url, &args.common)?;
    let from = url.path.strip_suffix(b"/").unwrap_or(&url.path).to_vec();
    if from.is_empty() {
        return Err(Failure::usage(format!(
            "{} names nothing to rename",
            redact_url(&args.url)
        )));
    }
    let mut to = if args.new_path.contains("://") {
        let target = parse_url(&args.new_path)?;
        if target.host != url.host || target.port != url.port {
            return Err(Failure::usage("mv cannot move between servers"));
        }
        target.path
    } else {
        args.new_path.clone().into_bytes()
    };
    if to.is_empty() {
        return Err(Failure::usage("the new path is empty"));
    }
    if to.ends_with(b"/") {
        if let Some(name) = base_name(&from) {
            to.extend_from_slice(name);
        }
    }
    let mut conn = prepared.connect().await?;
    let result = conn.client.rename(&from, &to).await;
    conn.quit().await;
    result
        .map_err(|e| Failure::from(e).context(format!("renaming {} to {}", show(&from), show(&to))))
}

/// `ftps quote URL CMD...`: each reply printed as the server sent it; the
/// first 4xx/5xx reply stops and fails.
pub async fn quote(args: QuoteArgs) -> Result<(), Failure> {
    let (url, prepared) = Prepared::from_url(&args.url, &args.common)?;
    let mut conn = prepared.connect().await?;
    let path = url.path.strip_suffix(b"/").unwrap_or(&url.path).to_vec();
    if !path.is_empty() {
        if let Err(e) = conn.client.cwd(&path).await {
            conn.quit().await;
            return Err(Failure::from(e).context(format!("changing to {}", show(&path))));
        }
    }
    let mut stdout = std::io::stdout();
    let mut outcome = Ok(());
    for command in &args.commands {
        let shown = if command
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("PASS "))
        {
            "PASS ****"
        } else {
            command.as_str()
        };
        let reply = match conn.client.quote(command).await {
            Ok(reply) => reply,
            Err(e) => {
                outcome = Err(Failure::from(e).context(format!("`{shown}`")));
                break;
            }
        };
        let wire = reply.encode();
        let text = String::from_utf8_lossy(&wire).replace("\r\n", "\n");
        stdout.write_all(text.as_bytes())?;
        if reply.code >= 400 {
            outcome = Err(Failure::new(format!(
                "`{shown}` failed: {}",
                reply_line(&reply)
            )));
            break;
        }
    }
    stdout.flush()?;
    conn.quit().await;
    outcome
}
