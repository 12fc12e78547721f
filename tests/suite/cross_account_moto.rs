//! Cross-account replication end to end over the emulator (moto keeps resources per account and maps
//! credentials from STS AssumeRole to the role's account; scripts/emulator.py adds cross-account CopyImage,
//! a role that refuses the replicator, and Image Builder's GetImage).

use ami_replicator::aws::imagebuilder::AwsImageBuilder;
use ami_replicator::aws::{ec2::AwsEc2Regions, sqs::AwsQueue};
use ami_replicator::core::ids::{AccountId, Region};
use ami_replicator::core::image::LaunchPermission;
use ami_replicator::core::provenance::{SOURCE_IMAGE_TAG, SOURCE_REGION_TAG};
use ami_replicator::core::replication_rules::RuleSettings;
use ami_replicator::core::share::ShareSettings;
use ami_replicator::core::step::JobLimits;
use ami_replicator::entry;
use ami_replicator::local::{
    assumed_sdk_config, copies_of, copy_records, create_queues, dead_letter_reasons, drain_queue, ec2_client,
    register_image_build, seed_source_image, Emulator, EMULATOR_ACCOUNT as A,
};
use ami_replicator::service::{DeploymentSettings, Replicator};
use aws_sdk_ec2::types::{ImageAttributeName, SnapshotAttributeName};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const B: &str = "222222222222";
const B_ROLE: &str = "arn:aws:iam::222222222222:role/ami-replicator-target";
const C: &str = "333333333333";
const C_ROLE: &str = "arn:aws:iam::333333333333:role/ami-replicator-untrusted";
const PARTNER: &str = "444455556666";

fn acct(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

fn settings(targets: &[&str]) -> DeploymentSettings {
    DeploymentSettings {
        step: JobLimits { poll_seconds: 1, ..JobLimits::default() },
        rule: RuleSettings {
            target_regions: vec![Region::parse("eu-west-1").unwrap(), Region::parse("us-west-2").unwrap()],
            target_accounts: targets.iter().map(|a| acct(a)).collect(),
            share: ShareSettings {
                copy_source_permissions: true,
                extra: vec![LaunchPermission::Account(acct(PARTNER))],
                allow_public: false,
            },
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    }
}

fn event(image: &str, state: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "EC2 AMI State Change",
        "source": "aws.ec2", "account": A, "time": "2026-11-29T10:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:ec2:us-east-1::image/{image}")],
        "detail": {"RequestId": "d9f1c0d6", "ImageId": image, "State": state, "ErrorMessage": ""}
    })
}

fn roles(entries: &[(&str, &str)]) -> BTreeMap<AccountId, String> {
    entries.iter().map(|(a, r)| (acct(a), r.to_string())).collect()
}

async fn launch_users(sdk: &aws_config::SdkConfig, region: &str, image: &str) -> Vec<String> {
    let perms = ec2_client(sdk, region)
        .describe_image_attribute()
        .image_id(image)
        .attribute(ImageAttributeName::LaunchPermission)
        .send()
        .await
        .unwrap();
    perms.launch_permissions().iter().filter_map(|p| p.user_id().map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_in_one_account_reaches_regions_of_both_accounts_owned_by_each() {
    let emulator = Emulator::start(1.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "xa", 2).await.unwrap();
    let source = seed_source_image(&ec2_client(&sdk, "us-east-1"), "golden-2026.11", &[("team", "platform")], &[])
        .await
        .unwrap();
    let replicator = Replicator::new(
        Arc::new(settings(&[B])),
        AwsEc2Regions::with_target_roles(sdk.clone(), &roles(&[(B, B_ROLE)])).await,
        AwsQueue::new(sqs.clone(), work.clone(), Some(dlq.clone())),
    )
    .with_records(copy_records(&sdk, "records").await);
    let home = acct(A);
    entry::handle(&replicator, event(&source, "available"), &home).await.unwrap();
    drain_queue(&sqs, &work, &replicator, &home, Duration::from_secs(120)).await.unwrap();
    let calls = emulator.calls().unwrap();

    let reasons = dead_letter_reasons(&sqs, &dlq).await.unwrap();
    assert!(reasons.is_empty(), "{reasons:?}");
    let b_sdk = assumed_sdk_config(&sdk, B_ROLE).await;
    for region in ["eu-west-1", "us-west-2"] {
        let copies = copies_of(&sdk, region, &source).await.unwrap();
        assert_eq!(copies.len(), 1, "{region}: one copy owned by A");
        assert_eq!(copies[0].owner_id(), Some(A));
        let users = launch_users(&sdk, region, copies[0].image_id().unwrap()).await;
        assert_eq!(users, vec![PARTNER.to_string()], "{region}: A's copy is not shared with B");
    }
    assert!(copies_of(&sdk, "us-east-1", &source).await.unwrap().is_empty(), "A gets no copy in the source region");
    for region in ["us-east-1", "eu-west-1", "us-west-2"] {
        let copies = copies_of(&b_sdk, region, &source).await.unwrap();
        assert_eq!(copies.len(), 1, "{region}: one copy owned by B");
        let copy = &copies[0];
        assert_eq!(copy.owner_id(), Some(B), "{region}");
        assert_eq!(copy.state().map(|s| s.as_str()), Some("available"));
        let tag = |k: &str| copy.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
        assert_eq!(tag(SOURCE_IMAGE_TAG).as_deref(), Some(source.as_str()));
        assert_eq!(tag(SOURCE_REGION_TAG).as_deref(), Some("us-east-1"));
        assert_eq!(tag("team").as_deref(), Some("platform"), "the owner's tags are copied");
        assert_eq!(launch_users(&b_sdk, region, copy.image_id().unwrap()).await, vec![PARTNER.to_string()]);
    }
    // The source account shared what B's copies needed: a launch permission and the snapshot.
    let east = ec2_client(&sdk, "us-east-1");
    assert!(launch_users(&sdk, "us-east-1", &source).await.contains(&B.to_string()));
    let image = east.describe_images().image_ids(&source).send().await.unwrap();
    let snapshot = image.images()[0].block_device_mappings()[0].ebs().unwrap().snapshot_id().unwrap().to_string();
    let volume = east
        .describe_snapshot_attribute()
        .snapshot_id(&snapshot)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .unwrap();
    let grantees: Vec<&str> = volume.create_volume_permissions().iter().filter_map(|p| p.user_id()).collect();
    assert_eq!(grantees, vec![B]);

    let count = |k: &str| calls.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let total: u64 = [
        "DescribeImages",
        "DescribeImageAttribute",
        "CopyImage",
        "ModifyImageAttribute",
        "ModifySnapshotAttribute",
        "SendMessageBatch",
        "SendMessage",
        "AssumeRole",
    ]
    .iter()
    .map(|k| count(k))
    .sum();
    assert_eq!(count("CopyImage"), 5, "{calls}");
    assert_eq!(count("AssumeRole"), 1, "one session for B, cached across its regions: {calls}");
    eprintln!(
        "cross-account replication, 5 copies (2 in A, 3 in B): {total} calls, {:.1} per copy: {calls}",
        total as f64 / 5.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_role_fails_its_account_alone_and_deregistering_the_source_stops_pending_copies() {
    // Copies stay pending long enough for the source to be deregistered while they are in flight.
    let emulator = Emulator::start(20.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "life", 2).await.unwrap();
    let east = ec2_client(&sdk, "us-east-1");
    let source = seed_source_image(&east, "golden-2026.12", &[], &[]).await.unwrap();
    let replicator = Replicator::new(
        Arc::new(settings(&[B, C])),
        AwsEc2Regions::with_target_roles(sdk.clone(), &roles(&[(B, B_ROLE), (C, C_ROLE)])).await,
        AwsQueue::new(sqs.clone(), work.clone(), Some(dlq.clone())),
    )
    .with_records(copy_records(&sdk, "records").await);
    let home = acct(A);
    entry::handle(&replicator, event(&source, "available"), &home).await.unwrap();
    // One batch starts the copies (the continuations wait in the queue, delayed).
    let received = sqs.receive_message().queue_url(&work).max_number_of_messages(10).send().await.unwrap();
    let records: Vec<serde_json::Value> = received
        .messages()
        .iter()
        .map(
            |m| serde_json::json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body()}),
        )
        .collect();
    entry::handle(&replicator, serde_json::json!({ "Records": records }), &home).await.unwrap();
    for m in received.messages() {
        sqs.delete_message().queue_url(&work).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
    }
    let b_sdk = assumed_sdk_config(&sdk, B_ROLE).await;
    let pending = copies_of(&b_sdk, "eu-west-1", &source).await.unwrap();
    assert_eq!(pending[0].state().map(|s| s.as_str()), Some("pending"));

    east.deregister_image().image_id(&source).send().await.unwrap();
    entry::handle(&replicator, event(&source, "deregistered"), &home).await.unwrap();
    drain_queue(&sqs, &work, &replicator, &home, Duration::from_secs(60)).await.unwrap();

    for region in ["eu-west-1", "us-west-2"] {
        assert!(copies_of(&sdk, region, &source).await.unwrap().is_empty(), "A's pending copy in {region} stopped");
    }
    for region in ["us-east-1", "eu-west-1", "us-west-2"] {
        assert!(copies_of(&b_sdk, region, &source).await.unwrap().is_empty(), "B's pending copy in {region} stopped");
    }
    let reasons = dead_letter_reasons(&sqs, &dlq).await.unwrap();
    assert_eq!(reasons.len(), 3, "only C's three places failed, nothing for the stopped copies: {reasons:?}");
    for reason in &reasons {
        assert!(
            reason.contains(C) && reason.contains("AssumeRoleDenied") && reason.contains("sts:AssumeRole"),
            "{reason}"
        );
        assert!(reason.contains(C_ROLE), "the reason names the role: {reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_builder_build_is_replicated_through_get_image() {
    let emulator = Emulator::start(0.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "ib", 2).await.unwrap();
    let source = seed_source_image(&ec2_client(&sdk, "us-east-1"), "built-by-image-builder", &[], &[]).await.unwrap();
    let arn = "arn:aws:imagebuilder:us-east-1:123456789012:image/golden/2026.11.29/1";
    register_image_build(&emulator, arn, &[("us-east-1", &source, A)]).unwrap();
    let replicator = Replicator::new(
        Arc::new(settings(&[])),
        AwsEc2Regions::new(sdk.clone()),
        AwsQueue::new(sqs.clone(), work.clone(), Some(dlq.clone())),
    )
    .with_image_builder(AwsImageBuilder::new(aws_sdk_imagebuilder::Client::new(&sdk)));
    let home = acct(A);
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/events/imagebuilder-available.json"))
        .unwrap()
        .replace("arn:aws:imagebuilder:us-east-1:123456789012:image/golden/1.0.0/1", arn);
    entry::handle(&replicator, serde_json::from_str(&text).unwrap(), &home).await.unwrap();
    drain_queue(&sqs, &work, &replicator, &home, Duration::from_secs(60)).await.unwrap();
    for region in ["eu-west-1", "us-west-2"] {
        assert_eq!(copies_of(&sdk, region, &source).await.unwrap().len(), 1, "{region}");
    }
    assert!(dead_letter_reasons(&sqs, &dlq).await.unwrap().is_empty());
    assert_eq!(emulator.calls().unwrap()["GetImage"], 1);
}

/// The images of B in `region` whose provenance tag names `source` (genuine or claimed), by id.
async fn tagged_in_b(b_sdk: &aws_config::SdkConfig, region: &str, source: &str) -> Vec<aws_sdk_ec2::types::Image> {
    copies_of(b_sdk, region, source).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_accounts_copies_carry_the_sources_tags_and_retention_retires_there_never_a_claimed_copy() {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let emulator = Emulator::start(0.5).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "xa-tags", 2).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = ami_replicator::local::create_admission_table(&ddb, "xa-tags-admission").await.unwrap();
    let env: std::collections::HashMap<&str, String> = std::collections::HashMap::from([
        ("TARGET_REGIONS", "eu-west-1".to_string()),
        ("TARGET_ACCOUNTS", format!("{B}={B_ROLE}")),
        ("WORK_QUEUE_URL", work.clone()),
        ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
        ("ADMISSION_TABLE", table),
        ("COPY_POLL_SECONDS", "1".to_string()),
        ("RETAIN_COPIES", "1".to_string()),
        ("FAMILY_TAG", "Family".to_string()),
    ]);
    let config = ami_replicator::config::Config::from_lookup(&|k| env.get(k).cloned()).unwrap();
    let replicator = ami_replicator::aws::replicator(&sdk, config).await;
    let home = acct(A);
    let east = ec2_client(&sdk, "us-east-1");
    let b_sdk = assumed_sdk_config(&sdk, B_ROLE).await;
    let tags = [("Family", "web"), ("team", "platform"), ("ami-replicator:gave-up", "forged-on-the-source")];
    let first = seed_source_image(&east, "web-1", &tags, &[]).await.unwrap();
    // B's own images claiming to be copies of web-1 (with its family): a hand-made one in each of B's places.
    let mut claimed = Vec::new();
    for region in ["us-east-1", "eu-west-1"] {
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Image)
            .tags(Tag::builder().key(SOURCE_IMAGE_TAG).value(&first).build())
            .tags(Tag::builder().key(SOURCE_REGION_TAG).value("us-east-1").build())
            .tags(Tag::builder().key("Family").value("web").build())
            .build();
        let b = ec2_client(&b_sdk, region);
        let run = b.run_instances().image_id("ami-12c6146b").min_count(1).max_count(1).send().await.unwrap();
        let instance = run.instances()[0].instance_id().unwrap().to_string();
        let image = b.create_image().instance_id(&instance).name("b-own").tag_specifications(spec).send().await;
        claimed.push((region, image.unwrap().image_id().unwrap().to_string()));
    }
    let mut copies = Vec::new();
    for source in [first.clone(), seed_source_image(&east, "web-2", &tags, &[]).await.unwrap()] {
        entry::handle(&replicator, event(&source, "available"), &home).await.unwrap();
        drain_queue(&sqs, &work, &replicator, &home, Duration::from_secs(120)).await.unwrap();
        copies.push(source);
        // CreationDate has one-second resolution: the next build is newer.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert!(dead_letter_reasons(&sqs, &dlq).await.unwrap().is_empty());
    for region in ["us-east-1", "eu-west-1"] {
        // web-2's copy in B: made by B's role, with the source's user tags written by the product (CopyImageTags
        // would have given it none), never the product's own tags from the source.
        let newest = tagged_in_b(&b_sdk, region, &copies[1]).await;
        assert_eq!(newest.len(), 1, "{region}: {newest:?}");
        let tag = |key: &str| newest[0].tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value());
        assert_eq!((tag("Family"), tag("team")), (Some("web"), Some("platform")), "{region}");
        assert_eq!(tag("ami-replicator:gave-up"), None, "{region}: the product's tags on a source are never copied");
        assert_eq!(tag("ami-replicator:shared"), Some("true"), "{region}: shared");
        assert_eq!(newest[0].source_image_id(), Some(copies[1].as_str()), "{region}: EC2's record");
        // web-1's copy in B was retired (RETAIN_COPIES=1 of family web); the image claiming to be one stays.
        let older: Vec<String> =
            tagged_in_b(&b_sdk, region, &first).await.iter().filter_map(|i| i.image_id().map(str::to_string)).collect();
        let (_, claim) = claimed.iter().find(|(r, _)| *r == region).unwrap();
        assert_eq!(older, vec![claim.clone()], "{region}: the genuine copy retired, the claimed one untouched");
        let users = launch_users(&b_sdk, region, claim).await;
        assert!(users.is_empty(), "{region}: the claimed copy is shared with nobody: {users:?}");
    }
}
