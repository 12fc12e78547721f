//! Unit tests of `lifecycle`.

use super::*;
use crate::core::image::{ImageTraits, Tag};
use crate::core::provenance::provenance_tags;

fn me() -> AccountId {
    AccountId::parse("111111111111").unwrap()
}

fn here() -> Place {
    Place::home(Region::parse("eu-west-1").unwrap())
}

fn img(n: u32, state: ImageState, tags: Vec<Tag>) -> ImageInfo {
    ImageInfo {
        id: ImageId::parse(&format!("ami-{n:08x}")).unwrap(),
        owner: Some(me()),
        name: None,
        description: None,
        state,
        tags: tags.clone(),
        size_gib: 1,
        traits: ImageTraits::default(),
        snapshots: vec![SnapshotId::parse(&format!("snap-{n:08x}")).unwrap()],
        created: None,
        origin: crate::core::image::Origin::as_tagged(&tags),
        last_launched: None,
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
    let kept = cleanup(&found, &source, &region, &here(), &me(), &[], false);
    assert_eq!(kept.len(), 1);
    assert!(kept[0].stops_pending_copy && kept[0].delete_snapshots.is_empty());
    let all = cleanup(&found, &source, &region, &here(), &me(), &[], true);
    assert_eq!(all.len(), 2, "only this source's copies from that region");
    // Tags that claim it while EC2 records no source, another one, or another owner: never touched.
    let mut forged = vec![img(5, ImageState::Available, tags.clone()), img(6, ImageState::Pending, tags.clone())];
    forged[0].origin = None;
    forged[1].origin = Some(crate::core::image::Origin {
        image: ImageId::parse("ami-0000000b").unwrap(),
        region: region.clone(),
        recorded: true,
    });
    let mut foreign = img(7, ImageState::Pending, tags.clone());
    foreign.owner = Some(AccountId::parse("222222222222").unwrap());
    forged.push(foreign);
    assert!(cleanup(&forged, &source, &region, &here(), &me(), &[], true).is_empty(), "forged provenance");
    // Another account's source out of view may only have stopped being shared: its copies are never touched.
    let trusted = [AccountId::parse("777788889999").unwrap()];
    let mut theirs = found[..2].to_vec();
    for copy in &mut theirs {
        copy.tags.push(Tag::new(crate::core::provenance::SOURCE_OWNER_TAG, "777788889999"));
    }
    assert!(cleanup(&theirs, &source, &region, &here(), &me(), &trusted, true).is_empty(), "another owner's");
    assert!(cleanup(&found[..2], &source, &region, &here(), &me(), &trusted, true).is_empty(), "owner unknown");
    assert_eq!(cleanup(&found[..2], &source, &region, &here(), &me(), &[], true).len(), 2, "only own sources");
    let mut ours = found[..2].to_vec();
    for copy in &mut ours {
        copy.tags.push(Tag::new(crate::core::provenance::SOURCE_OWNER_TAG, "111111111111"));
    }
    assert_eq!(cleanup(&ours, &source, &region, &here(), &me(), &trusted, true).len(), 2, "tagged as ours");
    assert_eq!(all[1].delete_snapshots.len(), 1);
}

#[test]
fn copies_follow_a_source_disabled_or_enabled_only_when_asked_and_only_on_evidence() {
    let available = ImageState::Available;
    let disabled = ImageState::Other("disabled".into());
    assert_eq!(follow(&available, Some(&disabled), true), Follow::Disable);
    assert_eq!(follow(&disabled, Some(&available), true), Follow::Enable);
    assert_eq!(follow(&available, Some(&disabled), false), Follow::Stay, "the setting is off");
    assert_eq!(follow(&disabled, Some(&available), false), Follow::Stay);
    assert_eq!(follow(&disabled, None, true), Follow::Stay, "a source EC2 does not know enables nothing");
    assert_eq!(follow(&disabled, Some(&ImageState::Other("deregistered".into())), true), Follow::Stay);
    assert_eq!(follow(&ImageState::Pending, Some(&disabled), true), Follow::Stay, "a pending copy waits for its job");
    assert_eq!(follow(&ImageState::Failed(None), Some(&disabled), true), Follow::Stay);
    assert_eq!(follow(&available, Some(&available), true), Follow::Stay);
    assert_eq!(follow(&disabled, Some(&disabled), true), Follow::Stay);
}

#[test]
fn only_available_copies_of_this_source_owned_here_are_disabled() {
    let source = ImageId::parse("ami-0000000a").unwrap();
    let region = Region::parse("us-east-1").unwrap();
    let me = AccountId::parse("111111111111").unwrap();
    let tags = provenance_tags(&source, &region);
    let mut foreign = img(5, ImageState::Available, tags.clone());
    foreign.owner = Some(AccountId::parse("222222222222").unwrap());
    let mut found = vec![
        img(1, ImageState::Pending, tags.clone()),
        img(2, ImageState::Available, tags.clone()),
        img(3, ImageState::Other("disabled".into()), tags.clone()),
        img(4, ImageState::Available, provenance_tags(&source, &Region::parse("eu-west-1").unwrap())),
        img(6, ImageState::Available, vec![]),
    ];
    for i in &mut found {
        i.owner = Some(me.clone());
    }
    found.push(foreign);
    assert_eq!(to_disable(&found, &source, &region, &here(), &me), vec![ImageId::parse("ami-00000002").unwrap()]);
}
