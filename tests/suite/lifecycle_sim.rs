//! Destructive actions only on certainty, over the simulator: a disabled source is not a deregistered one, and an
//! available copy still in use (DescribeImageReferences) is never deregistered, even with
//! DEREGISTER_COPIES_WITH_SOURCE: it is kept, marked with why, and the status command says so.

use ami_replicator::core::ids::ImageId;
use ami_replicator::core::image::ImageState;
use ami_replicator::core::provenance::{KEPT_TAG, SOURCE_IMAGE_TAG};
use ami_replicator::core::status::table;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, Simulation, World};

use crate::common::*;

const ME: &str = "123456789012";
const DAY: u64 = 86_400;

async fn replicated() -> (Simulation, ImageId, DeploymentSettings) {
    let mut world = World::new(acct(ME), SimConfig::default());
    let source = world.add_image(&r("us-east-1"), &acct(ME), "golden", vec![], vec![]);
    let settings = DeploymentSettings {
        deregister_copies_with_source: true,
        rule: RuleSettings { target_regions: vec![r("eu-west-1"), r("us-west-2")], ..RuleSettings::unset() },
        ..DeploymentSettings::default()
    };
    let mut sim = Simulation::new(world, settings.clone());
    sim.put_event(&ami_event(source.as_str(), "us-east-1", "available"));
    sim.run_until_idle(10, DAY).await;
    (sim, source, settings)
}

fn copy_in(sim: &Simulation, region: &str) -> Option<ami_replicator::sim::SimImage> {
    let w = sim.world.lock().unwrap();
    w.images.get(&r(region))?.values().find(|i| i.info.tag(SOURCE_IMAGE_TAG).is_some()).cloned()
}

#[tokio::test]
async fn a_disabled_source_keeps_its_copies_whatever_the_queue_says() {
    let (mut sim, source, _) = replicated().await;
    assert!(copy_in(&sim, "eu-west-1").is_some());
    sim.world.lock().unwrap().image_mut(&r("us-east-1"), &source).unwrap().info.state =
        ImageState::Other("disabled".into());
    // The disabled event is routed, and copies stay (DISABLE_COPIES_WITH_SOURCE is off); a deregistered event
    // written by hand is checked with EC2.
    assert!(sim.put_event(&ami_event(source.as_str(), "us-east-1", "disabled")));
    sim.send(&ami_event(source.as_str(), "us-east-1", "deregistered"));
    sim.run_until_idle(10, 2 * DAY).await;
    for region in ["eu-west-1", "us-west-2"] {
        let copy = copy_in(&sim, region).unwrap_or_else(|| panic!("{region}: the copy of a disabled source stays"));
        assert_eq!(copy.info.state, ImageState::Available);
    }
    let w = sim.world.lock().unwrap();
    let changed = |op: &str| ["DeregisterImage", "DeleteSnapshot", "DisableImage"].contains(&op);
    assert!(w.effects.iter().all(|e| !changed(e.op)), "{:?}", w.effects);
}

#[tokio::test]
async fn a_copy_in_use_is_kept_and_the_status_says_why() {
    let (mut sim, source, settings) = replicated().await;
    let eu = copy_in(&sim, "eu-west-1").unwrap().info.id;
    let us = copy_in(&sim, "us-west-2").unwrap().info.id;
    {
        let mut w = sim.world.lock().unwrap();
        w.references.insert(eu.clone(), vec!["ec2:instance arn:aws:ec2:eu-west-1:123456789012:instance/i-1".into()]);
        w.deregister(&r("us-east-1"), &source);
    }
    sim.put_event(&ami_event(source.as_str(), "us-east-1", "deregistered"));
    sim.run_until_idle(10, 2 * DAY).await;
    let kept = copy_in(&sim, "eu-west-1").expect("the copy an instance uses stays");
    assert_eq!(kept.info.id, eu);
    assert!(kept.info.tag(KEPT_TAG).is_some_and(|t| t.contains("i-1")), "{:?}", kept.info.tags);
    assert!(copy_in(&sim, "us-west-2").is_none(), "the unused copy {us} went with its source");
    let report = {
        let regions = ami_replicator::sim::SimRegions::new(sim.world.clone());
        let queue = ami_replicator::sim::SimQueue::new(sim.world.clone());
        let now = sim.replicator.now() as i64;
        let records: std::sync::Arc<dyn ami_replicator::ports::CopyRecords> =
            std::sync::Arc::new(ami_replicator::sim::SimRecords::new(sim.world.clone()));
        ami_replicator::status::status(&regions, &queue, &records, &settings, &acct(ME), &source, &r("us-east-1"), now)
            .await
    };
    let text = table(&report);
    assert!(text.contains("kept (source deregistered): in use by ec2:instance"), "{text}");
}

#[tokio::test]
async fn every_job_ends_a_place_that_never_has_room_is_given_up_after_job_max_age_hours() {
    // AWS allows no copy at all in the destination (another tool holds every slot): the job waits for capacity,
    // never failing, until it is older than JOB_MAX_AGE_HOURS, then it is dead-lettered with its reason.
    let mut world = World::new(acct(ME), SimConfig { copy_limit: 0, ..SimConfig::default() });
    let source = world.add_image(&r("us-east-1"), &acct(ME), "golden", vec![], vec![]);
    let settings = DeploymentSettings {
        job_max_age_hours: 6,
        rule: RuleSettings { target_regions: vec![r("eu-west-1")], ..RuleSettings::unset() },
        ..DeploymentSettings::default()
    };
    let mut sim = Simulation::new(world, settings);
    sim.put_event(&ami_event(source.as_str(), "us-east-1", "available"));
    let end = sim.run_until_idle(10, 3 * DAY).await;
    let w = sim.world.lock().unwrap();
    assert!(w.queue.is_empty(), "the job ended");
    assert_eq!(w.dead_letters.len(), 1, "{:?}", w.dead_letters);
    assert!(w.dead_letters[0].1.contains("JOB_MAX_AGE_HOURS (6 h)"), "{}", w.dead_letters[0].1);
    assert!((6 * 3600..7 * 3600).contains(&end), "given up after 6 h, not before and not much later: {end} s");
    assert!(w.limit_errors > 0 && w.copies.is_empty());
}

#[tokio::test]
async fn a_trusted_accounts_source_that_only_vanished_from_view_keeps_its_copies() {
    // Issue 28: a source of a TRUSTED_SOURCE_ACCOUNTS account that its owner stops sharing with us reads exactly
    // like a deregistered one; its copies are never destroyed for it (and a pending one is not stopped). A source
    // of our own that is gone still takes its copies with it (DEREGISTER_COPIES_WITH_SOURCE).
    const PARTNER: &str = "777788889999";
    let mut world = World::new(acct(ME), SimConfig::default());
    let shared = vec![ami_replicator::core::image::LaunchPermission::Account(acct(ME))];
    let theirs = world.add_image(&r("us-east-1"), &acct(PARTNER), "partner-golden", vec![], shared);
    let ours = world.add_image(&r("us-east-1"), &acct(ME), "golden", vec![], vec![]);
    // Its owner shares its snapshots with us too, as a cross-account copy needs.
    for snapshot in &mut world.images.get_mut(&r("us-east-1")).unwrap().get_mut(&theirs).unwrap().snapshots {
        snapshot.create_volume.push(acct(ME));
    }
    let settings = DeploymentSettings {
        trusted_source_accounts: vec![acct(PARTNER)],
        deregister_copies_with_source: true,
        rule: RuleSettings { target_regions: vec![r("eu-west-1")], ..RuleSettings::unset() },
        ..DeploymentSettings::default()
    };
    let mut sim = Simulation::new(world, settings);
    for source in [&theirs, &ours] {
        sim.send(&serde_json::json!({"image_id": source.as_str(), "source_region": "us-east-1"}).to_string());
    }
    sim.run_until_idle(10, DAY).await;
    let copy_of = |sim: &Simulation, source: &ImageId| {
        let w = sim.world.lock().unwrap();
        w.images[&r("eu-west-1")].values().find(|i| i.info.tag(SOURCE_IMAGE_TAG) == Some(source.as_str())).cloned()
    };
    let dead = sim.world.lock().unwrap().dead_letters.clone();
    let their_copy = copy_of(&sim, &theirs).unwrap_or_else(|| panic!("the partner source replicated: {dead:?}"));
    assert_eq!(their_copy.info.tag(ami_replicator::core::provenance::SOURCE_OWNER_TAG), Some(PARTNER));
    {
        let mut w = sim.world.lock().unwrap();
        // The partner stops sharing its source with us; ours is deregistered.
        w.image_mut(&r("us-east-1"), &theirs).unwrap().launch_permissions.clear();
        w.deregister(&r("us-east-1"), &ours);
    }
    for source in [&theirs, &ours] {
        sim.send(&ami_event(source.as_str(), "us-east-1", "deregistered"));
    }
    sim.run_until_idle(10, 2 * DAY).await;
    let kept = copy_of(&sim, &theirs).expect("the partner's copy stays: its source may only be hidden");
    assert_eq!(kept.info.state, ImageState::Available);
    assert!(copy_of(&sim, &ours).is_none(), "our own source's copy went with it");
}

#[tokio::test]
async fn a_copy_launched_recently_by_any_account_is_kept_and_tagged_with_why() {
    // Issue 28: with DEREGISTER_COPIES_WITH_SOURCE, a copy that some account launched within IN_USE_DAYS (EC2's
    // LastLaunchedTime) is in use, as one DescribeImageReferences names: kept, and its kept tag says which.
    let (mut sim, source, _) = replicated().await;
    let eu = copy_in(&sim, "eu-west-1").unwrap().info.id;
    {
        let mut w = sim.world.lock().unwrap();
        let now = ami_replicator::core::time::parse_rfc3339(&w.now_rfc3339()).unwrap();
        let at = ami_replicator::core::time::format_rfc3339(now - 3 * 86_400);
        w.image_mut(&r("eu-west-1"), &eu).unwrap().info.last_launched = Some(at);
        w.deregister(&r("us-east-1"), &source);
    }
    sim.put_event(&ami_event(source.as_str(), "us-east-1", "deregistered"));
    sim.run_until_idle(10, 2 * DAY).await;
    let kept = copy_in(&sim, "eu-west-1").expect("launched 3 days ago: kept");
    let why = kept.info.tag(KEPT_TAG).unwrap_or_default().to_string();
    assert!(why.contains("launched at") && why.contains("within 30 days"), "{why}");
    assert!(copy_in(&sim, "us-west-2").is_none(), "the copy nobody launched went with its source");
}
