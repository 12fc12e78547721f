//! Unit tests of `retention`.

use super::*;
use crate::core::ids::{AccountId, Region};
use crate::core::image::Tag;
use crate::core::provenance::{provenance_tags, SOURCE_CREATED_TAG};

fn copy(n: u32, family: Option<&str>, created: &str) -> ImageInfo {
    let source = ImageId::parse("ami-0123456789abcdef0").unwrap();
    let mut tags = provenance_tags(&source, &Region::parse("us-east-1").unwrap());
    tags.push(Tag::new(SOURCE_CREATED_TAG, created));
    if let Some(f) = family {
        tags.push(Tag::new("Family", f));
    }
    let mut image = ImageInfo::fixture(ImageId::parse(&format!("ami-{n:017x}")).unwrap(), ImageState::Available, tags);
    image.snapshots = vec![SnapshotId::parse(&format!("snap-{n:017x}")).unwrap()];
    image
}

fn owner() -> AccountId {
    AccountId::parse("123456789012").unwrap()
}

fn here() -> Region {
    Region::parse("eu-west-1").unwrap()
}

fn observed(image: &ImageInfo) -> Observed<'_> {
    Observed { image, protected: false, used_by: vec![] }
}

fn fates(decided: &[(ImageId, Fate)]) -> Vec<String> {
    decided
        .iter()
        .map(|(id, f)| match f {
            Fate::Keep(k) => format!("{id} keep {k:?}"),
            Fate::Retire { .. } => format!("{id} retire"),
        })
        .collect()
}

#[test]
fn the_newest_of_each_family_are_kept_and_the_older_retired() {
    let images = [
        copy(1, Some("web"), "2026-01-01T00:00:00Z"),
        copy(2, Some("web"), "2026-03-01T00:00:00Z"),
        copy(3, Some("web"), "2026-02-01T00:00:00Z"),
        copy(4, Some("db"), "2026-01-01T00:00:00Z"),
        copy(5, None, "2025-01-01T00:00:00Z"),
    ];
    let observed: Vec<Observed> = images.iter().map(observed).collect();
    assert_eq!(
        fates(&decide(&observed, "Family", 2, &owner(), &here())),
        [
            "ami-00000000000000004 keep Retained",
            "ami-00000000000000002 keep Retained",
            "ami-00000000000000003 keep Retained",
            "ami-00000000000000001 retire",
        ]
    );
    let retired = decide(&observed, "Family", 2, &owner(), &here()).into_iter().find_map(|(_, f)| match f {
        Fate::Retire { snapshots, reason } => Some((snapshots, reason)),
        Fate::Keep(_) => None,
    });
    let (snapshots, reason) = retired.unwrap();
    assert_eq!(snapshots, [SnapshotId::parse("snap-00000000000000001").unwrap()]);
    assert!(reason.contains("Family=web") && reason.contains("RETAIN_COPIES"), "{reason}");
}

#[test]
fn never_the_newest_nor_one_in_use_nor_a_protected_one_nor_what_is_not_ours() {
    let images = [
        copy(1, Some("web"), "2026-01-01T00:00:00Z"),
        copy(2, Some("web"), "2026-02-01T00:00:00Z"),
        copy(3, Some("web"), "2026-03-01T00:00:00Z"),
    ];
    let mut observed: Vec<Observed> = images.iter().map(observed).collect();
    observed[0].used_by = vec!["instance i-0123".into()];
    observed[1].protected = true;
    assert_eq!(
        fates(&decide(&observed, "Family", 0, &owner(), &here())),
        [
            "ami-00000000000000003 keep Retained",
            "ami-00000000000000002 keep Protected",
            "ami-00000000000000001 keep InUse(\"instance i-0123\")",
        ]
    );
    // Pending copies and images without the provenance tags are never touched.
    let mut pending = copy(4, Some("web"), "2025-01-01T00:00:00Z");
    pending.state = ImageState::Pending;
    let mut foreign = copy(5, Some("web"), "2025-01-01T00:00:00Z");
    foreign.tags.retain(|t| !t.key.starts_with("ami-replicator:"));
    let others = [
        observed[2].clone(),
        Observed { image: &pending, protected: false, used_by: vec![] },
        Observed { image: &foreign, protected: false, used_by: vec![] },
    ];
    assert_eq!(fates(&decide(&others, "Family", 1, &owner(), &here())), ["ami-00000000000000003 keep Retained"]);
}

#[test]
fn a_forged_date_or_a_claimed_copy_never_retires_the_newest() {
    // web-1's copy was made in January; its source-created tag is forged to 2099: it counts as January at most.
    let mut old = copy(1, Some("web"), "2099-01-01T00:00:00Z");
    old.created = Some("2026-01-02T00:00:00Z".into());
    let mut new = copy(2, Some("web"), "2026-03-01T00:00:00Z");
    new.created = Some("2026-03-01T01:00:00Z".into());
    // A hand-made image claiming to be a newer copy of the family: EC2 records no source for it.
    let mut claimed = copy(3, Some("web"), "2099-01-01T00:00:00Z");
    claimed.origin = None;
    let images = [old, new, claimed];
    let observed: Vec<Observed> = images.iter().map(observed).collect();
    assert_eq!(
        fates(&decide(&observed, "Family", 1, &owner(), &here())),
        ["ami-00000000000000002 keep Retained", "ami-00000000000000001 retire"],
        "the claimed image gets no fate at all"
    );
}
