//! Unit tests of `provenance`.

use super::*;
use crate::core::image::ImageState;

fn ids() -> (ImageId, Region, Region, AccountId) {
    (
        ImageId::parse("ami-0123456789abcdef0").unwrap(),
        Region::parse("us-east-1").unwrap(),
        Region::parse("eu-west-1").unwrap(),
        AccountId::parse("123456789012").unwrap(),
    )
}

#[test]
fn token_is_deterministic_and_distinct_per_input() {
    let (img, src, dst, acct) = ids();
    let t = client_token(&img, &src, &dst, &acct, 0);
    assert_eq!(t.len(), 64);
    assert_eq!(t, client_token(&img, &src, &dst, &acct, 0));
    assert_ne!(t, client_token(&img, &src, &Region::parse("eu-west-2").unwrap(), &acct, 0));
    assert_ne!(t, client_token(&img, &dst, &src, &acct, 0));
    assert_ne!(t, client_token(&img, &src, &dst, &AccountId::parse("210987654321").unwrap(), 0));
    assert_ne!(t, client_token(&img, &src, &dst, &acct, 1));
}

#[test]
fn copies_are_recognised_by_both_tags() {
    let (img, src, dst, _) = ids();
    let mut copy = ImageInfo {
        id: ImageId::parse("ami-11111111").unwrap(),
        owner: None,
        name: None,
        description: None,
        state: ImageState::Available,
        tags: provenance_tags(&img, &src),
        size_gib: 8,
        traits: Default::default(),
        snapshots: vec![],
        created: None,
    };
    assert!(is_replica(&copy));
    assert!(is_copy_of(&copy, &img, &src));
    assert!(!is_copy_of(&copy, &img, &dst));
    copy.tags.clear();
    assert!(!is_replica(&copy));
}

#[test]
fn each_owner_has_its_own_token() {
    let s = ImageId::parse("ami-0123456789abcdef0").unwrap();
    let (from, to) = (Region::parse("us-east-1").unwrap(), Region::parse("eu-west-1").unwrap());
    let a = client_token(&s, &from, &to, &AccountId::parse("111111111111").unwrap(), 0);
    let b = client_token(&s, &from, &to, &AccountId::parse("222222222222").unwrap(), 0);
    assert_ne!(a, b);
}

#[test]
fn the_source_of_a_copy_is_read_from_its_tags() {
    let (src, region, _, _) = ids();
    let copy = ImageInfo::fixture(
        ImageId::parse("ami-11111111").unwrap(),
        ImageState::Available,
        provenance_tags(&src, &region),
    );
    assert_eq!(source_of(&copy), Some((src.clone(), region)));
    let broken =
        ImageInfo::fixture(copy.id.clone(), ImageState::Available, vec![Tag::new(SOURCE_IMAGE_TAG, "nonsense")]);
    assert_eq!(source_of(&broken), None, "unreadable tags");
    assert_eq!(source_of(&ImageInfo::fixture(copy.id.clone(), ImageState::Available, vec![])), None);
}
