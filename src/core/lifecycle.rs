//! The source's lifecycle: what becomes of the copies when their source is deregistered. Pure.

use super::ids::{ImageId, Region, SnapshotId};
use super::image::{ImageInfo, ImageState};
use super::provenance::is_copy_of;

/// What to do with one copy of a deregistered source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleanup {
    pub copy: ImageId,
    /// The copy was still pending: deregistering it is how AWS stops a copy.
    pub stops_pending_copy: bool,
    /// Snapshots to delete once the copy is deregistered (only with DEREGISTER_COPIES_WITH_SOURCE).
    pub delete_snapshots: Vec<SnapshotId>,
}

/// The copies of `source` (from `source_region`) among `found` to deregister: those still `pending` (a copy of an
/// image that no longer exists is not wanted) and failed ones always, the others only when `with_source` is set
/// (DEREGISTER_COPIES_WITH_SOURCE; copies are independent AMIs by default, as AWS documents), with their
/// snapshots. Images that are not this product's copies of that source are never touched.
pub fn cleanup(found: &[ImageInfo], source: &ImageId, source_region: &Region, with_source: bool) -> Vec<Cleanup> {
    found
        .iter()
        .filter(|img| is_copy_of(img, source, source_region))
        .filter_map(|img| match img.state {
            ImageState::Pending => {
                Some(Cleanup { copy: img.id.clone(), stops_pending_copy: true, delete_snapshots: vec![] })
            }
            // A failed copy (a tombstone of a replication that gave up) has no use once its source is gone.
            ImageState::Failed(_) => {
                Some(Cleanup { copy: img.id.clone(), stops_pending_copy: false, delete_snapshots: vec![] })
            }
            _ if with_source => Some(Cleanup {
                copy: img.id.clone(),
                stops_pending_copy: false,
                delete_snapshots: img.snapshots.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The cleanups that may go ahead, and the available copies kept because something uses them (`references`:
/// DescribeImageReferences of those copies), with what uses them. A pending or failed copy is never in use.
pub fn keep_in_use(cleanups: Vec<Cleanup>, references: &[(ImageId, String)]) -> (Vec<Cleanup>, Vec<(ImageId, String)>) {
    let mut go = Vec::new();
    let mut kept = Vec::new();
    for cleanup in cleanups {
        let users: Vec<&str> = references.iter().filter(|(i, _)| *i == cleanup.copy).map(|(_, r)| r.as_str()).collect();
        if users.is_empty() || cleanup.stops_pending_copy {
            go.push(cleanup);
        } else {
            kept.push((cleanup.copy, format!("in use by {}", users.join(", "))));
        }
    }
    (go, kept)
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
