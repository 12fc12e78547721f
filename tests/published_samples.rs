//! The samples in events/published/ (what a pipeline's rule receives, documented in the README) are exactly what
//! the product publishes: each sample's detail is rebuilt from its own values by the code that publishes it.

use ami_replicator::core::facts::{Completion, Failure};
use ami_replicator::core::finish::{Outcome, Watch};
use ami_replicator::core::ids::{AccountId, ImageId, Place, Region};
use ami_replicator::ports::EVENT_SOURCE;
use ami_replicator::service::{completed_event, failed_event, finished_event, COMPLETED, FAILED, FINISHED};
use serde_json::Value;

fn sample(name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events/published").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"))
}

fn check(sample: &Value, detail_type: &str, built: ami_replicator::ports::OutgoingEvent) {
    assert_eq!(sample["source"], EVENT_SOURCE);
    assert_eq!(sample["detail-type"], detail_type);
    assert_eq!(built.detail_type, detail_type);
    assert_eq!(sample["detail"], built.detail, "{detail_type}");
    assert_eq!(sample["resources"], serde_json::json!(built.resources));
}

#[test]
fn the_completed_sample_is_what_is_published() {
    let v = sample("completed.json");
    let d = &v["detail"];
    let built = completed_event(&Completion {
        source_image: ImageId::parse(s(d, "source_image_id")).unwrap(),
        source_region: Region::parse(s(d, "source_region")).unwrap(),
        copy: ImageId::parse(s(d, "image_id")).unwrap(),
        account: AccountId::parse(s(d, "account")).unwrap(),
        region: Region::parse(s(d, "region")).unwrap(),
        copy_seconds: d["duration_seconds"].as_f64(),
        share_latency_seconds: None,
        source_name: None,
        source_created: None,
    });
    check(&v, COMPLETED, built);
}

#[test]
fn the_failed_sample_is_what_is_published() {
    let v = sample("failed.json");
    let d = &v["detail"];
    let built = failed_event(&Failure {
        source_image: ImageId::parse(s(d, "source_image_id")).unwrap(),
        source_region: Region::parse(s(d, "source_region")).unwrap(),
        account: AccountId::parse(s(d, "account")).unwrap(),
        region: Region::parse(s(d, "region")).unwrap(),
        reason: s(d, "reason").to_string(),
    });
    check(&v, FAILED, built);
}

#[test]
fn the_finished_sample_is_what_is_published() {
    let v = sample("finished.json");
    let d = &v["detail"];
    let home = AccountId::parse(s(&v, "account")).unwrap();
    let outcomes: Vec<(Place, Outcome)> = d["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let account = AccountId::parse(s(p, "account")).unwrap();
            let place = Place::new((account != home).then_some(account), Region::parse(s(p, "region")).unwrap());
            let outcome = match s(p, "outcome") {
                "completed" => Outcome::Completed { copy: ImageId::parse(s(p, "image_id")).unwrap() },
                "failed" => Outcome::Failed { reason: s(p, "reason").to_string() },
                _ => Outcome::Missing,
            };
            (place, outcome)
        })
        .collect();
    let watch = Watch {
        source_image: ImageId::parse(s(d, "source_image_id")).unwrap(),
        source_region: Region::parse(s(d, "source_region")).unwrap(),
        places: outcomes.iter().map(|(p, _)| p.clone()).collect(),
        since: 0,
        checks: 0,
    };
    check(&v, FINISHED, finished_event(&watch, &outcomes, &home));
}
