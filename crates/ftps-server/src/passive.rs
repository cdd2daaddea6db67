//! Passive data ports (RFC 959 PASV, RFC 2428 EPSV): a listener on the
//! control connection's local address, inside the configured port range.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpListener;

use crate::config::PortRange;

/// Random probes into the range before giving up.
const BIND_ATTEMPTS: usize = 64;

/// Bind a listener for one data connection; it only ever accepts one.
pub async fn bind(ip: IpAddr, range: Option<&PortRange>) -> io::Result<TcpListener> {
    let Some(range) = range else {
        return TcpListener::bind(SocketAddr::new(ip, 0)).await;
    };
    let span = u32::from(range.end()) - u32::from(range.start()) + 1;
    let first = rand::random::<u32>() % span;
    let tries = (span as usize).min(BIND_ATTEMPTS);
    let mut last_error = io::Error::new(io::ErrorKind::AddrInUse, "passive port range exhausted");
    for i in 0..tries {
        let step = if tries == span as usize {
            i as u32
        } else {
            rand::random::<u32>()
        };
        let offset = (first + step) % span;
        let port = range.start().saturating_add(offset as u16);
        match TcpListener::bind(SocketAddr::new(ip, port)).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_inside_the_range() {
        let range = PortRange::new(40100, 40110).unwrap();
        let mut held = Vec::new();
        for _ in 0..5 {
            let l = bind("127.0.0.1".parse().unwrap(), Some(&range))
                .await
                .unwrap();
            assert!(range.contains(l.local_addr().unwrap().port()));
            held.push(l);
        }
    }

    #[tokio::test]
    async fn exhausted_range_is_an_error() {
        let range = PortRange::new(40120, 40121).unwrap();
        let _a = bind("127.0.0.1".parse().unwrap(), Some(&range))
            .await
            .unwrap();
        let _b = bind("127.0.0.1".parse().unwrap(), Some(&range))
            .await
            .unwrap();
        assert!(bind("127.0.0.1".parse().unwrap(), Some(&range))
            .await
            .is_err());
    }
}
