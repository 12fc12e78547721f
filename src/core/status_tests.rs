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

#[test]
fn a_failed_share_and_a_kept_copy_say_so() {
    use crate::core::provenance::{KEPT_TAG, SHARE_FAILED_TAG};
    let source = ImageId::parse("ami-00000001").unwrap();
    let east = Region::parse("us-east-1").unwrap();
    let home = AccountId::parse("123456789012").unwrap();
    let mut copy = ImageInfo::fixture(ImageId::parse("ami-00000002").unwrap(), ImageState::Available, vec![]);
    copy.tags = provenance_tags(&source, &east);
    copy.tags.push(Tag::new(SHARE_FAILED_TAG, "OperationNotPermitted: not allowed"));
    let observed = |copy: ImageInfo| PlaceObservation {
        place: Place::home(Region::parse("eu-west-1").unwrap()),
        copies: Ok(vec![copy]),
        permissions: Some(Ok(vec![])),
        wanted: vec![],
    };
    let report = assess(&source, &east, None, &[observed(copy.clone())], vec![], &home, 0);
    assert_eq!(report.places[0].verdict, Verdict::Incomplete, "permissions as wanted, but the share failed");
    assert!(report.places[0].note.as_deref().is_some_and(|n| n.contains("share failed: OperationNotPermitted")));
    copy.tags.retain(|t| t.key != SHARE_FAILED_TAG);
    copy.tags.push(Tag::new(KEPT_TAG, "in use by ec2:Instance i-1"));
    let report = assess(&source, &east, None, &[observed(copy)], vec![], &home, 0);
    assert_eq!(report.places[0].verdict, Verdict::Complete);
    assert!(table(&report).contains("kept (source deregistered): in use by ec2:Instance i-1"));
}
