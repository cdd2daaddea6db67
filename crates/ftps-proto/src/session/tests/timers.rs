//! Unit tests of the session's deadlines (login and idle timeouts), its
//! login-failure count and the login it reports, named after the rule they
//! check. Time is an input: every test drives its own clock from `t0`.

use super::*;

const LOGIN: Duration = Duration::from_secs(60);
const IDLE: Duration = Duration::from_secs(600);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A session connected at `t0` with the test timeouts.
fn session_at(t0: Instant) -> ServerSession {
    session_with(config(), t0)
}

fn session_with(config: SessionConfig, t0: Instant) -> ServerSession {
    let mut s = ServerSession::new(
        SessionConfig {
            login_timeout: LOGIN,
            idle_timeout: IDLE,
            ..config
        },
        t0,
    );
    assert_eq!(codes(&drain(&mut s)), vec![220]);
    s
}

/// One line that arrived at `t`: its bytes, then the line.
fn line_at(s: &mut ServerSession, line: &str, t: Instant) -> Vec<Action> {
    s.handle_input(t);
    s.handle_line(line.as_bytes(), t);
    drain(s)
}

/// AUTH TLS and a password login, all at `t`.
fn logged_in_at(t0: Instant, t: Instant) -> ServerSession {
    let mut s = session_at(t0);
    assert_eq!(codes(&line_at(&mut s, "AUTH TLS", t)), vec![234]);
    s.handle_tls_established(t);
    drain(&mut s);
    assert_eq!(codes(&line_at(&mut s, "USER alice", t)), vec![331]);
    line_at(&mut s, "PASS secret", t);
    s.handle_auth_result(Some(grant(Policy::default())));
    assert_eq!(codes(&drain(&mut s)), vec![230]);
    s
}

/// The deadline passed: exactly one 421 with this text, then the close.
fn assert_timed_out(s: &mut ServerSession, now: Instant, text: &str) {
    s.handle_timeout(now);
    let actions = drain(s);
    assert_eq!(codes(&actions), vec![421]);
    assert_eq!(reply_text(&actions), text);
    assert_eq!(actions.last(), Some(&Action::Close));
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None);
}

// ---- Login timeout ----

#[test]
fn login_timeout_is_421_and_close() {
    let t0 = Instant::now();
    let mut s = session_at(t0);
    assert_eq!(s.poll_timeout(), Some(t0 + LOGIN));
    assert_timed_out(
        &mut s,
        t0 + LOGIN,
        "Login timeout: closing control connection.",
    );
    s.handle_timeout(t0 + LOGIN + secs(1));
    assert_eq!(drain(&mut s), vec![]);
}

#[test]
fn handle_timeout_before_the_deadline_does_nothing() {
    let t0 = Instant::now();
    let mut s = session_at(t0);
    s.handle_timeout(t0 + LOGIN - Duration::from_millis(1));
    assert_eq!(drain(&mut s), vec![]);
    assert!(!s.is_closed());
    let mut s = logged_in_at(t0, t0 + secs(5));
    s.handle_timeout(t0 + secs(5) + IDLE - Duration::from_millis(1));
    assert_eq!(drain(&mut s), vec![]);
    assert!(!s.is_closed());
    assert_eq!(send(&mut s, "NOOP"), vec![200]);
}

#[test]
fn slowloris_chatty_client_never_logged_in_times_out_at_the_login_deadline() {
    let t0 = Instant::now();
    let mut s = session_at(t0);
    // Whole commands every 5 s, partial lines in between, USER without PASS.
    for n in (5..LOGIN.as_secs()).step_by(5) {
        assert_eq!(codes(&line_at(&mut s, "NOOP", t0 + secs(n))), vec![200]);
        s.handle_input(t0 + secs(n) + Duration::from_millis(2500));
        assert_eq!(s.poll_timeout(), Some(t0 + LOGIN));
    }
    line_at(&mut s, "AUTH TLS", t0 + secs(56));
    s.handle_tls_established(t0 + secs(57));
    assert_eq!(
        codes(&line_at(&mut s, "USER alice", t0 + secs(58))),
        vec![331]
    );
    assert_eq!(s.poll_timeout(), Some(t0 + LOGIN));
    s.handle_input(t0 + secs(59));
    assert_timed_out(
        &mut s,
        t0 + LOGIN,
        "Login timeout: closing control connection.",
    );
}

#[test]
fn wrong_passwords_do_not_restart_the_login_deadline() {
    let t0 = Instant::now();
    let mut s = session_at(t0);
    line_at(&mut s, "AUTH TLS", t0);
    s.handle_tls_established(t0);
    line_at(&mut s, "USER alice", t0 + secs(30));
    line_at(&mut s, "PASS wrong", t0 + secs(30));
    s.handle_auth_result(None);
    assert_eq!(codes(&drain(&mut s)), vec![530]);
    assert_eq!(s.poll_timeout(), Some(t0 + LOGIN));
}

// ---- Idle timeout after login ----

#[test]
fn idle_timer_after_login_restarts_on_activity() {
    let t0 = Instant::now();
    let mut s = logged_in_at(t0, t0 + secs(50));
    // From the last received byte (the PASS line); the login deadline is over.
    assert_eq!(s.poll_timeout(), Some(t0 + secs(50) + IDLE));
    s.handle_timeout(t0 + LOGIN + secs(1));
    assert_eq!(drain(&mut s), vec![]);
    // A command is activity.
    assert_eq!(codes(&line_at(&mut s, "NOOP", t0 + secs(300))), vec![200]);
    assert_eq!(s.poll_timeout(), Some(t0 + secs(300) + IDLE));
    // So is any byte, a whole line or not.
    s.handle_input(t0 + secs(400));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(400) + IDLE));
    s.handle_timeout(t0 + secs(300) + IDLE);
    assert_eq!(drain(&mut s), vec![]);
    assert_timed_out(
        &mut s,
        t0 + secs(400) + IDLE,
        "Idle timeout: closing control connection.",
    );
}

#[test]
fn no_deadline_while_a_transfer_runs_and_the_idle_timer_restarts_after_it() {
    let t0 = Instant::now();
    let mut s = logged_in_at(t0, t0);
    line_at(&mut s, "PBSZ 0", t0);
    line_at(&mut s, "PROT P", t0);
    let actions = line_at(&mut s, "PASV", t0 + secs(10));
    assert_eq!(actions, vec![Action::OpenPassive(PassiveKind::Pasv)]);
    s.handle_passive_opened(Some("127.0.0.1:50000".parse().unwrap()));
    drain(&mut s);
    let actions = line_at(&mut s, "RETR big", t0 + secs(10));
    assert!(started(&actions).is_some());
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t0 + secs(10) + IDLE * 10);
    assert_eq!(drain(&mut s), vec![]);
    assert!(!s.is_closed());
    let done = t0 + secs(10) + IDLE * 10;
    s.handle_transfer_done(TransferOutcome::Complete { bytes: 1 << 30 }, done);
    assert_eq!(codes(&drain(&mut s)), vec![226]);
    assert_eq!(s.poll_timeout(), Some(done + IDLE));
    s.handle_timeout(done + IDLE - secs(1));
    assert_eq!(drain(&mut s), vec![]);
    assert_timed_out(
        &mut s,
        done + IDLE,
        "Idle timeout: closing control connection.",
    );
}

// ---- Logout restarts the login deadline ----

#[test]
fn rein_after_login_restarts_the_login_deadline() {
    let t0 = Instant::now();
    let mut s = logged_in_at(t0, t0 + secs(10));
    let actions = line_at(&mut s, "REIN", t0 + secs(500));
    assert!(actions.contains(&Action::LoggedOut));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(500) + LOGIN));
    // REIN before login leaves the deadline where it is.
    line_at(&mut s, "REIN", t0 + secs(530));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(500) + LOGIN));
    assert_timed_out(
        &mut s,
        t0 + secs(500) + LOGIN,
        "Login timeout: closing control connection.",
    );
}

#[test]
fn user_after_login_restarts_the_login_deadline() {
    let t0 = Instant::now();
    let mut s = logged_in_at(t0, t0 + secs(10));
    let actions = line_at(&mut s, "USER bob", t0 + secs(200));
    assert_eq!(actions.first(), Some(&Action::LoggedOut));
    assert_eq!(codes(&actions), vec![331]);
    assert_eq!(s.poll_timeout(), Some(t0 + secs(200) + LOGIN));
    // A second USER (not logged in) does not restart it.
    line_at(&mut s, "USER carol", t0 + secs(230));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(200) + LOGIN));
}

#[test]
fn auth_after_login_restarts_the_login_deadline_when_the_handshake_ends() {
    let t0 = Instant::now();
    // Plain login allowed here: AUTH after it logs the user out.
    let plain = Policy {
        require_tls: false,
        ..Policy::default()
    };
    let mut s = session_with(plain.into_config(), t0);
    line_at(&mut s, "USER alice", t0);
    line_at(&mut s, "PASS secret", t0);
    s.handle_auth_result(Some(grant(plain)));
    assert_eq!(codes(&drain(&mut s)), vec![230]);
    assert_eq!(
        codes(&line_at(&mut s, "AUTH TLS", t0 + secs(100))),
        vec![234]
    );
    assert_eq!(s.poll_timeout(), Some(t0 + secs(100) + IDLE));
    s.handle_tls_established(t0 + secs(110));
    assert!(drain(&mut s).contains(&Action::LoggedOut));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(110) + LOGIN));
}

#[test]
fn rein_deferred_during_a_transfer_restarts_the_login_deadline_when_it_ends() {
    let t0 = Instant::now();
    let mut s = logged_in_at(t0, t0);
    line_at(&mut s, "PBSZ 0", t0);
    line_at(&mut s, "PROT P", t0);
    line_at(&mut s, "PASV", t0);
    s.handle_passive_opened(Some("127.0.0.1:50000".parse().unwrap()));
    drain(&mut s);
    line_at(&mut s, "RETR f", t0);
    assert!(line_at(&mut s, "REIN", t0 + secs(5)).is_empty());
    s.handle_transfer_done(TransferOutcome::Complete { bytes: 1 }, t0 + secs(900));
    let actions = drain(&mut s);
    assert_eq!(codes(&actions), vec![226, 220]);
    assert!(actions.contains(&Action::LoggedOut));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(900) + LOGIN));
}

#[test]
fn timeouts_too_large_for_an_instant_mean_no_deadline() {
    let t0 = Instant::now();
    let mut s = ServerSession::new(
        SessionConfig {
            login_timeout: Duration::MAX,
            idle_timeout: Duration::MAX,
            ..config()
        },
        t0,
    );
    drain(&mut s);
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t0 + secs(86_400 * 365));
    assert_eq!(drain(&mut s), vec![]);
}

// ---- Login failures and the login record ----

#[test]
fn login_failures_are_counted_once_and_close_after_max_login_failures() {
    let mut s = new_session(config());
    with_tls(&mut s);
    assert_eq!(s.login_failures(), 0);
    for attempt in 1..=3u32 {
        send(&mut s, "USER alice");
        send(&mut s, "PASS wrong");
        // Not counted before the authenticator answers.
        assert_eq!(s.login_failures(), attempt - 1);
        s.handle_auth_result(None);
        // Counted once, the failure just answered included.
        assert_eq!(s.login_failures(), attempt);
        let actions = drain(&mut s);
        assert_eq!(codes(&actions), vec![530]);
        assert_eq!(actions.last() == Some(&Action::Close), attempt == 3);
        assert_eq!(s.is_closed(), attempt == 3);
    }
}

#[test]
fn login_failures_survive_a_login_and_a_tls_refusal_is_not_one() {
    let mut s = new_session(config());
    with_tls(&mut s);
    send(&mut s, "USER alice");
    send(&mut s, "PASS wrong");
    s.handle_auth_result(None);
    drain(&mut s);
    login(&mut s, Policy::default());
    assert_eq!(s.login_failures(), 1);
    // A right password refused by the user's TLS policy is no failure.
    let mut s = new_session(SessionConfig {
        policy: Policy {
            require_tls: false,
            ..Policy::default()
        },
        ..config()
    });
    send(&mut s, "USER alice");
    send(&mut s, "PASS secret");
    s.handle_auth_result(Some(grant(Policy::default())));
    assert_eq!(codes(&drain(&mut s)), vec![530]);
    assert_eq!(s.login_failures(), 0);
}

#[test]
fn logged_in_action_follows_the_reply_and_says_how() {
    let mut s = new_session(config());
    with_tls(&mut s);
    send(&mut s, "USER alice");
    send(&mut s, "PASS secret");
    s.handle_auth_result(Some(grant(Policy::default())));
    let actions = drain(&mut s);
    assert_eq!(codes(&actions), vec![230]);
    assert_eq!(
        actions.last(),
        Some(&Action::LoggedIn {
            grant: grant(Policy::default()),
            method: LoginMethod::Password,
        })
    );
    let mut s = new_session(config());
    with_tls(&mut s);
    s.set_client_certificate(true);
    send(&mut s, "USER alice");
    s.handle_user_check(UserCheck::Certificate(grant(Policy::default())));
    let actions = drain(&mut s);
    assert_eq!(codes(&actions), vec![232]);
    assert_eq!(
        actions.last(),
        Some(&Action::LoggedIn {
            grant: grant(Policy::default()),
            method: LoginMethod::Certificate,
        })
    );
    // Refused logins report nothing.
    let mut s = new_session(config());
    with_tls(&mut s);
    send(&mut s, "USER alice");
    send(&mut s, "PASS wrong");
    s.handle_auth_result(None);
    assert!(!drain(&mut s)
        .iter()
        .any(|a| matches!(a, Action::LoggedIn { .. })));
}

/// RFC 2577 §5: a ban holds for sessions opened before it: PASS from a
/// banned address is 421 and the connection closes, whatever the password.
#[test]
fn rfc2577_s5_pass_after_the_address_was_banned_is_421_and_close() {
    let mut s = new_session(config());
    with_tls(&mut s);
    send(&mut s, "USER alice");
    send(&mut s, "PASS right");
    s.handle_address_banned();
    let actions = drain(&mut s);
    assert_eq!(codes(&actions), vec![421]);
    assert_eq!(actions.last(), Some(&Action::Close));
    assert!(s.user().is_none());
}

/// The right password for an account whose directory cannot be opened:
/// 530 that says so, and not a wrong password.
#[test]
fn account_unavailable_is_530_naming_the_directory_and_not_a_failure() {
    let mut s = new_session(config());
    with_tls(&mut s);
    for _ in 0..5 {
        send(&mut s, "USER alice");
        send(&mut s, "PASS right");
        s.handle_account_unavailable();
        let actions = drain(&mut s);
        assert_eq!(codes(&actions), vec![530]);
        match &actions[0] {
            Action::Reply(r) => assert!(r.text().contains("directory"), "{}", r.text()),
            other => panic!("{other:?}"),
        }
        assert!(!s.is_closed());
    }
    assert_eq!(s.login_failures(), 0);
}

/// RFC 959 §4.2: at shutdown an idle session gets 421 at once; a running
/// transfer finishes (226) or is stopped when the grace period ends (426
/// saying why), and 421 follows its reply before the close.
#[test]
fn rfc959_shutdown_during_a_transfer_ends_with_its_reply_then_421() {
    for (outcome, first) in [
        (TransferOutcome::Complete { bytes: 3 }, 226),
        (TransferOutcome::Aborted, 426),
    ] {
        let mut s = secure_session();
        open_pasv(&mut s);
        send(&mut s, "RETR f");
        s.handle_transfer_started(TransferStarted::default());
        drain(&mut s);
        s.handle_shutdown();
        assert!(drain(&mut s).is_empty(), "nothing before the transfer ends");
        s.handle_transfer_done(outcome.clone(), now());
        let actions = drain(&mut s);
        assert_eq!(codes(&actions), vec![first, 421], "{outcome:?}");
        assert_eq!(actions.last(), Some(&Action::Close));
        if first == 426 {
            match &actions[0] {
                Action::Reply(r) => assert!(r.text().contains("shutting down"), "{}", r.text()),
                other => panic!("{other:?}"),
            }
        }
    }
}
