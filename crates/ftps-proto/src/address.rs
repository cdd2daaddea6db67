//! Data-connection addresses as they appear in commands and replies.
//!
//! This module owns the text forms of host/port pairs: the `PORT` argument
//! and the `227` reply to `PASV` of RFC 959 §4.1.2 (six decimal byte values
//! `h1,h2,h3,h4,p1,p2`), and the `EPRT` argument and `229` reply to `EPSV` of
//! RFC 2428 §2 and §3 (`<d><af><d><addr><d><port><d>` with a delimiter
//! chosen by the sender).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

/// Why an address text was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum AddressError {
    /// The text does not have the expected form.
    #[error("malformed address: {0}")]
    Malformed(&'static str),
    /// An `EPRT` address family other than 1 (IPv4) or 2 (IPv6).
    #[error("unsupported network protocol {0}")]
    UnsupportedFamily(String),
}

/// Parse the argument of `PORT`: `h1,h2,h3,h4,p1,p2`, each a decimal number
/// in `0..=255` (RFC 959 §4.1.2). Spaces around the numbers are tolerated.
pub fn parse_port_arg(arg: &str) -> Result<SocketAddrV4, AddressError> {
    let mut bytes = [0u8; 6];
    let mut parts = arg.split(',');
    for slot in bytes.iter_mut() {
        let part = parts
            .next()
            .ok_or(AddressError::Malformed("expected six numbers"))?;
        *slot = parse_byte(part.trim_matches(' '))
            .ok_or(AddressError::Malformed("each number must be 0..=255"))?;
    }
    if parts.next().is_some() {
        return Err(AddressError::Malformed("expected six numbers"));
    }
    Ok(from_six(bytes))
}

/// A decimal number of one to three digits in `0..=255`.
fn parse_byte(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn from_six([h1, h2, h3, h4, p1, p2]: [u8; 6]) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(h1, h2, h3, h4), u16::from_be_bytes([p1, p2]))
}

/// Format an address as a `PORT` argument, e.g. `127,0,0,1,4,1`.
pub fn format_port_arg(addr: SocketAddrV4) -> String {
    let [h1, h2, h3, h4] = addr.ip().octets();
    let [p1, p2] = addr.port().to_be_bytes();
    format!("{h1},{h2},{h3},{h4},{p1},{p2}")
}

/// The text of a `227` reply, e.g. `Entering Passive Mode (127,0,0,1,4,1).`
pub fn format_pasv_reply_text(addr: SocketAddrV4) -> String {
    format!("Entering Passive Mode ({}).", format_port_arg(addr))
}

/// Find the address in the text of a `227` reply (client side).
///
/// RFC 959 does not fix where the numbers are, so the first run of six
/// comma-separated numbers anywhere in the text is used, with or without
/// parentheses around it.
pub fn parse_pasv_reply_text(text: &str) -> Result<SocketAddrV4, AddressError> {
    let bytes = text.as_bytes();
    let mut prev_digit = false;
    for (i, &b) in bytes.iter().enumerate() {
        let is_digit = b.is_ascii_digit();
        if is_digit && !prev_digit {
            if let Some(six) = bytes.get(i..).and_then(six_numbers_at) {
                return Ok(from_six(six));
            }
        }
        prev_digit = is_digit;
    }
    Err(AddressError::Malformed("no h1,h2,h3,h4,p1,p2 in reply"))
}

/// Six comma-separated byte values at the start of `s`, not followed by
/// another digit.
fn six_numbers_at(s: &[u8]) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut rest = s;
    for (n, slot) in out.iter_mut().enumerate() {
        if n > 0 {
            rest = rest.strip_prefix(b",")?;
        }
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (digits, tail) = rest.split_at_checked(len)?;
        *slot = parse_byte(std::str::from_utf8(digits).ok()?)?;
        rest = tail;
    }
    Some(out)
}

/// Whether `c` may be an RFC 2428 delimiter (printable ASCII 33..=126).
fn is_delimiter(c: char) -> bool {
    ('!'..='~').contains(&c)
}

/// Parse the argument of `EPRT`: `<d><af><d><addr><d><port><d>`
/// (RFC 2428 §2). `af` 1 is IPv4 in dotted decimal, 2 is IPv6 in text form;
/// another number gives [`AddressError::UnsupportedFamily`]. The port must be
/// in `1..=65535`. Spaces around the argument are ignored.
pub fn parse_eprt_arg(arg: &str) -> Result<SocketAddr, AddressError> {
    let arg = arg.trim_matches(' ');
    let mut chars = arg.chars();
    let d = chars
        .next()
        .filter(|&c| is_delimiter(c))
        .ok_or(AddressError::Malformed("bad delimiter"))?;
    let mut fields = chars.as_str().split(d);
    let (Some(af), Some(addr), Some(port), Some(""), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(AddressError::Malformed("expected <d>af<d>addr<d>port<d>"));
    };
    if af.is_empty() || !af.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::Malformed("address family must be a number"));
    }
    let ip = match af {
        "1" => IpAddr::V4(
            addr.parse::<Ipv4Addr>()
                .map_err(|_| AddressError::Malformed("bad IPv4 address"))?,
        ),
        "2" => IpAddr::V6(
            addr.parse::<Ipv6Addr>()
                .map_err(|_| AddressError::Malformed("bad IPv6 address"))?,
        ),
        other => return Err(AddressError::UnsupportedFamily(other.to_string())),
    };
    let port = parse_port_number(port).ok_or(AddressError::Malformed("bad port"))?;
    Ok(SocketAddr::new(ip, port))
}

/// A decimal TCP port in `1..=65535`.
fn parse_port_number(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|&p| p != 0)
}

/// Format an address as an `EPRT` argument, e.g. `|1|127.0.0.1|1025|` or
/// `|2|::1|1025|`.
pub fn format_eprt_arg(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("|1|{}|{}|", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("|2|{}|{}|", a.ip(), a.port()),
    }
}

/// The text of a `229` reply: `Entering Extended Passive Mode (|||1025|)`
/// (RFC 2428 §3).
pub fn format_epsv_reply_text(port: u16) -> String {
    format!("Entering Extended Passive Mode (|||{port}|)")
}

/// The port in the text of a `229` reply (client side): inside the
/// parentheses, `<d><d><d><port><d>` where `<d>` is the character following
/// `(` (RFC 2428 §3).
pub fn parse_epsv_reply_text(text: &str) -> Result<u16, AddressError> {
    let (_, after) = text
        .split_once('(')
        .ok_or(AddressError::Malformed("no '(' in reply"))?;
    let (inside, _) = after
        .split_once(')')
        .ok_or(AddressError::Malformed("no ')' in reply"))?;
    let d = inside
        .chars()
        .next()
        .filter(|&c| is_delimiter(c))
        .ok_or(AddressError::Malformed("bad delimiter"))?;
    let mut fields = inside.split(d);
    let (Some(""), Some(""), Some(""), Some(port), Some(""), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(AddressError::Malformed("expected (<d><d><d>port<d>)"));
    };
    parse_port_number(port).ok_or(AddressError::Malformed("bad port"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::SocketAddrV6;

    #[test]
    fn rfc959_port_argument_parses() {
        assert_eq!(
            parse_port_arg("127,0,0,1,4,1").unwrap(),
            "127.0.0.1:1025".parse().unwrap()
        );
        assert_eq!(
            parse_port_arg("10, 1, 2, 3, 255, 255").unwrap(),
            "10.1.2.3:65535".parse().unwrap()
        );
    }

    #[test]
    fn rfc959_port_argument_rejects_bad_values() {
        for bad in [
            "",
            "1,2,3,4,5",
            "1,2,3,4,5,6,7",
            "256,0,0,1,4,1",
            "1,2,3,4,5,-6",
            "a,b,c,d,e,f",
            "1,2,3,4,5,",
            "0001,2,3,4,5,6",
            "1.2.3.4,5,6",
            "1,2,3,4,5,+6",
        ] {
            assert!(parse_port_arg(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc959_port_argument_formats() {
        assert_eq!(
            format_port_arg("127.0.0.1:1025".parse().unwrap()),
            "127,0,0,1,4,1"
        );
    }

    #[test]
    fn rfc959_pasv_reply_text_formats() {
        assert_eq!(
            format_pasv_reply_text("192.168.1.2:21000".parse().unwrap()),
            "Entering Passive Mode (192,168,1,2,82,8)."
        );
    }

    #[test]
    fn rfc959_pasv_reply_numbers_found_anywhere() {
        let want: SocketAddrV4 = "10.0.0.1:1025".parse().unwrap();
        for text in [
            "Entering Passive Mode (10,0,0,1,4,1).",
            "Entering Passive Mode 10,0,0,1,4,1",
            "=10,0,0,1,4,1",
            "Mode 2024 (10,0,0,1,4,1)",
            "1,2,3 then 10,0,0,1,4,1",
        ] {
            assert_eq!(parse_pasv_reply_text(text).unwrap(), want, "{text}");
        }
        assert!(parse_pasv_reply_text("Entering Passive Mode").is_err());
        assert!(parse_pasv_reply_text("(300,0,0,1,4,1)").is_err());
    }

    #[test]
    fn rfc2428_eprt_ipv4_parses() {
        assert_eq!(
            parse_eprt_arg("|1|132.235.1.2|6275|").unwrap(),
            "132.235.1.2:6275".parse().unwrap()
        );
    }

    #[test]
    fn rfc2428_eprt_ipv6_parses() {
        assert_eq!(
            parse_eprt_arg("|2|1080::8:800:200C:417A|5282|").unwrap(),
            "[1080::8:800:200C:417A]:5282".parse().unwrap()
        );
    }

    #[test]
    fn rfc2428_eprt_any_printable_delimiter() {
        assert_eq!(
            parse_eprt_arg("!1!10.0.0.1!21!").unwrap(),
            "10.0.0.1:21".parse().unwrap()
        );
        assert_eq!(
            parse_eprt_arg("~2~::1~21~").unwrap(),
            "[::1]:21".parse().unwrap()
        );
        assert!(parse_eprt_arg(" 1 10.0.0.1 21 ").is_err());
        assert!(parse_eprt_arg("\u{e9}1\u{e9}10.0.0.1\u{e9}21\u{e9}").is_err());
    }

    #[test]
    fn rfc2428_eprt_unknown_family_is_unsupported() {
        assert_eq!(
            parse_eprt_arg("|3|whatever|21|"),
            Err(AddressError::UnsupportedFamily("3".into()))
        );
    }

    #[test]
    fn rfc2428_eprt_rejects_malformed() {
        for bad in [
            "",
            "|",
            "|1|10.0.0.1|21",
            "|1|10.0.0.1|0|",
            "|1|10.0.0.1|65536|",
            "|1|::1|21|",
            "|2|10.0.0.1|21|",
            "|x|10.0.0.1|21|",
            "|1|10.0.0.1|21|x",
            "|1|10.0.0.1|21||",
            "||10.0.0.1|21|",
            "|1|10.0.0.1|+21|",
        ] {
            assert!(
                matches!(parse_eprt_arg(bad), Err(AddressError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rfc2428_eprt_formats() {
        assert_eq!(
            format_eprt_arg("127.0.0.1:1025".parse().unwrap()),
            "|1|127.0.0.1|1025|"
        );
        assert_eq!(
            format_eprt_arg("[::1]:1025".parse().unwrap()),
            "|2|::1|1025|"
        );
    }

    #[test]
    fn rfc2428_epsv_reply_formats_and_parses() {
        assert_eq!(
            format_epsv_reply_text(1025),
            "Entering Extended Passive Mode (|||1025|)"
        );
        assert_eq!(
            parse_epsv_reply_text("Entering Extended Passive Mode (|||6446|)"),
            Ok(6446)
        );
        assert_eq!(parse_epsv_reply_text("Extended (!!!21!) ok"), Ok(21));
        for bad in [
            "no parens",
            "(|||0|)",
            "(||1|21|)",
            "(|||21)",
            "(|||21|x)",
            "( 21 )",
            "(|||70000|)",
        ] {
            assert!(parse_epsv_reply_text(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn prop_port_round_trip(ip in any::<[u8; 4]>(), port in any::<u16>()) {
            let addr = SocketAddrV4::new(Ipv4Addr::from(ip), port);
            prop_assert_eq!(parse_port_arg(&format_port_arg(addr)), Ok(addr));
            prop_assert_eq!(parse_pasv_reply_text(&format_pasv_reply_text(addr)), Ok(addr));
        }

        #[test]
        fn prop_eprt_round_trip(v4 in any::<[u8; 4]>(), v6 in any::<[u8; 16]>(), port in 1u16.., six in any::<bool>()) {
            let addr = if six {
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(v6), port, 0, 0))
            } else {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::from(v4)), port)
            };
            prop_assert_eq!(parse_eprt_arg(&format_eprt_arg(addr)), Ok(addr));
        }

        #[test]
        fn prop_epsv_round_trip(port in 1u16..) {
            prop_assert_eq!(parse_epsv_reply_text(&format_epsv_reply_text(port)), Ok(port));
        }

        #[test]
        fn prop_address_parsers_never_panic(s in "\\PC{0,40}", t in "[0-9,|()!. a-f:]{0,40}") {
            for x in [&s, &t] {
                let _ = parse_port_arg(x);
                let _ = parse_pasv_reply_text(x);
                let _ = parse_eprt_arg(x);
                let _ = parse_epsv_reply_text(x);
            }
        }
    }
}
