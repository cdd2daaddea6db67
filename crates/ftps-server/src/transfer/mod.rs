//! Data transfers: each runs in its own task, started by the control
//! connection and reporting back to it, so ABOR (426 then 226) and STAT
//! (progress) are answered while it runs (RFC 959 §3.2-3.4, §4.1.3; RFC
//! 4217 §7, §10.2).
//!
//! * [`lifecycle`]: the order of events, from opening the file to the
//!   outcome and the log line;
//! * [`open`]: what is opened before the 150 reply;
//! * [`data`]: the data connection — passive or active, its TLS handshake
//!   and session-reuse check, its clean close;
//! * [`download`], [`upload`], [`listing`]: moving the bytes;
//! * [`batch`]: upload bytes collected into large storage writes;
//! * [`threads`], [`send_thread`], [`receive_thread`]: bulk transfers on a
//!   blocking thread of their own, for both directions.
//!
//! Data is reached only through [`crate::storage`]'s traits: the transfer
//! code never knows which back-end it talks to, and uses a back-end's fast
//! paths (zero copy, direct blocking reads and writes) only as capabilities
//! the traits offer.

mod batch;
mod context;
mod data;
mod download;
mod lifecycle;
mod listing;
mod open;
mod receive_thread;
mod send_thread;
mod threads;
mod upload;

#[cfg(test)]
mod tests;

pub use batch::UPLOAD_BATCH_BYTES;
pub use context::{TransferContext, TransferEvent, TRANSFER_BUFFER_BYTES};
pub use lifecycle::run;
pub use threads::{MAX_THREADS, THREAD_AFTER_BYTES};
