//! Ports of an instance: control ports that were free a moment ago
//! ([`free_ports`]) and a block of passive ports ([`pasv_range`]).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;

use super::error::{fatal, StartError};

/// Ports in each instance's passive range (split in two for vsftpd, whose
/// implicit instance is a separate process).
const PASV_RANGE_LEN: u16 = 50;

/// `N` different ports that were free a moment ago (bound to 127.0.0.1:0
/// all at once, so the kernel cannot hand out one of them twice, then
/// released). Another process can take one before the server binds it:
/// `start` retries.
pub(super) fn free_ports<const N: usize>() -> Result<[u16; N], StartError> {
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0u16; N];
    for port in &mut ports {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| fatal("binding 127.0.0.1:0", e))?;
        *port = listener
            .local_addr()
            .map(|addr| addr.port())
            .map_err(|e| fatal("local_addr", e))?;
        listeners.push(listener);
    }
    Ok(ports)
}

/// A random block of PASV_RANGE_LEN ports in 20000..32000: below Linux's
/// ephemeral range (32768..60999), so outgoing connections do not take
/// them, and random so that concurrent instances rarely share one (a
/// server that cannot bind one passive port tries another anyway).
pub(crate) fn pasv_range() -> RangeInclusive<u16> {
    const LOW: u16 = 20000;
    const HIGH: u16 = 32000;
    let blocks = u64::from((HIGH - LOW) / PASV_RANGE_LEN);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    let block = u16::try_from(hasher.finish() % blocks).unwrap_or(0);
    let first = LOW + block * PASV_RANGE_LEN;
    first..=first + PASV_RANGE_LEN - 1
}
