//! MLSD/MLST fact line parsing.
#![no_main]

use ftps_proto::facts::parse_entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_entry(data);
});
