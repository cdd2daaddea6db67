//! The client set-up state machine with arbitrary options and server replies.
//!
//! Invariants: no panic; after `Done` `poll_step` stays `None`. Errors are
//! ignored and the events go on, so the machine is also driven past them.
#![no_main]

use arbitrary::Arbitrary;
use ftps_proto::client::{ClientLogin, LoginOptions, LoginStep, ProtTiming, Security};
use ftps_proto::reply::Reply;
use ftps_proto::session::DataProtection;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct OptionsIn {
    security: u8,
    user: Vec<u8>,
    password: Vec<u8>,
    account: Option<Vec<u8>>,
    before_auth: Vec<Vec<u8>>,
    after_login: Vec<Vec<u8>>,
    prot_timing: u8,
    private: bool,
    ccc: bool,
    auth_ssl_fallback: bool,
}

#[derive(Debug, Arbitrary)]
enum Event {
    /// A reply to whatever was sent last (or to nothing).
    Reply(u16),
    /// The I/O layer reports the TLS handshake done (asked for or not).
    TlsEstablished,
    /// Ask for the next step.
    Poll,
}

#[derive(Debug, Arbitrary)]
struct Input {
    options: OptionsIn,
    greetings: Vec<u16>,
    events: Vec<Event>,
}

fuzz_target!(|input: Input| {
    let o = input.options;
    let options = LoginOptions {
        security: match o.security % 3 {
            0 => Security::Explicit,
            1 => Security::Implicit,
            _ => Security::None,
        },
        user: o.user,
        password: o.password,
        account: o.account,
        before_auth: o.before_auth,
        after_login: o.after_login,
        prot_timing: match o.prot_timing % 3 {
            0 => ProtTiming::AfterAuth,
            1 => ProtTiming::AfterLogin,
            _ => ProtTiming::Manual,
        },
        protection: if o.private {
            DataProtection::Private
        } else {
            DataProtection::Clear
        },
        ccc: o.ccc,
        auth_ssl_fallback: o.auth_ssl_fallback,
    };
    let mut login = ClientLogin::new(options);
    let mut greeted = false;
    for code in input.greetings {
        match login.handle_greeting(&Reply::new(code, "hello")) {
            Ok(true) => {
                greeted = true;
                break;
            }
            Ok(false) => {}
            Err(_) => return,
        }
    }
    if !greeted {
        assert_eq!(login.poll_step(), None, "a step before the 220 greeting");
        return;
    }
    let mut finished = false;
    for event in input.events {
        match event {
            Event::Reply(code) => {
                let _ = login.handle_reply(&Reply::new(code, "text"));
            }
            Event::TlsEstablished => login.handle_tls_established(),
            Event::Poll => {
                let step = login.poll_step();
                if finished {
                    assert_eq!(step, None, "a step after Done");
                }
                if matches!(step, Some(LoginStep::Done(_))) {
                    finished = true;
                }
            }
        }
    }
});
