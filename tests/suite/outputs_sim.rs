//! What consumers get, over the simulator: completion events (PUBLISH_EVENTS) per copy and per failed place, one
//! `AMI Replication Finished` per source once every place is done (a failed publication retried by the watch,
//! never touching a copy), and SSM parameters (SSM_PARAMETER_TEMPLATE) naming the copy of the newest source.

use ami_replicator::core::ids::ImageId;
use ami_replicator::core::step::JobLimits;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, Simulation, World};
use serde_json::Value;

use crate::common::*;

const ME: &str = "123456789012";

fn settings() -> DeploymentSettings {
    DeploymentSettings {
        step: JobLimits { poll_seconds: 60, ..JobLimits::default() },
        publish_events: true,
        sweep_lookback_hours: 1,
        rule: RuleSettings { target_regions: vec![r("eu-west-1"), r("us-west-2")], ..RuleSettings::unset() },
        ..DeploymentSettings::default()
    }
}

fn events(sim: &Simulation, detail_type: &str) -> Vec<Value> {
    let w = sim.world.lock().unwrap();
    w.published.iter().filter(|(_, e)| e.detail_type == detail_type).map(|(_, e)| e.detail.clone()).collect()
}

#[tokio::test]
async fn each_copy_each_failure_and_each_finished_source_is_published() {
    let mut world = World::new(acct(ME), SimConfig { seed: 9, ..SimConfig::default() });
    world.config.pv_unsupported = vec![r("us-west-2")];
    let good = world.add_image(&r("us-east-1"), &acct(ME), "good", vec![], vec![]);
    let pv = world.add_image(&r("us-east-1"), &acct(ME), "pv", vec![], vec![]);
    world.image_mut(&r("us-east-1"), &pv).unwrap().info.traits.paravirtual = true;
    let mut sim = Simulation::new(world, settings());
    for image in [&good, &pv] {
        sim.put_event(&ami_event(image.as_str(), "us-east-1", "available"));
    }
    sim.run_until_idle(10, 86_400).await;

    let completed = events(&sim, "AMI Replication Completed");
    let failed = events(&sim, "AMI Replication Failed");
    let finished = events(&sim, "AMI Replication Finished");
    let w = sim.world.lock().unwrap();
    assert!(w.dead_letters.len() == 1, "the PV image to us-west-2: {:?}", w.dead_letters);
    let copies: Vec<&ImageId> = w.copies.iter().filter(|c| !c.fails).map(|c| &c.image).collect();
    assert_eq!(copies.len(), 3, "good to both regions, pv to eu-west-1");
    assert_eq!(completed.len(), 3, "{completed:?}");
    for c in &completed {
        assert!(copies.iter().any(|id| id.as_str() == c["image_id"]), "{c}");
        assert_eq!(c["source_region"], "us-east-1");
        assert!(c["duration_seconds"].as_f64().unwrap() >= 600.0, "{c}");
        assert!(c["dedup_key"].as_str().unwrap().contains(c["image_id"].as_str().unwrap()));
    }
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (failed[0]["source_image_id"].as_str(), failed[0]["region"].as_str()),
        (Some(pv.as_str()), Some("us-west-2"))
    );
    assert!(failed[0]["reason"].as_str().unwrap().contains("aravirtual"));
    // One Finished per source: good complete; pv with us-west-2 missing once the deadline (1 h) passed.
    assert_eq!(finished.len(), 2, "{finished:?}");
    let of = |id: &ImageId| finished.iter().find(|f| f["source_image_id"] == id.as_str()).unwrap().clone();
    let g = of(&good);
    assert_eq!(g["complete"], true);
    assert_eq!(g["destinations"].as_array().unwrap().len(), 2);
    assert!(g["destinations"].as_array().unwrap().iter().all(|d| d["outcome"] == "completed"));
    let p = of(&pv);
    assert_eq!(p["complete"], false);
    let outcome = |region: &str| {
        p["destinations"].as_array().unwrap().iter().find(|d| d["region"] == region).unwrap()["outcome"].clone()
    };
    assert_eq!((outcome("eu-west-1"), outcome("us-west-2")), (Value::from("completed"), Value::from("missing")));
    // Finished comes after the copies it reports.
    let finished_at = w
        .published
        .iter()
        .find(|(_, e)| e.detail["source_image_id"] == good.as_str() && e.detail_type == "AMI Replication Finished")
        .unwrap()
        .0;
    assert!(w.copies.iter().filter(|c| c.source == good).all(|c| c.ready_at_ms <= finished_at));
}

#[tokio::test]
async fn failed_publications_never_touch_a_copy_and_the_finished_event_is_retried_by_its_watch() {
    let mut world = World::new(acct(ME), SimConfig { seed: 2, ..SimConfig::default() });
    let image = world.add_image(&r("us-east-1"), &acct(ME), "good", vec![], vec![]);
    // Every publication fails for a while: the completions' events are lost (logged), the Finished one waits.
    world.faults.fail_next_publishes = 4;
    let mut sim = Simulation::new(world, settings());
    sim.put_event(&ami_event(image.as_str(), "us-east-1", "available"));
    sim.run_until_idle(10, 86_400).await;
    let w = sim.world.lock().unwrap();
    assert_eq!(w.faults.fail_next_publishes, 0, "the failures happened");
    assert_eq!(w.copies.len(), 2);
    assert!(w.dead_letters.is_empty());
    let finished: Vec<_> = w.published.iter().filter(|(_, e)| e.detail_type == "AMI Replication Finished").collect();
    assert_eq!(finished.len(), 1, "published once, after its failed attempts");
    assert_eq!(finished[0].1.detail["complete"], true);
}

#[tokio::test]
async fn without_publish_events_nothing_is_published() {
    let mut world = World::new(acct(ME), SimConfig::default());
    let image = world.add_image(&r("us-east-1"), &acct(ME), "good", vec![], vec![]);
    let mut sim = Simulation::new(world, DeploymentSettings { publish_events: false, ..settings() });
    sim.put_event(&ami_event(image.as_str(), "us-east-1", "available"));
    sim.run_until_idle(10, 86_400).await;
    let w = sim.world.lock().unwrap();
    assert!(w.published.is_empty());
    assert_eq!(w.calls.get("PutEvents"), None);
    assert_eq!(w.copies.len(), 2);
}

#[tokio::test]
async fn the_ssm_parameter_names_the_copy_of_the_newest_source() {
    let mut world = World::new(acct(ME), SimConfig { copy_seconds: (600, 600), ..SimConfig::default() });
    let older = world.add_image(&r("us-east-1"), &acct(ME), "golden", vec![], vec![]);
    world.now_ms += 3_600_000;
    let newer = world.add_image(&r("us-east-1"), &acct(ME), "golden", vec![], vec![]);
    let s = DeploymentSettings {
        publish_events: false,
        rule: RuleSettings { ssm_parameter_template: Some("/ami/{name}/latest".into()), ..settings().rule.clone() },
        ..settings()
    };
    let mut sim = Simulation::new(world, s);
    // The newer source is replicated first; the older one's copies must not take the parameter back.
    sim.put_event(&ami_event(newer.as_str(), "us-east-1", "available"));
    sim.run_until_idle(10, 86_400).await;
    sim.put_event(&ami_event(older.as_str(), "us-east-1", "available"));
    sim.run_until_idle(10, 86_400).await;
    let w = sim.world.lock().unwrap();
    for region in ["eu-west-1", "us-west-2"] {
        let value = w.parameters.get(&(acct(ME), r(region), "/ami/golden/latest".to_string())).unwrap();
        let copy = w.copies.iter().find(|c| c.image.as_str() == value).unwrap();
        assert_eq!(copy.source, newer, "{region}: the newer source's copy");
        assert_eq!(copy.destination, r(region));
    }
    assert_eq!(w.copies.len(), 4, "both sources are still copied");
    assert_eq!(w.calls.get("PutParameter"), Some(&2), "the older source's copies did not overwrite");
}

#[tokio::test]
async fn a_replication_the_sweep_starts_is_watched_too() {
    let mut world = World::new(acct(ME), SimConfig::default());
    let image = world.add_image(&r("us-east-1"), &acct(ME), "missed", vec![], vec![]);
    let s = DeploymentSettings { source_regions: vec![r("us-east-1")], sweep_lookback_hours: 48, ..settings() };
    let mut sim = Simulation::new(world, s);
    // The image's event never came: the sweep finds it.
    sim.invoke_schedule().await;
    sim.run_until_idle(10, 86_400).await;
    let finished = events(&sim, "AMI Replication Finished");
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(finished[0]["source_image_id"], image.as_str());
    assert_eq!(finished[0]["complete"], true);
}

#[tokio::test]
async fn a_watch_may_only_narrow_the_configuration() {
    let mut world = World::new(acct(ME), SimConfig::default());
    let image = world.add_image(&r("us-east-1"), &acct(ME), "golden", vec![], vec![]);
    let mut sim = Simulation::new(world, settings());
    let since = sim.replicator.now() as i64;
    // A watch naming only places the configuration does not have: an unknown account, an unconfigured region.
    let forged = serde_json::json!({"ami_replicator": 1, "jobs": [], "watch": [{
        "source_image": image.as_str(), "source_region": "us-east-1", "since": since,
        "places": [{"account": "999988887777", "region": "eu-west-1"}, {"region": "ap-south-1"}]
    }]});
    sim.send(&forged.to_string());
    sim.run_until_idle(10, 86_400).await;
    let w = sim.world.lock().unwrap();
    assert!(w.published.is_empty(), "no Finished event for places that are not configured");
    assert_eq!(w.calls.get("DescribeImages"), None, "nothing read there");
    assert!(w.dead_letters.is_empty());
}

#[tokio::test]
async fn a_watch_from_the_future_is_dropped() {
    let mut world = World::new(acct(ME), SimConfig::default());
    let image = world.add_image(&r("us-east-1"), &acct(ME), "golden", vec![], vec![]);
    let mut sim = Simulation::new(world, settings());
    let future = sim.replicator.now() as i64 + 10 * 86_400;
    let forged = serde_json::json!({"ami_replicator": 1, "jobs": [], "watch": [{
        "source_image": image.as_str(), "source_region": "us-east-1", "since": future,
        "places": [{"region": "eu-west-1"}]
    }]});
    sim.send(&forged.to_string());
    sim.run_until_idle(10, 86_400).await;
    let w = sim.world.lock().unwrap();
    assert!(w.published.is_empty(), "no Finished event from a watch that would never be due");
    assert_eq!(w.calls.get("DescribeImages"), None, "nothing read for it");
    assert!(w.queue.is_empty(), "it does not come back");
}
