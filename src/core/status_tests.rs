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
        family: None,
        template: None,
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
    copy.origin = crate::core::image::Origin::as_tagged(&copy.tags);
    copy.tags.push(Tag::new(SHARE_FAILED_TAG, "OperationNotPermitted: not allowed"));
    let observed = |copy: ImageInfo| PlaceObservation {
        place: Place::home(Region::parse("eu-west-1").unwrap()),
        copies: Ok(vec![copy]),
        permissions: Some(Ok(vec![])),
        wanted: vec![],
        family: None,
        template: None,
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

#[test]
fn a_disabled_copy_says_whether_it_follows_its_source() {
    let disabled = ImageState::Other("disabled".into());
    let observed = [at("eu-west-1", Ok(vec![copy(2, disabled.clone(), vec![])]), None)];
    let with_source = assess(&id(1), &us_east(), Some(&disabled), &observed, vec![], &home(), 0);
    assert_eq!(with_source.places[0].verdict, Verdict::Disabled);
    assert!(with_source.places[0].note.as_deref().unwrap().contains("disabled with its source"));
    assert!(table(&with_source).contains("disabled with its source"), "{}", table(&with_source));
    let by_hand = assess(&id(1), &us_east(), Some(&ImageState::Available), &observed, vec![], &home(), 0);
    assert!(by_hand.places[0].note.as_deref().unwrap().contains("deregister it for a new copy"));
    assert!(!by_hand.complete);
    let kept = copy(3, ImageState::Available, vec![Tag::new(KEPT_TAG, "not disabled with its source: in use by x")]);
    let report = assess(
        &id(1),
        &us_east(),
        Some(&disabled),
        &[at("eu-west-1", Ok(vec![kept]), Some(vec![partner()]))],
        vec![],
        &home(),
        0,
    );
    assert_eq!(report.places[0].note.as_deref(), Some("kept enabled (source disabled): in use by x"));
}

#[test]
fn retained_and_next_retired_copies_and_the_launch_template_are_shown_per_place() {
    use crate::core::launch_templates::Version;
    use crate::core::retention::Retention;
    let family = |n: u32, created: &str| {
        let mut c = copy(n, ImageState::Available, vec![Tag::new("Family", "web")]);
        c.tags.retain(|t| t.key != crate::core::provenance::SOURCE_IMAGE_TAG);
        c.tags.extend(provenance_tags(&id(n + 100), &us_east()));
        c.created = Some(created.into());
        c
    };
    let mut protected = family(4, "2026-11-01T00:00:00Z");
    protected.traits.protection = crate::core::protection::Protection::On { cooldown: false };
    let members = vec![
        family(2, "2026-11-29T00:00:00Z"),
        family(3, "2026-11-20T00:00:00Z"),
        protected,
        family(5, "2026-11-10T00:00:00Z"),
    ];
    let policy = Retention { copies: 1, family_tag: "Family".into(), dry_run: false };
    let mut o = at("eu-west-1", Ok(vec![copy(2, ImageState::Available, vec![])]), Some(vec![partner()]));
    o.family = Some((policy.clone(), "web".into(), Ok(members)));
    let versions = vec![
        Version { number: 1, image: None, is_default: false },
        Version { number: 2, image: Some(id(2)), is_default: true },
    ];
    o.template = Some(("web-lt".into(), Ok(versions)));
    let report = assess(&id(1), &us_east(), Some(&ImageState::Available), &[o], vec![], &home(), 0);
    let f = report.places[0].retention.as_ref().unwrap();
    assert_eq!(f.family, "Family=web");
    assert_eq!(f.kept, [format!("{} (newest 1)", id(2)), format!("{} (protected)", id(4))]);
    assert_eq!(f.to_retire, [id(3).to_string(), id(5).to_string()]);
    let t = report.places[0].launch_template.as_ref().unwrap();
    assert_eq!((t.default_version, t.latest_version, t.launches_copy), (Some(2), Some(2), true));
    let text = table(&report);
    assert!(text.contains(&format!("retention Family=web: kept {} (newest 1)", id(2))), "{text}");
    assert!(text.contains(&format!("retired next: {}, {}", id(3), id(5))), "{text}");
    assert!(text.contains(&format!("launch template web-lt: default v2 {} (this copy), latest v2", id(2))), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["places"][0]["retention"]["to_retire"][0], id(3).to_string());
    assert_eq!(json["places"][0]["launch_template"]["launches_copy"], true);
}

#[test]
fn a_claimed_copy_that_ec2_does_not_confirm_is_shown_and_never_taken_for_the_copy() {
    let mut forged = copy(30, ImageState::Available, vec![]);
    forged.origin = None;
    let observed = vec![
        at("eu-west-1", Ok(vec![forged.clone()]), Some(vec![partner()])),
        at("us-west-2", Ok(vec![forged, copy(20, ImageState::Available, vec![])]), Some(vec![partner()])),
    ];
    let report = assess(&id(1), &us_east(), Some(&ImageState::Available), &observed, vec![], &home(), now());
    assert_eq!(report.places[0].verdict, Verdict::Missing, "the claim does not stand in for the copy");
    assert_eq!(report.places[1].copy.as_deref(), Some(id(20).as_str()), "the genuine copy is the one reported");
    for row in &report.places {
        assert_eq!(row.claimed_not_copies.len(), 1);
        assert!(row.claimed_not_copies[0].contains("EC2 records no source"), "{:?}", row.claimed_not_copies);
    }
    assert!(table(&report).contains(&format!("claimed, not our copy: {} claims", id(30))), "{}", table(&report));
}
