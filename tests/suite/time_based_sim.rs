//! Time-based copies (COPY_COMPLETION_MINUTES) over the simulator, which models the EBS rules: a copy finishes
//! within its completion duration when its throughput is granted, and the concurrent time-based copies of a
//! source-destination region pair share a cumulative throughput quota; with none left CopyImage is refused.
//! The refusal must be back-pressure: every copy is made, none fails, none is dead-lettered.

use ami_replicator::core::ids::{AccountId, ImageId};
use ami_replicator::core::image::ImageState;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, Simulation, World};

use crate::common::*;

const DAY: u64 = 86_400;

fn me() -> AccountId {
    acct("123456789012")
}

/// `n` sources of `size_gib` in us-east-1.
fn world(n: usize, size_gib: u32, config: SimConfig) -> (World, Vec<ImageId>) {
    let mut world = World::new(me(), config);
    let ids = (0..n)
        .map(|i| {
            let id = world.add_image(&r("us-east-1"), &me(), &format!("golden-{i}"), vec![], vec![]);
            world.image_mut(&r("us-east-1"), &id).unwrap().info.size_gib = size_gib;
            id
        })
        .collect();
    (world, ids)
}

fn settings(minutes: Option<u32>) -> DeploymentSettings {
    DeploymentSettings {
        max_copies_per_region: 100,
        rule: RuleSettings {
            target_regions: vec![r("eu-west-1")],
            copy_completion_minutes: minutes,
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    }
}

#[tokio::test]
async fn time_based_copies_finish_within_their_duration_and_the_quota_is_back_pressure() {
    // 200 GiB in 15 minutes needs 228 MiB/s: the 2,000 MiB/s quota admits eight at a time, so 20 sources
    // meet the quota; the rest must wait for capacity, not fail.
    let (world, sources) = world(20, 200, SimConfig::default());
    let mut sim = Simulation::new(world, settings(Some(15)));
    for id in &sources {
        sim.send(&serde_json::json!({"image_id": id.as_str(), "source_region": "us-east-1"}).to_string());
    }
    sim.run_until_idle(10, DAY).await;
    let w = sim.world.lock().unwrap();
    assert!(w.dead_letters.is_empty(), "nothing dead-lettered: {:?}", w.dead_letters);
    assert!(w.limit_errors > 0, "the quota was met (the test would prove nothing otherwise)");
    let copies: Vec<_> = w.copies.iter().filter(|c| c.destination == r("eu-west-1")).collect();
    assert_eq!(copies.len(), 20, "one copy per source, none twice");
    for c in &copies {
        assert!(!c.fails);
        assert!(c.throughput_mibps > 0, "a time-based copy");
        if c.throughput_mibps == 228 {
            assert!(c.ready_at_ms - c.started_ms <= 15 * 60 * 1000, "granted copies finish within 15 minutes");
        }
    }
    // The quota was never exceeded: at any copy's start, the copies in flight used at most 2,000 MiB/s.
    for c in &copies {
        let used: u64 = copies
            .iter()
            .filter(|o| o.started_ms <= c.started_ms && o.ready_at_ms > c.started_ms)
            .map(|o| o.throughput_mibps)
            .sum();
        assert!(used <= 2000, "{used} MiB/s in flight at {}", c.started_ms);
    }
    for id in &sources {
        let copy = w.images[&r("eu-west-1")]
            .values()
            .find(|i| i.info.tag("ami-replicator:source-image") == Some(id.as_str()))
            .unwrap();
        assert_eq!(copy.info.state, ImageState::Available);
    }
}

#[tokio::test]
async fn without_the_setting_copies_are_best_effort() {
    let (world, sources) = world(3, 200, SimConfig::default());
    let mut sim = Simulation::new(world, settings(None));
    for id in &sources {
        sim.send(&serde_json::json!({"image_id": id.as_str(), "source_region": "us-east-1"}).to_string());
    }
    sim.run_until_idle(10, DAY).await;
    let w = sim.world.lock().unwrap();
    assert_eq!(w.copies.len(), 3);
    assert!(w.copies.iter().all(|c| c.throughput_mibps == 0));
}

#[tokio::test]
async fn a_quota_partly_used_still_starts_the_copy_and_it_takes_longer() {
    // A 2,000 GiB image in 15 minutes would need 2,276 MiB/s: more than one snapshot's 500 MiB/s, so it is
    // granted 500 MiB/s and takes about 68 minutes; it is made, not refused.
    let (world, sources) = world(1, 2000, SimConfig::default());
    let mut sim = Simulation::new(world, settings(Some(15)));
    sim.send(&serde_json::json!({"image_id": sources[0].as_str(), "source_region": "us-east-1"}).to_string());
    sim.run_until_idle(10, DAY).await;
    let w = sim.world.lock().unwrap();
    assert_eq!(w.copies.len(), 1);
    assert_eq!(w.copies[0].throughput_mibps, 500);
    assert_eq!(w.copies[0].ready_at_ms - w.copies[0].started_ms, 2000 * 1024 * 1000 / 500);
    assert!(w.dead_letters.is_empty());
}
