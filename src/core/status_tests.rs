use super::*;
use crate::core::image::{ImageTraits, Tag};
use crate::core::provenance::provenance_tags;

fn id(n: u32) -> ImageId {
    ImageId::parse(&format!("ami-{n:08x}")).unwrap()
}

fn us_east() -> Region {
    Region::parse("us-east-1").unwrap()
}

fn home() -> AccountId {
    AccountId::parse("123456789012").unwrap()
}

fn partner() -> LaunchPermission {
    LaunchPermission::Account(AccountId::parse("111122223333").unwrap())
}

fn copy(n: u32, state: ImageState, extra: Vec<Tag>) -> ImageInfo {
    let mut tags = provenance_tags(&id(1), &us_east());
    tags.extend(extra);
    ImageInfo {
        traits: ImageTraits { encrypted: true, ..Default::default() },
        created: Some("2026-11-29T10:00:00Z".into()),
        ..ImageInfo::fixture(id(n), state, tags)
    }
}

fn at(
    region: &str,
    copies: Result<Vec<ImageInfo>, String>,
    permissions: Option<Vec<LaunchPermission>>,
) -> PlaceObservation {
    PlaceObservation {
        place: Place::home(Region::parse(region).unwrap()),
        copies,
        permissions: permissions.map(Ok),
        wanted: vec![partner()],
    }
}

fn now() -> i64 {
    parse_rfc3339("2026-11-29T11:00:00Z").unwrap()
}

#[test]
fn complete_only_when_every_place_is_available_and_shared_as_configured() {
    let observed = vec![
        at("eu-west-1", Ok(vec![copy(10, ImageState::Available, vec![])]), Some(vec![partner()])),
        at("us-west-2", Ok(vec![copy(20, ImageState::Available, vec![])]), Some(vec![partner()])),
    ];
    let report = assess(&id(1), &us_east(), Some(&ImageState::Available), &observed, vec![], &home(), now());
    assert!(report.complete);
    assert_eq!(report.places[0].verdict, Verdict::Complete);
    assert_eq!(report.places[0].age_seconds, Some(3600));
    assert_eq!(report.places[0].encrypted, Some(true));
    assert!(table(&report).ends_with("complete\n"));
}

#[test]
fn each_way_of_not_being_done_is_named() {
    let public = LaunchPermission::Public;
    let observed = vec![
        at("eu-west-1", Ok(vec![copy(10, ImageState::Available, vec![])]), Some(vec![public])),
        at("us-west-2", Ok(vec![copy(20, ImageState::Pending, vec![])]), None),
        at("ap-south-1", Ok(vec![]), None),
        at(
            "ca-central-1",
            Ok(vec![copy(40, ImageState::Failed(None), vec![Tag::new(GAVE_UP_TAG, "3 copies failed")])]),
            None,
        ),
        at("sa-east-1", Err("AssumeRoleDenied: refused".into()), None),
    ];
    let report =
        assess(&id(1), &us_east(), None, &observed, vec!["ami-00000001 -> us-west-1: aws/ebs".into()], &home(), now());
    assert!(!report.complete);
    let verdicts: Vec<Verdict> = report.places.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        vec![Verdict::Incomplete, Verdict::Pending, Verdict::Missing, Verdict::Failed, Verdict::Unknown]
    );
    assert_eq!(report.places[0].missing_permissions, vec!["account 111122223333"]);
    assert_eq!(report.places[0].unexpected_permissions, vec!["group all (public)"]);
    assert_eq!(report.places[3].note.as_deref(), Some("3 copies failed"));
    let text = table(&report);
    assert!(text.contains("(gone)") && text.contains("dead letter: ") && text.ends_with("NOT complete\n"), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["places"][2]["verdict"], "missing");
}
