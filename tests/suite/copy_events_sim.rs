//! Copy events over the simulator: each copy's `EC2 AMI State Change` (available) reaches the work queue 1-30 s
//! after the copy is done (region forwarders); the handler shares the copy at once and marks it shared, so the
//! continuation still waiting for it costs one shared DescribeImages and no second ModifyImageAttribute. Lost
//! events are covered by polling.

use ami_replicator::core::ids::ImageId;
use ami_replicator::core::image::{ImageState, LaunchPermission};
use ami_replicator::core::provenance::{SHARED_TAG, SOURCE_IMAGE_TAG};
use ami_replicator::core::share::ShareSettings;
use ami_replicator::core::step::JobLimits;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, Simulation, World};

use crate::common::*;

const ME: &str = "123456789012";
const REGIONS: [&str; 3] = ["eu-west-1", "us-west-2", "ap-south-1"];

fn run(loss: f64) -> (Simulation, Vec<ImageId>) {
    let config = SimConfig { copy_events: Some((1, 30)), copy_event_loss: loss, seed: 11, ..SimConfig::default() };
    let mut world = World::new(acct(ME), config);
    let images: Vec<ImageId> =
        (0..10).map(|n| world.add_image(&r("us-east-1"), &acct(ME), &format!("img-{n}"), vec![], vec![])).collect();
    let settings = DeploymentSettings {
        // COPY_EVENTS=true: polling is the safety net.
        step: JobLimits { poll_seconds: 300, capacity_max_seconds: 300, ..JobLimits::default() },
        copy_events: true,
        rule: RuleSettings {
            target_regions: REGIONS.iter().map(|x| r(x)).collect(),
            share: ShareSettings {
                extra: vec![LaunchPermission::Account(acct("444455556666"))],
                ..ShareSettings::default()
            },
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    };
    let mut sim = Simulation::new(world, settings);
    for image in &images {
        sim.put_event(&ami_event(image.as_str(), "us-east-1", "available"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(sim.run_until_idle(10, 86_400));
    (sim, images)
}

/// Seconds from each copy becoming available to its sharing, sorted.
fn share_latencies(sim: &Simulation) -> Vec<u64> {
    let w = sim.world.lock().unwrap();
    let mut out: Vec<u64> = w
        .copies
        .iter()
        .filter(|c| !c.fails)
        .filter_map(|c| {
            let shared = sim.completions.iter().filter(|(_, _, copy)| *copy == c.image).map(|(t, _, _)| *t).min()?;
            Some(shared.saturating_sub(c.ready_at_ms) / 1000)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn copies_are_shared_when_their_event_arrives_and_once_only() {
    let (sim, images) = run(0.0);
    let w = sim.world.lock().unwrap();
    assert_eq!(w.copies.len(), 30);
    for image in &images {
        for region in REGIONS {
            let copy = w.images[&r(region)]
                .values()
                .find(|i| i.info.tag(SOURCE_IMAGE_TAG) == Some(image.as_str()))
                .unwrap_or_else(|| panic!("{image} in {region}"));
            assert_eq!(copy.info.state, ImageState::Available);
            assert!(copy.info.tag(SHARED_TAG).is_some(), "marked shared");
            assert!(copy.launch_permissions.contains(&LaunchPermission::Account(acct("444455556666"))));
        }
    }
    // One ModifyImageAttribute per copy: the continuation found the copy marked shared and did not share again.
    assert_eq!(w.calls.get("ModifyImageAttribute"), Some(&30), "{:?}", w.calls);
    assert!(w.dead_letters.is_empty());
    drop(w);
    let latencies = share_latencies(&sim);
    assert_eq!(latencies.len(), 30);
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    assert!(p99 <= 35, "shared within the event delay (1-30 s) plus the batching window: {latencies:?}");
}

#[test]
fn lost_events_are_covered_by_polling() {
    let (sim, _) = run(1.0);
    let w = sim.world.lock().unwrap();
    let shared = w.images.values().flat_map(|m| m.values()).filter(|i| i.info.tag(SHARED_TAG).is_some()).count();
    assert_eq!(shared, 30, "every copy shared by its polling job");
    drop(w);
    let latencies = share_latencies(&sim);
    assert!(*latencies.last().unwrap() <= 2 * 300 + 60, "within two polls: {latencies:?}");
}

/// A `failed` copy event replaces the copy at once (not at the waiting job's next poll, 300 s later), with the
/// next attempt's ClientToken: the job still waiting converges on the same successor, so there is one.
#[test]
fn a_failed_copy_is_replaced_when_its_event_arrives() {
    use ami_replicator::core::provenance::ATTEMPT_TAG;
    let config = SimConfig { copy_events: Some((1, 30)), seed: 5, ..SimConfig::default() };
    let mut world = World::new(acct(ME), config);
    world.faults.fail_next_copies = 1;
    let image = world.add_image(&r("us-east-1"), &acct(ME), "golden", vec![], vec![]);
    let settings = DeploymentSettings {
        step: JobLimits { poll_seconds: 300, capacity_max_seconds: 300, ..JobLimits::default() },
        copy_events: true,
        rule: RuleSettings { target_regions: vec![r("eu-west-1")], ..RuleSettings::unset() },
        ..DeploymentSettings::default()
    };
    let mut sim = Simulation::new(world, settings);
    sim.put_event(&ami_event(image.as_str(), "us-east-1", "available"));
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(sim.run_until_idle(10, 86_400));
    let w = sim.world.lock().unwrap();
    assert_eq!(w.copies.len(), 2, "the failed copy and one successor: {:?}", w.copies);
    let (failed, successor) = (&w.copies[0], &w.copies[1]);
    assert!(failed.fails && !successor.fails);
    let waited = (successor.started_ms - failed.ready_at_ms) / 1000;
    assert!(waited <= 35, "replaced within the event delay, not at the next poll: {waited} s");
    let copies: Vec<_> = w.images[&r("eu-west-1")].values().collect();
    let live: Vec<_> = copies.iter().filter(|i| i.info.state == ImageState::Available).collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].info.tag(ATTEMPT_TAG), Some("1"), "the successor carries its attempt");
    assert!(live[0].info.tag(SHARED_TAG).is_some());
    assert!(
        !copies.iter().any(|i| matches!(i.info.state, ImageState::Failed(_))),
        "the failed copy was deregistered: {copies:?}"
    );
    assert!(w.dead_letters.is_empty(), "{:?}", w.dead_letters);
}
