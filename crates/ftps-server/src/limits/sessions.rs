//! Logged-in sessions per user: a count per user name shared by the whole
//! server, taken at login and given back when the session logs out or ends
//! ([`SessionCount`] is the guard), and the per-user rate limiters, shared
//! by all of a user's sessions ([`UserLimiters`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::bandwidth::RateLimit;

fn locked<T, R>(mutex: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    match mutex.lock() {
        Ok(mut guard) => f(&mut guard),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// How many sessions each user has logged in.
#[derive(Debug, Default)]
pub struct UserSessions {
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

/// One logged-in session of a user; dropping it gives the place back.
#[derive(Debug)]
pub struct SessionCount {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    user: String,
}

impl UserSessions {
    /// Count a session of `user`, unless it already has `max` (0: no limit).
    pub fn try_add(&self, user: &str, max: usize) -> Option<SessionCount> {
        locked(&self.counts, |counts| {
            let count = counts.entry(user.to_owned()).or_insert(0);
            if max > 0 && *count >= max {
                return None;
            }
            *count += 1;
            Some(SessionCount {
                counts: Arc::clone(&self.counts),
                user: user.to_owned(),
            })
        })
    }

    /// The sessions `user` has now.
    pub fn count(&self, user: &str) -> usize {
        locked(&self.counts, |counts| {
            counts.get(user).copied().unwrap_or(0)
        })
    }
}

impl Drop for SessionCount {
    fn drop(&mut self) {
        locked(&self.counts, |counts| {
            if let Some(count) = counts.get_mut(&self.user) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    counts.remove(&self.user);
                }
            }
        });
    }
}

/// Each user's rate limiters, kept while a session uses them.
#[derive(Debug, Default)]
pub struct UserLimiters {
    limiters: Mutex<HashMap<(String, bool), Weak<RateLimit>>>,
}

impl UserLimiters {
    /// The limiter of `user`'s uploads (`upload`) or downloads at
    /// `bytes_per_sec`: the one the user's other sessions use when its rate
    /// is the same, else a new one (the rate was changed by a reload).
    pub fn get(&self, user: &str, upload: bool, bytes_per_sec: u64) -> Option<Arc<RateLimit>> {
        if bytes_per_sec == 0 {
            return None;
        }
        locked(&self.limiters, |limiters| {
            let key = (user.to_owned(), upload);
            if let Some(limit) = limiters.get(&key).and_then(Weak::upgrade) {
                if limit.bytes_per_sec() == bytes_per_sec {
                    return Some(limit);
                }
            }
            let limit = RateLimit::new(bytes_per_sec)?;
            limiters.retain(|_, weak| weak.strong_count() > 0);
            limiters.insert(key, Arc::downgrade(&limit));
            Some(limit)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sessions_per_user_are_capped_and_given_back() {
        let sessions = UserSessions::default();
        let a = sessions.try_add("u", 2).unwrap();
        let _b = sessions.try_add("u", 2).unwrap();
        assert!(sessions.try_add("u", 2).is_none());
        assert!(sessions.try_add("other", 2).is_some());
        drop(a);
        assert_eq!(sessions.count("u"), 1);
        assert!(sessions.try_add("u", 2).is_some());
        assert!(sessions.try_add("u", 0).is_some(), "0: no limit");
    }

    #[test]
    fn a_users_sessions_share_one_limiter_until_its_rate_changes() {
        let limiters = UserLimiters::default();
        let a = limiters.get("u", true, 1000).unwrap();
        let b = limiters.get("u", true, 1000).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &limiters.get("u", false, 1000).unwrap()));
        assert!(!Arc::ptr_eq(&a, &limiters.get("u", true, 2000).unwrap()));
        assert!(limiters.get("u", true, 0).is_none());
    }
}
