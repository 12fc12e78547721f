use super::*;

use crate::core::ids::AccountId;
use crate::core::image::Tag;
use crate::core::provenance::{provenance_tags, SHARED_TAG};

fn id(n: u32) -> ImageId {
    ImageId::parse(&format!("ami-{n:08x}")).unwrap()
}

fn place(r: &str) -> Place {
    Place::home(Region::parse(r).unwrap())
}

fn copy(n: u32, state: ImageState, extra: &[(&str, &str)]) -> ImageInfo {
    let mut tags = provenance_tags(&id(1), &Region::parse("us-east-1").unwrap());
    tags.extend(extra.iter().map(|(k, v)| Tag::new(*k, *v)));
    ImageInfo::fixture(id(n), state, tags)
}

fn home() -> AccountId {
    AccountId::parse("123456789012").unwrap()
}

fn watch() -> Watch {
    Watch {
        source_image: id(1),
        source_region: Region::parse("us-east-1").unwrap(),
        places: vec![place("eu-west-1"), place("us-west-2")],
        since: 1000,
        checks: 0,
    }
}

#[test]
fn finished_when_every_place_is_completed_or_given_up() {
    let mut found = BTreeMap::new();
    found.insert(place("eu-west-1"), vec![copy(10, ImageState::Available, &[(SHARED_TAG, "true")])]);
    found.insert(place("us-west-2"), vec![copy(20, ImageState::Failed(None), &[(GAVE_UP_TAG, "3 copies failed")])]);
    let outcomes = assess(&watch(), &found, &home(), 2000, 3600).unwrap();
    assert_eq!(outcomes[0].1, Outcome::Completed { copy: id(10) });
    assert_eq!(outcomes[1].1, Outcome::Failed { reason: "3 copies failed".into() });
}

#[test]
fn open_while_a_copy_is_pending_or_not_yet_shared_then_missing_after_the_deadline() {
    let mut found = BTreeMap::new();
    found.insert(place("eu-west-1"), vec![copy(10, ImageState::Available, &[(SHARED_TAG, "true")])]);
    found.insert(place("us-west-2"), vec![copy(20, ImageState::Available, &[])]);
    assert_eq!(assess(&watch(), &found, &home(), 2000, 3600), None, "available but not yet shared");
    found.insert(place("us-west-2"), vec![copy(20, ImageState::Pending, &[])]);
    assert_eq!(assess(&watch(), &found, &home(), 2000, 3600), None);
    let outcomes = assess(&watch(), &found, &home(), 1000 + 3600, 3600).unwrap();
    assert_eq!(outcomes[1].1, Outcome::Missing);
    found.remove(&place("us-west-2"));
    assert_eq!(assess(&watch(), &found, &home(), 2000, 3600), None, "no copy yet");
}

#[test]
fn delays_double_up_to_900_seconds() {
    let mut w = watch();
    assert_eq!(next_delay(&w, 60), 60);
    w.checks = 2;
    assert_eq!(next_delay(&w, 60), 240);
    w.checks = 9;
    assert_eq!(next_delay(&w, 60), 900);
}
