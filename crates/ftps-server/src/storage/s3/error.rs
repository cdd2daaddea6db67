//! OpenDAL's errors as [`FsError`]s, so an object store fails with the same
//! replies as the local disk (RFC 959 §4.2): a missing key is 550, a refused
//! request 550, a store that cannot be reached or answers with an error 451
//! ("local error in processing"), its text kept for the log only.

use opendal::ErrorKind;

use crate::storage::FsError;

/// Classify an OpenDAL error.
pub(super) fn from_opendal(e: opendal::Error) -> FsError {
    match e.kind() {
        ErrorKind::NotFound => FsError::NotFound,
        ErrorKind::PermissionDenied => FsError::PermissionDenied,
        ErrorKind::AlreadyExists => FsError::AlreadyExists,
        ErrorKind::IsADirectory => FsError::IsADirectory,
        ErrorKind::NotADirectory => FsError::NotADirectory,
        ErrorKind::RangeNotSatisfied => FsError::OffsetBeyondEnd,
        ErrorKind::Unsupported => FsError::Unsupported,
        ErrorKind::ConditionNotMatch => {
            FsError::Other("the object changed while the command ran".to_owned())
        }
        _ => FsError::Other(format!("object store: {e}")),
    }
}

/// Whether `e` says the key does not exist.
pub(super) fn is_not_found(e: &opendal::Error) -> bool {
    e.kind() == ErrorKind::NotFound
}

/// Whether `e` is a failed precondition (`If-Match`, `If-None-Match`).
pub(super) fn is_condition(e: &opendal::Error) -> bool {
    e.kind() == ErrorKind::ConditionNotMatch
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn opendal_errors_map_to_storage_errors() {
        let map = |kind| from_opendal(opendal::Error::new(kind, "x"));
        assert_eq!(map(ErrorKind::NotFound), FsError::NotFound);
        assert_eq!(map(ErrorKind::PermissionDenied), FsError::PermissionDenied);
        assert_eq!(map(ErrorKind::AlreadyExists), FsError::AlreadyExists);
        assert_eq!(map(ErrorKind::IsADirectory), FsError::IsADirectory);
        assert_eq!(map(ErrorKind::NotADirectory), FsError::NotADirectory);
        assert_eq!(map(ErrorKind::RangeNotSatisfied), FsError::OffsetBeyondEnd);
        assert_eq!(map(ErrorKind::Unsupported), FsError::Unsupported);
        assert!(matches!(map(ErrorKind::Unexpected), FsError::Other(_)));
        assert!(matches!(
            map(ErrorKind::ConditionNotMatch),
            FsError::Other(_)
        ));
    }
}
