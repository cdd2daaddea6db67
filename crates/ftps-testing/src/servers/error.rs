//! How an attempt to start a third-party server fails ([`StartError`]).

/// Why a start attempt failed.
pub(super) enum StartError {
    /// Probably a port taken between picking and binding: try new ports.
    Retry(String),
    /// Anything else: give up.
    Fatal(String),
}

/// A [`StartError::Fatal`] naming `what` failed and why.
pub(super) fn fatal(what: &str, err: impl std::fmt::Display) -> StartError {
    StartError::Fatal(format!("{what}: {err}"))
}
