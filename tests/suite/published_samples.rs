//! The samples in events/published/ (what a pipeline's rule receives, documented in the README), written by hand,
//! are exactly what the product publishes: each event is built by the code that publishes it from inputs written
//! here, and compared with the file (not rebuilt from the sample's own values).

use ami_replicator::core::facts::{Completion, Failure, Retired};
use ami_replicator::core::ids::{AccountId, ImageId, Place, Region};
use ami_replicator::core::watch::{Outcome, Watch};
use ami_replicator::ports::EVENT_SOURCE;
use ami_replicator::service::{
    completed_event, failed_event, finished_event, retired_event, COMPLETED, FAILED, FINISHED, RETIRED,
};
use serde_json::Value;

fn sample(name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events/published").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check(sample: &Value, detail_type: &str, built: ami_replicator::ports::OutgoingEvent) {
    assert_eq!(sample["source"], EVENT_SOURCE);
    assert_eq!(sample["detail-type"], detail_type);
    assert_eq!(built.detail_type, detail_type);
    assert_eq!(sample["detail"], built.detail, "{detail_type}");
    assert_eq!(sample["resources"], serde_json::json!(built.resources));
}

const SOURCE: &str = "ami-0123456789abcdef0";
const COPY: &str = "ami-0a1b2c3d4e5f60718";
const HOME: &str = "123456789012";

fn image(id: &str) -> ImageId {
    ImageId::parse(id).unwrap()
}

fn region(r: &str) -> Region {
    Region::parse(r).unwrap()
}

fn account(a: &str) -> AccountId {
    AccountId::parse(a).unwrap()
}

#[test]
fn the_completed_sample_is_what_is_published() {
    let built = completed_event(&Completion {
        source_image: image(SOURCE),
        source_region: region("us-east-1"),
        copy: image(COPY),
        account: account(HOME),
        region: region("eu-west-1"),
        copy_seconds: Some(1312.0),
        share_latency_seconds: None,
        source_name: None,
        source_created: None,
        rule: None,
    });
    check(&sample("completed.json"), COMPLETED, built);
}

#[test]
fn the_retired_sample_is_what_is_published() {
    let built = retired_event(&Retired {
        copy: image(COPY),
        account: account(HOME),
        region: region("eu-west-1"),
        family_tag: "Family".into(),
        family: "web".into(),
        reason: format!("{COPY} of family Family=web is older than the 2 newest kept (RETAIN_COPIES)"),
    });
    check(&sample("retired.json"), RETIRED, built);
}

#[test]
fn the_failed_sample_is_what_is_published() {
    let built = failed_event(&Failure {
        source_image: image(SOURCE),
        source_region: region("us-east-1"),
        account: account(HOME),
        region: region("us-west-2"),
        reason: format!(
            "{SOURCE} us-east-1 -> us-west-2 (copy): InvalidParameterValue: Paravirtual images are not supported in \
             us-west-2"
        ),
    });
    check(&sample("failed.json"), FAILED, built);
}

#[test]
fn the_finished_sample_is_what_is_published() {
    let outcomes = vec![
        (Place::home(region("eu-west-1")), Outcome::Completed { copy: image(COPY) }),
        (Place::home(region("us-west-2")), Outcome::Failed { reason: "3 copies failed, giving up".into() }),
        (Place::new(Some(account("444455556666")), region("eu-west-1")), Outcome::Missing),
    ];
    let watch = Watch {
        source_image: image(SOURCE),
        source_region: region("us-east-1"),
        places: outcomes.iter().map(|(p, _)| p.clone()).collect(),
        since: 0,
        checks: 0,
    };
    check(&sample("finished.json"), FINISHED, finished_event(&watch, &outcomes, &account(HOME)));
}
