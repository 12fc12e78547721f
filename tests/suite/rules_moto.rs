//! Replication rules end to end over the emulator: three rules (different regions, a target account, keys) read
//! by the function's configuration code, images matched by their tags and names as EC2 shows them, an image no
//! rule matches left alone, and a work item that tries to widen its rule dead-lettered.

use ami_replicator::aws::{ec2::AwsEc2Regions, leases::AwsLeases, sqs::AwsQueue};
use ami_replicator::config::Config;
use ami_replicator::core::ids::{AccountId, ImageId, Region};
use ami_replicator::core::replication_rules::RULE_TAG;
use ami_replicator::core::status::table;
use ami_replicator::entry;
use ami_replicator::local::{
    assumed_sdk_config, copies_of, create_admission_table, create_queues, dead_letter_reasons, drain_queue, ec2_client,
    seed_source_image, Emulator, EMULATOR_ACCOUNT as A,
};
use ami_replicator::service::Replicator;
use ami_replicator::status::status;
use aws_sdk_ec2::types::Image;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const B: &str = "222222222222";
const B_KEY: &str = "arn:aws:kms:ap-southeast-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const RULES: &str = r#"{"rules": [
  {"name": "windows", "match": {"tags": {"Platform": "windows"}},
   "regions": ["eu-west-1"], "encrypt": true, "kms_keys": {"eu-west-1": "alias/windows-images"}},
  {"name": "golden", "match": {"tags": {"Kind": ["base", "golden"]}},
   "regions": ["ap-southeast-2"], "encrypt": true,
   "accounts": {"222222222222": "arn:aws:iam::222222222222:role/ami-replicator-target"},
   "kms_keys": {"222222222222/ap-southeast-2": "arn:aws:kms:ap-southeast-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"}},
  {"name": "team-a", "match": {"tags": {"Team": "a"}, "name": "team-a-*"}, "regions": ["us-west-2", "eu-west-1"]}
]}"#;

fn event(image: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "EC2 AMI State Change",
        "source": "aws.ec2", "account": A, "time": "2026-11-29T10:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:ec2:us-east-1::image/{image}")],
        "detail": {"RequestId": "d9f1c0d6", "ImageId": image, "State": "available", "ErrorMessage": ""}
    })
}

fn tag<'a>(image: &'a Image, key: &str) -> Option<&'a str> {
    image.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// The KMS key of the copy's snapshot (`None`: not encrypted).
fn key(image: &Image) -> Option<String> {
    let ebs = image.block_device_mappings().first()?.ebs()?;
    ebs.encrypted().filter(|e| *e).and_then(|_| ebs.kms_key_id().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_rules_send_each_image_where_its_rule_says() {
    let emulator = Emulator::start(1.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "rules", 2).await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let admission = create_admission_table(&ddb, "rules-admission").await.unwrap();
    let vars: HashMap<&str, String> = HashMap::from([
        ("WORK_QUEUE_URL", work.clone()),
        ("ADMISSION_TABLE", admission.clone()),
        ("REPLICATION_RULES", RULES.to_string()),
        ("SOURCE_REGIONS", "us-east-1".to_string()),
        ("COPY_POLL_SECONDS", "1".to_string()),
    ]);
    let config = Config::from_lookup(&|k| vars.get(k).cloned()).unwrap();
    let east = ec2_client(&sdk, "us-east-1");
    let windows = seed_source_image(&east, "win-2025", &[("Platform", "windows")], &[]).await.unwrap();
    let golden = seed_source_image(&east, "al2023-golden", &[("Kind", "golden")], &[]).await.unwrap();
    let team = seed_source_image(&east, "team-a-svc", &[("Team", "a")], &[]).await.unwrap();
    let unmatched = seed_source_image(&east, "scratch", &[("Team", "b")], &[]).await.unwrap();
    let settings = config.settings.clone();
    let records: Arc<dyn ami_replicator::ports::CopyRecords> = Arc::new(AwsLeases::new(ddb.clone(), admission));
    let replicator = Replicator::new(
        Arc::new(config.settings),
        AwsEc2Regions::with_target_roles(sdk.clone(), &config.target_roles).await,
        AwsQueue::new(sqs.clone(), work.clone(), Some(dlq.clone())),
    )
    .with_records(records.clone());
    let home = AccountId::parse(A).unwrap();
    for image in [&windows, &golden, &team, &unmatched] {
        entry::handle(&replicator, event(image), &home).await.unwrap();
    }
    // A work item for the team's image asking for a region only the golden rule has.
    let widening =
        format!(r#"{{"image_id": "{team}", "source_region": "us-east-1", "target_regions": ["ap-southeast-2"]}}"#);
    sqs.send_message().queue_url(&work).message_body(widening).send().await.unwrap();
    drain_queue(&sqs, &work, &replicator, &home, Duration::from_secs(120)).await.unwrap();

    let reasons = dead_letter_reasons(&sqs, &dlq).await.unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("rule team-a") && reasons[0].contains("ap-southeast-2"), "{}", reasons[0]);

    let b_sdk = assumed_sdk_config(&sdk, "arn:aws:iam::222222222222:role/ami-replicator-target").await;
    let count = |list: &[Image]| list.len();
    // windows: eu-west-1 only, with its key.
    let win = copies_of(&sdk, "eu-west-1", &windows).await.unwrap();
    assert_eq!(count(&win), 1);
    assert_eq!(tag(&win[0], RULE_TAG), Some("windows"));
    assert_eq!(key(&win[0]).as_deref(), Some("alias/windows-images"));
    for region in ["us-west-2", "ap-southeast-2"] {
        assert!(copies_of(&sdk, region, &windows).await.unwrap().is_empty(), "windows: not in {region}");
    }
    // golden: this account and B in ap-southeast-2, B in the source region; B's key where the rule names one.
    let mine = copies_of(&sdk, "ap-southeast-2", &golden).await.unwrap();
    assert_eq!(count(&mine), 1);
    assert_eq!(key(&mine[0]).as_deref(), Some(format!("arn:aws:kms:ap-southeast-2:{A}:alias/aws/ebs").as_str()));
    let theirs = copies_of(&b_sdk, "ap-southeast-2", &golden).await.unwrap();
    assert_eq!(count(&theirs), 1);
    assert_eq!(theirs[0].owner_id(), Some(B));
    assert_eq!(tag(&theirs[0], RULE_TAG), Some("golden"));
    assert_eq!(key(&theirs[0]).as_deref(), Some(B_KEY));
    assert_eq!(count(&copies_of(&b_sdk, "us-east-1", &golden).await.unwrap()), 1);
    assert!(copies_of(&sdk, "eu-west-1", &golden).await.unwrap().is_empty(), "golden: not in eu-west-1");
    // team-a: us-west-2 and eu-west-1, unencrypted, never ap-southeast-2 (the widening item was refused).
    for region in ["us-west-2", "eu-west-1"] {
        let copies = copies_of(&sdk, region, &team).await.unwrap();
        assert_eq!(count(&copies), 1, "team-a in {region}");
        assert_eq!(tag(&copies[0], RULE_TAG), Some("team-a"));
        assert_eq!(key(&copies[0]), None);
    }
    assert!(copies_of(&sdk, "ap-southeast-2", &team).await.unwrap().is_empty());
    assert!(copies_of(&b_sdk, "us-east-1", &team).await.unwrap().is_empty(), "team-a has no target account");
    // No rule matches: nothing anywhere.
    for region in ["us-west-2", "eu-west-1", "ap-southeast-2"] {
        assert!(copies_of(&sdk, region, &unmatched).await.unwrap().is_empty());
    }
    // The status command names the source's rule and looks only at its places.
    let ec2 = AwsEc2Regions::with_target_roles(sdk.clone(), &config.target_roles).await;
    let queue = AwsQueue::new(sqs.clone(), work.clone(), Some(dlq.clone()));
    let east = Region::parse("us-east-1").unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let report = status(&ec2, &queue, &records, &settings, &home, &ImageId::parse(&golden).unwrap(), &east, now).await;
    assert_eq!(report.rule.as_deref(), Some("golden"));
    assert_eq!(report.places.len(), 3, "{}", table(&report));
    assert!(report.complete, "{}", table(&report));
    assert!(table(&report).contains("rule: golden"));
    let report =
        status(&ec2, &queue, &records, &settings, &home, &ImageId::parse(&unmatched).unwrap(), &east, now).await;
    assert!(
        report.rule.as_deref().is_some_and(|r| r.starts_with("none (no replication rule matches")),
        "{:?}",
        report.rule
    );
}
