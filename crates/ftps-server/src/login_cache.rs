//! A short-lived memory of successful password checks, so that a client
//! logging in again and again (scripts, partners' batch jobs, many parallel
//! sessions) does not pay a full argon2 verification each time.
//!
//! What is kept per user is an HMAC-SHA-256 of the password hash string and
//! the password, under a random key made at start and never stored, plus the
//! time of the check. A login whose password gives the same tag within
//! `server.login_cache_secs` is accepted without argon2; anything else (a
//! wrong password, an expired entry, an unknown user) takes the full argon2
//! path, so failed logins cost exactly what they did without the cache and
//! time nothing about them differently (RFC 2577 §5, §7). Only users who
//! logged in successfully have entries, so the map is bounded by the number
//! of configured users. Dovecot's `auth_cache` works the same way.
//!
//! The trade-off: while an entry lives, someone able to read the server's
//! memory could test password guesses at HMAC speed instead of argon2 speed
//! for that one user. Such a reader can equally capture the passwords as they
//! arrive, so the cache adds little; `login_cache_secs = 0` turns it off.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type Tag = [u8; 32];

/// Recent successful password checks (see the module docs).
pub struct LoginCache {
    key: [u8; 32],
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Tag)>>,
}

impl std::fmt::Debug for LoginCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Default for LoginCache {
    /// A cache that remembers nothing.
    fn default() -> Self {
        LoginCache::new(Duration::ZERO)
    }
}

impl LoginCache {
    /// A cache whose entries live `ttl` (zero: nothing is ever remembered).
    pub fn new(ttl: Duration) -> LoginCache {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        LoginCache {
            key,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, user: &str, hash: &str, password: &[u8]) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).ok()?;
        for part in [user.as_bytes(), hash.as_bytes(), password] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        Some(mac)
    }

    fn tag(&self, user: &str, hash: &str, password: &[u8]) -> Option<Tag> {
        Some(
            self.mac(user, hash, password)?
                .finalize()
                .into_bytes()
                .into(),
        )
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, (Instant, Tag)>) -> R) -> R {
        match self.entries.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Whether `password` was verified for `user` (with this `hash`) within the lifetime.
    pub fn hit(&self, user: &str, hash: &str, password: &[u8], now: Instant) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let Some(mac) = self.mac(user, hash, password) else {
            return false;
        };
        self.with(|entries| match entries.get(user) {
            // verify_slice compares in constant time.
            Some((at, stored)) if now.saturating_duration_since(*at) < self.ttl => {
                mac.verify_slice(stored).is_ok()
            }
            Some(_) => {
                entries.remove(user);
                false
            }
            None => false,
        })
    }

    /// Remember a successful argon2 verification.
    pub fn insert(&self, user: &str, hash: &str, password: &[u8], now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        if let Some(tag) = self.tag(user, hash, password) {
            self.with(|entries| entries.insert(user.to_owned(), (now, tag)));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_the_verified_password_for_its_lifetime() {
        let cache = LoginCache::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(!cache.hit("alice", "h", b"secret", t0));
        cache.insert("alice", "h", b"secret", t0);
        assert!(cache.hit("alice", "h", b"secret", t0 + Duration::from_secs(59)));
        assert!(!cache.hit("alice", "h", b"wrong", t0));
        assert!(!cache.hit("bob", "h", b"secret", t0));
        // A changed hash (new password in the configuration) does not match.
        assert!(!cache.hit("alice", "h2", b"secret", t0));
        assert!(!cache.hit("alice", "h", b"secret", t0 + Duration::from_secs(60)));
        // Expired entries are gone.
        assert!(!cache.hit("alice", "h", b"secret", t0));
    }

    #[test]
    fn zero_lifetime_disables_it() {
        let cache = LoginCache::new(Duration::ZERO);
        let t0 = Instant::now();
        cache.insert("alice", "h", b"secret", t0);
        assert!(!cache.hit("alice", "h", b"secret", t0));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let cache = LoginCache::new(Duration::from_secs(60));
        assert_ne!(cache.tag("ab", "c", b"d"), cache.tag("a", "bc", b"d"));
    }
}
