//! The checks that deserialising alone cannot make: value ranges, and checks
//! across keys (a certificate without its key, client certificates without a
//! CA, duplicate or reserved user names, password hashes that are not argon2id,
//! a user without storage, bucket names S3 would refuse).
//!
//! The limits bound the resources of RFC 2577 §5 (sessions per address) and
//! RFC 959 §4.1 (the command line); a banner with CR or LF would inject replies
//! (RFC 959 §4.2); `anonymous` and `ftp` are reserved for anonymous login
//! (RFC 1635); certificate login needs a listener that asks for client
//! certificates (RFC 4217 §12.2, §15.1.2).

use std::collections::HashSet;

use rustls::crypto::aws_lc_rs::ALL_CIPHER_SUITES;

use super::{
    cipher_suite_name, find_cipher_suite, is_valid_bucket_name, AuthMethod, ClientCertificates,
    Config, UserSection, UserStorage, ANONYMOUS_NAMES, MAX_BANNER_BYTES, MAX_MAX_LINE_BYTES,
    MAX_S3_CONCURRENT_PARTS, MAX_S3_PART_SIZE_MIB, MIN_MAX_LINE_BYTES, MIN_S3_PART_SIZE_MIB,
};

impl Config {
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        self.check_server()?;
        self.check_tls()?;
        self.check_anonymous()?;
        self.check_proxy()?;
        self.check_database()?;
        self.check_s3()?;
        self.check_users()?;
        self.check_operations()
    }

    fn check_operations(&self) -> Result<(), (String, String)> {
        check_rate(
            "limits.upload_bytes_per_sec",
            self.limits.upload_bytes_per_sec,
        )?;
        check_rate(
            "limits.download_bytes_per_sec",
            self.limits.download_bytes_per_sec,
        )?;
        let h = &self.hooks;
        if h.command.first().is_some_and(|program| program.is_empty()) {
            return invalid("hooks.command", "the program (its first element) is empty");
        }
        if let Some(url) = &h.url {
            match reqwest::Url::parse(url) {
                Ok(parsed) if parsed.scheme() == "https" && parsed.host().is_some() => {}
                Ok(_) => {
                    return invalid(
                        "hooks.url",
                        format!("{url:?}: only https:// URLs (the event is sent encrypted, to a verified server)"),
                    )
                }
                Err(e) => return invalid("hooks.url", format!("{url:?}: {e}")),
            }
        }
        for (key, value) in [
            ("hooks.queue", h.queue as u64),
            ("hooks.workers", h.workers as u64),
            ("hooks.timeout_secs", h.timeout_secs),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if h.workers > MAX_HOOK_WORKERS {
            return invalid("hooks.workers", format!("at most {MAX_HOOK_WORKERS}"));
        }
        if h.queue > MAX_HOOK_QUEUE {
            return invalid("hooks.queue", format!("at most {MAX_HOOK_QUEUE}"));
        }
        Ok(())
    }

    fn check_s3(&self) -> Result<(), (String, String)> {
        let s3 = &self.s3;
        if !(MIN_S3_PART_SIZE_MIB..=MAX_S3_PART_SIZE_MIB).contains(&s3.part_size_mib) {
            return invalid(
                "s3.part_size_mib",
                format!(
                    "{} is outside {MIN_S3_PART_SIZE_MIB}..={MAX_S3_PART_SIZE_MIB} (S3 parts are at least 5 MiB)",
                    s3.part_size_mib
                ),
            );
        }
        if !(1..=MAX_S3_CONCURRENT_PARTS).contains(&s3.concurrent_parts) {
            return invalid(
                "s3.concurrent_parts",
                format!(
                    "{} is outside 1..={MAX_S3_CONCURRENT_PARTS}",
                    s3.concurrent_parts
                ),
            );
        }
        if s3.timeout_secs == 0 {
            return invalid("s3.timeout_secs", "must be at least 1");
        }
        if let Some(bucket) = &s3.bucket {
            if !is_valid_bucket_name(bucket) {
                return invalid("s3.bucket", bad_bucket(bucket));
            }
        }
        if let Some(endpoint) = &s3.endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return invalid("s3.endpoint", "must start with http:// or https://");
            }
        }
        if let Some(node) = &s3.node_id {
            if node.is_empty() || !node.bytes().all(|b| b.is_ascii_graphic()) {
                return invalid("s3.node_id", "must be printable ASCII without spaces");
            }
        }
        if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
            return invalid(
                "s3.access_key_id",
                "s3.access_key_id and s3.secret_access_key go together",
            );
        }
        Ok(())
    }

    /// The storage of user `i`: a local root or a place in the object store.
    fn check_user_storage(&self, i: usize, user: &UserSection) -> Result<(), (String, String)> {
        let key = |field: &str| format!("users[{i}].{field}");
        if user.root.is_some() && user.s3.is_some() {
            return invalid(
                key("s3"),
                "a user has either a root or an s3 location, not both",
            );
        }
        match user.storage(&self.storage) {
            None => invalid(
                key("root"),
                "missing: the directory the user sees as / (or an s3 location, or [storage] backend = \"s3\")",
            ),
            Some(UserStorage::Local(_)) => Ok(()),
            Some(UserStorage::S3(location)) => match location.bucket.as_ref().or(self.s3.bucket.as_ref()) {
                None => invalid(
                    key("s3"),
                    "no bucket: set the user's s3.bucket or [s3] bucket",
                ),
                Some(bucket) if !is_valid_bucket_name(bucket) => invalid(key("s3"), bad_bucket(bucket)),
                Some(_) => Ok(()),
            },
        }
    }

    fn check_server(&self) -> Result<(), (String, String)> {
        let s = &self.server;
        if s.listen.is_empty() && s.implicit_listen.is_empty() {
            return invalid(
                "server.listen",
                "no listener: set server.listen and/or server.implicit_listen",
            );
        }
        for (key, value) in [
            ("server.max_sessions", s.max_sessions),
            ("server.max_sessions_per_ip", s.max_sessions_per_ip),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if !(MIN_MAX_LINE_BYTES..=MAX_MAX_LINE_BYTES).contains(&s.max_line_bytes) {
            return invalid(
                "server.max_line_bytes",
                format!(
                    "{} is outside {MIN_MAX_LINE_BYTES}..={MAX_MAX_LINE_BYTES}",
                    s.max_line_bytes
                ),
            );
        }
        for (key, value) in [
            ("server.idle_timeout_secs", s.idle_timeout_secs),
            ("server.login_timeout_secs", s.login_timeout_secs),
            (
                "server.tls_handshake_timeout_secs",
                s.tls_handshake_timeout_secs,
            ),
            (
                "server.data_connect_timeout_secs",
                s.data_connect_timeout_secs,
            ),
            (
                "server.transfer_stall_timeout_secs",
                s.transfer_stall_timeout_secs,
            ),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1 (a timeout of 0 would disable it)");
            }
        }
        if s.abandoned_upload_secs <= s.transfer_stall_timeout_secs {
            return invalid(
                "server.abandoned_upload_secs",
                "must be longer than server.transfer_stall_timeout_secs (a live upload writes at least that often)",
            );
        }
        if s.banner.len() > MAX_BANNER_BYTES {
            return invalid(
                "server.banner",
                format!("longer than {MAX_BANNER_BYTES} bytes"),
            );
        }
        if s.banner.chars().any(char::is_control) {
            return invalid(
                "server.banner",
                "must be one line without control characters (CR/LF would inject replies)",
            );
        }
        Ok(())
    }

    fn check_tls(&self) -> Result<(), (String, String)> {
        let t = &self.tls;
        match (&t.cert, &t.key) {
            (Some(_), None) => return invalid("tls.cert", "tls.cert is set but tls.key is not"),
            (None, Some(_)) => return invalid("tls.key", "tls.key is set but tls.cert is not"),
            _ => {}
        }
        if t.versions.is_empty() {
            return invalid("tls.versions", "at least one of \"1.2\", \"1.3\" is needed");
        }
        if t.client_certificates != ClientCertificates::Off && t.client_ca.is_none() {
            return invalid(
                "tls.client_ca",
                "client certificates need a CA bundle to verify them (tls.client_ca)",
            );
        }
        if t.client_ca.is_none() {
            if let Some((key, listener)) = self.listeners().find(|(_, l)| {
                l.client_certificates_or(t.client_certificates) != ClientCertificates::Off
            }) {
                return invalid(
                    format!("{key}.client_certificates"),
                    format!(
                        "listener {} asks for client certificates, which need a CA bundle to verify them (tls.client_ca)",
                        listener.address
                    ),
                );
            }
        }
        if t.cipher_suites.is_empty() {
            return Ok(());
        }
        let mut suites = Vec::new();
        for name in &t.cipher_suites {
            match find_cipher_suite(name) {
                Some(s) => suites.push(s),
                None => {
                    let known: Vec<String> =
                        ALL_CIPHER_SUITES.iter().map(cipher_suite_name).collect();
                    return invalid(
                        "tls.cipher_suites",
                        format!(
                            "unknown cipher suite {name:?}, expected one of {}",
                            known.join(", ")
                        ),
                    );
                }
            }
        }
        for v in &t.versions {
            if !suites.iter().any(|s| v.matches(s)) {
                return invalid(
                    "tls.cipher_suites",
                    format!("no cipher suite for TLS {v}, which tls.versions enables"),
                );
            }
        }
        Ok(())
    }

    fn check_anonymous(&self) -> Result<(), (String, String)> {
        if self.anonymous.enabled && self.anonymous.root.is_none() {
            return invalid("anonymous.root", "required when anonymous.enabled = true");
        }
        Ok(())
    }

    fn check_users(&self) -> Result<(), (String, String)> {
        let mut seen = HashSet::new();
        for (i, user) in self.users.iter().enumerate() {
            let key = |field: &str| format!("users[{i}].{field}");
            let name = user.name.as_str();
            if name.is_empty() {
                return invalid(key("name"), "must not be empty");
            }
            if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return invalid(
                    key("name"),
                    format!("{name:?} contains whitespace or control characters"),
                );
            }
            if ANONYMOUS_NAMES.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                return invalid(
                    key("name"),
                    format!("{name:?} is reserved for the [anonymous] section"),
                );
            }
            if !seen.insert(name) {
                return invalid(key("name"), format!("duplicate user name {name:?}"));
            }
            self.check_user_storage(i, user)?;
            if user.auth != AuthMethod::Password && user.certificate.is_empty() {
                return invalid(
                    key("certificate"),
                    "a certificate rule (cn, email, dns or sha256) is needed for this auth method",
                );
            }
            if user.auth != AuthMethod::Password && !self.any_client_certificates() {
                return invalid(
                    key("auth"),
                    "certificate login needs client certificates: tls.client_certificates, or a listener's client_certificates, = \"requested\" or \"required\"",
                );
            }
            check_rate(&key("upload_bytes_per_sec"), user.upload_bytes_per_sec)?;
            check_rate(&key("download_bytes_per_sec"), user.download_bytes_per_sec)?;
            for (r, rule) in user.rules.iter().enumerate() {
                let place = format!("users[{i}].rules[{r}].path");
                if !rule.path.starts_with('/') {
                    return invalid(place, format!("{:?} must start with /", rule.path));
                }
                if let Err(e) = ftps_proto::path::VirtualPath::root().resolve(rule.path.as_bytes())
                {
                    return invalid(place, format!("{:?}: {e}", rule.path));
                }
            }
            let hash_needed =
                user.auth != AuthMethod::Certificate || !user.password_hash.is_empty();
            if hash_needed {
                if let Err(message) = check_password_hash(&user.password_hash) {
                    return invalid(key("password_hash"), message);
                }
            }
        }
        Ok(())
    }
}

fn check_password_hash(hash: &str) -> Result<(), String> {
    let parsed = argon2::PasswordHash::new(hash).map_err(|e| {
        format!("not an argon2id PHC string ({e}); expected \"$argon2id$v=19$m=...,t=...,p=...$SALT$HASH\"")
    })?;
    if parsed.algorithm != argon2::Algorithm::Argon2id.ident() {
        return Err(format!(
            "algorithm {} is not argon2id",
            parsed.algorithm.as_str()
        ));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("the PHC string has no salt or no hash".to_owned());
    }
    argon2::Params::try_from(&parsed)
        .map(|_| ())
        .map_err(|e| format!("bad argon2 parameters: {e}"))
}

/// Most hooks running at once.
pub const MAX_HOOK_WORKERS: usize = 256;
/// Most events waiting for a hook.
pub const MAX_HOOK_QUEUE: usize = 1_000_000;

/// A rate in bytes per second: what the rate limiter can count (0: none).
fn check_rate(key: &str, value: u64) -> Result<(), (String, String)> {
    if value > u64::from(u32::MAX) {
        return invalid(key, format!("at most {} bytes per second", u32::MAX));
    }
    Ok(())
}

fn bad_bucket(bucket: &str) -> String {
    format!("{bucket:?} is not a DNS-style bucket name (3 to 63 of a-z, 0-9, '-', '.')")
}

fn invalid<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T, (String, String)> {
    Err((key.into(), message.into()))
}
