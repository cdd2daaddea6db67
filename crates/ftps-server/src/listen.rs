//! Binding a listening socket: the FTP listeners and the metrics endpoint.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::ServerError;

/// Pending connections the kernel queues per listener. FTP servers speak
/// first, so a connection dropped from a full queue leaves its client
/// waiting for a greeting that never comes (tokio's default is 128).
pub const LISTEN_BACKLOG: u32 = 1024;

/// A listener on `addr`, with `SO_REUSEADDR` so a restart binds at once.
pub(crate) async fn bind_one(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let bind = || {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    bind().map_err(|source| ServerError::Bind { addr, source })
}
