//! The outputs adapter and the pipeline's outputs against the emulator (moto): completion events reach a rule
//! of the default event bus (delivered to an SQS queue, as a pipeline's rule would), and the SSM parameter of
//! each destination names its copy with data type aws:ec2:image.

use ami_replicator::config::Config;
use ami_replicator::core::ids::AccountId;
use ami_replicator::entry;
use ami_replicator::local::{create_queues, drain_queue, ec2_client, seed_source_image};
use ami_replicator::local::{Emulator, EMULATOR_ACCOUNT as ACCOUNT};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const DESTINATIONS: [&str; 2] = ["eu-west-1", "us-west-2"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_events_reach_the_bus_and_parameters_name_the_copies() {
    let emulator = Emulator::start(1.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "outputs", 2).await.unwrap();
    // A pipeline's rule: every event of ami-replicator to a queue it reads.
    let inbox = sqs.create_queue().queue_name("pipeline-inbox").send().await.unwrap().queue_url().unwrap().to_string();
    let inbox_arn = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:pipeline-inbox");
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    events.put_rule().name("replication-done").event_pattern(r#"{"source": ["ami-replicator"]}"#).send().await.unwrap();
    events
        .put_targets()
        .rule("replication-done")
        .targets(aws_sdk_eventbridge::types::Target::builder().id("inbox").arn(&inbox_arn).build().unwrap())
        .send()
        .await
        .unwrap();
    let source = seed_source_image(&ec2_client(&sdk, "us-east-1"), "golden-base", &[], &[]).await.unwrap();

    let env: HashMap<&str, String> = HashMap::from([
        ("TARGET_REGIONS", DESTINATIONS.join(",")),
        ("WORK_QUEUE_URL", work.clone()),
        ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
        ("COPY_POLL_SECONDS", "1".to_string()),
        ("PUBLISH_EVENTS", "true".to_string()),
        ("SSM_PARAMETER_TEMPLATE", "/ami/{name}/latest".to_string()),
    ]);
    let config = Config::from_lookup(&|k| env.get(k).cloned()).unwrap();
    let replicator = ami_replicator::aws::replicator(&sdk, config).await;
    let account = AccountId::parse(ACCOUNT).unwrap();
    let event = serde_json::json!({
        "version": "0", "id": "e1", "detail-type": "EC2 AMI State Change", "source": "aws.ec2", "account": ACCOUNT,
        "time": "2026-11-29T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"ImageId": source, "State": "available"}
    });
    entry::handle(&replicator, event, &account).await.unwrap();
    drain_queue(&sqs, &work, &replicator, &account, Duration::from_secs(120)).await.unwrap();

    let mut received: Vec<Value> = Vec::new();
    for _ in 0..5 {
        let out = sqs.receive_message().queue_url(&inbox).max_number_of_messages(10).send().await.unwrap();
        if out.messages().is_empty() {
            break;
        }
        for m in out.messages() {
            received.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message().queue_url(&inbox).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    let of = |t: &str| received.iter().filter(|e| e["detail-type"] == t).cloned().collect::<Vec<_>>();
    let completed = of("AMI Replication Completed");
    assert_eq!(completed.len(), 2, "{received:?}");
    assert!(completed.iter().all(|e| e["source"] == "ami-replicator" && e["detail"]["source_image_id"] == source));
    let finished = of("AMI Replication Finished");
    assert_eq!(finished.len(), 1, "{received:?}");
    assert_eq!(finished[0]["detail"]["complete"], true);

    for region in DESTINATIONS {
        let ssm = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&sdk).region(aws_sdk_ssm::config::Region::new(region)).build(),
        );
        let p = ssm.get_parameter().name("/ami/golden-base/latest").send().await.unwrap();
        let value = p.parameter().unwrap().value().unwrap().to_string();
        let copy = completed.iter().find(|e| e["detail"]["region"] == region).unwrap();
        assert_eq!(copy["detail"]["image_id"], value.as_str(), "{region}");
        assert_eq!(p.parameter().unwrap().data_type(), Some("aws:ec2:image"));
    }
}
