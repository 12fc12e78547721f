//! Unit tests of `policy`.

use super::*;
use crate::core::copy_rules::EncryptionSettings;
use crate::core::ids::ImageId;
use crate::core::image::{ImageInfo, Tag};

fn r(s: &str) -> Region {
    Region::parse(s).unwrap()
}

#[test]
fn messages_only_narrow_the_configuration() {
    let regions = [r("eu-west-1"), r("us-west-2")];
    let accounts = [AccountId::parse("222222222222").unwrap()];
    let encryption = EncryptionSettings { encrypt_copies: true, ..EncryptionSettings::default() };
    let p = MessageBounds {
        target_regions: &regions,
        target_accounts: &accounts,
        trusted: &[],
        tag_filter: None,
        source_regions: &[],
        encryption: &encryption,
        job_max_age_seconds: 72 * 3600,
    };
    assert!(p.check_targets(None).is_ok());
    assert!(p.check_targets(Some(&[r("eu-west-1")])).is_ok());
    let err = p.check_targets(Some(&[r("eu-west-1"), r("sa-east-1")])).unwrap_err();
    assert!(err.starts_with("target_regions sa-east-1 not in TARGET_REGIONS"), "only the offending region: {err}");
    assert!(p.check_encryption(Some(false)).unwrap_err().contains("ENCRYPT_COPIES"));
    assert!(p.check_encryption(Some(true)).is_ok());

    let mut job = Job::new(ImageId::parse("ami-12345678").unwrap(), r("us-east-1"), r("us-east-1"), None, None);
    assert!(p.check_job(&job).unwrap_err().contains("us-east-1"), "this account never copies to the source region");
    job.account = Some(accounts[0].clone());
    assert!(p.check_job(&job).is_ok(), "a target account does");
    job.account = Some(AccountId::parse("999999999999").unwrap());
    assert!(p.check_job(&job).unwrap_err().contains("TARGET_ACCOUNTS"));
    job.account = None;
    job.destination = r("sa-east-1");
    assert!(p.check_job(&job).unwrap_err().contains("sa-east-1"));
}

fn image(n: u32, owner: &str, tags: Vec<Tag>) -> ImageInfo {
    let mut i = ImageInfo::fixture(
        ImageId::parse(&format!("ami-{n:08x}")).unwrap(),
        crate::core::image::ImageState::Available,
        tags,
    );
    i.owner = Some(AccountId::parse(owner).unwrap());
    i.name = Some(format!("image-{n}"));
    i.size_gib = 30;
    i.created = Some("2026-11-29T00:00:00Z".into());
    i
}

#[test]
fn every_rule_applies_to_every_job_against_the_source_ec2_shows() {
    let regions = [r("eu-west-1")];
    let sources = [r("us-east-1")];
    let trusted = [AccountId::parse("555555555555").unwrap()];
    let filter = Tag::new("replicate", "yes");
    let encryption = EncryptionSettings::default();
    let p = MessageBounds {
        target_regions: &regions,
        target_accounts: &[],
        trusted: &trusted,
        tag_filter: Some(&filter),
        source_regions: &sources,
        encryption: &encryption,
        job_max_age_seconds: 72 * 3600,
    };
    let home = AccountId::parse("123456789012").unwrap();
    let now = 1_000_000;
    let good = image(1, "123456789012", vec![filter.clone()]);
    let mut job = Job::new(good.id.clone(), r("us-east-1"), r("eu-west-1"), Some("forged".into()), None);
    job.size_gib = 9999;
    job.deprecation_time = Some("2020-01-01T00:00:00Z".into());
    job.since = Some(now + 86_400);
    match p.admit_job(&job, Some(&good), &home, now) {
        JobVerdict::Proceed(j) => {
            assert_eq!(
                (j.name.as_deref(), j.size_gib, j.deprecation_time),
                (Some("image-1"), 30, None),
                "the source's facts"
            );
            assert_eq!(j.since, Some(now), "a since in the future is now");
        }
        other => panic!("{other:?}"),
    }
    let refused = |source: &ImageInfo| matches!(p.admit_job(&job, Some(source), &home, now), JobVerdict::Refuse(_));
    assert!(refused(&image(2, "999999999999", vec![filter.clone()])), "another owner");
    assert!(refused(&image(3, "123456789012", vec![])), "IMAGE_TAG_FILTER");
    let mut ours = image(4, "123456789012", vec![filter.clone()]);
    ours.tags.extend(crate::core::provenance::provenance_tags(&good.id, &r("us-east-1")));
    assert!(!refused(&ours), "tags alone (EC2 records no source) are no copy: replicated like any source");
    ours.origin = crate::core::image::Origin::as_tagged(&ours.tags);
    assert!(refused(&ours), "the loop guard");
    let mut market = image(5, "555555555555", vec![filter.clone()]);
    market.traits.marketplace = true;
    assert!(refused(&market), "Marketplace");
    assert!(!refused(&image(6, "555555555555", vec![filter.clone()])), "a trusted owner");
    assert!(matches!(p.admit_job(&job, None, &home, now), JobVerdict::Stop(_)), "a source that is gone stops");
    let mut old = job.clone();
    old.since = Some(now - 73 * 3600);
    assert!(
        matches!(p.admit_job(&old, Some(&good), &home, now), JobVerdict::Refuse(r) if r.contains("JOB_MAX_AGE_HOURS"))
    );
    let mut elsewhere = job.clone();
    elsewhere.source_region = r("ap-south-1");
    assert!(
        matches!(p.admit_job(&elsewhere, Some(&good), &home, now), JobVerdict::Refuse(r) if r.contains("SOURCE_REGIONS"))
    );
    assert!(p.check_source_region(&r("eu-west-1")).is_err(), "an AMI built in a destination region is not a source");
}
