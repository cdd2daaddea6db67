//! The client's data-connection opening (`ftps_proto::client::data`) with
//! arbitrary settings, replies, connections, handshakes and times.
//!
//! Invariants: no panic; `StartTls` at most once and only once connected
//! and protected; at most one end (`Ready` or `Refused`) and no step after
//! it; `Ready` only after a 1xx reply, with the connection open and, when
//! protected, the handshake reported done; no timer once the handshake has
//! started.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use ftps_proto::client::data::{DataOpening, DataStep, HandshakeOrder};
use ftps_proto::reply::Reply;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Event {
    /// The data connection opened.
    Connected,
    /// A reply to the transfer command.
    Reply(u16),
    /// The I/O layer reports the handshake done (asked for or not).
    TlsEstablished,
    /// Time passes by this many milliseconds, then the timer is checked.
    Elapse(u16),
    /// Ask for the next step.
    Poll,
}

#[derive(Debug, Arbitrary)]
struct Input {
    protected: bool,
    order: u8,
    reply_time_ms: u32,
    events: Vec<Event>,
}

fuzz_target!(|input: Input| {
    let order = match input.order % 3 {
        0 => HandshakeOrder::Unknown,
        1 => HandshakeOrder::ReplyFirst,
        _ => HandshakeOrder::HandshakeFirst,
    };
    let reply_time = Duration::from_millis(u64::from(input.reply_time_ms));
    let mut d = DataOpening::new(input.protected, order, reply_time);
    let mut now = Instant::now();
    let (mut connected, mut preliminary, mut tls_started, mut tls_done, mut ended) =
        (false, false, false, false, false);
    for event in input.events {
        match event {
            Event::Connected => {
                connected = true;
                d.handle_connected(now);
            }
            Event::Reply(code) => {
                if (100..200).contains(&code) && d.wants_reply() {
                    preliminary = true;
                }
                d.handle_reply(&Reply::new(code, "x"));
            }
            Event::TlsEstablished => {
                if tls_started {
                    tls_done = true;
                }
                d.handle_tls_established();
            }
            Event::Elapse(ms) => {
                now += Duration::from_millis(u64::from(ms));
                d.handle_timeout(now);
            }
            Event::Poll => {}
        }
        while let Some(step) = d.poll_step() {
            assert!(!ended, "a step after the end: {step:?}");
            match step {
                DataStep::StartTls => {
                    assert!(!tls_started, "StartTls twice");
                    assert!(connected && input.protected, "StartTls too soon");
                    tls_started = true;
                }
                DataStep::Ready(reply) => {
                    assert!(reply.is_preliminary() && preliminary && connected);
                    assert!(!input.protected || tls_done, "Ready before TLS");
                    ended = true;
                }
                DataStep::Refused(reply) => {
                    assert!(!reply.is_preliminary());
                    ended = true;
                }
            }
        }
        if tls_started {
            assert_eq!(d.poll_timeout(), None, "a timer after the handshake started");
        }
    }
});
