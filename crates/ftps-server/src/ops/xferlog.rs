//! The xferlog format of wu-ftpd, which vsftpd (`xferlog_std_format`) and
//! ProFTPD (`TransferLog`) write too, so that existing log tools keep
//! working: one line per transfer (and per deletion), 18 space-separated
//! fields as xferlog(5) describes them:
//!
//! ```text
//! current-time transfer-time remote-host file-size filename transfer-type
//! special-action-flag direction access-mode username service-name
//! authentication-method authenticated-user-id completion-status
//! ```
//!
//! `current-time` is `DDD MMM dd hh:mm:ss YYYY` (five fields, the day
//! padded with a space as ctime(3) does), in UTC as vsftpd writes it by
//! default; `transfer-time` whole seconds, at least 1; spaces and control
//! characters in the file name become `_`; `direction` is `o` (download),
//! `i` (upload) or `d` (deleted); `access-mode` `a` (anonymous) or `r`;
//! `service-name` is `ftp`, `authentication-method` `0` and
//! `authenticated-user-id` `*`; `completion-status` `c` (complete) or `i`.

use super::event::{Event, EventKind, Outcome};

/// The xferlog line (without the line end) for `event`, if it is one the
/// format has: uploads, downloads and deletions.
pub fn line(event: &Event) -> Option<String> {
    let direction = match event.kind {
        EventKind::Upload => 'i',
        EventKind::Download => 'o',
        EventKind::Delete if event.outcome == Outcome::Ok => 'd',
        _ => return None,
    };
    let time = time::OffsetDateTime::from(event.time);
    let format = time::macros::format_description!(
        "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
    );
    let when = time.format(&format).ok()?;
    let seconds = event.seconds.unwrap_or(0.0).round().max(1.0) as u64;
    let file: String = event
        .path
        .as_deref()
        .unwrap_or("-")
        .chars()
        .map(|c| if c == ' ' || c.is_control() { '_' } else { c })
        .collect();
    let user: String = event
        .user
        .as_deref()
        .unwrap_or("-")
        .chars()
        .map(|c| if c == ' ' || c.is_control() { '_' } else { c })
        .collect();
    let status = if event.outcome == Outcome::Ok {
        'c'
    } else {
        'i'
    };
    Some(format!(
        "{when} {seconds} {remote} {bytes} {file} {ty} _ {direction} {mode} {user} ftp 0 * {status}",
        remote = event.remote,
        bytes = event.bytes.unwrap_or(0),
        ty = if event.binary { 'b' } else { 'a' },
        mode = if event.anonymous { 'a' } else { 'r' },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn xferlog_5_fields_of_a_download() {
        let mut event = Event::new(EventKind::Download, 1, "192.0.2.9".parse().unwrap());
        // Wednesday 2024-05-01 06:07:08 UTC.
        event.time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_543_628);
        event.user = Some("alice".into());
        event.path = Some("/in box/a\tb.txt".into());
        event.bytes = Some(1234);
        event.seconds = Some(0.2);
        assert_eq!(
            line(&event).unwrap(),
            "Wed May  1 06:07:08 2024 1 192.0.2.9 1234 /in_box/a_b.txt b _ o r alice ftp 0 * c"
        );
    }

    #[test]
    fn xferlog_5_incomplete_upload_and_deletion() {
        let mut event = Event::new(EventKind::Upload, 1, "::1".parse().unwrap());
        event.outcome = Outcome::Failed;
        event.binary = false;
        event.anonymous = true;
        event.seconds = Some(12.6);
        let fields: Vec<String> = line(&event)
            .unwrap()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let (fields, time) = (&fields[5..], &fields[..5]);
        assert_eq!(time.len(), 5);
        assert_eq!(
            fields,
            ["13", "::1", "0", "-", "a", "_", "i", "a", "-", "ftp", "0", "*", "i"]
        );
        event.kind = EventKind::Delete;
        assert_eq!(line(&event), None, "a failed deletion is not a line");
        event.outcome = Outcome::Ok;
        assert!(line(&event).unwrap().contains(" d a - ftp 0 * c"));
        event.kind = EventKind::Login;
        assert_eq!(line(&event), None);
    }
}
