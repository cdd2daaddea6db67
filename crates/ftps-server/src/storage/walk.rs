//! The portable way to measure what a storage root holds ([`Usage`], for
//! quotas): walk the tree through [`Storage::list`], depth-first, with a
//! bounded depth so that a symbolic-link loop inside the root cannot make
//! the walk endless.

use ftps_proto::entry::EntryKind;
use ftps_proto::path::VirtualPath;

use super::{FsError, Storage, Usage};

/// Directories below the root the walk descends into at most.
pub const MAX_DEPTH: usize = 64;

/// Sum the sizes and count the regular files under the root of `storage`.
pub(super) async fn usage<S: Storage + ?Sized>(storage: &S) -> Result<Usage, FsError> {
    let mut usage = Usage::default();
    let mut pending = vec![(VirtualPath::root(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        let mut entries = storage.list(&dir).await?;
        while let Some(entry) = entries.recv().await {
            let entry = entry?;
            match entry.kind {
                EntryKind::File => {
                    usage.bytes = usage.bytes.saturating_add(entry.size);
                    usage.files = usage.files.saturating_add(1);
                }
                EntryKind::Dir if depth < MAX_DEPTH => {
                    let Ok(child) = dir.join(&entry.name) else {
                        continue;
                    };
                    pending.push((child, depth + 1));
                }
                _ => {}
            }
        }
    }
    Ok(usage)
}
