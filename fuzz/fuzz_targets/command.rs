//! Command parsing and control-connection line framing on arbitrary bytes.
#![no_main]

use ftps_proto::command::parse_command;
use ftps_proto::line::LineReader;
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = parse_command(data) {
        let _ = command.verb();
        let _ = command.encode();
    }

    // The same bytes as a client stream, pushed in two pieces (split point
    // taken from the first byte) so partial lines and Telnet sequences that
    // straddle a push are exercised.
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut reader = LineReader::new(MAX);
    for chunk in [&data[..split], &data[split..]] {
        reader.push(chunk);
        while let Some(line) = reader.next_line() {
            if let Ok(line) = line {
                assert!(line.len() <= MAX, "line of {} bytes > limit", line.len());
                let _ = parse_command(&line);
            }
        }
    }
    let _ = reader.buffered_len();
    let _ = reader.take_buffered();
});
