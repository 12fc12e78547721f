//! What happens to copies after replication (issue 19), over the simulator: onward sharing of the copies'
//! snapshots (SHARE_SNAPSHOTS), per deployment and per replication rule.

use ami_replicator::config::Config;
use ami_replicator::core::ids::ImageId;
use ami_replicator::core::image::{LaunchPermission, Tag};
use ami_replicator::core::provenance::SOURCE_IMAGE_TAG;
use ami_replicator::core::share::ShareSettings;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, SimImage, Simulation, World};
use std::collections::HashMap;

use crate::common::*;

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

/// `ami-replicator-ctl status` of `source` (in us-east-1), as a table.
async fn status(sim: &Simulation, settings: &DeploymentSettings, source: &ImageId) -> String {
    let regions = ami_replicator::sim::SimRegions::new(sim.world.clone());
    let queue = ami_replicator::sim::SimQueue::new(sim.world.clone());
    let records: std::sync::Arc<dyn ami_replicator::ports::CopyRecords> =
        std::sync::Arc::new(ami_replicator::sim::SimRecords::new(sim.world.clone()));
    let now = sim.replicator.now() as i64;
    let report =
        ami_replicator::status::status(&regions, &queue, &records, settings, &acct(ME), source, &r("us-east-1"), now)
            .await;
    ami_replicator::core::status::table(&report)
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
    let settings = DeploymentSettings {
        rule: RuleSettings {
            target_regions: vec![r("eu-west-1"), r("us-west-2")],
            share: ShareSettings {
                copy_source_permissions: true,
                extra: vec![LaunchPermission::Account(acct(PARTNER))],
                allow_public: true,
            },
            share_snapshots: true,
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
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
    let settings = DeploymentSettings {
        rule: RuleSettings { target_regions: vec![r("eu-west-1"), r("us-west-2")], ..RuleSettings::unset() },
        ..DeploymentSettings::default()
    };
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

mod retention {
    use super::*;
    use ami_replicator::core::retention::Retention;

    fn settings(dry_run: bool) -> DeploymentSettings {
        DeploymentSettings {
            source_regions: vec![r("us-east-1")],
            publish_events: true,
            rule: RuleSettings {
                target_regions: vec![r("eu-west-1")],
                retention: Some(Retention { copies: 2, family_tag: "Family".into(), dry_run }),
                ..RuleSettings::unset()
            },
            ..DeploymentSettings::default()
        }
    }

    /// Builds `web` three times and `db` once, replicating each before the next is built; returns the sources.
    async fn replicate_builds(sim: &mut Simulation, sources: &[ImageId]) {
        for source in sources {
            sim.put_event(&ami_event_of(ME, source.as_str(), "us-east-1", "available"));
            sim.run_until_idle(10, DAY).await;
        }
    }

    fn world() -> (World, Vec<ImageId>) {
        let mut w = World::new(acct(ME), SimConfig::default());
        let east = r("us-east-1");
        let mut sources = Vec::new();
        for (name, family) in [("web-1", "web"), ("web-2", "web"), ("db-1", "db"), ("web-3", "web")] {
            sources.push(w.add_image(&east, &acct(ME), name, vec![Tag::new("Family", family)], vec![]));
        }
        (w, sources)
    }

    fn eu_copy(sim: &Simulation, source: &ImageId) -> Option<SimImage> {
        copies(sim, source).into_iter().find(|c| c.info.owner == Some(acct(ME)))
    }

    #[tokio::test]
    async fn the_two_newest_of_a_family_stay_the_oldest_is_retired_with_its_snapshots() {
        let (w, s) = world();
        let mut sim = Simulation::new(w, settings(false));
        replicate_builds(&mut sim, &s[..3]).await;
        let oldest = eu_copy(&sim, &s[0]).expect("web-1's copy before retention applies");
        replicate_builds(&mut sim, &s[3..]).await;
        assert!(eu_copy(&sim, &s[0]).is_none(), "web-1's copy retired");
        for source in &s[1..] {
            assert!(eu_copy(&sim, source).is_some(), "{source}: kept (the 2 newest of web, the only db)");
        }
        let w = sim.world.lock().unwrap();
        let snapshot = &oldest.snapshots[0].id;
        assert!(!w.orphan_snapshots.iter().any(|(_, _, s)| &s.id == snapshot), "its snapshot deleted too");
        let retired: Vec<_> = w.published.iter().filter(|(_, e)| e.detail_type == "AMI Copy Retired").collect();
        assert_eq!(retired.len(), 1);
        assert_eq!(retired[0].1.detail["image_id"], oldest.info.id.as_str());
        assert_eq!(retired[0].1.detail["family"], "web");
    }

    #[tokio::test]
    async fn a_copy_some_account_launched_within_in_use_days_is_in_use() {
        // Issue 28: DescribeImageReferences sees only the owner's account; EC2's LastLaunchedTime counts every
        // account's launches (those of the accounts the copy is shared with too).
        for (days_ago, days, kept) in [(10, 30, true), (40, 30, false), (1, 0, false)] {
            let (w, s) = world();
            let mut settings = settings(false);
            settings.rule.in_use_days = days;
            let mut sim = Simulation::new(w, settings);
            replicate_builds(&mut sim, &s[..3]).await;
            let oldest = eu_copy(&sim, &s[0]).unwrap();
            {
                let mut w = sim.world.lock().unwrap();
                let now = ami_replicator::core::time::parse_rfc3339(&w.now_rfc3339()).unwrap();
                let at = ami_replicator::core::time::format_rfc3339(now - days_ago * 86_400);
                w.image_mut(&r("eu-west-1"), &oldest.info.id).unwrap().info.last_launched = Some(at);
            }
            replicate_builds(&mut sim, &s[3..]).await;
            let case = format!("launched {days_ago} days ago, IN_USE_DAYS={days}");
            assert_eq!(eu_copy(&sim, &s[0]).is_some(), kept, "{case}");
        }
    }

    #[tokio::test]
    async fn never_a_copy_in_use_and_a_dry_run_only_reports() {
        let (w, s) = world();
        let mut sim = Simulation::new(w, settings(false));
        replicate_builds(&mut sim, &s[..3]).await;
        let oldest = eu_copy(&sim, &s[0]).unwrap();
        sim.world.lock().unwrap().references.insert(oldest.info.id.clone(), vec!["ec2:instance i-1".into()]);
        replicate_builds(&mut sim, &s[3..]).await;
        assert!(eu_copy(&sim, &s[0]).is_some(), "in use: kept");

        let (w, s) = world();
        let mut sim = Simulation::new(w, settings(true));
        replicate_builds(&mut sim, &s).await;
        assert!(s.iter().all(|source| eu_copy(&sim, source).is_some()), "RETAIN_DRY_RUN retires nothing");
        assert!(!sim.world.lock().unwrap().published.iter().any(|(_, e)| e.detail_type == "AMI Copy Retired"));
        // The status command shows the family at each place: the two newest kept, the oldest to be retired.
        let text = status(&sim, &settings(true), &s[3]).await;
        let id = |i: usize| eu_copy(&sim, &s[i]).unwrap().info.id.to_string();
        let kept = format!("retention Family=web: kept {} (newest 2), {} (newest 2)", id(3), id(1));
        assert!(text.contains(&kept), "{text}");
        assert!(text.contains(&format!("would retire (dry run): {}", id(0))), "{text}");
    }

    #[tokio::test]
    async fn the_sweep_retires_what_piled_up_before_retention_was_turned_on() {
        let (w, s) = world();
        let mut before = Simulation::new(
            w,
            DeploymentSettings {
                rule: RuleSettings { retention: None, ..settings(false).rule.clone() },
                ..settings(false)
            },
        );
        replicate_builds(&mut before, &s).await;
        assert!(s.iter().all(|source| eu_copy(&before, source).is_some()), "no retention yet: every copy stays");
        let w = std::mem::replace(&mut *before.world.lock().unwrap(), World::new(acct(ME), SimConfig::default()));
        let mut sim = Simulation::new(w, settings(false));
        sim.invoke_schedule().await;
        sim.run_until_idle(10, DAY).await;
        assert!(eu_copy(&sim, &s[0]).is_none(), "web-1's copy retired by the sweep");
        assert!(s[1..].iter().all(|source| eu_copy(&sim, source).is_some()));
    }
}

mod launch_templates {
    use super::*;
    use ami_replicator::core::ids::Place;
    use ami_replicator::core::launch_templates::Version;

    #[tokio::test]
    async fn a_shared_copy_becomes_the_templates_default_and_an_older_source_never_replaces_it() {
        let mut w = World::new(acct(ME), SimConfig::default());
        let east = r("us-east-1");
        let new = w.add_image(&east, &acct(ME), "web-new", vec![], vec![]);
        let old = w.add_image(&east, &acct(ME), "web-old", vec![], vec![]);
        for (id, created) in [(&new, "2026-02-01T00:00:00Z"), (&old, "2026-01-01T00:00:00Z")] {
            w.images.get_mut(&east).unwrap().get_mut(id).unwrap().info.created = Some(created.into());
        }
        let base = ImageId::parse("ami-0000000000000b0e0").unwrap();
        let key = (acct(ME), r("eu-west-1"), "web".to_string());
        w.launch_templates.insert(key.clone(), vec![Version { number: 1, image: Some(base), is_default: true }]);
        let settings = DeploymentSettings {
            rule: RuleSettings {
                target_regions: vec![r("eu-west-1")],
                launch_templates: [(Place::home(r("eu-west-1")), "web".to_string())].into_iter().collect(),
                launch_template_set_default: true,
                ..RuleSettings::unset()
            },
            ..DeploymentSettings::default()
        };
        let mut sim = Simulation::new(w, settings);
        for source in [&new, &old] {
            sim.put_event(&ami_event_of(ME, source.as_str(), "us-east-1", "available"));
            sim.run_until_idle(10, DAY).await;
        }
        let new_copy = copies(&sim, &new)[0].info.id.clone();
        assert_eq!(copies(&sim, &old).len(), 1, "the older source is replicated too");
        let text = status(&sim, &sim.replicator.settings().clone(), &new).await;
        assert!(text.contains(&format!("launch template web: default v2 {new_copy} (this copy), latest v2")), "{text}");
        let text = status(&sim, &sim.replicator.settings().clone(), &old).await;
        assert!(text.contains(&format!("launch template web: default v2 {new_copy}, latest v2")), "{text}");
        let w = sim.world.lock().unwrap();
        let versions = &w.launch_templates[&key];
        assert_eq!(versions.len(), 2, "one version for the newer copy, none for the older: {versions:?}");
        assert_eq!(versions[1], Version { number: 2, image: Some(new_copy), is_default: true });
        assert!(!versions[0].is_default);
    }
}

mod deprecation {
    use super::*;
    use ami_replicator::core::image::ImageState;
    use ami_replicator::core::provenance::SHARED_TAG;

    /// Issue 28: EC2 refuses a deprecation time in the past (the simulator too); a source already deprecated, or
    /// one whose time passes while its copy runs, gets a copy deprecated at once (the first full minute EC2 takes)
    /// and the share completes.
    #[tokio::test]
    async fn a_source_deprecated_in_the_past_or_while_copying_gets_a_copy_deprecated_at_once() {
        let (mut w, past) = world(vec![]);
        let east = r("us-east-1");
        let soon = w.add_image(&east, &acct(ME), "golden-soon", vec![], vec![]);
        let now = w.now_rfc3339();
        let at = |t: i64| ami_replicator::core::time::format_rfc3339(t);
        let now_secs = ami_replicator::core::time::parse_rfc3339(&now).unwrap();
        let times = [(&past, at(now_secs - 30 * 86_400)), (&soon, at(now_secs + 120))];
        for (id, time) in &times {
            w.images.get_mut(&east).unwrap().get_mut(*id).unwrap().info.traits.deprecation_time = Some(time.clone());
        }
        let settings = DeploymentSettings {
            rule: RuleSettings { target_regions: vec![r("eu-west-1")], ..RuleSettings::unset() },
            ..DeploymentSettings::default()
        };
        let mut sim = Simulation::new(w, settings);
        for (id, _) in &times {
            sim.put_event(&ami_event_of(ME, id.as_str(), "us-east-1", "available"));
        }
        sim.run_until_idle(10, DAY).await;
        let w = sim.world.lock().unwrap();
        assert!(w.dead_letters.is_empty(), "{:?}", w.dead_letters);
        for (id, _) in &times {
            let copy = copies(&sim_view(&w), id);
            assert_eq!(copy.len(), 1);
            let copy = &copy[0];
            assert_eq!(copy.info.state, ImageState::Available);
            assert!(copy.info.tag(SHARED_TAG).is_some(), "{id}: the share completed");
            let deprecated =
                copy.info.traits.deprecation_time.as_deref().and_then(ami_replicator::core::time::parse_rfc3339);
            let shared_at =
                w.effects.iter().find(|e| e.op == "EnableImageDeprecation" && e.target == copy.info.id.as_str());
            assert!(shared_at.is_some(), "{id}: deprecated");
            assert!(
                deprecated.is_some_and(|t| t % 60 == 0 && t >= now_secs),
                "{id}: at a full minute, not in the past"
            );
        }
    }

    fn sim_view(w: &ami_replicator::sim::World) -> Vec<SimImage> {
        w.images.values().flat_map(|m| m.values()).cloned().collect()
    }

    fn copies(all: &[SimImage], source: &ImageId) -> Vec<SimImage> {
        all.iter().filter(|i| i.info.tag(SOURCE_IMAGE_TAG) == Some(source.as_str())).cloned().collect()
    }
}
