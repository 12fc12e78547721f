//! The copy rules of the AMI documentation, enforced by the production handler over the simulator:
//! encryption and KMS keys per region, images that cannot be copied, and copy options.

use ami_replicator::core::copy_rules::EncryptionSettings;
use ami_replicator::core::ids::{AccountId, ImageId};
use ami_replicator::core::image::LaunchPermission;
use ami_replicator::core::image::{ImageState, ImageTraits, Tag};
use ami_replicator::core::provenance::SOURCE_IMAGE_TAG;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, SimImage, Simulation, World};

use crate::common::*;

const ME: &str = "123456789012";
const DAY: u64 = 86_400;

fn me() -> AccountId {
    AccountId::parse(ME).unwrap()
}

fn settings() -> DeploymentSettings {
    DeploymentSettings {
        rule: RuleSettings { target_regions: vec![r("eu-west-1"), r("us-west-2")], ..RuleSettings::unset() },
        ..DeploymentSettings::default()
    }
}

/// A world with one source in us-east-1 owned by `owner` with `traits`.
fn source(config: SimConfig, owner: &str, traits: ImageTraits) -> (World, ImageId) {
    let mut world = World::new(me(), config);
    let id = world.add_image(
        &r("us-east-1"),
        &AccountId::parse(owner).unwrap(),
        "golden",
        vec![Tag::new("team", "a")],
        // An image of another account is visible to this one only when shared with it.
        if owner == ME { vec![] } else { vec![LaunchPermission::Account(me())] },
    );
    world.image_mut(&r("us-east-1"), &id).unwrap().info.traits = traits;
    (world, id)
}

fn work_item(image: &ImageId, encrypted: Option<bool>) -> String {
    let mut item = serde_json::json!({"image_id": image.as_str(), "source_region": "us-east-1"});
    if let Some(e) = encrypted {
        item["encrypted"] = serde_json::json!(e);
    }
    item.to_string()
}

fn copy_in(sim: &Simulation, region: &str, source: &ImageId) -> Option<SimImage> {
    let w = sim.world.lock().unwrap();
    w.images.get(&r(region))?.values().find(|i| i.info.tag(SOURCE_IMAGE_TAG) == Some(source.as_str())).cloned()
}

fn dead_letters(sim: &Simulation) -> Vec<String> {
    sim.world.lock().unwrap().dead_letters.iter().map(|(_, reason)| reason.clone()).collect()
}

#[tokio::test]
async fn encryption_uses_each_regions_key_or_the_default_ebs_key() {
    let (world, src) = source(SimConfig::default(), ME, ImageTraits::default());
    let mut s = settings();
    s.rule.encryption = EncryptionSettings {
        encrypt_copies: true,
        kms_keys: [(ami_replicator::core::ids::Place::home(r("eu-west-1")), "alias/eu-copies".to_string())].into(),
    };
    let mut sim = Simulation::new(world, s);
    sim.send(&work_item(&src, None));
    sim.run_until_idle(10, DAY).await;
    let eu = copy_in(&sim, "eu-west-1", &src).unwrap();
    assert!(eu.info.traits.encrypted);
    assert_eq!(eu.kms_key_id.as_deref(), Some("alias/eu-copies"));
    let us = copy_in(&sim, "us-west-2", &src).unwrap();
    assert!(us.info.traits.encrypted, "encrypted with the default EBS key");
    assert_eq!(us.kms_key_id, None);
}

#[tokio::test]
async fn copies_keep_the_encryption_state_by_default() {
    let (world, src) = source(SimConfig::default(), ME, ImageTraits { encrypted: true, ..Default::default() });
    let mut sim = Simulation::new(world, settings());
    sim.send(&work_item(&src, None));
    sim.run_until_idle(10, DAY).await;
    assert!(copy_in(&sim, "eu-west-1", &src).unwrap().info.traits.encrypted);
    let (world, plain) = source(SimConfig::default(), ME, ImageTraits::default());
    let mut sim = Simulation::new(world, settings());
    sim.send(&work_item(&plain, None));
    sim.run_until_idle(10, DAY).await;
    assert!(!copy_in(&sim, "eu-west-1", &plain).unwrap().info.traits.encrypted);
}

#[tokio::test]
async fn encrypted_to_unencrypted_fails_permanently_naming_image_and_rule() {
    let (world, src) = source(SimConfig::default(), ME, ImageTraits { encrypted: true, ..Default::default() });
    let mut sim = Simulation::new(world, settings());
    sim.send(&work_item(&src, Some(false)));
    sim.run_until_idle(10, DAY).await;
    let reasons = dead_letters(&sim);
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].contains(src.as_str()) && reasons[0].contains("encrypted to unencrypted"), "{reasons:?}");
    assert!(sim.world.lock().unwrap().copies.is_empty());
}

#[tokio::test]
async fn instance_store_images_are_not_silently_left_unencrypted() {
    let traits = ImageTraits { instance_store: true, ..Default::default() };
    let (world, src) = source(SimConfig::default(), ME, traits.clone());
    let mut s = settings();
    s.rule.encryption.encrypt_copies = true;
    let mut sim = Simulation::new(world, s);
    sim.send(&work_item(&src, None));
    sim.run_until_idle(10, DAY).await;
    assert!(dead_letters(&sim)[0].contains("instance-store"), "{:?}", dead_letters(&sim));
    assert!(sim.world.lock().unwrap().copies.is_empty());

    // Without encryption they copy as they are, through S3: without the templates' S3 grants (issue 28) the copy
    // is refused and the dead letter says which; with them it goes.
    let (world, src) = source(SimConfig::default(), ME, traits.clone());
    let mut sim = Simulation::new(world, settings());
    sim.send(&work_item(&src, None));
    sim.run_until_idle(10, DAY).await;
    let reasons = dead_letters(&sim);
    assert!(reasons.iter().any(|r| r.contains("InstanceStoreSourceBundleArns")), "{reasons:?}");
    let (mut world, src) = source(SimConfig::default(), ME, traits);
    world.s3_copiers.insert(acct(ME));
    let mut sim = Simulation::new(world, settings());
    sim.send(&work_item(&src, None));
    sim.run_until_idle(10, DAY).await;
    assert!(copy_in(&sim, "eu-west-1", &src).is_some());
}

#[tokio::test]
async fn shared_marketplace_images_fail_with_the_workaround() {
    let (world, src) =
        source(SimConfig::default(), "999988887777", ImageTraits { marketplace: true, ..Default::default() });
    let mut sim = Simulation::new(world, settings());
    sim.send(&work_item(&src, None));
    sim.run_until_idle(10, DAY).await;
    let reasons = dead_letters(&sim);
    assert!(reasons[0].contains("Marketplace") && reasons[0].contains("CreateImage"), "{reasons:?}");
}

#[tokio::test]
async fn paravirtual_images_fail_where_pv_is_unsupported_with_code_and_sentence() {
    let config = SimConfig { pv_unsupported: vec![r("us-west-2")], ..SimConfig::default() };
    let (world, src) = source(config, ME, ImageTraits { paravirtual: true, ..Default::default() });
    let mut sim = Simulation::new(world, settings());
    sim.send(&work_item(&src, None));
    sim.run_until_idle(10, DAY).await;
    assert!(copy_in(&sim, "eu-west-1", &src).is_some(), "regions with PV support still get their copy");
    let reasons = dead_letters(&sim);
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].contains("paravirtual") && reasons[0].contains("us-west-2"), "{reasons:?}");
    assert!(reasons[0].contains("InvalidParameterValue"), "the AWS code is kept: {reasons:?}");
}

#[tokio::test]
async fn disabled_or_deregistered_sources_fail_permanently() {
    let (mut world, src) = source(SimConfig::default(), ME, ImageTraits::default());
    world.image_mut(&r("us-east-1"), &src).unwrap().info.state = ImageState::Other("disabled".into());
    let mut sim = Simulation::new(world, settings());
    sim.send(&work_item(&src, None));
    sim.run_until_idle(10, DAY).await;
    assert!(dead_letters(&sim)[0].contains("disabled"), "{:?}", dead_letters(&sim));
}

#[tokio::test]
async fn description_template_extra_tags_and_deprecation_are_applied() {
    let traits = ImageTraits { deprecation_time: Some("2027-06-01T00:00:00Z".into()), ..Default::default() };
    let (world, src) = source(SimConfig::default(), ME, traits);
    let mut s = settings();
    s.rule.description_template = Some("{description} (copied from {image} in {region})".into());
    s.rule.extra_tags = vec![Tag::new("replicated-by", "ami-replicator"), Tag::new("cost-center", "42")];
    let mut sim = Simulation::new(world, s);
    sim.send(&work_item(&src, None));
    sim.run_until_idle(10, DAY).await;
    let copy = copy_in(&sim, "eu-west-1", &src).unwrap();
    assert_eq!(
        copy.info.description.as_deref(),
        Some(format!("golden, built by the pipeline (copied from {src} in us-east-1)").as_str())
    );
    assert_eq!(copy.info.tag("cost-center"), Some("42"));
    assert_eq!(copy.info.tag("team"), Some("a"), "the source's tags are still copied");
    assert!(copy.snapshot_tags.iter().any(|t| t.key == "replicated-by"), "extra tags reach the snapshots");
    assert_eq!(copy.info.traits.deprecation_time.as_deref(), Some("2027-06-01T00:00:00Z"));
}
