//! Cross-account pipelines over the simulator: copies owned by target accounts (one account per credentials),
//! the sharing rules that let them copy, limits per (account, region), the source's lifecycle, and EC2 Image
//! Builder builds.

use ami_replicator::core::ids::{ImageId, Place};
use ami_replicator::core::image::{ImageState, LaunchPermission, Tag};
use ami_replicator::core::provenance::{SOURCE_IMAGE_TAG, SOURCE_REGION_TAG};
use ami_replicator::core::share::ShareSettings;
use ami_replicator::core::step::JobLimits;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, SimImage, Simulation, World, AWS_MANAGED_EBS_KEY};

use crate::common::*;

const ME: &str = "111111111111";
const B: &str = "222222222222";
const C: &str = "333333333333";
const PARTNER: &str = "444455556666";
const DAY: u64 = 86_400;

fn settings(targets: &[&str]) -> DeploymentSettings {
    DeploymentSettings {
        step: JobLimits { poll_seconds: 60, ..JobLimits::default() },
        rule: RuleSettings {
            target_regions: vec![r("eu-west-1"), r("us-west-2")],
            target_accounts: targets.iter().map(|a| acct(a)).collect(),
            share: ShareSettings {
                copy_source_permissions: true,
                extra: vec![LaunchPermission::Account(acct(PARTNER))],
                allow_public: false,
            },
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    }
}

/// A world with a source in us-east-1 owned by ME, shared with account 555566667777 by its pipeline, and the
/// roles of `assumable` accounts that trust the replicator.
fn world(assumable: &[&str]) -> (World, ImageId) {
    let mut w = World::new(acct(ME), SimConfig::default());
    w.assumable = assumable.iter().map(|a| acct(a)).collect();
    let src = w.add_image(
        &r("us-east-1"),
        &acct(ME),
        "golden-2026.11",
        vec![Tag::new("team", "platform")],
        vec![LaunchPermission::Account(acct("555566667777"))],
    );
    (w, src)
}

fn event(image: &ImageId, state: &str) -> String {
    ami_event_of(ME, image.as_str(), "us-east-1", state)
}

/// The copies of `source` in `region` owned by `owner`, in any state.
fn copies(sim: &Simulation, owner: &str, region: &str, source: &ImageId) -> Vec<SimImage> {
    let w = sim.world.lock().unwrap();
    w.images
        .get(&r(region))
        .map(|m| {
            m.values()
                .filter(|i| i.info.tag(SOURCE_IMAGE_TAG) == Some(source.as_str()))
                .filter(|i| i.info.owner == Some(acct(owner)))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn dead_letters(sim: &Simulation) -> Vec<String> {
    sim.world.lock().unwrap().dead_letters.iter().map(|(_, reason)| reason.clone()).collect()
}

#[tokio::test]
async fn a_target_account_owns_copies_in_every_destination_and_the_source_region() {
    let (w, src) = world(&[B]);
    let mut sim = Simulation::new(w, settings(&[B]));
    sim.put_event(&event(&src, "available"));
    sim.put_event(&event(&src, "available")); // duplicated delivery
    sim.run_until_idle(10, DAY).await;

    assert!(dead_letters(&sim).is_empty(), "{:?}", dead_letters(&sim));
    for region in ["eu-west-1", "us-west-2"] {
        let mine = copies(&sim, ME, region, &src);
        assert_eq!(mine.len(), 1, "{region}: one copy of this account");
        let perms = &mine[0].launch_permissions;
        assert!(perms.contains(&LaunchPermission::Account(acct("555566667777"))), "source's grants re-applied");
        assert!(!perms.contains(&LaunchPermission::Account(acct(B))), "the copy grant on the source is not passed on");
    }
    assert!(copies(&sim, ME, "us-east-1", &src).is_empty(), "this account gets no copy in the source region");
    for region in ["us-east-1", "eu-west-1", "us-west-2"] {
        let theirs = copies(&sim, B, region, &src);
        assert_eq!(theirs.len(), 1, "{region}: one copy owned by the target account");
        let copy = &theirs[0];
        assert_eq!(copy.info.state, ImageState::Available);
        assert_eq!(copy.info.tag(SOURCE_REGION_TAG), Some("us-east-1"), "provenance");
        assert_eq!(copy.info.tag("team"), Some("platform"), "user tags copied");
        assert!(copy.launch_permissions.contains(&LaunchPermission::Account(acct(PARTNER))), "SHARE_WITH_* applied");
        assert!(!copy.launch_permissions.contains(&LaunchPermission::Account(acct(B))), "never to its owner");
    }
    let w = sim.world.lock().unwrap();
    assert_eq!(w.copies.len(), 5, "2 copies for this account + 3 for the target, no duplicate");
    let source = &w.images[&r("us-east-1")][&src];
    assert!(source.launch_permissions.contains(&LaunchPermission::Account(acct(B))), "source shared with B");
    assert!(source.snapshots.iter().all(|s| s.create_volume.contains(&acct(B))), "its snapshots too");
    // ClientTokens differ per owner: the same (source, region) copied by two accounts made two copies.
    assert_eq!(w.copies.iter().filter(|c| c.destination == r("eu-west-1")).count(), 2);
}

#[tokio::test]
async fn encrypted_sources_are_copied_with_the_target_accounts_own_keys() {
    let (mut w, src) = world(&[B]);
    w.encrypt_image(&r("us-east-1"), &src, "arn:aws:kms:us-east-1:111111111111:key/source-key");
    w.kms_shared_with.insert(acct(B));
    let mut s = settings(&[B]);
    s.rule.encryption.kms_keys.insert(Place::new(Some(acct(B)), r("eu-west-1")), "alias/b-eu".into());
    let mut sim = Simulation::new(w, s);
    sim.put_event(&event(&src, "available"));
    sim.run_until_idle(10, DAY).await;
    assert!(dead_letters(&sim).is_empty(), "{:?}", dead_letters(&sim));
    let eu = &copies(&sim, B, "eu-west-1", &src)[0];
    assert!(eu.info.traits.encrypted);
    assert_eq!(eu.kms_key_id.as_deref(), Some("alias/b-eu"), "the configured key of B in eu-west-1");
    let east = &copies(&sim, B, "us-east-1", &src)[0];
    assert_eq!(east.kms_key_id, None, "no key configured: B's default EBS key");
    assert!(east.snapshots.iter().all(|s| s.kms_key.as_deref() == Some("default-ebs-key-of-222222222222")));
}

#[tokio::test]
async fn a_source_key_not_shared_fails_that_account_alone_with_what_to_grant() {
    let (mut w, src) = world(&[B]);
    w.encrypt_image(&r("us-east-1"), &src, "arn:aws:kms:us-east-1:111111111111:key/source-key");
    let mut sim = Simulation::new(w, settings(&[B]));
    sim.put_event(&event(&src, "available"));
    sim.run_until_idle(10, DAY).await;
    let reasons = dead_letters(&sim);
    assert_eq!(reasons.len(), 3, "one dead letter per place of B: {reasons:?}");
    assert!(reasons.iter().all(|r| r.contains(B) && r.contains("key policy")), "{reasons:?}");
    assert_eq!(copies(&sim, ME, "eu-west-1", &src).len(), 1, "this account's copies go on");
}

#[tokio::test]
async fn snapshots_encrypted_with_aws_ebs_are_refused_before_any_copy_starts() {
    let (mut w, src) = world(&[B]);
    w.encrypt_image(&r("us-east-1"), &src, AWS_MANAGED_EBS_KEY);
    w.kms_shared_with.insert(acct(B));
    let mut sim = Simulation::new(w, settings(&[B]));
    sim.put_event(&event(&src, "available"));
    sim.run_until_idle(10, DAY).await;
    let reasons = dead_letters(&sim);
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons.iter().all(|r| r.contains("OperationNotPermitted") && r.contains("aws/ebs")), "{reasons:?}");
    let w = sim.world.lock().unwrap();
    assert!(w.copies.iter().all(|c| c.account == acct(ME)), "no copy of B was ever started");
    assert_eq!(w.copies.len(), 2);
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_fails_its_account_and_the_others_go_on() {
    let (mut w, src) = world(&[C]);
    w.denied_roles.insert(acct(B));
    let mut sim = Simulation::new(w, settings(&[B, C]));
    sim.put_event(&event(&src, "available"));
    sim.run_until_idle(10, DAY).await;
    let reasons = dead_letters(&sim);
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons.iter().all(|r| r.contains(B) && r.contains("sts:AssumeRole")), "{reasons:?}");
    for region in ["us-east-1", "eu-west-1", "us-west-2"] {
        assert_eq!(copies(&sim, C, region, &src).len(), 1, "{region}: the other target account is served");
    }
    assert_eq!(copies(&sim, ME, "us-west-2", &src).len(), 1);
}

#[tokio::test]
async fn the_copy_limit_is_per_account_and_region() {
    let (mut w, src) = world(&[B]);
    w.config.copy_limit = 2;
    // B's eu-west-1 is full with two unrelated copies of its own that take a long time.
    let filler = w.add_image(&r("us-east-1"), &acct(B), "b-own", vec![], vec![]);
    for n in 0..2 {
        let request = ami_replicator::ports::CopyRequest {
            source_image: filler.clone(),
            source_region: r("us-east-1"),
            name: format!("b-{n}"),
            description: None,
            client_token: format!("filler-{n}"),
            tags: vec![],
            encryption: Default::default(),
            completion_minutes: None,
        };
        w.copy_image(&r("eu-west-1"), &acct(B), &request).unwrap();
    }
    let mut s = settings(&[B]);
    s.max_copies_per_region = 2;
    let mut sim = Simulation::new(w, s);
    sim.put_event(&event(&src, "available"));
    // Run until this account's copy in eu-west-1 is done: B's full region did not hold it back.
    sim.run_until_idle(10, 2400).await;
    assert_eq!(copies(&sim, ME, "eu-west-1", &src)[0].info.state, ImageState::Available);
    sim.run_until_idle(10, DAY).await;
    let w = sim.world.lock().unwrap();
    assert!(w.peak_in_flight.values().all(|p| *p <= 2), "{:?}", w.peak_in_flight);
    assert_eq!(w.limit_errors, 0, "admission counted B's copies in flight");
    drop(w);
    assert_eq!(copies(&sim, B, "eu-west-1", &src)[0].info.state, ImageState::Available, "B's copy came later");
}

#[tokio::test]
async fn deregistering_the_source_stops_every_pending_copy_without_dead_letters() {
    let (w, src) = world(&[B]);
    let mut sim = Simulation::new(w, settings(&[B]));
    sim.put_event(&event(&src, "available"));
    // A few minutes in: every copy is pending.
    sim.run_until_idle(10, 300).await;
    assert_eq!(sim.world.lock().unwrap().copies.len(), 5);
    sim.world.lock().unwrap().deregister(&r("us-east-1"), &src);
    sim.put_event(&event(&src, "deregistered"));
    sim.run_until_idle(10, DAY).await;

    for (owner, region) in [(ME, "eu-west-1"), (ME, "us-west-2"), (B, "us-east-1"), (B, "eu-west-1"), (B, "us-west-2")]
    {
        assert!(copies(&sim, owner, region, &src).is_empty(), "{owner}/{region}: pending copy stopped");
    }
    assert!(dead_letters(&sim).is_empty(), "nothing failed: {:?}", dead_letters(&sim));
    let stopped: usize = sim.reports.iter().map(|r| r.stopped.len()).sum();
    assert_eq!(stopped, 5, "every waiting job ended with its reason logged");
    assert!(sim.reports.iter().flat_map(|r| &r.stopped).all(|(_, why)| why.contains("stopped")));
}

#[tokio::test]
async fn available_copies_stay_unless_asked_then_go_with_their_snapshots() {
    for with_source in [false, true] {
        let (w, src) = world(&[B]);
        let mut s = settings(&[B]);
        s.deregister_copies_with_source = with_source;
        let mut sim = Simulation::new(w, s);
        sim.put_event(&event(&src, "available"));
        sim.run_until_idle(10, DAY).await;
        assert_eq!(copies(&sim, B, "eu-west-1", &src).len(), 1);
        sim.world.lock().unwrap().deregister(&r("us-east-1"), &src);
        sim.put_event(&event(&src, "deregistered"));
        sim.run_until_idle(10, 2 * DAY).await;
        let left: usize = ["us-east-1", "eu-west-1", "us-west-2"]
            .iter()
            .map(|reg| copies(&sim, B, reg, &src).len() + copies(&sim, ME, reg, &src).len())
            .sum();
        let w = sim.world.lock().unwrap();
        let copy_snapshots_left =
            w.orphan_snapshots.iter().filter(|(_, _, s)| s.tags.iter().any(|t| t.key == SOURCE_IMAGE_TAG)).count();
        if with_source {
            assert_eq!(left, 0, "DEREGISTER_COPIES_WITH_SOURCE: every copy deregistered");
            assert_eq!(copy_snapshots_left, 0, "and their snapshots deleted");
            assert_eq!(w.orphan_snapshots.len(), 1, "the source's own snapshot is never touched");
        } else {
            assert_eq!(left, 5, "copies are independent AMIs by default");
        }
        assert!(w.dead_letters.is_empty());
    }
}

#[tokio::test]
async fn image_builder_builds_replicate_the_amis_of_this_account() {
    let (mut w, src) = world(&[]);
    let foreign = w.add_image(&r("us-east-1"), &acct("999988887777"), "theirs", vec![], vec![]);
    let arn = "arn:aws:imagebuilder:us-east-1:111111111111:image/golden/2026.11.29/1";
    w.image_builds.insert(
        arn.to_string(),
        vec![(r("us-east-1"), src.clone(), acct(ME)), (r("us-east-1"), foreign.clone(), acct("999988887777"))],
    );
    let mut sim = Simulation::new(w, settings(&[]));
    let ib_event = |status: &str| {
        serde_json::json!({
            "version": "0", "id": "ib", "detail-type": "EC2 Image Builder Image State Change",
            "source": "aws.imagebuilder", "account": ME, "time": "2026-11-29T10:00:00Z", "region": "us-east-1",
            "resources": [arn], "detail": {"state": {"status": status}}
        })
        .to_string()
    };
    sim.send(&ib_event("BUILDING"));
    sim.send(&ib_event("AVAILABLE"));
    sim.put_event(&event(&src, "available")); // the EC2 event of the same AMI: harmless
    sim.run_until_idle(10, DAY).await;
    let w = sim.world.lock().unwrap();
    assert_eq!(w.copies.len(), 2, "one copy per destination, however many events told of it");
    assert!(w.copies.iter().all(|c| c.source == src));
    assert_eq!(w.calls.get("GetImage"), Some(&1), "only AVAILABLE reads the build");
    assert!(w.dead_letters.is_empty());
}

#[tokio::test]
async fn an_unknown_image_builder_build_is_dead_lettered_with_its_reason() {
    let (w, _) = world(&[]);
    let mut sim = Simulation::new(w, settings(&[]));
    sim.send(
        &serde_json::json!({
            "version": "0", "id": "ib", "detail-type": "EC2 Image Builder Image State Change",
            "source": "aws.imagebuilder", "account": ME, "time": "2026-11-29T10:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:imagebuilder:us-east-1:111111111111:image/gone/1.0.0/1"],
            "detail": {"state": {"status": "AVAILABLE"}}
        })
        .to_string(),
    );
    sim.run_until_idle(10, DAY).await;
    let reasons = dead_letters(&sim);
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].contains("image/gone") && reasons[0].contains("ResourceNotFoundException"), "{reasons:?}");
}

#[tokio::test]
async fn a_forged_deregistration_event_stops_nothing() {
    let (w, src) = world(&[B]);
    let mut sim = Simulation::new(w, settings(&[B]));
    sim.put_event(&event(&src, "available"));
    sim.run_until_idle(10, 300).await;
    // The source still exists: a "deregistered" event sent to the queue by anyone is checked and ignored.
    sim.put_event(&event(&src, "deregistered"));
    sim.run_until_idle(10, DAY).await;
    for (owner, region) in [(ME, "eu-west-1"), (ME, "us-west-2"), (B, "us-east-1"), (B, "eu-west-1"), (B, "us-west-2")]
    {
        let left = copies(&sim, owner, region, &src);
        assert_eq!(left.len(), 1, "{owner}/{region}");
        assert_eq!(left[0].info.state, ImageState::Available);
    }
    assert!(sim.reports.iter().all(|r| r.stopped.is_empty()));
}
