//! What happens to copies after replication (issue 19), over the simulator: onward sharing of the copies'
//! snapshots (SHARE_SNAPSHOTS), per deployment and per replication rule.

use ami_replicator::config::Config;
use ami_replicator::core::ids::ImageId;
use ami_replicator::core::image::{LaunchPermission, Tag};
use ami_replicator::core::provenance::SOURCE_IMAGE_TAG;
use ami_replicator::core::share::SharePolicy;
use ami_replicator::service::Settings;
use ami_replicator::sim::{SimConfig, SimImage, Simulation, World};
use std::collections::HashMap;

mod common;
use common::*;

const ME: &str = "111111111111";
const PARTNER: &str = "444455556666";
const CONSUMER: &str = "555566667777";
const DAY: u64 = 86_400;

fn copies(sim: &Simulation, source: &ImageId) -> Vec<SimImage> {
    let w = sim.world.lock().unwrap();
    w.images
        .values()
        .flat_map(|m| m.values())
        .filter(|i| i.info.tag(SOURCE_IMAGE_TAG) == Some(source.as_str()))
        .cloned()
        .collect()
}

/// Who may create volumes from each snapshot of `copy`.
fn volume_users(copy: &SimImage) -> Vec<Vec<String>> {
    copy.snapshots.iter().map(|s| s.create_volume.iter().map(ToString::to_string).collect()).collect()
}

fn world(tags: Vec<Tag>) -> (World, ImageId) {
    let mut w = World::new(acct(ME), SimConfig::default());
    let permissions = vec![LaunchPermission::Account(acct(CONSUMER)), LaunchPermission::Public];
    let src = w.add_image(&r("us-east-1"), &acct(ME), "golden", tags, permissions);
    (w, src)
}

#[tokio::test]
async fn the_accounts_a_copy_is_shared_with_may_copy_it_onward_never_everyone() {
    let (w, src) = world(vec![]);
    let settings = Settings {
        target_regions: vec![r("eu-west-1"), r("us-west-2")],
        share: SharePolicy {
            copy_source_permissions: true,
            extra: vec![LaunchPermission::Account(acct(PARTNER))],
            allow_public: true,
        },
        share_snapshots: true,
        ..Settings::default()
    };
    let mut sim = Simulation::new(w, settings);
    sim.put_event(&ami_event_of(ME, src.as_str(), "us-east-1", "available"));
    sim.run_until_idle(10, DAY).await;
    let copies = copies(&sim, &src);
    assert_eq!(copies.len(), 2);
    for copy in &copies {
        assert!(copy.launch_permissions.contains(&LaunchPermission::Public), "public launch, as allowed");
        for users in volume_users(copy) {
            let mut users = users;
            users.sort();
            assert_eq!(users, [PARTNER, CONSUMER], "snapshots to the accounts only, never to all");
        }
    }
}

#[tokio::test]
async fn onward_sharing_is_a_rules_choice() {
    let rules = r#"{"rules": [
      {"name": "onward", "match": {"tags": {"Onward": "yes"}}, "regions": ["eu-west-1"], "share": {"snapshots": true}},
      {"name": "launch-only", "match": {}, "regions": ["eu-west-1"], "share": {"snapshots": false}}
    ]}"#;
    let vars: HashMap<&str, &str> = HashMap::from([
        ("WORK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/111111111111/work"),
        ("REPLICATION_RULES", rules),
        ("SOURCE_REGIONS", "us-east-1"),
        ("SHARE_SNAPSHOTS", "true"),
    ]);
    let without =
        Config::from_lookup(&|k| if k == "SHARE_SNAPSHOTS" { None } else { vars.get(k).map(|v| v.to_string()) });
    let refused = without.unwrap_err().to_string();
    assert!(
        refused.contains("rule \"onward\" share.snapshots: SHARE_SNAPSHOTS"),
        "the policy must allow it: {refused}"
    );
    let settings = Config::from_lookup(&|k| vars.get(k).map(|v| v.to_string())).unwrap().settings;
    let (mut w, onward) = world(vec![Tag::new("Onward", "yes")]);
    let plain =
        w.add_image(&r("us-east-1"), &acct(ME), "plain", vec![], vec![LaunchPermission::Account(acct(CONSUMER))]);
    let mut sim = Simulation::new(w, settings);
    for image in [&onward, &plain] {
        sim.put_event(&ami_event_of(ME, image.as_str(), "us-east-1", "available"));
    }
    sim.run_until_idle(10, DAY).await;
    assert_eq!(volume_users(&copies(&sim, &onward)[0]), [[CONSUMER]]);
    assert_eq!(
        volume_users(&copies(&sim, &plain)[0]),
        [Vec::<String>::new()],
        "the other rule does not share snapshots"
    );
}

#[tokio::test]
async fn a_protected_sources_copies_are_protected_as_it_is() {
    use ami_replicator::core::protection::Protection;
    let (mut w, src) = world(vec![]);
    w.images.get_mut(&r("us-east-1")).unwrap().get_mut(&src).unwrap().info.traits.protection =
        Protection::On { cooldown: true };
    let plain = w.add_image(&r("us-east-1"), &acct(ME), "plain", vec![], vec![]);
    let settings = Settings { target_regions: vec![r("eu-west-1"), r("us-west-2")], ..Settings::default() };
    let mut sim = Simulation::new(w, settings);
    for image in [&src, &plain] {
        sim.put_event(&ami_event_of(ME, image.as_str(), "us-east-1", "available"));
    }
    sim.run_until_idle(10, DAY).await;
    let protected = copies(&sim, &src);
    assert_eq!(protected.len(), 2);
    assert!(
        protected.iter().all(|c| c.info.traits.protection == Protection::On { cooldown: true }),
        "with the cooldown"
    );
    assert!(copies(&sim, &plain).iter().all(|c| c.info.traits.protection == Protection::Off), "nothing added");
}
