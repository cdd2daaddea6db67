//! `ftps-server`: an FTPS server (RFC 959 with RFC 2228, 2389, 2428, 3659 and
//! RFC 4217, plus MFMT and HASH from their drafts) on tokio and rustls.
//!
//! The protocol rules live in the sans-IO `ftps-proto` crate; this crate owns
//! the I/O around it: listeners and limits ([`server`]), the state all
//! connections share ([`shared`]), one task per control connection
//! ([`connection`]), data transfers ([`transfer`]), HASH ([`hashing`]), TLS
//! policy and per-connection session stores and ticket keys ([`tls`]),
//! passive ports ([`passive`]), the PROXY protocol of load balancers
//! ([`proxy`]), the database several nodes share ([`database`]),
//! storage back-ends behind one trait ([`storage`]), users and passwords
//! ([`users`]), certificates ([`certs`]) and the TOML configuration
//! ([`config`]).

pub mod access;
pub mod bans;
mod binding;
pub mod certs;
pub mod config;
mod connection;
pub mod database;
mod hashing;
pub mod identity;
pub mod limits;
mod listen;
pub mod login_cache;
pub mod ops;
pub mod passive;
pub mod privileges;
pub mod proxy;
pub mod quota;
pub mod reload;
pub mod server;
mod shared;
pub mod storage;
pub mod stream;
pub mod tls;
pub mod transfer;
pub mod users;

use std::net::SocketAddr;

pub use reload::Reloader;
pub use server::{BoundListener, Listeners, Server};

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A certificate or key could not be loaded or generated.
    #[error(transparent)]
    Certificate(#[from] certs::CertError),
    /// TLS could not be configured.
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
    /// The audit log or the hooks could not start.
    #[error(transparent)]
    Ops(#[from] ops::OpsError),
    /// The shared database's settings are unusable.
    #[error(transparent)]
    Database(users::StoreError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}
