//! Messages are hints, EC2 is the truth, as a property over the simulator: the real messages of a run (the event,
//! continuations), edited the way a queue writer could edit them (any one field set to another value; every image
//! id swapped for another source's copy, a public image, an untagged image, a copy used as source), are sent beside
//! the genuine ones. Whatever the edit: no effect on any image that is not a copy of the job's source (nor on a
//! source, but the grants a target account needs to copy it), nothing copied outside the configuration, no
//! duplicate, and the genuine replication still completes with the source's own grants, name and deprecation.
//! 200 cases (EDITED_MESSAGE_CASES for more).

use ami_replicator::core::ids::{AccountId, ImageId, Region};
use ami_replicator::core::image::{ImageState, LaunchPermission, Tag};
use ami_replicator::core::provenance::SHARED_TAG;
use ami_replicator::core::share::ShareSettings;
use ami_replicator::core::step::JobLimits;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, Simulation, World};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;
use std::collections::BTreeSet;

use crate::common::*;

const ME: &str = "111111111111";
const B: &str = "222222222222";
const OTHER: &str = "999988887777";
const PARTNER: &str = "444455556666";
const S1_GRANT: &str = "555500001111";
const S2_GRANT: &str = "555500002222";
const S1_DEPRECATION: &str = "2027-06-01T00:00:00Z";
const DAY: u64 = 86_400;

fn cases() -> u32 {
    std::env::var("EDITED_MESSAGE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

fn settings() -> DeploymentSettings {
    DeploymentSettings {
        source_regions: vec![r("us-east-1")],
        tag_filter: Some(Tag::new("replicate", "yes")),
        step: JobLimits { poll_seconds: 60, ..JobLimits::default() },
        rule: RuleSettings {
            target_regions: vec![r("eu-west-1"), r("us-west-2")],
            target_accounts: vec![acct(B)],
            share: ShareSettings {
                copy_source_permissions: true,
                extra: vec![LaunchPermission::Account(acct(PARTNER))],
                allow_public: true,
            },
            ssm_parameter_template: Some("/ami/{name}/latest".into()),
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    }
}

/// The places every source of us-east-1 gets a copy at: (owner, region).
fn places() -> Vec<(&'static str, &'static str)> {
    vec![(ME, "eu-west-1"), (ME, "us-west-2"), (B, "us-east-1"), (B, "eu-west-1"), (B, "us-west-2")]
}

struct Decoys {
    s1: ImageId,
    s2: ImageId,
    public: ImageId,
    untagged: ImageId,
    at_destination: ImageId,
}

/// The world: S1 and S2 are sources (S1 deprecated later, each shared with its own account); a public image of
/// another account and an untagged image of this one in the source region; an untagged image at a destination.
/// S2 is already replicated when S1's event arrives.
fn world() -> (Simulation, Decoys) {
    let mut w = World::new(acct(ME), SimConfig { copy_seconds: (300, 900), ..SimConfig::default() });
    w.assumable = [acct(B)].into_iter().collect();
    let tag = || vec![Tag::new("replicate", "yes")];
    let grant = |a: &str| vec![LaunchPermission::Account(acct(a))];
    let east = r("us-east-1");
    let s1 = w.add_image(&east, &acct(ME), "golden-s1", tag(), grant(S1_GRANT));
    w.images.get_mut(&east).unwrap().get_mut(&s1).unwrap().info.traits.deprecation_time = Some(S1_DEPRECATION.into());
    let s2 = w.add_image(&east, &acct(ME), "golden-s2", tag(), grant(S2_GRANT));
    let public = w.add_image(&east, &acct(OTHER), "public", tag(), vec![LaunchPermission::Public]);
    let untagged = w.add_image(&east, &acct(ME), "untagged", vec![], grant(OTHER));
    let at_destination = w.add_image(&r("eu-west-1"), &acct(ME), "built-in-eu", tag(), vec![]);
    let sim = Simulation::new(w, settings());
    (sim, Decoys { s1, s2, public, untagged, at_destination })
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

fn copies_of(w: &World, source: &ImageId) -> Vec<(AccountId, Region, ImageId)> {
    w.copies
        .iter()
        .filter(|c| &c.source == source)
        .map(|c| (c.account.clone(), c.destination.clone(), c.image.clone()))
        .collect()
}

/// How a message is edited.
#[derive(Debug, Clone)]
enum Edit {
    /// The `leaf`-th leaf (modulo their number) of the JSON body becomes the `value`-th value of the pool.
    Leaf { leaf: usize, value: usize },
    /// The `leaf`-th image id of the body becomes the `value`-th image id of the pool.
    IdLeaf { leaf: usize, value: usize },
    /// Every image id in the body (or every one but the sources') becomes the `value`-th image id of the pool.
    AllIds { value: usize, keep_sources: bool },
    /// Every job of a continuation says it replaces the `value`-th image id of the pool.
    Replaces { value: usize },
}

fn edits() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0usize..64, 0usize..64).prop_map(|(leaf, value)| Edit::Leaf { leaf, value }),
        (0usize..8, 0usize..16).prop_map(|(leaf, value)| Edit::IdLeaf { leaf, value }),
        (0usize..16, any::<bool>()).prop_map(|(value, keep_sources)| Edit::AllIds { value, keep_sources }),
        (0usize..16).prop_map(|value| Edit::Replaces { value }),
    ]
}

/// The image-id leaves of a body, as (path) pointers.
fn id_pointers(value: &Value, path: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| id_pointers(v, format!("{path}/{k}"), out)),
        Value::Array(list) => list.iter().enumerate().for_each(|(i, v)| id_pointers(v, format!("{path}/{i}"), out)),
        Value::String(s) if s.starts_with("ami-") => out.push(path),
        _ => {}
    }
}

fn is_source_field(pointer: &str) -> bool {
    ["/source_image", "/image_id", "/ImageId"].iter().any(|k| pointer.ends_with(k))
}

fn set_leaf(value: &mut Value, n: &mut usize, to: &Value) -> bool {
    match value {
        Value::Object(map) => map.values_mut().any(|v| set_leaf(v, n, to)),
        Value::Array(list) => list.iter_mut().any(|v| set_leaf(v, n, to)),
        leaf => {
            if *n == 0 {
                *leaf = to.clone();
                return true;
            }
            *n -= 1;
            false
        }
    }
}

fn count_leaves(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.values().map(count_leaves).sum(),
        Value::Array(list) => list.iter().map(count_leaves).sum(),
        _ => 1,
    }
}

fn swap_ids(value: &mut Value, to: &str) {
    match value {
        Value::Object(map) => map.values_mut().for_each(|v| swap_ids(v, to)),
        Value::Array(list) => list.iter_mut().for_each(|v| swap_ids(v, to)),
        Value::String(s) if s.starts_with("ami-") => *s = to.to_string(),
        Value::String(s) if s.contains("image/ami-") => {
            *s = format!("{}{to}", &s[..s.find("ami-").unwrap_or(0)]);
        }
        _ => {}
    }
}

fn run_case(steps: u8, pick: usize, edit: Edit) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let (mut sim, d) = world();
        sim.put_event(&ami_event_of(ME, d.s2.as_str(), "us-east-1", "available"));
        sim.run_until_idle(10, DAY).await;
        let s2_copies = copies_of(&sim.world.lock().unwrap(), &d.s2);
        prop_assert_eq!(s2_copies.len(), 5, "S2 replicated first");

        let event = ami_event_of(ME, d.s1.as_str(), "us-east-1", "available");
        sim.put_event(&event);
        for _ in 0..steps {
            step(&mut sim).await;
        }
        // A real message of the run: on the queue now (the event, a fan-out, a waiting job), else the event.
        let (body, s1_copies) = {
            let w = sim.world.lock().unwrap();
            let bodies: Vec<String> = w.queue.iter().map(|m| m.body.clone()).collect();
            let body = if bodies.is_empty() { event.clone() } else { bodies[pick % bodies.len()].clone() };
            (body, copies_of(&w, &d.s1))
        };
        let mut ids: Vec<String> = vec![
            d.s2.to_string(),
            d.public.to_string(),
            d.untagged.to_string(),
            d.at_destination.to_string(),
            "ami-0123456789abcdef0".into(),
        ];
        ids.extend(s2_copies.iter().map(|(_, _, i)| i.to_string()));
        ids.extend(s1_copies.iter().map(|(_, _, i)| i.to_string()));
        let mut pool: Vec<Value> = ids.iter().map(|i| Value::from(i.as_str())).collect();
        pool.extend(
            [
                "eu-west-1",
                "us-west-2",
                "us-east-1",
                "ap-south-1",
                B,
                OTHER,
                ME,
                "copy",
                "wait",
                "deregistered",
                "failed",
            ]
            .map(Value::from),
        );
        pool.extend([0, 1, 2, 3, 99, -1, 4_000_000_000_i64, 9_999_999_999].map(Value::from));
        pool.extend([Value::Null, Value::Bool(true), Value::Bool(false), Value::from("1970-01-01T00:00:00Z")]);

        let mut edited: Value = serde_json::from_str(&body).unwrap();
        match edit {
            Edit::Leaf { leaf, value } => {
                let mut n = leaf % count_leaves(&edited).max(1);
                set_leaf(&mut edited, &mut n, &pool[value % pool.len()]);
            }
            Edit::IdLeaf { leaf, value } => {
                let mut pointers = Vec::new();
                id_pointers(&edited, String::new(), &mut pointers);
                if let Some(p) = pointers.get(leaf % pointers.len().max(1)) {
                    *edited.pointer_mut(p).unwrap() = Value::from(ids[value % ids.len()].as_str());
                }
            }
            Edit::AllIds { value, keep_sources: false } => swap_ids(&mut edited, &ids[value % ids.len()]),
            Edit::AllIds { value, keep_sources: true } => {
                let mut pointers = Vec::new();
                id_pointers(&edited, String::new(), &mut pointers);
                for p in pointers.iter().filter(|p| !is_source_field(p)) {
                    *edited.pointer_mut(p).unwrap() = Value::from(ids[value % ids.len()].as_str());
                }
            }
            Edit::Replaces { value } => {
                if let Some(jobs) = edited.get_mut("jobs").and_then(Value::as_array_mut) {
                    for job in jobs {
                        job["replaces"] = Value::from(ids[value % ids.len()].as_str());
                    }
                }
            }
        }
        sim.send(&edited.to_string());
        sim.run_until_idle(10, 3 * DAY).await;
        check(&sim, &d, &edited.to_string())
    })
}

fn check(sim: &Simulation, d: &Decoys, edited: &str) -> Result<(), TestCaseError> {
    let w = sim.world.lock().unwrap();
    let configured: BTreeSet<(AccountId, Region)> = places().into_iter().map(|(a, g)| (acct(a), r(g))).collect();
    let genuine = [d.s1.clone(), d.s2.clone()];
    // Nothing copied outside the configuration, nothing twice.
    let mut seen = BTreeSet::new();
    for c in &w.copies {
        prop_assert!(genuine.contains(&c.source), "copied {} ({edited})", c.source);
        prop_assert!(configured.contains(&(c.account.clone(), c.destination.clone())), "{c:?} ({edited})");
        prop_assert!(
            seen.insert((c.source.clone(), c.account.clone(), c.destination.clone())),
            "duplicate {c:?} ({edited})"
        );
    }
    let copy_source = |id: &str| w.copies.iter().find(|c| c.image.as_str() == id).map(|c| (c.source.clone(), c));
    let s1_snapshots: Vec<String> =
        w.images[&r("us-east-1")][&d.s1].snapshots.iter().map(|s| s.id.to_string()).collect();
    let s2_snapshots: Vec<String> =
        w.images[&r("us-east-1")][&d.s2].snapshots.iter().map(|s| s.id.to_string()).collect();
    // Every effect touched this product's copy of the right source, at its place, with that source's facts.
    for e in &w.effects {
        match e.op {
            "ModifyImageAttribute" | "EnableImageDeprecation" | "CreateTags" => match copy_source(&e.target) {
                Some((source, c)) => {
                    prop_assert!(c.account == e.account && c.destination == e.region, "{e:?} ({edited})");
                    let other_grant = if source == d.s1 { S2_GRANT } else { S1_GRANT };
                    prop_assert!(!e.detail.contains(other_grant), "another source's grants on {e:?} ({edited})");
                    prop_assert!(!e.detail.contains("public"), "{e:?} ({edited})");
                    if e.op == "EnableImageDeprecation" {
                        prop_assert!(source == d.s1 && e.detail == S1_DEPRECATION, "{e:?} ({edited})");
                    }
                }
                // Only the grant a target account needs to copy a genuine source, by its owner.
                None => prop_assert!(
                    e.op == "ModifyImageAttribute"
                        && genuine.iter().any(|g| g.as_str() == e.target)
                        && e.detail == format!("account {B}")
                        && e.account == acct(ME),
                    "an effect on an image that is not a copy of the job's source: {e:?} ({edited})"
                ),
            },
            "ModifySnapshotAttribute" => prop_assert!(
                (s1_snapshots.contains(&e.target) || s2_snapshots.contains(&e.target)) && e.detail == B,
                "{e:?} ({edited})"
            ),
            other => prop_assert!(false, "no {other} without a failed copy or a deregistered source: {e:?} ({edited})"),
        }
    }
    // The genuine work completed: S1 and S2 each have one shared copy at every place, with their own grants,
    // name and deprecation.
    for (source, name, grant) in [(&d.s1, "golden-s1", S1_GRANT), (&d.s2, "golden-s2", S2_GRANT)] {
        for (account, region) in &configured {
            let c = w.copies.iter().find(|c| &c.source == source && &c.account == account && &c.destination == region);
            prop_assert!(c.is_some(), "{source} has no copy at {account}/{region} ({edited})");
            let image = &w.images[region][&c.unwrap().image];
            prop_assert_eq!(&image.info.state, &ImageState::Available);
            prop_assert!(image.info.tag(SHARED_TAG).is_some(), "{} not shared ({edited})", image.info.id);
            prop_assert_eq!(image.info.name.as_deref(), Some(name));
            let granted = |a: &str| image.launch_permissions.contains(&LaunchPermission::Account(acct(a)));
            prop_assert!(granted(grant) && granted(PARTNER), "{:?} ({edited})", image.launch_permissions);
            let deprecation = (source == &d.s1).then_some(S1_DEPRECATION);
            prop_assert_eq!(image.info.traits.deprecation_time.as_deref(), deprecation);
            let parameter = w.parameters.get(&(account.clone(), region.clone(), format!("/ami/{name}/latest")));
            prop_assert_eq!(parameter, Some(&c.unwrap().image.to_string()), "SSM parameter of {} ({})", name, edited);
        }
    }
    // Parameters exist only for the sources' own names, and name their copies.
    prop_assert!(w.parameters.len() == 10, "{:?} ({edited})", w.parameters);
    // The decoys are as they were.
    let lp = |region: &str, id: &ImageId| w.images[&r(region)][id].launch_permissions.clone();
    prop_assert_eq!(lp("us-east-1", &d.public), vec![LaunchPermission::Public]);
    prop_assert_eq!(lp("us-east-1", &d.untagged), vec![LaunchPermission::Account(acct(OTHER))]);
    prop_assert!(lp("eu-west-1", &d.at_destination).is_empty());
    Ok(())
}

#[test]
fn edited_messages_never_steer_an_effect() {
    let config = Config { cases: cases(), failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[16; 32]));
    runner
        .run(&(0u8..8, 0usize..32, edits()), |(steps, pick, edit)| run_case(steps, pick, edit))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn only_images_of_the_source_regions_are_sources() {
    // An AMI built in a destination region: its event (forwarded with the copy events) and a work item naming it
    // are refused, with a log line and a dead letter naming SOURCE_REGIONS; nothing is read for the work item.
    let (mut sim, d) = world();
    sim.put_event(&ami_event_of(ME, d.at_destination.as_str(), "eu-west-1", "available"));
    let item = serde_json::json!({"image_id": d.at_destination.as_str(), "source_region": "eu-west-1"});
    sim.send(&item.to_string());
    sim.run_until_idle(10, DAY).await;
    let w = sim.world.lock().unwrap();
    assert!(w.copies.is_empty(), "{:?}", w.copies);
    assert!(w.effects.is_empty(), "{:?}", w.effects);
    assert_eq!(w.dead_letters.len(), 1, "{:?}", w.dead_letters);
    assert!(w.dead_letters[0].1.contains("not in SOURCE_REGIONS"), "{}", w.dead_letters[0].1);
}
