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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::image::{ImageTraits, Tag};
    use crate::core::provenance::provenance_tags;

    fn img(n: u32, state: ImageState, tags: Vec<Tag>) -> ImageInfo {
        ImageInfo {
            id: ImageId::parse(&format!("ami-{n:08x}")).unwrap(),
            owner: None,
            name: None,
            description: None,
            state,
            tags,
            size_gib: 1,
            traits: ImageTraits::default(),
            snapshots: vec![SnapshotId::parse(&format!("snap-{n:08x}")).unwrap()],
            created: None,
        }
    }

    #[test]
    fn pending_copies_always_stop_available_ones_only_when_asked() {
        let source = ImageId::parse("ami-0000000a").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        let tags = provenance_tags(&source, &region);
        let other = provenance_tags(&source, &Region::parse("eu-west-1").unwrap());
        let found = vec![
            img(1, ImageState::Pending, tags.clone()),
            img(2, ImageState::Available, tags.clone()),
            img(3, ImageState::Pending, other),
            img(4, ImageState::Pending, vec![]),
        ];
        let kept = cleanup(&found, &source, &region, false);
        assert_eq!(kept.len(), 1);
        assert!(kept[0].stops_pending_copy && kept[0].delete_snapshots.is_empty());
        let all = cleanup(&found, &source, &region, true);
        assert_eq!(all.len(), 2, "only this source's copies from that region");
        assert_eq!(all[1].delete_snapshots.len(), 1);
    }
}
