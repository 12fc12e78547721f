//! Unit tests of `sweep`.

use super::*;
use crate::core::image::ImageTraits;
use crate::core::provenance::provenance_tags;

fn r(s: &str) -> Region {
    Region::parse(s).unwrap()
}

fn image(n: u32, owner: &str, created: &str, tags: Vec<Tag>) -> ImageInfo {
    ImageInfo {
        id: ImageId::parse(&format!("ami-{n:08x}")).unwrap(),
        owner: Some(AccountId::parse(owner).unwrap()),
        name: None,
        description: None,
        state: ImageState::Available,
        tags: tags.clone(),
        size_gib: 8,
        traits: ImageTraits::default(),
        snapshots: vec![],
        created: Some(created.to_string()),
        origin: crate::core::image::Origin::as_tagged(&tags),
        last_launched: None,
    }
}

#[test]
fn only_recent_images_the_event_path_would_replicate_and_only_where_a_copy_is_missing() {
    let home = AccountId::parse("111111111111").unwrap();
    let trusted = [AccountId::parse("777777777777").unwrap()];
    let targets = [r("eu-west-1"), r("us-west-2")];
    let since = parse_rfc3339("2026-11-27T10:00:00Z").unwrap();
    let policy =
        SweepScope { target_regions: &targets, target_accounts: &[], trusted: &trusted, tag_filter: None, since };
    let recent = image(1, "111111111111", "2026-11-29T09:00:00.000Z", vec![]);
    let listed = vec![
        recent.clone(),
        image(2, "111111111111", "2026-11-01T09:00:00.000Z", vec![]),
        image(3, "777777777777", "2026-11-29T09:00:00.000Z", vec![]),
        image(4, "111111111111", "2026-11-29T09:00:00.000Z", provenance_tags(&recent.id, &r("us-east-1"))),
        image(5, "222222222222", "2026-11-29T09:00:00.000Z", vec![]),
    ];
    let kept = candidates(listed, &home, &policy);
    let kept_ids: Vec<u32> = kept.iter().map(|i| u32::from_str_radix(&i.id.as_str()[4..], 16).unwrap()).collect();
    assert_eq!(kept_ids, vec![1, 3], "too old, a copy, and an untrusted owner are left out");

    // Each source with its rule resolved once: here the deployment's places.
    let swept: Vec<Swept> = kept
        .into_iter()
        .map(|image| Swept {
            places: crate::core::plan::configured_places(&r("us-east-1"), &targets, &[], &home),
            region: r("us-east-1"),
            image,
            follows: false,
            retention: None,
        })
        .collect();
    let places = at_places(&swept);
    assert_eq!(places.len(), 2);
    let eu = Place::home(r("eu-west-1"));
    // Image 1 already has a copy in eu-west-1 (pending); image 3 has none.
    let mut found = image(9, "111111111111", "2026-11-29T09:10:00.000Z", provenance_tags(&recent.id, &r("us-east-1")));
    found.state = ImageState::Pending;
    let jobs = jobs_at(&eu, &home, &places[&eu], &[found]);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].source_image.as_str(), "ami-00000003");
    assert_eq!(ids_of(&places[&eu]).len(), 2);
}

#[test]
fn disabled_sources_and_copies_to_enable_are_found_as_events_would_have_told() {
    let home = AccountId::parse("111111111111").unwrap();
    let since = parse_rfc3339("2026-11-27T10:00:00Z").unwrap();
    let targets = [r("eu-west-1")];
    let policy = SweepScope { target_regions: &targets, target_accounts: &[], trusted: &[], tag_filter: None, since };
    let disabled = ImageState::Other("disabled".into());
    let mut recent = image(1, "111111111111", "2026-11-29T09:00:00.000Z", vec![]);
    recent.state = disabled.clone();
    let mut old = image(2, "111111111111", "2026-11-01T09:00:00.000Z", vec![]);
    old.state = disabled.clone();
    let mut copy_of_ours =
        image(3, "111111111111", "2026-11-29T09:00:00.000Z", provenance_tags(&old.id, &r("us-east-1")));
    copy_of_ours.state = disabled.clone();
    let available = image(4, "111111111111", "2026-11-29T09:00:00.000Z", vec![]);
    let listed = vec![recent.clone(), old, copy_of_ours, available.clone()];
    assert_eq!(disabled_sources(&listed, &home, &policy), vec![recent], "recent, disabled, a source");
    assert_eq!(candidates(listed, &home, &policy), vec![available.clone()], "disabled ones are never copied");

    let place = Place::home(r("eu-west-1"));
    let east = r("us-east-1");
    let copy = |n: u32, state: ImageState| {
        let mut c = image(n, "111111111111", "2026-11-29T09:00:00.000Z", provenance_tags(&available.id, &east));
        c.state = state;
        c
    };
    let wanted = vec![(east.clone(), available.clone())];
    let jobs = to_enable(&place, &home, &wanted, &[copy(10, disabled.clone())]);
    assert_eq!(jobs.len(), 1, "its only copy is disabled: a job enables it");
    assert!(missing(&place, &home, &wanted, &[copy(10, disabled.clone())]).is_empty(), "and no new copy is made");
    assert!(
        to_enable(&place, &home, &wanted, &[copy(10, disabled.clone()), copy(11, ImageState::Available)]).is_empty()
    );
    assert!(to_enable(&place, &home, &wanted, &[]).is_empty(), "no copy: the missing path makes one");
}
