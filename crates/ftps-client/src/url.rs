//! FTP URLs: `ftp://` and `ftpes://` mean explicit FTPS (AUTH TLS), `ftps://`
//! implicit FTPS (TLS from the first byte). User and password may be given
//! in the URL (percent-encoded, RFC 3986 / RFC 1738 §3.2).

use ftps_proto::client::Security;

use crate::Error;

/// A parsed FTP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpUrl {
    /// Explicit or implicit TLS.
    pub security: Security,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port (21 for explicit, 990 for implicit when not given).
    pub port: u16,
    /// User, percent-decoded.
    pub user: Option<String>,
    /// Password, percent-decoded.
    pub password: Option<String>,
    /// The path after the host, percent-decoded (bytes: names need not be UTF-8);
    /// empty for the login directory.
    pub path: Vec<u8>,
}

impl FtpUrl {
    /// Parse `ftp://`, `ftpes://` or `ftps://` URLs.
    pub fn parse(url: &str) -> Result<FtpUrl, Error> {
        let shown = redact(url);
        let bad = |why: &str| Error::InvalidArgument(format!("URL {shown:?}: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let (security, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "ftp" | "ftpes" => (Security::Explicit, 21),
            "ftps" => (Security::Implicit, 990),
            _ => return Err(bad("scheme must be ftp, ftpes or ftps")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (Some(decode_utf8(u, url)?), Some(decode_utf8(p, url)?)),
                None => (Some(decode_utf8(info, url)?), None),
            },
            None => (None, None),
        };
        let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
            let end = stripped.find(']').ok_or_else(|| bad("unclosed ["))?;
            let host = &stripped[..end];
            let port = match &stripped[end + 1..] {
                "" => default_port,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| bad("bad port"))?,
            };
            (host.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("bad port"))?),
                None => (hostport.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(FtpUrl {
            security,
            host,
            port,
            user,
            password,
            path: percent_decode(path),
        })
    }

    /// The path as the server should see it: relative to the login directory
    /// unless it starts with an (encoded) slash.
    pub fn path_bytes(&self) -> &[u8] {
        &self.path
    }
}

fn decode_utf8(s: &str, url: &str) -> Result<String, Error> {
    String::from_utf8(percent_decode(s)).map_err(|_| {
        Error::InvalidArgument(format!("URL {:?}: user or password not UTF-8", redact(url)))
    })
}

/// The URL with any password replaced by `****`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => {
            let (info, host) = authority.split_at(at);
            let user = info.split_once(':').map(|(u, _)| u).unwrap_or(info);
            let masked = if info.contains(':') { ":****" } else { "" };
            format!("{scheme}://{user}{masked}{host}{path}")
        }
        None => url.to_string(),
    }
}

/// Decode `%XX` escapes; anything malformed is kept as is.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schemes_choose_explicit_or_implicit() {
        let u = FtpUrl::parse("ftp://h/x").unwrap();
        assert_eq!((u.security, u.port), (Security::Explicit, 21));
        let u = FtpUrl::parse("ftpes://h:2121/").unwrap();
        assert_eq!((u.security, u.port), (Security::Explicit, 2121));
        let u = FtpUrl::parse("ftps://h").unwrap();
        assert_eq!((u.security, u.port), (Security::Implicit, 990));
        assert!(FtpUrl::parse("http://h/").is_err());
    }

    #[test]
    fn credentials_and_path_are_percent_decoded() {
        let u = FtpUrl::parse("ftp://us%40er:p%3Ass@example.com:21/dir/caf%C3%A9%20x.txt").unwrap();
        assert_eq!(u.user.as_deref(), Some("us@er"));
        assert_eq!(u.password.as_deref(), Some("p:ss"));
        assert_eq!(u.host, "example.com");
        assert_eq!(u.path, "dir/café x.txt".as_bytes());
    }

    #[test]
    fn passwords_never_appear_in_errors() {
        let err = FtpUrl::parse("ftp://bob:hunter2@h:99999/").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(redact("ftp://bob:pw@h/x"), "ftp://bob:****@h/x");
    }

    #[test]
    fn ipv6_hosts() {
        let u = FtpUrl::parse("ftp://[::1]:2121/a").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 2121));
        let u = FtpUrl::parse("ftps://[::1]/").unwrap();
        assert_eq!(u.port, 990);
    }

    #[test]
    fn non_utf8_path_bytes_survive() {
        let u = FtpUrl::parse("ftp://h/caf%E9").unwrap();
        assert_eq!(u.path, b"caf\xe9");
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
    }
}
