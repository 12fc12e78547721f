//! Copies follow their source's disabling (DISABLE_COPIES_WITH_SOURCE, issue 19), over the simulator: a source
//! disabled disables its available copies in every place (target accounts through their roles) except those in
//! use; enabled again, they are enabled and their launch permissions applied again (DisableImage took them, and
//! EnableImage gives none back); never a second copy; a copy disabled by hand is left alone; per rule; events
//! are hints.

use ami_replicator::config::Config;
use ami_replicator::core::ids::ImageId;
use ami_replicator::core::image::{ImageState, LaunchPermission, Tag};
use ami_replicator::core::provenance::{KEPT_TAG, SOURCE_IMAGE_TAG};
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, SimImage, Simulation, World};
use std::collections::HashMap;

use crate::common::*;

const ME: &str = "111111111111";
const TARGET: &str = "222233334444";
const CONSUMER: &str = "555566667777";
const DAY: u64 = 86_400;

fn copies(sim: &Simulation, source: &ImageId) -> Vec<SimImage> {
    let w = sim.world.lock().unwrap();
    let mut found: Vec<SimImage> = w
        .images
        .values()
        .flat_map(|m| m.values())
        .filter(|i| i.info.tag(SOURCE_IMAGE_TAG) == Some(source.as_str()))
        .cloned()
        .collect();
    found.sort_by(|a, b| a.info.id.cmp(&b.info.id));
    found
}

fn disabled() -> ImageState {
    ImageState::Other("disabled".into())
}

/// Sets the source's state as DisableImage / EnableImage would (disabling takes its launch permissions).
fn set_source(sim: &Simulation, source: &ImageId, state: ImageState) {
    let mut w = sim.world.lock().unwrap();
    let image = w.image_mut(&r("us-east-1"), source).unwrap();
    if state.is_disabled() {
        image.launch_permissions.clear();
    } else {
        image.launch_permissions = vec![LaunchPermission::Account(acct(CONSUMER))];
    }
    image.info.state = state;
}

fn ops(sim: &Simulation, op: &str) -> usize {
    sim.world.lock().unwrap().effects.iter().filter(|e| e.op == op).count()
}

async fn replicated(settings: DeploymentSettings, tags: Vec<Tag>) -> (Simulation, ImageId) {
    let mut w = World::new(acct(ME), SimConfig::default());
    w.assumable.insert(acct(TARGET));
    let permissions = vec![LaunchPermission::Account(acct(CONSUMER))];
    let src = w.add_image(&r("us-east-1"), &acct(ME), "golden", tags, permissions);
    let mut sim = Simulation::new(w, settings);
    sim.put_event(&ami_event_of(ME, src.as_str(), "us-east-1", "available"));
    sim.run_until_idle(10, DAY).await;
    (sim, src)
}

fn following() -> DeploymentSettings {
    DeploymentSettings {
        source_regions: vec![r("us-east-1")],
        rule: RuleSettings {
            target_regions: vec![r("eu-west-1"), r("us-west-2")],
            target_accounts: vec![acct(TARGET)],
            disable_copies_with_source: true,
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    }
}

#[tokio::test]
async fn copies_are_disabled_with_their_source_and_enabled_and_shared_again_with_it() {
    let (mut sim, src) = replicated(following(), vec![]).await;
    let made = copies(&sim, &src);
    assert_eq!(made.len(), 5, "two regions here, the target account in three");
    assert!(made.iter().all(|c| c.launch_permissions.contains(&LaunchPermission::Account(acct(CONSUMER)))));
    let in_use = made[0].info.id.clone();
    sim.world.lock().unwrap().references.insert(in_use.clone(), vec!["ec2:instance arn:aws:ec2:::instance/i-7".into()]);
    let copy_calls = sim.world.lock().unwrap().calls.get("CopyImage").copied();

    set_source(&sim, &src, disabled());
    assert!(sim.put_event(&ami_event_of(ME, src.as_str(), "us-east-1", "disabled")), "the template routes it");
    sim.run_until_idle(10, DAY).await;
    for copy in copies(&sim, &src) {
        if copy.info.id == in_use {
            assert_eq!(copy.info.state, ImageState::Available, "a copy in use stays enabled");
            assert!(copy.info.tag(KEPT_TAG).is_some_and(|t| t.contains("i-7")), "{:?}", copy.info.tags);
        } else {
            assert!(copy.info.state.is_disabled(), "{} follows its source", copy.info.id);
            assert!(copy.launch_permissions.is_empty(), "DisableImage took its launch permissions");
        }
    }
    assert_eq!(ops(&sim, "DisableImage"), 4);
    let text = {
        let regions = ami_replicator::sim::SimRegions::new(sim.world.clone());
        let queue = ami_replicator::sim::SimQueue::new(sim.world.clone());
        let records: std::sync::Arc<dyn ami_replicator::ports::CopyRecords> =
            std::sync::Arc::new(ami_replicator::sim::SimRecords::new(sim.world.clone()));
        let now = sim.replicator.now() as i64;
        let settings = sim.replicator.settings().clone();
        let report = ami_replicator::status::status(
            &regions,
            &queue,
            &records,
            &settings,
            &acct(ME),
            &src,
            &r("us-east-1"),
            now,
        )
        .await;
        ami_replicator::core::status::table(&report)
    };
    assert_eq!(text.matches("disabled with its source").count(), 4, "{text}");
    assert!(text.contains("kept enabled (source disabled): in use by ec2:instance"), "{text}");

    // Enabled again: the available event (EnableImage makes the source available) enables and shares them.
    set_source(&sim, &src, ImageState::Available);
    sim.put_event(&ami_event_of(ME, src.as_str(), "us-east-1", "available"));
    sim.run_until_idle(10, DAY).await;
    let after = copies(&sim, &src);
    assert_eq!(after.len(), 5, "never a second copy");
    for copy in &after {
        assert_eq!(copy.info.state, ImageState::Available, "{}", copy.info.id);
        let consumer = LaunchPermission::Account(acct(CONSUMER));
        assert!(
            copy.launch_permissions.contains(&consumer),
            "{}: shared again {:?}",
            copy.info.id,
            copy.launch_permissions
        );
    }
    assert_eq!(ops(&sim, "EnableImage"), 4);
    assert_eq!(sim.world.lock().unwrap().calls.get("CopyImage").copied(), copy_calls, "no CopyImage");
    assert!(sim.world.lock().unwrap().dead_letters.is_empty());
}

#[tokio::test]
async fn a_copy_finishing_after_its_source_was_disabled_is_disabled_not_shared() {
    let mut w = World::new(acct(ME), SimConfig::default());
    let src =
        w.add_image(&r("us-east-1"), &acct(ME), "golden", vec![], vec![LaunchPermission::Account(acct(CONSUMER))]);
    let settings = DeploymentSettings {
        rule: RuleSettings {
            target_regions: vec![r("eu-west-1")],
            disable_copies_with_source: true,
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    };
    let mut sim = Simulation::new(w, settings);
    sim.put_event(&ami_event_of(ME, src.as_str(), "us-east-1", "available"));
    sim.invoke_once(10).await; // fan-out
                               // The job gathers (a burst's jobs are admitted together), then its place's wake-up starts the copy.
    for _ in 0..3 {
        if !copies(&sim, &src).is_empty() {
            break;
        }
        let next = sim.world.lock().unwrap().next_event_at();
        if let Some(t) = next {
            sim.world.lock().unwrap().advance_to(t);
        }
        sim.invoke_once(10).await;
    }
    assert_eq!(copies(&sim, &src).len(), 1);
    assert_eq!(copies(&sim, &src)[0].info.state, ImageState::Pending);
    set_source(&sim, &src, disabled());
    sim.put_event(&ami_event_of(ME, src.as_str(), "us-east-1", "disabled"));
    sim.run_until_idle(10, DAY).await;
    let copy = &copies(&sim, &src)[0];
    assert!(copy.info.state.is_disabled(), "its job disabled it once available: {}", copy.info.state);
    assert!(copy.launch_permissions.is_empty(), "never shared");
}

#[tokio::test]
async fn without_the_setting_nothing_follows_and_a_disabled_copy_is_never_copied_again() {
    let settings = DeploymentSettings {
        rule: RuleSettings { disable_copies_with_source: false, ..following().rule.clone() },
        ..following()
    };
    let (mut sim, src) = replicated(settings, vec![]).await;
    set_source(&sim, &src, disabled());
    sim.put_event(&ami_event_of(ME, src.as_str(), "us-east-1", "disabled"));
    sim.run_until_idle(10, DAY).await;
    assert!(copies(&sim, &src).iter().all(|c| c.info.state == ImageState::Available));
    assert_eq!(ops(&sim, "DisableImage"), 0);

    // An operator disables one copy by hand; the source is available: a new event or the sweep makes no second
    // copy there, and does not enable the operator's copy.
    set_source(&sim, &src, ImageState::Available);
    let by_hand = copies(&sim, &src)[0].info.id.clone();
    {
        let mut w = sim.world.lock().unwrap();
        let region = w.images.iter().find(|(_, m)| m.contains_key(&by_hand)).map(|(r, _)| r.clone()).unwrap();
        w.image_mut(&region, &by_hand).unwrap().info.state = disabled();
    }
    let calls = sim.world.lock().unwrap().calls.get("CopyImage").copied();
    sim.put_event(&ami_event_of(ME, src.as_str(), "us-east-1", "available"));
    sim.run_until_idle(10, DAY).await;
    assert_eq!(copies(&sim, &src).len(), 5);
    assert_eq!(sim.world.lock().unwrap().calls.get("CopyImage").copied(), calls, "no new copy");
    assert!(copies(&sim, &src).iter().any(|c| c.info.id == by_hand && c.info.state.is_disabled()), "left alone");
    assert_eq!(ops(&sim, "EnableImage"), 0);
    assert!(sim.world.lock().unwrap().dead_letters.is_empty(), "not a failure");
}

#[tokio::test]
async fn a_disabled_event_is_a_hint_checked_with_ec2() {
    let (mut sim, src) = replicated(following(), vec![]).await;
    // The source is available: an event (or a message written by hand) saying it is disabled changes nothing.
    sim.send(&ami_event_of(ME, src.as_str(), "us-east-1", "disabled"));
    // A copy of ours is no source: its own disabled event disables nothing else.
    let copy = copies(&sim, &src)[0].info.id.clone();
    sim.send(&ami_event_of(ME, copy.as_str(), "us-east-1", "disabled"));
    sim.run_until_idle(10, DAY).await;
    assert_eq!(ops(&sim, "DisableImage"), 0);
    assert!(copies(&sim, &src).iter().all(|c| c.info.state == ImageState::Available));
}

#[tokio::test]
async fn following_the_source_is_a_rules_choice() {
    let rules = r#"{"rules": [
      {"name": "follow", "match": {"tags": {"Follow": "yes"}}, "regions": ["eu-west-1"]},
      {"name": "independent", "match": {}, "regions": ["eu-west-1"], "disable_copies_with_source": false}
    ]}"#;
    let vars: HashMap<&str, &str> = HashMap::from([
        ("WORK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/111111111111/work"),
        ("REPLICATION_RULES", rules),
        ("SOURCE_REGIONS", "us-east-1"),
        ("DISABLE_COPIES_WITH_SOURCE", "true"),
    ]);
    let settings = Config::from_lookup(&|k| vars.get(k).map(|v| v.to_string())).unwrap().settings;
    let mut w = World::new(acct(ME), SimConfig::default());
    let follows = w.add_image(&r("us-east-1"), &acct(ME), "a", vec![Tag::new("Follow", "yes")], vec![]);
    let stays = w.add_image(&r("us-east-1"), &acct(ME), "b", vec![], vec![]);
    let mut sim = Simulation::new(w, settings);
    for src in [&follows, &stays] {
        sim.put_event(&ami_event_of(ME, src.as_str(), "us-east-1", "available"));
    }
    sim.run_until_idle(10, DAY).await;
    for src in [&follows, &stays] {
        set_source(&sim, src, disabled());
        sim.put_event(&ami_event_of(ME, src.as_str(), "us-east-1", "disabled"));
    }
    sim.run_until_idle(10, DAY).await;
    assert!(copies(&sim, &follows)[0].info.state.is_disabled());
    assert_eq!(copies(&sim, &stays)[0].info.state, ImageState::Available);

    // The stack must allow it for a rule to ask for it (the policy grants DisableImage only then).
    let refused: HashMap<&str, &str> = HashMap::from([
        ("WORK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/111111111111/work"),
        (
            "REPLICATION_RULES",
            r#"{"rules": [{"name": "f", "regions": ["eu-west-1"], "disable_copies_with_source": true}]}"#,
        ),
    ]);
    let err = Config::from_lookup(&|k| refused.get(k).map(|v| v.to_string())).unwrap_err().to_string();
    assert!(err.contains("disable_copies_with_source") && err.contains("DisableCopiesWithSource"), "{err}");
}

#[tokio::test]
async fn the_sweep_catches_missed_disabled_and_enabled_events() {
    let (mut sim, src) = replicated(following(), vec![]).await;
    // Disabled, and its event lost (AMI events are best effort): the sweep disables the copies.
    set_source(&sim, &src, disabled());
    sim.invoke_schedule().await;
    sim.run_until_idle(10, DAY).await;
    assert!(copies(&sim, &src).iter().all(|c| c.info.state.is_disabled()), "the sweep disabled them");
    sim.invoke_schedule().await;
    sim.run_until_idle(10, DAY).await;
    assert_eq!(ops(&sim, "DisableImage"), 5, "once each: a second sweep finds nothing more to do");

    // Enabled again, event lost: the sweep's jobs enable and share them again; no new copy.
    set_source(&sim, &src, ImageState::Available);
    let copy_calls = sim.world.lock().unwrap().calls.get("CopyImage").copied();
    sim.invoke_schedule().await;
    sim.run_until_idle(10, DAY).await;
    for copy in copies(&sim, &src) {
        assert_eq!(copy.info.state, ImageState::Available);
        assert!(copy.launch_permissions.contains(&LaunchPermission::Account(acct(CONSUMER))), "shared again");
    }
    assert_eq!(copies(&sim, &src).len(), 5);
    assert_eq!(sim.world.lock().unwrap().calls.get("CopyImage").copied(), copy_calls);

    // Without the setting, the sweep leaves a disabled source's copies alone.
    let (mut sim, src) = replicated(
        DeploymentSettings {
            rule: RuleSettings { disable_copies_with_source: false, ..following().rule.clone() },
            ..following()
        },
        vec![],
    )
    .await;
    set_source(&sim, &src, disabled());
    sim.invoke_schedule().await;
    sim.run_until_idle(10, DAY).await;
    assert_eq!(ops(&sim, "DisableImage"), 0);
}
