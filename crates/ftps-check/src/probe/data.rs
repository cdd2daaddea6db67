//! Data connections (RFC 959 §3.2, RFC 2428, RFC 4217 §7, §10.2, §12.4):
//! a passive port from EPSV or PASV (or an active one with EPRT/PORT), the
//! transfer command, its 1xx reply, then TLS with whichever configuration
//! the check chose — the control connection's own session, another
//! connection's, none — and the final reply. A download counts as complete
//! only when it ends with a TLS close_notify; an upload ends with ours.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::address;
use ftps_proto::reply::Reply;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;

use super::control::{line_of, refused, Conn};
use super::tls::TlsInfo;
use super::{from_io, ProbeError};
use crate::evidence::{Kind, Recorder};

/// Bytes of a download kept for the check (the rest is only counted).
pub const MAX_KEPT_BYTES: usize = 1 << 20;

/// How the data connection runs TLS.
#[derive(Debug, Clone)]
pub enum DataTls {
    /// No TLS (PROT C).
    Plain,
    /// TLS with this configuration (its store decides what is resumed).
    With(Arc<ClientConfig>),
}

/// What to move.
#[derive(Debug, Clone, Copy)]
pub enum Direction<'a> {
    /// Read what the server sends (RETR, LIST, MLSD, NLST).
    Download,
    /// Send these bytes (STOR, APPE).
    Upload(&'a [u8]),
}

/// How one transfer went.
#[derive(Debug, Default)]
pub struct Transfer {
    /// The reply to the transfer command when it was a 1xx.
    pub preliminary: Option<Reply>,
    /// The reply that ended it (the 226, or the refusal).
    pub last: Option<Reply>,
    /// The data connection's handshake, when it finished.
    pub tls: Option<TlsInfo>,
    /// How the handshake failed, when it did.
    pub tls_error: Option<String>,
    /// The first [`MAX_KEPT_BYTES`] bytes received.
    pub data: Vec<u8>,
    /// All bytes moved (received or sent).
    pub bytes: u64,
    /// A download ended with close_notify (an upload: ours was sent).
    pub clean_end: bool,
}

impl Transfer {
    /// Whether the server completed it (a 2xx after the 1xx).
    pub fn completed(&self) -> bool {
        self.preliminary.is_some() && self.last.as_ref().is_some_and(Reply::is_completion)
    }

    /// The final reply code, if any.
    pub fn last_code(&self) -> Option<u16> {
        self.last.as_ref().map(|r| r.code)
    }
}

/// Ask for a passive port: EPSV (RFC 2428 §3), or PASV when EPSV is refused.
pub async fn passive(conn: &mut Conn) -> Result<SocketAddr, ProbeError> {
    let reply = conn.cmd("EPSV").await?;
    if reply.code == 229 {
        let port = address::parse_epsv_reply_text(&reply.text())
            .map_err(|e| ProbeError::BadReply(format!("EPSV reply: {e:?}")))?;
        return Ok(SocketAddr::new(conn.peer.ip(), port));
    }
    passive_pasv(conn).await
}

/// Ask for a passive port with PASV (RFC 959 §4.1.2), connecting to the
/// control connection's address whatever address the reply names.
pub async fn passive_pasv(conn: &mut Conn) -> Result<SocketAddr, ProbeError> {
    let reply = conn.cmd("PASV").await?;
    if reply.code != 227 {
        return Err(refused("PASV", &reply));
    }
    let announced = address::parse_pasv_reply_text(&reply.text())
        .map_err(|e| ProbeError::BadReply(format!("PASV reply: {e:?}")))?;
    if std::net::IpAddr::V4(*announced.ip()) != conn.peer.ip() {
        conn.note(format!(
            "PASV names {}; connecting to the control connection's address instead",
            announced.ip()
        ));
    }
    Ok(SocketAddr::new(conn.peer.ip(), announced.port()))
}

/// Open a TCP connection to a data port.
pub async fn connect(
    addr: SocketAddr,
    label: &str,
    rec: &Recorder,
    limit: Duration,
) -> Result<TcpStream, ProbeError> {
    match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            rec.push(label, Kind::Note, format!("data connection to {addr}"));
            Ok(tcp)
        }
        Ok(Err(e)) => {
            rec.push(label, Kind::Note, format!("data connection to {addr}: {e}"));
            Err(ProbeError::Io(e))
        }
        Err(_) => Err(ProbeError::Timeout("connecting the data connection")),
    }
}

/// A data connection, plain or TLS.
#[derive(Debug)]
pub enum DataStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Run the data connection's TLS handshake (the FTP client is the TLS
/// client, RFC 4217 §7).
pub async fn handshake(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    name: rustls_pki_types::ServerName<'static>,
    label: &str,
    rec: &Recorder,
    limit: Duration,
) -> Result<(DataStream, TlsInfo), ProbeError> {
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(limit, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => {
            let info = TlsInfo::of(tls.get_ref().1);
            rec.push(label, Kind::Tls, info.describe());
            Ok((DataStream::Tls(Box::new(tls)), info))
        }
        Ok(Err(e)) => {
            let e = from_io(e);
            rec.push(label, Kind::Tls, format!("handshake failed: {e}"));
            Err(e)
        }
        Err(_) => {
            rec.push(label, Kind::Tls, "handshake timed out");
            Err(ProbeError::Timeout(
                "in the data connection's TLS handshake",
            ))
        }
    }
}

impl DataStream {
    /// Read until the end; `(bytes kept, bytes in all, ended with close_notify)`.
    /// A plain connection ends cleanly with a FIN.
    pub async fn read_to_end(&mut self, limit: Duration) -> (Vec<u8>, u64, bool, Option<String>) {
        let mut kept = Vec::new();
        let mut total = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let read = match self {
                DataStream::Plain(s) => tokio::time::timeout(limit, s.read(&mut buf)).await,
                DataStream::Tls(s) => tokio::time::timeout(limit, s.read(&mut buf)).await,
            };
            match read {
                Ok(Ok(0)) => return (kept, total, true, None),
                Ok(Ok(n)) => {
                    total += n as u64;
                    let room = MAX_KEPT_BYTES.saturating_sub(kept.len());
                    kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
                }
                Ok(Err(e)) => return (kept, total, false, Some(from_io(e).to_string())),
                Err(_) => return (kept, total, false, Some("stalled".into())),
            }
        }
    }

    /// Write everything, then end the stream (close_notify and FIN), then
    /// wait for the server's end so nothing unread resets the connection.
    pub async fn write_and_close(
        &mut self,
        bytes: &[u8],
        limit: Duration,
    ) -> Result<(), ProbeError> {
        let work = async {
            match self {
                DataStream::Plain(s) => {
                    s.write_all(bytes).await?;
                    s.shutdown().await?;
                }
                DataStream::Tls(s) => {
                    s.write_all(bytes).await?;
                    s.shutdown().await?;
                }
            }
            Ok::<(), std::io::Error>(())
        };
        match tokio::time::timeout(limit, work).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(from_io(e)),
            Err(_) => return Err(ProbeError::Timeout("sending on the data connection")),
        }
        let _ = self.read_to_end(limit).await;
        Ok(())
    }

    /// End our side: close_notify (TLS) and FIN, within `limit`.
    pub async fn close(&mut self, limit: Duration) {
        let _ = match self {
            DataStream::Plain(s) => tokio::time::timeout(limit, s.shutdown()).await,
            DataStream::Tls(s) => tokio::time::timeout(limit, s.shutdown()).await,
        };
    }

    /// Read at most `max` bytes (waiting at most `limit`); 0 at the end.
    pub async fn read_some(&mut self, max: usize, limit: Duration) -> Result<usize, ProbeError> {
        let mut buf = vec![0u8; max];
        let read = match self {
            DataStream::Plain(s) => tokio::time::timeout(limit, s.read(&mut buf)).await,
            DataStream::Tls(s) => tokio::time::timeout(limit, s.read(&mut buf)).await,
        };
        match read {
            Ok(Ok(0)) => Err(ProbeError::Closed),
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(from_io(e)),
            Err(_) => Ok(0),
        }
    }

    /// Write some bytes without ending the stream.
    pub async fn write_some(&mut self, bytes: &[u8], limit: Duration) -> Result<(), ProbeError> {
        let work = async {
            match self {
                DataStream::Plain(s) => s.write_all(bytes).await?,
                DataStream::Tls(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await?;
                }
            }
            Ok::<(), std::io::Error>(())
        };
        match tokio::time::timeout(limit, work).await {
            Ok(r) => r.map_err(from_io),
            Err(_) => Err(ProbeError::Timeout("sending on the data connection")),
        }
    }
}

/// The whole of one passive transfer: data port, TCP connection, command,
/// 1xx, TLS (or not), moving the bytes, final reply.
pub async fn passive_transfer(
    conn: &mut Conn,
    command: &str,
    tls: &DataTls,
    direction: Direction<'_>,
    name: rustls_pki_types::ServerName<'static>,
    data_label: &str,
) -> Result<Transfer, ProbeError> {
    let rec = conn.recorder().clone();
    let limit = Duration::from_secs(15);
    let addr = passive(conn).await?;
    let tcp = connect(addr, data_label, &rec, limit).await?;
    run_transfer(
        conn,
        command,
        tls,
        direction,
        name,
        data_label,
        Pending::Connected(tcp),
    )
    .await
}

/// A data connection before the transfer command.
#[derive(Debug)]
pub enum Pending {
    /// Passive: connected.
    Connected(TcpStream),
    /// Active: listening for the server.
    Listening(TcpListener),
}

/// The transfer after the data port is set up.
pub async fn run_transfer(
    conn: &mut Conn,
    command: &str,
    tls: &DataTls,
    direction: Direction<'_>,
    name: rustls_pki_types::ServerName<'static>,
    data_label: &str,
    pending: Pending,
) -> Result<Transfer, ProbeError> {
    let rec = conn.recorder().clone();
    let limit = Duration::from_secs(15);
    let mut out = Transfer::default();
    let first = conn.cmd(command).await?;
    if !first.is_preliminary() {
        out.last = Some(first);
        return Ok(out);
    }
    out.preliminary = Some(first);
    let tcp = match pending {
        Pending::Connected(tcp) => tcp,
        Pending::Listening(listener) => {
            match tokio::time::timeout(limit, listener.accept()).await {
                Ok(Ok((tcp, from))) => {
                    rec.push(
                        data_label,
                        Kind::Note,
                        format!("the server connected from {from}"),
                    );
                    tcp
                }
                Ok(Err(e)) => return Err(ProbeError::Io(e)),
                Err(_) => {
                    rec.push(data_label, Kind::Note, "the server did not connect");
                    out.last = conn.reply().await.ok();
                    return Ok(out);
                }
            }
        }
    };
    let mut stream = match tls {
        DataTls::Plain => DataStream::Plain(tcp),
        DataTls::With(config) => {
            match handshake(tcp, Arc::clone(config), name, data_label, &rec, limit).await {
                Ok((stream, info)) => {
                    out.tls = Some(info);
                    stream
                }
                Err(e) => {
                    out.tls_error = Some(e.to_string());
                    out.last = conn.reply().await.ok();
                    return Ok(out);
                }
            }
        }
    };
    match direction {
        Direction::Download => {
            let (data, total, clean, error) = stream.read_to_end(limit).await;
            rec.push(
                data_label,
                Kind::Received,
                format!(
                    "{total} bytes, {}",
                    match (&error, clean) {
                        (None, true) => "then a clean end (close_notify)".to_string(),
                        (Some(e), _) => format!("then: {e}"),
                        (None, false) => "then an end without close_notify".to_string(),
                    }
                ),
            );
            out.data = data;
            out.bytes = total;
            out.clean_end = clean;
            if clean {
                // Answer the server's close_notify with ours (some servers,
                // e.g. vsftpd with strict_ssl_write_shutdown, wait for it).
                stream.close(limit).await;
            }
        }
        Direction::Upload(bytes) => match stream.write_and_close(bytes, limit).await {
            Ok(()) => {
                rec.push(
                    data_label,
                    Kind::Sent,
                    format!("{} bytes, then close_notify", bytes.len()),
                );
                out.bytes = bytes.len() as u64;
                out.clean_end = true;
            }
            Err(e) => rec.push(data_label, Kind::Note, format!("sending failed: {e}")),
        },
    }
    drop(stream);
    out.last = Some(conn.reply().await?);
    Ok(out)
}

/// Set up an active data port with EPRT (RFC 2428 §2) on the control
/// connection's local address.
pub async fn active_eprt(conn: &mut Conn) -> Result<(TcpListener, Reply), ProbeError> {
    let listener = TcpListener::bind(SocketAddr::new(conn.local.ip(), 0)).await?;
    let addr = listener.local_addr()?;
    let reply = conn
        .cmd(&format!("EPRT {}", address::format_eprt_arg(addr)))
        .await?;
    Ok((listener, reply))
}

/// `CODE text` of a transfer's last reply, or what happened instead.
pub fn last_line(t: &Transfer) -> String {
    match &t.last {
        Some(r) => line_of(r),
        None => "no final reply".into(),
    }
}
