//! A raw FTPS test client for protocol-level tests.
//!
//! It speaks the control protocol byte for byte (RFC 959 §4, RFC 4217) with
//! no cleverness of its own: commands are sent exactly as given, every reply
//! is parsed with [`ftps_proto::reply::ReplyParser`] and every wait is bounded
//! by a timeout. The control stream can be plaintext or TLS and can change
//! between the two (AUTH TLS, CCC, REIN). The FTP client is always the TLS
//! client, also on data connections (RFC 4217 §7); data connections resume the
//! control connection's TLS session when they use the same
//! `Arc<ClientConfig>` (its in-memory session store is shared).
//!
//! Every command and reply is recorded so that a failed assertion can show
//! the whole dialogue.
//!
//! * [`Client`]: the control connection: [`Client::connect`] (explicit),
//!   [`Client::connect_implicit`], commands with or without a check of the
//!   reply code ([`Client::expect`], [`Client::cmd`], [`Client::send_raw`]),
//!   TLS on and off ([`Client::auth_tls`], [`Client::clear_tls`]) and
//!   transfers over passive PROT P data connections ([`Client::download`],
//!   [`Client::upload`], [`Client::retr`], [`Client::stor`]).
//! * Set-ups in one call: [`Client::open`] with a [`Setup`] (explicit or
//!   implicit FTPS, login, `PBSZ 0` + `PROT P` or `PROT C`, `TYPE I`),
//!   [`Client::session`] for a [`TestServer`], [`Client::secure`].
//! * Tables of command and expected reply code: [`Client::expect_replies`];
//!   a failing row names the command and the reply it got, and shows the
//!   dialogue.
//! * TLS client configurations ([`config_default`], [`config_tls12`],
//!   [`config_no_resumption`], ...), data-connection helpers
//!   ([`tcp_connect`], [`data_tls`], [`read_all`], [`write_all_and_close`])
//!   and [`within`], a deadline for a whole test.
//!
//! [`Client`] is defined here with its bookkeeping (the dialogue, notes,
//! [`Client::check`], [`Client::config`]); its other methods live with
//! their concern, each file a submodule re-exported here:
//!
//! * `setup.rs`: connecting and logging in, [`Setup`] and the one-call
//!   set-ups.
//! * `control.rs`: commands and replies ([`Next`]), the recorded dialogue,
//!   `expect*` and reply tables.
//! * `stream.rs`: the control stream ([`Control`]) and TLS on and off
//!   (`AUTH`, `CCC`, `REIN`).
//! * `data.rs`: data connections (PASV, EPSV, downloads and uploads) and
//!   the data-connection helpers.
//! * `tls.rs`: client TLS configurations and the bounded client handshake.

mod control;
mod data;
mod setup;
mod stream;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::reply::ReplyParser;
use rustls::ClientConfig;
use tokio::net::TcpStream;

#[cfg(doc)]
use crate::TestServer;

pub use control::Next;
pub use data::{data_tls, read_all, tcp_connect, write_all_and_close};
pub use setup::Setup;
pub use stream::Control;
pub use tls::{
    config_default, config_hello_retry, config_no_resumption, config_tls12, config_tls13,
    tls_config, tls_connect,
};

/// Bound on reading one reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on connecting and on one TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on moving the bytes of one data transfer.
pub const DATA_TIMEOUT: Duration = Duration::from_secs(60);
/// The name the client checks the server certificate against.
pub const SERVER_NAME: &str = "localhost";

/// A TLS data (or control) stream, client side.
pub type TlsData = tokio_rustls::client::TlsStream<TcpStream>;

/// Run `f`, panicking if it takes longer than `secs` seconds.
pub async fn within<F: Future>(secs: u64, f: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(out) => out,
        Err(_) => panic!("test did not finish within {secs} s"),
    }
}

/// A raw FTPS client on one control connection.
pub struct Client {
    /// The control stream.
    pub stream: Control,
    parser: ReplyParser,
    log: Vec<String>,
    /// The server's control address.
    pub peer: SocketAddr,
    /// The configuration used for the control connection's TLS (and, by
    /// default, for data connections, so that they resume its session).
    pub tls_config: Option<Arc<ClientConfig>>,
}

impl Client {
    /// A client on an already open stream (no greeting is read).
    pub fn from_stream(
        stream: Control,
        peer: SocketAddr,
        tls_config: Option<Arc<ClientConfig>>,
    ) -> Client {
        Client {
            stream,
            parser: ReplyParser::new(),
            log: Vec::new(),
            peer,
            tls_config,
        }
    }

    /// The dialogue so far, one line per command or reply line.
    pub fn dialogue(&self) -> String {
        self.log.join("\n")
    }

    /// Add a note to the dialogue.
    pub fn note(&mut self, note: impl Into<String>) {
        self.log.push(format!("--- {}", note.into()));
    }

    /// Whether the control connection is TLS-protected right now.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Control::Tls(_))
    }

    /// Panic (with the dialogue) unless `cond` holds.
    pub fn check(&self, cond: bool, what: &str) {
        if !cond {
            panic!("{what}\n--- dialogue:\n{}", self.dialogue());
        }
    }

    /// The configuration the control connection uses (data connections
    /// resume its session with it).
    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(
            self.tls_config
                .as_ref()
                .expect("the control connection has no TLS configuration"),
        )
    }
}
