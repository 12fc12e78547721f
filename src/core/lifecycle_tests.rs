//! Unit tests of `lifecycle`.

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
