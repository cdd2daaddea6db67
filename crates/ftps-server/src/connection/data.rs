//! Starting the session's data work from the control connection's task:
//! a passive port (RFC 959 PASV, RFC 2428 EPSV; announced per listener and
//! behind a balancer, see [`crate::passive`]), a transfer in a task of its
//! own ([`crate::transfer`]), and HASH in a task of its own
//! ([`crate::hashing`]). Their events come back through `ActiveTransfer`.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use ftps_proto::session::{
    DataEndpoint, DataProtection, FsError, PassiveKind, TransferOutcome, TransferRequest,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{now, now_unix, ActiveTransfer, Connection};
use crate::passive::{DataProxy, EarlyTls, PassivePort};
use crate::transfer::{self, TransferContext};

impl Connection {
    pub(super) async fn open_passive(&mut self, kind: PassiveKind) {
        let ip = self.local.ip().to_canonical();
        let passive = Arc::clone(&self.listener.passive);
        let listener = match crate::passive::bind(ip, passive.ports.as_ref()).await {
            Ok(listener) => listener,
            Err(error) => {
                warn!(peer = %self.peer, %error, "cannot open a passive port");
                self.session.handle_passive_opened(None);
                return;
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let announce = match kind {
            PassiveKind::Pasv => {
                match crate::passive::announced_address(&passive, self.balancer, ip).await {
                    Ok(address) => address,
                    Err(error) => {
                        warn!(peer = %self.peer, %error, "cannot resolve server.passive_host");
                        self.session.handle_passive_opened(None);
                        return;
                    }
                }
            }
            PassiveKind::Epsv => ip,
        };
        let server = &self.live.config.server;
        // An early TLS start needs a data configuration: only made
        // while PROT P is in force (see crate::passive).
        let early = (self.session.data_protection() == DataProtection::Private).then(|| {
            let require_reuse = match self.session.user() {
                Some(grant) => grant.policy.require_session_reuse,
                None => true,
            };
            EarlyTls {
                tls: self.tls.for_data(require_reuse),
                private: Arc::clone(&self.prot_private),
                handshake_timeout: server.tls_handshake_timeout(),
                started_before: Arc::clone(&self.early_tls_seen),
            }
        });
        let proxy = passive.proxy_protocol.then(|| DataProxy {
            trusted: self.live.config.proxy_protocol.trusted.clone(),
            header_timeout: self.live.config.proxy_protocol.header_timeout(),
        });
        let unused = server.data_connect_timeout();
        self.passive = Some(PassivePort::spawn(
            listener,
            self.peer.ip(),
            early,
            unused,
            proxy,
        ));
        self.session
            .handle_passive_opened(Some(SocketAddr::new(announce, port)));
    }

    /// HASH: computed in a task of its own, ABOR and STAT answered meanwhile.
    pub(super) fn start_hash(&mut self, request: ftps_proto::session::HashRequest) {
        let Some(storage) = self.storage.clone() else {
            let failure = ftps_proto::session::HashFailure::Fs(FsError::PermissionDenied);
            self.session.handle_hash_done(Err(failure), now());
            return;
        };
        let cancel = CancellationToken::new();
        let progress = Arc::new(AtomicU64::new(0));
        let limit = self.live.config.server.hash_max_bytes;
        let events = crate::hashing::spawn(
            storage,
            request,
            limit,
            cancel.clone(),
            Arc::clone(&progress),
        );
        self.transfer = Some(ActiveTransfer {
            events,
            cancel,
            progress,
        });
    }

    pub(super) fn start_transfer(&mut self, request: TransferRequest) {
        let Some(storage) = self.storage.clone() else {
            self.session.handle_transfer_done(
                TransferOutcome::OpenFailed(FsError::PermissionDenied),
                now(),
            );
            return;
        };
        let (events_tx, events) = mpsc::channel(4);
        let cancel = CancellationToken::new();
        let progress = Arc::new(AtomicU64::new(0));
        let passive = match request.endpoint {
            DataEndpoint::Passive => self.passive.take(),
            DataEndpoint::Active(_) => None,
        };
        let server = &self.live.config.server;
        let context = TransferContext {
            storage,
            tls: self.tls.for_data(request.require_session_reuse),
            control_cert: self.client_cert.as_ref().map(|(der, _)| der.clone()),
            passive,
            peer_ip: self.peer.ip(),
            local_ip: self.local.ip().to_canonical(),
            data_connect_timeout: server.data_connect_timeout(),
            handshake_timeout: server.tls_handshake_timeout(),
            stall_timeout: server.transfer_stall_timeout(),
            accept_upload_without_close_notify: request.accept_upload_without_close_notify,
            now_unix: now_unix(),
            events: events_tx,
            cancel: cancel.clone(),
            progress: Arc::clone(&progress),
            user: self.user.clone(),
            report: self.events.clone(),
        };
        tokio::spawn(transfer::run(context, request));
        self.transfer = Some(ActiveTransfer {
            events,
            cancel,
            progress,
        });
    }
}
