//! Timestamps in FTP text.
//!
//! This module owns the `time-val` format of RFC 3659 §2.3
//! (`YYYYMMDDHHMMSS[.fff]`, always UTC), used by `MDTM` (§3) and the
//! `modify` fact of `MLST`/`MLSD` (§7.5.3), and the `ls -l` style date column
//! of `LIST` output (RFC 959 leaves that format to the server; the Unix one
//! is what clients expect).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Earliest representable time: 0000-01-01T00:00:00Z.
const MIN_UNIX: i64 = -62_167_219_200;
/// Latest representable time: 9999-12-31T23:59:59Z.
const MAX_UNIX: i64 = 253_402_300_799;

/// Half a year in seconds: newer `LIST` dates show a time, older a year.
const RECENT_SECS: i64 = 180 * 86_400;
/// How far in the future a `LIST` date may be and still show a time.
const FUTURE_SECS: i64 = 3_600;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The UTC date and time of `unix_secs`, clamped to years 0000..=9999.
fn utc(unix_secs: i64) -> OffsetDateTime {
    let clamped = unix_secs.clamp(MIN_UNIX, MAX_UNIX);
    OffsetDateTime::from_unix_timestamp(clamped).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Format seconds since the Unix epoch as an RFC 3659 `time-val`,
/// `YYYYMMDDHHMMSS` in UTC. Times outside years 0000..=9999 are clamped.
pub fn format_time_val(unix_secs: i64) -> String {
    let t = utc(unix_secs);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parse an RFC 3659 `time-val` (`YYYYMMDDHHMMSS`, optionally followed by
/// `.` and fraction digits, which are dropped) into seconds since the Unix
/// epoch. A leap second (`60`) is read as `59`. `None` if it is not a valid
/// date and time.
pub fn parse_time_val(s: &str) -> Option<i64> {
    let (main, fraction) = match s.split_once('.') {
        Some((main, fraction)) => (main, Some(fraction)),
        None => (s, None),
    };
    if let Some(f) = fraction {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    if main.len() != 14 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| main.get(range)?.parse::<u16>().ok();
    let year = i32::from(num(0..4)?);
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let hour = u8::try_from(num(8..10)?).ok()?;
    let minute = u8::try_from(num(10..12)?).ok()?;
    let second = u8::try_from(num(12..14)?).ok()?;
    let second = if second == 60 { 59 } else { second };
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// The English three-letter abbreviation of a month.
pub(crate) fn month_abbrev(month: Month) -> &'static str {
    MONTHS
        .get(usize::from(u8::from(month)).saturating_sub(1))
        .copied()
        .unwrap_or("Jan")
}

/// The month for an English three-letter abbreviation, case-insensitive.
pub(crate) fn month_from_abbrev(s: &[u8]) -> Option<Month> {
    let i = MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(s))?;
    Month::try_from(u8::try_from(i + 1).ok()?).ok()
}

/// Whether a `LIST` date is recent enough to be shown with a time of day
/// instead of a year: at most 180 days in the past and at most one hour in
/// the future.
pub(crate) fn is_recent(unix_secs: i64, now_unix_secs: i64) -> bool {
    unix_secs >= now_unix_secs.saturating_sub(RECENT_SECS)
        && unix_secs <= now_unix_secs.saturating_add(FUTURE_SECS)
}

/// Format a time for the date column of `LIST` output, `ls -l` style, UTC:
/// `Nov 21 15:10` for recent times (see the module docs), `Nov 21  2025`
/// otherwise. Always 12 characters.
pub fn format_list_time(unix_secs: i64, now_unix_secs: i64) -> String {
    let t = utc(unix_secs);
    let month = month_abbrev(t.month());
    if is_recent(unix_secs, now_unix_secs) {
        format!("{month} {:>2} {:02}:{:02}", t.day(), t.hour(), t.minute())
    } else {
        format!("{month} {:>2}  {:04}", t.day(), t.year())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    #[test]
    fn clamp_bounds_are_years_0000_and_9999() {
        assert_eq!(datetime!(0000-01-01 0:00 UTC).unix_timestamp(), MIN_UNIX);
        assert_eq!(
            datetime!(9999-12-31 23:59:59 UTC).unix_timestamp(),
            MAX_UNIX
        );
    }

    #[test]
    fn rfc3659_time_val_formats_utc() {
        assert_eq!(format_time_val(0), "19700101000000");
        let t = datetime!(2026-11-21 15:10:00 UTC).unix_timestamp();
        assert_eq!(format_time_val(t), "20261121151000");
        assert_eq!(format_time_val(i64::MAX), "99991231235959");
        assert_eq!(format_time_val(i64::MIN), "00000101000000");
    }

    #[test]
    fn rfc3659_time_val_parses_with_and_without_fraction() {
        let t = datetime!(2026-11-21 15:10:00 UTC).unix_timestamp();
        assert_eq!(parse_time_val("20261121151000"), Some(t));
        assert_eq!(parse_time_val("20261121151000.123"), Some(t));
        assert_eq!(parse_time_val("20261121151000.9"), Some(t));
        assert_eq!(parse_time_val("19691231235959"), Some(-1));
    }

    #[test]
    fn rfc3659_time_val_leap_second_reads_as_59() {
        let t = datetime!(2016-12-31 23:59:59 UTC).unix_timestamp();
        assert_eq!(parse_time_val("20161231235960"), Some(t));
    }

    #[test]
    fn rfc3659_time_val_rejects_invalid() {
        for bad in [
            "",
            "2026112115100",
            "202611211510000",
            "20261321151000",
            "20261131151000",
            "20261121241000",
            "20261121156000",
            "20261121151000.",
            "20261121151000.x",
            "2026112115100a",
            "+2026112115100",
            "20261121151000Z",
            "２０261121151000",
        ] {
            assert_eq!(parse_time_val(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn list_time_recent_shows_hour_and_minute() {
        let now = datetime!(2026-11-21 16:00 UTC).unix_timestamp();
        let t = datetime!(2026-11-21 15:10 UTC).unix_timestamp();
        assert_eq!(format_list_time(t, now), "Nov 21 15:10");
        let t = datetime!(2026-11-01 09:05 UTC).unix_timestamp();
        assert_eq!(format_list_time(t, now), "Nov  1 09:05");
        let soon = datetime!(2026-11-21 16:59 UTC).unix_timestamp();
        assert_eq!(format_list_time(soon, now), "Nov 21 16:59");
    }

    #[test]
    fn list_time_old_or_future_shows_year() {
        let now = datetime!(2026-11-21 16:00 UTC).unix_timestamp();
        let old = datetime!(2025-11-21 15:10 UTC).unix_timestamp();
        assert_eq!(format_list_time(old, now), "Nov 21  2025");
        let future = datetime!(2026-11-21 17:01 UTC).unix_timestamp();
        assert_eq!(format_list_time(future, now), "Nov 21  2026");
        let edge = now - RECENT_SECS;
        assert_eq!(format_list_time(edge, now), "May 25 16:00");
        assert_eq!(format_list_time(edge - 1, now), "May 25  2026");
    }

    #[test]
    fn month_abbreviations_round_trip() {
        for m in 1..=12u8 {
            let month = Month::try_from(m).unwrap();
            assert_eq!(
                month_from_abbrev(month_abbrev(month).as_bytes()),
                Some(month)
            );
        }
        assert_eq!(month_from_abbrev(b"nov"), Some(Month::November));
        assert_eq!(month_from_abbrev(b"Nove"), None);
    }

    proptest! {
        #[test]
        fn prop_time_val_round_trip(t in MIN_UNIX..=MAX_UNIX) {
            prop_assert_eq!(parse_time_val(&format_time_val(t)), Some(t));
        }

        #[test]
        fn prop_formatting_never_panics(t in any::<i64>(), now in any::<i64>()) {
            prop_assert_eq!(format_time_val(t).len(), 14);
            prop_assert_eq!(format_list_time(t, now).len(), 12);
        }

        #[test]
        fn prop_parse_time_val_never_panics(s in "\\PC{0,24}", d in "[0-9.]{0,20}") {
            let _ = parse_time_val(&s);
            let _ = parse_time_val(&d);
        }
    }
}
