use std::net::SocketAddr;
use std::time::Duration;

use super::*;

/// The hash of "correct horse".
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$KHuk3mHnxtQ/EQUxU6uJNQ$3jJaqxVILffIGwUjXRCcoMCvwBQlW1TErg99BSg2DdA";

fn err(text: &str) -> String {
    parse(text, "ftps.toml").unwrap_err().to_string()
}

#[test]
fn empty_file_gives_secure_defaults() {
    let c = parse("", "ftps.toml").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.server.listen, vec!["127.0.0.1:2121".parse().unwrap()]);
    assert_eq!(
        c.server.implicit_listen,
        vec!["127.0.0.1:2990".parse().unwrap()]
    );
    assert_eq!(c.server.passive_ports, None);
    assert_eq!(c.server.max_sessions, 512);
    assert_eq!(c.server.max_sessions_per_ip, 32);
    assert_eq!(c.server.max_line_bytes, 4096);
    assert_eq!(c.server.idle_timeout(), Duration::from_secs(600));
    assert_eq!(c.server.login_timeout_secs, 60);
    assert_eq!(c.server.tls_handshake_timeout_secs, 15);
    assert_eq!(c.server.data_connect_timeout_secs, 30);
    assert_eq!(c.server.transfer_stall_timeout_secs, 120);
    assert_eq!(c.server.shutdown_grace_secs, 30);
    assert_eq!(c.server.failed_login_delay(), Duration::from_millis(1000));
    assert_eq!(c.server.banner, "ftps ready");
    assert_eq!(c.tls.versions, vec![TlsVersion::V1_2, TlsVersion::V1_3]);
    assert!(c.tls.cert.is_none() && c.tls.key.is_none());
    let p = c.policy;
    assert!(p.require_tls && p.require_prot_p && p.require_session_reuse && !p.allow_ccc);
    assert!(!c.anonymous.enabled);
    assert_eq!(c.anonymous.tls, AnonymousTls::Require);
    assert!(c.users.is_empty());
}

#[test]
fn full_example_parses() {
    let text = format!(
        r#"
[server]
listen = ["0.0.0.0:21", "[::]:21"]
implicit_listen = []
passive_ports = "50000-50100"
passive_address = "203.0.113.7"
max_sessions = 100
banner = "welcome"
state_dir = "state"

[tls]
cert = "/etc/ftps/cert.pem"
key = "/etc/ftps/key.pem"
versions = ["1.3"]
cipher_suites = ["TLS13_AES_256_GCM_SHA384"]

[policy]
require_session_reuse = false

[anonymous]
enabled = true
root = "/srv/pub"
tls = "refuse"

[[users]]
name = "alice"
password_hash = "{HASH}"
root = "/srv/alice"

[[users]]
name = "bob"
password_hash = "{HASH}"
root = "bob"
write = false
policy = {{ allow_ccc = true }}

[[users]]
name = "carol"
password_hash = "{HASH}"
root = "/srv/carol"
[users.policy]
require_prot_p = false
"#
    );
    let c = parse(&text, "t").unwrap();
    assert_eq!(c.server.listen.len(), 2);
    assert!(c.server.implicit_listen.is_empty());
    let range = c.server.passive_ports.unwrap();
    assert_eq!(
        (range.start(), range.end(), range.len()),
        (50000, 50100, 101)
    );
    assert_eq!(
        c.server.passive_address,
        Some("203.0.113.7".parse().unwrap())
    );
    assert_eq!(c.tls.versions, vec![TlsVersion::V1_3]);
    assert_eq!(c.tls.crypto_provider().cipher_suites.len(), 1);
    assert_eq!(c.tls.protocol_versions().len(), 1);
    assert!(!c.policy.require_session_reuse);
    assert_eq!(c.anonymous.tls, AnonymousTls::Refuse);
    assert_eq!(c.users.len(), 3);
    assert!(c.users[0].write);
    assert!(!c.users[1].write);
    assert_eq!(c.users[1].policy.allow_ccc, Some(true));
    assert_eq!(c.users[2].policy.require_prot_p, Some(false));
    let p = c.policy.with(&c.users[2].policy);
    assert!(!p.require_prot_p && !p.require_session_reuse && p.require_tls);
}

#[test]
fn shipped_example_parses() {
    // The example lists every option with its default: it must configure exactly what
    // an empty file does, so the documented defaults cannot drift from the code.
    let c = parse(include_str!("../../../../examples/ftps.toml"), "ftps.toml").unwrap();
    assert_eq!(c, Config::default());
    // Its commented-out [[users]] example, uncommented (with a real hash), parses too.
    let text = include_str!("../../../../examples/ftps.toml");
    let users = &text[text.find("# [[users]]").unwrap()..];
    let users: String = users
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
        .map(|l| l.replace("$argon2id$v=19$m=19456,t=2,p=1$...$...", HASH))
        .collect::<Vec<_>>()
        .join("\n");
    let c = parse(&users, "users").unwrap();
    assert_eq!(c.users.len(), 2);
    assert_eq!(c.users[0].policy.allow_ccc, Some(true));
    assert_eq!(c.users[1].policy.require_tls, Some(false));
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = "# comment\n\n[server]\nmax_sessions = 10\n\nmax_sesions = 5\n";
    let e = parse(text, "ftps.toml").unwrap_err();
    match &e {
        ConfigError::Syntax { line, .. } => assert_eq!(*line, 6),
        other => panic!("{other:?}"),
    }
    let m = e.to_string();
    assert!(
        m.starts_with("ftps.toml line 6: server.max_sesions: "),
        "{m}"
    );
    assert!(m.contains("unknown field `max_sesions`"), "{m}");
    assert!(m.contains("max_sessions"), "{m}");
}

#[test]
fn unknown_section_and_nested_unknown_key() {
    let m = err("[servr]\nlisten = []\n");
    assert!(m.starts_with("ftps.toml line 1: servr: "), "{m}");
    let text = format!(
        "[[users]]\nname = \"a\"\npassword_hash = \"{HASH}\"\nroot = \"/a\"\n\n[[users]]\nname = \"b\"\npassword_hash = \"{HASH}\"\nroot = \"/b\"\npolicy = {{ allow_cc = true }}\n"
    );
    let m = err(&text);
    assert!(
        m.starts_with("ftps.toml line 10: users[1].policy.allow_cc: "),
        "{m}"
    );
}

#[test]
fn bad_value_names_key_and_line() {
    let m = err("[server]\n\nmax_sessions = \"many\"\n");
    assert!(
        m.starts_with("ftps.toml line 3: server.max_sessions: "),
        "{m}"
    );
    let m = err("[server]\nlisten = [\n  \"127.0.0.1:21\",\n  \"nonsense\",\n]\n");
    assert!(m.starts_with("ftps.toml line 4: server.listen: "), "{m}");
    let m = err("[tls]\nversions = [\"1.1\"]\n");
    assert!(m.starts_with("ftps.toml line 2: tls.versions: "), "{m}");
    assert!(m.contains("1.1"), "{m}");
    let m = err("[anonymous]\ntls = \"maybe\"\n");
    assert!(m.starts_with("ftps.toml line 2: anonymous.tls: "), "{m}");
}

#[test]
fn listeners_as_strings_or_tables() {
    let text = r#"
[server]
listen = [
  "127.0.0.1:2121",
  { address = "127.0.0.1:2122", client_certificates = "required" },
]
implicit_listen = [{ address = "[::1]:2990" }, "127.0.0.1:2991"]

[tls]
client_ca = "ca.pem"
"#;
    let c = parse(text, "f").unwrap();
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(
        c.server.listen,
        vec![
            ListenerConfig::from(addr("127.0.0.1:2121")),
            ListenerConfig {
                client_certificates: Some(ClientCertificates::Required),
                ..ListenerConfig::from(addr("127.0.0.1:2122"))
            },
        ]
    );
    assert_eq!(
        c.server.implicit_listen,
        vec![
            ListenerConfig::from(addr("[::1]:2990")),
            ListenerConfig::from(addr("127.0.0.1:2991")),
        ]
    );
    // The global setting (off) applies where a listener has none of its own.
    let modes: Vec<_> = c
        .listeners()
        .map(|(key, l)| (key, c.client_certificates_on(l)))
        .collect();
    assert_eq!(
        modes,
        vec![
            ("server.listen[0]".to_owned(), ClientCertificates::Off),
            ("server.listen[1]".to_owned(), ClientCertificates::Required),
            (
                "server.implicit_listen[0]".to_owned(),
                ClientCertificates::Off
            ),
            (
                "server.implicit_listen[1]".to_owned(),
                ClientCertificates::Off
            ),
        ]
    );
    assert!(c.any_client_certificates());
    // The converse: required everywhere but on one listener.
    let text = "[server]\nlisten = [{ address = \"127.0.0.1:21\", client_certificates = \"off\" }]\nimplicit_listen = [\"127.0.0.1:990\"]\n[tls]\nclient_certificates = \"required\"\nclient_ca = \"ca.pem\"\n";
    let c = parse(text, "f").unwrap();
    let modes: Vec<_> = c
        .listeners()
        .map(|(_, l)| c.client_certificates_on(l))
        .collect();
    assert_eq!(
        modes,
        vec![ClientCertificates::Off, ClientCertificates::Required]
    );
    assert_eq!(
        "127.0.0.1:21"
            .parse::<ListenerConfig>()
            .unwrap()
            .to_string(),
        "127.0.0.1:21"
    );
}

#[test]
fn bad_listener_tables_name_key_and_line() {
    let m =
        err("[server]\nlisten = [\n  \"127.0.0.1:21\",\n  { address = \"localhost:21\" },\n]\n");
    assert!(
        m.starts_with("ftps.toml line 4: server.listen[1].address: invalid socket address syntax"),
        "{m}"
    );
    assert!(m.contains("host names are not accepted"), "{m}");
    let m = err("[server]\nimplicit_listen = [\n  { address = \"127.0.0.1:990\", client_certificates = \"always\" },\n]\n");
    assert!(
        m.starts_with("ftps.toml line 3: server.implicit_listen[0].client_certificates: "),
        "{m}"
    );
    assert!(m.contains("unknown variant `always`"), "{m}");
    let m = err("[server]\nlisten = [{ address = \"127.0.0.1:21\", client_certs = \"off\" }]\n");
    assert!(
        m.starts_with(
            "ftps.toml line 2: server.listen[0].client_certs: unknown field `client_certs`"
        ),
        "{m}"
    );
    let m = err("[server]\nlisten = [\"127.0.0.1:21\",\n { client_certificates = \"off\" }]\n");
    assert!(
        m.starts_with("ftps.toml line 3: server.listen[1]: missing field `address`"),
        "{m}"
    );
    let m = err("[server]\nlisten = [21]\n");
    assert!(m.starts_with("ftps.toml line 2: server.listen: "), "{m}");
    assert!(m.contains("\"IP:PORT\""), "{m}");
}

#[test]
fn listener_asking_for_certificates_needs_a_ca() {
    let text = "[server]\nlisten = [\n  \"127.0.0.1:21\",\n  { address = \"127.0.0.1:22\", client_certificates = \"requested\" },\n]\n";
    match parse(text, "f").unwrap_err() {
        ConfigError::Invalid { key, message, .. } => {
            assert_eq!(key, "server.listen[1].client_certificates");
            assert!(message.contains("tls.client_ca"), "{message}");
            assert!(message.contains("127.0.0.1:22"), "{message}");
            assert!(message.ends_with("(line 4)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A listener that turns them off needs no CA.
    let ok = "[server]\nlisten = [{ address = \"127.0.0.1:21\", client_certificates = \"off\" }]\n";
    assert!(parse(ok, "f").is_ok());
    // The global setting needs the CA whatever the listeners say.
    let m = err("[tls]\nclient_certificates = \"required\"\n");
    assert!(m.starts_with("ftps.toml: tls.client_ca: "), "{m}");
}

#[test]
fn certificate_login_needs_some_listener_asking_for_certificates() {
    let user = "[[users]]\nname = \"carol\"\nroot = \"/c\"\nauth = \"certificate\"\ncertificate = { cn = \"carol\" }\n";
    let m = err(user);
    assert!(m.starts_with("ftps.toml: users[0].auth: "), "{m}");
    let with_listener = format!(
        "[server]\nimplicit_listen = [{{ address = \"127.0.0.1:990\", client_certificates = \"required\" }}]\n[tls]\nclient_ca = \"ca.pem\"\n{user}"
    );
    assert!(parse(&with_listener, "f").is_ok());
    // Global "requested", but every listener turns it off: nobody could log in.
    let all_off = format!(
        "[server]\nlisten = [{{ address = \"127.0.0.1:21\", client_certificates = \"off\" }}]\nimplicit_listen = []\n[tls]\nclient_certificates = \"requested\"\nclient_ca = \"ca.pem\"\n{user}"
    );
    let m = err(&all_off);
    assert!(m.starts_with("ftps.toml: users[0].auth: "), "{m}");
}

#[test]
fn toml_syntax_error_has_line() {
    let m = err("[server]\nbanner = \"unterminated\n");
    assert!(m.starts_with("ftps.toml line 2: "), "{m}");
}

#[test]
fn bad_port_range() {
    for (range, needle) in [
        ("50100-50000", "above its end"),
        ("80-90", "1024"),
        ("a-b", "START-END"),
        ("50000-70000", "START-END"),
    ] {
        let m = err(&format!("[server]\npassive_ports = \"{range}\"\n"));
        assert!(
            m.starts_with("ftps.toml line 2: server.passive_ports: "),
            "{m}"
        );
        assert!(m.contains(needle), "{m}");
    }
    assert_eq!("2000".parse::<PortRange>().unwrap().len(), 1);
    assert_eq!(
        "2000-2001".parse::<PortRange>().unwrap().to_string(),
        "2000-2001"
    );
}

#[test]
fn cert_without_key() {
    let text = "[tls]\ncert = \"c.pem\"\n";
    match parse(text, "f").unwrap_err() {
        ConfigError::Invalid { key, message, .. } => {
            assert_eq!(key, "tls.cert");
            assert!(message.contains("tls.key"), "{message}");
            assert!(message.ends_with("(line 2)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let m = err("[tls]\nkey = \"k.pem\"\n");
    assert!(m.starts_with("ftps.toml: tls.key: "), "{m}");
}

#[test]
fn bad_hash() {
    let text = format!(
        "[[users]]\nname = \"a\"\npassword_hash = \"{HASH}\"\nroot = \"/a\"\n[[users]]\nname = \"b\"\npassword_hash = \"hunter2\"\nroot = \"/b\"\n"
    );
    let m = err(&text);
    assert!(m.starts_with("ftps.toml: users[1].password_hash: "), "{m}");
    assert!(m.ends_with("(line 7)"), "{m}");
    let argon2i = HASH.replace("argon2id", "argon2i");
    let text = format!("[[users]]\nname = \"a\"\npassword_hash = \"{argon2i}\"\nroot = \"/a\"\n");
    assert!(err(&text).contains("not argon2id"), "{}", err(&text));
}

#[test]
fn bad_cipher_suite() {
    let m = err("[tls]\ncipher_suites = [\"TLS13_AES_256_GCM_SHA384\", \"TLS_RSA_WITH_RC4\"]\n");
    assert!(m.starts_with("ftps.toml: tls.cipher_suites: "), "{m}");
    assert!(m.contains("\"TLS_RSA_WITH_RC4\""), "{m}");
    assert!(m.contains("TLS13_CHACHA20_POLY1305_SHA256"), "{m}");
    // A TLS 1.3-only suite list with TLS 1.2 enabled leaves 1.2 without a suite.
    let m = err("[tls]\ncipher_suites = [\"TLS13_AES_256_GCM_SHA384\"]\n");
    assert!(m.contains("TLS 1.2"), "{m}");
    let ok = parse(
        "[tls]\ncipher_suites = [\"TLS13_AES_128_GCM_SHA256\", \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n",
        "f",
    );
    assert_eq!(ok.unwrap().tls.crypto_provider().cipher_suites.len(), 2);
    // Names are exact, as rustls prints them.
    let m = err("[tls]\ncipher_suites = [\"tls13_aes_128_gcm_sha256\"]\n");
    assert!(
        m.contains("unknown cipher suite \"tls13_aes_128_gcm_sha256\""),
        "{m}"
    );
}

#[test]
fn duplicate_and_reserved_users() {
    let user =
        |n: &str| format!("[[users]]\nname = \"{n}\"\npassword_hash = \"{HASH}\"\nroot = \"/x\"\n");
    let m = err(&format!("{}{}", user("alice"), user("alice")));
    assert!(m.starts_with("ftps.toml: users[1].name: duplicate"), "{m}");
    assert!(m.ends_with("(line 6)"), "{m}");
    let m = err(&user("FTP"));
    assert!(m.contains("users[0].name") && m.contains("reserved"), "{m}");
    let m = err(&user(""));
    assert!(m.contains("users[0].name: must not be empty"), "{m}");
    let m = err(&user("a b"));
    assert!(m.contains("whitespace"), "{m}");
    // A missing hash is only allowed for certificate-only users.
    let m = err("[[users]]\nname = \"a\"\nroot = \"/x\"\n");
    assert!(m.starts_with("ftps.toml: users[0].password_hash: "), "{m}");
}

#[test]
fn other_checks() {
    let m = err("[server]\nlisten = []\nimplicit_listen = []\n");
    assert!(m.contains("server.listen: no listener"), "{m}");
    let m = err("[server]\nmax_line_bytes = 100\n");
    assert!(m.contains("server.max_line_bytes"), "{m}");
    let m = err("[server]\nbanner = \"a\\r\\n230 fake\"\n");
    assert!(m.contains("server.banner"), "{m}");
    let m = err("[server]\nidle_timeout_secs = 0\n");
    assert!(m.contains("server.idle_timeout_secs"), "{m}");
    let m = err("[tls]\nversions = []\n");
    assert!(m.contains("tls.versions"), "{m}");
    let m = err("[anonymous]\nenabled = true\n");
    assert!(m.contains("anonymous.root"), "{m}");
}

#[test]
fn load_reports_path_and_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let m = load(&missing).unwrap_err().to_string();
    assert!(
        m.starts_with("cannot read ") && m.contains("nope.toml"),
        "{m}"
    );
    let file = dir.path().join("ftps.toml");
    std::fs::write(&file, "[server]\nbogus = 1\n").unwrap();
    let m = load(&file).unwrap_err().to_string();
    assert!(m.contains("ftps.toml line 2: server.bogus"), "{m}");
}

#[test]
fn validate_built_config() {
    let mut c = Config::default();
    assert!(c.validate("built").is_ok());
    c.tls.versions.clear();
    assert!(matches!(
        c.validate("built"),
        Err(ConfigError::Invalid { .. })
    ));
}

#[test]
fn locate_handles_quotes_comments_and_inline_arrays() {
    let text =
        "a = 1 # x = [\n[\"q.r\"]\n'k' = \"v = [\"\n[[t]]\n[[t]]\nz = [{ y = 1 }, { w = 2 }]\n";
    assert_eq!(
        locate::key_at(text, text.find("'k'").unwrap()).unwrap(),
        "q.r.k"
    );
    assert_eq!(
        locate::key_at(text, text.find("w =").unwrap()).unwrap(),
        "t[1].z[1].w"
    );
    assert_eq!(locate::line_of_key(text, "t[1]"), Some(5));
}

#[test]
fn syntax_errors_name_the_broken_statement() {
    for (text, start) in [
        (
            "[server]\nbanner = \"unterminated\n",
            "ftps.toml line 2: server.banner: ",
        ),
        (
            "[server]\nmax_sessions = 1x\n",
            "ftps.toml line 2: server.max_sessions: ",
        ),
        (
            "[server]\nlisten = [\"a\",\n",
            "ftps.toml line 3: server.listen: ",
        ),
        (
            "[server]\nmax_sessions = 1\nmax_sessions = 2\n",
            "ftps.toml line 3: server.max_sessions: duplicate key",
        ),
        ("[server\n", "ftps.toml line 1: server: "),
        (
            "[[users]]\nname = \"a\"\n[[users]]\nname = \"b\"\npolicy.allow_ccc = tru\n",
            "ftps.toml line 5: users[1].policy.allow_ccc: ",
        ),
    ] {
        let m = err(text);
        assert!(m.starts_with(start), "{m}");
    }
    // A statement that cannot be repaired keeps the line and toml's message.
    let m = err("[server]\nfoo bar = 1\n");
    assert!(m.starts_with("ftps.toml line 2: expected"), "{m}");
    // Offsets inside a character or past the end are harmless.
    assert_eq!(locate::key_at("a = \"é\n", 6), None);
    assert_eq!(locate::key_at("a = 1\n", 100).as_deref(), Some("a"));
}

#[test]
fn bad_string_after_a_listener_table_names_the_list() {
    let m = err("[server]\nlisten = [{ address = \"127.0.0.1:21\" }, \"nonsense\"]\n");
    assert!(
        m.starts_with("ftps.toml line 2: server.listen: invalid socket address syntax"),
        "{m}"
    );
}

const CONFIGURATION_MD: &str = include_str!("../../../../docs/configuration.md");
const EXAMPLE_TOML: &str = include_str!("../../../../examples/ftps.toml");

/// What the default column of docs/configuration.md says about a key.
#[derive(Debug, Clone, PartialEq)]
enum Documented {
    /// A TOML value in backticks, e.g. `` `512` `` or `` `["1.2", "1.3"]` ``.
    Value(String),
    /// `unset` or `none`: the key has no value unless the file gives one.
    Unset,
    /// `required`: there is no default.
    Required,
}

/// One row of a `| key | default | ... |` table of docs/configuration.md.
#[derive(Debug)]
struct DocRow {
    /// The `[section]` (or `[[users]]`) the table is under: `server`, `users`, ...
    section: String,
    /// The key, e.g. `max_sessions` (`sni` for the `[[tls.sni]]` row).
    key: String,
    default: Documented,
    /// Where the row is, for failure messages.
    line: usize,
}

/// The key tables of docs/configuration.md, by the `## `[section]`` heading they are under.
fn documented_rows() -> Vec<DocRow> {
    let mut rows = Vec::new();
    let mut section: Option<String> = None;
    let mut in_table = false;
    for (n, line) in CONFIGURATION_MD.lines().enumerate() {
        let line_no = n + 1;
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading
                .strip_prefix('`')
                .and_then(|h| h.strip_suffix('`'))
                .map(|h| h.trim_matches(['[', ']']).to_owned());
            in_table = false;
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if !line.starts_with('|') || cells.len() < 4 {
            in_table = false;
            continue;
        }
        if cells[1] == "key" && cells[2] == "default" {
            in_table = true;
            continue;
        }
        if !in_table || cells[1].starts_with('-') {
            continue;
        }
        let section = section.clone().unwrap_or_else(|| {
            panic!("docs/configuration.md line {line_no}: table outside a `## `[section]`` heading")
        });
        // `[[tls.sni]]` is the key `sni` of [tls].
        let key = cells[1].trim_matches(['`', '[', ']']);
        let key = key.rsplit('.').next().unwrap_or(key).to_owned();
        let cell = cells[2];
        let default = if let Some(value) = cell.strip_prefix('`').and_then(|c| c.strip_suffix('`'))
        {
            Documented::Value(value.to_owned())
        } else if cell == "unset" || cell == "none" {
            Documented::Unset
        } else if cell.starts_with("required") {
            Documented::Required
        } else {
            panic!("docs/configuration.md line {line_no}: default {cell:?} of `{key}` is not `VALUE`, unset, none or required");
        };
        rows.push(DocRow {
            section,
            key,
            default,
            line: line_no,
        });
    }
    rows
}

/// The smallest valid `[[users]]` entry: only the keys without a default.
const MINIMAL_USER: [(&str, &str); 3] = [
    ("name", "\"u\""),
    ("password_hash", HASH),
    ("root", "\"/u\""),
];

/// A `[[users]]` entry with `MINIMAL_USER`'s keys but `without`, plus `extra`.
fn user_text(without: &str, extra: &str) -> String {
    let mut text = String::from("[[users]]\n");
    for (key, value) in MINIMAL_USER {
        if key == without {
            continue;
        }
        let value = if key == "password_hash" {
            format!("\"{value}\"")
        } else {
            value.to_owned()
        };
        text.push_str(&format!("{key} = {value}\n"));
    }
    text.push_str(extra);
    text
}

fn minimal_user() -> UserSection {
    parse(&user_text("", ""), "minimal user")
        .unwrap()
        .users
        .remove(0)
}

/// Whether a key documented as unset is unset in `Config::default()` (for `[[users]]`: in an
/// entry that does not give it); `None` for a key this test does not know.
fn unset_by_default(section: &str, key: &str) -> Option<bool> {
    let c = Config::default();
    Some(match (section, key) {
        ("server", "passive_ports") => c.server.passive_ports.is_none(),
        ("server", "passive_address") => c.server.passive_address.is_none(),
        ("server", "passive_host") => c.server.passive_host.is_none(),
        ("database", "url") => c.database.url.is_none(),
        ("database", "password_file") => c.database.password_file.is_none(),
        ("database", "ca_file") => c.database.ca_file.is_none(),
        ("server", "run_as") => c.server.run_as.is_none(),
        ("server", "state_dir") => c.server.state_dir.is_none(),
        ("tls", "cert") => c.tls.cert.is_none(),
        ("tls", "key") => c.tls.key.is_none(),
        ("tls", "client_ca") => c.tls.client_ca.is_none(),
        ("tls", "client_crl") => c.tls.client_crl.is_none(),
        ("tls", "sni") => c.tls.sni.is_empty(),
        ("anonymous", "root") => c.anonymous.root.is_none(),
        ("users", "certificate") => minimal_user().certificate.is_empty(),
        ("users", "quota_bytes") => minimal_user().quota_bytes.is_none(),
        ("users", "quota_files") => minimal_user().quota_files.is_none(),
        ("audit", "file") => c.audit.file.is_none(),
        ("audit", "xferlog") => c.audit.xferlog.is_none(),
        ("hooks", "url") => c.hooks.url.is_none(),
        ("hooks", "ca_file") => c.hooks.ca_file.is_none(),
        ("users", "s3") => minimal_user().s3.is_none(),
        ("s3", "endpoint") => c.s3.endpoint.is_none(),
        ("s3", "bucket") => c.s3.bucket.is_none(),
        ("s3", "access_key_id") => c.s3.access_key_id.is_none(),
        ("s3", "secret_access_key") => c.s3.secret_access_key.is_none(),
        ("s3", "session_token") => c.s3.session_token.is_none(),
        ("s3", "node_id") => c.s3.node_id.is_none(),
        _ => return None,
    })
}

/// The fields a section accepts, from the "expected one of" list of an unknown-key error.
fn accepted_keys(section_header: &str) -> Vec<String> {
    let m = err(&format!("{section_header}\nnot_a_key = 1\n"));
    let expected = &m[m.find("expected").unwrap()..];
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn documented_defaults_are_in_force() {
    let rows = documented_rows();
    assert!(rows.len() > 40, "too few documented keys: {rows:?}");
    let default_user = minimal_user();
    for row in &rows {
        let DocRow {
            section,
            key,
            default,
            line,
        } = row;
        let place = format!("docs/configuration.md line {line}: [{section}] {key}");
        match (section.as_str(), default) {
            ("users", Documented::Value(value)) => {
                let text = user_text("", &format!("{key} = {value}\n"));
                let user = parse(&text, "doc").map(|mut c| c.users.remove(0));
                assert_eq!(user.ok().as_ref(), Some(&default_user), "{place} = {value}");
            }
            (_, Documented::Value(value)) => {
                let text = format!("[{section}]\n{key} = {value}\n");
                let c = parse(&text, "doc");
                assert_eq!(c.ok(), Some(Config::default()), "{place} = {value}");
            }
            (_, Documented::Unset) => {
                assert_eq!(unset_by_default(section, key), Some(true), "{place}: unset");
            }
            ("users", Documented::Required) => {
                let without = user_text(key, "");
                assert!(parse(&without, "doc").is_err(), "{place}: required");
            }
            (_, Documented::Required) => panic!("{place}: only [[users]] keys are required"),
        }
    }
    // Every key the configuration accepts is documented, in every section.
    let documented = |section: &str| -> Vec<&str> {
        rows.iter()
            .filter(|r| r.section == section)
            .map(|r| r.key.as_str())
            .collect()
    };
    for section in accepted_keys("") {
        let header = if section == "users" {
            "[[users]]".to_owned()
        } else {
            format!("[{section}]")
        };
        let keys = documented(&section);
        for key in accepted_keys(&header) {
            assert!(
                keys.contains(&key.as_str()),
                "{section}.{key} is not in the tables of docs/configuration.md"
            );
        }
    }
}

#[test]
fn shipped_example_lists_every_documented_option() {
    // Keys written in the example, set or commented out, by the table they are in.
    let mut written: Vec<(String, String)> = Vec::new();
    let mut table = String::new();
    for line in EXAMPLE_TOML.lines() {
        let line = line.trim_start_matches(['#', ' ']);
        if line.starts_with('[') {
            table = line.trim_matches(['[', ']']).to_owned();
            // `[users.policy]`, `[[tls.sni]]`: the key `policy` of users, `sni` of tls.
            if let Some((parent, key)) = table.rsplit_once('.') {
                written.push((parent.to_owned(), key.to_owned()));
            }
            continue;
        }
        let key: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !key.is_empty() && line[key.len()..].trim_start().starts_with('=') {
            written.push((table.clone(), key));
        }
    }
    for row in documented_rows() {
        assert!(
            written.contains(&(row.section.clone(), row.key.clone())),
            "examples/ftps.toml does not list [{}] {} (docs/configuration.md line {})",
            row.section,
            row.key,
            row.line
        );
    }
}

#[test]
fn proxy_protocol_listeners_need_trusted_balancers() {
    let m = err("[server]\nlisten = [{ address = \"127.0.0.1:21\", proxy_protocol = true }]\n");
    assert!(
        m.contains("server.listen[0].proxy_protocol") && m.contains("proxy_protocol.trusted"),
        "{m}"
    );
    let c = parse(
        "[proxy_protocol]\ntrusted = [\"10.0.0.0/8\", \"::1\"]\n\n[server]\npassive_ports = \"40000-40099\"\n\
         listen = [{ address = \"127.0.0.1:21\", proxy_protocol = true, passive_ports = \"41000-41009\", passive_host = \"lb.example.org\" }]\n\
         implicit_listen = [{ address = \"127.0.0.1:990\", proxy_protocol = true, passive_proxy_protocol = false }]\n",
        "t",
    )
    .unwrap();
    let explicit = c.passive_on(&c.server.listen[0]);
    assert_eq!(explicit.ports.unwrap().start(), 41000);
    assert_eq!(explicit.host.as_deref(), Some("lb.example.org"));
    assert!(explicit.proxy_protocol);
    let implicit = c.passive_on(&c.server.implicit_listen[0]);
    assert_eq!(implicit.ports.unwrap().start(), 40000, "[server]'s range");
    assert!(!implicit.proxy_protocol);
    assert!(
        err("[proxy_protocol]\ntrusted = [\"10.0.0.0/99\"]\n").contains("proxy_protocol.trusted")
    );
    assert!(err("[proxy_protocol]\nheader_timeout_secs = 0\n").contains("header_timeout_secs"));
}

#[test]
fn passive_host_is_a_host_name_and_excludes_passive_address() {
    assert!(parse("[server]\npassive_host = \"ftp.example.org\"\n", "t").is_ok());
    let both = err("[server]\npassive_host = \"a.example\"\npassive_address = \"192.0.2.1\"\n");
    assert!(
        both.contains("server.passive_host") && both.contains("not both"),
        "{both}"
    );
    for bad in ["", "has space", "a..b", "under_score.example"] {
        let m = err(&format!("[server]\npassive_host = \"{bad}\"\n"));
        assert!(m.contains("not a DNS host name"), "{bad:?}: {m}");
    }
}

#[test]
fn a_database_replaces_users_in_the_file() {
    let c = parse(
        "[database]\nurl = \"postgresql://ftps@db.example.org/ftps?sslmode=require\"\n",
        "t",
    )
    .unwrap();
    assert!(c.database.enabled());
    assert!(err("[database]\nurl = \"postgresql://x/y?sslmode=bogus\"\n").contains("database.url"));
    assert!(
        err("[database]\nurl = \"postgresql://x/y\"\npool_size = 0\n")
            .contains("database.pool_size")
    );
    let with_users = format!(
        "[database]\nurl = \"postgresql://x/y\"\n\n{}",
        user_text("", "")
    );
    assert!(err(&with_users).contains("ftps user add"));
}

#[test]
fn s3_buckets_include_the_default_bucket_for_accounts_of_the_database() {
    // No [[users]]: the accounts come from the database, and under
    // `backend = "s3"` they land in [s3].bucket, which the node must
    // maintain (heartbeat, reclaiming) from the start.
    let c = parse(
        "[storage]\nbackend = \"s3\"\n[s3]\nendpoint = \"http://127.0.0.1:8333\"\n\
         bucket = \"partners\"\n[database]\nurl = \"postgresql://ftps@127.0.0.1/ftps\"\n",
        "ftps.toml",
    )
    .unwrap();
    assert_eq!(c.s3_buckets(), vec!["partners".to_owned()]);
    let local = parse(
        "[s3]\nendpoint = \"http://127.0.0.1:8333\"\nbucket = \"partners\"\n",
        "ftps.toml",
    )
    .unwrap();
    assert!(local.s3_buckets().is_empty());
}
