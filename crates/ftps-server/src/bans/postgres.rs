//! Failed logins and bans in the shared database (tables
//! `ftps_login_failures` and `ftps_bans`, see [`crate::database`]), so that
//! every node of a cluster counts the same failures and refuses the same
//! addresses. The rule is the in-memory table's: `threshold` failures within
//! `window` ban for `duration`. Rows stay bounded: an address's failures are
//! cut to the window at each failure and cleared when it is banned, and now
//! and then (one failure in [`PRUNE_EVERY`]) expired failures and bans of
//! every address are deleted.
//!
//! A database that cannot answer never locks anyone out: `is_banned` says
//! no (the login itself then fails cleanly, as the users are there too).

use std::net::IpAddr;
use std::time::Duration;

use tracing::warn;

use super::{BanStore, Failure};
use crate::database::Database;

/// One failure in this many also prunes the expired rows of every address.
pub const PRUNE_EVERY: u32 = 64;

/// Bans kept in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresBans {
    db: Database,
    threshold: u32,
    window: Duration,
    duration: Duration,
}

impl PostgresBans {
    /// `threshold` failures within `window` ban for `duration`; 0 disables.
    pub fn new(db: Database, threshold: u32, window: Duration, duration: Duration) -> Self {
        PostgresBans {
            db,
            threshold,
            window,
            duration,
        }
    }
}

#[async_trait::async_trait]
impl BanStore for PostgresBans {
    async fn is_banned(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let result = self
            .db
            .run(|client| async move {
                client
                    .query_opt(
                        "SELECT 1 FROM ftps_bans WHERE address = $1 AND banned_until > now()",
                        &[&ip],
                    )
                    .await
            })
            .await;
        match result {
            Ok(row) => row.is_some(),
            Err(error) => {
                warn!(%error, "cannot read the shared bans");
                false
            }
        }
    }

    async fn record_failure(&self, ip: IpAddr) -> Failure {
        if self.threshold == 0 {
            return Failure::Counted;
        }
        let ip = ip.to_canonical();
        let window = self.window.as_secs_f64();
        let duration = self.duration.as_secs_f64();
        let threshold = i64::from(self.threshold);
        let prune = rand::Rng::gen_ratio(&mut rand::thread_rng(), 1, PRUNE_EVERY);
        let result = self
            .db
            .run(|mut client| async move {
                let tx = client.transaction().await?;
                tx.execute(
                    "INSERT INTO ftps_login_failures (address) VALUES ($1)",
                    &[&ip],
                )
                .await?;
                tx.execute(
                    "DELETE FROM ftps_login_failures WHERE address = $1 AND at < clock_timestamp() - make_interval(secs => $2)",
                    &[&ip, &window],
                )
                .await?;
                let count: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM ftps_login_failures WHERE address = $1",
                        &[&ip],
                    )
                    .await?
                    .try_get(0)?;
                let banned = count >= threshold;
                if banned {
                    tx.execute(
                        "INSERT INTO ftps_bans (address, banned_until) VALUES ($1, now() + make_interval(secs => $2)) \
                         ON CONFLICT (address) DO UPDATE SET banned_until = EXCLUDED.banned_until",
                        &[&ip, &duration],
                    )
                    .await?;
                    tx.execute("DELETE FROM ftps_login_failures WHERE address = $1", &[&ip])
                        .await?;
                }
                if prune {
                    tx.execute(
                        "DELETE FROM ftps_login_failures WHERE at < clock_timestamp() - make_interval(secs => $1)",
                        &[&window],
                    )
                    .await?;
                    tx.execute("DELETE FROM ftps_bans WHERE banned_until < now()", &[])
                        .await?;
                }
                tx.commit().await?;
                Ok(banned)
            })
            .await;
        match result {
            Ok(true) => Failure::Banned,
            Ok(false) => Failure::Counted,
            Err(error) => {
                warn!(%error, "cannot record a failed login in the shared bans");
                Failure::Counted
            }
        }
    }
}
