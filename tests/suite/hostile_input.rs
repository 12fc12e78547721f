//! The decoder under hostile input, as properties: arbitrary bytes, arbitrary JSON values and mutated real events
//! fed to `entry`, beside a good message in the same batch. Never a panic; every message is decoded (and acted
//! on or acknowledged with a reason) or dead-lettered with a reason; a bad message never fails its neighbour.
//! A fixed corpus of hostile samples runs first.

use ami_replicator::core::ids::{AccountId, ImageId};
use ami_replicator::entry::{self, decode_input, Input};
use ami_replicator::service::{DeploymentSettings, Item};
use ami_replicator::sim::{SimConfig, Simulation, World};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use std::path::PathBuf;

use crate::common::*;

const ME: &str = "123456789012";

fn cases() -> u32 {
    std::env::var("HOSTILE_INPUT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

fn runner(seed: u8) -> TestRunner {
    let config = Config { cases: cases(), failure_persistence: None, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]))
}

/// A simulation with one source image and a good work item for it.
fn world() -> (Simulation, ImageId) {
    let mut w = World::new(AccountId::parse(ME).unwrap(), SimConfig::default());
    let source = w.add_image(&r("us-east-1"), &AccountId::parse(ME).unwrap(), "golden", vec![], vec![]);
    let settings = DeploymentSettings {
        rule: RuleSettings { target_regions: vec![r("eu-west-1")], ..RuleSettings::unset() },
        ..DeploymentSettings::default()
    };
    (Simulation::new(w, settings), source)
}

/// Runs `hostile` and a good work item as one SQS batch through the production handler (entry included).
fn check_batch(hostile: &str) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (sim, source) = world();
    let good = json!({"image_id": source.as_str(), "source_region": "us-east-1"}).to_string();
    let payload = json!({"Records": [
        {"messageId": "hostile", "body": hostile, "eventSource": "aws:sqs"},
        {"messageId": "good", "body": good, "eventSource": "aws:sqs"},
    ]});
    let account = AccountId::parse(ME).unwrap();
    let response = runtime.block_on(entry::handle(&sim.replicator, payload, &account));
    let response = response.map_err(|e| TestCaseError::fail(format!("the batch failed: {e}")))?;
    let failures = response["batchItemFailures"].as_array().cloned().unwrap_or_default();
    prop_assert!(failures.iter().all(|f| f["itemIdentifier"] != "good"), "the good message was failed: {failures:?}");
    // Nothing is left to SQS's redrive either: a bad message is dead-lettered (or acknowledged) at once.
    prop_assert!(failures.is_empty(), "{failures:?}");
    let w = sim.world.lock().unwrap();
    // The good item fanned out: its job waits on the queue.
    prop_assert!(w.queue.iter().any(|m| m.body.contains(source.as_str()) && m.body.contains("eu-west-1")));
    // The hostile one: dead-lettered with a reason, or decoded into something harmless.
    for (body, reason) in &w.dead_letters {
        prop_assert!(!reason.is_empty());
        prop_assert!(reason.chars().count() <= 2 * entry::MAX_REASON_CHARS + 200, "reason too long: {}", reason.len());
        prop_assert!(body == hostile || body.contains("ami_replicator") || body.contains("image_id"));
    }
    Ok(())
}

/// Direct invocation with an arbitrary payload: never a panic, and the answer says what became of it. Not an
/// object: refused as unrecognised. An SQS batch: no item left to SQS's redrive. One message: an undecodable one
/// is dead-lettered with the decoder's reason; a decodable one is acted on or acknowledged (no fault is injected,
/// so nothing is retried).
fn check_direct(payload: Value) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (sim, _) = world();
    let account = AccountId::parse(ME).unwrap();
    let decoded = payload.is_object().then(|| entry::decode_body(&payload.to_string()));
    let batch = payload.get("Records").is_some();
    let answer = runtime.block_on(entry::handle(&sim.replicator, payload, &account));
    match (decoded, answer) {
        (None, answer) => prop_assert!(
            matches!(answer, Err(entry::EntryError::Unrecognised(_))),
            "a payload that is not an object is refused: {answer:?}"
        ),
        (Some(_), Err(entry::EntryError::Unrecognised(_))) if batch => {}
        (Some(_), Ok(answer)) if batch => {
            prop_assert_eq!(&answer["batchItemFailures"], &json!([]), "nothing left to the redrive: {}", answer)
        }
        (Some(Err(reason)), Ok(answer)) => {
            let dead = answer["dead_lettered"].as_array().cloned().unwrap_or_default();
            prop_assert_eq!(dead.len(), 1, "{}", answer);
            let expected = format!("undecodable message: {reason}");
            prop_assert_eq!(dead[0].as_str(), Some(expected.as_str()));
        }
        (Some(Ok(message)), Ok(answer)) => {
            prop_assert!(answer["dead_lettered"].is_array() && answer["completed"] == 0, "{message:?}: {answer}");
        }
        (Some(decoded), Err(e)) => prop_assert!(false, "{decoded:?} was not answered: {e}"),
    }
    Ok(())
}

fn samples() -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events");
    // The handler's inputs only (events/published/ holds what the product publishes).
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names.into_iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
}

/// Replaces the leaf at `index` (counting leaves depth first) with `leaf`, or removes an object key.
fn mutate(value: &mut Value, index: &mut usize, leaf: &Value, remove: bool) -> bool {
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if *index == 0 {
                    if remove {
                        map.remove(&k);
                    } else {
                        map.insert(k, leaf.clone());
                    }
                    return true;
                }
                *index -= 1;
                if mutate(map.get_mut(&k).unwrap(), index, leaf, remove) {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => items.iter_mut().any(|v| mutate(v, index, leaf, remove)),
        _ => false,
    }
}

fn json_values() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(vec![
            "ami-0123456789abcdef0",
            "ami-XYZ",
            "us-east-1",
            "moon-1",
            "available",
            "deregistered",
            "AVAILABLE",
            "EC2 AMI State Change",
            "aws.ec2",
            "aws.imagebuilder",
            "Scheduled Event",
            "aws.events",
            "ami_replicator",
            "image_id",
            "arn:aws:imagebuilder:us-east-1:123456789012:image/x/1.0.0/1",
            "2026-11-29T10:00:00Z",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "Records",
                    "body",
                    "messageId",
                    "detail-type",
                    "source",
                    "region",
                    "time",
                    "resources",
                    "detail",
                    "ImageId",
                    "State",
                    "state",
                    "status",
                    "image_id",
                    "source_region",
                    "target_regions",
                    "encrypted",
                    "ami_replicator",
                    "jobs",
                    "phase",
                    "destination",
                    "account",
                    "x",
                ]),
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

#[test]
fn a_corpus_of_hostile_samples() {
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let huge = json!({"image_id": "ami-0123456789abcdef0", "source_region": "us-east-1", "x": "a".repeat(300_000)})
        .to_string();
    let long_unknown_field = format!("{{\"image_id\": \"ami-0123456789abcdef0\", \"{}\": 1}}", "k".repeat(50_000));
    let invalid_utf8 = String::from_utf8_lossy(&[0x7b, 0xff, 0xfe, 0x22, 0x61, 0xc3, 0x28, 0x7d]).into_owned();
    let corpus: Vec<String> = vec![
        String::new(),
        "null".into(),
        "[]".into(),
        "\"just a string\"".into(),
        invalid_utf8,
        deep,
        deep_object,
        huge,
        long_unknown_field,
        r#"{"image_id": 12, "source_region": ["us-east-1"]}"#.into(),
        r#"{"image_id": "ami-0123456789abcdef0", "source_region": "moon-1"}"#.into(),
        r#"{"image_id": "AMI-0123456789ABCDEF0", "source_region": "us-east-1"}"#.into(),
        r#"{"image_id": "ami-0123456789abcdef0", "source_region": "us-east-1", "target_regions": "eu-west-1"}"#.into(),
        r#"{"image_id": "ami-0123456789abcdef0", "source_region": "us-east-1", "target_regions": ["sa-east-1"]}"#.into(),
        r#"{"image_id": "ami-0123456789abcdef0", "source_region": "us-east-1", "encrypted": "yes"}"#.into(),
        r#"{"ami_replicator": 2, "jobs": []}"#.into(),
        r#"{"ami_replicator": 1, "jobs": [{"source_image": "ami-0123456789abcdef0"}]}"#.into(),
        r#"{"ami_replicator": 1, "jobs": "all"}"#.into(),
        r#"{"ami_replicator": -1}"#.into(),
        r#"{"detail-type": "EC2 AMI State Change", "source": "aws.ec2", "detail": {}}"#.into(),
        r#"{"detail-type": "EC2 AMI State Change", "source": "aws.ec2", "region": "us-east-1", "detail": {"ImageId": "ami-0123456789abcdef0", "State": 7}}"#.into(),
        r#"{"detail-type": "Something Else", "source": "custom.app", "detail": {"x": 1}}"#.into(),
        r#"{"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}"#.into(),
        // Issue 28: counters at their ceiling (they saturate, never wrap), and a body far over any message size.
        r#"{"ami_replicator": 1, "jobs": [{"source_image": "ami-0123456789abcdef0", "source_region": "us-east-1", "destination": "eu-west-1", "phase": "copy", "polls": 4294967295, "retries": 4294967295, "throttles": 4294967295, "capacity_waits": 4294967295, "failed_copies": 4294967295}]}"#.into(),
        format!(r#"{{"image_id": "ami-0123456789abcdef0", "source_region": "us-east-1", "x": "{}"}}"#, "x".repeat(300_000)),
        r#"{"detail-type": "EC2 Image Builder Image State Change", "source": "aws.imagebuilder", "resources": ["not an arn"], "detail": {"state": {"status": "AVAILABLE"}}}"#.into(),
        "{\"image_id\": \"ami-0123456789abcdef0\", \"source_region\": \"us-east-1\", \"target_regions\": [\"eu-west-1\u{202e}\"]}".into(),
        "{\"detail-type\": \"EC2 AMI State Change\", \"source\": \"aws.ec2\", \"region\": \"ü-wëst-1\", \"detail\": {\"ImageId\": \"ami-ñ\", \"State\": \"available\"}}".into(),
    ];
    for body in &corpus {
        check_batch(body).unwrap_or_else(|e| panic!("{e}: {}", &body.chars().take(120).collect::<String>()));
    }
    // The same corpus as direct invocations (the payload EventBridge or a person would send).
    for body in &corpus {
        if let Ok(value) = serde_json::from_str::<Value>(body) {
            check_direct(value).unwrap();
        }
    }
    println!("hostile corpus: {} samples, each beside a good message in one batch", corpus.len());
}

#[test]
fn arbitrary_bytes_never_panic_nor_block_a_neighbour() {
    runner(1)
        .run(&prop::collection::vec(any::<u8>(), 0..512), |bytes| {
            if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
                check_direct(value)?;
            }
            check_batch(&String::from_utf8_lossy(&bytes))
        })
        .unwrap();
    println!("arbitrary bytes: {} cases", cases());
}

#[test]
fn arbitrary_json_values_never_panic_nor_block_a_neighbour() {
    runner(2)
        .run(&json_values(), |value| {
            let _ = decode_input(value.clone());
            check_direct(value.clone())?;
            check_batch(&value.to_string())
        })
        .unwrap();
    println!("arbitrary JSON values: {} cases", cases());
}

#[test]
fn mutated_real_events_never_panic_nor_block_a_neighbour() {
    let samples = samples();
    let strategy = (0..samples.len(), 0usize..40, json_values(), any::<bool>());
    runner(3)
        .run(&strategy, |(n, index, leaf, remove)| {
            let mut value = samples[n].clone();
            mutate(&mut value, &mut index.clone(), &leaf, remove);
            check_direct(value.clone())?;
            match decode_input(value.clone()) {
                // A mutated SQS batch: each of its bodies, beside a good message.
                Ok(Input::Batch(items)) => {
                    for Item { body, .. } in items {
                        check_batch(&body)?;
                    }
                    Ok(())
                }
                _ => check_batch(&value.to_string()),
            }
        })
        .unwrap();
    println!("mutated real events: {} cases over {} samples", cases(), samples.len());
}
