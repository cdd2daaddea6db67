//! What a transfer task is given and what it reports: the [`TransferContext`]
//! (storage, the data connection's TLS set-up and limits, the passive port,
//! ABOR's token, the byte counter STAT reads) and the [`TransferEvent`]s it
//! sends to its control connection (150, then the outcome: RFC 959 §4.2
//! preliminary and completion replies), with the small writing helpers the
//! download and listing paths share.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::session::{HashDigest, HashFailure, TransferOutcome, TransferStarted};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::passive::PassivePort;
use crate::storage::Storage;
use crate::stream::DataStream;

/// Size of the buffer a transfer moves data through (listings, TYPE A).
pub const TRANSFER_BUFFER_BYTES: usize = 64 * 1024;

/// Events a transfer reports to its control connection, in order.
#[derive(Debug)]
pub enum TransferEvent {
    /// The file is open; send 150.
    Started(TransferStarted),
    /// The transfer ended.
    Done(TransferOutcome),
    /// A HASH ended (see `crate::hashing`).
    Hashed(Result<HashDigest, HashFailure>),
}

/// Everything a transfer task needs besides the request.
pub struct TransferContext {
    /// The user's storage: the only way the transfer reaches data.
    pub storage: Arc<dyn Storage>,
    /// This data connection's TLS configuration (sessions staged until accepted).
    pub tls: crate::tls::DataTls,
    /// The control connection's client certificate: the data connection must
    /// present the same one (RFC 4217 §15.1.2).
    pub control_cert: Option<rustls_pki_types::CertificateDer<'static>>,
    /// The passive port, for a passive data connection.
    pub passive: Option<PassivePort>,
    /// The control connection's peer: the only address allowed on the data connection.
    pub peer_ip: IpAddr,
    /// The control connection's local address (active connections leave from it).
    pub local_ip: IpAddr,
    /// How long the data connection may take to arrive or connect.
    pub data_connect_timeout: Duration,
    /// TLS handshake limit.
    pub handshake_timeout: Duration,
    /// A transfer that moves no byte for this long fails.
    pub stall_timeout: Duration,
    /// Keep a protected upload that ends without TLS close_notify
    /// (`policy.accept_upload_without_close_notify`).
    pub accept_upload_without_close_notify: bool,
    /// The wall clock for LIST dates.
    pub now_unix: i64,
    /// Where events go.
    pub events: mpsc::Sender<TransferEvent>,
    /// Cancelled by ABOR.
    pub cancel: CancellationToken,
    /// Bytes moved so far (for STAT).
    pub progress: Arc<AtomicU64>,
    /// For the log line.
    pub user: String,
}

impl TransferContext {
    /// Write `bytes` to the data connection within the stall limit; the
    /// outcome when ABOR, the stall limit or the connection stopped it.
    pub(super) async fn write(
        &self,
        data: &mut DataStream,
        bytes: &[u8],
    ) -> Result<(), TransferOutcome> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(TransferOutcome::Aborted),
            w = tokio::time::timeout(self.stall_timeout, data.write_all(bytes)) => match w {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(TransferOutcome::ConnectionLost),
                Err(_) => Err(TransferOutcome::Stalled),
            },
        }
    }
}
