//! The deployed routing is the tested routing: the EventBridge rules of template.yaml (to the work queue) and of
//! region-forwarder.yaml (a destination region's copy events to the home bus), read from the templates, loaded
//! into the emulator's EventBridge. Each kind of event is put on its bus; exactly the ones the handler acts on
//! reach the work queue, and the simulator's routing (which the simulated tests go through) agrees.

use ami_replicator::entry::decode_body;
use ami_replicator::local::{Emulator, EMULATOR_ACCOUNT as ACCOUNT};
use ami_replicator::service::Message;
use ami_replicator::sim::routing::{self, event_pattern, FORWARDER_RULE, HOME_QUEUE_RULES};
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

const HOME: &str = "us-east-1";
const DESTINATION: &str = "eu-west-1";

fn read(name: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

fn region_conf(sdk: &aws_config::SdkConfig, region: &str) -> aws_config::SdkConfig {
    sdk.to_builder().region(aws_config::Region::new(region.to_string())).build()
}

/// A queue in `region` that the rule `name` (with `pattern`) of that region's default bus targets.
async fn rule_to_queue(sdk: &aws_config::SdkConfig, region: &str, name: &str, pattern: &Value, queue: &str) -> String {
    let conf = region_conf(sdk, region);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let url = sqs.create_queue().queue_name(queue).send().await.unwrap().queue_url().unwrap().to_string();
    let events = aws_sdk_eventbridge::Client::new(&conf);
    events.put_rule().name(name).event_pattern(pattern.to_string()).send().await.unwrap();
    let arn = format!("arn:aws:sqs:{region}:{ACCOUNT}:{queue}");
    let target = Target::builder().id("queue").arn(arn).build().unwrap();
    events.put_targets().rule(name).targets(target).send().await.unwrap();
    url
}

async fn put(sdk: &aws_config::SdkConfig, region: &str, event: &Value) {
    let events = aws_sdk_eventbridge::Client::new(&region_conf(sdk, region));
    let entry = PutEventsRequestEntry::builder()
        .source(event["source"].as_str().unwrap())
        .detail_type(event["detail-type"].as_str().unwrap())
        .detail(event["detail"].to_string())
        .set_resources(
            event["resources"].as_array().map(|r| r.iter().filter_map(|v| v.as_str().map(String::from)).collect()),
        )
        .build();
    let out = events.put_events().entries(entry).send().await.unwrap();
    assert_eq!(out.failed_entry_count(), 0);
}

async fn drain(sdk: &aws_config::SdkConfig, region: &str, url: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(&region_conf(sdk, region));
    let mut out = Vec::new();
    for _ in 0..5 {
        let got = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    out
}

fn ami(image: &str, region: &str, state: &str) -> Value {
    json!({"source": "aws.ec2", "detail-type": "EC2 AMI State Change", "region": region, "account": ACCOUNT,
        "resources": [format!("arn:aws:ec2:{region}::image/{image}")],
        "detail": {"RequestId": "r", "ImageId": image, "State": state, "ErrorMessage": ""}})
}

fn image_builder(name: &str, status: &str) -> Value {
    json!({"source": "aws.imagebuilder", "detail-type": "EC2 Image Builder Image State Change", "region": HOME,
        "account": ACCOUNT, "resources": [format!("arn:aws:imagebuilder:{HOME}:{ACCOUNT}:image/{name}/1.0.0/1")],
        "detail": {"previous-state": {"status": "TESTING"}, "state": {"status": status}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_events_the_handler_acts_on_reach_the_work_queue() {
    let template = read("template.yaml");
    let forwarder = read("region-forwarder.yaml");
    let emulator = Emulator::start(1.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let mut work = String::new();
    for id in HOME_QUEUE_RULES {
        let pattern = event_pattern(&template, id).unwrap_or_else(|| panic!("{id} has an EventPattern"));
        work = rule_to_queue(&sdk, HOME, id, &pattern, "work").await;
    }
    let pattern = event_pattern(&forwarder, FORWARDER_RULE).unwrap();
    let forwarded = rule_to_queue(&sdk, DESTINATION, FORWARDER_RULE, &pattern, "to-home-bus").await;

    // (name, event, put in the destination region (through a forwarder), acted on by the handler)
    let cases = [
        ("source available", ami("ami-00000000000000a01", HOME, "available"), false, true),
        ("source deregistered", ami("ami-00000000000000a02", HOME, "deregistered"), false, true),
        ("source disabled", ami("ami-00000000000000a03", HOME, "disabled"), false, true),
        ("source pending", ami("ami-00000000000000a04", HOME, "pending"), false, false),
        ("build failed", ami("ami-00000000000000a05", HOME, "failed"), false, true),
        ("copy available, forwarded", ami("ami-00000000000000b01", DESTINATION, "available"), true, true),
        ("copy failed, forwarded", ami("ami-00000000000000b02", DESTINATION, "failed"), true, true),
        ("copy deregistered there", ami("ami-00000000000000b03", DESTINATION, "deregistered"), true, false),
        ("copy disabled there", ami("ami-00000000000000b04", DESTINATION, "disabled"), true, false),
        ("Image Builder available", image_builder("routed", "AVAILABLE"), false, true),
        ("Image Builder building", image_builder("ignored", "BUILDING"), false, false),
        (
            "the schedule (invokes the function directly)",
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "region": HOME, "account": ACCOUNT,
                "resources": [format!("arn:aws:events:{HOME}:{ACCOUNT}:rule/sweep")], "detail": {}}),
            false,
            false,
        ),
    ];
    for (_, event, remote, _) in &cases {
        put(&sdk, if *remote { DESTINATION } else { HOME }, event).await;
    }
    // The forwarder's target is the home bus: what its rule routed is put there, as EventBridge does.
    for event in drain(&sdk, DESTINATION, &forwarded).await {
        put(&sdk, HOME, &event).await;
    }
    let arrived = drain(&sdk, HOME, &work).await;
    let key = |e: &Value| {
        e["detail"]["ImageId"].as_str().map(String::from).or_else(|| e["resources"][0].as_str().map(String::from))
    };
    let arrived: BTreeSet<String> = arrived.iter().filter_map(key).collect();
    for (name, event, remote, acted_on) in &cases {
        let reached = arrived.contains(&key(event).unwrap());
        assert_eq!(reached, *acted_on, "{name}: reached the work queue = {reached}");
        let simulated = if *remote { routing::routed_from_forwarder(event) } else { routing::routed_at_home(event) };
        assert_eq!(simulated, reached, "{name}: the simulator routes it as EventBridge does");
        // What the home rules route is what the handler acts on (the schedule goes to the function directly).
        if !remote && event["source"] != "aws.events" {
            let decoded = decode_body(&event.to_string()).unwrap();
            assert_eq!(!matches!(decoded, Message::Ignore(_)), reached, "{name}: {decoded:?}");
        }
    }
    // The schedule targets the function, never the queue.
    let sweep = &template[template.find("  SweepRule:").unwrap()..];
    let sweep = &sweep[..sweep.find("\n\n").unwrap()];
    assert!(sweep.contains("Arn: !GetAtt ReplicatorFunction.Arn"), "{sweep}");
}
