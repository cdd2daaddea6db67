//! MFMT (draft-somers-ftp-mfxx), HASH and OPTS HASH (draft-bryan-ftpext-hash)
//! and RANG (draft-bryan-ftp-range) in the session.

use super::*;

fn hash_started(actions: &[Action]) -> Option<&HashRequest> {
    actions.iter().find_map(|a| match a {
        Action::StartHash(r) => Some(r),
        _ => None,
    })
}

fn reply_text(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply(r) => Some(format!("{} {}", r.code, r.text())),
            _ => None,
        })
        .collect()
}

fn digest(start: u64, end: u64) -> HashDigest {
    HashDigest {
        algorithm: HashAlgorithm::Sha256,
        start,
        end,
        hex: "ab12".into(),
    }
}

#[test]
fn mfxx_mfmt_sets_the_time_and_replies_213_modify() {
    let mut s = secure_session();
    let actions = send_actions(&mut s, "MFMT 20240229123456 dir/a b.txt");
    assert_eq!(
        actions,
        vec![Action::Fs(FsRequest::SetModified {
            path: VirtualPath::root().resolve(b"dir/a b.txt").unwrap(),
            modified: 1_709_210_096,
        })]
    );
    assert!(s.is_waiting());
    s.handle_fs_result(FsResponse::Done);
    assert_eq!(
        reply_text(&drain(&mut s)),
        vec!["213 Modify=20240229123456; dir/a b.txt".to_string()]
    );
}

#[test]
fn mfxx_mfmt_failures_map_like_other_file_commands() {
    for (error, code) in [
        (FsError::NotFound, 550),
        (FsError::Unsupported, 502),
        (FsError::PermissionDenied, 550),
    ] {
        let mut s = secure_session();
        send(&mut s, "MFMT 20240229123456 f");
        s.handle_fs_result(FsResponse::Failed(error.clone()));
        assert_eq!(codes(&drain(&mut s)), vec![code], "{error:?}");
    }
}

#[test]
fn mfxx_mfmt_needs_write_permission_and_login() {
    let mut s = new_session(config());
    with_tls(&mut s);
    assert_eq!(send(&mut s, "MFMT 20240229123456 f"), vec![530]);
    let read_only = LoginGrant {
        write: false,
        ..grant(Policy::default())
    };
    send(&mut s, "USER alice");
    send(&mut s, "PASS x");
    s.handle_auth_result(Some(read_only));
    drain(&mut s);
    assert_eq!(send(&mut s, "MFMT 20240229123456 f"), vec![550]);
}

#[test]
fn hash_draft_s2_feat_lists_hash_with_the_selection_starred_and_mfmt() {
    let mut s = secure_session();
    let text = reply_text(&send_actions(&mut s, "FEAT")).join("");
    assert!(text.contains(" HASH SHA-256*;SHA-512"), "{text}");
    assert!(text.contains(" MFMT"), "{text}");
    send(&mut s, "OPTS HASH SHA-512");
    let text = reply_text(&send_actions(&mut s, "FEAT")).join("");
    assert!(text.contains(" HASH SHA-256;SHA-512*"), "{text}");
}

#[test]
fn hash_draft_s4_opts_hash_queries_and_selects_and_refuses_unknown() {
    let mut s = secure_session();
    assert_eq!(
        reply_text(&send_actions(&mut s, "OPTS HASH")),
        vec!["200 SHA-256"]
    );
    assert_eq!(
        reply_text(&send_actions(&mut s, "OPTS HASH sha-512")),
        vec!["200 SHA-512"]
    );
    let refused = reply_text(&send_actions(&mut s, "OPTS HASH MD4"));
    assert!(refused[0].starts_with("501 "), "{refused:?}");
    assert_eq!(
        reply_text(&send_actions(&mut s, "OPTS HASH")),
        vec!["200 SHA-512"],
        "an unknown algorithm leaves the selection"
    );
}

#[test]
fn hash_draft_s3_hash_replies_213_algorithm_range_hex_path() {
    let mut s = secure_session();
    let actions = send_actions(&mut s, "HASH sub/file name.bin");
    assert_eq!(
        hash_started(&actions),
        Some(&HashRequest {
            path: VirtualPath::root().resolve(b"sub/file name.bin").unwrap(),
            algorithm: HashAlgorithm::Sha256,
            range: None,
        })
    );
    assert!(s.transfer_active());
    s.handle_hash_done(Ok(digest(0, 1234)), now());
    assert_eq!(
        reply_text(&drain(&mut s)),
        vec!["213 SHA-256 0-1234 ab12 sub/file name.bin".to_string()]
    );
    assert!(!s.transfer_active());
}

#[test]
fn hash_draft_s3_failures_550_553_556_501() {
    for (failure, code) in [
        (HashFailure::Fs(FsError::NotFound), 550),
        (HashFailure::Fs(FsError::IsADirectory), 553),
        (HashFailure::Fs(FsError::NotAFile), 553),
        (
            HashFailure::TooLarge {
                bytes: 10,
                limit: 5,
            },
            556,
        ),
        (HashFailure::RangeBeyondEnd, 501),
    ] {
        let mut s = secure_session();
        send(&mut s, "HASH f");
        s.handle_hash_done(Err(failure.clone()), now());
        assert_eq!(codes(&drain(&mut s)), vec![code], "{failure:?}");
    }
}

#[test]
fn hash_is_cancelled_by_abor_426_then_226_and_stat_reports_progress() {
    let mut s = secure_session();
    send(&mut s, "HASH f");
    s.set_transfer_progress(4096);
    let stat = reply_text(&send_actions(&mut s, "STAT"));
    assert!(
        stat[0].starts_with("213 ") && stat[0].contains("4096"),
        "{stat:?}"
    );
    assert_eq!(send(&mut s, "NOOP"), vec![200]);
    assert_eq!(send(&mut s, "DELE f"), vec![503]);
    let actions = send_actions(&mut s, "ABOR");
    assert_eq!(actions, vec![Action::AbortTransfer]);
    s.handle_hash_done(Err(HashFailure::Aborted), now());
    assert_eq!(codes(&drain(&mut s)), vec![426, 226]);
    assert_eq!(send(&mut s, "NOOP"), vec![200]);
}

#[test]
fn range_draft_rang_sets_the_range_of_the_next_hash_only() {
    let mut s = secure_session();
    assert_eq!(
        reply_text(&send_actions(&mut s, "RANG 10 99")),
        vec!["350 Restarting at 10. Ending byte 99.".to_string()]
    );
    let actions = send_actions(&mut s, "HASH f");
    assert_eq!(hash_started(&actions).unwrap().range, Some((10, 99)));
    s.handle_hash_done(Ok(digest(10, 100)), now());
    let text = reply_text(&drain(&mut s));
    assert!(text[0].starts_with("213 SHA-256 10-100 "), "{text:?}");
    // Used up: the next HASH covers the whole file.
    let actions = send_actions(&mut s, "HASH f");
    assert_eq!(hash_started(&actions).unwrap().range, None);
}

#[test]
fn range_draft_rang_1_0_resets_and_other_commands_clear_it() {
    let mut s = secure_session();
    send(&mut s, "RANG 0 9");
    assert_eq!(send(&mut s, "RANG 1 0"), vec![350]);
    let actions = send_actions(&mut s, "HASH f");
    assert_eq!(hash_started(&actions).unwrap().range, None);
    s.handle_hash_done(Ok(digest(0, 1)), now());
    drain(&mut s);
    send(&mut s, "RANG 0 9");
    assert_eq!(send(&mut s, "PWD"), vec![257]);
    let actions = send_actions(&mut s, "HASH f");
    assert_eq!(hash_started(&actions).unwrap().range, None);
}

#[test]
fn range_draft_rang_before_retr_or_stor_is_refused_not_ignored() {
    let mut s = secure_session();
    open_pasv(&mut s);
    send(&mut s, "RANG 0 9");
    let actions = send_actions(&mut s, "RETR f");
    assert_eq!(codes(&actions), vec![504]);
    assert!(started(&actions).is_none());
    // The range is reset: the same command goes through now.
    let actions = send_actions(&mut s, "RETR f");
    assert!(started(&actions).is_some());
}

#[test]
fn rein_resets_the_hash_algorithm() {
    let mut s = secure_session();
    send(&mut s, "OPTS HASH SHA-512");
    send(&mut s, "REIN");
    drain(&mut s);
    assert_eq!(
        reply_text(&send_actions(&mut s, "OPTS HASH")),
        vec!["200 SHA-256"]
    );
}
