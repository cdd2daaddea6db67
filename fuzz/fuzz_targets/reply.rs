//! Incremental reply parsing: bytes pushed in arbitrary chunks.
#![no_main]

use arbitrary::Unstructured;
use ftps_proto::reply::ReplyParser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut parser = ReplyParser::new();
    while !u.is_empty() {
        let Ok(len) = u.int_in_range(0..=64usize) else { break };
        let Ok(chunk) = u.bytes(len.min(u.len())) else { break };
        parser.push(chunk);
        loop {
            match parser.next_reply() {
                Ok(Some(reply)) => {
                    let _ = reply.encode();
                    let _ = reply.text();
                }
                Ok(None) => break,
                Err(_) => {
                    // The parser dropped its buffer: it must start afresh.
                    assert_eq!(parser.buffered_len(), 0);
                    break;
                }
            }
        }
    }
});
