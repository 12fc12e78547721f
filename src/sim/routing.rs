//! Event routing as deployed: the EventPattern of every rule in template.yaml and region-forwarder.yaml, read from
//! the templates themselves, and EventBridge's matching of an event against a pattern. The simulator delivers an
//! event to the work queue only when these rules route it there, so a test passes only with the routing a real
//! deployment has; `tests/suite/routing_moto.rs` checks the same patterns with the emulator's own EventBridge.
//!
//! The patterns use a small part of YAML (nested mappings, flow lists of plain or quoted scalars); reading just
//! that part needs no YAML library (and CloudFormation's `!Ref`-style tags, elsewhere in the templates, none of
//! its schema).

use serde_json::{Map, Value};
use std::sync::OnceLock;

/// The rules of the replicator's stack (template.yaml) that target its work queue, by logical id.
pub const HOME_QUEUE_RULES: [&str; 2] = ["AmiStateChangeRule", "ImageBuilderRule"];

/// The rule of a region forwarder (region-forwarder.yaml) that puts copy events on the home bus.
pub const FORWARDER_RULE: &str = "CopyEventsRule";

const TEMPLATE: &str = include_str!("../../template.yaml");
const FORWARDER: &str = include_str!("../../region-forwarder.yaml");

/// The EventPattern of the resource `logical_id` in the CloudFormation template `yaml`, as JSON.
pub fn event_pattern(yaml: &str, logical_id: &str) -> Option<Value> {
    let lines: Vec<&str> = yaml.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == format!("  {logical_id}:"))?;
    let at = start + lines[start..].iter().position(|l| l.trim_start().starts_with("EventPattern:"))?;
    let indent = indent_of(lines[at]);
    let block: Vec<&str> =
        lines[at + 1..].iter().take_while(|l| l.trim().is_empty() || indent_of(l) > indent).copied().collect();
    Some(Value::Object(mapping(&block)))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn mapping(lines: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let Some((key, rest)) = line.trim().split_once(':') else { continue };
        let key = unquote(key);
        let rest = rest.trim();
        if rest.is_empty() {
            let indent = indent_of(line);
            let end = lines[i..]
                .iter()
                .position(|l| !l.trim().is_empty() && indent_of(l) <= indent)
                .map_or(lines.len(), |p| i + p);
            out.insert(key, Value::Object(mapping(&lines[i..end])));
            i = end;
        } else if let Some(list) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            out.insert(key, Value::Array(list.split(',').map(|v| Value::from(unquote(v))).collect()));
        } else {
            out.insert(key, Value::from(unquote(rest)));
        }
    }
    out
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('"').trim_matches('\'').to_string()
}

/// EventBridge's matching for the patterns these templates use: every key of the pattern is in the event; a
/// list matches when the event's value (or one of its values) is in it; a mapping matches recursively.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(keys) => keys.iter().all(|(k, p)| event.get(k).is_some_and(|v| matches(p, v))),
        Value::Array(allowed) => match event {
            Value::Array(values) => values.iter().any(|v| allowed.contains(v)),
            value => allowed.contains(value),
        },
        other => other == event,
    }
}

struct Rules {
    home: Vec<Value>,
    forwarder: Value,
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| Rules {
        home: HOME_QUEUE_RULES.iter().filter_map(|id| event_pattern(TEMPLATE, id)).collect(),
        forwarder: event_pattern(FORWARDER, FORWARDER_RULE).unwrap_or(Value::Null),
    })
}

/// Whether an event on the home region's default bus reaches the work queue.
pub fn routed_at_home(event: &Value) -> bool {
    rules().home.iter().any(|p| matches(p, event))
}

/// Whether an event of a destination region (or a target account) reaches the work queue: the forwarder puts it
/// on the home bus, where the home rules must route it too.
pub fn routed_from_forwarder(event: &Value) -> bool {
    matches(&rules().forwarder, event) && routed_at_home(event)
}

/// The SQS event source mapping as template.yaml deploys it by default: (BatchSize, MaximumConcurrency,
/// MaximumBatchingWindowInSeconds), read from the parameters' defaults and the mapping's properties.
pub fn deployed_mapping() -> Option<(usize, usize, u64)> {
    let lines: Vec<&str> = TEMPLATE.lines().collect();
    let default_of = |parameter: &str| -> Option<u64> {
        let start = lines.iter().position(|l| l.trim_end() == format!("  {parameter}:"))?;
        let line = lines[start + 1..].iter().take(8).find(|l| l.trim_start().starts_with("Default:"))?;
        unquote(line.trim_start().trim_start_matches("Default:")).parse().ok()
    };
    let window = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("MaximumBatchingWindowInSeconds:"))
        .and_then(|v| v.trim().parse().ok())?;
    Some((default_of("BatchSize")? as usize, default_of("MaximumConcurrency")? as usize, window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_patterns_are_read_whole() {
        assert_eq!(rules().home.len(), 2);
        assert_eq!(
            event_pattern(TEMPLATE, "AmiStateChangeRule").unwrap(),
            serde_json::json!({"source": ["aws.ec2"], "detail-type": ["EC2 AMI State Change"],
                "detail": {"State": ["available", "deregistered", "disabled", "failed"]}})
        );
        assert_eq!(rules().forwarder["detail"]["State"], serde_json::json!(["available", "failed"]));
        let event = |state: &str| {
            serde_json::json!({"source": "aws.ec2", "detail-type": "EC2 AMI State Change",
            "detail": {"ImageId": "ami-1", "State": state}})
        };
        assert!(routed_from_forwarder(&event("failed")));
        assert!(routed_at_home(&event("disabled")));
        assert!(!routed_at_home(&event("pending")));
        assert!(!routed_from_forwarder(&event("deregistered")), "the forwarders carry copy events only");
    }
}
