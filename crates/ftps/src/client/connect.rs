//! From a URL and the options to a logged-in connection: the URL parsed
//! (its password kept out of messages), the credentials found (`-u`, the
//! URL, the netrc file, else a prompt on a terminal), the security chosen
//! (`ftp://` is always explicit TLS unless `--plain`; `ftps://` implicit),
//! and the RFC 4217 options mapped onto the library's `ConnectOptions`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use ftps_client::{
    Client, ConnectOptions, DataMode, DataProtection, Error, FtpUrl, Listing, ProtTiming, Security,
};
use ftps_proto::client::LoginError;

use super::args::CommonArgs;
use super::{netrc, Failure};

/// `ftp://user:****@host/...`: the URL with any password hidden.
pub fn redact_url(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:****{}", &rest[at..]),
                None => text.to_string(),
            }
        }
        None => text.to_string(),
    }
}

/// Parse a URL; a bad one is a usage error whose message hides the password.
pub fn parse_url(text: &str) -> Result<FtpUrl, Failure> {
    FtpUrl::parse(text).map_err(|e| {
        let full = e.to_string();
        let reason = full
            .rsplit_once("\": ")
            .map(|(_, why)| why.to_string())
            .unwrap_or_else(|| "not a usable URL".into());
        Failure::usage(format!("URL {}: {reason}", redact_url(text)))
            .with_hint("URLs look like ftp://HOST[:PORT]/PATH (explicit TLS) or ftps://HOST/PATH (implicit TLS)")
    })
}

/// The last path component of a URL path (the file name), if any.
pub fn base_name(path: &[u8]) -> Option<&[u8]> {
    let name = path.rsplit(|b| *b == b'/').next().unwrap_or_default();
    (!name.is_empty() && name != b"." && name != b"..").then_some(name)
}

struct Credentials {
    user: String,
    password: String,
    account: Option<String>,
}

fn netrc_path(netrc_file: Option<&PathBuf>) -> Option<(PathBuf, bool)> {
    match netrc_file {
        Some(path) => Some((path.clone(), true)),
        None => std::env::var_os("HOME").map(|home| (PathBuf::from(home).join(".netrc"), false)),
    }
}

fn read_netrc(
    netrc_file: Option<&PathBuf>,
) -> Result<Option<(PathBuf, Vec<netrc::Machine>)>, Failure> {
    let Some((path, explicit)) = netrc_path(netrc_file) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((path, netrc::parse(&text)))),
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::usage(format!(
            "--netrc-file {}: {e}",
            path.display()
        ))),
    }
}

fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: {} holds a password and others may read it: chmod 600 it",
                path.display()
            );
        }
    }
}

fn credentials(url: &FtpUrl, common: &CommonArgs) -> Result<Credentials, Failure> {
    credentials_from(
        url,
        common.login.user.as_ref(),
        common.login.netrc_file.as_ref(),
    )
}

/// The user and password for a URL, found as every client command finds
/// them: `-u USER[:PASSWORD]`, the URL, the netrc file, else a prompt on a
/// terminal (anonymous without a user).
pub fn user_and_password(
    url: &FtpUrl,
    user: Option<&String>,
    netrc_file: Option<&PathBuf>,
) -> Result<(String, String), Failure> {
    credentials_from(url, user, netrc_file).map(|c| (c.user, c.password))
}

fn credentials_from(
    url: &FtpUrl,
    user_arg: Option<&String>,
    netrc_file: Option<&PathBuf>,
) -> Result<Credentials, Failure> {
    let (mut user, mut password) = (url.user.clone(), url.password.clone());
    if let Some(arg) = user_arg {
        match arg.split_once(':') {
            Some((u, p)) => {
                user = Some(u.to_string());
                password = Some(p.to_string());
            }
            None => {
                if user.as_deref() != Some(arg.as_str()) {
                    password = None;
                }
                user = Some(arg.clone());
            }
        }
    }
    let mut account = None;
    if password.is_none() {
        if let Some((path, machines)) = read_netrc(netrc_file)? {
            if let Some(m) = netrc::lookup(&machines, &url.host, user.as_deref()) {
                if user.is_none() {
                    user = m.login.clone();
                }
                if m.password.is_some() {
                    warn_if_readable_by_others(&path);
                    password = m.password.clone();
                }
                account = m.account.clone();
            }
        }
    }
    let Some(user) = user else {
        return Ok(Credentials {
            user: "anonymous".into(),
            password: password.unwrap_or_else(|| "anonymous@".into()),
            account,
        });
    };
    let password =
        match password {
            Some(p) => p,
            None if std::io::stdin().is_terminal() => {
                rpassword::prompt_password(format!("Password for {user}@{}: ", url.host))
                    .map_err(|e| Failure::new(format!("reading the password: {e}")))?
            }
            None => return Err(
                Failure::usage(format!("no password for {user}@{}", url.host)).with_hint(
                    "give it with -u USER:PASSWORD, in the URL, or in ~/.netrc (--netrc-file); \
                     on a terminal it is asked for",
                ),
            ),
        };
    Ok(Credentials {
        user,
        password,
        account,
    })
}

/// Everything needed to open (one or several) connections.
#[derive(Debug, Clone)]
pub struct Prepared {
    options: ConnectOptions,
    manual_prot: Option<DataProtection>,
    plain: bool,
    verbose: bool,
}

/// A logged-in connection.
#[derive(Debug)]
pub struct Conn {
    /// The library client.
    pub client: Client,
    /// Limit on a data connection that moves nothing.
    pub idle_timeout: Duration,
    manual_prot: Option<DataProtection>,
    listing_prot: bool,
}

impl Prepared {
    /// Work out credentials and options (and print the security warnings once).
    pub fn new(url: &FtpUrl, common: &CommonArgs) -> Result<Prepared, Failure> {
        let security = match (common.plain, url.security) {
            (true, Security::Implicit) => {
                return Err(Failure::usage(
                    "--plain cannot be used with ftps:// (implicit TLS); use ftp://",
                ))
            }
            (true, _) => Security::None,
            (false, s) => s,
        };
        let creds = credentials(url, common)?;
        let mut options =
            ConnectOptions::new(url.host.clone(), url.port, &creds.user, &creds.password);
        let login = &mut options.login;
        login.security = security;
        login.account = creds.account.map(String::into_bytes);
        login.prot_timing = common.pbsz_timing.into();
        login.protection = common
            .prot
            .map(Into::into)
            .unwrap_or(DataProtection::Private);
        login.before_auth = common
            .before_auth
            .iter()
            .map(|c| c.clone().into_bytes())
            .collect();
        login.after_login = common
            .after_login
            .iter()
            .map(|c| c.clone().into_bytes())
            .collect();
        login.ccc = common.ccc;
        let manual_prot = (security != Security::None && login.prot_timing == ProtTiming::Manual)
            .then_some(login.protection);
        options.tls = common.login.tls(common.tls13, common.tls12);
        options.data_mode = if common.active {
            DataMode::Active
        } else {
            DataMode::Passive
        };
        options.listing_protection = common.prot_list.map(Into::into);
        if let Some(secs) = common.timeout {
            let limit = Duration::from_secs(secs);
            options.connect_timeout = limit;
            options.reply_timeout = limit;
            options.idle_data_timeout = limit;
        }
        if common.plain {
            eprintln!("warning: --plain: no TLS; the password and all data travel in clear text");
        }
        if common.login.insecure {
            eprintln!(
                "warning: --insecure: the server certificate is not verified; \
                 anyone on the path can read and change this session"
            );
        }
        Ok(Prepared {
            options,
            manual_prot,
            plain: common.plain,
            verbose: common.verbose,
        })
    }

    /// Parse the URL and prepare in one step.
    pub fn from_url(text: &str, common: &CommonArgs) -> Result<(FtpUrl, Prepared), Failure> {
        let url = parse_url(text)?;
        let prepared = Prepared::new(&url, common)?;
        Ok((url, prepared))
    }

    /// Connect, secure and log in.
    pub async fn connect(&self) -> Result<Conn, Failure> {
        let where_ = format_host(&self.options.host, self.options.port);
        match Client::connect(self.options.clone()).await {
            Ok(client) => {
                if self.verbose {
                    let control = client
                        .tls_version()
                        .filter(|_| client.is_control_protected())
                        .unwrap_or_else(|| "plaintext".into());
                    eprintln!("* logged in to {where_}; control connection: {control}");
                }
                Ok(Conn {
                    client,
                    idle_timeout: self.options.idle_data_timeout,
                    manual_prot: self.manual_prot,
                    listing_prot: self.options.listing_protection.is_some(),
                })
            }
            Err(e) => {
                let security = self.options.login.security;
                let hint = match &e {
                    Error::Login(LoginError::LoginRefused(r)) if self.plain && r.code == 530 => {
                        Some("the server requires TLS before login (RFC 4217 §10.1): run without --plain".to_string())
                    }
                    Error::ImplicitTlsPort => Some(format!(
                        "use ftps://{where_}/ for this port (implicit FTPS: TLS from the first \
                         byte); ftp:// is for ports that greet in plain text and then switch with \
                         AUTH TLS"
                    )),
                    Error::Timeout("waiting for a reply") if security != Security::Implicit => Some(
                        "no greeting: if this is an implicit FTPS port (990 by default), use ftps://"
                            .to_string(),
                    ),
                    Error::Tls(_) | Error::Protocol(_)
                        if security == Security::Implicit && e.hint().is_none() =>
                    {
                        Some("no TLS from the first byte: if this is an explicit FTPS port (21 by default), use ftp://".to_string())
                    }
                    _ => None,
                };
                let mut failure = Failure::from(e).context(where_);
                if let Some(hint) = hint {
                    failure = failure.with_hint(hint);
                }
                Err(failure)
            }
        }
    }
}

fn format_host(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Conn {
    /// With `--pbsz-timing manual`: PBSZ/PROT now, before a data transfer
    /// (RFC 4217 §10.4); a no-op once set.
    pub async fn prepare_data(&mut self) -> Result<(), Error> {
        if let Some(level) = self.manual_prot {
            self.client.set_prot(level).await?;
        }
        Ok(())
    }

    /// A directory listing (the library applies `--prot-list`), with the
    /// lines that were no entry.
    pub async fn listing(&mut self, path: &[u8]) -> Result<Listing, Error> {
        if !self.listing_prot {
            self.prepare_data().await?;
        }
        self.client.listing(path).await
    }

    /// [`Conn::listing`] with LIST whatever FEAT offers (for a path that
    /// may be a file).
    pub async fn listing_by_list(&mut self, path: &[u8]) -> Result<Listing, Error> {
        if !self.listing_prot {
            self.prepare_data().await?;
        }
        self.client.listing_by_list(path).await
    }

    /// QUIT, ignoring errors (the work is done).
    pub async fn quit(self) {
        let _ = self.client.quit().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("ftp://u:secret@h:21/x"), "ftp://u:****@h:21/x");
        assert_eq!(redact_url("ftp://u@h/x:y@z"), "ftp://u@h/x:y@z");
        assert_eq!(redact_url("ftps://h/a:b@c"), "ftps://h/a:b@c");
        assert_eq!(redact_url("nonsense"), "nonsense");
        let f = parse_url("ftp://u:secret@h:port/").err().unwrap();
        assert!(!f.message().contains("secret"), "{}", f.message());
        assert!(f.message().contains("bad port"), "{}", f.message());
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name(b"a/b.txt"), Some(&b"b.txt"[..]));
        assert_eq!(base_name(b"b"), Some(&b"b"[..]));
        assert_eq!(base_name(b"a/"), None);
        assert_eq!(base_name(b""), None);
        assert_eq!(base_name(b"a/.."), None);
    }
}
