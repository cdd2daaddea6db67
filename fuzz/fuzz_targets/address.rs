//! PORT/EPRT arguments and PASV/EPSV reply texts.
#![no_main]

use ftps_proto::address::{
    parse_eprt_arg, parse_epsv_reply_text, parse_pasv_reply_text, parse_port_arg,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = parse_port_arg(text);
    let _ = parse_eprt_arg(text);
    let _ = parse_pasv_reply_text(text);
    let _ = parse_epsv_reply_text(text);
});
