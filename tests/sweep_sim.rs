//! The reconciliation sweep over the simulator: what events missed is found and copied, exactly once, and
//! nothing in flight or already copied is enqueued again.

use ami_replicator::core::ids::ImageId;
use ami_replicator::core::image::Tag;
use ami_replicator::core::provenance::SOURCE_IMAGE_TAG;
use ami_replicator::service::Settings;
use ami_replicator::sim::{SimConfig, Simulation, World};

mod common;
use common::*;

const ME: &str = "111111111111";
const B: &str = "222222222222";
const DAY: u64 = 86_400;

fn settings() -> Settings {
    Settings {
        target_regions: vec![r("eu-west-1"), r("us-west-2")],
        target_accounts: vec![acct(B)],
        source_regions: vec![r("us-east-1")],
        tag_filter: Some(Tag::new("replicate", "yes")),
        ..Settings::default()
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
    sim.send(&sim.scheduled_event());
    sim.run_until_idle(10, DAY).await;
    assert_eq!(copies(&sim, &missed), 5);
    assert_eq!(copies(&sim, &seen), 5, "nothing in flight was copied again");
    assert_eq!(copies(&sim, &untagged), 0, "IMAGE_TAG_FILTER holds for the sweep too");
    let calls_after_first = sim.world.lock().unwrap().total_calls();

    // A second sweep finds nothing missing and enqueues nothing.
    sim.send(&sim.scheduled_event());
    sim.run_until_idle(10, 2 * DAY).await;
    let w = sim.world.lock().unwrap();
    assert_eq!(w.copies.len(), 10);
    assert!(w.dead_letters.is_empty(), "{:?}", w.dead_letters);
    // Bounded: 1 listing for us-east-1, 1 lookup per place (2 here + 3 in B), no send.
    assert_eq!(w.total_calls() - calls_after_first, 6, "{:?}", w.calls);
}

#[tokio::test]
async fn images_older_than_the_look_back_are_left_alone() {
    let mut world = World::new(acct(ME), SimConfig::default());
    let old = world.add_image(&r("us-east-1"), &acct(ME), "old", vec![Tag::new("replicate", "yes")], vec![]);
    let mut s = settings();
    s.target_accounts.clear();
    s.sweep_lookback_hours = 1;
    let mut sim = Simulation::new(world, s);
    sim.world.lock().unwrap().advance_to(3 * 3600 * 1000);
    sim.send(&sim.scheduled_event());
    sim.run_until_idle(10, DAY).await;
    assert_eq!(copies(&sim, &old), 0);
}
