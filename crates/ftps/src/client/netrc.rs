//! A small `.netrc` parser (the format of ftp(1) and curl): whitespace
//! separated tokens `machine NAME`, `default`, `login NAME`, `password
//! SECRET` (or `passwd`), `account ACCT` and `macdef NAME` (whose body, up to
//! the next empty line, is skipped). A token may be double-quoted, with `\`
//! escaping the next character, so passwords may contain spaces. A line whose
//! first non-blank character is `#` is a comment. Unknown tokens are ignored.

/// One `machine` (or `default`) block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Machine {
    /// The host name; `None` for the `default` block.
    pub name: Option<String>,
    /// `login`.
    pub login: Option<String>,
    /// `password`.
    pub password: Option<String>,
    /// `account`.
    pub account: Option<String>,
}

struct Tokens<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Tokens<'_> {
    /// Skip blanks and comment lines; true at the end of the text.
    fn skip_blank(&mut self) -> bool {
        let mut at_line_start = self.pos == 0 || self.text.get(self.pos - 1) == Some(&b'\n');
        while let Some(&b) = self.text.get(self.pos) {
            if b == b'#' && at_line_start {
                while self.text.get(self.pos).is_some_and(|&c| c != b'\n') {
                    self.pos += 1;
                }
            } else if b.is_ascii_whitespace() {
                if b == b'\n' {
                    at_line_start = true;
                }
                self.pos += 1;
            } else {
                return false;
            }
        }
        true
    }

    fn next_token(&mut self) -> Option<String> {
        if self.skip_blank() {
            return None;
        }
        let mut out = Vec::new();
        if self.text.get(self.pos) == Some(&b'"') {
            self.pos += 1;
            while let Some(&b) = self.text.get(self.pos) {
                self.pos += 1;
                match b {
                    b'"' => break,
                    b'\\' => {
                        if let Some(&next) = self.text.get(self.pos) {
                            out.push(next);
                            self.pos += 1;
                        }
                    }
                    _ => out.push(b),
                }
            }
        } else {
            while let Some(&b) = self.text.get(self.pos) {
                if b.is_ascii_whitespace() {
                    break;
                }
                out.push(b);
                self.pos += 1;
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    /// Skip a `macdef` body: everything up to and including the next empty line.
    fn skip_macro(&mut self) {
        // The rest of the `macdef NAME` line.
        while self.text.get(self.pos).is_some_and(|&c| c != b'\n') {
            self.pos += 1;
        }
        self.pos += 1;
        loop {
            let start = self.pos;
            while self.text.get(self.pos).is_some_and(|&c| c != b'\n') {
                self.pos += 1;
            }
            let line = self.text.get(start..self.pos).unwrap_or_default();
            self.pos += 1;
            if self.pos > self.text.len() || line.iter().all(|b| b.is_ascii_whitespace()) {
                break;
            }
        }
        self.pos = self.pos.min(self.text.len());
    }
}

/// Parse a netrc file's text.
pub fn parse(text: &str) -> Vec<Machine> {
    let mut tokens = Tokens {
        text: text.as_bytes(),
        pos: 0,
    };
    let mut machines: Vec<Machine> = Vec::new();
    while let Some(token) = tokens.next_token() {
        match token.as_str() {
            "machine" => machines.push(Machine {
                name: Some(tokens.next_token().unwrap_or_default()),
                ..Machine::default()
            }),
            "default" => machines.push(Machine::default()),
            "login" | "password" | "passwd" | "account" => {
                let value = tokens.next_token().unwrap_or_default();
                if let Some(current) = machines.last_mut() {
                    let slot = match token.as_str() {
                        "login" => &mut current.login,
                        "account" => &mut current.account,
                        _ => &mut current.password,
                    };
                    *slot = Some(value);
                }
            }
            "macdef" => tokens.skip_macro(),
            _ => {}
        }
    }
    machines
}

/// The entry for `host` (case-insensitive), else the `default` entry; when
/// `user` is given, only an entry with that login (or none) qualifies.
pub fn lookup<'a>(machines: &'a [Machine], host: &str, user: Option<&str>) -> Option<&'a Machine> {
    let user_fits = |m: &Machine| match (user, &m.login) {
        (Some(u), Some(login)) => u == login,
        _ => true,
    };
    machines
        .iter()
        .find(|m| {
            m.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(host))
                && user_fits(m)
        })
        .or_else(|| machines.iter().find(|m| m.name.is_none() && user_fits(m)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn machines_default_and_quoting() {
        let text = "# my hosts\n\
                    machine ftp.example.com login alice password \"two words\"\n\
                    machine other login bob\n  password \"b\\\"ob\" account acct\n\
                    macdef init\ncd /tmp\nls\n\n\
                    default login anonymous password me@example.com\n";
        let m = parse(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].password.as_deref(), Some("two words"));
        assert_eq!(m[1].password.as_deref(), Some("b\"ob"));
        assert_eq!(m[1].account.as_deref(), Some("acct"));
        assert_eq!(m[2].name, None);
        assert_eq!(m[2].login.as_deref(), Some("anonymous"));
        let hit = lookup(&m, "FTP.example.com", None).unwrap();
        assert_eq!(hit.login.as_deref(), Some("alice"));
        let hit = lookup(&m, "ftp.example.com", Some("anonymous")).unwrap();
        assert_eq!(hit.name, None);
        assert_eq!(lookup(&m, "other", Some("carol")), None);
        let hit = lookup(&m, "elsewhere", None).unwrap();
        assert_eq!(hit.password.as_deref(), Some("me@example.com"));
        assert_eq!(lookup(&[], "x", None), None);
    }

    #[test]
    fn one_line_and_comments_after_tokens_are_not_comments() {
        let m = parse("machine h login u password #secret");
        assert_eq!(m[0].password.as_deref(), Some("#secret"));
        let m = parse("  # comment\nmachine h\tlogin u\n");
        assert_eq!(m[0].login.as_deref(), Some("u"));
    }
}
