//! Header framing and meaning: the edge cases of HAProxy's PROXY protocol
//! specification (versions 1 and 2) that this module decides.

use super::*;
use tokio::io::AsyncWriteExt;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A version 2 header by hand: command byte, family/protocol byte, payload.
fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(command);
    out.push(family);
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn v2_ipv4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&src);
    payload.extend_from_slice(&dst);
    payload.extend_from_slice(&sport.to_be_bytes());
    payload.extend_from_slice(&dport.to_be_bytes());
    v2(0x21, 0x11, &payload)
}

async fn read_all(input: &[u8]) -> (Result<Vec<u8>, ProxyError>, Vec<u8>) {
    let mut reader = input;
    let header = read_header(&mut reader).await;
    (header, reader.to_vec())
}

const TRUSTED: &str = "127.0.0.0/8";

#[tokio::test]
async fn v1_tcp4_header_is_read_to_its_crlf_and_not_a_byte_more() {
    let (header, rest) = read_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 40001 21\r\n220 x").await;
    let header = header.unwrap();
    assert_eq!(rest, b"220 x");
    assert_eq!(
        parse_header(&header).unwrap(),
        Proxied {
            source: Some(addr("192.0.2.7:40001")),
            destination: Some(addr("198.51.100.1:21")),
        }
    );
}

#[tokio::test]
async fn v1_tcp6_and_unknown() {
    let (h, _) = read_all(b"PROXY TCP6 2001:db8::7 2001:db8::1 40001 21\r\n").await;
    assert_eq!(
        parse_header(&h.unwrap()).unwrap().source,
        Some(addr("[2001:db8::7]:40001"))
    );
    let (h, _) = read_all(b"PROXY UNKNOWN\r\n").await;
    assert_eq!(parse_header(&h.unwrap()).unwrap().source, None);
}

#[tokio::test]
async fn v1_longer_than_107_bytes_is_refused() {
    let mut line = b"PROXY TCP4 ".to_vec();
    line.extend([b'1'; 200]);
    let (h, rest) = read_all(&line).await;
    assert_eq!(h, Err(ProxyError::TooLong(MAX_V1_BYTES)));
    assert!(
        rest.len() < line.len() - MAX_V1_BYTES + 1,
        "stopped at the limit"
    );
}

#[tokio::test]
async fn v1_with_a_bare_lf_or_bad_fields_is_malformed() {
    for bad in [
        &b"PROXY TCP4 192.0.2.7 198.51.100.1 40001 21\n"[..],
        b"PROXY TCP4 192.0.2.7 198.51.100.1 70000 21\r\n",
        b"PROXY TCP4 2001:db8::7 198.51.100.1 1 21\r\n",
        b"PROXY UDP4 192.0.2.7 198.51.100.1 1 21\r\n",
        b"PROXY TCP4 192.0.2.7\r\n",
    ] {
        let (h, _) = read_all(bad).await;
        let h = h.unwrap();
        assert!(
            matches!(parse_header(&h), Err(ProxyError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[tokio::test]
async fn bytes_that_are_not_a_header_are_refused_at_once() {
    for bad in [
        &b"USER alice\r\n"[..],
        b"\x16\x03\x01\x02\x00",
        b"PROXX TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        b"\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x0c",
    ] {
        let (h, _) = read_all(bad).await;
        assert_eq!(h, Err(ProxyError::Missing), "{bad:?}");
    }
}

#[tokio::test]
async fn v2_proxy_ipv4_is_read_by_its_length_and_not_a_byte_more() {
    let mut input = v2_ipv4([192, 0, 2, 7], [198, 51, 100, 1], 40001, 21);
    input.extend_from_slice(b"\x16\x03\x01");
    let (h, rest) = read_all(&input).await;
    assert_eq!(rest, b"\x16\x03\x01");
    assert_eq!(
        parse_header(&h.unwrap()).unwrap(),
        Proxied {
            source: Some(addr("192.0.2.7:40001")),
            destination: Some(addr("198.51.100.1:21")),
        }
    );
}

#[tokio::test]
async fn v2_ipv6_with_tlvs() {
    let mut payload = Vec::new();
    payload.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    payload.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    payload.extend_from_slice(&40001u16.to_be_bytes());
    payload.extend_from_slice(&990u16.to_be_bytes());
    // A NOOP TLV and a unique-id TLV, as HAProxy may add.
    payload.extend_from_slice(&[0x04, 0x00, 0x01, 0x00, 0x05, 0x00, 0x03, b'a', b'b', b'c']);
    let (h, rest) = read_all(&v2(0x21, 0x21, &payload)).await;
    assert!(rest.is_empty());
    assert_eq!(
        parse_header(&h.unwrap()).unwrap().source,
        Some(addr("[2001:db8::7]:40001"))
    );
}

#[tokio::test]
async fn v2_local_and_unspecified_stand_for_the_balancer_itself() {
    let (h, _) = read_all(&v2(0x20, 0x00, &[])).await;
    assert_eq!(parse_header(&h.unwrap()).unwrap().source, None);
    let (h, _) = read_all(&v2(0x21, 0x00, &[])).await;
    assert_eq!(parse_header(&h.unwrap()).unwrap().source, None);
}

#[tokio::test]
async fn v2_udp_short_addresses_and_bad_version_are_malformed() {
    let udp = {
        let mut h = v2_ipv4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
        h[13] = 0x12;
        h
    };
    let short = v2(0x21, 0x11, &[1, 2, 3, 4, 5, 6]);
    let version_one = {
        let mut h = v2_ipv4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
        h[12] = 0x11;
        h
    };
    for bad in [udp, short, version_one] {
        let (h, _) = read_all(&bad).await;
        assert!(
            matches!(parse_header(&h.unwrap()), Err(ProxyError::Malformed(_))),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn v2_length_over_the_limit_is_refused_before_reading_it() {
    let mut h = v2(0x21, 0x11, &[]);
    h[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    let (h, _) = read_all(&h).await;
    assert_eq!(h, Err(ProxyError::TooLong(MAX_V2_BYTES)));
}

#[tokio::test]
async fn a_header_cut_short_is_an_io_error() {
    let full = v2_ipv4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
    for cut in [1, 10, 16, full.len() - 1] {
        let (h, _) = read_all(&full[..cut]).await;
        assert!(matches!(h, Err(ProxyError::Io(_))), "cut at {cut}: {h:?}");
    }
    let (h, _) = read_all(b"PROXY TCP4 1.2.3.4").await;
    assert!(matches!(h, Err(ProxyError::Io(_))));
}

#[tokio::test]
async fn an_untrusted_sender_is_refused_before_anything_is_read() {
    let trusted = [TRUSTED.parse::<TrustedRange>().unwrap()];
    let mut input = &v2_ipv4([192, 0, 2, 7], [127, 0, 0, 1], 1, 21)[..];
    let result = accept_header(
        &mut input,
        addr("192.0.2.99:5000"),
        &trusted,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(
        result,
        Err(ProxyError::Untrusted("192.0.2.99".parse().unwrap()))
    );
    assert_eq!(input.len(), 28, "nothing was read");
}

#[tokio::test]
async fn a_trusted_sender_gives_the_real_client_and_the_balancer_address() {
    let trusted = [
        "10.0.0.0/8".parse::<TrustedRange>().unwrap(),
        "::1".parse().unwrap(),
    ];
    let mut input = &v2_ipv4([192, 0, 2, 7], [198, 51, 100, 1], 40001, 21)[..];
    let client = accept_header(
        &mut input,
        addr("[::ffff:10.1.2.3]:5000"),
        &trusted,
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert_eq!(client.peer, addr("192.0.2.7:40001"));
    assert_eq!(client.balancer, Some(addr("198.51.100.1:21")));
    // A health check (LOCAL) keeps the balancer's own address.
    let mut input = &v2(0x20, 0x00, &[])[..];
    let client = accept_header(
        &mut input,
        addr("[::1]:5000"),
        &trusted,
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert_eq!(client.peer, addr("[::1]:5000"));
    assert_eq!(client.balancer, None);
}

#[tokio::test]
async fn a_header_that_never_completes_times_out() {
    let trusted = [TRUSTED.parse::<TrustedRange>().unwrap()];
    let (mut server, mut client) = tokio::io::duplex(64);
    client.write_all(b"PROXY TCP4 1.2.3.4").await.unwrap();
    let result = accept_header(
        &mut server,
        addr("127.0.0.1:5000"),
        &trusted,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(result, Err(ProxyError::Timeout(Duration::from_millis(200))));
    drop(client);
}

#[test]
fn trusted_ranges_parse_addresses_and_ranges() {
    let r = |s: &str| s.parse::<TrustedRange>();
    assert!(r("10.0.0.0/8")
        .unwrap()
        .contains("10.200.1.1".parse().unwrap()));
    assert!(!r("10.0.0.0/8")
        .unwrap()
        .contains("11.0.0.1".parse().unwrap()));
    assert!(
        r("10.1.2.3/8")
            .unwrap()
            .contains("10.9.9.9".parse().unwrap()),
        "host bits ignored"
    );
    assert!(r("127.0.0.1")
        .unwrap()
        .contains("::ffff:127.0.0.1".parse().unwrap()));
    assert!(!r("127.0.0.1")
        .unwrap()
        .contains("127.0.0.2".parse().unwrap()));
    assert!(r("fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
    assert!(r("10.0.0.0/33").is_err());
    assert!(r("example.org").is_err());
    assert!(r("").is_err());
}
