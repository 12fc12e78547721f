//! What happens to copies after replication (issue 19), end to end over the emulator: onward sharing of a copy's
//! snapshots (SHARE_SNAPSHOTS) with the accounts it is shared with, read back with DescribeSnapshotAttribute; and
//! retention (RETAIN_COPIES) retiring a family's older copies and their snapshots, never one in use.

use ami_replicator::config::Config;
use ami_replicator::core::ids::AccountId;
use ami_replicator::entry;
use ami_replicator::local::{
    copies_of, create_queues, dead_letter_reasons, drain_queue, ec2_client, register_image_references,
    seed_source_image, Emulator, EMULATOR_ACCOUNT as A,
};
use aws_sdk_ec2::types::SnapshotAttributeName;
use std::collections::HashMap;
use std::time::Duration;

const PARTNER: &str = "444455556666";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounts_a_copy_is_shared_with_may_create_volumes_from_its_snapshots() {
    let emulator = Emulator::start(0.5).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "onward", 2).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("TARGET_REGIONS", "eu-west-1".to_string()),
        ("WORK_QUEUE_URL", work.clone()),
        ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
        ("COPY_POLL_SECONDS", "1".to_string()),
        ("SHARE_WITH_ACCOUNTS", PARTNER.to_string()),
        ("SHARE_SNAPSHOTS", "true".to_string()),
    ]);
    let config = Config::from_lookup(&|k| env.get(k).cloned()).unwrap();
    let replicator = ami_replicator::aws::replicator(&sdk, config).await;
    let source = seed_source_image(&ec2_client(&sdk, "us-east-1"), "golden-onward", &[], &[]).await.unwrap();
    let home = AccountId::parse(A).unwrap();
    let item = serde_json::json!({"image_id": source, "source_region": "us-east-1"});
    entry::handle(&replicator, item, &home).await.unwrap();
    drain_queue(&sqs, &work, &replicator, &home, Duration::from_secs(120)).await.unwrap();
    let reasons = dead_letter_reasons(&sqs, &dlq).await.unwrap();
    assert!(reasons.is_empty(), "{reasons:?}");

    let copies = copies_of(&sdk, "eu-west-1", &source).await.unwrap();
    assert_eq!(copies.len(), 1);
    let snapshot = copies[0].block_device_mappings()[0].ebs().unwrap().snapshot_id().unwrap().to_string();
    let attribute = ec2_client(&sdk, "eu-west-1")
        .describe_snapshot_attribute()
        .snapshot_id(&snapshot)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .unwrap();
    let users: Vec<&str> = attribute.create_volume_permissions().iter().filter_map(|p| p.user_id()).collect();
    assert_eq!(users, [PARTNER], "the partner may copy it onward");
    assert!(attribute.create_volume_permissions().iter().all(|p| p.group().is_none()), "never a group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_retires_a_familys_older_copies_and_their_snapshots_never_one_in_use() {
    let emulator = Emulator::start(0.5).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "retain", 2).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("TARGET_REGIONS", "eu-west-1".to_string()),
        ("WORK_QUEUE_URL", work.clone()),
        ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
        ("COPY_POLL_SECONDS", "1".to_string()),
        ("RETAIN_COPIES", "2".to_string()),
        ("FAMILY_TAG", "Family".to_string()),
    ]);
    let config = Config::from_lookup(&|k| env.get(k).cloned()).unwrap();
    let replicator = ami_replicator::aws::replicator(&sdk, config).await;
    let home = AccountId::parse(A).unwrap();
    let east = ec2_client(&sdk, "us-east-1");
    let eu = ec2_client(&sdk, "eu-west-1");
    let mut copies = Vec::new();
    for build in 1..=4 {
        let source = seed_source_image(&east, &format!("web-{build}"), &[("Family", "web")], &[]).await.unwrap();
        let item = serde_json::json!({"image_id": source, "source_region": "us-east-1"});
        entry::handle(&replicator, item, &home).await.unwrap();
        drain_queue(&sqs, &work, &replicator, &home, Duration::from_secs(120)).await.unwrap();
        let found = copies_of(&sdk, "eu-west-1", &source).await.unwrap();
        assert_eq!(found.len(), 1, "web-{build} copied");
        let snapshot = found[0].block_device_mappings()[0].ebs().unwrap().snapshot_id().unwrap().to_string();
        copies.push((source, found[0].image_id().unwrap().to_string(), snapshot));
        if build == 2 {
            // Something launches web-1's copy: it is never retired.
            let arn = format!("arn:aws:ec2:eu-west-1:{A}:instance/i-0123456789abcdef0");
            register_image_references(&emulator, &copies[0].1, &[&format!("ec2:Instance {arn}")]).unwrap();
        }
        // CreationDate has one-second resolution: the next build is newer.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert!(dead_letter_reasons(&sqs, &dlq).await.unwrap().is_empty());
    let alive = |i: usize| {
        let (source, _, _) = &copies[i];
        let sdk = &sdk;
        async move { !copies_of(sdk, "eu-west-1", source).await.unwrap().is_empty() }
    };
    assert!(alive(0).await, "web-1's copy is in use: kept");
    assert!(!alive(1).await, "web-2's copy retired (older than the 2 newest)");
    assert!(alive(2).await && alive(3).await, "the 2 newest stay");
    let gone = eu.describe_snapshots().snapshot_ids(&copies[1].2).send().await;
    let remaining = gone.map(|o| o.snapshots().len()).unwrap_or(0);
    assert_eq!(remaining, 0, "web-2's copy's snapshot deleted");
    let kept = eu.describe_snapshots().snapshot_ids(&copies[0].2).send().await.unwrap();
    assert_eq!(kept.snapshots().len(), 1, "the kept copy's snapshot stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_copy_becomes_a_new_default_version_of_the_places_launch_template() {
    use aws_sdk_ec2::types::RequestLaunchTemplateData;
    let emulator = Emulator::start(0.5).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "templates", 2).await.unwrap();
    let eu = ec2_client(&sdk, "eu-west-1");
    eu.create_launch_template()
        .launch_template_name("web")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id("ami-0000000000000b0e0")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("TARGET_REGIONS", "eu-west-1".to_string()),
        ("WORK_QUEUE_URL", work.clone()),
        ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
        ("COPY_POLL_SECONDS", "1".to_string()),
        ("LAUNCH_TEMPLATES", "eu-west-1=web".to_string()),
        ("LAUNCH_TEMPLATE_SET_DEFAULT", "true".to_string()),
    ]);
    let config = Config::from_lookup(&|k| env.get(k).cloned()).unwrap();
    let replicator = ami_replicator::aws::replicator(&sdk, config).await;
    let home = AccountId::parse(A).unwrap();
    let source = seed_source_image(&ec2_client(&sdk, "us-east-1"), "web-1", &[], &[]).await.unwrap();
    let item = serde_json::json!({"image_id": source, "source_region": "us-east-1"});
    entry::handle(&replicator, item, &home).await.unwrap();
    drain_queue(&sqs, &work, &replicator, &home, Duration::from_secs(120)).await.unwrap();
    assert!(dead_letter_reasons(&sqs, &dlq).await.unwrap().is_empty());
    let copy = copies_of(&sdk, "eu-west-1", &source).await.unwrap()[0].image_id().unwrap().to_string();

    let versions = eu.describe_launch_template_versions().launch_template_name("web").send().await.unwrap();
    let mut found: Vec<(i64, Option<String>, bool)> = versions
        .launch_template_versions()
        .iter()
        .map(|v| {
            let image = v.launch_template_data().and_then(|d| d.image_id()).map(str::to_string);
            (v.version_number().unwrap_or(0), image, v.default_version() == Some(true))
        })
        .collect();
    found.sort();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[1], (2, Some(copy), true), "the copy's version, the default now");
    assert!(!found[0].2);
}

/// An "EC2 AMI State Change" event of the emulator's account.
fn state_change(image: &str, state: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": format!("{image}-{state}"), "detail-type": "EC2 AMI State Change",
        "source": "aws.ec2", "account": A, "time": "2026-11-29T10:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:ec2:us-east-1::image/{image}")],
        "detail": {"ImageId": image, "State": state}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_are_disabled_with_their_source_and_enabled_and_shared_again_with_it() {
    let emulator = Emulator::start(0.5).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "follow", 2).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("TARGET_REGIONS", "eu-west-1,us-west-2".to_string()),
        ("WORK_QUEUE_URL", work.clone()),
        ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
        ("COPY_POLL_SECONDS", "1".to_string()),
        ("SHARE_WITH_ACCOUNTS", PARTNER.to_string()),
        ("DISABLE_COPIES_WITH_SOURCE", "true".to_string()),
    ]);
    let config = Config::from_lookup(&|k| env.get(k).cloned()).unwrap();
    let replicator = ami_replicator::aws::replicator(&sdk, config).await;
    let home = AccountId::parse(A).unwrap();
    let east = ec2_client(&sdk, "us-east-1");
    let source = seed_source_image(&east, "golden-follow", &[], &[]).await.unwrap();
    let run = |event: serde_json::Value| {
        let (replicator, sqs, work, home) = (&replicator, &sqs, &work, &home);
        async move {
            entry::handle(replicator, event, home).await.unwrap();
            drain_queue(sqs, work, replicator, home, Duration::from_secs(120)).await.unwrap();
        }
    };
    run(state_change(&source, "available")).await;
    let copy_in = |region: &'static str| {
        let (sdk, source) = (&sdk, &source);
        async move {
            let found = copies_of(sdk, region, source).await.unwrap();
            assert_eq!(found.len(), 1, "one copy in {region}");
            let copy = found[0].image_id().unwrap().to_string();
            let state = found[0].state().unwrap().as_str().to_string();
            let attribute = ec2_client(sdk, region)
                .describe_image_attribute()
                .image_id(&copy)
                .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
                .send()
                .await
                .unwrap();
            let users: Vec<String> =
                attribute.launch_permissions().iter().filter_map(|p| p.user_id().map(String::from)).collect();
            (copy, state, users)
        }
    };
    let (eu_copy, _, users) = copy_in("eu-west-1").await;
    assert_eq!(users, [PARTNER]);
    // Something launches the us-west-2 copy: it stays enabled.
    let (us_copy, _, _) = copy_in("us-west-2").await;
    let arn = format!("arn:aws:ec2:us-west-2:{A}:launch-template/lt-0123456789abcdef0");
    register_image_references(&emulator, &us_copy, &[&format!("ec2:LaunchTemplate {arn}")]).unwrap();

    east.disable_image().image_id(&source).send().await.unwrap();
    run(state_change(&source, "disabled")).await;
    let (copy, state, users) = copy_in("eu-west-1").await;
    assert_eq!((copy.as_str(), state.as_str()), (eu_copy.as_str(), "disabled"), "the copy follows its source");
    assert!(users.is_empty(), "DisableImage took its launch permissions: {users:?}");
    let (_, state, users) = copy_in("us-west-2").await;
    assert_eq!((state.as_str(), users.len()), ("available", 1), "the copy in use stays enabled and shared");

    east.enable_image().image_id(&source).send().await.unwrap();
    run(state_change(&source, "available")).await;
    let (copy, state, users) = copy_in("eu-west-1").await;
    assert_eq!((copy.as_str(), state.as_str()), (eu_copy.as_str(), "available"), "enabled again, no new copy");
    assert_eq!(users, [PARTNER], "its launch permissions applied again");
    let reasons = dead_letter_reasons(&sqs, &dlq).await.unwrap();
    assert!(reasons.is_empty(), "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_deprecated_while_its_copy_runs_gets_a_copy_deprecated_at_once() {
    // Issue 28: EC2 (and the emulator) refuse a deprecation time in the past.
    let emulator = Emulator::start(2.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "deprecated", 2).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("TARGET_REGIONS", "eu-west-1".to_string()),
        ("WORK_QUEUE_URL", work.clone()),
        ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
        ("COPY_POLL_SECONDS", "1".to_string()),
    ]);
    let config = Config::from_lookup(&|k| env.get(k).cloned()).unwrap();
    let replicator = ami_replicator::aws::replicator(&sdk, config).await;
    let east = ec2_client(&sdk, "us-east-1");
    let source = seed_source_image(&east, "golden-deprecated", &[], &[]).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let at = aws_smithy_types::DateTime::from_secs;
    let past = east.enable_image_deprecation().image_id(&source).deprecate_at(at(now - 3600)).send().await;
    let code = past.map_err(|e| aws_sdk_ec2::error::ProvideErrorMetadata::code(&e).map(str::to_string));
    assert_eq!(code.unwrap_err().as_deref(), Some("InvalidParameterValue"), "a time in the past is refused");
    // The source is deprecated 2 s from now: its copy (pending 2 s) is shared after that time has passed.
    east.enable_image_deprecation().image_id(&source).deprecate_at(at(now + 2)).send().await.unwrap();
    let home = AccountId::parse(A).unwrap();
    let item = serde_json::json!({"image_id": source, "source_region": "us-east-1"});
    entry::handle(&replicator, item, &home).await.unwrap();
    drain_queue(&sqs, &work, &replicator, &home, Duration::from_secs(120)).await.unwrap();
    assert!(dead_letter_reasons(&sqs, &dlq).await.unwrap().is_empty(), "the share completed");
    let copies = copies_of(&sdk, "eu-west-1", &source).await.unwrap();
    assert_eq!(copies.len(), 1);
    let deprecated = copies[0].deprecation_time().and_then(ami_replicator::core::time::parse_rfc3339);
    assert!(deprecated.is_some_and(|t| t > now + 2 && t % 60 == 0), "deprecated at once: {deprecated:?}");
    let shared = copies[0].tags().iter().any(|t| t.key() == Some(ami_replicator::core::provenance::SHARED_TAG));
    assert!(shared, "marked shared");
}
