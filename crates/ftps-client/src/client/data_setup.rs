//! What every transfer command goes through before its data flows: the
//! transfer parameters TYPE (RFC 959 §4.1.2) and PBSZ/PROT (RFC 4217 §9,
//! §10.4), the data connection — passive or active, opened by
//! [`crate::data`] (RFC 959 §3.2, RFC 2428) — REST (RFC 3659 §5), the
//! command and its 1xx reply, and TLS on the data connection resuming the
//! control connection's session (RFC 4217 §7, §10.2). Servers that insist
//! on that resumption get one retry, and with TLS 1.3 a control connection
//! renewed for fresh session tickets when none is left.

use ftps_proto::command::TransferType;
use ftps_proto::reply::Reply;
use ftps_proto::session::DataProtection;
use tracing::debug;

use super::Client;
use crate::control::Stream;
use crate::Error;

/// Passive (the client connects) or active (the server connects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataMode {
    /// EPSV, falling back to PASV.
    #[default]
    Passive,
    /// EPRT, falling back to PORT.
    Active,
}

impl Client {
    /// TYPE, sent only when it changes.
    pub async fn set_type(&mut self, transfer_type: TransferType) -> Result<(), Error> {
        if self.transfer_type == Some(transfer_type) {
            return Ok(());
        }
        let line: &[u8] = match transfer_type {
            TransferType::Ascii => b"TYPE A",
            TransferType::Image => b"TYPE I",
        };
        self.expect_ok("TYPE", line).await?;
        self.transfer_type = Some(transfer_type);
        Ok(())
    }

    /// PROT C or P for the following transfers (PBSZ 0 first when needed,
    /// RFC 4217 §9, §10.4).
    pub async fn set_prot(&mut self, level: DataProtection) -> Result<(), Error> {
        if self.protection == level && self.pbsz_done {
            return Ok(());
        }
        if !self.pbsz_done {
            self.expect_ok("PBSZ", b"PBSZ 0").await?;
            self.pbsz_done = true;
        }
        let line = match level {
            DataProtection::Private => "PROT P",
            DataProtection::Clear => "PROT C",
        };
        self.expect_ok(line, line.as_bytes()).await?;
        self.protection = level;
        Ok(())
    }

    /// TLS 1.3 tickets are single-use here; when none is left for a protected
    /// data connection (servers like ProFTPD send none on data connections),
    /// reconnect the control connection for fresh ones instead of offering a
    /// full handshake that a reuse-requiring server refuses. The working
    /// directory, PROT level and TYPE are restored.
    async fn ensure_ticket(&mut self, protected: bool) -> Result<(), Error> {
        if self.reuse_required == Some(true) && self.out_of_tickets(protected) {
            self.reconnect().await?;
        }
        Ok(())
    }

    /// A protected TLS 1.3 data connection would have no ticket to offer.
    fn out_of_tickets(&self, protected: bool) -> bool {
        protected
            && self.tls_version().as_deref() == Some("TLSv1_3")
            && self.sessions.tls13_tickets(&self.server_name) == 0
    }

    /// Renew the control connection (fresh TLS 1.3 tickets), restoring the
    /// working directory, PROT level and TYPE.
    pub(super) async fn reconnect(&mut self) -> Result<(), Error> {
        debug!("no TLS 1.3 ticket left for the data connection: reconnecting");
        let cwd = self.pwd().await.ok();
        let transfer_type = self.transfer_type;
        let protection = self.protection;
        let _ = self.control.command(b"QUIT").await;
        let fresh = Client::connect(self.options.clone()).await?;
        let epsv_refused = self.epsv_refused;
        let eprt_refused = self.eprt_refused;
        let reconnects = self.reconnects + 1;
        let reuse_required = self.reuse_required;
        let handshake_order = self.handshake_order;
        *self = fresh;
        self.handshake_order = handshake_order;
        self.epsv_refused = epsv_refused;
        self.eprt_refused = eprt_refused;
        self.reconnects = reconnects;
        self.reuse_required = reuse_required;
        if let Some(cwd) = cwd {
            self.cwd(&cwd).await?;
        }
        if self.protection != protection {
            self.set_prot(protection).await?;
        }
        if let Some(t) = transfer_type {
            self.set_type(t).await?;
        }
        Ok(())
    }

    /// Send a data command and set up its data connection; one automatic retry
    /// when the server refuses the data connection for lack of session reuse.
    pub(super) async fn data_command(
        &mut self,
        line: &[u8],
        verb: &str,
        rest: Option<u64>,
        protected: bool,
    ) -> Result<(Stream, Reply), Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.ensure_ticket(protected).await?;
            let pending = self.open_data().await?;
            if let Some(offset) = rest {
                let reply = self
                    .control
                    .command(format!("REST {offset}").as_bytes())
                    .await?;
                if reply.code != 350 {
                    return Err(self.unexpected("REST", "350", reply));
                }
            }
            match self.start_transfer(pending, line, verb, protected).await {
                Err(error) if attempt == 1 && error.is_session_reuse_refusal() => {
                    debug!("data connection refused for session reuse; retrying once");
                }
                other => return other,
            }
        }
    }
}
