//! Every sample in events/ decodes with the handler's own input type and runs against the local emulator.

use ami_replicator::aws::{ec2::AwsEc2Regions, sqs::AwsQueue};
use ami_replicator::core::ids::{AccountId, Region};
use ami_replicator::core::replication_rules::RuleSettings;
use ami_replicator::core::step::JobLimits;
use ami_replicator::entry::{self, decode_input, Input};
use ami_replicator::local::{create_queues, drain_queue, ec2_client, seed_source_image, Emulator, EMULATOR_ACCOUNT};
use ami_replicator::service::{DeploymentSettings, Replicator};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const SAMPLE_IMAGE: &str = "ami-0123456789abcdef0";

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events")
}

fn sample(name: &str, image: &str) -> Value {
    let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
    serde_json::from_str(&text.replace(SAMPLE_IMAGE, image)).unwrap()
}

#[test]
fn every_sample_decodes_with_the_handlers_input_type() {
    let mut names: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 8, "{names:?}");
    for name in names {
        match decode_input(sample(&name, SAMPLE_IMAGE)) {
            Ok(Input::Direct(item)) => assert!(item.message.is_ok(), "{name}: {:?}", item.message),
            Ok(Input::Batch(items)) => {
                let malformed = name.contains("malformed");
                assert!(items.iter().all(|i| i.message.is_err() == malformed), "{name}");
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

async fn copies(sdk: &aws_config::SdkConfig, region: &str, source: &str) -> usize {
    ami_replicator::local::copies_of(sdk, region, source).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_runs_against_the_emulator() {
    let emulator = Emulator::start(0.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "events", 2).await.unwrap();
    let settings = DeploymentSettings {
        step: JobLimits { poll_seconds: 1, capacity_max_seconds: 1, ..JobLimits::default() },
        source_regions: vec![Region::parse("us-east-1").unwrap()],
        rule: RuleSettings {
            target_regions: ["eu-west-1", "us-west-2", "ap-southeast-2"]
                .iter()
                .map(|r| Region::parse(r).unwrap())
                .collect(),
            disable_copies_with_source: true,
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    };
    let replicator = Replicator::new(
        Arc::new(settings),
        AwsEc2Regions::new(sdk.clone()),
        AwsQueue::new(sqs.clone(), work.clone(), Some(dlq.clone())),
    );
    let account = AccountId::parse(EMULATOR_ACCOUNT).unwrap();
    let drain = || drain_queue(&sqs, &work, &replicator, &account, Duration::from_secs(60));
    let east = ec2_client(&sdk, "us-east-1");
    let new_image = |name: &'static str| {
        let east = east.clone();
        async move { seed_source_image(&east, name, &[], &[]).await.unwrap() }
    };

    // AMI available, direct from EventBridge: replicated to both configured regions.
    let image = new_image("available").await;
    entry::handle(&replicator, sample("ami-available.json", &image), &account).await.unwrap();
    drain().await.unwrap();
    assert_eq!((copies(&sdk, "eu-west-1", &image).await, copies(&sdk, "us-west-2", &image).await), (1, 1));

    // AMI disabled (DISABLE_COPIES_WITH_SOURCE): its copies are disabled with it.
    east.disable_image().image_id(&image).send().await.unwrap();
    entry::handle(&replicator, sample("ami-disabled.json", &image), &account).await.unwrap();
    let eu = ami_replicator::local::copies_of(&sdk, "eu-west-1", &image).await.unwrap();
    assert_eq!(eu[0].state().map(|s| s.as_str()), Some("disabled"));

    // AMI deregistered: its copies are looked for (none is pending), nothing copied or enqueued.
    let image = new_image("deregistered").await;
    entry::handle(&replicator, sample("ami-deregistered.json", &image), &account).await.unwrap();
    assert_eq!(drain().await.unwrap().invocations, 0);
    assert_eq!(copies(&sdk, "eu-west-1", &image).await, 0);

    // An SQS batch carrying the EventBridge event.
    let image = new_image("sqs-eventbridge").await;
    let response = entry::handle(&replicator, sample("sqs-eventbridge.json", &image), &account).await.unwrap();
    assert_eq!(response["batchItemFailures"], serde_json::json!([]));
    drain().await.unwrap();
    assert_eq!(copies(&sdk, "us-west-2", &image).await, 1);

    // An SQS batch carrying a work item that narrows the configured regions.
    let image = new_image("sqs-work-item").await;
    entry::handle(&replicator, sample("sqs-work-item.json", &image), &account).await.unwrap();
    drain().await.unwrap();
    assert_eq!(copies(&sdk, "ap-southeast-2", &image).await, 1);
    assert_eq!(copies(&sdk, "us-west-2", &image).await, 0, "the work item's targets replace the configured ones");

    // A malformed batch: nothing to retry, every message dead-lettered with its reason.
    let response = entry::handle(&replicator, sample("sqs-malformed.json", SAMPLE_IMAGE), &account).await.unwrap();
    assert_eq!(response["batchItemFailures"], serde_json::json!([]));
    let reasons = ami_replicator::local::dead_letter_reasons(&sqs, &dlq).await.unwrap();
    assert_eq!(reasons.len(), 3, "each with its failure_reason: {reasons:?}");
    // The scheduled sweep (its time set to now): an image whose event never arrived is found and copied.
    let image = new_image("missed-event").await;
    let now = ami_replicator::core::time::format_rfc3339(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64,
    );
    let sweep = sample("scheduled-sweep.json", &image).to_string().replace("2026-11-29T10:00:00Z", &now);
    entry::handle(&replicator, serde_json::from_str(&sweep).unwrap(), &account).await.unwrap();
    drain().await.unwrap();
    assert_eq!((copies(&sdk, "eu-west-1", &image).await, copies(&sdk, "us-west-2", &image).await), (1, 1));
    assert_eq!(copies(&sdk, "ap-southeast-2", &image).await, 1);
    // imagebuilder-available.json runs in tests/suite/cross_account_moto.rs, which registers its build with the emulator.
}
