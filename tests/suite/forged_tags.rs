//! A copy is ours only where EC2 says so, as a property over the simulator: every sharing and destructive setting
//! on (the sweep, retention, deregistration and disabling with the source, a launch template, SSM parameters,
//! snapshot sharing), and beside the genuine replication an insider who can only tag and build images writes any
//! of the product's tags (provenance naming any source, shared, share failed, gave up, kept, attempt, source
//! created) and the family tag on any image (hand-made images at every place, an image built in the target
//! account from an instance of the source, another source's copies, the sources themselves) at any moment, then
//! disables one throwaway source and deregisters another. Whatever was forged: no effect on an image that is not a
//! verified copy of its job's source, no SSM parameter or launch template version naming one, and the genuine
//! replication completes (one shared copy per place, with the source's user tags and none of the forged state).
//! 200 cases (FORGED_TAG_CASES for more).

use ami_replicator::core::ids::{AccountId, ImageId, Place, Region};
use ami_replicator::core::image::{ImageState, LaunchPermission, Origin, Tag};
use ami_replicator::core::launch_templates::Version;
use ami_replicator::core::provenance::{
    ATTEMPT_TAG, GAVE_UP_TAG, KEPT_TAG, SHARED_TAG, SHARE_FAILED_TAG, SOURCE_CREATED_TAG, SOURCE_IMAGE_TAG,
    SOURCE_REGION_TAG,
};
use ami_replicator::core::retention::Retention;
use ami_replicator::core::share::ShareSettings;
use ami_replicator::core::step::JobLimits;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, Simulation, World};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeSet;

use crate::common::*;

const ME: &str = "111111111111";
const B: &str = "222222222222";
const PARTNER: &str = "444455556666";
const S1_GRANT: &str = "555500001111";
const DAY: u64 = 86_400;

fn cases() -> u32 {
    std::env::var("FORGED_TAG_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

fn settings() -> DeploymentSettings {
    DeploymentSettings {
        source_regions: vec![r("us-east-1")],
        tag_filter: Some(Tag::new("replicate", "yes")),
        step: JobLimits { poll_seconds: 60, ..JobLimits::default() },
        deregister_copies_with_source: true,
        rule: RuleSettings {
            target_regions: vec![r("eu-west-1"), r("us-west-2")],
            target_accounts: vec![acct(B)],
            share: ShareSettings {
                copy_source_permissions: true,
                extra: vec![LaunchPermission::Account(acct(PARTNER))],
                allow_public: false,
            },
            share_snapshots: true,
            ssm_parameter_template: Some("/ami/{name}/latest".into()),
            retention: Some(Retention { copies: 2, family_tag: "family".into(), dry_run: false }),
            disable_copies_with_source: true,
            launch_templates: [(Place::home(r("eu-west-1")), "web".to_string())].into_iter().collect(),
            launch_template_set_default: true,
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    }
}

/// The places every source of us-east-1 gets a copy at: (owner, region).
fn places() -> Vec<(&'static str, &'static str)> {
    vec![(ME, "eu-west-1"), (ME, "us-west-2"), (B, "us-east-1"), (B, "eu-west-1"), (B, "us-west-2")]
}

struct Images {
    /// The source replicated while the insider acts.
    s1: ImageId,
    /// A source replicated before.
    s2: ImageId,
    /// Throwaway sources the insider disables and deregisters (never replicated: not tagged for it).
    disabled: ImageId,
    deregistered: ImageId,
    /// Images the insider may tag, with their region: hand-made ones at every place and in the source region, and
    /// one built in the target account from an instance of S1 (EC2 records S1 as its source).
    decoys: Vec<(Region, ImageId)>,
}

fn world() -> (Simulation, Images) {
    let mut w = World::new(acct(ME), SimConfig { copy_seconds: (300, 900), ..SimConfig::default() });
    w.assumable = [acct(B)].into_iter().collect();
    let east = r("us-east-1");
    let tags = |family: &str| vec![Tag::new("replicate", "yes"), Tag::new("family", family), Tag::new("team", "web")];
    let s2 = w.add_image(&east, &acct(ME), "golden-s2", tags("web"), vec![]);
    let s1 = w.add_image(&east, &acct(ME), "golden-s1", tags("web"), vec![LaunchPermission::Account(acct(S1_GRANT))]);
    let disabled = w.add_image(&east, &acct(ME), "throwaway-1", vec![], vec![]);
    let deregistered = w.add_image(&east, &acct(ME), "throwaway-2", vec![], vec![]);
    let mut decoys = Vec::new();
    for (owner, region) in places().into_iter().chain([(ME, "us-east-1")]) {
        let id = w.add_image(&r(region), &acct(owner), "another-teams-image", vec![Tag::new("family", "web")], vec![]);
        decoys.push((r(region), id));
    }
    // Built by the target account from an instance of S1 in S1's own region: EC2 records S1 as its source.
    let built = w.add_image(&east, &acct(B), "changed-from-s1", vec![], vec![]);
    w.images.get_mut(&east).unwrap().get_mut(&built).unwrap().info.origin =
        Some(Origin { image: s1.clone(), region: east.clone(), recorded: false });
    decoys.push((east.clone(), built));
    let base = ImageId::parse("ami-0000000000000b0e0").unwrap();
    w.launch_templates.insert(
        (acct(ME), r("eu-west-1"), "web".to_string()),
        vec![Version { number: 1, image: Some(base), is_default: true }],
    );
    let sim = Simulation::new(w, settings());
    (sim, Images { s1, s2, disabled, deregistered, decoys })
}

/// One step of the event source mapping: an invocation, or the clock moved to the next visible message.
async fn step(sim: &mut Simulation) {
    if !sim.invoke_once(10).await {
        let mut w = sim.world.lock().unwrap();
        if let Some(t) = w.next_event_at() {
            w.advance_to(t);
        }
    }
}

/// What the insider writes: one of these tag sets on one image.
#[derive(Debug, Clone)]
struct Forgery {
    /// After how many steps of S1's replication.
    at_step: u8,
    /// Which image (modulo the targets: decoys, S2's copies, the sources).
    target: usize,
    /// Which tag set (modulo the sets).
    tags: usize,
}

fn forgeries() -> impl Strategy<Value = Vec<Forgery>> {
    prop::collection::vec(
        (0u8..12, 0usize..64, 0usize..64).prop_map(|(at_step, target, tags)| Forgery { at_step, target, tags }),
        1..6,
    )
}

fn tag_sets(i: &Images) -> Vec<Vec<Tag>> {
    let provenance =
        |s: &ImageId| vec![Tag::new(SOURCE_IMAGE_TAG, s.as_str()), Tag::new(SOURCE_REGION_TAG, "us-east-1")];
    let with = |s: &ImageId, extra: Vec<Tag>| provenance(s).into_iter().chain(extra).collect::<Vec<_>>();
    vec![
        provenance(&i.s1),
        provenance(&i.disabled),
        provenance(&i.deregistered),
        with(&i.s1, vec![Tag::new("family", "web"), Tag::new(SOURCE_CREATED_TAG, "2099-01-01T00:00:00Z")]),
        with(&i.deregistered, vec![Tag::new("family", "web")]),
        with(&i.s1, vec![Tag::new(ATTEMPT_TAG, "4000000000")]),
        vec![Tag::new(SHARED_TAG, "true")],
        vec![Tag::new(GAVE_UP_TAG, "forged")],
        vec![Tag::new(SHARE_FAILED_TAG, "forged")],
        vec![Tag::new(KEPT_TAG, "forged")],
        vec![Tag::new(ATTEMPT_TAG, "99999999999")],
        vec![Tag::new(SOURCE_CREATED_TAG, "2099-01-01T00:00:00Z")],
        vec![Tag::new("family", "web")],
        vec![Tag::new("family", "other")],
    ]
}

/// The images the insider may tag now: the decoys, S2's copies, and the sources (S1 among them).
fn targets(w: &World, i: &Images) -> Vec<(Region, ImageId)> {
    let east = r("us-east-1");
    let mut out = i.decoys.clone();
    out.extend(w.copies.iter().filter(|c| c.source == i.s2).map(|c| (c.destination.clone(), c.image.clone())));
    out.extend([&i.s1, &i.s2, &i.disabled, &i.deregistered].map(|s| (east.clone(), s.clone())));
    out
}

fn forge(sim: &Simulation, i: &Images, f: &Forgery) {
    let mut w = sim.world.lock().unwrap();
    let targets = targets(&w, i);
    let (region, id) = &targets[f.target % targets.len()];
    let sets = tag_sets(i);
    let tags = &sets[f.tags % sets.len()];
    if let Some(image) = w.images.get_mut(region).and_then(|m| m.get_mut(id)) {
        for tag in tags {
            image.info.tags.retain(|t| t.key != tag.key);
            image.info.tags.push(tag.clone());
        }
    }
}

fn run_case(forgeries: Vec<Forgery>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let (mut sim, i) = world();
        sim.put_event(&ami_event_of(ME, i.s2.as_str(), "us-east-1", "available"));
        sim.run_until_idle(10, DAY).await;
        prop_assert_eq!(sim.world.lock().unwrap().copies.len(), 5, "S2 replicated first");
        // The insider can act before S1's event (forgeries at step 0), during its replication, and after.
        for f in forgeries.iter().filter(|f| f.at_step == 0) {
            forge(&sim, &i, f);
        }
        sim.put_event(&ami_event_of(ME, i.s1.as_str(), "us-east-1", "available"));
        for n in 1..12 {
            step(&mut sim).await;
            for f in forgeries.iter().filter(|f| f.at_step == n) {
                forge(&sim, &i, f);
            }
        }
        sim.run_until_idle(10, DAY).await;
        // The throwaway sources: one disabled, one deregistered, each with its event; then the sweep.
        {
            let mut w = sim.world.lock().unwrap();
            let east = r("us-east-1");
            let image = w.images.get_mut(&east).unwrap().get_mut(&i.disabled).unwrap();
            image.info.state = ImageState::Other("disabled".into());
            image.launch_permissions.clear();
            w.deregister(&east, &i.deregistered);
        }
        sim.put_event(&ami_event_of(ME, i.disabled.as_str(), "us-east-1", "disabled"));
        sim.put_event(&ami_event_of(ME, i.deregistered.as_str(), "us-east-1", "deregistered"));
        sim.run_until_idle(10, DAY).await;
        sim.invoke_schedule().await;
        sim.run_until_idle(10, DAY).await;
        check(&sim, &i, &format!("{forgeries:?}"))
    })
}

fn check(sim: &Simulation, i: &Images, case: &str) -> Result<(), TestCaseError> {
    let w = sim.world.lock().unwrap();
    let configured: BTreeSet<(AccountId, Region)> = places().into_iter().map(|(a, g)| (acct(a), r(g))).collect();
    // Nothing copied but the genuine sources, nowhere but the configured places, nothing twice.
    let mut seen = BTreeSet::new();
    for c in &w.copies {
        prop_assert!(c.source == i.s1 || c.source == i.s2, "copied {} ({case})", c.source);
        prop_assert!(configured.contains(&(c.account.clone(), c.destination.clone())), "{c:?} ({case})");
        prop_assert!(seen.insert((c.source.clone(), c.account.clone(), c.destination.clone())), "twice {c:?} ({case})");
    }
    let genuine = |id: &str| w.copies.iter().find(|c| c.image.as_str() == id);
    let source_snapshots: Vec<String> = [&i.s1, &i.s2]
        .iter()
        .flat_map(|s| w.images[&r("us-east-1")][*s].snapshots.iter().map(|s| s.id.to_string()))
        .collect();
    let copy_snapshots: Vec<String> = w
        .copies
        .iter()
        .filter_map(|c| w.images.get(&c.destination)?.get(&c.image))
        .flat_map(|img| img.snapshots.iter().map(|s| s.id.to_string()))
        .collect();
    for e in &w.effects {
        match e.op {
            // Nothing of ours was deregistered, disabled or deleted: no genuine source went, retention keeps 2.
            "DeregisterImage" | "DeleteSnapshot" | "DisableImage" | "EnableImage" => {
                prop_assert!(false, "a destructive effect on a forged claim: {e:?} ({case})")
            }
            "ModifySnapshotAttribute" => prop_assert!(
                copy_snapshots.contains(&e.target) || (source_snapshots.contains(&e.target) && e.detail == B),
                "{e:?} ({case})"
            ),
            "CreateLaunchTemplateVersion" => {
                prop_assert!(genuine(&e.target).is_some_and(|c| c.source == i.s1 || c.source == i.s2), "{e:?} ({case})")
            }
            _ => match genuine(&e.target) {
                Some(c) => prop_assert!(c.account == e.account && c.destination == e.region, "{e:?} ({case})"),
                // The grant a target account needs to copy a genuine source, by its owner.
                None => prop_assert!(
                    e.op == "ModifyImageAttribute"
                        && [&i.s1, &i.s2].iter().any(|s| s.as_str() == e.target)
                        && e.detail == format!("account {B}"),
                    "an effect on an image that is not a verified copy: {e:?} ({case})"
                ),
            },
        }
    }
    // The genuine replication completed: S1 has one shared copy at every place, with S1's user tags and grants.
    for (account, region) in &configured {
        let c = w.copies.iter().find(|c| c.source == i.s1 && &c.account == account && &c.destination == region);
        prop_assert!(c.is_some(), "S1 has no copy at {account}/{region} ({case})");
        let image = &w.images[region][&c.unwrap().image];
        prop_assert_eq!(&image.info.state, &ImageState::Available);
        prop_assert!(image.info.tag(SHARED_TAG).is_some(), "{} not shared ({case})", image.info.id);
        prop_assert_eq!(image.info.tag("team"), Some("web"), "the source's user tags in every account ({})", case);
        for forged in [GAVE_UP_TAG, SHARE_FAILED_TAG, KEPT_TAG] {
            prop_assert!(image.info.tag(forged).is_none(), "{forged} carried onto {} ({case})", image.info.id);
        }
        let granted = |a: &str| image.launch_permissions.contains(&LaunchPermission::Account(acct(a)));
        prop_assert!(granted(S1_GRANT) && granted(PARTNER), "{:?} ({case})", image.launch_permissions);
        let parameter = w.parameters.get(&(account.clone(), region.clone(), "/ami/golden-s1/latest".to_string()));
        prop_assert_eq!(
            parameter,
            Some(&c.unwrap().image.to_string()),
            "SSM parameter at {}/{} ({})",
            account,
            region,
            case
        );
    }
    // Every SSM parameter names a genuine copy.
    for value in w.parameters.values() {
        prop_assert!(genuine(value).is_some(), "a parameter names {value} ({case})");
    }
    // The decoys are where they were, with no launch permission.
    for (region, id) in &i.decoys {
        let image = w.images.get(region).and_then(|m| m.get(id));
        prop_assert!(image.is_some_and(|d| d.launch_permissions.is_empty()), "decoy {id} ({case})");
    }
    Ok(())
}

#[test]
fn forged_tags_share_retire_disable_or_delete_nothing() {
    let config = Config { cases: cases(), failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[27; 32]));
    runner.run(&forgeries(), run_case).unwrap_or_else(|e| panic!("{e}"));
}
