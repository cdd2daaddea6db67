//! Accounts and bans in a real PostgreSQL (a private instance started by the
//! test, see `ftps_testing::services::postgres`): an account added, given a
//! new password or disabled in the `ftps_users` table holds from the next
//! login on, without a restart; a row with an unknown setting is refused
//! like a bad `[[users]]` entry; while the database is down a login gets a
//! clean 421 within the configured timeout (never a hang) and works again
//! once it is back; failed logins on one server ban the address on another
//! server sharing the database.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ftps_server::config::Config;
use ftps_testing::services::postgres::Postgres;
use ftps_testing::{password_hash, require_tool, TestServer, PASSWORD, USER};

fn server(pg: &Postgres, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let url = pg.url("postgres");
    TestServer::start_with(move |c| {
        c.users.clear();
        c.database.url = Some(url);
        c.database.timeout_secs = 2;
        adjust(c);
    })
}

/// Adds `USER` with `PASSWORD` and root `root`, as `ftps user add` would
/// (creating the tables first, as any first use does).
fn add_user(pg: &Postgres, root: &std::path::Path) {
    pg.psql("postgres", ftps_server::database::SCHEMA_SQL);
    pg.psql(
        "postgres",
        &format!(
            "INSERT INTO ftps_users (name, password_hash, root) VALUES ('{USER}', '{}', '{}')",
            password_hash(),
            root.display()
        ),
    );
}

fn curl(server: &TestServer, password: &str) -> Output {
    Command::new("curl")
        .args(["-sS", "-v", "--max-time", "30", "--ssl-reqd"])
        .arg("--cacert")
        .arg(&server.cert_pem)
        .arg("--user")
        .arg(format!("{USER}:{password}"))
        .arg(server.url(""))
        .output()
        .unwrap()
}

fn replies(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("< "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn start_pg() -> Option<Postgres> {
    if !require_tool("curl") || !require_tool("psql") {
        return None;
    }
    Postgres::start()
}

#[test]
fn database_accounts_hold_from_the_next_login_without_a_restart() {
    let Some(pg) = start_pg() else { return };
    let server = server(&pg, |_| {});
    // The schema is created on first use: the login before any account.
    let none = curl(&server, PASSWORD);
    assert!(replies(&none).contains("< 530"), "{}", replies(&none));
    add_user(&pg, server.root.path());
    std::fs::write(server.path("hello.txt"), "hi").unwrap();
    let ok = curl(&server, PASSWORD);
    assert!(ok.status.success(), "{}", replies(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("hello.txt"));
    // A new password: the old one (remembered by the login cache) no longer works.
    let new_hash = ftps_server::users::hash_password("new password").unwrap();
    pg.psql(
        "postgres",
        &format!("UPDATE ftps_users SET password_hash = '{new_hash}' WHERE name = '{USER}'"),
    );
    assert!(replies(&curl(&server, PASSWORD)).contains("< 530"));
    assert!(curl(&server, "new password").status.success());
    // Disabled: refused at once.
    pg.psql(
        "postgres",
        &format!("UPDATE ftps_users SET enabled = false WHERE name = '{USER}'"),
    );
    assert!(replies(&curl(&server, "new password")).contains("< 530"));
    // A setting the server does not know is refused, like in [[users]].
    pg.psql(
        "postgres",
        &format!("UPDATE ftps_users SET enabled = true, settings = '{{\"no_such_setting\": 1}}' WHERE name = '{USER}'"),
    );
    assert!(replies(&curl(&server, "new password")).contains("< 530"));
    // Settings the server knows come through the JSONB column... as the columns do.
    pg.psql(
        "postgres",
        &format!("UPDATE ftps_users SET settings = '{{}}', write = false WHERE name = '{USER}'"),
    );
    let read_only = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "30", "--ssl-reqd", "-Q", "MKD d"])
        .arg("--cacert")
        .arg(&server.cert_pem)
        .arg("--user")
        .arg(format!("{USER}:new password"))
        .arg(server.url(""))
        .output()
        .unwrap();
    assert!(
        replies(&read_only).contains("< 550"),
        "{}",
        replies(&read_only)
    );
}

#[test]
fn logins_get_a_clean_421_while_the_database_is_down_and_work_after() {
    let Some(mut pg) = start_pg() else { return };
    let server = server(&pg, |_| {});
    add_user(&pg, server.root.path());
    assert!(curl(&server, PASSWORD).status.success());
    pg.stop();
    // Not the login cache: a password it has not seen.
    let started = Instant::now();
    let down = curl(&server, "another password");
    assert!(
        replies(&down).contains("< 421 Service not available"),
        "{}",
        replies(&down)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    pg.start_again();
    let back = curl(&server, PASSWORD);
    assert!(back.status.success(), "{}", replies(&back));
}

#[test]
fn bans_are_shared_by_servers_on_the_same_database() {
    let Some(pg) = start_pg() else { return };
    let adjust = |c: &mut Config| {
        c.server.ban_after_failures = 2;
        c.server.max_login_failures = 1;
    };
    let a = server(&pg, adjust);
    let b = server(&pg, adjust);
    add_user(&pg, a.root.path());
    assert!(curl(&b, PASSWORD).status.success());
    for _ in 0..2 {
        assert!(replies(&curl(&a, "wrong")).contains("< 530"));
    }
    let refused = curl(&b, PASSWORD);
    assert!(
        replies(&refused).contains("< 421 Too many failed logins"),
        "{}",
        replies(&refused)
    );
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM ftps_bans").trim(),
        "1"
    );
}
