//! Virtual path resolution: no argument may produce a non-normal component.
//!
//! Input: two bytes (little-endian split point), then the bytes of both
//! arguments; the first is resolved against the root, the second against
//! the result.
#![no_main]

use ftps_proto::path::VirtualPath;
use libfuzzer_sys::fuzz_target;

fn check(path: &VirtualPath) {
    for c in path.components() {
        assert!(!c.is_empty(), "empty component in {path:?}");
        assert!(c.as_slice() != b"." && c.as_slice() != b"..", "dot component in {path:?}");
        assert!(!c.contains(&b'/'), "'/' inside a component of {path:?}");
        assert!(!c.contains(&0), "NUL inside a component of {path:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let (split, rest) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    let (first, second) = rest.split_at(split.min(rest.len()));
    let Ok(first) = VirtualPath::root().resolve(first) else {
        return;
    };
    check(&first);
    if let Ok(second) = first.resolve(second) {
        check(&second);
    }
});
