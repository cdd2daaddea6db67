//! Temporary bans of client addresses after repeated failed logins (RFC 2577
//! §5: "the server should limit the number of attempts"). Failures are
//! counted per address in a sliding window; an address that reaches the
//! limit is refused at connect, with 421 and before any TLS work, until the
//! ban expires. The table is bounded: expired entries are pruned, and when
//! it is full the oldest entries go first.
//!
//! [`BanStore`] is what the server asks: this in-memory table ([`Bans`],
//! one node), or the shared database ([`PostgresBans`], every node of a
//! cluster sees the same failures and bans).

mod postgres;

pub use postgres::PostgresBans;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most.
pub const MAX_TRACKED_ADDRESSES: usize = 65_536;

#[derive(Debug, Default)]
struct Record {
    failures: VecDeque<Instant>,
    banned_until: Option<Instant>,
}

/// What a failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Counted.
    Counted,
    /// This failure banned the address.
    Banned,
}

/// The ban table.
#[derive(Debug)]
pub struct Bans {
    threshold: u32,
    window: Duration,
    duration: Duration,
    records: Mutex<HashMap<IpAddr, Record>>,
}

impl Bans {
    /// `threshold` failures within `window` ban for `duration`; 0 disables.
    pub fn new(threshold: u32, window: Duration, duration: Duration) -> Bans {
        Bans {
            threshold,
            window,
            duration,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<IpAddr, Record>) -> R) -> R {
        match self.records.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Is this address banned at `now`?
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.with(|records| match records.get(&ip) {
            Some(Record {
                banned_until: Some(until),
                ..
            }) => *until > now,
            _ => false,
        })
    }

    /// A wrong password from `ip`.
    pub fn record_failure(&self, ip: IpAddr, now: Instant) -> Failure {
        if self.threshold == 0 {
            return Failure::Counted;
        }
        self.with(|records| {
            if records.len() >= MAX_TRACKED_ADDRESSES && !records.contains_key(&ip) {
                prune(records, now, self.window);
                if records.len() >= MAX_TRACKED_ADDRESSES {
                    // Still full of live entries: forget an arbitrary one.
                    if let Some(victim) = records.keys().next().copied() {
                        records.remove(&victim);
                    }
                }
            }
            let record = records.entry(ip).or_default();
            while record
                .failures
                .front()
                .is_some_and(|t| now.duration_since(*t) > self.window)
            {
                record.failures.pop_front();
            }
            record.failures.push_back(now);
            if record.failures.len() >= self.threshold as usize {
                record.failures.clear();
                record.banned_until = Some(now + self.duration);
                Failure::Banned
            } else {
                Failure::Counted
            }
        })
    }

    /// Addresses currently tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.with(|records| records.len())
    }
}

fn prune(records: &mut HashMap<IpAddr, Record>, now: Instant, window: Duration) {
    records.retain(|_, r| {
        let banned = r.banned_until.is_some_and(|until| until > now);
        let recent = r
            .failures
            .back()
            .is_some_and(|t| now.duration_since(*t) <= window);
        banned || recent
    });
}

/// Where failed logins are counted and bans kept.
#[async_trait::async_trait]
pub trait BanStore: Send + Sync {
    /// Is this address banned now? (A store that cannot answer says no:
    /// logins are still checked.)
    async fn is_banned(&self, ip: IpAddr) -> bool;
    /// A wrong password from `ip`.
    async fn record_failure(&self, ip: IpAddr) -> Failure;
}

#[async_trait::async_trait]
impl BanStore for Bans {
    async fn is_banned(&self, ip: IpAddr) -> bool {
        Bans::is_banned(self, ip, Instant::now())
    }

    async fn record_failure(&self, ip: IpAddr) -> Failure {
        Bans::record_failure(self, ip, Instant::now())
    }
}

/// The delay after the `n`th wrong password of a session: `base`, doubling,
/// capped at 30 seconds.
pub fn failure_delay(base: Duration, n: u32) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(5);
    (base * factor).min(Duration::from_secs(30))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rfc2577_s5_ban_after_threshold_within_window() {
        let bans = Bans::new(3, Duration::from_secs(60), Duration::from_secs(300));
        let t0 = Instant::now();
        assert_eq!(bans.record_failure(ip("10.0.0.1"), t0), Failure::Counted);
        assert_eq!(bans.record_failure(ip("10.0.0.1"), t0), Failure::Counted);
        assert!(!bans.is_banned(ip("10.0.0.1"), t0));
        assert_eq!(bans.record_failure(ip("10.0.0.1"), t0), Failure::Banned);
        assert!(bans.is_banned(ip("10.0.0.1"), t0 + Duration::from_secs(299)));
        assert!(!bans.is_banned(ip("10.0.0.1"), t0 + Duration::from_secs(301)));
        assert!(!bans.is_banned(ip("10.0.0.2"), t0));
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let bans = Bans::new(2, Duration::from_secs(10), Duration::from_secs(300));
        let t0 = Instant::now();
        bans.record_failure(ip("10.0.0.1"), t0);
        let later = t0 + Duration::from_secs(11);
        assert_eq!(bans.record_failure(ip("10.0.0.1"), later), Failure::Counted);
    }

    #[test]
    fn zero_disables() {
        let bans = Bans::new(0, Duration::from_secs(10), Duration::from_secs(300));
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(bans.record_failure(ip("10.0.0.1"), t0), Failure::Counted);
        }
        assert!(!bans.is_banned(ip("10.0.0.1"), t0));
        assert_eq!(bans.tracked(), 0);
    }

    #[test]
    fn table_is_bounded() {
        let bans = Bans::new(5, Duration::from_secs(10), Duration::from_secs(300));
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED_ADDRESSES as u32 + 100) {
            bans.record_failure(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(bans.tracked() <= MAX_TRACKED_ADDRESSES);
    }

    #[test]
    fn delay_doubles_and_is_capped() {
        let base = Duration::from_millis(500);
        assert_eq!(failure_delay(base, 1), base);
        assert_eq!(failure_delay(base, 2), base * 2);
        assert_eq!(failure_delay(base, 3), base * 4);
        assert_eq!(failure_delay(base, 50), Duration::from_secs(16));
        assert_eq!(
            failure_delay(Duration::from_secs(5), 9),
            Duration::from_secs(30)
        );
    }
}
