//! Passive data ports (RFC 959 PASV, RFC 2428 EPSV): a listener on the
//! control connection's local address, inside the configured port range,
//! and the task that waits on it for the client's data connection.
//!
//! The waiting task accepts the connection as soon as it arrives (only from
//! the control connection's peer address: RFC 2577 port stealing), not only
//! once the transfer command has come. Clients such as curl connect and send
//! their TLS ClientHello right after the EPSV reply and then, while their
//! handshake waits for the server's answer, do not read the control
//! connection: the replies to TYPE and SIZE sit unread until a timer in the
//! client fires (about 200 ms per file). So when PROT P is in force and the
//! first bytes are a TLS handshake record, the task starts the TLS handshake
//! at once: it reads the ClientHello and sends the server's first flight,
//! then stops before reading the client's Finished. The transfer command
//! finishes the handshake, when the transfer's direction is known and so
//! whether the connection may carry session tickets (see [`crate::tls`]).
//! An upload command looks at the port before its 150 reply: when the
//! client has started TLS early, the upload finishes the handshake first so
//! that the session tickets reach the client before the 150 (see
//! `transfer::early_upload_tickets`). Every check on the data connection
//! (session reuse, the client certificate, RFC 4217 §10.2 and §15.1.2)
//! still decides after the 150 reply, exactly as for a connection that
//! arrives later: a refusal is a 522.
//!
//! Behind a load balancer ([`DataProxy`]) a data connection comes from the
//! balancer and starts with a PROXY protocol header (see [`crate::proxy`]):
//! it is accepted only from a trusted balancer, and the header's client
//! address takes the place of the TCP peer in the port-stealing check. The
//! address PASV announces ([`announced_address`]) is the configured one, a
//! host name resolved for each reply, or the balancer's address the client
//! connected to.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::config::{PassiveSettings, PortRange, TrustedRange};
use crate::tls::DataTls;

/// Largest ClientHello read while starting TLS early (a TLS record's payload
/// is at most 2^14 bytes; a ClientHello may span records).
const MAX_EARLY_HELLO_BYTES: usize = 64 * 1024;

/// What the passive port holds when the transfer asks for its connection.
pub enum Arrival {
    /// The connection, as accepted (nothing read from it).
    Tcp(TcpStream),
    /// The client's ClientHello came before the transfer command and the
    /// server's first flight has been sent; the transfer finishes the
    /// handshake with this connection state and configuration.
    TlsStarted(TcpStream, Box<rustls::ServerConnection>, DataTls),
    /// Starting TLS early failed (not a valid ClientHello, or the peer left).
    TlsFailed(String),
}

/// What the waiting task needs to start TLS early.
pub struct EarlyTls {
    /// The data connection's TLS configuration (see [`DataTls`]).
    pub tls: DataTls,
    /// Whether PROT P is in force right now; updated by the control connection.
    pub private: Arc<AtomicBool>,
    /// Limit on reading the ClientHello and sending the first flight.
    pub handshake_timeout: Duration,
    /// Set once a data connection of this control connection started TLS
    /// before its transfer command.
    pub started_before: Arc<AtomicBool>,
}

/// PROXY protocol on passive data connections: who may send headers, and
/// how long a header may take.
#[derive(Debug, Clone)]
pub struct DataProxy {
    /// The balancers (`proxy_protocol.trusted`).
    pub trusted: Vec<TrustedRange>,
    /// Bound on reading the header.
    pub header_timeout: Duration,
}

/// Bound on resolving `passive_host` for one PASV reply.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The IPv4 address a PASV reply announces: `passive_address`, else the
/// first IPv4 address `passive_host` resolves to now (so a dynamic address
/// is followed), else the balancer's address the client connected to, else
/// this end of the control connection (`local`).
pub async fn announced_address(
    passive: &PassiveSettings,
    balancer: Option<IpAddr>,
    local: IpAddr,
) -> io::Result<IpAddr> {
    if let Some(address) = passive.address {
        return Ok(address);
    }
    if let Some(host) = &passive.host {
        let lookup = tokio::net::lookup_host((host.as_str(), 0));
        let addresses = tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("resolving {host}")))??;
        return addresses
            .map(|a| a.ip().to_canonical())
            .find(IpAddr::is_ipv4)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host} has no IPv4 address"),
                )
            });
    }
    Ok(balancer.map(|ip| ip.to_canonical()).unwrap_or(local))
}

/// A passive port with its waiting task; dropping it closes the port.
pub struct PassivePort {
    take: oneshot::Sender<()>,
    arrival: oneshot::Receiver<Arrival>,
    task: JoinHandle<()>,
    /// Set by the waiting task once a TLS ClientHello has arrived.
    tls_starting: Arc<AtomicBool>,
    /// The client started TLS early on an earlier data connection.
    expect_early: bool,
}

impl Drop for PassivePort {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PassivePort {
    /// Start waiting on `listener` for a connection from `peer`. Unless a
    /// data command takes the port within `unused` (`data_connect_timeout_secs`),
    /// the port closes, with any connection it accepted. With `proxy`,
    /// connections must come from a trusted balancer and name `peer` in
    /// their PROXY protocol header.
    pub fn spawn(
        listener: TcpListener,
        peer: IpAddr,
        early: Option<EarlyTls>,
        unused: Duration,
        proxy: Option<DataProxy>,
    ) -> PassivePort {
        let (take, take_rx) = oneshot::channel();
        let (arrival_tx, arrival) = oneshot::channel();
        let tls_starting = Arc::new(AtomicBool::new(false));
        let expect_early = early
            .as_ref()
            .is_some_and(|e| e.started_before.load(Ordering::Relaxed));
        let starting = Arc::clone(&tls_starting);
        let expires = tokio::time::Instant::now() + unused;
        let task = tokio::spawn(async move {
            let take = Take {
                rx: take_rx,
                taken: false,
                expires,
            };
            if let Some(ready) = wait(listener, peer, early, proxy, take, &starting).await {
                let _ = arrival_tx.send(ready);
            }
        });
        PassivePort {
            take,
            arrival,
            task,
            tls_starting,
            expect_early,
        }
    }

    /// The data connection, for the transfer that has just started: waits
    /// for it to arrive (and for an early TLS start to reach its pause).
    /// `None` when the listener failed.
    pub async fn take(mut self) -> Option<Arrival> {
        let take = std::mem::replace(&mut self.take, oneshot::channel().0);
        let _ = take.send(());
        (&mut self.arrival).await.ok()
    }

    /// The data connection if its TLS handshake has started early: at
    /// once when it waits at the pause, or within `limit` when the
    /// ClientHello is being read or this client started TLS early on an
    /// earlier data connection (it may be a moment late this time).
    /// Otherwise the port is given back.
    pub async fn take_started(mut self, limit: Duration) -> Result<Arrival, PassivePort> {
        if let Ok(arrival) = self.arrival.try_recv() {
            return Ok(arrival);
        }
        if !self.tls_starting.load(Ordering::Acquire) && !self.expect_early {
            return Err(self);
        }
        match tokio::time::timeout(limit, &mut self.arrival).await {
            Ok(Ok(arrival)) => Ok(arrival),
            _ => Err(self),
        }
    }
}

/// The transfer's request for the connection, and the time the port
/// closes unless a request came by then.
struct Take {
    rx: oneshot::Receiver<()>,
    taken: bool,
    expires: tokio::time::Instant,
}

impl Take {
    /// Completes when a data command asks for the connection (true), or
    /// when the port expires unused or its owner is gone (false). Once it
    /// has asked, completes at once.
    async fn asked(&mut self) -> bool {
        if self.taken {
            return true;
        }
        tokio::select! {
            asked = &mut self.rx => {
                self.taken = asked.is_ok();
                self.taken
            }
            _ = tokio::time::sleep_until(self.expires) => {
                debug!("passive port unused for data_connect_timeout_secs: closed");
                false
            }
        }
    }
}

/// Accept the client's data connection: the first from the control
/// connection's peer (with `proxy`: the first from a trusted balancer whose
/// PROXY header names that peer). Others are refused and the wait goes on.
/// `None` when the listener fails.
async fn accept_client(
    listener: &TcpListener,
    peer: IpAddr,
    proxy: Option<&DataProxy>,
) -> Option<TcpStream> {
    loop {
        let (mut stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "passive accept failed");
                return None;
            }
        };
        let client = match proxy {
            None => from.ip(),
            Some(proxy) => {
                match crate::proxy::accept_header(
                    &mut stream,
                    from,
                    &proxy.trusted,
                    proxy.header_timeout,
                )
                .await
                {
                    Ok(client) => client.peer.ip(),
                    Err(error) => {
                        warn!(%peer, %from, %error, "data connection refused: PROXY protocol");
                        continue;
                    }
                }
            }
        };
        if client.to_canonical() == peer.to_canonical() {
            let _ = stream.set_nodelay(true);
            return Some(stream);
        }
        // Port stealing (RFC 4217 §15.2.6, RFC 2577): refuse and
        // keep waiting for the real client.
        warn!(%peer, intruder = %client, "data connection from a foreign address refused");
    }
}

/// Accept the connection, start TLS early when it applies, and hand the
/// result over once the transfer asks (`None`: nothing to hand over, or
/// the port expired unused).
async fn wait(
    listener: TcpListener,
    peer: IpAddr,
    early: Option<EarlyTls>,
    proxy: Option<DataProxy>,
    mut take: Take,
    tls_starting: &AtomicBool,
) -> Option<Arrival> {
    let mut tcp = tokio::select! {
        biased;
        accepted = accept_client(&listener, peer, proxy.as_ref()) => accepted?,
        // The port expires unless a data command came; once one has,
        // the transfer's own deadline governs.
        false = take.asked() => return None,
    };
    drop(listener);
    let ready = match early {
        None => Arrival::Tcp(tcp),
        Some(early) => {
            let mut head = [0u8; 2];
            let starts_tls = tokio::select! {
                biased;
                // The transfer asked first: it runs the handshake itself.
                asked = take.asked() => return asked.then_some(Arrival::Tcp(tcp)),
                peeked = tcp.peek(&mut head) => {
                    // A TLS handshake record (content type 22, version 3.x),
                    // while PROT P is in force: a PROT C upload is never read here.
                    matches!(peeked, Ok(2)) && head == [0x16, 0x03] && early.private.load(Ordering::Relaxed)
                }
            };
            if starts_tls {
                tls_starting.store(true, Ordering::Release);
                early.started_before.store(true, Ordering::Relaxed);
                // Handed over at once: an upload command may look at it
                // before its 150 reply (see `PassivePort::take_started`).
                return Some(
                    match tokio::time::timeout(
                        early.handshake_timeout,
                        start_tls(&mut tcp, &early.tls),
                    )
                    .await
                    {
                        Ok(Ok(conn)) => Arrival::TlsStarted(tcp, conn, early.tls),
                        Ok(Err(error)) => Arrival::TlsFailed(error),
                        Err(_) => Arrival::TlsFailed("TLS handshake timed out".into()),
                    },
                );
            }
            Arrival::Tcp(tcp)
        }
    };
    take.asked().await.then_some(ready)
}

/// Read the ClientHello and send the server's first flight; stop there.
pub async fn start_tls(
    tcp: &mut TcpStream,
    tls: &DataTls,
) -> Result<Box<rustls::ServerConnection>, String> {
    let mut conn =
        rustls::ServerConnection::new(Arc::clone(&tls.config)).map_err(|e| e.to_string())?;
    let mut total = 0usize;
    while !conn.wants_write() {
        tcp.readable().await.map_err(|e| e.to_string())?;
        match feed_once(tcp, &mut conn) {
            Ok(None) => {}
            Ok(Some(n)) => {
                total += n;
                if total > MAX_EARLY_HELLO_BYTES {
                    return Err("oversized TLS ClientHello".into());
                }
            }
            Err(error) => {
                // Send rustls' alert before giving up, as a full handshake would.
                let _ = flush(tcp, &mut conn).await;
                return Err(error);
            }
        }
    }
    flush(tcp, &mut conn).await.map_err(|e| e.to_string())?;
    Ok(Box::new(conn))
}

/// Read what the client has sent so far (one non-blocking read) and feed it
/// to `conn`. `Ok(None)`: nothing there yet. A TLS error leaves its alert in
/// `conn` for [`flush`].
fn feed_once(
    tcp: &TcpStream,
    conn: &mut rustls::ServerConnection,
) -> Result<Option<usize>, String> {
    let mut buf = [0u8; 4096];
    let n = match tcp.try_read(&mut buf) {
        Ok(0) => return Err("connection closed during the TLS handshake".into()),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut input = buf.get(..n).unwrap_or_default();
    while !input.is_empty() {
        conn.read_tls(&mut input).map_err(|e| e.to_string())?;
    }
    conn.process_new_packets().map_err(|e| e.to_string())?;
    if conn.is_handshaking() && !conn.wants_write() {
        // Part of the client's flight is here and we have nothing to send
        // that would carry its ACK. A client that sends its
        // ChangeCipherSpec and Finished in two small writes with Nagle on
        // (lftp with GnuTLS) holds the Finished until that ACK comes, and
        // the kernel would delay it ~40 ms: acknowledge now.
        let _ = socket2::SockRef::from(tcp).set_tcp_quickack(true);
    }
    Ok(Some(n))
}

/// Feed the handshake bytes the client has already sent (never waits for
/// more). `Ok(true)` when the handshake is now complete; a TLS error's alert
/// is left in `conn` for [`flush`].
pub fn advance_handshake(
    tcp: &TcpStream,
    conn: &mut rustls::ServerConnection,
) -> Result<bool, String> {
    while conn.is_handshaking() {
        if feed_once(tcp, conn)?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Drive a started handshake to its end: feed the client's records as they
/// arrive and send what rustls answers on the way (after a
/// HelloRetryRequest, the real flight). Tickets and alerts are left queued
/// for [`flush`].
pub async fn drive_handshake(
    tcp: &mut TcpStream,
    conn: &mut rustls::ServerConnection,
) -> Result<(), String> {
    while !advance_handshake(tcp, conn)? {
        if conn.wants_write() {
            flush(tcp, conn).await.map_err(|e| e.to_string())?;
        }
        tcp.readable().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Send what rustls has queued (handshake messages, tickets, alerts).
pub async fn flush(tcp: &mut TcpStream, conn: &mut rustls::ServerConnection) -> io::Result<()> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    tcp.write_all(&out).await
}

/// Random probes into the range before giving up.
const BIND_ATTEMPTS: usize = 64;

/// Where the system's ephemeral port range is configured (Linux).
const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// The system's ephemeral port range (Linux's default when it cannot be
/// read): where passive ports are picked when no `passive_ports` is set.
fn system_ephemeral_range() -> Option<PortRange> {
    static RANGE: std::sync::OnceLock<Option<PortRange>> = std::sync::OnceLock::new();
    *RANGE.get_or_init(|| {
        std::fs::read_to_string(EPHEMERAL_RANGE_FILE)
            .ok()
            .and_then(|text| parse_port_range(&text))
            .or_else(|| PortRange::new(32768, 60999).ok())
    })
}

/// `"32768\t60999\n"` (the format of `ip_local_port_range`).
fn parse_port_range(text: &str) -> Option<PortRange> {
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    match (parts.next(), parts.next()) {
        (Some(Ok(start)), Some(Ok(end))) => PortRange::new(start, end).ok(),
        _ => None,
    }
}

/// Bind a listener for one data connection; it only ever accepts one.
///
/// The port is chosen here, at random in `range` or else in the system's
/// ephemeral range, not by the kernel (`bind` to port 0): the kernel's
/// search skips every port that still has a TIME_WAIT connection and checks
/// each candidate under a lock, and after a few thousand data connections
/// (each leaves one TIME_WAIT behind on this side) that search cost
/// 0.7–1.8 ms of server CPU per file, measured with 12,000–32,000 TIME_WAIT
/// sockets on 127.0.0.1 (0.13–0.23 ms per file in all with a chosen port).
/// A listener sets SO_REUSEADDR, so a port whose only other sockets are in
/// TIME_WAIT can be bound again.
pub async fn bind(ip: IpAddr, range: Option<&PortRange>) -> io::Result<TcpListener> {
    if let Some(range) = range {
        return bind_in(ip, range).await;
    }
    if let Some(range) = system_ephemeral_range() {
        if let Ok(listener) = bind_in(ip, &range).await {
            return Ok(listener);
        }
    }
    // No luck in the ephemeral range: the kernel may still find a port.
    TcpListener::bind(SocketAddr::new(ip, 0)).await
}

async fn bind_in(ip: IpAddr, range: &PortRange) -> io::Result<TcpListener> {
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

    // Fixed ranges below the ephemeral range (Linux: 32768-60999), where
    // `without_a_range_binds_in_the_ephemeral_range`, running at the same
    // time, and every bind(0) on the machine pick their ports.
    #[tokio::test]
    async fn binds_inside_the_range() {
        let range = PortRange::new(20100, 20110).unwrap();
        let mut held = Vec::new();
        for _ in 0..5 {
            let l = bind("127.0.0.1".parse().unwrap(), Some(&range))
                .await
                .unwrap();
            assert!(range.contains(l.local_addr().unwrap().port()));
            held.push(l);
        }
    }

    #[test]
    fn reads_the_ephemeral_range_format() {
        let range = parse_port_range("32768\t60999\n").unwrap();
        assert_eq!((range.start(), range.end()), (32768, 60999));
        assert!(parse_port_range("60999 32768").is_none());
        assert!(parse_port_range("80 90").is_none());
        assert!(parse_port_range("").is_none());
    }

    #[tokio::test]
    async fn without_a_range_binds_in_the_ephemeral_range() {
        let range = system_ephemeral_range().unwrap();
        for _ in 0..20 {
            let l = bind("127.0.0.1".parse().unwrap(), None).await.unwrap();
            assert!(range.contains(l.local_addr().unwrap().port()));
        }
    }

    #[tokio::test]
    async fn exhausted_range_is_an_error() {
        let range = PortRange::new(20120, 20121).unwrap();
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
