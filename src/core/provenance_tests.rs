//! Unit tests of `provenance`.

use super::*;
use crate::core::image::{ImageState, Origin};

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

fn origin(image: &ImageId, region: &Region, recorded: bool) -> Option<Origin> {
    Some(Origin { image: image.clone(), region: region.clone(), recorded })
}

/// A copy of `img` from `src` as EC2 shows it at a place of account 123456789012: provenance tags and origin.
fn genuine(img: &ImageId, src: &Region) -> ImageInfo {
    let mut copy = ImageInfo::fixture(ImageId::parse("ami-11111111").unwrap(), ImageState::Available, vec![]);
    copy.tags = provenance_tags(img, src);
    copy.origin = origin(img, src, false);
    copy
}

#[test]
fn a_copy_is_ours_where_ec2_records_its_source_the_owner_is_the_place_and_our_tag_is_on() {
    let (img, src, dst, owner) = ids();
    let copy = genuine(&img, &src);
    assert!(is_replica(&copy));
    assert!(is_our_copy(&copy, &img, &src, &owner, &dst));
    assert_eq!(verified_source(&copy, &owner, &dst), Some((&img, &src)));
    assert!(!is_our_copy(&copy, &img, &dst, &owner, &dst), "another source region");
    let other = ImageId::parse("ami-0fedcba9876543210").unwrap();
    assert!(!is_our_copy(&copy, &other, &src, &owner, &dst), "another source");
    assert!(!is_our_copy(&copy, &img, &src, &AccountId::parse("210987654321").unwrap(), &dst), "another owner");
    assert_eq!(false_claim(&copy, &owner, &dst), None);
    // Without our tag, EC2's record alone: somebody else's copy of the source.
    let mut untagged = copy.clone();
    untagged.tags.clear();
    assert!(!is_our_copy(&untagged, &img, &src, &owner, &dst));
    assert!(!is_replica(&untagged));
    assert_eq!(false_claim(&untagged, &owner, &dst), None, "it claims nothing");
}

#[test]
fn tags_that_ec2_does_not_confirm_make_no_copy_and_are_reported() {
    let (img, src, dst, owner) = ids();
    // Hand-made (EC2 records no source), tagged as a copy.
    let mut forged = genuine(&img, &src);
    forged.origin = None;
    assert!(!is_our_copy(&forged, &img, &src, &owner, &dst));
    assert!(!is_replica(&forged), "a source carrying the tags is still replicated");
    let claim = false_claim(&forged, &owner, &dst).unwrap();
    assert!(claim.contains(img.as_str()) && claim.contains("EC2 records no source"), "{claim}");
    // Another source's copy, tagged as this source's: it stays that source's copy, never this one's.
    let other = ImageId::parse("ami-0fedcba9876543210").unwrap();
    let mut retagged = genuine(&other, &src);
    retagged.tags = provenance_tags(&img, &src);
    assert!(!is_our_copy(&retagged, &img, &src, &owner, &dst));
    assert!(is_our_copy(&retagged, &other, &src, &owner, &dst), "a tag's value changes nothing");
    assert!(false_claim(&retagged, &owner, &dst).unwrap().contains(&format!("copy of {other}")));
    // Unreadable tags.
    let mut broken = genuine(&img, &src);
    broken.origin = None;
    broken.tags = vec![Tag::new(SOURCE_IMAGE_TAG, "nonsense")];
    assert!(false_claim(&broken, &owner, &dst).unwrap().contains("unreadable"));
}

#[test]
fn in_the_source_region_only_the_functions_record_makes_a_copy_ours() {
    let (img, src, _, _) = ids();
    let target = AccountId::parse("222222222222").unwrap();
    // An image built from an instance of the source there records the same origin as a copy.
    let mut built = genuine(&img, &src);
    built.owner = Some(target.clone());
    assert!(!is_our_copy(&built, &img, &src, &target, &src));
    assert!(false_claim(&built, &target, &src).unwrap().contains("no record"));
    built.origin = origin(&img, &src, true);
    assert!(is_our_copy(&built, &img, &src, &target, &src), "recorded: CopyImage returned it to the function");
}

#[test]
fn the_copys_tags_are_ours_and_the_sources_user_tags_never_aws_or_ours() {
    let (img, src, _, _) = ids();
    let source_tags = vec![
        Tag::new("team", "web"),
        Tag::new("aws:cloudformation:stack-name", "x"),
        Tag::new(SHARED_TAG, "true"),
        Tag::new(GAVE_UP_TAG, "x"),
        Tag::new(SOURCE_IMAGE_TAG, "ami-0fedcba9876543210"),
        Tag::new("Name", "golden"),
    ];
    let (tags, left_out) = copy_tags(provenance_tags(&img, &src), &source_tags);
    assert_eq!(left_out, 0);
    let keys: Vec<&str> = tags.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, [SOURCE_IMAGE_TAG, SOURCE_REGION_TAG, "team", "Name"]);
    assert_eq!(tags[0].value, img.as_str(), "the source's own claim never replaces ours");
    let many: Vec<Tag> = (0..60).map(|n| Tag::new(format!("k{n}"), "v")).collect();
    let (tags, left_out) = copy_tags(provenance_tags(&img, &src), &many);
    assert_eq!((tags.len(), left_out), (MAX_TAGS, 12), "EC2 allows 50 tags: ours first");
}

#[test]
fn numbers_read_from_tags_are_bounded() {
    let (img, src, _, _) = ids();
    let mut copy = genuine(&img, &src);
    copy.tags.push(Tag::new(ATTEMPT_TAG, "4294967295"));
    assert_eq!(attempt(&copy), MAX_ATTEMPT);
    copy.tags.retain(|t| t.key != ATTEMPT_TAG);
    copy.tags.push(Tag::new(ATTEMPT_TAG, "99999999999999"));
    assert_eq!(attempt(&copy), 0, "unreadable: the first");
    // A source creation date counts at most up to the copy's own creation (EC2's), and only on our copy.
    let (_, _, dst, owner) = ids();
    copy.created = Some("2026-01-02T00:00:00Z".into());
    copy.tags.push(Tag::new(SOURCE_CREATED_TAG, "2099-01-01T00:00:00Z"));
    assert_eq!(source_created(&copy, &owner, &dst), crate::core::time::parse_rfc3339("2026-01-02T00:00:00Z"));
    copy.origin = None;
    assert_eq!(source_created(&copy, &owner, &dst), None, "not our copy: no date at all");
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
fn the_source_a_copy_claims_is_read_from_its_tags() {
    let (src, region, _, _) = ids();
    assert_eq!(claimed_source(&provenance_tags(&src, &region)), Some((src.clone(), region)));
    assert_eq!(claimed_source(&[Tag::new(SOURCE_IMAGE_TAG, "nonsense")]), None, "unreadable tags");
    assert_eq!(claimed_source(&[]), None);
}
