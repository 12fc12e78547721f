//! Unit tests of `entry`.

use super::*;

fn event(state: &str) -> Value {
    serde_json::json!({
        "version": "0", "id": "7f1c", "detail-type": "EC2 AMI State Change", "source": "aws.ec2",
        "account": "123456789012", "time": "2026-11-27T10:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0"],
        "detail": {"RequestId": "r-1", "ImageId": "ami-0123456789abcdef0", "State": state, "ErrorMessage": ""}
    })
}

#[test]
fn available_event_is_a_request() {
    let Input::Direct(item) = decode_input(event("available")).unwrap() else { panic!("direct") };
    match item.message.unwrap() {
        Message::Request(r) => {
            assert_eq!(r.image.as_str(), "ami-0123456789abcdef0");
            assert_eq!(r.source_region.as_str(), "us-east-1");
            assert_eq!(r.targets, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_states_are_ignored_with_a_reason() {
    let Input::Direct(item) = decode_input(event("pending")).unwrap() else { panic!("direct") };
    assert!(matches!(item.message.unwrap(), Message::Ignore(r) if r.contains("pending")));
}

#[test]
fn a_failed_image_may_be_a_copy_to_replace() {
    let Input::Direct(item) = decode_input(event("failed")).unwrap() else { panic!("direct") };
    match item.message.unwrap() {
        Message::CopyFailed { image, region, account } => {
            assert_eq!(region.as_str(), "us-east-1");
            assert!(image.as_str().starts_with("ami-"));
            assert!(account.is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_deregistered_source_stops_its_replication() {
    let Input::Direct(item) = decode_input(event("deregistered")).unwrap() else { panic!("direct") };
    match item.message.unwrap() {
        Message::SourceGone { image, region } => {
            assert_eq!((image.as_str(), region.as_str()), ("ami-0123456789abcdef0", "us-east-1"))
        }
        other => panic!("{other:?}"),
    }
}

fn image_builder_event(status: &str, resources: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "ib-1", "detail-type": "EC2 Image Builder Image State Change",
        "source": "aws.imagebuilder", "account": "123456789012", "time": "2026-11-29T10:00:00Z",
        "region": "us-east-1", "resources": resources,
        "detail": {"previous-state": {"status": "DISTRIBUTING"}, "state": {"status": status}}
    })
}

#[test]
fn image_builder_builds_start_replication_other_statuses_are_acknowledged() {
    let arn = "arn:aws:imagebuilder:us-east-1:123456789012:image/golden/1.0.0/3";
    let Input::Direct(item) = decode_input(image_builder_event("AVAILABLE", serde_json::json!([arn]))).unwrap() else {
        panic!("direct")
    };
    assert_eq!(item.message.unwrap(), Message::ImageBuilt { arn: arn.to_string() });
    let Input::Direct(item) = decode_input(image_builder_event("BUILDING", serde_json::json!([arn]))).unwrap() else {
        panic!("direct")
    };
    assert!(matches!(item.message.unwrap(), Message::Ignore(r) if r.contains("BUILDING")));
    let Input::Direct(item) = decode_input(image_builder_event("AVAILABLE", serde_json::json!([]))).unwrap() else {
        panic!("direct")
    };
    assert!(item.message.unwrap_err().contains("resources[0]"));
}

#[test]
fn sqs_batch_with_every_kind_of_body() {
    let work = r#"{"image_id":"ami-0123456789abcdef0","source_region":"us-east-1","target_regions":["eu-west-1"]}"#;
    let payload = serde_json::json!({"Records": [
        {"messageId": "m1", "body": event("available").to_string()},
        {"messageId": "m2", "body": work},
        {"messageId": "m3", "body": "not json"},
        {"messageId": "m4", "body": r#"{"image_id":"ami-0123456789abcdef0","source_region":"moon-1"}"#},
        {"messageId": "m5", "body": r#"{"ami_replicator": 99, "jobs": []}"#},
        {"messageId": "m6", "body": r#"{"hello": "world"}"#},
    ]});
    let Input::Batch(items) = decode_input(payload).unwrap() else { panic!("batch") };
    assert_eq!(items.len(), 6);
    assert!(matches!(items[0].message, Ok(Message::Request(_))));
    match &items[1].message {
        Ok(Message::Request(r)) => assert_eq!(r.targets.as_ref().unwrap()[0].as_str(), "eu-west-1"),
        other => panic!("{other:?}"),
    }
    assert!(items[2].message.as_ref().unwrap_err().contains("not JSON"));
    assert!(items[3].message.as_ref().unwrap_err().contains("moon-1"));
    assert!(items[4].message.as_ref().unwrap_err().contains("version"));
    assert!(items[5].message.is_err());
    assert_eq!(items[5].id, "m6");
}

#[test]
fn unrecognised_payloads_are_errors_not_panics() {
    assert!(decode_input(serde_json::json!("hello")).is_err());
    assert!(decode_input(serde_json::json!({"Records": 3})).is_err());
}

#[test]
fn batch_response_lists_only_retries() {
    let report = BatchReport { retry: vec!["m2".into()], ..Default::default() };
    assert_eq!(batch_response(&report), serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m2"}]}));
}
