//! The EMF lines against the specification's shape (CloudWatch user guide, "Specification: Embedded metric
//! format"): checked member by member, as CloudWatch Logs validates them.

use super::*;
use crate::core::facts::{Completion, Fact};
use crate::core::ids::{AccountId, ImageId};

fn r(s: &str) -> Region {
    Region::parse(s).unwrap()
}

fn completion(region: &str, copy_seconds: f64, latency: Option<f64>) -> Fact {
    Fact::CopyCompleted(Box::new(Completion {
        source_image: ImageId::parse("ami-0123456789abcdef0").unwrap(),
        source_region: r("us-east-1"),
        copy: ImageId::parse("ami-11111111").unwrap(),
        account: AccountId::parse("123456789012").unwrap(),
        region: r(region),
        copy_seconds: Some(copy_seconds),
        share_latency_seconds: latency,
        source_name: None,
        source_created: None,
        rule: None,
    }))
}

/// Validates one line against the specification and returns it parsed.
fn valid(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).expect("a JSON object per line");
    let root = v.as_object().expect("root is an object");
    let aws = root["_aws"].as_object().expect("_aws object");
    assert!(aws["Timestamp"].is_i64(), "Timestamp: epoch milliseconds as an integer");
    let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics array");
    assert_eq!(directives.len(), 1);
    let d = directives[0].as_object().unwrap();
    assert_eq!(d["Namespace"], NAMESPACE);
    let dimension_sets = d["Dimensions"].as_array().expect("Dimensions: array of arrays");
    for set in dimension_sets {
        let keys = set.as_array().expect("a dimension set is an array");
        assert!(keys.len() <= 30);
        for k in keys {
            let k = k.as_str().expect("dimension keys are strings");
            assert!(root[k].is_string(), "dimension {k} is a root string member");
        }
    }
    let metrics = d["Metrics"].as_array().expect("Metrics array");
    assert!(!metrics.is_empty() && metrics.len() <= 100);
    for m in metrics {
        let name = m["Name"].as_str().expect("Name");
        let unit = m["Unit"].as_str().expect("Unit");
        assert!(["Count", "Seconds"].contains(&unit), "a CloudWatch unit: {unit}");
        match &root[name] {
            Value::Number(_) => {}
            Value::Array(values) => {
                assert!(values.len() <= 100 && values.iter().all(Value::is_number), "{name}: at most 100 numbers")
            }
            other => panic!("{name} must be a number or an array of numbers, not {other}"),
        }
    }
    v
}

#[test]
fn facts_become_one_line_per_region_and_one_without_dimensions() {
    let facts = vec![
        Fact::CopyStarted { region: r("eu-west-1"), rule: None },
        Fact::CopyStarted { region: r("eu-west-1"), rule: None },
        Fact::CapacityWait { region: r("eu-west-1"), jobs: 1 },
        completion("eu-west-1", 600.0, Some(12.5)),
        Fact::Throttled { region: r("us-west-2"), calls: 1 },
        Fact::CopyFailed { region: r("us-west-2") },
        Fact::CopyReplaced { region: r("us-west-2") },
        Fact::DeadLettered { region: None, failure: None },
        Fact::OldestJobAge { seconds: 30.0 },
        Fact::OldestJobAge { seconds: 90.0 },
    ];
    let lines = lines(&facts, 1_795_910_400_000);
    assert_eq!(lines.len(), 3);
    let parsed: Vec<Value> = lines.iter().map(|l| valid(l)).collect();
    let eu = parsed.iter().find(|v| v["Region"] == "eu-west-1").unwrap();
    assert_eq!(eu["CopiesStarted"], 2.0);
    assert_eq!(eu["CapacityWaits"], 1.0);
    assert_eq!(eu["CopiesCompleted"], 1.0);
    assert_eq!(eu["CopyDuration"], 600.0);
    assert_eq!(eu["ShareLatency"], 12.5);
    assert_eq!(eu["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Region"]]));
    let us = parsed.iter().find(|v| v["Region"] == "us-west-2").unwrap();
    assert_eq!((us["ThrottledCalls"].clone(), us["CopiesFailed"].clone()), (json!(1.0), json!(1.0)));
    assert!(us.get("ShareLatency").is_none(), "a metric without values is not declared");
    let global = parsed.iter().find(|v| v.get("Region").is_none()).unwrap();
    assert_eq!(global["DeadLettered"], 1.0);
    assert_eq!(global["OldestJobAge"], 90.0, "the oldest job");
    assert_eq!(global["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
    assert_eq!(global["_aws"]["Timestamp"], 1_795_910_400_000i64);
}

#[test]
fn more_than_100_durations_are_split_over_lines() {
    let facts: Vec<Fact> = (0..250).map(|n| completion("eu-west-1", f64::from(n), None)).collect();
    let lines = lines(&facts, 0);
    assert_eq!(lines.len(), 3);
    let parsed: Vec<Value> = lines.iter().map(|l| valid(l)).collect();
    let durations: usize = parsed.iter().map(|v| v["CopyDuration"].as_array().map_or(1, Vec::len)).sum();
    assert_eq!(durations, 250);
    assert_eq!(parsed[0]["CopiesCompleted"], 250.0, "counts once, in the first line");
    assert!(parsed[1].get("CopiesCompleted").is_none());
}

#[test]
fn no_facts_no_lines() {
    assert!(lines(&[], 0).is_empty());
}

#[test]
fn a_rules_facts_also_count_under_its_name_and_the_region_sums_stay_whole() {
    let golden: Option<std::sync::Arc<str>> = Some("golden".into());
    let facts = vec![
        Fact::CopyStarted { region: r("eu-west-1"), rule: golden.clone() },
        Fact::CopyStarted { region: r("eu-west-1"), rule: golden },
        Fact::CopyStarted { region: r("eu-west-1"), rule: None },
    ];
    let parsed: Vec<Value> = lines(&facts, 1_795_910_400_000).iter().map(|l| valid(l)).collect();
    assert_eq!(parsed.len(), 2);
    let ruled = parsed.iter().find(|v| v["Rule"] == "golden").expect("a line with the Rule dimension");
    assert_eq!(ruled["CopiesStarted"], 2.0);
    assert_eq!(ruled["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Region"], ["Rule"]]));
    // Every line counts under Region: 2 + 1 = 3 copies started in eu-west-1.
    let total: f64 =
        parsed.iter().filter(|v| v["Region"] == "eu-west-1").map(|v| v["CopiesStarted"].as_f64().unwrap()).sum();
    assert_eq!(total, 3.0);
}
