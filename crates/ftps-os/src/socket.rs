//! Socket options that std, socket2, rustix and nix (0.29) do not offer.

use std::io;
use std::net::TcpStream;

/// `setsockopt(SO_RCVLOWAT)`: a blocking read on `tcp` waits until `bytes`
/// have arrived (or its read timeout passes), so a bulk receiver wakes up
/// once per large piece instead of once per segment.
#[allow(unsafe_code)]
pub fn set_receive_low_water(tcp: &TcpStream, bytes: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value: libc::c_int = bytes;
    // SAFETY: the descriptor is open for the borrow of `tcp`; the option
    // value points to a live c_int and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn receive_low_water_is_set_on_a_connected_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        set_receive_low_water(&tcp, 64 * 1024).unwrap();
    }
}
