//! LIST line parsing (Unix `ls -l` and DOS styles) with an arbitrary "now".
//!
//! Input: eight bytes of "now" (little-endian i64 Unix seconds), then the line.
#![no_main]

use ftps_proto::list::parse_list_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (now, line) = match data.split_first_chunk::<8>() {
        Some((now, line)) => (i64::from_le_bytes(*now), line),
        None => (0, data),
    };
    let _ = parse_list_line(line, now);
});
