//! File extensions beyond RFC 3659: MFMT (draft-somers-ftp-mfxx §3, set a
//! file's modification time), HASH with OPTS HASH (draft-bryan-ftpext-hash
//! §3, §4: a file's cryptographic hash) and RANG (draft-bryan-ftp-range §3:
//! the octet range the next HASH covers).
//!
//! A HASH runs like a transfer without a data connection: the I/O layer
//! computes it in a task of its own, the session meanwhile answers ABOR
//! (426 then 226), STAT (octets hashed so far) and NOOP, and QUIT waits.
//! RANG applies to HASH only: a RETR or STOR after RANG is refused with 504
//! rather than moving other octets than the client asked for.

use super::*;

impl ServerSession {
    /// MFMT: the file must exist; the reply echoes the time and the path
    /// as sent (`213 Modify=YYYYMMDDHHMMSS; path`).
    pub(super) fn cmd_mfmt(&mut self, modified: i64, arg: Vec<u8>) {
        if self.refuse_unless_writable() {
            return;
        }
        if let Some(path) = self.resolve(&arg) {
            self.pending = Some(Pending::Mfmt {
                modified,
                shown: arg,
            });
            self.push(Action::Fs(FsRequest::SetModified { path, modified }));
        }
    }

    /// The storage set the time asked for by MFMT.
    pub(super) fn mfmt_done(&mut self, modified: i64, shown: &[u8]) {
        let mut text =
            format!("Modify={}; ", crate::timefmt::format_time_val(modified)).into_bytes();
        text.extend_from_slice(shown);
        self.reply(213, text);
    }

    /// RANG: remember the range for the next HASH; `RANG 1 0` forgets it.
    pub(super) fn cmd_rang(&mut self, start: u64, end: u64) {
        self.hash.range = ((start, end) != (1, 0)).then_some((start, end));
        self.reply(350, format!("Restarting at {start}. Ending byte {end}."));
    }

    /// RETR, STOR, APPE or STOU after RANG: refused (RANG is for HASH here).
    pub(super) fn refuse_ranged_transfer(&mut self) -> bool {
        if self.hash.range.take().is_none() {
            return false;
        }
        self.reply(
            504,
            "RANG applies to HASH only on this server; the range is reset, send the command again.",
        );
        true
    }

    /// OPTS HASH: without an argument the current algorithm; with one, the
    /// new choice (draft-bryan-ftpext-hash §4).
    pub(super) fn cmd_opts_hash(&mut self, arg: &[u8]) {
        if arg.is_empty() {
            self.reply(200, self.hash.algorithm.name());
            return;
        }
        match HashAlgorithm::from_name(arg) {
            Some(algorithm) => {
                self.hash.algorithm = algorithm;
                self.reply(200, algorithm.name());
            }
            None => self.reply(501, "Unknown algorithm, current selection not changed."),
        }
    }

    /// HASH: computed by the I/O layer while the session keeps answering
    /// ABOR and STAT; the range of a preceding RANG is used up.
    pub(super) fn cmd_hash(&mut self, arg: Vec<u8>) {
        let range = self.hash.range.take();
        let Some(path) = self.resolve(&arg) else {
            return;
        };
        self.hash.shown = arg;
        self.transfer = Transfer::Running {
            verb: "HASH",
            started: true,
            aborting: false,
            bytes: 0,
        };
        self.push(Action::StartHash(HashRequest {
            path,
            algorithm: self.hash.algorithm,
            range,
        }));
    }

    /// The hash task ended at `now`: `213 <algorithm> <start>-<end> <hex>
    /// <path>`, or why not; after ABOR, 426 then 226.
    pub fn handle_hash_done(&mut self, result: Result<HashDigest, HashFailure>, now: Instant) {
        let Transfer::Running {
            verb: "HASH",
            aborting,
            ..
        } = self.transfer
        else {
            return;
        };
        self.transfer = Transfer::Idle;
        self.timers.activity(now);
        let shown = std::mem::take(&mut self.hash.shown);
        let reply = replies::hash_done(&result, &shown);
        self.push(Action::Reply(reply));
        if aborting {
            self.reply(226, "ABOR successful.");
        }
        self.after_transfer();
    }
}

/// The HASH settings of a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct HashState {
    /// OPTS HASH's choice.
    pub(super) algorithm: HashAlgorithm,
    /// RANG's octets, for the next HASH.
    pub(super) range: Option<(u64, u64)>,
    /// The running HASH's path as sent, for its reply.
    pub(super) shown: Vec<u8>,
}
