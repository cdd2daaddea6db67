//! Per-user quotas on bytes and files (the 552 "exceeded storage
//! allocation" of RFC 959 §4.2).
//!
//! * [`store`]: the [`UsageStore`] trait, where each user's usage is kept,
//!   and [`MemoryUsageStore`], the single-server store that measures a
//!   user's tree at the first change after each start;
//! * [`postgres`]: [`PostgresUsageStore`], usage in the database several
//!   servers share (`[database]`), changed by atomic statements;
//! * [`usage`]: what this server knows of a user's usage and what the
//!   user's running uploads reserved ([`Quotas`], [`UserUsage`]);
//! * [`storage`]: [`QuotaStorage`], the [`crate::storage::Storage`]
//!   decorator bound to a user at login that refuses what would cross the
//!   quota and records every change.

pub mod postgres;
pub mod storage;
pub mod store;
pub mod usage;

pub use postgres::PostgresUsageStore;
pub use storage::QuotaStorage;
pub use store::{Added, MemoryUsageStore, QuotaLimits, Usage, UsageDelta, UsageError, UsageStore};
pub use usage::{Quotas, UserUsage};
