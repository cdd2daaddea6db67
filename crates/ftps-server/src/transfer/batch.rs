//! Received upload bytes collected into large storage writes: one write per
//! [`UPLOAD_BATCH_BYTES`] instead of one per TLS record or TCP segment. The
//! async receiving path and the bulk-upload thread fill the same [`Batch`];
//! each hands a full batch to the storage its own way
//! ([`crate::storage::Upload::write`] or
//! [`crate::storage::Upload::write_blocking`]).

/// Bytes collected from an upload before they are written to storage.
pub const UPLOAD_BATCH_BYTES: usize = 256 * 1024;

/// A batch being filled.
pub(super) struct Batch {
    buf: Vec<u8>,
    filled: usize,
}

impl Batch {
    /// An empty batch of [`UPLOAD_BATCH_BYTES`].
    pub(super) fn new() -> Batch {
        Batch {
            buf: vec![0u8; UPLOAD_BATCH_BYTES],
            filled: 0,
        }
    }

    /// The unfilled part, to receive into directly.
    pub(super) fn space(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.filled..).unwrap_or_default()
    }

    /// `n` more bytes were received into [`Batch::space`].
    pub(super) fn received(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.buf.len());
    }

    /// Copy as much of `bytes` as fits; returns the rest.
    pub(super) fn push<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let room = self.buf.len() - self.filled;
        let (now, later) = bytes.split_at(bytes.len().min(room));
        if let Some(dest) = self.buf.get_mut(self.filled..self.filled + now.len()) {
            dest.copy_from_slice(now);
            self.filled += now.len();
        }
        later
    }

    /// Whether the batch is full and must be written before more is received.
    pub(super) fn is_full(&self) -> bool {
        self.filled >= self.buf.len()
    }

    /// The bytes collected so far.
    pub(super) fn contents(&self) -> &[u8] {
        self.buf.get(..self.filled).unwrap_or_default()
    }

    /// Start over after the contents were written.
    pub(super) fn clear(&mut self) {
        self.filled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_bytes_fill_the_batch_until_it_is_full() {
        let mut batch = Batch::new();
        assert_eq!(batch.space().len(), UPLOAD_BATCH_BYTES);
        batch.space()[..3].copy_from_slice(b"abc");
        batch.received(3);
        assert_eq!(batch.contents(), b"abc");
        assert!(!batch.is_full());
        let left = batch.space().len();
        batch.received(left);
        assert!(batch.is_full());
        assert!(batch.space().is_empty());
        batch.clear();
        assert!(batch.contents().is_empty());
    }

    #[test]
    fn pushed_bytes_beyond_the_batch_are_handed_back() {
        let mut batch = Batch::new();
        let big = vec![7u8; UPLOAD_BATCH_BYTES + 10];
        let rest = batch.push(&big);
        assert_eq!(rest.len(), 10);
        assert!(batch.is_full());
        batch.clear();
        assert!(batch.push(rest).is_empty());
        assert_eq!(batch.contents().len(), 10);
    }
}
