//! Metrics over the simulator: the facts an invocation records, turned into EMF lines, add up to what happened
//! in the simulated world (copies started, completed, failed and replaced, capacity waits, throttled calls, dead
//! letters, copy durations and share latency, the oldest job's age).

use ami_replicator::core::emf;
use ami_replicator::core::facts::Fact;
use ami_replicator::core::step::JobLimits;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, Simulation, World};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::common::*;

const ME: &str = "123456789012";

/// Sums a metric over every EMF line of every invocation, per region ("" for lines without dimensions).
fn totals(sim: &Simulation) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for (n, report) in sim.reports.iter().enumerate() {
        for line in emf::lines(&report.facts, n as i64) {
            let v: Value = serde_json::from_str(&line).unwrap();
            let region = v.get("Region").and_then(Value::as_str).unwrap_or("").to_string();
            for m in v["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap().to_string();
                let value = match &v[&name] {
                    Value::Array(a) => a.iter().filter_map(Value::as_f64).sum::<f64>(),
                    x => x.as_f64().unwrap(),
                };
                *out.entry((region.clone(), name)).or_default() += value;
            }
        }
    }
    out
}

fn get(t: &BTreeMap<(String, String), f64>, region: &str, name: &str) -> f64 {
    t.get(&(region.to_string(), name.to_string())).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_add_up_to_what_happened() {
    // Limit 2 per region for 4 images: capacity waits; one copy fails and is replaced; some calls throttled.
    let mut world = World::new(acct(ME), SimConfig { copy_limit: 2, seed: 3, ..SimConfig::default() });
    world.faults.fail_next_copies = 1;
    world.faults.throttle_next = 3;
    let images: Vec<_> =
        (0..4).map(|n| world.add_image(&r("us-east-1"), &acct(ME), &format!("img-{n}"), vec![], vec![])).collect();
    let settings = DeploymentSettings {
        max_copies_per_region: 2,
        step: JobLimits { poll_seconds: 60, ..JobLimits::default() },
        rule: RuleSettings { target_regions: vec![r("eu-west-1"), r("us-west-2")], ..RuleSettings::unset() },
        ..DeploymentSettings::default()
    };
    let mut sim = Simulation::new(world, settings);
    for image in &images {
        sim.put_event(&ami_event(image.as_str(), "us-east-1", "available"));
    }
    sim.run_until_idle(10, 86_400).await;
    let t = totals(&sim);
    let w = sim.world.lock().unwrap();
    for region in ["eu-west-1", "us-west-2"] {
        let made = w.copies.iter().filter(|c| c.destination == r(region)).count() as f64;
        let failed = w.copies.iter().filter(|c| c.destination == r(region) && c.fails).count() as f64;
        assert_eq!(get(&t, region, "CopiesStarted"), made, "{region}: {t:?}");
        assert_eq!(get(&t, region, "CopiesCompleted"), 4.0, "{region}");
        assert_eq!(get(&t, region, "CopiesFailed"), failed, "{region}");
        assert_eq!(get(&t, region, "CopiesReplaced"), failed, "{region}");
        assert!(get(&t, region, "CapacityWaits") > 0.0, "{region}: the limit of 2 was met");
        // Each copy's duration is its time in the simulator, seen within one poll (a 60 s poll, doubled for
        // places with few copies).
        let real: f64 = w
            .copies
            .iter()
            .filter(|c| c.destination == r(region) && !c.fails)
            .map(|c| (c.ready_at_ms - c.started_ms) as f64 / 1000.0)
            .sum();
        let measured = get(&t, region, "CopyDuration");
        assert!(measured >= real - 4.0 && measured <= real + 4.0 * 125.0, "{region}: {measured} vs {real}");
    }
    assert_eq!(get(&t, "eu-west-1", "CopiesFailed") + get(&t, "us-west-2", "CopiesFailed"), 1.0);
    let throttled: f64 = t.iter().filter(|((_, name), _)| name == "ThrottledCalls").map(|(_, v)| v).sum();
    assert_eq!(throttled, 3.0, "each throttled answer counted once: {t:?}");
    assert!(get(&t, "", "OldestJobAge") > 0.0, "the age of the oldest job is reported");
    assert_eq!(get(&t, "", "DeadLettered"), 0.0);
    assert!(w.dead_letters.is_empty());
}

#[tokio::test]
async fn a_dead_letter_is_counted_in_its_region_and_share_latency_comes_with_copy_events() {
    let config = SimConfig { copy_events: Some((5, 5)), seed: 4, ..SimConfig::default() };
    let mut world = World::new(acct(ME), config);
    let image = world.add_image(&r("us-east-1"), &acct(ME), "golden", vec![], vec![]);
    world.config.pv_unsupported = vec![r("us-west-2")];
    world.image_mut(&r("us-east-1"), &image).unwrap().info.traits.paravirtual = true;
    let settings = DeploymentSettings {
        step: JobLimits { poll_seconds: 300, capacity_max_seconds: 300, ..JobLimits::default() },
        copy_events: true,
        rule: RuleSettings { target_regions: vec![r("eu-west-1"), r("us-west-2")], ..RuleSettings::unset() },
        ..DeploymentSettings::default()
    };
    let mut sim = Simulation::new(world, settings);
    sim.put_event(&ami_event(image.as_str(), "us-east-1", "available"));
    sim.run_until_idle(10, 86_400).await;
    let t = totals(&sim);
    assert_eq!(get(&t, "us-west-2", "DeadLettered"), 1.0, "{t:?}");
    assert_eq!(get(&t, "eu-west-1", "CopiesCompleted"), 1.0);
    let latency = get(&t, "eu-west-1", "ShareLatency");
    assert!((5.0..=6.0).contains(&latency), "shared when the event (5 s after) arrived: {latency}");
    let failure = sim
        .reports
        .iter()
        .flat_map(|r| &r.facts)
        .find_map(|f| match f {
            Fact::DeadLettered { failure: Some(f), .. } => Some((**f).clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!((failure.region.as_str(), failure.source_image.as_str()), ("us-west-2", image.as_str()));
    assert!(failure.reason.contains("aravirtual"), "{}", failure.reason);
}
