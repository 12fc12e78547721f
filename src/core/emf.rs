//! CloudWatch Embedded Metric Format: the invocation's facts as log lines that CloudWatch Logs turns into
//! metrics (no API call). One line per destination region (dimension `Region`) and one without dimensions,
//! in the namespace [`NAMESPACE`]. Specification: "Specification: Embedded metric format" in the CloudWatch
//! user guide: a root `_aws` object with `Timestamp` (epoch milliseconds) and `CloudWatchMetrics` (directives of
//! `Namespace`, `Dimensions` (arrays of dimension keys) and `Metrics` (`Name`, `Unit`)); every dimension key and
//! metric name is also a root member, a metric's value a number or an array of at most 100 numbers.

use super::facts::Fact;
use super::ids::Region;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub const NAMESPACE: &str = "AmiReplicator";
/// EMF accepts at most 100 values per metric and line.
const MAX_VALUES: usize = 100;

/// The metrics, their units and what feeds them.
pub const METRICS: &[(&str, &str)] = &[
    ("CopiesStarted", "Count"),
    ("CopiesCompleted", "Count"),
    ("CopiesFailed", "Count"),
    ("CopiesReplaced", "Count"),
    ("DeadLettered", "Count"),
    ("CapacityWaits", "Count"),
    ("ThrottledCalls", "Count"),
    ("CopyDuration", "Seconds"),
    ("ShareLatency", "Seconds"),
    ("OldestJobAge", "Seconds"),
    ("AdmissionTableErrors", "Count"),
];

/// The values of one fact: (metric, value).
fn values(fact: &Fact) -> Vec<(&'static str, f64)> {
    match fact {
        Fact::CopyStarted { .. } => vec![("CopiesStarted", 1.0)],
        Fact::CopyCompleted(c) => {
            let mut v = vec![("CopiesCompleted", 1.0)];
            v.extend(c.copy_seconds.map(|s| ("CopyDuration", s)));
            v.extend(c.share_latency_seconds.map(|s| ("ShareLatency", s)));
            v
        }
        Fact::CopyFailed { .. } => vec![("CopiesFailed", 1.0)],
        Fact::CopyReplaced { .. } => vec![("CopiesReplaced", 1.0)],
        Fact::DeadLettered { .. } => vec![("DeadLettered", 1.0)],
        Fact::CapacityWait { jobs, .. } => vec![("CapacityWaits", f64::from(*jobs))],
        Fact::Throttled { calls, .. } => vec![("ThrottledCalls", f64::from(*calls))],
        Fact::OldestJobAge { seconds } => vec![("OldestJobAge", *seconds)],
        // Logged and published (`AMI Copy Retired`); not a metric of its own.
        Fact::CopyRetired(_) => vec![],
        Fact::AdmissionTableFailed { .. } => vec![("AdmissionTableErrors", 1.0)],
    }
}

fn unit(metric: &str) -> &'static str {
    METRICS.iter().find(|(m, _)| *m == metric).map_or("None", |(_, u)| u)
}

/// A line's dimensions: the destination region and the replication rule, when the facts have them.
type Group<'a> = (Option<&'a Region>, Option<&'a str>);

/// The EMF lines of `facts` at `timestamp_ms`. Counts are summed per line; durations keep each value (up to
/// 100 per line, further lines for more); `OldestJobAge` keeps the largest.
pub fn lines(facts: &[Fact], timestamp_ms: i64) -> Vec<String> {
    let mut groups: BTreeMap<Group, BTreeMap<&'static str, Vec<f64>>> = BTreeMap::new();
    for fact in facts {
        let group = groups.entry((fact.region(), fact.rule())).or_default();
        for (metric, value) in values(fact) {
            group.entry(metric).or_default().push(value);
        }
    }
    let mut out = Vec::new();
    for ((region, rule), metrics) in groups {
        // Counts and the age fold into one value; durations are split into chunks of MAX_VALUES.
        let mut folded: Vec<(&str, Vec<Value>)> = Vec::new();
        for (metric, vals) in metrics {
            match unit(metric) {
                "Count" => folded.push((metric, vec![json!(vals.iter().sum::<f64>())])),
                _ if metric == "OldestJobAge" => {
                    folded.push((metric, vec![json!(vals.iter().copied().fold(0.0, f64::max))]))
                }
                _ => folded.push((metric, vals.iter().map(|v| json!((v * 1000.0).round() / 1000.0)).collect())),
            }
        }
        let chunks = folded.iter().map(|(_, v)| v.len().div_ceil(MAX_VALUES)).max().unwrap_or(1);
        for chunk in 0..chunks {
            let mut root = Map::new();
            let mut directives = Vec::new();
            for (metric, vals) in &folded {
                let part: Vec<Value> = vals.iter().skip(chunk * MAX_VALUES).take(MAX_VALUES).cloned().collect();
                let value = match part.len() {
                    0 => continue,
                    1 => part[0].clone(),
                    _ => Value::Array(part),
                };
                root.insert((*metric).to_string(), value);
                directives.push(json!({"Name": metric, "Unit": unit(metric)}));
            }
            let mut dimensions = match region {
                Some(r) => {
                    root.insert("Region".into(), json!(r.as_str()));
                    vec![json!(["Region"])]
                }
                None => vec![json!([])],
            };
            // A rule's facts also count under its name (REPLICATION_RULES); the Region sums stay whole.
            if let Some(rule) = rule {
                root.insert("Rule".into(), json!(rule));
                dimensions.push(json!(["Rule"]));
            }
            root.insert(
                "_aws".into(),
                json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": dimensions, "Metrics": directives}]
                }),
            );
            out.push(Value::Object(root).to_string());
        }
    }
    out
}

#[cfg(test)]
#[path = "emf_tests.rs"]
mod tests;
