//! The configuration's errors and their messages: the file, the line and the
//! dotted key of the offending value (found by `locate`), plus a hint for the
//! common mistakes in address values.

use std::path::PathBuf;

use super::locate;

/// An error loading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML, or a value has the wrong type or form, or a key is unknown.
    #[error("{origin} line {line}: {message}")]
    Syntax {
        /// The file name (or other origin) of the text.
        origin: String,
        /// 1-based line number of the offending key or value.
        line: usize,
        /// What is wrong, starting with the dotted key when it is known.
        message: String,
    },
    /// The values are well-formed but not acceptable (a check across keys, or a value range).
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// The file name (or other origin) of the text.
        origin: String,
        /// The dotted key, e.g. `users[2].password_hash`.
        key: String,
        /// What is wrong (with `(line N)` appended by [`parse`](super::parse) when the key was found).
        message: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// A TOML or deserialising error as a [`ConfigError::Syntax`], with the line and dotted
/// key of the place `toml` reports.
pub(super) fn syntax_error(text: &str, origin: &str, e: &toml::de::Error) -> ConfigError {
    let raw = e.message().trim().replace('\n', "; ");
    let (line, message) = match e.span() {
        Some(span) => {
            let line = locate::line_at(text, span.start);
            match locate::key_at(text, span.start) {
                Some(key) => {
                    let hint = hint(&key, &raw);
                    (line, format!("{key}: {raw}{hint}"))
                }
                None => (line, raw),
            }
        }
        None => (1, raw),
    };
    ConfigError::Syntax {
        origin: origin.to_owned(),
        line,
        message,
    }
}

/// A failed check (see `check`) as a [`ConfigError::Invalid`]; given the text, the line of
/// `key` is appended to the message when it can be found.
pub(super) fn invalid_error(
    origin: &str,
    text: Option<&str>,
    key: String,
    message: String,
) -> ConfigError {
    let message = match text.and_then(|text| locate::line_of_key(text, &key)) {
        Some(line) => format!("{message} (line {line})"),
        None => message,
    };
    ConfigError::Invalid {
        origin: origin.to_owned(),
        key,
        message,
    }
}

/// Extra help for the common mistakes in address values.
fn hint(key: &str, message: &str) -> &'static str {
    let field = key.rsplit('.').next().unwrap_or(key);
    // `server.listen[1].address`: the address inside a listener's table.
    let listener_address = field == "address" && key.contains("listen[");
    match field {
        "listen" | "implicit_listen" if message.contains("expected a sequence") => {
            " (write a list, e.g. [\"0.0.0.0:21\"])"
        }
        "listen" | "implicit_listen" | "address"
            if (field != "address" || listener_address)
                && message.contains("invalid socket address syntax") =>
        {
            " (expected \"IP:PORT\", e.g. \"0.0.0.0:21\" or \"[::]:21\"; host names are not accepted)"
        }
        "passive_address" if message.contains("IP address") => {
            " (expected an IP address, e.g. \"203.0.113.7\"; host names are not accepted)"
        }
        _ => "",
    }
}
