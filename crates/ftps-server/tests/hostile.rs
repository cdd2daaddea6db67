//! Hostile input against the real server (in-process, loopback, ephemeral
//! ports), driven byte by byte by the raw client of `ftps_testing::client`.
//!
//! Groups (each table row is one case; the count per group is printed with
//! `eprintln!` as `CASES <group>: N cases`):
//!
//! * path traversal: `..`, encoded and backslash forms, absolute paths,
//!   symbolic links out of the root, NUL bytes, overlong components and
//!   paths, with every path-taking command; nothing outside the root is read
//!   or created (RFC 2577 §4, RFC 959 §3.1.1.1);
//! * overlong command lines (RFC 959 §4.2 500) and memory bounds;
//! * invalid UTF-8 in commands and paths (RFC 2640 §2.2: bytes preserved),
//!   Telnet sequences (RFC 854, RFC 959 §4.1.3 IAC IP / IAC DM before ABOR,
//!   IAC IAC = 0xFF), lone CR and bare LF line ends;
//! * commands out of order (RFC 959 §5.4 sequencing, 503/530);
//! * PORT/EPRT bounce attempts (RFC 2577 §3, RFC 2428 §2);
//! * connection floods and per-address limits, among them 10,000
//!   connections opened at once by a separate process (`tests/py/flood.py`,
//!   so that its sockets do not share this process's RLIMIT_NOFILE with the
//!   server's; a limit too low for 10,000 on either side fails under
//!   `CI=true` and names the limit);
//! * half-open connections and slowloris (login, idle, data-connect and
//!   stall timeouts).
//!
//! Every case checks the exact reply (or the close) and that a second,
//! well-behaved client logs in and downloads a file byte for byte while or
//! after it happens.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use ftps_testing::client::{self, within, Client, Next, Setup};
use ftps_testing::hostile::*;
use ftps_testing::{local_only, random_bytes, require_tool, Backend, TestServer, PASSWORD, USER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CRLF: &[u8] = b"\r\n";

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ===========================================================================
// Path traversal
// ===========================================================================

/// What a path should give.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    /// The path resolves inside the root to something usable.
    Ok,
    /// Refused with this code.
    No(u16),
}

struct PathRow {
    label: &'static str,
    /// Argument for the reading verbs.
    read: Vec<u8>,
    read_want: Want,
    /// Argument for the writing verbs (a suffix per verb is appended unless `link_self`).
    write: Vec<u8>,
    write_want: Want,
    /// For `Want::Ok` writes: the name (relative to the root) the write must land on.
    lands: Option<Vec<u8>>,
    /// The argument is a symbolic link itself: verbs acting on the link
    /// (DELE, RNFR, RNTO) are left out, no suffix is appended.
    link_self: bool,
}

/// Label, command lines, the reply codes expected.
type CwdRow = (&'static str, Vec<&'static [u8]>, Vec<u16>);

const READ_VERBS: &[&str] = &[
    "CWD", "SIZE", "MDTM", "MLST", "STAT", "RETR", "LIST", "NLST", "MLSD", "DELE", "RMD", "RNFR",
];
const WRITE_VERBS: &[&str] = &["STOR", "APPE", "MKD", "RNTO"];

const INSIDE: &[u8] = b"inside content\n";
const SENTINEL: &[u8] = b"SENTINEL: must never be read or changed\n";
const SECRET: &[u8] = b"SECRET outside the root\n";
const PWNED: &[u8] = b"pwned-data";

fn read_expectation(verb: &str, want: Want) -> Option<Vec<u16>> {
    Some(match want {
        Want::No(code) => vec![code],
        Want::Ok => match verb {
            "SIZE" | "MDTM" | "STAT" => vec![213],
            "MLST" => vec![250],
            "RETR" | "LIST" | "NLST" => vec![150, 226],
            "CWD" | "RMD" => vec![550],
            "MLSD" => vec![501],
            "RNFR" => vec![350],
            _ => return None,
        },
    })
}

fn line(verb: &str, arg: &[u8]) -> Vec<u8> {
    cat(&[verb.as_bytes(), b" ", arg])
}

/// The entry names of a LIST/STAT (last field), NLST (whole line) or MLSD
/// (after "; ") listing: the root's (inside.txt), never the directories
/// around it (outside, p, root, sentinel.txt, near.txt).
fn is_root_listing(text: &str) -> Result<(), String> {
    let names: Vec<&str> = text
        .split("\r\n")
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once("; ") {
            Some((_, name)) => name,
            None => l.split_whitespace().last().unwrap_or(""),
        })
        .collect();
    let foreign: Vec<&&str> = names
        .iter()
        .filter(|n| ["outside", "p", "root", "sentinel.txt", "near.txt"].contains(n))
        .collect();
    if names.contains(&"inside.txt") && foreign.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not the root's listing (foreign entries {foreign:?}): {text:?}"
        ))
    }
}

/// One path case: the verb with `arg`, compared with `expected`.
async fn path_case(
    c: &mut Client,
    verb: &str,
    arg: &[u8],
    expected: &[u16],
    rnfr_source: Option<&[u8]>,
) -> Result<Attempt, String> {
    if let Some(src) = rnfr_source {
        expect_code(c, &line("RNFR", src), 350).await?;
    }
    let l = line(verb, arg);
    let mut a = attempt(c, &l, Some(PWNED)).await?;
    if rnfr_source.is_some() {
        a.codes.insert(0, 350);
    }
    if verb == "CWD" && a.codes.first() == Some(&250) {
        let pwd = try_cmd(c, b"PWD").await?;
        c.note(format!("PWD after CWD: {}", pwd.text()));
        try_cmd(c, b"CWD /").await?;
    }
    if a.codes != expected {
        return Err(format!(
            "{}: expected {expected:?}, got {:?} {:?}{}\n{}",
            show(&l),
            a.codes,
            a.texts,
            if a.data.is_empty() {
                String::new()
            } else {
                format!("\ndata received: {}", show(&a.data))
            },
            tail(c, 8)
        ));
    }
    Ok(a)
}

#[tokio::test]
async fn path_traversal_stays_inside_the_root() {
    // On S3 the same attack is s3_store.rs `s3_path_traversal_stays_inside_the_prefix`.
    if !local_only("symbolic links and directories around the root are local") {
        return;
    }
    let _lock = shared().await;
    within(600, async {
        // O/p/root is served. Around it: O/p/near.txt next to the root,
        // O/sentinel.txt next to the root's parent directory, O/outside/.
        let outer = tempfile::tempdir().unwrap();
        let o = outer.path().to_path_buf();
        let r = o.join("p/root");
        std::fs::create_dir_all(&r).unwrap();
        std::fs::write(o.join("sentinel.txt"), SENTINEL).unwrap();
        std::fs::write(o.join("p/near.txt"), SENTINEL).unwrap();
        std::fs::create_dir(o.join("outside")).unwrap();
        std::fs::write(o.join("outside/secret.txt"), SECRET).unwrap();
        std::fs::write(r.join("inside.txt"), INSIDE).unwrap();
        std::fs::create_dir(r.join("dir")).unwrap();
        std::fs::write(r.join("dir/file.txt"), b"f").unwrap();
        std::fs::write(r.join(".ftps-upload.0000.tmp"), b"reserved").unwrap();
        use std::os::unix::fs::symlink;
        symlink("/etc", r.join("etc_link")).unwrap();
        symlink("/", r.join("root_link")).unwrap();
        symlink(o.join("outside"), r.join("out_abs")).unwrap();
        symlink("../../outside", r.join("out_rel")).unwrap();
        symlink("../../sentinel.txt", r.join("sentinel_link")).unwrap();
        symlink("../near.txt", r.join("near_link")).unwrap();
        symlink("../../../outside", r.join("dir/up2")).unwrap();
        symlink("loop", r.join("loop")).unwrap();

        let outside_before: Vec<_> = snapshot(&o)
            .into_iter()
            .filter(|(p, _)| !p.starts_with("p/root"))
            .collect();
        let passwd_before = file_hash(Path::new("/etc/passwd"));
        // `o` without its leading "/", for paths through root_link.
        let o_rel = o.to_str().unwrap().trim_start_matches('/').to_string();

        let root_for_cfg = r.clone();
        let server = TestServer::start_with(move |cfg| {
            cfg.users[0].root = Some(root_for_cfg);
            cfg.users[0].s3 = None;
            cfg.server.max_line_bytes = 16384;
        });
        let health = HealthLoop::start(server.explicit, &server.cert_pem, &r);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;

        let b = |s: &str| s.as_bytes().to_vec();
        let long_component = vec![b'x'; 300];
        let long_path = {
            let mut p = b"/dir".to_vec();
            while p.len() < 4500 {
                p.extend_from_slice(b"/abcdefghijklmnopqrstuvwxyz0123456789");
            }
            p
        };
        let rows = vec![
            PathRow { label: "L1 ../sentinel.txt", read: b("../sentinel.txt"), read_want: Want::No(550), write: b("../pwned-L1"), write_want: Want::Ok, lands: Some(b("pwned-L1")), link_self: false },
            PathRow { label: "L2 ../ x8", read: b("../../../../../../../../sentinel.txt"), read_want: Want::No(550), write: b("../../../../../../../../pwned-L2"), write_want: Want::Ok, lands: Some(b("pwned-L2")), link_self: false },
            PathRow { label: "L3 /../../etc/passwd", read: b("/../../etc/passwd"), read_want: Want::No(550), write: b("/../../pwned-L3"), write_want: Want::Ok, lands: Some(b("pwned-L3")), link_self: false },
            PathRow { label: "L4 absolute /etc/passwd", read: b("/etc/passwd"), read_want: Want::No(550), write: b("/etc/pwned-L4"), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "L5 dir/../../../inside.txt", read: b("dir/../../../inside.txt"), read_want: Want::Ok, write: b("dir/../../../pwned-L5"), write_want: Want::Ok, lands: Some(b("pwned-L5")), link_self: false },
            PathRow { label: "L6 ./.././../inside.txt", read: b("./.././../inside.txt"), read_want: Want::Ok, write: b("./.././../pwned-L6"), write_want: Want::Ok, lands: Some(b("pwned-L6")), link_self: false },
            PathRow { label: "L7 %2e%2e/ (literal, not decoded)", read: b("%2e%2e/sentinel.txt"), read_want: Want::No(550), write: b("%2e%2e/pwned-L7"), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "L8 %2e%2e%2f (one literal name)", read: b("%2e%2e%2fsentinel.txt"), read_want: Want::No(550), write: b("%2e%2e%2fpwned-L8"), write_want: Want::Ok, lands: Some(b("%2e%2e%2fpwned-L8")), link_self: false },
            PathRow { label: "L9 ..\\..\\ (backslash is a byte)", read: b("..\\..\\sentinel.txt"), read_want: Want::No(550), write: b("..\\..\\pwned-L9"), write_want: Want::Ok, lands: Some(b("..\\..\\pwned-L9")), link_self: false },
            PathRow { label: "L10 ....//....//", read: b("....//....//sentinel.txt"), read_want: Want::No(550), write: b("..../pwned-L10"), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "L11 overlong UTF-8 dots C0 AE", read: b"\xc0\xae\xc0\xae/sentinel.txt".to_vec(), read_want: Want::No(550), write: b"\xc0\xae\xc0\xae/pwned-L11".to_vec(), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "L12 ~/../", read: b("~/../sentinel.txt"), read_want: Want::No(550), write: b("~/../pwned-L12"), write_want: Want::Ok, lands: Some(b("pwned-L12")), link_self: false },
            PathRow { label: "L13 ..;/ (servlet style)", read: b("..;/sentinel.txt"), read_want: Want::No(550), write: b("..;/pwned-L13"), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "L14 %252e%252e/ (double-encoded)", read: b("%252e%252e/sentinel.txt"), read_want: Want::No(550), write: b("%252e%252e/pwned-L14"), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "S1 symlink to /etc", read: b("etc_link/passwd"), read_want: Want::No(550), write: b("etc_link/pwned-S1"), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "S2 symlink to /", read: b("root_link/etc/passwd"), read_want: Want::No(550), write: format!("root_link/{o_rel}/outside/pwned-S2").into_bytes(), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "S3 absolute symlink to a sibling dir", read: b("out_abs/secret.txt"), read_want: Want::No(550), write: b("out_abs/pwned-S3"), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "S4 relative symlink ../outside", read: b("out_rel/secret.txt"), read_want: Want::No(550), write: b("out_rel/pwned-S4"), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "S5 symlink to a file outside", read: b("sentinel_link"), read_want: Want::No(550), write: b("sentinel_link"), write_want: Want::No(550), lands: None, link_self: true },
            PathRow { label: "S6b symlink to a file next to the root", read: b("near_link"), read_want: Want::No(550), write: b("near_link"), write_want: Want::No(550), lands: None, link_self: true },
            PathRow { label: "L15 ../near.txt (next to the root)", read: b("../near.txt"), read_want: Want::No(550), write: b("../near.txt"), write_want: Want::Ok, lands: Some(b("near.txt")), link_self: false },
            PathRow { label: "L16 ../../sentinel.txt (next to the root's parent)", read: b("../../sentinel.txt"), read_want: Want::No(550), write: b("../../p/root/../../sentinel.txt"), write_want: Want::Ok, lands: Some(b("sentinel.txt")), link_self: false },
            PathRow { label: "S6 nested symlink ../../outside", read: b("dir/up2/secret.txt"), read_want: Want::No(550), write: b("dir/up2/pwned-S6"), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "S7 the /etc link itself", read: b("etc_link"), read_want: Want::No(550), write: b("etc_link"), write_want: Want::No(550), lands: None, link_self: true },
            PathRow { label: "S8 the / link itself", read: b("root_link"), read_want: Want::No(550), write: b("root_link"), write_want: Want::No(550), lands: None, link_self: true },
            PathRow { label: "S9 symlink loop", read: b("loop/x"), read_want: Want::No(550), write: b("loop/pwned-S9"), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "S10 /root_link/../etc_link/", read: b("/root_link/../etc_link/passwd"), read_want: Want::No(550), write: b("/root_link/../etc_link/pwned-S10"), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "S11 / link to the sentinel's dir", read: format!("root_link/{o_rel}/sentinel.txt").into_bytes(), read_want: Want::No(550), write: format!("root_link/{o_rel}/pwned-S11").into_bytes(), write_want: Want::No(550), lands: None, link_self: false },
            PathRow { label: "S12 out_abs/.. is lexical (the root)", read: b("out_abs/../sentinel.txt"), read_want: Want::No(550), write: b("out_abs/../pwned-S12"), write_want: Want::Ok, lands: Some(b("pwned-S12")), link_self: false },
            PathRow { label: "M1 NUL byte", read: b"inside.txt\0../../etc/passwd".to_vec(), read_want: Want::No(501), write: b"pwned\0-M1".to_vec(), write_want: Want::No(501), lands: None, link_self: false },
            PathRow { label: "M2 300-byte component", read: long_component.clone(), read_want: Want::No(553), write: long_component.clone(), write_want: Want::No(553), lands: None, link_self: false },
            PathRow { label: "M3 path over 4096 bytes", read: long_path.clone(), read_want: Want::No(553), write: long_path.clone(), write_want: Want::No(553), lands: None, link_self: false },
            PathRow { label: "M4 reserved temp name", read: b(".ftps-upload.0000.tmp"), read_want: Want::No(553), write: b(".ftps-upload.pwned-M4"), write_want: Want::No(553), lands: None, link_self: false },
            PathRow { label: "M5 300-byte component mid-path", read: cat(&[b"dir/", &long_component, b"/../inside.txt"]), read_want: Want::No(553), write: cat(&[b"dir/", &long_component, b"/../pwned-M5"]), write_want: Want::No(553), lands: None, link_self: false },
        ];

        let mut cases = Cases::new("path traversal");
        for (i, row) in rows.iter().enumerate() {
            for verb in READ_VERBS {
                if row.link_self && matches!(*verb, "DELE" | "RNFR") {
                    continue;
                }
                if row.read_want == Want::Ok && *verb == "DELE" {
                    continue;
                }
                let Some(expected) = read_expectation(verb, row.read_want) else {
                    continue;
                };
                let label = format!("{} {verb}", row.label);
                let result = path_case(&mut c, verb, &row.read, &expected, None)
                    .await
                    .and_then(|a| {
                        if *verb == "RETR" && row.read_want == Want::Ok && a.data != INSIDE {
                            Err(format!("RETR read {} instead of inside.txt", show(&a.data)))
                        } else if a.data.windows(8).any(|w| w == b"SENTINEL" || w == b"SECRET o" || w == b"root:x:0") {
                            Err(format!("data from outside the root: {}", show(&a.data)))
                        } else {
                            Ok(())
                        }
                    });
                cases.record(&label, result);
            }
            for verb in WRITE_VERBS {
                if row.link_self && *verb == "RNTO" {
                    continue;
                }
                let suffix: &[u8] = if row.link_self {
                    b""
                } else {
                    match *verb {
                        "STOR" => b"-s",
                        "APPE" => b"-a",
                        "MKD" => b"-d",
                        _ => b"-r",
                    }
                };
                let arg = cat(&[&row.write, suffix]);
                let expected = match (row.write_want, *verb) {
                    (Want::Ok, "STOR" | "APPE") => vec![150, 226],
                    (Want::Ok, "MKD") => vec![257],
                    (Want::Ok, _) => vec![350, 250],
                    (Want::No(code), "RNTO") => vec![350, code],
                    (Want::No(code), _) => vec![code],
                };
                let rn_source = format!("rn-{i}.txt");
                let source = if *verb == "RNTO" {
                    std::fs::write(r.join(&rn_source), PWNED).unwrap();
                    Some(rn_source.as_bytes())
                } else {
                    None
                };
                let label = format!("{} {verb}", row.label);
                let mut result = path_case(&mut c, verb, &arg, &expected, source).await.map(|_| ());
                if result.is_ok() && row.write_want == Want::Ok {
                    let name = cat(&[row.lands.as_deref().unwrap(), suffix]);
                    let at = bytes_path(&r, &name);
                    let ok = match *verb {
                        "MKD" => at.is_dir(),
                        _ => std::fs::read(&at).map(|d| d == PWNED).unwrap_or(false),
                    };
                    if !ok {
                        result = Err(format!("{verb} did not land at {} inside the root", at.display()));
                    }
                }
                cases.record(&label, result);
                // Uploads carry no TLS 1.3 tickets; a download does (two).
                // Keep the client's single-use tickets from running out
                // (see consecutive_uploads_keep_resuming in hostile_tls.rs).
                let _ = attempt(&mut c, b"RETR inside.txt", None).await;
            }
        }

        // CWD and listings of the root through "..": they stay at "/".
        let cwd_rows: Vec<CwdRow> = vec![
            ("C1 CWD ../../../..", vec![b"CWD ../../../.."], vec![250]),
            ("C2 CWD /..", vec![b"CWD /.."], vec![250]),
            ("C3 CWD dir then ../../../../", vec![b"CWD dir", b"CWD ../../../../"], vec![250, 250]),
            ("C4 CDUP above the root", vec![b"CWD dir", b"CDUP", b"CDUP", b"XCUP"], vec![250, 250, 250, 250]),
            ("C5 XCWD ../..", vec![b"XCWD ../.."], vec![250]),
            ("C6 CWD etc_link", vec![b"CWD etc_link"], vec![550]),
            ("C7 CWD dir/up2", vec![b"CWD dir/up2"], vec![550]),
            ("C8 CWD root_link/tmp", vec![b"CWD root_link/tmp"], vec![550]),
            ("C9 RMD ../.. (the root)", vec![b"RMD ../.."], vec![550]),
            ("C10 DELE /.. (the root)", vec![b"DELE /.."], vec![550]),
            ("C11 MKD ../.. (the root)", vec![b"MKD ../.."], vec![550]),
            ("C12 SIZE /.. (a directory)", vec![b"SIZE /.."], vec![550]),
            ("C13 MLST ..", vec![b"MLST .."], vec![250]),
        ];
        for (label, lines, expected) in cwd_rows {
            let mut codes = Vec::new();
            let mut result = Ok(());
            for l in &lines {
                match try_cmd(&mut c, l).await {
                    Ok(reply) => codes.push(reply.code),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            if result.is_ok() && codes != expected {
                result = Err(format!("expected {expected:?}, got {codes:?}\n{}", tail(&c, 8)));
            }
            if result.is_ok() {
                result = match try_cmd(&mut c, b"PWD").await {
                    Ok(pwd) if pwd.code == 257 && pwd.text().starts_with("\"/\"") => Ok(()),
                    Ok(pwd) => Err(format!("PWD after {label}: {} {:?}", pwd.code, pwd.text())),
                    Err(e) => Err(e),
                };
            }
            let _ = try_cmd(&mut c, b"CWD /").await;
            cases.record(label, result);
        }
        // RNFR of the root: either refused, or RNTO refused; the root stays.
        let result = async {
            let first = try_cmd(&mut c, b"RNFR ../..").await?;
            match first.code {
                550 => Ok(()),
                350 => {
                    let second = try_cmd(&mut c, b"RNTO renamed-root").await?;
                    if second.code == 550 && r.join("inside.txt").exists() {
                        Ok(())
                    } else {
                        Err(format!("RNTO after RNFR of the root: {} {:?}", second.code, second.text()))
                    }
                }
                other => Err(format!("RNFR ../..: {other} {:?}", first.text())),
            }
        }
        .await;
        cases.record("C14 RNFR/RNTO of the root", result);
        // Listings of ".." show the root, never the directory above it.
        for (label, l) in [
            ("C15 LIST ../..", &b"LIST ../.."[..]),
            ("C16 NLST /..", b"NLST /.."),
            ("C17 MLSD ../../..", b"MLSD ../../.."),
            ("C18 LIST -la ..", b"LIST -la .."),
        ] {
            let result = attempt_expect(&mut c, l, None, &[150, 226])
                .await
                .and_then(|a| is_root_listing(&String::from_utf8_lossy(&a.data)));
            cases.record(label, result);
        }
        let result = try_cmd(&mut c, b"STAT ../..").await.and_then(|reply| {
            let text = reply
                .lines
                .iter()
                .skip(1)
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .filter(|l| l.starts_with(' '))
                .collect::<Vec<_>>()
                .join("\r\n");
            if reply.code != 213 {
                return Err(format!("STAT ../..: {}", reply.code));
            }
            is_root_listing(&text)
        });
        cases.record("C19 STAT ../..", result);
        c.expect("QUIT", 221).await;

        // Nothing outside the root was read, created or changed.
        let outside_after: Vec<_> = snapshot(&o)
            .into_iter()
            .filter(|(p, _)| !p.starts_with("p/root"))
            .collect();
        let mut escaped = Vec::new();
        if outside_after != outside_before {
            escaped.push(format!(
                "the directory around the root changed:\nbefore {outside_before:#?}\nafter {outside_after:#?}"
            ));
        }
        if file_hash(Path::new("/etc/passwd")) != passwd_before {
            escaped.push("/etc/passwd changed".into());
        }
        for dir in ["/", "/etc", "/tmp"] {
            let found = names_containing(Path::new(dir), b"pwned-");
            if !found.is_empty() {
                for f in &found {
                    let _ = std::fs::remove_file(f);
                }
                escaped.push(format!("created outside the root: {found:?}"));
            }
        }
        cases.record(
            "nothing outside the root touched",
            if escaped.is_empty() { Ok(()) } else { Err(escaped.join("\n")) },
        );
        cases.record("healthy while it happened", health.finish().await.map(|_| ()));
        assert_healthy_at(server.explicit, &server.cert_pem, &r).await;
        cases.finish();
    })
    .await;
}

// ===========================================================================
// Overlong lines
// ===========================================================================

/// Bytes to write, each followed by a pause in milliseconds.
type Parts = Vec<(Vec<u8>, u64)>;
/// A table row: label, what to send, the reply codes expected.
type LineRow = (&'static str, Parts, Vec<u16>);

/// "NOOP AAAA..." of exactly `len` bytes (no line end).
fn noop_of(len: usize) -> Vec<u8> {
    let mut l = b"NOOP ".to_vec();
    l.resize(len.max(5), b'A');
    l
}

/// `bytes` cut in pieces of `chunk`, each followed by `pause_ms`.
fn dribble(bytes: &[u8], chunk: usize, pause_ms: u64) -> Vec<(Vec<u8>, u64)> {
    bytes
        .chunks(chunk)
        .map(|c| (c.to_vec(), pause_ms))
        .collect()
}

/// Send the parts (with their pauses), then read one reply per expected code.
async fn send_parts_expect(
    c: &mut Client,
    parts: &[(Vec<u8>, u64)],
    expected: &[u16],
) -> Result<(), String> {
    let total: usize = parts.iter().map(|(p, _)| p.len()).sum();
    c.note(format!("C> ({total} bytes in {} writes)", parts.len()));
    for (bytes, pause) in parts {
        let write = async {
            c.stream.write_all(bytes).await?;
            c.stream.flush().await
        };
        match tokio::time::timeout(Duration::from_secs(30), write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("write: {e}\n{}", tail(c, 6))),
            Err(_) => return Err(format!("write timed out\n{}", tail(c, 6))),
        }
        if *pause > 0 {
            tokio::time::sleep(Duration::from_millis(*pause)).await;
        }
    }
    let mut got = Vec::new();
    for _ in expected {
        match next_reply(c).await {
            Ok(r) => got.push(r.code),
            Err(e) => return Err(format!("after {got:?}: {e}\n{}", tail(c, 6))),
        }
    }
    if got != expected {
        return Err(format!(
            "expected {expected:?}, got {got:?}\n{}",
            tail(c, 6)
        ));
    }
    // Exactly those replies: nothing else is pending, the session goes on.
    let noop = try_cmd(c, b"NOOP").await?;
    if noop.code != 200 {
        return Err(format!(
            "NOOP after the case: {} {:?} (an extra reply was pending?)\n{}",
            noop.code,
            noop.text(),
            tail(c, 6)
        ));
    }
    Ok(())
}

#[tokio::test]
async fn overlong_lines_are_500_and_the_session_goes_on() {
    let _lock = shared().await;
    within(300, async {
        let server = TestServer::start();
        let health = HealthLoop::for_server(&server);
        let mut cases = Cases::new("overlong lines");
        let one = |b: Vec<u8>| vec![(b, 0u64)];
        let rows: Vec<LineRow> = vec![
            (
                "5000 bytes + CRLF",
                one(cat(&[&noop_of(5000), CRLF])),
                vec![500],
            ),
            (
                "70000 bytes + CRLF",
                one(cat(&[&noop_of(70000), CRLF])),
                vec![500],
            ),
            (
                "5000 bytes, no CRLF (line end comes later)",
                vec![(noop_of(5000), 300), (b"\r\nNOOP\r\n".to_vec(), 0)],
                vec![500, 200],
            ),
            (
                "70000 bytes, no CRLF (line end comes later)",
                vec![(noop_of(70000), 300), (b"\r\nNOOP\r\n".to_vec(), 0)],
                vec![500, 200],
            ),
            (
                "5000 bytes + bare LF",
                one(cat(&[&noop_of(5000), b"\n"])),
                vec![500],
            ),
            (
                "5000 bytes dribbled 100 B / 10 ms",
                [dribble(&noop_of(5000), 100, 10), one(CRLF.to_vec())].concat(),
                vec![500],
            ),
            (
                "70000 bytes dribbled 7000 B / 20 ms",
                [dribble(&noop_of(70000), 7000, 20), one(CRLF.to_vec())].concat(),
                vec![500],
            ),
            (
                "70000 bytes dribbled, no CRLF, then NOOP",
                [
                    dribble(&noop_of(70000), 5000, 10),
                    vec![(b"\r\nNOOP\r\n".to_vec(), 0)],
                ]
                .concat(),
                vec![500, 200],
            ),
            (
                "boundary: 4094 + CRLF = 4096 bytes fits",
                one(cat(&[&noop_of(4094), CRLF])),
                vec![200],
            ),
            (
                "boundary: 4096 + CRLF = 4098 bytes > max_line_bytes (CRLF included)",
                one(cat(&[&noop_of(4096), CRLF])),
                vec![500],
            ),
            (
                "boundary: 4097 + CRLF",
                one(cat(&[&noop_of(4097), CRLF])),
                vec![500],
            ),
            (
                "two overlong lines in one write",
                one(cat(&[&noop_of(5000), CRLF, &noop_of(6000), CRLF])),
                vec![500, 500],
            ),
            (
                "overlong line then a valid one in one write",
                one(cat(&[&noop_of(5000), CRLF, b"SYST\r\n"])),
                vec![500, 215],
            ),
            (
                "overlong USER before login",
                one(cat(&[b"USER ", &vec![b'u'; 5000], CRLF])),
                vec![500],
            ),
            (
                "overlong PASS",
                one(cat(&[b"PASS ", &vec![b'p'; 5000], CRLF])),
                vec![500],
            ),
            (
                "overlong with embedded lone CRs",
                one(cat(&[b"NOOP ", &b"A\r".repeat(3000), b"\n"])),
                vec![500],
            ),
            (
                "overlong of NUL bytes",
                one(cat(&[b"NOOP ", &vec![0u8; 5000], CRLF])),
                vec![500],
            ),
            (
                "overlong of non-UTF-8 bytes",
                one(cat(&[b"NOOP ", &vec![0x80u8; 5000], CRLF])),
                vec![500],
            ),
            (
                "overlong verb (no space)",
                one(cat(&[&vec![b'N'; 5000], CRLF])),
                vec![500],
            ),
        ];
        let mut c = Client::connect(server.explicit).await;
        for (label, parts, expected) in &rows {
            let result = send_parts_expect(&mut c, parts, expected).await;
            if result.is_err() {
                // Start over on a fresh connection for the next row.
                cases.record(label, result);
                c = Client::connect(server.explicit).await;
                continue;
            }
            cases.record(label, result);
        }
        // After all this the plaintext session can still secure itself and log in.
        let config = client::config_default(&server.cert_pem);
        c.auth_tls(&config).await;
        c.login().await;
        c.pbsz_prot_p().await;
        let tls_rows: Vec<LineRow> = vec![
            (
                "TLS: CWD with a 5000-byte line",
                one(cat(&[b"CWD ", &vec![b'B'; 4996], CRLF])),
                vec![500],
            ),
            (
                "TLS: 70000 bytes + CRLF",
                one(cat(&[&noop_of(70000), CRLF])),
                vec![500],
            ),
            (
                "TLS: 70000 dribbled, no CRLF, then NOOP",
                [
                    dribble(&noop_of(70000), 4000, 5),
                    vec![(b"\r\nNOOP\r\n".to_vec(), 0)],
                ]
                .concat(),
                vec![500, 200],
            ),
            (
                "TLS: STOR with a 6000-byte line",
                one(cat(&[b"STOR ", &vec![b's'; 6000], CRLF])),
                vec![500],
            ),
        ];
        for (label, parts, expected) in &tls_rows {
            let result = send_parts_expect(&mut c, parts, expected).await;
            cases.record(label, result);
        }
        let result = try_cmd(&mut c, b"PWD").await.and_then(|r| {
            if r.code == 257 && r.text().starts_with("\"/\"") {
                Ok(())
            } else {
                Err(format!("PWD: {} {:?}", r.code, r.text()))
            }
        });
        cases.record("TLS: cwd unchanged by the overlong CWD", result);
        server.store.write("after-long.txt", b"still here");
        c.expect("TYPE I", 200).await;
        let got = c.retr("after-long.txt").await;
        cases.record(
            "TLS: RETR on the same session afterwards",
            if got == b"still here" {
                Ok(())
            } else {
                Err("wrong content".into())
            },
        );
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

/// A 32 MB line without a line end: the server keeps at most a bounded
/// prefix, stays healthy meanwhile, and answers 500 when the line ends.
#[tokio::test]
async fn a_32_mb_line_without_newline_is_bounded() {
    let _lock = exclusive().await;
    within(300, async {
        let server = TestServer::start();
        let mut cases = Cases::new("overlong lines (memory)");
        // Warm up first: a login hashes the password with argon2 (19 MiB of
        // working memory the allocator keeps), which is not the line's doing.
        assert_server_healthy(&server).await;
        assert_server_healthy(&server).await;
        let mut c = Client::connect(server.explicit).await;
        let rss_before = rss_bytes();
        let chunk = vec![b'A'; 1 << 20];
        write_quiet(&mut c, b"NOOP ", "NOOP (start of a 32 MB line)")
            .await
            .unwrap();
        for i in 0..32 {
            write_quiet(&mut c, &chunk, &format!("1 MB of A (#{i})"))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_during = rss_bytes();
        // While the line is still pending, another client is served normally
        // (after the measurement: its login's argon2 memory is not the line's).
        assert_server_healthy(&server).await;
        let growth = rss_during.saturating_sub(rss_before);
        eprintln!("RSS before {rss_before}, with a 32 MB line pending {rss_during} (+{growth})");
        cases.record(
            "32 MB pending line: memory bounded (< 16 MB growth)",
            if growth < 16 << 20 {
                Ok(())
            } else {
                Err(format!(
                    "RSS grew by {growth} bytes while a 32 MB line was pending"
                ))
            },
        );
        // No reply yet (the line has not ended) ...
        let early = c.next_within(Duration::from_millis(200)).await;
        let early_ok = matches!(
            early,
            Next::Timeout | Next::Reply(ftps_proto::reply::Reply { code: 500, .. })
        );
        let answered_early = matches!(early, Next::Reply(_));
        cases.record(
            "32 MB pending line: connection kept, no stray reply",
            if early_ok {
                Ok(())
            } else {
                Err(format!("{early:?}"))
            },
        );
        // ... then the line ends: one 500 for it, and the session goes on.
        let parts = vec![(b"\r\n".to_vec(), 0u64)];
        let expected: &[u16] = if answered_early { &[] } else { &[500] };
        cases.record(
            "32 MB line: 500 at its end, NOOP after",
            send_parts_expect(&mut c, &parts, expected).await,
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

// ===========================================================================
// Invalid UTF-8, Telnet, line ends
// ===========================================================================

#[tokio::test]
async fn invalid_utf8_is_preserved_byte_for_byte() {
    // S3 keys are UTF-8: such names are refused with 553 there (protocol_data.rs
    // `rfc959_non_utf8_file_name_round_trips`, and the IAC IAC case of
    // `telnet_sequences_and_line_ends`).
    if !local_only("only a local file name can hold bytes that are not UTF-8") {
        return;
    }
    let _lock = shared().await;
    within(300, async {
        let server = TestServer::start();
        let root = server.root.path().to_path_buf();
        let health = HealthLoop::for_server(&server);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut cases = Cases::new("invalid UTF-8");
        let data = random_bytes(70_001);

        // Names that are not UTF-8 (no 0xFF: that is Telnet IAC).
        let names: Vec<(&str, &[u8])> = vec![
            ("C3 28 (invalid 2-byte)", b"\xc3\x28.bin"),
            ("ED A0 80 (surrogate)", b"\xed\xa0\x80-surrogate.bin"),
            ("F4 90 80 80 (> U+10FFFF)", b"\xf4\x90\x80\x80.bin"),
            ("C0 AF (overlong '/')", b"a\xc0\xafb"),
            ("lone continuation 80 81", b"\x80\x81.bin"),
            ("truncated E2 82", b"x\xe2\x82"),
            ("latin-1 e9", b"caf\xe9.txt"),
        ];
        for (label, name) in &names {
            let result = async {
                attempt_expect(&mut c, &line("STOR", name), Some(&data), &[150, 226]).await?;
                let on_disk = bytes_path(&root, name);
                if !std::fs::read(&on_disk).map(|d| d == data).unwrap_or(false) {
                    return Err(format!("not stored byte for byte as {}", on_disk.display()));
                }
                let a = attempt_expect(&mut c, &line("RETR", name), None, &[150, 226]).await?;
                if a.data != data {
                    return Err("RETR gave different bytes".into());
                }
                let size = expect_code(&mut c, &line("SIZE", name), 213).await?;
                if size.text() != data.len().to_string() {
                    return Err(format!("SIZE {:?}", size.text()));
                }
                expect_code(&mut c, &line("MDTM", name), 213).await?;
                let nlst = attempt_expect(&mut c, b"NLST", None, &[150, 226]).await?;
                let wanted = cat(&[name, CRLF]);
                if !contains(&nlst.data, &wanted) {
                    return Err(format!(
                        "NLST does not show the exact bytes: {}",
                        show(&nlst.data)
                    ));
                }
                let mlst = expect_code(&mut c, &line("MLST", name), 250).await?;
                if !mlst.lines.iter().any(|l| contains(l, name)) {
                    return Err("MLST does not show the exact bytes".into());
                }
                Ok(())
            }
            .await;
            cases.record(
                &format!("file name {label}: STOR/RETR/SIZE/MDTM/NLST/MLST"),
                result,
            );
        }
        // Directories and renames.
        let result = async {
            let r = expect_code(&mut c, b"MKD \xfe\xfd-dir", 257).await?;
            if !contains(&r.lines[0], b"\xfe\xfd-dir\"") {
                return Err(format!(
                    "257 does not quote the exact name: {}",
                    show(&r.lines[0])
                ));
            }
            if !bytes_path(&root, b"\xfe\xfd-dir").is_dir() {
                return Err("directory not created byte for byte".into());
            }
            expect_code(&mut c, b"CWD \xfe\xfd-dir", 250).await?;
            let pwd = expect_code(&mut c, b"PWD", 257).await?;
            if !pwd.lines[0].starts_with(b"\"/\xfe\xfd-dir\"") {
                return Err(format!("PWD: {}", show(&pwd.lines[0])));
            }
            expect_code(&mut c, b"CDUP", 250).await?;
            attempt_expect(&mut c, b"LIST \xfe\xfd-dir", None, &[150, 226]).await?;
            expect_code(&mut c, b"RMD \xfe\xfd-dir", 250).await?;
            if bytes_path(&root, b"\xfe\xfd-dir").exists() {
                return Err("RMD left the directory".into());
            }
            Ok(())
        }
        .await;
        cases.record("MKD/CWD/PWD/LIST/RMD of a non-UTF-8 directory", result);
        let result = async {
            expect_codes(
                &mut c,
                &[
                    (b"RNFR \xc3\x28.bin", 350),
                    (b"RNTO \xe0\x80\x80-renamed.bin", 250),
                ],
            )
            .await?;
            if !bytes_path(&root, b"\xe0\x80\x80-renamed.bin").exists()
                || bytes_path(&root, b"\xc3\x28.bin").exists()
            {
                return Err("rename did not keep the exact bytes".into());
            }
            expect_code(&mut c, b"DELE \xe0\x80\x80-renamed.bin", 250).await?;
            Ok(())
        }
        .await;
        cases.record("RNFR/RNTO/DELE with non-UTF-8 names", result);
        // Invalid UTF-8 in verbs and keyword arguments: error replies, no panic.
        let rows: Vec<(&str, &[u8], u16)> = vec![
            ("verb C3 A9 + NOOP", b"\xc3\xa9NOOP", 500),
            ("verb NO 80 P", b"NO\x80P", 500),
            ("verb of 4 high bytes", b"\x80\x81\x82\x83", 500),
            ("verb overlong-encoded NOOP", b"\xc1\x8eOOP", 500),
            ("TYPE C3", b"TYPE \xc3", 501),
            ("OPTS UTF8 C3", b"OPTS UTF8 \xc3", 501),
            ("OPTS C3 28", b"OPTS \xc3\x28", 501),
            ("SITE C3 28", b"SITE \xc3\x28", 500),
            ("HELP C3 28", b"HELP \xc3\x28", 502),
            ("PROT C3", b"PROT \xc3", 504),
            ("PBSZ C3", b"PBSZ \xc3", 501),
            (
                "EPRT with non-UTF-8 address",
                b"EPRT |1|\xc3\x28|5000|",
                501,
            ),
            ("PORT with non-UTF-8 number", b"PORT \xc3,0,0,1,4,1", 501),
            ("REST C3 28", b"REST \xc3\x28", 501),
            ("EPSV C3", b"EPSV \xc3", 501),
            ("STRU C3", b"STRU \xc3", 501),
            ("MODE C3", b"MODE \xc3", 501),
            ("CWD 80 81 (missing)", b"CWD \x80\x81", 550),
            ("DELE C3 28 (missing)", b"DELE \xc3\x28", 550),
            ("MLST E2 82 (missing)", b"MLST \xe2\x82", 550),
            ("STAT C3 28 (missing)", b"STAT \xc3\x28", 550),
            ("SIZE F5 (missing)", b"SIZE \xf5", 550),
            ("RMD F8 88 (missing)", b"RMD \xf8\x88", 550),
        ];
        for (label, l, code) in rows {
            cases.record(label, expect_code(&mut c, l, code).await.map(|_| ()));
        }
        c.expect_replies(&[("NOOP", 200), ("QUIT", 221)]).await;
        // Before login: non-UTF-8 AUTH, USER and PASS.
        let result = async {
            let mut p = Client::connect(server.explicit).await;
            expect_codes(&mut p, &[(b"AUTH \xc3\x28", 504), (b"USER \xc3\x28", 530)]).await?;
            p.auth_tls(&config).await;
            expect_codes(
                &mut p,
                &[
                    (b"USER \xc3\x28", 331),
                    (b"PASS \xc3\x28", 530),
                    (format!("USER {USER}").as_bytes(), 331),
                    (b"PASS \xe2\x82\xac\xc3", 530),
                ],
            )
            .await?;
            p.login().await;
            p.pbsz_prot_p().await;
            p.expect("QUIT", 221).await;
            Ok(())
        }
        .await;
        cases.record(
            "AUTH/USER/PASS with non-UTF-8 bytes, then a normal login",
            result,
        );
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

#[tokio::test]
async fn telnet_sequences_and_line_ends() {
    let _lock = shared().await;
    within(300, async {
        let server = TestServer::start();
        let root = server.root.path().to_path_buf();
        let health = HealthLoop::for_server(&server);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut cases = Cases::new("Telnet and line ends");
        let one = |b: &[u8]| vec![(b.to_vec(), 0u64)];
        let rows: Vec<LineRow> = vec![
            (
                "IAC WILL ECHO inside the verb",
                one(b"NO\xff\xfb\x01OP\r\n"),
                vec![200],
            ),
            (
                "IAC DO TTYPE before the verb",
                one(b"\xff\xfd\x18NOOP\r\n"),
                vec![200],
            ),
            (
                "IAC WONT / IAC DONT",
                one(b"\xff\xfc\x01\xff\xfe\x03NOOP\r\n"),
                vec![200],
            ),
            ("IAC NOP", one(b"\xff\xf1NOOP\r\n"), vec![200]),
            (
                "IAC IP IAC DM ABOR with no transfer",
                one(b"\xff\xf4\xff\xf2ABOR\r\n"),
                vec![225],
            ),
            (
                "IAC sequence split across writes",
                vec![
                    (b"NO\xff".to_vec(), 100),
                    (b"\xfb".to_vec(), 100),
                    (b"\x01OP\r\n".to_vec(), 0),
                ],
                vec![200],
            ),
            (
                "IAC IAC in a NOOP argument",
                one(b"NOOP \xff\xff\xff\xff\r\n"),
                vec![200],
            ),
            ("lone CR inside a line", one(b"NOOP\rNOOP\r\n"), vec![500]),
            (
                "CR NUL (Telnet bare CR) inside a line",
                one(b"NOOP\r\0\r\n"),
                vec![500],
            ),
            (
                "CR then pause then LF",
                vec![(b"NOOP\r".to_vec(), 300), (b"\n".to_vec(), 0)],
                vec![200],
            ),
            (
                "bare LF line ends, pipelined",
                one(b"NOOP\nSYST\n"),
                vec![200, 215],
            ),
            (
                "mixed CRLF and LF, pipelined",
                one(b"NOOP\r\nSYST\nPWD\r\n"),
                vec![200, 215, 257],
            ),
            ("empty line", one(b"\r\n"), vec![500]),
            ("only spaces", one(b"    \r\n"), vec![500]),
            ("bare LF only", one(b"\n"), vec![500]),
            (
                "tab instead of space",
                one(b"RETR\tinside.txt\r\n"),
                vec![500],
            ),
            ("NUL verb", one(b"\0\0\0\0\r\n"), vec![500]),
            ("lowercase verb", one(b"noop\r\n"), vec![200]),
            ("leading spaces", one(b"   NOOP\r\n"), vec![200]),
            (
                "1000 NOOPs in one write",
                one(&b"NOOP\r\n".repeat(1000)),
                vec![200; 1000],
            ),
            (
                "100 bare-LF commands in one write",
                one(&b"SYST\n".repeat(100)),
                vec![215; 100],
            ),
        ];
        for (label, parts, expected) in &rows {
            let result = send_parts_expect(&mut c, parts, expected).await;
            let failed = result.is_err();
            cases.record(label, result);
            if failed {
                c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
            }
        }
        // IAC IAC inside a path is one 0xFF byte of the name.
        let data = random_bytes(10_007);
        let s3 = server.store.backend() == Backend::S3;
        let result = async {
            if s3 {
                // 0xFF is never UTF-8, so no object key holds it: 553.
                expect_code(&mut c, b"EPSV", 229).await?;
                expect_code(&mut c, b"STOR f\xff\xff.bin", 553).await?;
                return Ok(());
            }
            attempt_expect(&mut c, b"STOR f\xff\xff.bin", Some(&data), &[150, 226]).await?;
            if std::fs::read(bytes_path(&root, b"f\xff.bin"))
                .ok()
                .as_deref()
                != Some(&data[..])
            {
                return Err("STOR f IAC IAC .bin did not create f\\xff.bin".into());
            }
            let a = attempt_expect(&mut c, b"RETR f\xff\xff.bin", None, &[150, 226]).await?;
            if a.data != data {
                return Err("RETR f IAC IAC .bin gave other bytes".into());
            }
            let nlst = attempt_expect(&mut c, b"NLST", None, &[150, 226]).await?;
            if !contains(&nlst.data, b"f\xff.bin\r\n") {
                return Err(format!(
                    "NLST (raw data connection) lacks f\\xff.bin: {}",
                    show(&nlst.data)
                ));
            }
            expect_code(&mut c, b"SIZE f\xff\xff.bin", 213).await?;
            Ok(())
        }
        .await;
        cases.record("IAC IAC in STOR/RETR/SIZE path is a 0xFF byte", result);
        let result = async {
            if s3 {
                expect_code(&mut c, b"MKD x\xff\xffy", 553).await?;
                return Ok(());
            }
            expect_code(&mut c, b"MKD x\xff\xffy", 257).await?;
            if !bytes_path(&root, b"x\xffy").is_dir() {
                return Err("MKD x IAC IAC y did not create x\\xffy".into());
            }
            expect_code(&mut c, b"RMD x\xff\xffy", 250).await?;
            Ok(())
        }
        .await;
        cases.record("IAC IAC in MKD/RMD path", result);
        c.expect("QUIT", 221).await;
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

/// RFC 959 §4.1.3: ABOR preceded by Telnet IP and Synch (IAC IP IAC DM)
/// during a transfer: 426 for the transfer, then 226 for the ABOR.
#[tokio::test]
async fn iac_ip_iac_dm_abor_during_transfers() {
    let _lock = shared().await;
    within(120, async {
        let server = TestServer::start();
        let big = server.store.write_random("big.bin", 24 << 20);
        let old = server.store.write_random("existing.bin", 50_000);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut cases = Cases::new("Telnet IP/DM + ABOR during transfers");
        for (label, abor) in [
            (
                "download, IAC IP IAC DM ABOR in one write",
                vec![b"\xff\xf4\xff\xf2ABOR\r\n".to_vec()],
            ),
            (
                "download, IAC IP IAC DM and ABOR in separate writes",
                vec![
                    b"\xff\xf4".to_vec(),
                    b"\xff\xf2".to_vec(),
                    b"ABOR\r\n".to_vec(),
                ],
            ),
        ] {
            let result = async {
                let addr = epsv_addr(&mut c).await?;
                expect_code(&mut c, b"RETR big.bin", 150).await?;
                let tcp = connect(addr).await?;
                let mut tls = client::data_tls(tcp, &c.config())
                    .await
                    .map_err(|e| e.to_string())?;
                let mut buf = vec![0u8; 65536];
                let mut got = 0;
                while got < 256 << 10 {
                    got += tls.read(&mut buf).await.map_err(|e| e.to_string())?;
                }
                for part in &abor {
                    write_quiet(&mut c, part, &show(part)).await?;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let first = next_reply(&mut c).await?;
                let second = next_reply(&mut c).await?;
                // The data connection ends.
                let rest = tokio::time::timeout(Duration::from_secs(20), async {
                    let mut n = 0usize;
                    loop {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return n,
                            Ok(k) => n += k,
                        }
                    }
                })
                .await;
                if (first.code, second.code) != (426, 226) {
                    return Err(format!(
                        "expected 426 then 226, got {} {:?} / {} {:?}",
                        first.code,
                        first.text(),
                        second.code,
                        second.text()
                    ));
                }
                match rest {
                    Ok(n) if got + n < big.len() => Ok(()),
                    Ok(_) => Err("the whole file arrived despite ABOR".into()),
                    Err(_) => Err("the data connection stayed open after ABOR".into()),
                }
            }
            .await;
            cases.record(label, result);
            cases.record(
                &format!("{label}: session goes on"),
                expect_code(&mut c, b"NOOP", 200).await.map(|_| ()),
            );
        }
        let result = async {
            let addr = epsv_addr(&mut c).await?;
            expect_code(&mut c, b"STOR existing.bin", 150).await?;
            let tcp = connect(addr).await?;
            let mut tls = client::data_tls(tcp, &c.config())
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(&random_bytes(300_000))
                .await
                .map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            write_quiet(&mut c, b"\xff\xf4\xff\xf2ABOR\r\n", "IAC IP IAC DM ABOR").await?;
            let first = next_reply(&mut c).await?;
            let second = next_reply(&mut c).await?;
            drop(tls);
            if (first.code, second.code) != (426, 226) {
                return Err(format!(
                    "expected 426 then 226, got {} / {}",
                    first.code, second.code
                ));
            }
            if server.store.read("existing.bin").unwrap() != old {
                return Err("the existing file changed after an aborted upload".into());
            }
            let left = wait_no_leftovers(&server.store, Duration::from_secs(10)).await;
            if !left.is_empty() {
                return Err(format!("temp files left: {left:?}"));
            }
            Ok(())
        }
        .await;
        cases.record(
            "upload over an existing file, IAC IP IAC DM ABOR: old content kept",
            result,
        );
        let got = c.retr("existing.bin").await;
        cases.record(
            "RETR on the same session afterwards",
            if got == old {
                Ok(())
            } else {
                Err("wrong content".into())
            },
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

// ===========================================================================
// Commands out of order
// ===========================================================================

/// Commands that need a logged-in user (RFC 959 §5.4: 530 before login).
const NEED_LOGIN: &[&str] = &[
    "CWD /",
    "XCWD /",
    "CDUP",
    "XCUP",
    "PWD",
    "XPWD",
    "MKD x",
    "XMKD x",
    "RMD x",
    "XRMD x",
    "DELE x",
    "RNFR x",
    "RNTO x",
    "SIZE x",
    "MDTM x",
    "TYPE I",
    "STRU F",
    "MODE S",
    "PORT 127,0,0,1,4,1",
    "PASV",
    "EPRT |1|127.0.0.1|1025|",
    "EPSV",
    "EPSV ALL",
    "REST 0",
    "RETR x",
    "STOR x",
    "STOU",
    "APPE x",
    "ALLO 10",
    "LIST",
    "LIST -la /",
    "NLST",
    "MLSD",
    "MLST",
    "MLST x",
    "STAT /",
    "SITE CHMOD 777 x",
];

async fn run_rows(cases: &mut Cases, c: &mut Client, prefix: &str, rows: &[(&str, u16)]) {
    for (l, code) in rows {
        let result = expect_code(c, l.as_bytes(), *code).await.map(|_| ());
        let result = result.map_err(|e| format!("{e}\n{}", tail(c, 6)));
        cases.record(&format!("{prefix}: {l}"), result);
    }
}

#[tokio::test]
async fn commands_before_login_and_out_of_order() {
    let _lock = shared().await;
    within(300, async {
        let server = TestServer::start();
        server.store.write("x", b"must survive");
        let health = HealthLoop::for_server(&server);
        let config = client::config_default(&server.cert_pem);
        let mut cases = Cases::new("commands out of order");

        // Plaintext, nothing negotiated.
        let mut c = Client::connect(server.explicit).await;
        let plain: Vec<(&str, u16)> = vec![
            ("PASS x", 503),
            ("PBSZ 0", 503),
            ("PROT P", 503),
            ("PROT C", 503),
            ("CCC", 533),
            ("AUTH XYZ", 504),
            ("USER alice", 530),
            ("PASS x", 503),
            ("NOOP", 200),
            ("SYST", 215),
            ("FEAT", 211),
            ("OPTS UTF8 ON", 200),
            ("HELP", 214),
            ("HELP RETR", 214),
            ("STAT", 211),
            ("SITE HELP", 214),
            ("ABOR", 225),
            ("ACCT x", 202),
        ];
        run_rows(&mut cases, &mut c, "plaintext", &plain).await;
        let need: Vec<(&str, u16)> = NEED_LOGIN.iter().map(|l| (*l, 530)).collect();
        run_rows(&mut cases, &mut c, "plaintext, not logged in", &need).await;
        run_rows(
            &mut cases,
            &mut c,
            "plaintext",
            &[("REIN", 220), ("NOOP", 200)],
        )
        .await;

        // After AUTH TLS, before login.
        c.auth_tls(&config).await;
        let tls: Vec<(&str, u16)> = vec![
            ("PROT P", 503),
            ("PASS x", 503),
            ("AUTH TLS", 503),
            ("CCC", 534),
            ("NOOP", 200),
            ("SYST", 215),
            ("FEAT", 211),
            ("HELP", 214),
            ("STAT", 211),
            ("SITE HELP", 214),
            ("ABOR", 225),
            ("PBSZ 0", 200),
            ("PROT C", 200),
            ("PROT S", 536),
            ("PROT E", 536),
            ("PROT X", 504),
            ("PROT P", 200),
        ];
        run_rows(&mut cases, &mut c, "TLS, not logged in", &tls).await;
        run_rows(&mut cases, &mut c, "TLS, not logged in", &need).await;
        run_rows(
            &mut cases,
            &mut c,
            "TLS, after USER only",
            &[("USER alice", 331)],
        )
        .await;
        run_rows(&mut cases, &mut c, "TLS, after USER only", &need).await;
        let pass_wrong = "PASS wrong password";
        let pass_right = format!("PASS {PASSWORD}");
        let user = format!("USER {USER}");
        let login_rows: Vec<(&str, u16)> = vec![
            (pass_wrong, 530),
            ("STOR x", 530),
            (&pass_right, 503),
            (&user, 331),
            (&pass_right, 230),
            (&pass_right, 503),
            ("PASS x", 503),
            ("AUTH TLS", 503),
        ];
        run_rows(&mut cases, &mut c, "TLS login sequence", &login_rows).await;
        if server.store.read("x").unwrap() != b"must survive" {
            cases.record(
                "x untouched by commands before login",
                Err("x changed".into()),
            );
        }

        // Logged in, out of order.
        server.store.write("inside.txt", b"0123456789abcdef");
        let logged: Vec<(&str, u16)> = vec![
            ("RNTO b", 503),
            ("RNFR inside.txt", 350),
            ("NOOP", 200),
            ("RNTO b", 503),
            ("RNFR nothere", 550),
            ("RNTO b", 503),
            ("TYPE I", 200),
            // Data commands before PBSZ/PROT P on this connection: PROT P is set above.
            ("RETR inside.txt", 425),
            ("STOR y", 425),
            ("APPE y", 425),
            ("STOU", 425),
            ("LIST", 425),
            ("NLST", 425),
            ("MLSD", 425),
            ("REST abc", 501),
            ("REST -1", 501),
            ("REST 18446744073709551616", 501),
            ("REST", 501),
            ("ABOR", 225),
            ("EPSV ALL", 200),
            ("PASV", 503),
            ("PORT 127,0,0,1,4,1", 503),
            ("EPRT |1|127.0.0.1|1025|", 503),
        ];
        run_rows(&mut cases, &mut c, "logged in", &logged).await;
        // REST is forgotten by any command but the transfer it modifies.
        for (label, between) in [
            ("REST 5 then PWD then RETR: whole file", &b"PWD"[..]),
            ("REST 5 then DELE then RETR: whole file", b"DELE nothere"),
            ("REST 5 then MKD then RETR: whole file", b"MKD restdir"),
            ("REST 5 then CWD then RETR: whole file", b"CWD /"),
            ("REST 5 then SIZE then RETR: whole file", b"SIZE inside.txt"),
        ] {
            let result = async {
                expect_code(&mut c, b"REST 5", 350).await?;
                try_cmd(&mut c, between).await?;
                let a = attempt_expect(&mut c, b"RETR inside.txt", None, &[150, 226]).await?;
                if a.data != b"0123456789abcdef" {
                    return Err(format!(
                        "RETR after REST and {}: {}",
                        show(between),
                        show(&a.data)
                    ));
                }
                Ok(())
            }
            .await;
            cases.record(label, result);
        }
        let result = async {
            expect_code(&mut c, b"REST 5", 350).await?;
            let a = attempt_expect(&mut c, b"RETR inside.txt", None, &[150, 226]).await?;
            if a.data != b"56789abcdef" {
                return Err(format!("REST 5 + RETR: {}", show(&a.data)));
            }
            Ok(())
        }
        .await;
        cases.record("REST 5 immediately before RETR: from offset 5", result);
        // USER while logged in logs out.
        let relogin: Vec<(&str, u16)> = vec![
            (&user, 331),
            ("PWD", 530),
            ("RETR inside.txt", 530),
            (&pass_right, 230),
            ("PWD", 257),
        ];
        run_rows(&mut cases, &mut c, "USER while logged in", &relogin).await;
        // PROT C under the PROT P policy: 521 before any 1xx, even before a data port.
        let result = async {
            expect_codes(&mut c, &[(b"PROT C", 200), (b"RETR inside.txt", 521)]).await?;
            epsv_addr(&mut c).await?;
            expect_codes(
                &mut c,
                &[
                    (b"RETR inside.txt", 521),
                    (b"LIST", 521),
                    (b"STOR z", 521),
                    (b"PROT P", 200),
                ],
            )
            .await?;
            Ok(())
        }
        .await;
        cases.record("PROT C then data commands: 521 (RFC 4217 §10.2)", result);
        // Commands during a transfer.
        server.store.write_random("big.bin", 24 << 20);
        let result = async {
            let addr = epsv_addr(&mut c).await?;
            expect_code(&mut c, b"RETR big.bin", 150).await?;
            let tcp = connect(addr).await?;
            let tls = client::data_tls(tcp, &c.config())
                .await
                .map_err(|e| e.to_string())?;
            for (l, code) in [
                ("CWD /", 503),
                ("STOR q", 503),
                ("PASV", 503),
                ("RNFR inside.txt", 503),
                ("DELE inside.txt", 503),
                ("USER x", 503),
                ("NOOP", 200),
                ("STAT", 213),
            ] {
                expect_code(&mut c, l.as_bytes(), code).await?;
            }
            expect_code(&mut c, b"ABOR", 426).await?;
            let done = next_reply(&mut c).await?;
            if done.code != 226 {
                return Err(format!(
                    "after 426, ABOR's own reply: {} {:?}",
                    done.code,
                    done.text()
                ));
            }
            drop(tls);
            expect_code(&mut c, b"NOOP", 200).await?;
            if !server.store.exists("inside.txt") {
                return Err("DELE during a transfer deleted the file".into());
            }
            Ok(())
        }
        .await;
        cases.record(
            "commands during a transfer: 503, NOOP/STAT answered, ABOR 426+226",
            result,
        );
        c.expect("QUIT", 221).await;
        c.expect_closed().await;
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

// ===========================================================================
// PORT / EPRT bounce attempts
// ===========================================================================

#[tokio::test]
async fn port_and_eprt_bounce_attempts_are_refused() {
    let _lock = shared().await;
    within(120, async {
        let server = TestServer::start();
        let health = HealthLoop::for_server(&server);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut cases = Cases::new("PORT/EPRT bounce");
        let rows: Vec<(&str, u16)> = vec![
            ("PORT 10,0,0,1,4,1", 504),
            ("PORT 8,8,8,8,0,80", 504),
            ("PORT 127,0,0,2,4,1", 504),
            ("PORT 0,0,0,0,4,1", 504),
            ("PORT 255,255,255,255,4,1", 504),
            ("PORT 192,168,1,1,31,144", 504),
            ("PORT 127,0,0,1,0,0", 504),
            ("PORT 127,0,0,1,0,21", 504),
            ("PORT 127,0,0,1,0,25", 504),
            ("PORT 127,0,0,1,3,255", 504),
            ("PORT 127,0,0,1,256,1", 501),
            ("PORT 127,0,0,1,4,256", 501),
            ("PORT 300,0,0,1,4,1", 501),
            ("PORT 127,0,0,1,4", 501),
            ("PORT 127,0,0,1,4,1,1", 501),
            ("PORT 127,0,0,1,-4,1", 501),
            ("PORT 127.0.0.1.4.1", 501),
            ("PORT 127,0,0,1,4,1x", 501),
            ("PORT 1270,0,0,1,4,1", 501),
            ("PORT 99999999999999999999,0,0,1,4,1", 501),
            ("PORT ,,,,,", 501),
            ("PORT", 501),
            ("EPRT |1|10.0.0.1|5000|", 504),
            ("EPRT |1|127.0.0.2|5000|", 504),
            ("EPRT |2|::1|5000|", 504),
            ("EPRT |2|2001:db8::1|5000|", 504),
            ("EPRT |2|::ffff:10.0.0.1|5000|", 504),
            ("EPRT !1!10.0.0.1!5000!", 504),
            ("EPRT |1|127.0.0.1|21|", 504),
            ("EPRT |1|127.0.0.1|1023|", 504),
            ("EPRT |3|127.0.0.1|5000|", 522),
            ("EPRT |0|127.0.0.1|5000|", 522),
            ("EPRT |99|x|1|", 522),
            ("EPRT |1|127.0.0.1|0|", 501),
            ("EPRT |1|127.0.0.1|65536|", 501),
            ("EPRT |1|127.0.0.1|-1|", 501),
            ("EPRT |1|::1|5000|", 501),
            ("EPRT |2|127.0.0.1|5000|", 501),
            ("EPRT |1|127.0.0.1|5000", 501),
            ("EPRT |1|300.1.1.1|5000|", 501),
            ("EPRT |1| 127.0.0.1|5000|", 501),
            ("EPRT |1|10.0.0.1|5000|junk", 501),
            ("EPRT |2|fe80::1%eth0|5000|", 501),
            ("EPRT", 501),
            ("EPSV 2", 522),
            ("EPSV 3", 522),
            ("EPSV abc", 501),
        ];
        for (l, code) in &rows {
            let result = expect_code(&mut c, l.as_bytes(), *code).await.map(|_| ());
            cases.record(l, result);
        }
        // None of the refused commands set a data port.
        cases.record(
            "no data port after refused PORT/EPRT: RETR is 425",
            expect_code(&mut c, b"RETR x", 425).await.map(|_| ()),
        );
        // A victim service on another loopback address never gets a connection.
        let result = async {
            let victim = tokio::net::TcpListener::bind("127.0.0.2:0")
                .await
                .map_err(|e| e.to_string())?;
            let port = victim.local_addr().unwrap().port();
            let [p1, p2] = port.to_be_bytes();
            expect_codes(
                &mut c,
                &[
                    (format!("PORT 127,0,0,2,{p1},{p2}").as_bytes(), 504),
                    (format!("EPRT |1|127.0.0.2|{port}|").as_bytes(), 504),
                ],
            )
            .await?;
            server.store.write("bounce.txt", b"USER victim\r\n");
            expect_code(&mut c, b"RETR bounce.txt", 425).await?;
            match tokio::time::timeout(Duration::from_millis(1500), victim.accept()).await {
                Ok(Ok((_, from))) => Err(format!("the server connected to the victim from {from}")),
                _ => Ok(()),
            }
        }
        .await;
        cases.record("bounce to 127.0.0.2: no connection made", result);
        // The own address at a port >= 1024 is fine, and works (active, PROT P).
        let result = async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            let port = listener.local_addr().unwrap().port();
            let [p1, p2] = port.to_be_bytes();
            expect_code(&mut c, format!("PORT 127,0,0,1,{p1},{p2}").as_bytes(), 200).await?;
            let data = server.store.write_random("active.bin", 12_345);
            expect_code(&mut c, b"RETR active.bin", 150).await?;
            let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
                .await
                .map_err(|_| "no active connection".to_string())?
                .map_err(|e| e.to_string())?;
            let mut tls = client::data_tls(tcp, &c.config())
                .await
                .map_err(|e| e.to_string())?;
            let got = client::read_all(&mut tls)
                .await
                .map_err(|e| e.to_string())?;
            let done = next_reply(&mut c).await?;
            if done.code != 226 {
                return Err(format!("active RETR: {} {:?}", done.code, done.text()));
            }
            if got == data {
                Ok(())
            } else {
                Err("active download content".into())
            }
        }
        .await;
        cases.record(
            "PORT to the own address >= 1024: 200 and a working transfer",
            result,
        );
        cases.record(
            "EPRT to the own address: 200",
            expect_code(&mut c, b"EPRT |1|127.0.0.1|1024|", 200)
                .await
                .map(|_| ()),
        );
        cases.record(
            "PORT at port 1024: 200",
            expect_code(&mut c, b"PORT 127,0,0,1,4,0", 200)
                .await
                .map(|_| ()),
        );
        c.expect("QUIT", 221).await;
        // Before login: 530, never a connection attempt.
        let mut p = Client::open(server.explicit, &config, Setup::explicit().tls_only()).await;
        cases.record(
            "PORT before login: 530",
            expect_code(&mut p, b"PORT 10,0,0,1,4,1", 530)
                .await
                .map(|_| ()),
        );
        cases.record(
            "EPRT before login: 530",
            expect_code(&mut p, b"EPRT |1|10.0.0.1|5000|", 530)
                .await
                .map(|_| ()),
        );
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

// ===========================================================================
// Connection floods
// ===========================================================================

/// How one flood connection was answered (the stream is held open).
enum Answer {
    Admitted { _held: TcpStream },
    Refused { _held: TcpStream },
    Other(String),
}

/// Open `n` explicit connections (from `src`), at most `parallel` connects
/// at a time, read each one's first line, and keep them all open.
async fn flood_explicit(addr: SocketAddr, src: IpAddr, n: usize, parallel: usize) -> Vec<Answer> {
    flood_explicit_with(addr, src, n, parallel, true, Duration::from_secs(30)).await
}

/// Like [`flood_explicit`]; `speak_first` sends a NOOP right after connecting.
async fn flood_explicit_with(
    addr: SocketAddr,
    src: IpAddr,
    n: usize,
    parallel: usize,
    speak_first: bool,
    greeting_within: Duration,
) -> Vec<Answer> {
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = (start + parallel).min(n);
        let mut set = tokio::task::JoinSet::new();
        for _ in start..end {
            set.spawn(async move {
                let connect =
                    tokio::time::timeout(Duration::from_secs(30), connect_from(src, addr)).await;
                let mut tcp = match connect {
                    Ok(Ok(tcp)) => tcp,
                    Ok(Err(e)) => return Answer::Other(format!("connect: {e}")),
                    Err(_) => return Answer::Other("connect timed out".into()),
                };
                // A first command right away: under a SYN flood the kernel
                // may answer with SYN cookies, and a connection whose final
                // ACK was dropped only comes to life with the client's first
                // data (FTP servers speak first, so a silent client would
                // wait forever for a greeting the server never knew to send).
                if speak_first {
                    let _ = tcp.write_all(b"NOOP\r\n").await;
                }
                match read_line_raw(&mut tcp, greeting_within).await {
                    Ok(l) if l.starts_with(b"220") => Answer::Admitted { _held: tcp },
                    Ok(l) if l.starts_with(b"421 Too many connections") => {
                        Answer::Refused { _held: tcp }
                    }
                    Ok(l) => Answer::Other(format!("first line {}", show(&l))),
                    Err(e) => Answer::Other(e),
                }
            });
        }
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap_or_else(|e| Answer::Other(panic_text(e))));
        }
        start = end;
    }
    out
}

fn tally(answers: &[Answer]) -> (usize, usize, Vec<String>) {
    let mut admitted = 0;
    let mut refused = 0;
    let mut other = Vec::new();
    for a in answers {
        match a {
            Answer::Admitted { .. } => admitted += 1,
            Answer::Refused { .. } => refused += 1,
            Answer::Other(e) => other.push(e.clone()),
        }
    }
    (admitted, refused, other)
}

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The backlog of the listening socket on `addr` (`ss -ltn`: its Send-Q),
/// `None` when `ss` is not available.
fn listen_backlog(addr: SocketAddr) -> Option<u64> {
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", addr.port())])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("LISTEN"))
        .find_map(|l| l.split_whitespace().nth(2)?.parse().ok())
}

/// `net.core.somaxconn`: the kernel's cap on any listen backlog.
fn somaxconn() -> u64 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

/// Connections the big flood opens at once.
const FLOOD_CONNECTIONS: usize = 10_000;
/// Descriptors the test process keeps for itself besides the server's side
/// of every flood connection (runtime, other listeners, health checks).
const FLOOD_FD_MARGIN: usize = 1_000;

/// A limit too low for [`FLOOD_CONNECTIONS`]: under `CI=true` the test
/// fails with `why`; elsewhere the flood is skipped with a note. Never a
/// smaller flood.
fn flood_impossible(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why} (CI=true: the flood must open {FLOOD_CONNECTIONS} connections)");
    }
    eprintln!("SKIP: {why}; the {FLOOD_CONNECTIONS}-connection flood did not run");
}

/// The flooding client, `tests/py/flood.py`, in a process of its own: its
/// connections do not use this process's descriptors. Killed on drop.
struct Flooder {
    child: tokio::process::Child,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

/// Why the flooder did not report.
enum FloodFailure {
    /// Its RLIMIT_NOFILE is too low (the message states it).
    Limit(String),
    /// Anything else.
    Broken(String),
}

impl Flooder {
    /// Start it against `addr` and wait for its report: every connection
    /// answered (or given up on) and still held.
    async fn start(
        addr: SocketAddr,
        count: usize,
        parallel: usize,
    ) -> Result<(Flooder, serde_json::Value), FloodFailure> {
        use tokio::io::AsyncBufReadExt;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/flood.py");
        let mut child = tokio::process::Command::new("python3")
            .arg(script)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .arg(count.to_string())
            .args([
                "--parallel",
                &parallel.to_string(),
                "--greeting-timeout",
                "30",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| FloodFailure::Broken(format!("spawning python3 flood.py: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| FloodFailure::Broken("no stdout".into()))?;
        let mut flooder = Flooder {
            child,
            stdout: tokio::io::BufReader::new(stdout).lines(),
        };
        let report = flooder.next_report(Duration::from_secs(300)).await?;
        if let Some(error) = report.get("error").and_then(|e| e.as_str()) {
            return Err(FloodFailure::Limit(error.to_owned()));
        }
        Ok((flooder, report))
    }

    async fn next_report(&mut self, limit: Duration) -> Result<serde_json::Value, FloodFailure> {
        let line = match tokio::time::timeout(limit, self.stdout.next_line()).await {
            Err(_) => return Err(FloodFailure::Broken(format!("no report within {limit:?}"))),
            Ok(Err(e)) => return Err(FloodFailure::Broken(format!("reading its report: {e}"))),
            Ok(Ok(None)) => {
                let status = self.child.wait().await;
                return Err(FloodFailure::Broken(format!(
                    "exited without a report: {status:?}"
                )));
            }
            Ok(Ok(Some(line))) => line,
        };
        serde_json::from_str(&line)
            .map_err(|e| FloodFailure::Broken(format!("report {line:?} is not JSON: {e}")))
    }

    /// Close every connection and wait for the process to end.
    async fn release(mut self) -> Result<(), String> {
        if let Some(mut stdin) = self.child.stdin.take() {
            stdin
                .write_all(b"release\n")
                .await
                .map_err(|e| e.to_string())?;
        }
        let released = match self.next_report(Duration::from_secs(60)).await {
            Ok(report) => report,
            Err(FloodFailure::Limit(e) | FloodFailure::Broken(e)) => return Err(e),
        };
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .map_err(|_| "flood.py did not exit after releasing".to_string())?
            .map_err(|e| e.to_string())?;
        if status.success() && released.get("released").is_some() {
            Ok(())
        } else {
            Err(format!("flood.py: {status}, last report {released}"))
        }
    }
}

/// [`FLOOD_CONNECTIONS`] explicit connections opened at once (250 connects
/// in flight) by a separate process against `server` (max_sessions 64):
/// exactly 64 greeted, every other one refused with 421, a newcomer refused
/// promptly while they are held, and afterwards the slots and the server's
/// descriptors come back. `limit` is this process's RLIMIT_NOFILE.
async fn flood_of_10_000(cases: &mut Cases, server: &TestServer, limit: u64) {
    let n = FLOOD_CONNECTIONS;
    let baseline = fd_count();
    // The server's side of each connection lives in this process; refused
    // ones are closed after their 421, but a slow flood could keep them all.
    let need = baseline + n + FLOOD_FD_MARGIN;
    if (limit as usize) < need {
        let hard = nofile_limit().1;
        flood_impossible(&format!(
            "RLIMIT_NOFILE of the test process (the server) is {limit} (hard limit {hard}): \
             {n} connections at once need {need} descriptors ({baseline} in use)"
        ));
        return;
    }
    if !require_tool("python3") {
        return;
    }
    let started = Instant::now();
    let (flooder, report) = match Flooder::start(server.explicit, n, 250).await {
        Ok(started) => started,
        Err(FloodFailure::Limit(why)) => return flood_impossible(&why),
        Err(FloodFailure::Broken(why)) => panic!("flood.py: {why}"),
    };
    let count = |key: &str| report.get(key).and_then(|v| v.as_u64()).unwrap_or(u64::MAX);
    let (admitted, refused, other) = (count("admitted"), count("refused"), count("other"));
    eprintln!(
        "flood of {n} from another process (RLIMIT_NOFILE there {}): {admitted} admitted, \
         {refused} refused with 421, {other} other, in {:?}",
        report["nofile"],
        started.elapsed()
    );
    let n64 = n as u64;
    cases.record(
        &format!("{n} explicit connections at once with max_sessions 64"),
        if admitted == 64 && refused == n64 - 64 && other == 0 && count("open") == n64 {
            Ok(())
        } else {
            Err(format!(
                "{admitted} admitted (want 64), {refused} refused (want {}), {other} other \
                 (e.g. {}), {} held open",
                n - 64,
                report["other_samples"],
                report["open"]
            ))
        },
    );
    // While they are all held: a newcomer is refused promptly, not left hanging.
    let result = async {
        let mut tcp = connect(server.explicit).await?;
        let l = read_line_raw(&mut tcp, Duration::from_secs(5)).await?;
        if l.starts_with(b"421 Too many connections") {
            Ok(())
        } else {
            Err(format!("newcomer got {}", show(&l)))
        }
    }
    .await;
    cases.record("newcomer during the flood: prompt 421", result);
    cases.record(
        "flooding process released its connections",
        flooder.release().await,
    );
    cases.record(
        "slots released after the flood",
        wait_admitted(server.explicit, Duration::from_secs(30)).await,
    );
    let settled = wait_until(Duration::from_secs(30), || fd_count() <= baseline + 16).await;
    cases.record(
        "server's descriptors back to the baseline after the flood",
        if settled {
            Ok(())
        } else {
            Err(format!("{} open, {baseline} before the flood", fd_count()))
        },
    );
    assert_server_healthy(server).await;
    cases.pass();
}

#[tokio::test]
async fn connection_flood_over_max_sessions_gets_421() {
    let _lock = exclusive().await;
    within(600, async {
        let mut cases = Cases::new("connection floods");
        let limit = raise_nofile(65_536);
        // A burst of clients connecting at the same moment and, as FTP
        // clients do, waiting for the greeting. Connections beyond the
        // listen backlog are dropped by the kernel; with SYN cookies a
        // dropped one can stay half-alive on the client side and never get
        // a greeting, so the backlog must absorb a realistic burst.
        let burst_server = TestServer::start_with(|cfg| {
            cfg.server.max_sessions = 64;
            cfg.server.max_sessions_per_ip = 1_000_000;
            cfg.server.login_timeout_secs = 600;
        });
        let want_backlog = 1024.min(somaxconn());
        for (label, addr) in [
            ("explicit", burst_server.explicit),
            ("implicit", burst_server.implicit),
        ] {
            match listen_backlog(addr) {
                Some(backlog) => cases.record(
                    &format!("{label} listener backlog absorbs a burst (>= {want_backlog})"),
                    if backlog >= want_backlog {
                        Ok(())
                    } else {
                        Err(format!(
                            "listen backlog {backlog} (the std/mio default): a burst of more than \
                             {backlog} simultaneous connects overflows the accept queue"
                        ))
                    },
                ),
                None => eprintln!("SKIP: `ss` not available, listen backlog not checked"),
            }
        }
        for round in 1..=3 {
            let started = Instant::now();
            let burst =
                flood_explicit_with(
                burst_server.explicit,
                LOCALHOST,
                1000,
                1000,
                false,
                Duration::from_secs(10),
            )
            .await;
            let (admitted, refused, other) = tally(&burst);
            eprintln!(
                "burst {round} of 1000 silent clients: {admitted} admitted, {refused} refused, {} unanswered/other, in {:?}",
                other.len(),
                started.elapsed()
            );
            cases.record(
                &format!("burst {round}: 1000 simultaneous silent connects all answered (64 x 220, 936 x 421)"),
                if admitted == 64 && refused == 936 && other.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "{admitted} admitted, {refused} refused, {} without a greeting within 10 s (e.g. {:?})",
                        other.len(),
                        other.first(),
                    ))
                },
            );
            drop(burst);
            if round < 3 {
                let _ = wait_admitted(burst_server.explicit, Duration::from_secs(30)).await;
                // All 64 slots back before the next round.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        drop(burst_server);
        let server = TestServer::start_with(|cfg| {
            cfg.server.max_sessions = 64;
            cfg.server.max_sessions_per_ip = 1_000_000;
            cfg.server.login_timeout_secs = 600;
            cfg.server.tls_handshake_timeout_secs = 600;
        });
        flood_of_10_000(&mut cases, &server, limit).await;

        // Implicit listener: no plaintext 421 there, refused connections are closed.
        let server2 = TestServer::start_with(|cfg| {
            cfg.server.max_sessions = 64;
            cfg.server.max_sessions_per_ip = 1_000_000;
            cfg.server.tls_handshake_timeout_secs = 600;
        });
        let m = 1000;
        let mut set = tokio::task::JoinSet::new();
        let addr = server2.implicit;
        let header = client_hello(&server2.cert_pem)[..5].to_vec();
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(250));
        for _ in 0..m {
            let header = header.clone();
            let permit = std::sync::Arc::clone(&gate).acquire_owned().await.unwrap();
            set.spawn(async move {
                let connected = connect(addr).await;
                drop(permit);
                let mut tcp = match connected {
                    Ok(t) => t,
                    Err(e) => return (2u8, None, e),
                };
                // The start of a TLS record: an admitted connection waits
                // for the rest of the ClientHello (see flood_explicit for
                // why the client sends something at once).
                let _ = tcp.write_all(&header).await;
                let mut buf = [0u8; 64];
                match tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf)).await {
                    Err(_) => (0u8, Some(tcp), String::new()),
                    Ok(Ok(0)) | Ok(Err(_)) => (1u8, Some(tcp), String::new()),
                    Ok(Ok(k)) => (2u8, None, format!("implicit refusal sent bytes {}", show(&buf[..k]))),
                }
            });
        }
        let mut held = Vec::new();
        let (mut admitted, mut refused, mut other) = (0, 0, Vec::new());
        while let Some(r) = set.join_next().await {
            let (kind, tcp, e) = r.unwrap();
            match kind {
                0 => admitted += 1,
                1 => refused += 1,
                _ => other.push(e),
            }
            held.extend(tcp);
        }
        cases.record(
            "1000 implicit connections with max_sessions 64: 64 wait for the ClientHello, the rest closed without bytes",
            if admitted == 64 && refused == m - 64 && other.is_empty() {
                Ok(())
            } else {
                Err(format!("{admitted} admitted, {refused} closed, other {:?}", &other[..other.len().min(5)]))
            },
        );
        drop(held);
        cases.record("implicit flood: slots released", wait_admitted(server2.explicit, Duration::from_secs(30)).await);
        assert_server_healthy(&server2).await;
        cases.pass();
        cases.finish();
    })
    .await;
}

#[tokio::test]
async fn max_sessions_per_ip_is_enforced() {
    let _lock = exclusive().await;
    within(300, async {
        let mut cases = Cases::new("connection floods (per address)");
        raise_nofile(65_536);
        let server = TestServer::start_with(|cfg| {
            cfg.server.max_sessions = 512;
            cfg.server.max_sessions_per_ip = 8;
            cfg.server.login_timeout_secs = 600;
        });
        let attacker: IpAddr = "127.0.0.2".parse().unwrap();
        let answers = flood_explicit(server.explicit, attacker, 300, 100).await;
        let (admitted, refused, other) = tally(&answers);
        cases.record(
            "300 connections from 127.0.0.2 with max_sessions_per_ip 8",
            if admitted == 8 && refused == 292 && other.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{admitted} admitted, {refused} refused, other {:?}",
                    &other[..other.len().min(5)]
                ))
            },
        );
        // Other addresses are not affected while 127.0.0.2 is at its limit.
        assert_server_healthy(&server).await;
        cases.pass();
        let third = flood_explicit(server.explicit, "127.0.0.3".parse().unwrap(), 1, 1).await;
        cases.record(
            "127.0.0.3 admitted while 127.0.0.2 is at its limit",
            if matches!(third[0], Answer::Admitted { .. }) {
                Ok(())
            } else {
                Err("refused".into())
            },
        );
        // Released slots are given back: after closing, exactly 8 again.
        drop(answers);
        let deadline = Instant::now() + Duration::from_secs(20);
        let result = loop {
            let again = flood_explicit(server.explicit, attacker, 20, 20).await;
            let (a, r, o) = tally(&again);
            if a == 8 && r == 12 && o.is_empty() {
                break Ok(());
            }
            if Instant::now() > deadline {
                break Err(format!(
                    "after release: {a} admitted, {r} refused, other {o:?}"
                ));
            }
            drop(again);
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        cases.record(
            "127.0.0.2 gets exactly its 8 slots back after closing",
            result,
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

// ===========================================================================
// Half-open connections, slowloris, timeouts
// ===========================================================================

/// Expect a 421 (after at least `min`) and then the close, within `max`.
async fn expect_421_and_close(
    c: &mut Client,
    started: Instant,
    min: Duration,
    max: Duration,
) -> Result<(), String> {
    let left = max.saturating_sub(started.elapsed());
    let reply = next_reply_within(c, left)
        .await
        .map_err(|e| format!("{e} within {max:?}\n{}", tail(c, 4)))?;
    let at = started.elapsed();
    if reply.code != 421 {
        return Err(format!(
            "expected 421, got {} {:?}",
            reply.code,
            reply.text()
        ));
    }
    if at < min {
        return Err(format!("421 after only {at:?} (< {min:?})"));
    }
    match c.next_within(Duration::from_secs(5)).await {
        Next::Eof | Next::Error(_) => Ok(()),
        other => Err(format!("after 421: {other:?} instead of the close")),
    }
}

#[tokio::test]
async fn login_timeout_closes_silent_and_slowloris_clients() {
    let _lock = shared().await;
    within(120, async {
        let server = TestServer::start_with(|cfg| cfg.server.login_timeout_secs = 2);
        let health = HealthLoop::for_server(&server);
        let config = client::config_default(&server.cert_pem);
        let addr = server.explicit;
        let min = Duration::from_millis(1500);
        let max = Duration::from_secs(8);
        let mut set = tokio::task::JoinSet::new();
        set.spawn(async move {
            let started = Instant::now();
            let mut c = Client::connect(addr).await;
            (
                "connect and send nothing",
                expect_421_and_close(&mut c, started, min, max).await,
            )
        });
        set.spawn(async move {
            // "USER aaaa..." one byte per 500 ms, never ending the line.
            let started = Instant::now();
            let mut c = Client::connect(addr).await;
            let bytes = cat(&[b"USER ", &[b'a'; 40]]);
            let mut result = Err("the server never closed the dribbling connection".to_string());
            for b in bytes {
                if started.elapsed() > max {
                    break;
                }
                if c.try_send_raw(&[b]).await.is_err() {
                    result = Err("write failed before any 421".into());
                    break;
                }
                match c.next_within(Duration::from_millis(500)).await {
                    Next::Timeout => {}
                    Next::Reply(r) if r.code == 421 => {
                        result = match c.next_within(Duration::from_secs(5)).await {
                            Next::Eof | Next::Error(_) => Ok(()),
                            other => Err(format!("after 421: {other:?}")),
                        };
                        break;
                    }
                    other => {
                        result = Err(format!("{other:?}"));
                        break;
                    }
                }
            }
            let r = result
                .map_err(|e| format!("{e} (elapsed {:?}, login timeout 2 s)", started.elapsed()));
            ("slowloris: one byte of \"USER ...\" per 500 ms", r)
        });
        set.spawn(async move {
            // Complete commands, but never a login.
            let started = Instant::now();
            let mut c = Client::connect(addr).await;
            let mut result =
                Err("the server never closed a connection that never logs in".to_string());
            while started.elapsed() < max {
                if c.try_send_raw(b"NOOP\r\n").await.is_err() {
                    result = Err("write failed before any 421".into());
                    break;
                }
                match c.next_within(Duration::from_secs(2)).await {
                    Next::Reply(r) if r.code == 200 => {}
                    Next::Reply(r) if r.code == 421 => {
                        result = match c.next_within(Duration::from_secs(5)).await {
                            Next::Eof | Next::Error(_) => Ok(()),
                            other => Err(format!("after 421: {other:?}")),
                        };
                        break;
                    }
                    other => {
                        result = Err(format!("{other:?}"));
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let r = result
                .map_err(|e| format!("{e} (elapsed {:?}, login timeout 2 s)", started.elapsed()));
            ("NOOP every 500 ms without logging in", r)
        });
        let cfg = config.clone();
        set.spawn(async move {
            let started = Instant::now();
            let mut c = Client::open(addr, &cfg, Setup::explicit().tls_only()).await;
            (
                "AUTH TLS, then silence (421 over TLS)",
                expect_421_and_close(&mut c, started, min, max).await,
            )
        });
        let cfg2 = config.clone();
        set.spawn(async move {
            let started = Instant::now();
            let mut c = Client::open(addr, &cfg2, Setup::explicit().tls_only()).await;
            c.expect(&format!("USER {USER}"), 331).await;
            (
                "USER, then no PASS",
                expect_421_and_close(&mut c, started, min, max).await,
            )
        });
        let mut cases = Cases::new("half-open and slowloris");
        while let Some(r) = set.join_next().await {
            match r {
                Ok((label, result)) => cases.record(label, result),
                Err(e) => cases.record("task", Err(panic_text(e))),
            }
        }
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

#[tokio::test]
async fn idle_timeout_after_login() {
    let _lock = shared().await;
    within(60, async {
        let server = TestServer::start_with(|cfg| cfg.server.idle_timeout_secs = 2);
        let config = client::config_default(&server.cert_pem);
        let mut cases = Cases::new("half-open and slowloris (idle)");
        let mut c = Client::secure(server.explicit, &config).await;
        let started = Instant::now();
        cases.record(
            "logged in, then silence: 421 and close",
            expect_421_and_close(
                &mut c,
                started,
                Duration::from_millis(1500),
                Duration::from_secs(8),
            )
            .await,
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

#[tokio::test]
async fn data_connection_never_opened_is_425_and_the_session_goes_on() {
    let _lock = shared().await;
    within(180, async {
        let server = TestServer::start_with(|cfg| {
            cfg.server.data_connect_timeout_secs = 2;
            cfg.server.tls_handshake_timeout_secs = 2;
        });
        let old = server.store.write_random("existing.bin", 40_000);
        let small = server.store.write_random("small.bin", 5_000);
        let health = HealthLoop::for_server(&server);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut cases = Cases::new("half-open data connections");
        for (label, port_cmd, cmd) in [
            ("EPSV + RETR, never connect", "EPSV", "RETR small.bin"),
            ("PASV + RETR, never connect", "PASV", "RETR small.bin"),
            ("EPSV + LIST, never connect", "EPSV", "LIST"),
            (
                "EPSV + STOR over an existing file, never connect",
                "EPSV",
                "STOR existing.bin",
            ),
            (
                "EPSV + STOR of a new file, never connect",
                "EPSV",
                "STOR never.bin",
            ),
        ] {
            let result = async {
                try_cmd(&mut c, port_cmd.as_bytes()).await?;
                let started = Instant::now();
                expect_code(&mut c, cmd.as_bytes(), 150).await?;
                let r = next_reply_within(&mut c, Duration::from_secs(10)).await?;
                if r.code != 425 {
                    return Err(format!("expected 425, got {} {:?}", r.code, r.text()));
                }
                if started.elapsed() < Duration::from_millis(1500) {
                    return Err(format!("425 after only {:?}", started.elapsed()));
                }
                Ok(())
            }
            .await;
            cases.record(label, result);
        }
        let kept =
            server.store.read("existing.bin").unwrap() == old && !server.store.exists("never.bin");
        cases.record(
            "no upload happened: existing file intact, no new file",
            if kept {
                Ok(())
            } else {
                Err("files changed".into())
            },
        );
        cases.record("no temp files", {
            let left = wait_no_leftovers(&server.store, Duration::from_secs(5)).await;
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        });
        // PORT to a port nobody listens on: 425 at once.
        let result = async {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let [p1, p2] = port.to_be_bytes();
            expect_code(&mut c, format!("PORT 127,0,0,1,{p1},{p2}").as_bytes(), 200).await?;
            expect_code(&mut c, b"RETR small.bin", 150).await?;
            let r = next_reply_within(&mut c, Duration::from_secs(10)).await?;
            if r.code == 425 {
                Ok(())
            } else {
                Err(format!("expected 425, got {}", r.code))
            }
        }
        .await;
        cases.record("PORT to a closed port: 425", result);
        // PORT to a peer that accepts but never starts TLS: 522 after the handshake timeout.
        let result = async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let [p1, p2] = port.to_be_bytes();
            expect_code(&mut c, format!("PORT 127,0,0,1,{p1},{p2}").as_bytes(), 200).await?;
            expect_code(&mut c, b"RETR small.bin", 150).await?;
            let (_silent, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
                .await
                .map_err(|_| "no active connection".to_string())?
                .map_err(|e| e.to_string())?;
            let r = next_reply_within(&mut c, Duration::from_secs(10)).await?;
            if r.code == 522 {
                Ok(())
            } else {
                Err(format!("expected 522, got {} {:?}", r.code, r.text()))
            }
        }
        .await;
        cases.record(
            "PORT peer accepts but stays silent: 522 after the TLS handshake timeout",
            result,
        );
        let got = c.retr("small.bin").await;
        cases.record(
            "the same session transfers afterwards",
            if got == small {
                Ok(())
            } else {
                Err("wrong content".into())
            },
        );
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}

#[tokio::test]
async fn stalled_transfers_time_out_with_426() {
    let _lock = shared().await;
    within(180, async {
        let server = TestServer::start_with(|cfg| cfg.server.transfer_stall_timeout_secs = 2);
        let old = server.store.write_random("existing.bin", 40_000);
        let big = server.store.write_random("big.bin", 32 << 20);
        let health = HealthLoop::for_server(&server);
        let config = client::config_default(&server.cert_pem);
        let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
        let mut cases = Cases::new("stalled transfers");
        // Upload that stalls after 100 kB, over an existing file and to a new name.
        let sent = random_bytes(100_000);
        for (label, name, existing) in [
            (
                "upload over an existing file stalls mid-way",
                "existing.bin",
                true,
            ),
            (
                "upload of a new file stalls mid-way",
                "stalled-new.bin",
                false,
            ),
        ] {
            let result = async {
                let addr = epsv_addr(&mut c).await?;
                expect_code(&mut c, format!("STOR {name}").as_bytes(), 150).await?;
                let tcp = connect(addr).await?;
                let mut tls = client::data_tls(tcp, &c.config())
                    .await
                    .map_err(|e| e.to_string())?;
                tls.write_all(&sent).await.map_err(|e| e.to_string())?;
                tls.flush().await.map_err(|e| e.to_string())?;
                let started = Instant::now();
                let r = next_reply_within(&mut c, Duration::from_secs(12)).await?;
                drop(tls);
                if r.code != 426 {
                    return Err(format!("expected 426, got {} {:?}", r.code, r.text()));
                }
                if started.elapsed() < Duration::from_millis(1500) {
                    return Err(format!("426 after only {:?}", started.elapsed()));
                }
                let on_disk = server.store.read(name);
                if existing {
                    if on_disk.as_deref() != Some(&old[..]) {
                        return Err("the existing file does not have its old content".into());
                    }
                } else if server.store.backend() == Backend::S3 {
                    // An object appears only complete: the multipart upload
                    // is aborted, nothing is kept.
                    if on_disk.is_some() {
                        return Err("a partial object became visible".into());
                    }
                } else {
                    // A new file that received data is kept as a resumable partial.
                    match on_disk {
                        Some(d) if !d.is_empty() && sent.starts_with(&d) => {}
                        Some(d) => {
                            return Err(format!(
                                "partial file of {} bytes is not a prefix of what was sent",
                                d.len()
                            ))
                        }
                        None => return Err("no resumable partial file kept".into()),
                    }
                }
                let left = wait_no_leftovers(&server.store, Duration::from_secs(10)).await;
                if !left.is_empty() {
                    return Err(format!("temp files left: {left:?}"));
                }
                Ok(())
            }
            .await;
            cases.record(label, result);
            cases.record(
                &format!("{label}: session goes on"),
                expect_code(&mut c, b"NOOP", 200).await.map(|_| ()),
            );
        }
        // Download whose reader stops reading.
        let result = async {
            let addr = epsv_addr(&mut c).await?;
            expect_code(&mut c, b"RETR big.bin", 150).await?;
            let tcp = connect(addr).await?;
            let mut tls = client::data_tls(tcp, &c.config())
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 100_000];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            let r = next_reply_within(&mut c, Duration::from_secs(20)).await?;
            drop(tls);
            if r.code == 426 {
                Ok(())
            } else {
                Err(format!("expected 426, got {} {:?}", r.code, r.text()))
            }
        }
        .await;
        cases.record("download whose client stops reading", result);
        let got = c.retr("existing.bin").await;
        cases.record(
            "the same session transfers afterwards",
            if got == old {
                Ok(())
            } else {
                Err("wrong content".into())
            },
        );
        drop(big);
        cases.record(
            "healthy while it happened",
            health.finish().await.map(|_| ()),
        );
        assert_server_healthy(&server).await;
        cases.finish();
    })
    .await;
}
