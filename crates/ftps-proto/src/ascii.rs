//! TYPE A line-ending conversion (RFC 959 §3.1.1.1): the network form of a
//! line end is CRLF; the local form is LF. Streaming converters that keep the
//! one byte of state needed when a CRLF is split between two chunks.

/// Local → network: a LF not preceded by CR becomes CRLF (existing CRLF pairs stay).
#[derive(Debug, Default, Clone)]
pub struct ToNetwork {
    last_was_cr: bool,
}

impl ToNetwork {
    /// Convert one chunk, appending to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 16);
        for &byte in input {
            if byte == b'\n' && !self.last_was_cr {
                out.push(b'\r');
            }
            out.push(byte);
            self.last_was_cr = byte == b'\r';
        }
    }
}

/// Network → local: CRLF becomes LF; a CR not followed by LF is kept.
#[derive(Debug, Default, Clone)]
pub struct FromNetwork {
    pending_cr: bool,
}

impl FromNetwork {
    /// Convert one chunk, appending to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        for &byte in input {
            if self.pending_cr {
                self.pending_cr = false;
                if byte != b'\n' {
                    out.push(b'\r');
                }
            }
            if byte == b'\r' {
                self.pending_cr = true;
            } else {
                out.push(byte);
            }
        }
    }

    /// The stream ended: a trailing lone CR is kept.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            out.push(b'\r');
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn to_net(chunks: &[&[u8]]) -> Vec<u8> {
        let mut c = ToNetwork::default();
        let mut out = Vec::new();
        for chunk in chunks {
            c.convert(chunk, &mut out);
        }
        out
    }

    fn from_net(chunks: &[&[u8]]) -> Vec<u8> {
        let mut c = FromNetwork::default();
        let mut out = Vec::new();
        for chunk in chunks {
            c.convert(chunk, &mut out);
        }
        c.finish(&mut out);
        out
    }

    #[test]
    fn rfc959_type_a_sends_lf_as_crlf() {
        assert_eq!(to_net(&[b"a\nb\n"]), b"a\r\nb\r\n");
    }

    #[test]
    fn rfc959_type_a_keeps_existing_crlf() {
        assert_eq!(to_net(&[b"a\r", b"\nb"]), b"a\r\nb");
    }

    #[test]
    fn rfc959_type_a_receives_crlf_as_lf_across_chunks() {
        assert_eq!(from_net(&[b"a\r", b"\nb\r\n"]), b"a\nb\n");
    }

    #[test]
    fn rfc959_type_a_keeps_lone_cr() {
        assert_eq!(from_net(&[b"a\rb\r"]), b"a\rb\r");
    }

    proptest! {
        #[test]
        fn round_trip_of_lf_text(text in "[a-z\n]{0,200}", split in 0usize..200) {
            let bytes = text.as_bytes();
            let split = split.min(bytes.len());
            let net = to_net(&[&bytes[..split], &bytes[split..]]);
            let back = from_net(&[&net]);
            prop_assert_eq!(back, bytes.to_vec());
        }
    }
}
