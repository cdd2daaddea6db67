//! The small client commands: `ls` (text or JSON), `rm`, `mkdir`, `rmdir`,
//! `mv` and `quote`.

use std::io::Write;

use ftps_client::{Entry, EntryKind, Error, Listing};

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

/// A listing's lines that were no entry, as a warning (the entries are
/// shown; nothing is dropped silently).
pub fn warn_unreadable(listing: &Listing, what: &str) {
    if let Some(first) = listing.unreadable.first() {
        eprintln!(
            "warning: {what}: {} line(s) of the listing are no entry this client can read and \
             were left out; the first: {}",
            listing.unreadable_count,
            String::from_utf8_lossy(first)
        );
    }
}

/// Is this the server saying no (a 4xx/5xx reply) rather than the
/// connection failing?
fn refused(e: &Error) -> bool {
    e.reply().is_some_and(|r| r.code >= 400)
}

/// List a directory; for a URL naming a file, describe that file: MLST
/// where the server has it, else (or when that fails) LIST of the path.
/// Servers refuse MLSD of a file or of a missing directory with 550, or
/// 501 (pyftpdlib).
async fn list_or_stat(conn: &mut Conn, path: &[u8]) -> Result<Listing, Error> {
    let name = base_name(path).unwrap_or(path).to_vec();
    let e = match conn.listing(path).await {
        Ok(mut listing) => {
            // LIST of a file shows that file, often under the path asked
            // for (vsftpd, ftp-srv): show its name, as for MLST.
            if let [entry] = listing.entries.as_mut_slice() {
                let asked = path.strip_prefix(b"/").unwrap_or(path);
                let shown = entry.name.strip_prefix(b"/").unwrap_or(&entry.name);
                if entry.kind != EntryKind::Dir && shown == asked && asked.contains(&b'/') {
                    entry.name = name.clone();
                }
            }
            return Ok(listing);
        }
        Err(e) if !path.is_empty() && refused(&e) => e,
        Err(e) => return Err(e),
    };
    let one = |mut entry: Entry| {
        entry.name = name.clone();
        Listing {
            entries: vec![entry],
            ..Listing::default()
        }
    };
    if conn.client.features().mlst {
        match conn.client.mlst(path).await {
            Ok(entry) if entry.kind != EntryKind::Dir => return Ok(one(entry)),
            Ok(_) => return Err(e),
            Err(_) => {}
        }
        // MLSD was the listing; a LIST of the path may still describe it.
        if let Ok(listing) = conn.listing_by_list(path).await {
            if let [entry] = listing.entries.as_slice() {
                let named = base_name(&entry.name) == Some(name.as_slice());
                if entry.kind != EntryKind::Dir && named {
                    return Ok(one(entry.clone()));
                }
            }
        }
    }
    Err(e)
}

/// `ftps ls URL [--json]`.
pub async fn ls(args: LsArgs) -> Result<(), Failure> {
    let (url, prepared) = Prepared::from_url(&args.url, &args.common)?;
    let mut conn = prepared.connect().await?;
    enable_unix_mode(&mut conn).await;
    let what = format!("listing {}", show(&url.path));
    let listing = list_or_stat(&mut conn, &url.path)
        .await
        .map_err(|e| Failure::from(e).context(&what))?;
    conn.quit().await;
    warn_unreadable(&listing, &what);
    let mut entries = listing.entries;
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
