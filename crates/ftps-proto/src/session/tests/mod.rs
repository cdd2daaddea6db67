//! Unit tests of the server session, named after the rule they check.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;
use crate::entry::{Entry, EntryKind};

/// The clock for tests that do not look at the deadlines.
fn now() -> Instant {
    Instant::now()
}

fn config() -> SessionConfig {
    SessionConfig {
        implicit: false,
        policy: Policy::default(),
        anonymous: None,
        peer: "127.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:2121".parse().unwrap(),
        max_login_failures: 3,
        banner: "ready".into(),
        login_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(600),
    }
}

fn grant(policy: Policy) -> LoginGrant {
    LoginGrant {
        name: "alice".into(),
        write: true,
        policy,
        anonymous: false,
    }
}

fn drain(s: &mut ServerSession) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn codes(actions: &[Action]) -> Vec<u16> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply(r) => Some(r.code),
            _ => None,
        })
        .collect()
}

/// Send one line, return the reply codes it produced.
fn send(s: &mut ServerSession, line: &str) -> Vec<u16> {
    s.handle_line(line.as_bytes(), now());
    codes(&drain(s))
}

fn send_actions(s: &mut ServerSession, line: &str) -> Vec<Action> {
    s.handle_line(line.as_bytes(), now());
    drain(s)
}

fn new_session(config: SessionConfig) -> ServerSession {
    let mut s = ServerSession::new(config, now());
    assert_eq!(codes(&drain(&mut s)), vec![220]);
    s
}

fn with_tls(s: &mut ServerSession) {
    assert_eq!(send(s, "AUTH TLS"), vec![234]);
    s.handle_tls_established(now());
    drain(s);
}

fn login(s: &mut ServerSession, policy: Policy) {
    assert_eq!(send(s, "USER alice"), vec![331]);
    let actions = send_actions(s, "PASS secret");
    assert!(matches!(actions[0], Action::Authenticate { .. }));
    s.handle_auth_result(Some(grant(policy)));
    assert_eq!(codes(&drain(s)), vec![230]);
}

/// TLS, login, PBSZ 0, PROT P: the usual secure session.
fn secure_session() -> ServerSession {
    let mut s = new_session(config());
    with_tls(&mut s);
    login(&mut s, Policy::default());
    assert_eq!(send(&mut s, "PBSZ 0"), vec![200]);
    assert_eq!(send(&mut s, "PROT P"), vec![200]);
    s
}

fn open_pasv(s: &mut ServerSession) {
    let actions = send_actions(s, "PASV");
    assert_eq!(actions, vec![Action::OpenPassive(PassiveKind::Pasv)]);
    s.handle_passive_opened(Some("127.0.0.1:50000".parse().unwrap()));
    assert_eq!(codes(&drain(s)), vec![227]);
}

fn started(actions: &[Action]) -> Option<&TransferRequest> {
    actions.iter().find_map(|a| match a {
        Action::StartTransfer(r) => Some(r),
        _ => None,
    })
}

// ---- RFC 4217 §4: AUTH ----

#[test]
fn rfc4217_s4_auth_tls_is_234_then_handshake() {
    let mut s = new_session(config());
    let actions = send_actions(&mut s, "AUTH TLS");
    assert_eq!(codes(&actions), vec![234]);
    assert_eq!(actions.last(), Some(&Action::UpgradeTls));
    s.handle_tls_established(now());
    assert_eq!(s.control_security(), ControlSecurity::Tls);
    assert_eq!(s.data_protection(), DataProtection::Clear);
}

#[test]
fn rfc4217_s4_auth_tls_c_and_lowercase_are_accepted() {
    for mech in ["TLS-C", "tls", "tls-c", "Tls"] {
        let mut s = new_session(config());
        assert_eq!(send(&mut s, &format!("AUTH {mech}")), vec![234], "{mech}");
    }
}

#[test]
fn rfc4217_s4_2_never_334() {
    let mut s = new_session(config());
    assert!(!send(&mut s, "AUTH TLS").contains(&334));
}

#[test]
fn draft_s6_auth_ssl_and_tls_p_make_data_private_without_pbsz_prot() {
    for mech in ["SSL", "TLS-P", "ssl"] {
        let mut s = new_session(config());
        assert_eq!(send(&mut s, &format!("AUTH {mech}")), vec![234]);
        s.handle_tls_established(now());
        assert_eq!(s.data_protection(), DataProtection::Private, "{mech}");
        login(&mut s, Policy::default());
        open_pasv(&mut s);
        let actions = send_actions(&mut s, "RETR f");
        assert_eq!(
            started(&actions).unwrap().protection,
            DataProtection::Private
        );
    }
}

#[test]
fn rfc2228_unknown_auth_mechanism_is_504() {
    let mut s = new_session(config());
    assert_eq!(send(&mut s, "AUTH KERBEROS_V4"), vec![504]);
    assert_eq!(send(&mut s, "AUTH GSSAPI"), vec![504]);
    assert_eq!(s.control_security(), ControlSecurity::Plain);
}

#[test]
fn rfc4217_s4_second_auth_on_protected_connection_is_503() {
    let mut s = new_session(config());
    with_tls(&mut s);
    assert_eq!(send(&mut s, "AUTH TLS"), vec![503]);
    assert_eq!(send(&mut s, "AUTH SSL"), vec![503]);
}

#[test]
fn rfc4217_s4_auth_resets_user_type_cwd_and_data_port() {
    let mut s = new_session(
        Policy {
            require_tls: false,
            ..Policy::default()
        }
        .into_config(),
    );
    login(
        &mut s,
        Policy {
            require_tls: false,
            ..Policy::default()
        },
    );
    send(&mut s, "TYPE I");
    s.handle_line(b"CWD /sub", now());
    drain(&mut s);
    s.handle_fs_result(FsResponse::Metadata(dir_entry("sub")));
    drain(&mut s);
    assert_eq!(s.cwd().to_bytes(), b"/sub");
    open_pasv(&mut s);
    let actions = send_actions(&mut s, "AUTH TLS");
    assert_eq!(codes(&actions), vec![234]);
    s.handle_tls_established(now());
    let actions = drain(&mut s);
    assert!(actions.contains(&Action::ClosePassive), "{actions:?}");
    assert!(actions.contains(&Action::LoggedOut));
    assert!(s.user().is_none());
    assert!(s.cwd().is_root());
    assert_eq!(s.transfer_type, TransferType::Ascii);
    assert_eq!(s.data_port, DataPort::None);
}

#[test]
fn rfc4217_s10_1_failed_handshake_complete_is_unprotected_421() {
    let mut s = new_session(config());
    send(&mut s, "AUTH TLS");
    s.handle_tls_failed(TlsFailure::Complete);
    let actions = drain(&mut s);
    assert_eq!(codes(&actions), vec![421]);
    assert_eq!(actions.last(), Some(&Action::Close));
}

#[test]
fn rfc4217_s10_1_failed_mid_handshake_drops_without_reply() {
    let mut s = new_session(config());
    send(&mut s, "AUTH TLS");
    s.handle_tls_failed(TlsFailure::MidHandshake);
    assert_eq!(drain(&mut s), vec![Action::Close]);
}

#[test]
fn commands_pipelined_during_handshake_wait_for_it() {
    let mut s = new_session(config());
    send(&mut s, "AUTH TLS");
    assert!(s.is_waiting());
}

// ---- RFC 4217 §9: PBSZ / PROT ----

#[test]
fn rfc4217_s9_pbsz_before_auth_is_503() {
    let mut s = new_session(config());
    assert_eq!(send(&mut s, "PBSZ 0"), vec![503]);
}

#[test]
fn rfc4217_s9_pbsz_any_size_is_200_pbsz_0() {
    let mut s = new_session(config());
    with_tls(&mut s);
    let actions = send_actions(&mut s, "PBSZ 1024");
    match &actions[0] {
        Action::Reply(r) => assert_eq!((r.code, r.text()), (200, "PBSZ=0".to_string())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc4217_s9_prot_before_pbsz_is_503() {
    let mut s = new_session(config());
    with_tls(&mut s);
    assert_eq!(send(&mut s, "PROT P"), vec![503]);
    let mut plain = new_session(config());
    assert_eq!(send(&mut plain, "PROT P"), vec![503]);
}

#[test]
fn rfc4217_s9_prot_c_and_p_are_200() {
    let mut s = new_session(config());
    with_tls(&mut s);
    send(&mut s, "PBSZ 0");
    assert_eq!(send(&mut s, "PROT P"), vec![200]);
    assert_eq!(s.data_protection(), DataProtection::Private);
    assert_eq!(send(&mut s, "prot c"), vec![200]);
    assert_eq!(s.data_protection(), DataProtection::Clear);
}

#[test]
fn rfc4217_s9_prot_s_and_e_are_536() {
    let mut s = new_session(config());
    with_tls(&mut s);
    send(&mut s, "PBSZ 0");
    assert_eq!(send(&mut s, "PROT S"), vec![536]);
    assert_eq!(send(&mut s, "PROT E"), vec![536]);
    assert_eq!(s.data_protection(), DataProtection::Clear);
}

#[test]
fn rfc4217_s9_prot_unknown_level_is_504() {
    let mut s = new_session(config());
    with_tls(&mut s);
    send(&mut s, "PBSZ 0");
    assert_eq!(send(&mut s, "PROT X"), vec![504]);
    assert_eq!(send(&mut s, "PROT PRIVATE"), vec![504]);
}

#[test]
fn rfc4217_s9_initial_data_protection_is_clear() {
    let s = new_session(config());
    assert_eq!(s.data_protection(), DataProtection::Clear);
}

#[test]
fn draft_s4_2_implicit_starts_protected_and_private() {
    let mut s = new_session(SessionConfig {
        implicit: true,
        ..config()
    });
    assert_eq!(s.control_security(), ControlSecurity::Tls);
    assert_eq!(s.data_protection(), DataProtection::Private);
    assert_eq!(send(&mut s, "AUTH TLS"), vec![503]);
    login(&mut s, Policy::default());
    open_pasv(&mut s);
    let actions = send_actions(&mut s, "LIST");
    assert_eq!(
        started(&actions).unwrap().protection,
        DataProtection::Private
    );
}

// ---- RFC 4217 §10.2: 521 before any 1xx, for every data-opening command ----

#[test]
fn rfc4217_s10_2_prot_c_data_commands_are_521_with_every_data_port_command() {
    let commands = ["RETR f", "STOR f", "STOU", "APPE f", "LIST", "NLST", "MLSD"];
    let ports: [(&str, Option<SocketAddrForTest>); 4] = [
        ("PASV", Some("127.0.0.1:50000")),
        ("EPSV", Some("127.0.0.1:50000")),
        ("PORT 127,0,0,1,200,10", None),
        ("EPRT |1|127.0.0.1|51210|", None),
    ];
    for command in commands {
        for (port_cmd, passive) in &ports {
            let mut s = new_session(config());
            with_tls(&mut s);
            login(&mut s, Policy::default());
            send(&mut s, "PBSZ 0");
            send(&mut s, "PROT C");
            let actions = send_actions(&mut s, port_cmd);
            if let Some(addr) = passive {
                assert!(matches!(actions[0], Action::OpenPassive(_)));
                s.handle_passive_opened(Some(addr.parse().unwrap()));
                drain(&mut s);
            }
            let actions = send_actions(&mut s, command);
            assert_eq!(codes(&actions), vec![521], "{port_cmd} then {command}");
            assert!(started(&actions).is_none());
        }
    }
}

type SocketAddrForTest = &'static str;

#[test]
fn rfc4217_s10_2_prot_level_checked_on_transfer_not_on_pasv() {
    let mut s = new_session(config());
    with_tls(&mut s);
    login(&mut s, Policy::default());
    // PASV with PROT C is fine; only the transfer is refused.
    open_pasv(&mut s);
    assert_eq!(send(&mut s, "RETR f"), vec![521]);
    // PROT may change after PASV (RFC 4217 §8 note).
    send(&mut s, "PBSZ 0");
    send(&mut s, "PROT P");
    let actions = send_actions(&mut s, "RETR f");
    assert!(started(&actions).is_some());
}

#[test]
fn prot_c_allowed_when_policy_permits() {
    let policy = Policy {
        require_prot_p: false,
        ..Policy::default()
    };
    let mut s = new_session(config());
    with_tls(&mut s);
    login(&mut s, policy);
    open_pasv(&mut s);
    let actions = send_actions(&mut s, "LIST");
    assert_eq!(started(&actions).unwrap().protection, DataProtection::Clear);
}

#[test]
fn rfc4217_s10_2_transfer_tls_failure_after_150_is_522_and_session_goes_on() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "RETR f");
    s.handle_transfer_started(TransferStarted::default());
    assert_eq!(codes(&drain(&mut s)), vec![150]);
    s.handle_transfer_done(TransferOutcome::TlsFailed, now());
    assert_eq!(codes(&drain(&mut s)), vec![522]);
    assert_eq!(send(&mut s, "NOOP"), vec![200]);
}

#[test]
fn rfc4217_s10_2_session_reuse_refusal_says_what_to_do() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "STOR f");
    s.handle_transfer_started(TransferStarted::default());
    drain(&mut s);
    s.handle_transfer_done(
        TransferOutcome::SessionReuseRequired(ReuseRefusal::NoSessionOffered),
        now(),
    );
    let actions = drain(&mut s);
    match &actions[0] {
        Action::Reply(r) => {
            assert_eq!(r.code, 522);
            assert!(r.text().contains("session reuse"), "{}", r.text());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn transfer_request_carries_reuse_policy() {
    let mut s = secure_session();
    open_pasv(&mut s);
    let actions = send_actions(&mut s, "RETR f");
    assert!(started(&actions).unwrap().require_session_reuse);
}

// ---- RFC 4217 §5: CCC ----

#[test]
fn rfc4217_s5_ccc_on_unprotected_connection_is_533() {
    let mut s = new_session(config());
    assert_eq!(send(&mut s, "CCC"), vec![533]);
}

#[test]
fn rfc4217_s5_ccc_refused_by_default_policy_is_534() {
    let mut s = secure_session();
    assert_eq!(send(&mut s, "CCC"), vec![534]);
    assert_eq!(s.control_security(), ControlSecurity::Tls);
}

#[test]
fn rfc4217_s5_ccc_allowed_clears_and_freezes_pbsz_prot() {
    let policy = Policy {
        allow_ccc: true,
        ..Policy::default()
    };
    let mut s = new_session(config());
    with_tls(&mut s);
    login(&mut s, policy);
    send(&mut s, "PBSZ 0");
    send(&mut s, "PROT P");
    let actions = send_actions(&mut s, "CCC");
    assert_eq!(codes(&actions), vec![200]);
    assert_eq!(actions.last(), Some(&Action::ClearTls));
    assert_eq!(s.control_security(), ControlSecurity::Cleared);
    assert_eq!(send(&mut s, "PBSZ 0"), vec![503]);
    assert_eq!(send(&mut s, "PROT C"), vec![503]);
    assert_eq!(send(&mut s, "CCC"), vec![533]);
    // Data keeps the current PROT level.
    open_pasv(&mut s);
    let actions = send_actions(&mut s, "RETR f");
    assert_eq!(
        started(&actions).unwrap().protection,
        DataProtection::Private
    );
}

#[test]
fn rfc4217_s6_feat_lists_ccc_only_when_allowed() {
    let mut s = new_session(config());
    s.handle_line(b"FEAT", now());
    let text = reply_text(&drain(&mut s));
    assert!(!text.contains(" CCC"), "{text}");
    let mut s = new_session(SessionConfig {
        policy: Policy {
            allow_ccc: true,
            ..Policy::default()
        },
        ..config()
    });
    s.handle_line(b"FEAT", now());
    assert!(reply_text(&drain(&mut s)).contains(" CCC"));
}

// ---- RFC 4217 §13: REIN ----

#[test]
fn rfc4217_s13_rein_replies_protected_then_clears_tls() {
    let mut s = secure_session();
    let actions = send_actions(&mut s, "REIN");
    // The 220 comes first (still protected), then the TLS clear.
    let reply_pos = actions
        .iter()
        .position(|a| matches!(a, Action::Reply(r) if r.code == 220))
        .unwrap();
    let clear_pos = actions.iter().position(|a| *a == Action::ClearTls).unwrap();
    assert!(reply_pos < clear_pos);
    assert!(actions.contains(&Action::LoggedOut));
    assert_eq!(s.control_security(), ControlSecurity::Plain);
    assert_eq!(s.data_protection(), DataProtection::Clear);
    assert!(s.user().is_none());
    // As new: AUTH is possible again, PBSZ is not.
    assert_eq!(send(&mut s, "PBSZ 0"), vec![503]);
    assert_eq!(send(&mut s, "AUTH TLS"), vec![234]);
}

/// Found by the hostile tests: on an implicit listener, REIN after CCC must
/// not treat the (now plaintext) connection as TLS again.
#[test]
fn rfc4217_s13_rein_after_ccc_on_implicit_is_plaintext() {
    let policy = Policy {
        allow_ccc: true,
        ..Policy::default()
    };
    let mut s = new_session(SessionConfig {
        implicit: true,
        policy,
        ..config()
    });
    login(&mut s, policy);
    send(&mut s, "CCC");
    send(&mut s, "REIN");
    assert_eq!(s.control_security(), ControlSecurity::Plain);
    assert_eq!(send(&mut s, "PBSZ 0"), vec![503]);
    assert_eq!(send(&mut s, "USER alice"), vec![530]);
}

#[test]
fn rfc959_rein_during_transfer_waits_for_it() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "RETR f");
    assert_eq!(send(&mut s, "REIN"), Vec::<u16>::new());
    s.handle_transfer_done(TransferOutcome::Complete { bytes: 3 }, now());
    assert_eq!(codes(&drain(&mut s)), vec![226, 220]);
}

// ---- RFC 4217 §14: ABOR and STAT during a transfer ----

#[test]
fn rfc4217_s14_abor_during_transfer_is_426_then_226() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "RETR big");
    s.handle_transfer_started(TransferStarted::default());
    drain(&mut s);
    let actions = send_actions(&mut s, "ABOR");
    assert_eq!(actions, vec![Action::AbortTransfer]);
    s.handle_transfer_done(TransferOutcome::Aborted, now());
    assert_eq!(codes(&drain(&mut s)), vec![426, 226]);
    assert!(!s.transfer_active());
}

#[test]
fn rfc959_abor_after_completion_is_226_only() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "RETR f");
    send(&mut s, "ABOR");
    s.handle_transfer_done(TransferOutcome::Complete { bytes: 1 }, now());
    assert_eq!(codes(&drain(&mut s)), vec![226]);
}

#[test]
fn rfc959_abor_without_transfer_is_225() {
    let mut s = secure_session();
    assert_eq!(send(&mut s, "ABOR"), vec![225]);
}

#[test]
fn rfc4217_s14_stat_during_transfer_reports_progress() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "RETR f");
    s.set_transfer_progress(4096);
    let actions = send_actions(&mut s, "STAT");
    assert_eq!(codes(&actions), vec![213]);
    assert!(reply_text(&actions).contains("4096"));
}

#[test]
fn other_commands_during_transfer_are_503_and_quit_waits() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "RETR f");
    assert_eq!(send(&mut s, "DELE f"), vec![503]);
    assert_eq!(send(&mut s, "NOOP"), vec![200]);
    assert_eq!(send(&mut s, "QUIT"), Vec::<u16>::new());
    s.handle_transfer_done(TransferOutcome::Complete { bytes: 1 }, now());
    let actions = drain(&mut s);
    assert_eq!(codes(&actions), vec![226, 221]);
    assert_eq!(actions.last(), Some(&Action::Close));
}

// ---- Login and TLS policy (RFC 4217 §10.1) ----

#[test]
fn rfc4217_s10_1_user_before_tls_is_refused_by_default() {
    let mut s = new_session(config());
    assert_eq!(send(&mut s, "USER alice"), vec![530]);
    assert_eq!(send(&mut s, "PASS x"), vec![503]);
}

#[test]
fn rfc4217_s10_1_per_user_policy_can_require_tls() {
    let mut s = new_session(
        Policy {
            require_tls: false,
            ..Policy::default()
        }
        .into_config(),
    );
    assert_eq!(send(&mut s, "USER alice"), vec![331]);
    send(&mut s, "PASS x");
    s.handle_auth_result(Some(grant(Policy::default())));
    assert_eq!(codes(&drain(&mut s)), vec![530]);
    assert!(s.user().is_none());
}

#[test]
fn rfc959_commands_before_login_are_530() {
    let mut s = new_session(config());
    with_tls(&mut s);
    for cmd in ["CWD /", "PWD", "LIST", "RETR f", "PASV", "MKD d", "SIZE f"] {
        assert_eq!(send(&mut s, cmd), vec![530], "{cmd}");
    }
    for (cmd, code) in [("NOOP", 200), ("SYST", 215), ("FEAT", 211), ("HELP", 214)] {
        assert_eq!(send(&mut s, cmd), vec![code], "{cmd}");
    }
}

#[test]
fn wrong_password_is_530_and_too_many_close_the_connection() {
    let mut s = new_session(config());
    with_tls(&mut s);
    for attempt in 1..=3 {
        send(&mut s, "USER alice");
        send(&mut s, "PASS wrong");
        s.handle_auth_result(None);
        let actions = drain(&mut s);
        assert_eq!(codes(&actions), vec![530]);
        assert_eq!(actions.last() == Some(&Action::Close), attempt == 3);
    }
}

#[test]
fn rfc959_s4_2_user_store_unavailable_is_421_and_close_not_a_failure() {
    let mut s = new_session(config());
    with_tls(&mut s);
    send(&mut s, "USER alice");
    send(&mut s, "PASS secret");
    s.handle_auth_unavailable();
    let actions = drain(&mut s);
    assert_eq!(codes(&actions), vec![421]);
    assert_eq!(actions.last(), Some(&Action::Close));
    assert_eq!(s.login_failures(), 0, "not a wrong password");
    // Out of turn (nothing being checked) it does nothing.
    let mut s = new_session(config());
    with_tls(&mut s);
    s.handle_auth_unavailable();
    assert!(codes(&drain(&mut s)).is_empty());
}

#[test]
fn rfc4217_s10_1_anonymous_tls_modes() {
    let anon = |mode| SessionConfig {
        anonymous: Some(mode),
        ..config()
    };
    let mut s = new_session(anon(AnonymousTls::Require));
    assert_eq!(send(&mut s, "USER anonymous"), vec![530]);
    with_tls(&mut s);
    assert_eq!(send(&mut s, "USER anonymous"), vec![331]);

    let mut s = new_session(anon(AnonymousTls::Refuse));
    assert_eq!(send(&mut s, "USER ftp"), vec![331]);
    with_tls(&mut s);
    assert_eq!(send(&mut s, "USER ftp"), vec![530]);

    let mut s = new_session(anon(AnonymousTls::Allow));
    assert_eq!(send(&mut s, "USER anonymous"), vec![331]);
}

#[test]
fn anonymous_is_read_only() {
    let mut s = new_session(SessionConfig {
        anonymous: Some(AnonymousTls::Allow),
        ..config()
    });
    with_tls(&mut s);
    send(&mut s, "USER anonymous");
    send(&mut s, "PASS a@b");
    s.handle_auth_result(Some(LoginGrant {
        name: "anonymous".into(),
        write: true,
        policy: Policy::default(),
        anonymous: true,
    }));
    drain(&mut s);
    send(&mut s, "PBSZ 0");
    send(&mut s, "PROT P");
    open_pasv(&mut s);
    for cmd in [
        "STOR f", "APPE f", "STOU", "DELE f", "MKD d", "RMD d", "RNFR f",
    ] {
        assert_eq!(send(&mut s, cmd), vec![550], "{cmd}");
    }
}

// ---- RFC 4217 §12.2: TLS client certificates ----

#[test]
fn rfc4217_s12_2_certificate_that_suffices_is_232_without_pass() {
    let mut s = new_session(config());
    with_tls(&mut s);
    s.set_client_certificate(true);
    let actions = send_actions(&mut s, "USER alice");
    assert_eq!(
        actions,
        vec![Action::CheckUser {
            user: b"alice".to_vec()
        }]
    );
    assert!(s.is_waiting());
    s.handle_user_check(UserCheck::Certificate(grant(Policy::default())));
    let actions = drain(&mut s);
    assert_eq!(codes(&actions), vec![232]);
    assert!(s.user().is_some());
}

#[test]
fn rfc4217_s12_2_certificate_and_password() {
    let mut s = new_session(config());
    with_tls(&mut s);
    s.set_client_certificate(true);
    send(&mut s, "USER alice");
    s.handle_user_check(UserCheck::Password);
    assert_eq!(codes(&drain(&mut s)), vec![331]);
    let actions = send_actions(&mut s, "PASS pw");
    assert!(matches!(actions[0], Action::Authenticate { .. }));
}

#[test]
fn rfc4217_s15_1_2_certificate_of_another_user_is_530() {
    let mut s = new_session(config());
    with_tls(&mut s);
    s.set_client_certificate(true);
    send(&mut s, "USER mallory");
    s.handle_user_check(UserCheck::Refused);
    assert_eq!(codes(&drain(&mut s)), vec![530]);
    assert_eq!(send(&mut s, "PASS x"), vec![503]);
}

#[test]
fn without_certificate_user_goes_straight_to_331() {
    let mut s = new_session(config());
    with_tls(&mut s);
    assert_eq!(send(&mut s, "USER alice"), vec![331]);
}

// ---- Data ports: RFC 959, RFC 2428, RFC 2577 ----

#[test]
fn rfc2577_port_to_another_address_is_refused() {
    let mut s = secure_session();
    assert_eq!(send(&mut s, "PORT 10,0,0,9,200,10"), vec![504]);
    assert_eq!(send(&mut s, "EPRT |1|10.0.0.9|51210|"), vec![504]);
    assert_eq!(send(&mut s, "EPRT |2|::1|51210|"), vec![504]);
}

#[test]
fn rfc2577_port_below_1024_is_refused() {
    let mut s = secure_session();
    assert_eq!(send(&mut s, "PORT 127,0,0,1,0,25"), vec![504]);
    assert_eq!(send(&mut s, "EPRT |1|127.0.0.1|21|"), vec![504]);
}

#[test]
fn rfc959_port_sets_active_endpoint() {
    let mut s = secure_session();
    assert_eq!(send(&mut s, "PORT 127,0,0,1,200,10"), vec![200]);
    let actions = send_actions(&mut s, "RETR f");
    assert_eq!(
        started(&actions).unwrap().endpoint,
        DataEndpoint::Active("127.0.0.1:51210".parse().unwrap())
    );
}

#[test]
fn rfc2428_eprt_ipv6_from_ipv6_client() {
    let mut s = new_session(SessionConfig {
        peer: "[::1]:40000".parse().unwrap(),
        local: "[::1]:2121".parse().unwrap(),
        ..config()
    });
    with_tls(&mut s);
    login(&mut s, Policy::default());
    assert_eq!(send(&mut s, "EPRT |2|::1|51210|"), vec![200]);
    assert_eq!(send(&mut s, "PASV"), vec![501]);
    assert_eq!(send(&mut s, "EPSV 1"), vec![522]);
    let actions = send_actions(&mut s, "EPSV 2");
    assert_eq!(actions, vec![Action::OpenPassive(PassiveKind::Epsv)]);
}

#[test]
fn rfc2428_epsv_reply_is_229_with_port_only() {
    let mut s = secure_session();
    send(&mut s, "EPSV");
    s.handle_passive_opened(Some("127.0.0.1:50123".parse().unwrap()));
    let actions = drain(&mut s);
    assert_eq!(codes(&actions), vec![229]);
    assert!(reply_text(&actions).contains("(|||50123|)"));
}

#[test]
fn rfc2428_epsv_all_refuses_other_data_port_commands() {
    let mut s = secure_session();
    assert_eq!(send(&mut s, "EPSV ALL"), vec![200]);
    assert_eq!(send(&mut s, "PASV"), vec![503]);
    assert_eq!(send(&mut s, "PORT 127,0,0,1,200,10"), vec![503]);
    assert_eq!(send(&mut s, "EPRT |1|127.0.0.1|51210|"), vec![503]);
}

#[test]
fn rfc959_data_command_without_data_port_is_425() {
    let mut s = secure_session();
    assert_eq!(send(&mut s, "RETR f"), vec![425]);
}

#[test]
fn passive_port_is_used_once() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "RETR f");
    s.handle_transfer_done(TransferOutcome::Complete { bytes: 0 }, now());
    drain(&mut s);
    assert_eq!(send(&mut s, "RETR f"), vec![425]);
}

#[test]
fn rfc959_new_pasv_closes_previous_listener() {
    let mut s = secure_session();
    open_pasv(&mut s);
    let actions = send_actions(&mut s, "PASV");
    assert_eq!(
        actions,
        vec![Action::ClosePassive, Action::OpenPassive(PassiveKind::Pasv)]
    );
}

// ---- Transfers and REST (RFC 3659 §5) ----

#[test]
fn rfc3659_s5_rest_then_retr_carries_offset() {
    let mut s = secure_session();
    send(&mut s, "TYPE I");
    open_pasv(&mut s);
    assert_eq!(send(&mut s, "REST 100"), vec![350]);
    let actions = send_actions(&mut s, "RETR f");
    match &started(&actions).unwrap().kind {
        TransferKind::Retrieve { offset, .. } => assert_eq!(*offset, 100),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc3659_s5_rest_then_stor_resumes() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "REST 7");
    let actions = send_actions(&mut s, "STOR f");
    match &started(&actions).unwrap().kind {
        TransferKind::Store { mode, .. } => assert_eq!(*mode, StoreMode::Resume(7)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc3659_s5_rest_is_cleared_by_other_commands() {
    let mut s = secure_session();
    send(&mut s, "REST 100");
    send(&mut s, "PWD");
    open_pasv(&mut s);
    let actions = send_actions(&mut s, "RETR f");
    match &started(&actions).unwrap().kind {
        TransferKind::Retrieve { offset, .. } => assert_eq!(*offset, 0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn appe_and_stou_modes() {
    let mut s = secure_session();
    open_pasv(&mut s);
    let actions = send_actions(&mut s, "APPE f");
    assert!(matches!(
        started(&actions).unwrap().kind,
        TransferKind::Store {
            mode: StoreMode::Append,
            ..
        }
    ));
    s.handle_transfer_done(TransferOutcome::Complete { bytes: 0 }, now());
    drain(&mut s);
    open_pasv(&mut s);
    let actions = send_actions(&mut s, "STOU");
    assert!(matches!(
        started(&actions).unwrap().kind,
        TransferKind::Store {
            mode: StoreMode::Unique,
            ..
        }
    ));
    s.handle_transfer_started(TransferStarted {
        unique_name: Some(b"f.1".to_vec()),
        size: None,
    });
    let actions = drain(&mut s);
    assert_eq!(reply_text(&actions), "FILE: f.1");
}

#[test]
fn transfer_outcomes_map_to_replies() {
    let cases = [
        (TransferOutcome::OpenFailed(FsError::NotFound), 550),
        (TransferOutcome::DataConnectionFailed, 425),
        (TransferOutcome::ConnectionLost, 426),
        (TransferOutcome::Stalled, 426),
        (TransferOutcome::NoCloseNotify, 426),
        (TransferOutcome::StorageFailed(FsError::NoSpace), 552),
        (
            TransferOutcome::StorageFailed(FsError::Other("x".into())),
            451,
        ),
        (TransferOutcome::Complete { bytes: 5 }, 226),
    ];
    for (outcome, code) in cases {
        let mut s = secure_session();
        open_pasv(&mut s);
        send(&mut s, "RETR f");
        s.handle_transfer_done(outcome.clone(), now());
        assert_eq!(codes(&drain(&mut s)), vec![code], "{outcome:?}");
    }
}

#[test]
fn rfc3659_mlsd_on_a_file_is_501() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "MLSD f");
    s.handle_transfer_done(TransferOutcome::OpenFailed(FsError::NotADirectory), now());
    assert_eq!(codes(&drain(&mut s)), vec![501]);
}

// ---- File commands ----

fn dir_entry(name: &str) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        kind: EntryKind::Dir,
        size: 0,
        modified: Some(1_700_000_000),
        mode: Some(0o755),
        owner: None,
        group: None,
        unique: None,
    }
}

fn file_entry(name: &str, size: u64) -> Entry {
    Entry {
        kind: EntryKind::File,
        size,
        mode: Some(0o644),
        ..dir_entry(name)
    }
}

fn reply_text(actions: &[Action]) -> String {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply(r) => Some(r.text()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn rfc959_cwd_pwd_cdup() {
    let mut s = secure_session();
    let actions = send_actions(&mut s, "CWD docs");
    assert_eq!(
        actions,
        vec![Action::Fs(FsRequest::Stat(
            VirtualPath::root().resolve(b"docs").unwrap()
        ))]
    );
    s.handle_fs_result(FsResponse::Metadata(dir_entry("docs")));
    assert_eq!(codes(&drain(&mut s)), vec![250]);
    let actions = send_actions(&mut s, "PWD");
    assert_eq!(reply_text(&actions), "\"/docs\" is the current directory.");
    send(&mut s, "CDUP");
    s.handle_fs_result(FsResponse::Metadata(dir_entry("/")));
    drain(&mut s);
    assert!(s.cwd().is_root());
    send(&mut s, "XCWD file");
    s.handle_fs_result(FsResponse::Metadata(file_entry("file", 1)));
    assert_eq!(codes(&drain(&mut s)), vec![550]);
    send(&mut s, "CWD missing");
    s.handle_fs_result(FsResponse::Failed(FsError::NotFound));
    assert_eq!(codes(&drain(&mut s)), vec![550]);
}

#[test]
fn rfc959_pwd_quotes_double_quotes() {
    let mut s = secure_session();
    send(&mut s, "CWD a\"b");
    s.handle_fs_result(FsResponse::Metadata(dir_entry("a\"b")));
    drain(&mut s);
    let actions = send_actions(&mut s, "XPWD");
    assert_eq!(
        reply_text(&actions),
        "\"/a\"\"b\" is the current directory."
    );
}

#[test]
fn non_utf8_names_are_preserved_in_replies() {
    let mut s = secure_session();
    s.handle_line(b"MKD caf\xe9", now());
    let actions = drain(&mut s);
    assert_eq!(
        actions,
        vec![Action::Fs(FsRequest::MakeDir(
            VirtualPath::root().resolve(b"caf\xe9").unwrap()
        ))]
    );
    s.handle_fs_result(FsResponse::Done);
    let actions = drain(&mut s);
    match &actions[0] {
        Action::Reply(r) => {
            assert_eq!(r.code, 257);
            assert!(r.encode().starts_with(b"257 \"/caf\xe9\" created."));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc959_rnfr_rnto_sequence() {
    let mut s = secure_session();
    assert_eq!(send(&mut s, "RNTO b"), vec![503]);
    send(&mut s, "RNFR a");
    s.handle_fs_result(FsResponse::Metadata(file_entry("a", 1)));
    assert_eq!(codes(&drain(&mut s)), vec![350]);
    let actions = send_actions(&mut s, "RNTO b");
    let root = VirtualPath::root();
    assert_eq!(
        actions,
        vec![Action::Fs(FsRequest::Rename {
            from: root.resolve(b"a").unwrap(),
            to: root.resolve(b"b").unwrap()
        })]
    );
    s.handle_fs_result(FsResponse::Done);
    assert_eq!(codes(&drain(&mut s)), vec![250]);
    // RNTO must follow RNFR immediately.
    send(&mut s, "RNFR a");
    s.handle_fs_result(FsResponse::Metadata(file_entry("a", 1)));
    drain(&mut s);
    send(&mut s, "NOOP");
    assert_eq!(send(&mut s, "RNTO b"), vec![503]);
}

#[test]
fn rfc3659_size_and_mdtm() {
    let mut s = secure_session();
    send(&mut s, "TYPE I");
    send(&mut s, "SIZE f");
    s.handle_fs_result(FsResponse::Metadata(file_entry("f", 1234)));
    let actions = drain(&mut s);
    assert_eq!(
        (codes(&actions), reply_text(&actions)),
        (vec![213], "1234".into())
    );
    send(&mut s, "MDTM f");
    s.handle_fs_result(FsResponse::Metadata(file_entry("f", 1)));
    let actions = drain(&mut s);
    assert_eq!(reply_text(&actions), "20231114221320");
    send(&mut s, "SIZE d");
    s.handle_fs_result(FsResponse::Metadata(dir_entry("d")));
    assert_eq!(codes(&drain(&mut s)), vec![550]);
}

#[test]
fn rfc3659_s4_size_in_ascii_mode_is_refused() {
    let mut s = secure_session();
    send(&mut s, "TYPE A");
    send(&mut s, "SIZE f");
    s.handle_fs_result(FsResponse::Metadata(file_entry("f", 1234)));
    assert_eq!(codes(&drain(&mut s)), vec![550]);
}

#[test]
fn rfc3659_s7_mlst_is_250_with_one_fact_line() {
    let mut s = secure_session();
    send(&mut s, "MLST f");
    s.handle_fs_result(FsResponse::Metadata(file_entry("f", 12)));
    let actions = drain(&mut s);
    match &actions[0] {
        Action::Reply(r) => {
            assert_eq!(r.code, 250);
            assert_eq!(r.lines.len(), 3);
            assert!(
                r.lines[1].starts_with(b" type=file;size=12;"),
                "{:?}",
                r.text()
            );
            assert!(r.lines[1].ends_with(b" /f"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc3659_s7_9_opts_mlst_selects_facts() {
    let mut s = secure_session();
    let actions = send_actions(&mut s, "OPTS MLST type;size;");
    assert_eq!(codes(&actions), vec![200]);
    assert_eq!(reply_text(&actions), "MLST OPTS type;size;");
    send(&mut s, "MLST f");
    s.handle_fs_result(FsResponse::Metadata(file_entry("f", 12)));
    let actions = drain(&mut s);
    assert!(reply_text(&actions).contains(" type=file;size=12; /f"));
}

#[test]
fn rfc2389_opts_utf8_and_unknown() {
    let mut s = new_session(config());
    assert_eq!(send(&mut s, "OPTS UTF8 ON"), vec![200]);
    assert_eq!(send(&mut s, "OPTS FOO BAR"), vec![501]);
}

#[test]
fn rfc4217_s6_feat_lists_required_features() {
    let mut s = new_session(config());
    let actions = send_actions(&mut s, "FEAT");
    let encoded = match &actions[0] {
        Action::Reply(r) => String::from_utf8(r.encode()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(encoded.starts_with("211-Extensions supported\r\n"));
    for feature in [
        " AUTH TLS\r\n",
        " PBSZ\r\n",
        " PROT\r\n",
        " EPRT\r\n",
        " EPSV\r\n",
        " MDTM\r\n",
        " REST STREAM\r\n",
        " SIZE\r\n",
        " TVFS\r\n",
        " UTF8\r\n",
        " MLST type*;size*;modify*;",
    ] {
        assert!(encoded.contains(feature), "{feature} missing in {encoded}");
    }
    assert!(encoded.ends_with("211 END\r\n"));
}

#[test]
fn path_with_nul_is_501() {
    let mut s = secure_session();
    s.handle_line(b"DELE a\0b", now());
    assert_eq!(codes(&drain(&mut s)), vec![501]);
}

#[test]
fn traversal_stays_in_root() {
    let mut s = secure_session();
    let actions = send_actions(&mut s, "DELE ../../etc/passwd");
    assert_eq!(
        actions,
        vec![Action::Fs(FsRequest::Delete(
            VirtualPath::root().resolve(b"etc/passwd").unwrap()
        ))]
    );
}

#[test]
fn rfc959_stat_with_path_lists_on_control_connection() {
    let mut s = secure_session();
    s.set_now(1_700_000_000);
    send(&mut s, "STAT /");
    s.handle_fs_result(FsResponse::Metadata(dir_entry("/")));
    let actions = drain(&mut s);
    assert_eq!(
        actions,
        vec![Action::Fs(FsRequest::List(VirtualPath::root()))]
    );
    s.handle_fs_result(FsResponse::Entries(vec![
        file_entry("a", 1),
        dir_entry("d"),
    ]));
    let actions = drain(&mut s);
    assert_eq!(codes(&actions), vec![213]);
    let text = reply_text(&actions);
    assert!(text.contains(" a") && text.contains(" d"), "{text}");
}

#[test]
fn rfc959_stat_without_transfer_is_211() {
    let mut s = secure_session();
    let actions = send_actions(&mut s, "STAT");
    assert_eq!(codes(&actions), vec![211]);
    assert!(reply_text(&actions).contains("Data protection: Private"));
}

#[test]
fn syntax_errors_do_not_end_the_session() {
    let mut s = secure_session();
    assert_eq!(send(&mut s, "FOO"), vec![500]);
    assert_eq!(send(&mut s, "RETR"), vec![501]);
    assert_eq!(send(&mut s, "TYPE E"), vec![504]);
    s.handle_line_too_long();
    assert_eq!(codes(&drain(&mut s)), vec![500]);
    assert_eq!(send(&mut s, "NOOP"), vec![200]);
}

#[test]
fn rfc959_login_refused_by_the_server_is_421_and_close() {
    let mut s = new_session(config());
    with_tls(&mut s);
    assert_eq!(send(&mut s, "USER alice"), vec![331]);
    let actions = send_actions(&mut s, "PASS secret");
    assert!(matches!(actions[0], Action::Authenticate { .. }));
    // A pipelined command waits behind the login and is never run.
    assert_eq!(send(&mut s, "PWD"), Vec::<u16>::new());
    s.handle_login_refused("Too many sessions for this user.");
    let actions = drain(&mut s);
    assert_eq!(codes(&actions), vec![421]);
    assert_eq!(actions.last(), Some(&Action::Close));
    assert!(s.is_closed());
    assert!(s.user().is_none());
    // Outside a login it does nothing.
    let mut other = secure_session();
    other.handle_login_refused("no");
    assert!(drain(&mut other).is_empty());
}

#[test]
fn rfc959_quit_is_221_and_close() {
    let mut s = new_session(config());
    let actions = send_actions(&mut s, "QUIT");
    assert_eq!(codes(&actions), vec![221]);
    assert_eq!(actions.last(), Some(&Action::Close));
    assert!(s.is_closed());
    assert_eq!(send(&mut s, "NOOP"), Vec::<u16>::new());
}

#[test]
fn misc_commands() {
    let mut s = secure_session();
    for (cmd, code) in [
        ("ACCT x", 202),
        ("ALLO 100", 202),
        ("STRU F", 200),
        ("MODE S", 200),
        ("TYPE L 8", 200),
        ("SITE HELP", 214),
        ("SITE CHMOD 777 f", 500),
        ("HELP RETR", 214),
    ] {
        assert_eq!(send(&mut s, cmd), vec![code], "{cmd}");
    }
}

impl Policy {
    fn into_config(self) -> SessionConfig {
        SessionConfig {
            policy: self,
            ..config()
        }
    }
}

/// Found by the `session` fuzz target: events that arrive after the close
/// (a transfer or authentication finishing late) must produce nothing.
#[test]
fn nothing_after_close() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "RETR f");
    s.handle_shutdown();
    send(&mut s, "QUIT");
    let _ = drain(&mut s);
    let mut s = new_session(config());
    send(&mut s, "AUTH TLS");
    s.handle_shutdown();
    assert_eq!(codes(&drain(&mut s)), vec![421]);
    s.handle_tls_failed(TlsFailure::MidHandshake);
    s.handle_timeout(now() + Duration::from_secs(3600));
    s.handle_line_too_long();
    s.handle_tls_established(now());
    assert_eq!(drain(&mut s), vec![]);
    let mut s = new_session(config());
    with_tls(&mut s);
    send(&mut s, "USER alice");
    send(&mut s, "PASS pw");
    s.handle_timeout(now() + Duration::from_secs(3600));
    assert_eq!(codes(&drain(&mut s)), vec![421]);
    s.handle_auth_result(Some(grant(Policy::default())));
    assert_eq!(drain(&mut s), vec![]);
    assert!(s.is_closed());
}

/// The login and idle deadlines and the login-failure count.
mod extensions;
mod timers;

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of lines and I/O answers never panics and every
        /// command gets at most the replies it should.
        #[test]
        fn never_panics_on_arbitrary_lines(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..30)) {
            let mut s = ServerSession::new(config(), now());
            for line in lines {
                s.handle_line(&line, now());
                while let Some(action) = s.poll_action() {
                    match action {
                        Action::UpgradeTls => s.handle_tls_established(now()),
                        Action::Authenticate { .. } => s.handle_auth_result(Some(grant(Policy::default()))),
                        Action::Fs(_) => s.handle_fs_result(FsResponse::Failed(FsError::NotFound)),
                        Action::OpenPassive(_) => s.handle_passive_opened(Some("127.0.0.1:50000".parse().unwrap())),
                        Action::StartTransfer(_) => s.handle_transfer_done(TransferOutcome::Complete { bytes: 0 }, now()),
                        _ => {}
                    }
                }
            }
        }
    }
}
