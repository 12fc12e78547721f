//! The status command's observation over the simulator: what it reports per place after a replication where
//! one place is complete, one failed permanently (dead letter), and one is still copying.

use ami_replicator::core::image::LaunchPermission;
use ami_replicator::core::share::ShareSettings;
use ami_replicator::core::status::{table, Verdict};
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, Simulation, World};

use crate::common::*;

const ME: &str = "123456789012";

#[tokio::test]
async fn the_status_names_each_places_state_permissions_and_dead_letters() {
    let mut world = World::new(acct(ME), SimConfig { copy_seconds: (600, 600), ..SimConfig::default() });
    world.config.pv_unsupported = vec![r("us-west-2")];
    let partner = LaunchPermission::Account(acct("111122223333"));
    let source = world.add_image(&r("us-east-1"), &acct(ME), "golden", vec![], vec![partner.clone()]);
    world.image_mut(&r("us-east-1"), &source).unwrap().info.traits.paravirtual = true;
    let settings = DeploymentSettings {
        rule: RuleSettings {
            target_regions: vec![r("eu-west-1"), r("us-west-2"), r("ap-south-1")],
            share: ShareSettings { copy_source_permissions: true, ..ShareSettings::default() },
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    };
    let mut sim = Simulation::new(world, settings.clone());
    sim.put_event(&ami_event(source.as_str(), "us-east-1", "available"));
    sim.run_until_idle(10, 86_400).await;
    // ap-south-1's copy is taken back to pending, as if it were still copying.
    {
        let mut w = sim.world.lock().unwrap();
        let ap = w.images.get_mut(&r("ap-south-1")).unwrap().values_mut().next().unwrap();
        ap.info.state = ami_replicator::core::image::ImageState::Pending;
        ap.ready_at_ms = Some(u64::MAX);
    }
    let report = {
        let regions = ami_replicator::sim::SimRegions::new(sim.world.clone());
        let queue = ami_replicator::sim::SimQueue::new(sim.world.clone());
        let now = sim.replicator.now() as i64;
        let records: std::sync::Arc<dyn ami_replicator::ports::CopyRecords> =
            std::sync::Arc::new(ami_replicator::sim::SimRecords::new(sim.world.clone()));
        ami_replicator::status::status(&regions, &queue, &records, &settings, &acct(ME), &source, &r("us-east-1"), now)
            .await
    };
    let verdict = |region: &str| report.places.iter().find(|p| p.region == region).unwrap().verdict;
    assert_eq!(verdict("eu-west-1"), Verdict::Complete, "{}", table(&report));
    assert_eq!(verdict("us-west-2"), Verdict::Missing);
    assert_eq!(verdict("ap-south-1"), Verdict::Pending);
    assert_eq!(report.dead_letters.len(), 1);
    assert!(report.dead_letters[0].contains("aravirtual"));
    assert!(!report.complete);
    let eu = report.places.iter().find(|p| p.region == "eu-west-1").unwrap();
    assert!(eu.age_seconds.unwrap() >= 600, "the copy is as old as the run");
    assert_eq!(eu.encrypted, Some(false));
    let text = table(&report);
    assert!(text.contains("eu-west-1") && text.contains("dead letter:") && text.contains("NOT complete"), "{text}");
}
