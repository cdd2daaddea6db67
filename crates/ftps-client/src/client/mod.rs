//! The client: [`Client`], its state, and what all its commands share;
//! each concern in a file of its own:
//!
//! - `connect`: connecting, TLS and login through the protocol crate's
//!   `ClientLogin` (RFC 959 §4.1.1, RFC 4217 §4, §9, §10.3), CCC (RFC 4217
//!   §5) and QUIT;
//! - `features`: FEAT (RFC 2389);
//! - `data_setup`: TYPE, PBSZ/PROT, REST and the data connection of every
//!   transfer, with TLS session reuse (RFC 959 §3.2, RFC 2428, RFC 4217 §7,
//!   §9, §10.2);
//! - `data_start`: the transfer command, its 1xx reply and the data
//!   connection's TLS handshake, in the order the server needs (RFC 4217
//!   §7; servers that wait for the handshake before their 1xx);
//! - `download`: RETR (RFC 959 §4.1.3, RFC 3659 §5);
//! - `upload`: STOR and APPE (RFC 959 §4.1.3, RFC 3659 §5);
//! - `list`: MLSD, LIST and NLST (RFC 959 §4.1.3, RFC 3659 §7, RFC 4217
//!   §10.4);
//! - `commands`: the commands without a data connection (PWD, CWD, MKD, RMD,
//!   DELE, RNFR/RNTO, SIZE, MDTM, any other quoted);
//! - `metadata`: one file's facts: MLST (RFC 3659 §7), MFMT
//!   (draft-somers-ftp-mfxx) and HASH (draft-bryan-ftpext-hash).

mod commands;
mod connect;
mod data_setup;
mod data_start;
mod download;
mod features;
mod list;
mod metadata;
mod upload;

use std::net::SocketAddr;
use std::sync::Arc;

use ftps_proto::client::data::HandshakeOrder;
use ftps_proto::command::TransferType;
use ftps_proto::reply::Reply;
use ftps_proto::session::DataProtection;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::control::Control;
use crate::tls::SessionStore;
use crate::Error;

pub use connect::ConnectOptions;
pub use data_setup::DataMode;
pub use download::size_from_150;
pub use features::Features;
pub use metadata::{parse_hash_reply, FileHash};
pub use upload::StoreMode;

/// An FTPS client connection. See the crate docs for an example.
#[derive(Debug)]
pub struct Client {
    pub(crate) control: Control,
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) sessions: Arc<SessionStore>,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) options: ConnectOptions,
    pub(crate) epsv_refused: bool,
    pub(crate) eprt_refused: bool,
    pub(crate) last_data_resumed: bool,
    /// When the server wants the data connection's TLS handshake (learned).
    handshake_order: HandshakeOrder,
    reconnects: u32,
    /// Whether the server refuses data connections that do not resume the
    /// TLS session (learned: `None` until a full handshake was tried).
    reuse_required: Option<bool>,
    protection: DataProtection,
    pbsz_done: bool,
    control_protected: bool,
    transfer_type: Option<TransferType>,
    features: Features,
}

impl Client {
    pub(crate) fn unexpected(&self, command: &str, expected: &'static str, reply: Reply) -> Error {
        Error::UnexpectedReply {
            command: command.to_string(),
            expected,
            reply,
        }
    }

    /// Send a command and expect a 2xx reply.
    async fn expect_ok(&mut self, verb: &str, line: &[u8]) -> Result<Reply, Error> {
        let reply = self.control.command(line).await?;
        if reply.is_completion() {
            Ok(reply)
        } else {
            Err(self.unexpected(verb, "2xx", reply))
        }
    }

    /// `VERB arg`.
    fn with_arg(verb: &str, arg: &[u8]) -> Vec<u8> {
        let mut line = verb.as_bytes().to_vec();
        line.push(b' ');
        line.extend_from_slice(arg);
        line
    }

    /// Is the control connection protected by TLS?
    pub fn is_control_protected(&self) -> bool {
        self.control_protected
    }

    /// The current data protection level.
    pub fn protection(&self) -> DataProtection {
        self.protection
    }

    /// How often the control connection was renewed for fresh TLS 1.3
    /// tickets (see [`ConnectOptions`]; 0 with servers that send tickets on
    /// data connections, and always with TLS 1.2).
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// Did the last protected data connection resume the TLS session?
    pub fn last_data_resumed(&self) -> bool {
        self.last_data_resumed
    }

    /// The TLS version of the control connection, e.g. "TLSv1_3".
    pub fn tls_version(&self) -> Option<String> {
        self.control
            .stream
            .tls()
            .and_then(|c| c.protocol_version())
            .map(|v| format!("{v:?}"))
    }
}
