//! `ftps-os`: the few operating-system calls that neither the standard
//! library nor the maintained wrappers (nix 0.29, rustix, socket2) offer,
//! shared by the server and the client.
//!
//! - [`write_back`]: getting a file that is being written onto the disk
//!   while it is written (`sync_file_range`), so the fsync at its end finds
//!   little left to do — used by the server's local storage for uploads and
//!   by the client for downloads.
//! - [`socket`]: a socket's receive low-water mark (`SO_RCVLOWAT`), used by
//!   the server's bulk-upload thread.
//!
//! These are the workspace's only `unsafe` code (`unsafe_code` is denied
//! everywhere else): one libc call each, with its safety argument beside it.

pub mod socket;
pub mod write_back;

pub use write_back::{start_write_back, WriteBack, WRITE_BACK_BYTES};
