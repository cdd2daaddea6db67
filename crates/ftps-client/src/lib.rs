//! `ftps-client`: an async FTPS client (RFC 959, RFC 4217) on tokio and rustls.
//!
//! Secure by default: explicit FTPS (AUTH TLS, falling back to AUTH SSL, never
//! silently to plaintext), certificates verified, PROT P, and every data
//! connection resuming the control connection's TLS session — TLS 1.2 and
//! 1.3 — which servers that require reuse (vsftpd `require_ssl_reuse`,
//! ProFTPD's default) insist on. Downloads that end without a TLS
//! close_notify or short of the announced size are errors, not files.
//!
//! ```no_run
//! use ftps_client::{Client, ConnectOptions, StoreMode};
//!
//! # async fn example() -> Result<(), ftps_client::Error> {
//! let mut options = ConnectOptions::new("ftp.example.com", 21, "alice", "secret");
//! options.tls.ca_file = Some("server-ca.pem".into());
//! let mut client = Client::connect(options).await?;
//! for entry in client.list(b"").await? {
//!     println!("{}", String::from_utf8_lossy(&entry.name));
//! }
//! let mut file = tokio::fs::File::open("report.csv").await?;
//! client.stor(b"report.csv", &mut file, StoreMode::Replace, false).await?;
//! let mut download = client.retr(b"report.csv", 0).await?;
//! let mut copy = Vec::new();
//! tokio::io::AsyncReadExt::read_to_end(&mut download, &mut copy).await?;
//! download.finish().await?; // the 226, and the clean TLS close
//! client.quit().await?;
//! # Ok(())
//! # }
//! ```

mod client;
pub mod control;
pub mod data;
mod error;
pub mod listing;
pub mod tls;
mod tls_words;
pub mod url;

pub use client::{
    parse_hash_reply, size_from_150, Client, ConnectOptions, DataMode, Features, FileHash,
    StoreMode,
};
pub use data::RetrStream;
pub use error::Error;
pub use ftps_proto::client::{LoginOptions, ProtTiming, Security};
pub use ftps_proto::entry::{Entry, EntryKind};
pub use ftps_proto::session::DataProtection;
pub use listing::Listing;
pub use tls::TlsOptions;
pub use url::FtpUrl;
