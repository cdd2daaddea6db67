//! The server session state machine driven by arbitrary events: command
//! lines and I/O-layer answers delivered in any order, including answers to
//! requests that were never made.
//!
//! Time is an input too: the target keeps a clock that events move forward,
//! and reports received bytes and timer wake-ups at that time.
//!
//! Invariants: no panic; every reply code is in 100..=599; once the session
//! is closed (and its actions drained) no event produces another action;
//! there is no deadline once closed or while a transfer runs; a wake-up at or
//! after the deadline closes the session.
//! With FTPS_FUZZ_STOP_AT_CLOSE=1 in the environment the event stream stops
//! at close instead (the I/O layer drops the connection), which keeps the
//! after-close check from masking everything else while it is being fixed.
//! FTPS_FUZZ_TRACE=1 prints each event and the actions it produced (run the
//! target on one input file to see what a reproducer does).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use ftps_proto::entry::{Entry, EntryKind};
use ftps_proto::session::{
    Action, AnonymousTls, FsError, FsResponse, HashAlgorithm, HashDigest, HashFailure, LoginGrant,
    Policy, ReuseRefusal, ServerSession, SessionConfig, TlsFailure, TransferOutcome,
    TransferStarted,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct PolicyIn {
    require_tls: bool,
    require_prot_p: bool,
    require_session_reuse: bool,
    allow_ccc: bool,
    accept_upload_without_close_notify: bool,
}

impl PolicyIn {
    fn get(&self) -> Policy {
        Policy {
            require_tls: self.require_tls,
            require_prot_p: self.require_prot_p,
            require_session_reuse: self.require_session_reuse,
            allow_ccc: self.allow_ccc,
            accept_upload_without_close_notify: self.accept_upload_without_close_notify,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Ip {
    Loopback4,
    Loopback6,
    Mapped4,
    Other4([u8; 4]),
}

impl Ip {
    fn get(&self) -> IpAddr {
        match self {
            Ip::Loopback4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Ip::Loopback6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
            Ip::Mapped4 => IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
            Ip::Other4(o) => IpAddr::V4(Ipv4Addr::from(*o)),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct ConfigIn {
    implicit: bool,
    policy: PolicyIn,
    anonymous: Option<u8>,
    peer: Ip,
    local: Ip,
    max_login_failures: u8,
    login_timeout_secs: u16,
    idle_timeout_secs: u16,
}

#[derive(Debug, Arbitrary)]
enum Verb {
    User, Pass, Acct, Quit, Rein, Noop, Syst, Feat, Opts, Help, Stat, Site, Cwd, Cdup,
    Pwd, Mkd, Rmd, Dele, Rnfr, Rnto, Size, Mdtm, Type, Stru, Mode, Port, Pasv, Eprt,
    Epsv, Rest, Retr, Stor, Stou, Appe, Allo, List, Nlst, Mlsd, Mlst, Abor, Auth, Pbsz,
    Prot, Ccc, Mfmt, Hash, Rang,
}

/// Arguments that open doors quickly; the fuzzer finds the rest itself.
const CANNED: &[&str] = &[
    "TLS", "SSL", "TLS-P", "0", "P", "C", "S", "I", "A", "ALL", "1", "2", "anonymous",
    "alice", "127,0,0,1,7,208", "127,0,0,1,0,21", "|1|127.0.0.1|2000|", "|2|::1|2000|",
    "/", "..", "a/b", "MLST type;size;", "UTF8 ON", "HELP", "100", "/a/../../b",
    "20240229123456 f", "0 9", "1 0", "HASH SHA-512",
];

#[derive(Debug, Arbitrary)]
enum Arg {
    None,
    Canned(u8),
    Bytes(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct EntryIn {
    name: Vec<u8>,
    dir: bool,
    size: u64,
    modified: Option<i64>,
    mode: Option<u32>,
}

impl EntryIn {
    fn get(&self) -> Entry {
        let mut e = Entry::new(
            self.name.clone(),
            if self.dir { EntryKind::Dir } else { EntryKind::File },
        );
        e.size = self.size;
        e.modified = self.modified;
        e.mode = self.mode;
        e
    }
}

#[derive(Debug, Arbitrary)]
enum FsErrorIn {
    NotFound, PermissionDenied, AlreadyExists, NotADirectory, IsADirectory,
    DirectoryNotEmpty, NoSpace, InvalidName, OffsetBeyondEnd, Unsupported, Other,
}

impl FsErrorIn {
    fn get(&self) -> FsError {
        match self {
            FsErrorIn::NotFound => FsError::NotFound,
            FsErrorIn::PermissionDenied => FsError::PermissionDenied,
            FsErrorIn::AlreadyExists => FsError::AlreadyExists,
            FsErrorIn::NotADirectory => FsError::NotADirectory,
            FsErrorIn::IsADirectory => FsError::IsADirectory,
            FsErrorIn::DirectoryNotEmpty => FsError::DirectoryNotEmpty,
            FsErrorIn::NoSpace => FsError::NoSpace,
            FsErrorIn::InvalidName => FsError::InvalidName,
            FsErrorIn::OffsetBeyondEnd => FsError::OffsetBeyondEnd,
            FsErrorIn::Unsupported => FsError::Unsupported,
            FsErrorIn::Other => FsError::Other("boom".into()),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum FsIn {
    Done,
    Metadata(EntryIn),
    Entries(Vec<EntryIn>),
    Failed(FsErrorIn),
}

#[derive(Debug, Arbitrary)]
enum OutcomeIn {
    Complete(u64),
    OpenFailed(FsErrorIn),
    DataConnectionFailed,
    TlsFailed,
    SessionReuseRequired(u8),
    Aborted,
    ConnectionLost,
    Stalled,
    NoCloseNotify,
    StorageFailed(FsErrorIn),
}

impl OutcomeIn {
    fn get(&self) -> TransferOutcome {
        match self {
            OutcomeIn::Complete(bytes) => TransferOutcome::Complete { bytes: *bytes },
            OutcomeIn::OpenFailed(e) => TransferOutcome::OpenFailed(e.get()),
            OutcomeIn::DataConnectionFailed => TransferOutcome::DataConnectionFailed,
            OutcomeIn::TlsFailed => TransferOutcome::TlsFailed,
            OutcomeIn::SessionReuseRequired(n) => TransferOutcome::SessionReuseRequired(
                match n % 4 {
                    0 => ReuseRefusal::NoSessionOffered,
                    1 => ReuseRefusal::ForeignSession,
                    2 => ReuseRefusal::SessionNotResumable,
                    _ => ReuseRefusal::CertificateMismatch,
                },
            ),
            OutcomeIn::Aborted => TransferOutcome::Aborted,
            OutcomeIn::ConnectionLost => TransferOutcome::ConnectionLost,
            OutcomeIn::Stalled => TransferOutcome::Stalled,
            OutcomeIn::NoCloseNotify => TransferOutcome::NoCloseNotify,
            OutcomeIn::StorageFailed(e) => TransferOutcome::StorageFailed(e.get()),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct GrantIn {
    write: bool,
    anonymous: bool,
    policy: PolicyIn,
}

#[derive(Debug, Arbitrary)]
enum Event {
    /// A raw command line.
    Line(Vec<u8>),
    /// A known verb with an argument (a shortcut to the interesting states).
    Cmd(Verb, Arg),
    TlsEstablished,
    /// true: failed before anything was negotiated; false: mid-handshake.
    TlsFailed(bool),
    AuthResult(Option<GrantIn>),
    FsResult(FsIn),
    PassiveOpened(Option<(Ip, u16)>),
    TransferStarted { unique_name: Option<Vec<u8>>, size: Option<u64> },
    TransferDone(OutcomeIn),
    /// A HASH ended: a digest of octets start..start+len, or a failure.
    HashDone(Result<(u64, u64), u8>),
    AddressBanned,
    AccountUnavailable,
    Progress(u64),
    SetNow(i64),
    LineTooLong,
    /// Bytes arrived (activity).
    Input,
    /// The clock moves on by this many milliseconds.
    Elapse(u32),
    /// A timer wake-up now.
    Timeout,
    /// The clock jumps to the session's deadline (if any) and the timer wakes.
    TimeoutAtDeadline,
    Shutdown,
}

#[derive(Debug, Arbitrary)]
struct Input {
    config: ConfigIn,
    events: Vec<Event>,
}

fn stop_at_close() -> bool {
    static STOP: OnceLock<bool> = OnceLock::new();
    *STOP.get_or_init(|| std::env::var_os("FTPS_FUZZ_STOP_AT_CLOSE").is_some_and(|v| v == "1"))
}

fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FTPS_FUZZ_TRACE").is_some_and(|v| v == "1"))
}

fn line_for(verb: &Verb, arg: &Arg) -> Vec<u8> {
    let mut line = format!("{verb:?}").to_ascii_uppercase().into_bytes();
    let arg: Option<Vec<u8>> = match arg {
        Arg::None => None,
        Arg::Canned(i) => Some(CANNED[usize::from(*i) % CANNED.len()].as_bytes().to_vec()),
        Arg::Bytes(b) => Some(b.clone()),
    };
    if let Some(arg) = arg {
        line.push(b' ');
        line.extend(arg);
    }
    line
}

/// A timer wake-up at `now`: past the deadline, the session must close.
fn timeout(session: &mut ServerSession, now: Instant) {
    let due = session.poll_timeout().is_some_and(|d| d <= now);
    session.handle_timeout(now);
    if due {
        assert!(
            session.is_closed(),
            "deadline passed but the session is open"
        );
    }
}

impl ConfigIn {
    fn get(&self) -> SessionConfig {
        SessionConfig {
            implicit: self.implicit,
            policy: self.policy.get(),
            anonymous: self.anonymous.map(|a| match a % 3 {
                0 => AnonymousTls::Require,
                1 => AnonymousTls::Allow,
                _ => AnonymousTls::Refuse,
            }),
            peer: SocketAddr::new(self.peer.get(), 40000),
            local: SocketAddr::new(self.local.get(), 2121),
            max_login_failures: u32::from(self.max_login_failures),
            banner: "ready".into(),
            login_timeout: Duration::from_secs(u64::from(self.login_timeout_secs)),
            idle_timeout: Duration::from_secs(u64::from(self.idle_timeout_secs)),
        }
    }
}

/// Hand one event to the session; `now` is the target's clock.
fn apply(session: &mut ServerSession, event: &Event, now: &mut Instant) {
    match event {
        Event::Line(line) => session.handle_line(line, *now),
        Event::Cmd(verb, arg) => session.handle_line(&line_for(verb, arg), *now),
        Event::TlsEstablished => session.handle_tls_established(*now),
        Event::TlsFailed(complete) => session.handle_tls_failed(if *complete {
            TlsFailure::Complete
        } else {
            TlsFailure::MidHandshake
        }),
        Event::AuthResult(grant) => {
            session.handle_auth_result(grant.as_ref().map(|g| LoginGrant {
                name: "fuzz".into(),
                write: g.write,
                policy: g.policy.get(),
                anonymous: g.anonymous,
            }))
        }
        Event::FsResult(fs) => session.handle_fs_result(match fs {
            FsIn::Done => FsResponse::Done,
            FsIn::Metadata(e) => FsResponse::Metadata(e.get()),
            FsIn::Entries(es) => FsResponse::Entries(es.iter().map(EntryIn::get).collect()),
            FsIn::Failed(e) => FsResponse::Failed(e.get()),
        }),
        Event::PassiveOpened(addr) => session.handle_passive_opened(
            addr.as_ref()
                .map(|(ip, port)| SocketAddr::new(ip.get(), *port)),
        ),
        Event::TransferStarted { unique_name, size } => {
            session.handle_transfer_started(TransferStarted {
                unique_name: unique_name.clone(),
                size: *size,
            })
        }
        Event::TransferDone(outcome) => session.handle_transfer_done(outcome.get(), *now),
        Event::HashDone(result) => session.handle_hash_done(
            match result {
                Ok((start, len)) => Ok(HashDigest {
                    algorithm: HashAlgorithm::Sha256,
                    start: *start,
                    end: start.saturating_add(*len),
                    hex: "00".into(),
                }),
                Err(n) => Err(match n % 4 {
                    0 => HashFailure::Aborted,
                    1 => HashFailure::RangeBeyondEnd,
                    2 => HashFailure::TooLarge { bytes: 2, limit: 1 },
                    _ => HashFailure::Fs(FsError::NotFound),
                }),
            },
            *now,
        ),
        Event::AddressBanned => session.handle_address_banned(),
        Event::AccountUnavailable => session.handle_account_unavailable(),
        Event::Progress(n) => session.set_transfer_progress(*n),
        Event::SetNow(t) => session.set_now(*t),
        Event::LineTooLong => session.handle_line_too_long(),
        Event::Input => session.handle_input(*now),
        Event::Elapse(ms) => {
            *now = now
                .checked_add(Duration::from_millis(u64::from(*ms)))
                .unwrap_or(*now)
        }
        Event::Timeout => timeout(session, *now),
        Event::TimeoutAtDeadline => {
            *now = session.poll_timeout().map_or(*now, |d| d.max(*now));
            timeout(session, *now);
        }
        Event::Shutdown => session.handle_shutdown(),
    }
}

fuzz_target!(|input: Input| {
    let c = &input.config;
    let mut now = Instant::now();
    let mut session = ServerSession::new(c.get(), now);
    let mut close_seen = false;
    if trace() {
        eprintln!("config: {c:?}");
    }
    let mut drain = |session: &mut ServerSession, what: &dyn std::fmt::Debug| {
        if trace() {
            eprintln!("event: {what:?}");
        }
        while let Some(action) = session.poll_action() {
            if trace() {
                match &action {
                    Action::Reply(r) => eprintln!("  -> Reply {} {:?}", r.code, r.text()),
                    other => eprintln!("  -> {other:?}"),
                }
            }
            if close_seen {
                let shown = match &action {
                    Action::Reply(r) => format!("Reply {} {:?}", r.code, r.text()),
                    other => format!("{other:?}"),
                };
                panic!("action after Close: {shown} (event {what:?})");
            }
            match &action {
                Action::Reply(reply) => {
                    assert!(
                        (100..=599).contains(&reply.code),
                        "reply code {} out of range: {reply:?}",
                        reply.code
                    );
                    let _ = reply.encode();
                }
                Action::Close => {
                    assert!(session.is_closed(), "Close action but !is_closed()");
                    close_seen = true;
                }
                _ => {}
            }
        }
    };
    drain(&mut session, &"greeting");

    for event in &input.events {
        if stop_at_close() && session.is_closed() {
            break;
        }
        apply(&mut session, event, &mut now);
        drain(&mut session, event);
        if session.is_closed() || session.transfer_active() {
            assert_eq!(
                session.poll_timeout(),
                None,
                "a deadline while closed or transferring"
            );
        }
    }
});
