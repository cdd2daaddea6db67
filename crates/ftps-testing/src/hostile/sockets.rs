//! Raw connections for hostile tests: bounded [`connect`], [`connect_from`]
//! another local address, [`read_line_raw`], connections reset instead of
//! closed ([`reset`], [`reset_tls`], [`arm_reset`]), and TLS records as
//! bytes ([`client_hello`], [`FATAL_ALERT`]).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

use super::show;
use crate::client::{self, Client, Control, TlsData};

/// Connect (bounded).
pub async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
        Ok(Err(e)) => Err(format!("connect {addr}: {e}")),
        Err(_) => Err(format!("connect {addr}: timed out")),
    }
}

/// Connect from a given local address (e.g. 127.0.0.2: another client host).
pub async fn connect_from(src: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(src, 0))?;
    socket.connect(addr).await
}

/// Read raw bytes up to and including the first LF, or to EOF.
pub async fn read_line_raw(tcp: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut byte = [0u8; 256];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut byte)).await {
            Err(_) => return Err(format!("timeout after {:?}", show(&out))),
            Ok(Ok(0)) => return Ok(out),
            Ok(Ok(n)) => {
                out.extend_from_slice(&byte[..n]);
                if out.contains(&b'\n') {
                    return Ok(out);
                }
            }
            Ok(Err(e)) => {
                if out.is_empty() {
                    return Err(format!("read: {e}"));
                }
                return Ok(out);
            }
        }
    }
}

/// Reset (RST) a TCP connection instead of closing it (SO_LINGER 0).
pub fn reset(tcp: TcpStream) {
    let _ = tcp.set_zero_linger();
    drop(tcp);
}

/// Reset the TCP connection under a TLS data stream.
pub fn reset_tls(tls: TlsData) {
    let (tcp, _) = tls.into_inner();
    reset(tcp);
}

/// Make the control connection's socket reset when the client is dropped.
pub fn arm_reset(c: &Client) {
    match &c.stream {
        Control::Plain(tcp) => {
            let _ = tcp.set_zero_linger();
        }
        Control::Tls(tls) => {
            let _ = tls.get_ref().0.set_zero_linger();
        }
        Control::Detached => {}
    }
}

/// The first flight of a real TLS client (a complete ClientHello record).
pub fn client_hello(cert_pem: &Path) -> Vec<u8> {
    let config = client::config_no_resumption(cert_pem);
    let name = rustls_pki_types::ServerName::try_from(client::SERVER_NAME).unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

/// A plaintext fatal TLS alert record (handshake_failure).
pub const FATAL_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
