//! Data connections of the test client: `PASV` and `EPSV`
//! ([`Client::pasv`], [`Client::epsv`]), whole transfers over passive data
//! connections, PROT P with the control connection's TLS session resumed
//! ([`Client::download`], [`Client::upload`], [`Client::retr`],
//! [`Client::stor`], and their `_with` variants for another TLS
//! configuration) or PROT C ([`Client::download_clear`]), and the bounded
//! helpers for tests that drive a data connection themselves
//! ([`tcp_connect`], [`data_tls`], [`read_all`], [`write_all_and_close`]).

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;

use ftps_proto::reply::Reply;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{tls_connect, Client, TlsData, CONNECT_TIMEOUT, DATA_TIMEOUT};

/// Client TLS handshake on a data connection with the given configuration
/// (share the control connection's `Arc` to resume its session).
pub async fn data_tls(tcp: TcpStream, config: &Arc<ClientConfig>) -> io::Result<TlsData> {
    tls_connect(tcp, config).await
}

/// TCP connect, bounded.
pub async fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .unwrap_or_else(|_| panic!("connect to {addr} timed out"))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    tcp.set_nodelay(true).unwrap();
    tcp
}

/// Read everything until the peer closes, bounded by [`DATA_TIMEOUT`].
pub async fn read_all<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(DATA_TIMEOUT, stream.read_to_end(&mut out)).await {
        Ok(Ok(_)) => Ok(out),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "data read timed out",
        )),
    }
}

/// Write everything and close cleanly (TLS close_notify, then TCP FIN), bounded.
pub async fn write_all_and_close<S: AsyncWrite + Unpin>(
    stream: &mut S,
    data: &[u8],
) -> io::Result<()> {
    let work = async {
        stream.write_all(data).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(DATA_TIMEOUT, work).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "data write timed out",
        )),
    }
}

impl Client {
    /// PASV (227) and the address it announces.
    pub async fn pasv(&mut self) -> SocketAddr {
        let reply = self.expect("PASV", 227).await;
        let addr: SocketAddrV4 = ftps_proto::address::parse_pasv_reply_text(&reply.text())
            .unwrap_or_else(|e| panic!("bad 227 text: {e:?}\n{}", self.dialogue()));
        SocketAddr::V4(addr)
    }

    /// EPSV (229) and the address to connect to (the control peer's address).
    pub async fn epsv(&mut self) -> SocketAddr {
        let reply = self.expect("EPSV", 229).await;
        let port = ftps_proto::address::parse_epsv_reply_text(&reply.text())
            .unwrap_or_else(|e| panic!("bad 229 text: {e:?}\n{}", self.dialogue()));
        SocketAddr::new(self.peer.ip(), port)
    }

    /// EPSV, `command` (150), connect, TLS (resuming the control session),
    /// read to the end, 226. Returns the data.
    pub async fn download(&mut self, command: &[u8]) -> Vec<u8> {
        let config = self.config();
        self.download_with(command, &config).await
    }

    /// Like [`download`](Self::download) with a given data TLS configuration.
    pub async fn download_with(&mut self, command: &[u8], config: &Arc<ClientConfig>) -> Vec<u8> {
        let addr = self.epsv().await;
        self.send_line_bytes(command).await;
        self.expect_reply(150).await;
        let tcp = tcp_connect(addr).await;
        let mut tls = match data_tls(tcp, config).await {
            Ok(tls) => tls,
            Err(e) => panic!("data TLS handshake: {e}\n{}", self.dialogue()),
        };
        let data = match read_all(&mut tls).await {
            Ok(data) => data,
            Err(e) => panic!("data read: {e}\n{}", self.dialogue()),
        };
        self.note(format!("data: {} bytes received", data.len()));
        self.expect_reply(226).await;
        data
    }

    /// EPSV, `command` (150), connect, TLS with `config`, read what comes,
    /// then the final reply, whatever it is. Never panics on the data side.
    pub async fn try_download_with(
        &mut self,
        command: &[u8],
        config: &Arc<ClientConfig>,
    ) -> (Vec<u8>, Reply) {
        let addr = self.epsv().await;
        self.send_line_bytes(command).await;
        self.expect_reply(150).await;
        let tcp = tcp_connect(addr).await;
        let mut data = Vec::new();
        match data_tls(tcp, config).await {
            Ok(mut tls) => {
                let kind = tls.get_ref().1.handshake_kind();
                match read_all(&mut tls).await {
                    Ok(d) => data = d,
                    Err(e) => self.note(format!("data ({kind:?} handshake): {e}")),
                }
            }
            Err(e) => self.note(format!("data TLS handshake: {e}")),
        }
        let reply = self.read_reply().await;
        (data, reply)
    }

    /// Download a listing over a plain (PROT C) data connection.
    pub async fn download_clear(&mut self, command: &[u8]) -> Vec<u8> {
        let addr = self.epsv().await;
        self.send_line_bytes(command).await;
        self.expect_reply(150).await;
        let mut tcp = tcp_connect(addr).await;
        let data = read_all(&mut tcp).await.unwrap();
        self.expect_reply(226).await;
        data
    }

    /// RETR over a passive PROT P data connection.
    pub async fn retr(&mut self, path: &str) -> Vec<u8> {
        self.download(format!("RETR {path}").as_bytes()).await
    }

    /// EPSV, `command` (150), connect, TLS (resuming the control session),
    /// write `data`, close_notify, 226. Returns the 150 reply.
    pub async fn upload(&mut self, command: &[u8], data: &[u8]) -> Reply {
        let config = self.config();
        self.upload_with(command, data, &config).await
    }

    /// Like [`upload`](Self::upload) with a given data TLS configuration.
    pub async fn upload_with(
        &mut self,
        command: &[u8],
        data: &[u8],
        config: &Arc<ClientConfig>,
    ) -> Reply {
        let addr = self.epsv().await;
        self.send_line_bytes(command).await;
        let started = self.expect_reply(150).await;
        let tcp = tcp_connect(addr).await;
        let mut tls = match data_tls(tcp, config).await {
            Ok(tls) => tls,
            Err(e) => panic!("data TLS handshake: {e}\n{}", self.dialogue()),
        };
        if let Err(e) = write_all_and_close(&mut tls, data).await {
            panic!("data write: {e}\n{}", self.dialogue());
        }
        // The server answers our close_notify with its own; drain it.
        let _ = read_all(&mut tls).await;
        self.note(format!("data: {} bytes sent", data.len()));
        self.expect_reply(226).await;
        started
    }

    /// STOR over a passive PROT P data connection.
    pub async fn stor(&mut self, path: &str, data: &[u8]) {
        self.upload(format!("STOR {path}").as_bytes(), data).await;
    }
}
