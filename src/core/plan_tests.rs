//! Unit tests of `plan`.

use super::*;
use crate::core::ids::{ImageId, Place};
use crate::core::provenance::provenance_tags;

fn r(s: &str) -> Region {
    Region::parse(s).unwrap()
}

fn image(owner: &str, tags: Vec<Tag>) -> ImageInfo {
    ImageInfo {
        id: ImageId::parse("ami-0123456789abcdef0").unwrap(),
        owner: AccountId::parse(owner).ok(),
        name: Some("golden".into()),
        description: Some("built by CI".into()),
        state: ImageState::Available,
        tags: tags.clone(),
        size_gib: 30,
        traits: Default::default(),
        snapshots: vec![],
        created: None,
        origin: crate::core::image::Origin::as_tagged(&tags),
        last_launched: None,
    }
}

#[test]
fn destinations_drop_the_source_and_duplicates() {
    let configured = vec![r("eu-west-1"), r("us-east-1"), r("eu-west-1"), r("ap-south-1")];
    assert_eq!(destinations(&r("us-east-1"), None, &configured), vec![r("eu-west-1"), r("ap-south-1")]);
    let requested = vec![r("us-west-2")];
    assert_eq!(destinations(&r("us-east-1"), Some(&requested), &configured), vec![r("us-west-2")]);
    assert!(destinations(&r("us-east-1"), Some(&[r("us-east-1")]), &configured).is_empty());
}

#[test]
fn skips_other_owners_filtered_images_and_replicas() {
    let me = AccountId::parse("123456789012").unwrap();
    let filter = Tag::new("replicate", "yes");
    assert_eq!(skip_reason(&image("123456789012", vec![]), &me, &[], None), None);
    assert!(matches!(skip_reason(&image("210987654321", vec![]), &me, &[], None), Some(Skip::NotOwned { .. })));
    assert!(matches!(
        skip_reason(&image("123456789012", vec![]), &me, &[], Some(&filter)),
        Some(Skip::TagFilter { .. })
    ));
    let tagged = image("123456789012", vec![Tag::new("replicate", "yes")]);
    assert_eq!(skip_reason(&tagged, &me, &[], Some(&filter)), None);
    let wrong_value = image("123456789012", vec![Tag::new("replicate", "no")]);
    assert!(skip_reason(&wrong_value, &me, &[], Some(&filter)).is_some());
    let src = ImageId::parse("ami-11111111").unwrap();
    let replica = image("123456789012", provenance_tags(&src, &r("us-east-1")));
    let skip = skip_reason(&replica, &me, &[], None).unwrap();
    assert!(skip.to_string().contains("ami-11111111"), "{skip}");
}

#[test]
fn fan_out_makes_one_copy_job_per_destination() {
    let src = image("123456789012", vec![]);
    let jobs = fan_out(&src, &r("us-east-1"), &[Place::home(r("eu-west-1")), Place::home(r("ap-south-1"))]);
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[1].destination, r("ap-south-1"));
    assert_eq!(jobs[0].name.as_deref(), Some("golden"));
    assert_eq!(jobs[0].size_gib, 30);
}

#[test]
fn readiness_of_the_source() {
    let mut img = image("123456789012", vec![]);
    assert_eq!(source_readiness(&img), Readiness::Ready);
    img.state = ImageState::Pending;
    assert_eq!(source_readiness(&img), Readiness::NotYet);
    img.state = ImageState::Other("deregistered".into());
    assert!(matches!(source_readiness(&img), Readiness::Never(m) if m.contains("deregistered")));
}
