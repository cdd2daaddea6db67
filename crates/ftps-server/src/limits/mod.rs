//! Limits on what users take: bandwidth per direction, for the whole server
//! and per user ([`bandwidth`]), and logged-in sessions per user
//! ([`sessions`]).

pub mod bandwidth;
pub mod sessions;

pub use bandwidth::{RateLimit, Throttle, ThrottledStorage};
pub use sessions::{SessionCount, UserLimiters, UserSessions};
