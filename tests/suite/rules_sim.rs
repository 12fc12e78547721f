//! Replication rules over the simulator: three rules with their own regions, accounts and keys, from the same
//! configuration code the function runs; an image no rule matches; one copy limit per place across rules; and
//! messages that try to widen their rule.

use ami_replicator::config::Config;
use ami_replicator::core::ids::ImageId;
use ami_replicator::core::image::{ImageState, LaunchPermission, Tag};
use ami_replicator::core::job::{Continuation, Job};
use ami_replicator::core::provenance::SOURCE_IMAGE_TAG;
use ami_replicator::core::replication_rules::RULE_TAG;
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, SimImage, Simulation, World};
use std::collections::HashMap;

use crate::common::*;

const ME: &str = "111111111111";
const B: &str = "222222222222";
const DAY: u64 = 86_400;
const B_KEY: &str = "arn:aws:kms:ap-southeast-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// Windows images with their own key and never public; golden images to two regions and account B (with B's own
/// key in ap-southeast-2); a team's images to three regions of this account.
const RULES: &str = r#"{"rules": [
  {"name": "windows", "match": {"tags": {"Platform": "windows"}},
   "regions": ["eu-west-1"], "encrypt": true, "kms_keys": {"eu-west-1": "alias/windows-images"},
   "share": {"allow_public": false}},
  {"name": "golden", "match": {"tags": {"Kind": ["base", "golden"]}, "regions": ["us-east-1"]},
   "regions": ["eu-west-1", "ap-southeast-2"], "encrypt": true,
   "accounts": {"222222222222": "arn:aws:iam::222222222222:role/ami-replicator-target"},
   "kms_keys": {"222222222222/ap-southeast-2": "arn:aws:kms:ap-southeast-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
   "tags": {"Distribution": "golden"}},
  {"name": "team-a", "match": {"tags": {"Team": "a"}, "name": "team-a-*"},
   "regions": ["us-west-2", "eu-central-1", "eu-west-1"], "description": "{name} from {region}"}
]}"#;

fn settings(max_per_region: &str) -> DeploymentSettings {
    let vars: HashMap<&str, &str> = HashMap::from([
        ("WORK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/111111111111/work"),
        ("REPLICATION_RULES", RULES),
        ("SOURCE_REGIONS", "us-east-1"),
        ("MAX_CONCURRENT_COPIES_PER_REGION", max_per_region),
        ("PUBLISH_EVENTS", "true"),
        ("ADMISSION_TABLE", "admission"),
    ]);
    Config::from_lookup(&|k| vars.get(k).map(|v| v.to_string())).unwrap().settings
}

struct Sources {
    windows: ImageId,
    golden: ImageId,
    team: ImageId,
    unmatched: ImageId,
}

fn world() -> (World, Sources) {
    let mut w = World::new(acct(ME), SimConfig::default());
    w.assumable = vec![acct(B)].into_iter().collect();
    let east = r("us-east-1");
    let public = vec![LaunchPermission::Public];
    let windows = w.add_image(&east, &acct(ME), "win-2025", vec![Tag::new("Platform", "windows")], public);
    let golden = w.add_image(&east, &acct(ME), "al2023-golden", vec![Tag::new("Kind", "golden")], vec![]);
    let team = w.add_image(&east, &acct(ME), "team-a-svc", vec![Tag::new("Team", "a")], vec![]);
    let unmatched = w.add_image(&east, &acct(ME), "scratch", vec![Tag::new("Team", "b")], vec![]);
    (w, Sources { windows, golden, team, unmatched })
}

fn copies(sim: &Simulation, source: &ImageId) -> Vec<(String, String, SimImage)> {
    let w = sim.world.lock().unwrap();
    let mut out = Vec::new();
    for (region, images) in &w.images {
        for image in images.values().filter(|i| i.info.tag(SOURCE_IMAGE_TAG) == Some(source.as_str())) {
            let owner = image.info.owner.as_ref().map(ToString::to_string).unwrap_or_default();
            out.push((owner, region.to_string(), image.clone()));
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

fn places(sim: &Simulation, source: &ImageId) -> Vec<(String, String)> {
    copies(sim, source).into_iter().map(|(o, r, _)| (o, r)).collect()
}

fn dead_letters(sim: &Simulation) -> Vec<String> {
    sim.world.lock().unwrap().dead_letters.iter().map(|(_, reason)| reason.clone()).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[tokio::test]
async fn each_image_goes_where_its_rule_says_under_one_limit_per_place() {
    let (w, s) = world();
    let mut sim = Simulation::new(w, settings("1"));
    for image in [&s.windows, &s.golden, &s.team, &s.unmatched] {
        sim.put_event(&ami_event_of(ME, image.as_str(), "us-east-1", "available"));
    }
    sim.run_until_idle(10, DAY).await;
    assert!(dead_letters(&sim).is_empty(), "{:?}", dead_letters(&sim));

    let windows = copies(&sim, &s.windows);
    assert_eq!(places(&sim, &s.windows), pairs(&[(ME, "eu-west-1")]));
    let win = &windows[0].2;
    assert_eq!(win.kms_key_id.as_deref(), Some("alias/windows-images"), "the windows rule's key");
    assert!(win.info.traits.encrypted);
    assert!(!win.launch_permissions.contains(&LaunchPermission::Public), "never public under this rule");
    assert_eq!(win.info.tag(RULE_TAG), Some("windows"));

    assert_eq!(
        places(&sim, &s.golden),
        pairs(&[(ME, "ap-southeast-2"), (ME, "eu-west-1"), (B, "ap-southeast-2"), (B, "eu-west-1"), (B, "us-east-1")])
    );
    for (owner, region, copy) in copies(&sim, &s.golden) {
        assert_eq!(copy.info.state, ImageState::Available, "{owner} {region}");
        assert_eq!(copy.info.tag(RULE_TAG), Some("golden"));
        assert_eq!(copy.info.tag("Distribution"), Some("golden"), "the rule's extra tags");
        let key = (owner == B && region == "ap-southeast-2").then_some(B_KEY);
        assert_eq!(copy.kms_key_id.as_deref(), key, "{owner} {region}: only B's key where the rule names one");
        assert!(copy.info.traits.encrypted, "{owner} {region}: the rule encrypts");
    }

    assert_eq!(places(&sim, &s.team), pairs(&[(ME, "eu-central-1"), (ME, "eu-west-1"), (ME, "us-west-2")]));
    for (_, _, copy) in copies(&sim, &s.team) {
        assert_eq!(copy.info.tag(RULE_TAG), Some("team-a"));
        assert_eq!(copy.info.description.as_deref(), Some("team-a-svc from us-east-1"));
        assert_eq!(copy.info.tag("Distribution"), None, "another rule's tags are not this rule's");
    }

    assert!(copies(&sim, &s.unmatched).is_empty(), "no rule matches: not replicated");
    // Completion events name the rule: each copy's, and each source's Finished event.
    let published = sim.world.lock().unwrap().published.clone();
    let rule_of = |detail_type: &str, source: &ImageId| -> Vec<String> {
        published
            .iter()
            .filter(|(_, e)| e.detail_type == detail_type && e.detail["source_image_id"] == source.as_str())
            .map(|(_, e)| e.detail["rule"].as_str().unwrap_or("(none)").to_string())
            .collect()
    };
    assert_eq!(rule_of("AMI Replication Completed", &s.team), ["team-a", "team-a", "team-a"]);
    assert_eq!(rule_of("AMI Replication Completed", &s.golden).len(), 5);
    assert!(rule_of("AMI Replication Completed", &s.golden).iter().all(|r| r == "golden"));
    assert_eq!(rule_of("AMI Replication Finished", &s.windows), ["windows"]);
    // Three rules copy to eu-west-1 of this account: one limit there, across rules.
    let w = sim.world.lock().unwrap();
    assert_eq!(w.peak_in_flight.get(&(acct(ME), r("eu-west-1"))), Some(&1), "{:?}", w.peak_in_flight);
}

#[tokio::test]
async fn a_work_item_cannot_widen_its_rule() {
    let (w, s) = world();
    let mut sim = Simulation::new(w, settings("100"));
    // ap-southeast-2 is a destination of the deployment (the golden rule's), not of the team's rule.
    let item = format!(
        r#"{{"image_id": "{}", "source_region": "us-east-1", "target_regions": ["us-west-2", "ap-southeast-2"]}}"#,
        s.team
    );
    sim.send(&item);
    let narrowing =
        format!(r#"{{"image_id": "{}", "source_region": "us-east-1", "target_regions": ["eu-west-1"]}}"#, s.golden);
    sim.send(&narrowing);
    sim.run_until_idle(10, DAY).await;
    let dead = dead_letters(&sim);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("rule team-a") && dead[0].contains("ap-southeast-2"), "{}", dead[0]);
    assert!(copies(&sim, &s.team).is_empty(), "refused whole: nothing copied");
    // A target account's copies go to the requested regions and the source region.
    assert_eq!(
        places(&sim, &s.golden),
        pairs(&[(ME, "eu-west-1"), (B, "eu-west-1"), (B, "us-east-1")]),
        "a work item may narrow its rule"
    );
}

#[tokio::test]
async fn a_continuation_naming_another_rule_is_judged_under_its_sources_rule() {
    let (w, s) = world();
    let mut sim = Simulation::new(w, settings("100"));
    // A job for the team's image at account B, which only the golden rule has, claiming that rule.
    let mut elsewhere = Job::new(s.team.clone(), r("us-east-1"), r("ap-southeast-2"), None, None);
    elsewhere.account = Some(acct(B));
    elsewhere.rule = Some("golden".into());
    // A job at a place of the team's rule claiming the windows rule (its key and encryption).
    let mut claimed = Job::new(s.team.clone(), r("us-east-1"), r("us-west-2"), None, None);
    claimed.rule = Some("windows".into());
    sim.send(&Continuation::body(&[elsewhere]));
    sim.send(&Continuation::body(&[claimed]));
    sim.run_until_idle(10, DAY).await;
    let dead = dead_letters(&sim);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("rule team-a") && dead[0].contains("account 222222222222 is not"), "{}", dead[0]);
    let copies = copies(&sim, &s.team);
    assert_eq!(copies.len(), 1, "only the place of its own rule");
    let copy = &copies[0].2;
    assert_eq!(copies[0].1, "us-west-2");
    assert_eq!(copy.info.tag(RULE_TAG), Some("team-a"), "the source's rule, not the message's");
    assert!(!copy.info.traits.encrypted, "the windows rule's encryption is not the team's");
}

#[tokio::test]
async fn the_sweep_sends_what_events_missed_where_each_rule_says() {
    let (w, s) = world();
    let mut sim = Simulation::new(w, settings("100"));
    sim.invoke_schedule().await;
    sim.run_until_idle(10, DAY).await;
    assert!(dead_letters(&sim).is_empty(), "{:?}", dead_letters(&sim));
    assert_eq!(places(&sim, &s.windows), pairs(&[(ME, "eu-west-1")]));
    assert_eq!(places(&sim, &s.team), pairs(&[(ME, "eu-central-1"), (ME, "eu-west-1"), (ME, "us-west-2")]));
    assert_eq!(places(&sim, &s.golden).len(), 5);
    assert!(copies(&sim, &s.unmatched).is_empty());
    for (_, _, copy) in copies(&sim, &s.team) {
        assert_eq!(copy.info.tag(RULE_TAG), Some("team-a"), "admission set the rule of a job the sweep made");
    }
}
