//! Access rules: which client addresses may connect or log in
//! ([`addresses`]: `[access]`, and `allow`/`deny` of a user), and what a
//! user may do where ([`directories`]: `[[users.rules]]`, enforced by the
//! [`storage`] decorator bound to the user at login).

pub mod addresses;
pub mod directories;
pub mod storage;

pub use addresses::AddressRules;
pub use directories::{DirRules, Permissions};
pub use storage::RulesStorage;
