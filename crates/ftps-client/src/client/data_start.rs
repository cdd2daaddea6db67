//! The start of a transfer: the command, its 1xx reply, the data
//! connection (accepted, in active mode) and its TLS handshake (RFC 4217
//! §7, §10.2), in the order the protocol crate's
//! [`DataOpening`](ftps_proto::client::data::DataOpening) decides — the
//! RFC order, except for servers that wait for the handshake before their
//! 1xx reply. One loop waits for whichever comes first: a reply, the
//! server's connection, the end of the handshake, the moment to start it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ftps_proto::client::data::{DataOpening, DataStep};
use ftps_proto::reply::Reply;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::Client;
use crate::control::Stream;
use crate::data::PendingData;
use crate::Error;

type Handshake = Pin<Box<dyn Future<Output = Result<TlsStream<TcpStream>, Error>> + Send>>;

/// What one turn of the loop saw.
enum Event {
    Reply(Result<Reply, Error>),
    Accepted(std::io::Result<TcpStream>),
    Tls(Result<Box<TlsStream<TcpStream>>, Error>),
    Timeout,
    AcceptTimeout,
}

/// The data connection while it is being set up.
struct Pending {
    tcp: Option<TcpStream>,
    listener: Option<TcpListener>,
    handshake: Option<Handshake>,
    tls: Option<Box<TlsStream<TcpStream>>>,
    /// Until when the server may take to connect (active mode, after 1xx).
    accept_by: Option<Instant>,
}

impl Client {
    /// Send the transfer command `line` and set up its data connection
    /// (already connected in passive mode, listening in active mode);
    /// the data stream and the 1xx reply.
    pub(super) async fn start_transfer(
        &mut self,
        pending: PendingData,
        line: &[u8],
        verb: &str,
        protected: bool,
    ) -> Result<(Stream, Reply), Error> {
        let reply_time = self.control.last_reply_time();
        let mut opening = DataOpening::new(protected, self.handshake_order, reply_time);
        self.control.send(line).await?;
        let mut data = Pending {
            tcp: None,
            listener: None,
            handshake: None,
            tls: None,
            accept_by: None,
        };
        match pending {
            PendingData::Connected(tcp) => {
                data.tcp = Some(tcp);
                opening.handle_connected(std::time::Instant::now());
            }
            PendingData::Listening(listener) => data.listener = Some(listener),
        }
        loop {
            while let Some(step) = opening.poll_step() {
                match step {
                    DataStep::StartTls => self.begin_handshake(&mut data)?,
                    DataStep::Ready(reply) => {
                        self.handshake_order = opening.order();
                        return Ok((self.data_stream(data)?, reply));
                    }
                    DataStep::Refused(reply) => {
                        self.handshake_order = opening.order();
                        return Err(self.unexpected(verb, "150", reply));
                    }
                }
            }
            if opening.got_preliminary() && data.listener.is_some() && data.accept_by.is_none() {
                data.accept_by = Some(Instant::now() + self.options.connect_timeout);
            }
            match self.next_event(&opening, &mut data).await {
                Event::Reply(reply) => opening.handle_reply(&reply?),
                Event::Accepted(tcp) => {
                    let tcp = tcp?;
                    let _ = tcp.set_nodelay(true);
                    data.tcp = Some(tcp);
                    data.listener = None;
                    opening.handle_connected(std::time::Instant::now());
                }
                Event::Tls(Ok(tls)) => {
                    data.handshake = None;
                    data.tls = Some(tls);
                    opening.handle_tls_established();
                }
                Event::Tls(Err(e)) => {
                    self.handshake_order = opening.order();
                    return Err(self.after_failed_data(e, verb, &opening).await);
                }
                Event::Timeout => opening.handle_timeout(std::time::Instant::now()),
                Event::AcceptTimeout => {
                    return Err(Error::Timeout("waiting for the server's data connection"))
                }
            }
        }
    }

    /// Wait for the next thing that happens to the transfer being set up.
    async fn next_event(&mut self, opening: &DataOpening, data: &mut Pending) -> Event {
        let wants_reply = opening.wants_reply();
        let deadline = opening.poll_timeout().map(Instant::from_std);
        let peer_ip = self.peer.ip().to_canonical();
        let far = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            reply = self.control.read_reply(), if wants_reply => Event::Reply(reply),
            tls = handshake_of(&mut data.handshake), if data.handshake.is_some() => {
                Event::Tls(tls.map(Box::new))
            }
            accepted = accept_from(data.listener.as_ref(), peer_ip), if data.listener.is_some() => {
                Event::Accepted(accepted)
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => Event::Timeout,
            _ = tokio::time::sleep_until(data.accept_by.unwrap_or(far)), if data.accept_by.is_some() => {
                Event::AcceptTimeout
            }
        }
    }

    /// Start the TLS handshake on the connected data connection.
    fn begin_handshake(&mut self, data: &mut Pending) -> Result<(), Error> {
        let tcp = data
            .tcp
            .take()
            .ok_or_else(|| Error::Protocol("TLS asked for before the data connection".into()))?;
        data.handshake = Some(Box::pin(Stream::connect_tls(
            tcp,
            self.tls.clone(),
            self.server_name.clone(),
            self.options.connect_timeout,
        )));
        Ok(())
    }

    /// The ready data connection: TLS (noting whether it resumed the
    /// control connection's session) or plain.
    fn data_stream(&mut self, data: Pending) -> Result<Stream, Error> {
        if let Some(tls) = data.tls {
            self.last_data_resumed =
                tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            return Ok(Stream::Tls(tls));
        }
        data.tcp
            .map(Stream::Plain)
            .ok_or_else(|| Error::Protocol("no data connection".into()))
    }

    /// The data connection's TLS failed: read what the server says about it
    /// (its 1xx if still to come, then the final 425 or 522) and return the
    /// error that explains most: the server's refusal, else the TLS error.
    async fn after_failed_data(&mut self, tls: Error, verb: &str, opening: &DataOpening) -> Error {
        let mut reply = None;
        for _ in 0..2 {
            match self.control.read_reply().await {
                Ok(r) if (100..200).contains(&r.code) && !opening.got_preliminary() => {
                    reply = Some(r);
                }
                Ok(r) => {
                    reply = Some(r);
                    break;
                }
                Err(e) => return e,
            }
        }
        match reply {
            Some(r) if !r.is_completion() && !(100..200).contains(&r.code) => {
                self.unexpected(verb, "226", r)
            }
            _ => tls,
        }
    }
}

/// The end of the running handshake (never, when there is none).
async fn handshake_of(handshake: &mut Option<Handshake>) -> Result<TlsStream<TcpStream>, Error> {
    match handshake {
        Some(running) => running.await,
        None => std::future::pending().await,
    }
}

/// Accept the server's data connection, refusing any other address (RFC
/// 2577: the data connection must come from the server).
async fn accept_from(
    listener: Option<&TcpListener>,
    peer_ip: std::net::IpAddr,
) -> std::io::Result<TcpStream> {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    loop {
        let (tcp, from) = listener.accept().await?;
        if from.ip().to_canonical() == peer_ip {
            return Ok(tcp);
        }
        tracing::warn!(%from, "data connection from a foreign address refused");
    }
}
