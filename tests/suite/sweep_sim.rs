//! The reconciliation sweep over the simulator: what events missed is found and copied, exactly once, and
//! nothing in flight or already copied is enqueued again.

use ami_replicator::core::ids::ImageId;
use ami_replicator::core::image::Tag;
use ami_replicator::core::provenance::SOURCE_IMAGE_TAG;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, Simulation, World};

use crate::common::*;

const ME: &str = "111111111111";
const B: &str = "222222222222";
const DAY: u64 = 86_400;

fn settings() -> DeploymentSettings {
    DeploymentSettings {
        source_regions: vec![r("us-east-1")],
        tag_filter: Some(Tag::new("replicate", "yes")),
        rule: RuleSettings {
            target_regions: vec![r("eu-west-1"), r("us-west-2")],
            target_accounts: vec![acct(B)],
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    }
}

fn event(image: &ImageId) -> String {
    ami_event_of(ME, image.as_str(), "us-east-1", "available")
}

fn copies(sim: &Simulation, source: &ImageId) -> usize {
    let w = sim.world.lock().unwrap();
    w.images.values().flat_map(|m| m.values()).filter(|i| i.info.tag(SOURCE_IMAGE_TAG) == Some(source.as_str())).count()
}

#[tokio::test]
async fn the_sweep_copies_what_events_missed_exactly_once() {
    let mut world = World::new(acct(ME), SimConfig::default());
    world.assumable.insert(acct(B));
    let tagged = vec![Tag::new("replicate", "yes")];
    let missed = world.add_image(&r("us-east-1"), &acct(ME), "missed", tagged.clone(), vec![]);
    let seen = world.add_image(&r("us-east-1"), &acct(ME), "seen", tagged.clone(), vec![]);
    let untagged = world.add_image(&r("us-east-1"), &acct(ME), "untagged", vec![], vec![]);
    let mut sim = Simulation::new(world, settings());
    // `seen`'s event arrived: its copies start. `missed`'s never did.
    sim.send(&event(&seen));
    sim.run_until_idle(10, 120).await;
    assert_eq!(copies(&sim, &seen), 5, "2 here + 3 in B, all still pending");

    // The sweep runs while seen's copies are in flight: only missed's five places are enqueued.
    sim.invoke_schedule().await;
    sim.run_until_idle(10, DAY).await;
    assert_eq!(copies(&sim, &missed), 5);
    assert_eq!(copies(&sim, &seen), 5, "nothing in flight was copied again");
    assert_eq!(copies(&sim, &untagged), 0, "IMAGE_TAG_FILTER holds for the sweep too");
    let calls_after_first = sim.world.lock().unwrap().total_calls();

    // A second sweep finds nothing missing and enqueues nothing.
    sim.invoke_schedule().await;
    sim.run_until_idle(10, 2 * DAY).await;
    let w = sim.world.lock().unwrap();
    assert_eq!(w.copies.len(), 10);
    assert!(w.dead_letters.is_empty(), "{:?}", w.dead_letters);
    // Bounded: 1 listing for us-east-1, 1 lookup per place (2 here + 3 in B), and at B's place in the source's
    // own region one read of the function's record of its copies there (BatchGetItem); no send.
    assert_eq!(w.total_calls() - calls_after_first, 7, "{:?}", w.calls);
}

#[tokio::test]
async fn images_older_than_the_look_back_are_left_alone() {
    let mut world = World::new(acct(ME), SimConfig::default());
    let old = world.add_image(&r("us-east-1"), &acct(ME), "old", vec![Tag::new("replicate", "yes")], vec![]);
    let mut s = settings();
    s.rule.target_accounts.clear();
    s.sweep_lookback_hours = 1;
    let mut sim = Simulation::new(world, s);
    sim.world.lock().unwrap().advance_to(3 * 3600 * 1000);
    sim.invoke_schedule().await;
    sim.run_until_idle(10, DAY).await;
    assert_eq!(copies(&sim, &old), 0);
}

#[tokio::test]
async fn the_sweep_finishes_a_share_that_never_completed_and_leaves_a_failed_share_alone() {
    use ami_replicator::core::image::LaunchPermission;
    use ami_replicator::core::provenance::{SHARED_TAG, SHARE_FAILED_TAG};
    let mut world = World::new(acct(ME), SimConfig::default());
    world.assumable.insert(acct(B));
    let grant = vec![LaunchPermission::Account(acct("555566667777"))];
    let source = world.add_image(&r("us-east-1"), &acct(ME), "golden", vec![Tag::new("replicate", "yes")], grant);
    let mut sim = Simulation::new(world, settings());
    sim.put_event(&event(&source));
    sim.run_until_idle(10, DAY).await;
    // Two copies lose their share (as if the function had stopped between CopyImage's end and the share): their
    // grants and shared mark are gone; a third is marked with a failed share.
    let (eu, us) = {
        let mut w = sim.world.lock().unwrap();
        let mut ids = vec![];
        for region in ["eu-west-1", "us-west-2"] {
            let image = w.images.get_mut(&r(region)).unwrap().values_mut().find(|i| i.info.owner == Some(acct(ME)));
            let image = image.unwrap();
            image.launch_permissions.clear();
            image.info.tags.retain(|t| t.key != SHARED_TAG);
            ids.push(image.info.id.clone());
        }
        let failed = w.images.get_mut(&r("eu-west-1")).unwrap().values_mut().find(|i| i.info.owner == Some(acct(B)));
        let failed = failed.unwrap();
        failed.launch_permissions.clear();
        failed.info.tags.retain(|t| t.key != SHARED_TAG);
        failed.info.tags.push(Tag::new(SHARE_FAILED_TAG, "OperationNotPermitted: ..."));
        (ids[0].clone(), ids[1].clone())
    };
    sim.invoke_schedule().await;
    sim.run_until_idle(10, 2 * DAY).await;
    let w = sim.world.lock().unwrap();
    for (region, id) in [("eu-west-1", &eu), ("us-west-2", &us)] {
        let image = &w.images[&r(region)][id];
        assert!(image.info.tag(SHARED_TAG).is_some(), "{region}: shared again by the sweep");
        assert!(image.launch_permissions.contains(&LaunchPermission::Account(acct("555566667777"))), "{region}");
    }
    let failed = w.images[&r("eu-west-1")].values().find(|i| i.info.owner == Some(acct(B))).unwrap();
    assert!(failed.launch_permissions.is_empty() && failed.info.tag(SHARED_TAG).is_none(), "left to the operator");
    assert_eq!(w.copies.iter().filter(|c| c.source == source).count(), 5, "no new copy");
}

#[tokio::test]
async fn the_sweep_runs_only_from_its_schedule_and_only_as_far_back_as_its_own_clock_allows() {
    // Issue 28: a Scheduled Event sent through the work queue (anyone who may send work items could) is refused;
    // a direct one whose time says 1970 sweeps SWEEP_LOOKBACK_HOURS back from the invocation's clock, no further.
    let mut world = World::new(acct(ME), SimConfig::default());
    let old = world.add_image(&r("us-east-1"), &acct(ME), "old", vec![Tag::new("replicate", "yes")], vec![]);
    let mut s = settings();
    s.rule.target_accounts.clear();
    s.sweep_lookback_hours = 1;
    let mut sim = Simulation::new(world, s);
    sim.world.lock().unwrap().advance_to(3 * 3600 * 1000);
    let recent = sim.world.lock().unwrap().add_image(
        &r("us-east-1"),
        &acct(ME),
        "recent",
        vec![Tag::new("replicate", "yes")],
        vec![],
    );
    let forged = sim.scheduled_event().replace(&sim.world.lock().unwrap().now_rfc3339(), "1970-01-01T00:00:00Z");
    assert!(forged.contains("1970-01-01T00:00:00Z"));
    sim.send(&forged);
    sim.run_until_idle(10, DAY).await;
    assert_eq!((copies(&sim, &old), copies(&sim, &recent)), (0, 0), "through the queue: no sweep at all");
    // The same event, as the schedule invokes the function: only the last hour is swept.
    let direct = ami_replicator::entry::decode_input(serde_json::from_str(&forged).unwrap()).unwrap();
    let ami_replicator::entry::Input::Direct(item) = direct else { panic!("a direct invocation") };
    sim.replicator.process(vec![item], &acct(ME)).await;
    sim.run_until_idle(10, DAY).await;
    assert_eq!((copies(&sim, &old), copies(&sim, &recent)), (0, 2), "the window is the clock's, not the event's");
}
