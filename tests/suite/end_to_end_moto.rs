//! The adapters and the whole pipeline against a real HTTP AWS emulator (moto, started on loopback by the
//! harness; see scripts/emulator.py for what its thin layer adds to moto).

use ami_replicator::aws::{ec2::AwsEc2Regions, sqs::AwsQueue};
use ami_replicator::core::ids::{AccountId, OrganizationArn, Region};
use ami_replicator::core::image::LaunchPermission;
use ami_replicator::core::provenance::{SOURCE_IMAGE_TAG, SOURCE_REGION_TAG};
use ami_replicator::core::replication_rules::RuleSettings;
use ami_replicator::core::share::ShareSettings;
use ami_replicator::core::step::JobLimits;
use ami_replicator::entry;
use ami_replicator::local::{
    create_admission_table, create_queues, drain_queue, drain_queue_quiet, ec2_client, seed_source_image,
};
use ami_replicator::local::{Emulator, EMULATOR_ACCOUNT as ACCOUNT};
use ami_replicator::service::{DeploymentSettings, Replicator};
use aws_sdk_ec2::types::ImageAttributeName;
use std::sync::Arc;
use std::time::Duration;

const DESTINATIONS: [&str; 3] = ["eu-west-1", "ap-southeast-2", "us-west-2"];
const ORG: &str = "arn:aws:organizations::123456789012:organization/o-abc123def4";

fn settings() -> DeploymentSettings {
    DeploymentSettings {
        tag_filter: None,
        max_copies_per_region: 100,
        step: JobLimits { poll_seconds: 1, ..JobLimits::default() },
        rule: RuleSettings {
            target_regions: ["eu-west-1", "ap-southeast-2", "us-west-2", "us-east-1"]
                .iter()
                .map(|r| Region::parse(r).unwrap())
                .collect(),
            share: ShareSettings {
                copy_source_permissions: true,
                extra: vec![LaunchPermission::Account(AccountId::parse("444455556666").unwrap())],
                allow_public: false,
            },
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    }
}

fn event(image: &str, region: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "EC2 AMI State Change",
        "source": "aws.ec2", "account": ACCOUNT, "time": "2026-11-27T10:00:00Z", "region": region,
        "resources": [format!("arn:aws:ec2:{region}::image/{image}")],
        "detail": {"RequestId": "d9f1c0d6", "ImageId": image, "State": "available", "ErrorMessage": ""}
    })
}

async fn copies_of(sdk: &aws_config::SdkConfig, region: &str, source: &str) -> Vec<aws_sdk_ec2::types::Image> {
    ami_replicator::local::copies_of(sdk, region, source).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicates_to_three_regions_once_with_tags_and_launch_permissions() {
    let emulator = Emulator::start(1.5).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "e2e", 2).await.unwrap();
    let org = LaunchPermission::Organization(OrganizationArn::parse(ORG).unwrap());
    let shared = LaunchPermission::Account(AccountId::parse("111122223333").unwrap());
    let source =
        seed_source_image(&ec2_client(&sdk, "us-east-1"), "golden-2026.11", &[("team", "platform")], &[shared, org])
            .await
            .unwrap();

    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = create_admission_table(&ddb, "e2e-admission").await.unwrap();
    let replicator = Replicator::new(
        Arc::new(settings()),
        AwsEc2Regions::new(sdk.clone()),
        AwsQueue::new(sqs.clone(), work.clone(), Some(dlq.clone())),
    )
    .with_leases(Arc::new(ami_replicator::aws::leases::AwsLeases::new(ddb.clone(), table.clone())));
    let account = AccountId::parse(ACCOUNT).unwrap();

    // The event arrives directly from EventBridge, and (duplicated) twice more through the queue.
    entry::handle(&replicator, event(&source, "us-east-1"), &account).await.unwrap();
    for _ in 0..2 {
        sqs.send_message().queue_url(&work).message_body(event(&source, "us-east-1").to_string()).send().await.unwrap();
    }
    let summary = drain_queue(&sqs, &work, &replicator, &account, Duration::from_secs(120)).await.unwrap();
    assert!(summary.invocations >= 2, "{summary:?}");

    for region in DESTINATIONS {
        let copies = copies_of(&sdk, region, &source).await;
        assert_eq!(copies.len(), 1, "{region}: exactly one copy");
        let copy = &copies[0];
        let tag = |k: &str| copy.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
        assert_eq!(tag(SOURCE_IMAGE_TAG).as_deref(), Some(source.as_str()));
        assert_eq!(tag(SOURCE_REGION_TAG).as_deref(), Some("us-east-1"));
        assert_eq!(tag("team").as_deref(), Some("platform"), "user tags copied");
        assert_eq!(copy.name(), Some("golden-2026.11"));
        assert_eq!(copy.state().map(|s| s.as_str()), Some("available"));

        let perms = ec2_client(&sdk, region)
            .describe_image_attribute()
            .image_id(copy.image_id().unwrap())
            .attribute(ImageAttributeName::LaunchPermission)
            .send()
            .await
            .unwrap();
        let users: Vec<&str> = perms.launch_permissions().iter().filter_map(|p| p.user_id()).collect();
        let orgs: Vec<&str> = perms.launch_permissions().iter().filter_map(|p| p.organization_arn()).collect();
        assert!(users.contains(&"111122223333") && users.contains(&"444455556666"), "{region}: {users:?}");
        assert_eq!(orgs, vec![ORG], "{region}");
    }
    assert!(copies_of(&sdk, "us-east-1", &source).await.is_empty(), "no copy in the source region");

    // The copy becoming available in eu-west-1 is never replicated back.
    let copy = copies_of(&sdk, "eu-west-1", &source).await[0].image_id().unwrap().to_string();
    sqs.send_message().queue_url(&work).message_body(event(&copy, "eu-west-1").to_string()).send().await.unwrap();
    drain_queue(&sqs, &work, &replicator, &account, Duration::from_secs(60)).await.unwrap();
    for region in ["us-east-1", "ap-southeast-2", "us-west-2"] {
        assert!(copies_of(&sdk, region, &copy).await.is_empty(), "{region}");
    }
    let dead = sqs.receive_message().queue_url(&dlq).send().await.unwrap();
    assert!(dead.messages().is_empty(), "nothing dead-lettered");
    // Each place's copy was started under its admission lease, given back afterwards.
    let items = ddb.scan().table_name(&table).send().await.unwrap();
    let places: Vec<String> =
        items.items().iter().filter_map(|i| i.get("place")?.as_s().ok().cloned()).collect::<Vec<_>>();
    assert_eq!(places.len(), DESTINATIONS.len(), "{places:?}");
    for item in items.items() {
        assert_eq!(item.get("holder").and_then(|h| h.as_s().ok()).map(String::as_str), Some(""), "{item:?}");
        assert!(item.contains_key("released_at"), "{item:?}");
    }

    let calls = emulator.calls().unwrap();
    eprintln!("emulator API calls for 3 copies (1 direct + 2 duplicated events): {calls}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_images_are_dead_lettered_with_their_reason_and_foreign_images_skipped() {
    let emulator = Emulator::start(0.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "dl", 2).await.unwrap();
    let replicator = Replicator::new(
        Arc::new(settings()),
        AwsEc2Regions::new(sdk.clone()),
        AwsQueue::new(sqs.clone(), work.clone(), Some(dlq.clone())),
    );
    let account = AccountId::parse(ACCOUNT).unwrap();

    let missing = "ami-0000000000000dead";
    sqs.send_message().queue_url(&work).message_body(event(missing, "us-east-1").to_string()).send().await.unwrap();
    // An image owned by another account (moto's public catalogue) is skipped.
    let foreign = ami_replicator::local::EMULATOR_BASE_IMAGE;
    sqs.send_message().queue_url(&work).message_body(event(foreign, "us-east-1").to_string()).send().await.unwrap();
    sqs.send_message().queue_url(&work).message_body("{\"garbage\": true}").send().await.unwrap();
    drain_queue(&sqs, &work, &replicator, &account, Duration::from_secs(60)).await.unwrap();

    let reasons = ami_replicator::local::dead_letter_reasons(&sqs, &dlq).await.unwrap();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains(missing) && r.contains("not found")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("undecodable")), "{reasons:?}");
    for region in DESTINATIONS {
        assert!(copies_of(&sdk, region, foreign).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_storm_loses_nothing_and_every_invocation_answers_in_time() {
    // Issue 28: 30% of DescribeImages, CopyImage and ModifyImageAttribute answered RequestLimitExceeded, as a busy
    // account sees. The SDK (standard mode, 3 attempts) retries a call a little; the product paces the rest with
    // its own backoff. Every invocation had Lambda's deadline (120 s) and answered well before it; nothing lost.
    let emulator = Emulator::start(1.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "storm", 5).await.unwrap();
    let east = ec2_client(&sdk, "us-east-1");
    let mut sources = Vec::new();
    for n in 0..3 {
        sources.push(seed_source_image(&east, &format!("storm-{n}"), &[], &[]).await.unwrap());
    }
    let replicator = Replicator::new(
        Arc::new(DeploymentSettings {
            rule: RuleSettings {
                target_regions: vec![Region::parse("eu-west-1").unwrap(), Region::parse("us-west-2").unwrap()],
                ..settings().rule.clone()
            },
            ..settings()
        }),
        AwsEc2Regions::new(sdk.clone()),
        AwsQueue::new(sqs.clone(), work.clone(), Some(dlq.clone())),
    );
    let account = AccountId::parse(ACCOUNT).unwrap();
    ami_replicator::local::set_throttle_rate(&emulator, 0.3).unwrap();
    for source in &sources {
        sqs.send_message().queue_url(&work).message_body(event(source, "us-east-1").to_string()).send().await.unwrap();
    }
    let summary = drain_queue(&sqs, &work, &replicator, &account, Duration::from_secs(240)).await.unwrap();
    ami_replicator::local::set_throttle_rate(&emulator, 0.0).unwrap();
    let calls = emulator.calls().unwrap();
    eprintln!("throttling storm (30%): {summary:?}; calls {calls}");
    assert!(summary.longest_invocation_ms < 120_000, "{summary:?}");
    assert!(calls["Throttled"].as_u64().unwrap_or(0) > 0, "the storm throttled calls: {calls}");
    let reasons = ami_replicator::local::dead_letter_reasons(&sqs, &dlq).await.unwrap();
    assert!(reasons.is_empty(), "{reasons:?}");
    for source in &sources {
        for region in ["eu-west-1", "us-west-2"] {
            let copies = copies_of(&sdk, region, source).await;
            assert_eq!(copies.len(), 1, "{source} -> {region}");
            let shared = copies[0].tags().iter().any(|t| t.key() == Some(ami_replicator::core::provenance::SHARED_TAG));
            assert!(shared, "{source} -> {region}: shared");
        }
    }
}

/// EC2's own actions among the emulator's counts (queue, table and STS calls are not EC2's).
const EC2_ACTIONS: [&str; 8] = [
    "DescribeImages",
    "DescribeImageAttribute",
    "CopyImage",
    "ModifyImageAttribute",
    "CreateTags",
    "DeregisterImage",
    "ModifySnapshotAttribute",
    "EnableImageDeprecation",
];

/// Issue 29: a small throttled run end to end, the production handler over the emulator's EC2, SQS and DynamoDB
/// (24 copies, 8 sources to 3 regions, a limit of 3 per place, 10% of DescribeImages, CopyImage and
/// ModifyImageAttribute throttled): the jobs that find a place full wait in its waiting list; every copy is made
/// once and shared. The EC2 calls per copy (throttled ones included) are printed: 8.3 in one run, against the
/// issue's target of 4 (docs/performance.md says what they are); the bound below catches a regression.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_throttled_run_waits_in_the_table_and_needs_few_ec2_calls_per_copy() {
    let emulator = Emulator::start(2.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "small", 5).await.unwrap();
    let east = ec2_client(&sdk, "us-east-1");
    let mut sources = Vec::new();
    for n in 0..8 {
        sources.push(seed_source_image(&east, &format!("small-{n}"), &[], &[]).await.unwrap());
    }
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = create_admission_table(&ddb, "small-admission").await.unwrap();
    let replicator = Replicator::new(
        Arc::new(DeploymentSettings {
            max_copies_per_region: 3,
            step: JobLimits { poll_seconds: 2, capacity_max_seconds: 2, ..JobLimits::default() },
            rule: RuleSettings {
                target_regions: DESTINATIONS.iter().map(|r| Region::parse(r).unwrap()).collect(),
                ..settings().rule.clone()
            },
            ..settings()
        }),
        AwsEc2Regions::new(sdk.clone()),
        AwsQueue::new(sqs.clone(), work.clone(), Some(dlq.clone())),
    )
    .with_leases(Arc::new(ami_replicator::aws::leases::AwsLeases::new(ddb.clone(), table.clone())));
    let account = AccountId::parse(ACCOUNT).unwrap();
    let before = emulator.calls().unwrap();
    ami_replicator::local::set_throttle_rate(&emulator, 0.1).unwrap();
    for source in &sources {
        sqs.send_message().queue_url(&work).message_body(event(source, "us-east-1").to_string()).send().await.unwrap();
    }
    // Until nothing comes for 20 s (ten poll periods): a place whose jobs still waited while its own copies were in
    // flight has its safety-net wake-up (WAKE_SAFETY_SECONDS, 300 s) on the queue, which is not work left.
    let quiet = Duration::from_secs(20);
    let summary = drain_queue_quiet(&sqs, &work, &replicator, &account, Duration::from_secs(240), quiet).await.unwrap();
    ami_replicator::local::set_throttle_rate(&emulator, 0.0).unwrap();
    let calls = emulator.calls().unwrap();
    let count = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    let ec2: u64 = EC2_ACTIONS.iter().map(|a| count(&calls, a) - count(&before, a)).sum();
    let table_calls: u64 =
        ["UpdateItem", "GetItem", "PutItem"].iter().map(|a| count(&calls, a) - count(&before, a)).sum();
    let per_copy = ec2 as f64 / 24.0;
    eprintln!(
        "small throttled run, 24 copies at a limit of 3: {ec2} EC2 calls ({per_copy:.2} per copy), {table_calls} \
         table calls, {} throttled; {summary:?}; calls {calls}",
        count(&calls, "Throttled") - count(&before, "Throttled")
    );
    let reasons = ami_replicator::local::dead_letter_reasons(&sqs, &dlq).await.unwrap();
    assert!(reasons.is_empty(), "{reasons:?}");
    for source in &sources {
        for region in DESTINATIONS {
            let copies = copies_of(&sdk, region, source).await;
            assert_eq!(copies.len(), 1, "{source} -> {region}");
            let shared = copies[0].tags().iter().any(|t| t.key() == Some(ami_replicator::core::provenance::SHARED_TAG));
            assert!(shared, "{source} -> {region}: shared");
        }
    }
    // Jobs waited in the places' items, and none is left there.
    let items = ddb.scan().table_name(&table).send().await.unwrap();
    assert!(items.items().iter().all(|i| !i.keys().any(|k| k.starts_with("w:"))), "{:?}", items.items());
    assert!(count(&calls, "UpdateItem") > count(&before, "UpdateItem"), "the waiting lists were used");
    assert!(per_copy <= 10.0, "{per_copy:.2} EC2 calls per copy");
}
