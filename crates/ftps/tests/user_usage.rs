//! `ftps user usage` against a real PostgreSQL (a private instance started
//! by the test): it lists the quota usage the nodes share in `ftps_usage`,
//! and `--measure-again` deletes a user's record so that the next change
//! measures the user's tree again; without `[database]` it says why there
//! is nothing to show.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use ftps_testing::require_tool;
use ftps_testing::services::postgres::Postgres;

const FTPS: &str = env!("CARGO_BIN_EXE_ftps");

fn user(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(FTPS)
        .arg("user")
        .arg("--config")
        .arg(config)
        .arg("usage")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn user_usage_lists_the_shared_usage_and_measure_again_deletes_a_record() {
    if !require_tool("psql") {
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    pg.psql("postgres", ftps_server::database::SCHEMA_SQL);
    pg.psql(
        "postgres",
        "INSERT INTO ftps_usage (name, bytes, files) VALUES ('alice', 1000, 2), ('bob', 5, 1)",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!("[database]\nurl = \"{}\"\n", pg.url("postgres")),
    )
    .unwrap();
    let all = user(&config, &[]);
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&all.stdout),
        "alice\t1000 bytes\t2 files\nbob\t5 bytes\t1 files\n"
    );
    let one = user(&config, &["bob"]);
    assert_eq!(
        String::from_utf8_lossy(&one.stdout),
        "bob\t5 bytes\t1 files\n"
    );
    let again = user(&config, &["alice", "--measure-again"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        pg.psql("postgres", "SELECT string_agg(name, ',') FROM ftps_usage")
            .trim(),
        "bob"
    );
    // Without a database the usage is in the running server's memory.
    let local = dir.path().join("local.toml");
    std::fs::write(&local, "").unwrap();
    let refused = user(&local, &[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("measured again at each start"));
}
