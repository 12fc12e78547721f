//! Unit tests of REPLICATION_RULES.

use crate::config::{Config, ConfigError};
use crate::core::ids::{AccountId, Place, Region};
use std::collections::HashMap;

fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(&move |k| map.get(k).cloned())
}

const QUEUE: (&str, &str) = ("WORK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/work");
/// Target accounts (a rule's `accounts`) need the admission table: the function's record of its copies.
const ADMISSION: (&str, &str) = ("ADMISSION_TABLE", "admission");

fn r(s: &str) -> Region {
    Region::parse(s).unwrap()
}

pub(crate) const THREE_RULES: &str = r#"{"rules": [
  {"name": "windows", "match": {"tags": {"Platform": "windows"}},
   "regions": ["eu-west-1"], "encrypt": true, "kms_keys": {"eu-west-1": "alias/windows-images"},
   "share": {"allow_public": false, "copy_source_permissions": false}},
  {"name": "golden", "match": {"tags": {"Kind": ["base", "golden"]}, "regions": ["us-east-1"]},
   "regions": ["eu-west-1", "ap-southeast-2"],
   "accounts": {"222222222222": "arn:aws:iam::222222222222:role/ami-replicator-target"},
   "kms_keys": {"222222222222/ap-southeast-2": "arn:aws:kms:ap-southeast-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
   "tags": {"Distribution": "golden"}, "ssm_parameter": "/images/golden/{name}"},
  {"name": "team-a", "match": {"tags": {"Team": "a"}, "name": "team-a-*"},
   "regions": ["us-west-2", "eu-central-1", "eu-west-1"], "description": "{name} from {region}",
   "completion_minutes": 60}
]}"#;

#[test]
fn three_rules_each_with_its_regions_accounts_and_keys() {
    let c = parse(&[QUEUE, ("REPLICATION_RULES", THREE_RULES), ("AWS_REGION", "us-east-1"), ADMISSION]).unwrap();
    let s = &c.settings;
    let names: Vec<&str> = s.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["windows", "golden", "team-a"]);
    let golden = &s.rules[1].settings;
    assert_eq!(golden.target_regions, [r("eu-west-1"), r("ap-southeast-2")]);
    let target = AccountId::parse("222222222222").unwrap();
    assert_eq!(golden.target_accounts, std::slice::from_ref(&target));
    assert!(golden.encryption.kms_keys.contains_key(&Place::new(Some(target.clone()), r("ap-southeast-2"))));
    assert_eq!(golden.extra_tags[0].key, "Distribution");
    assert!(s.rules[0].settings.encryption.encrypt_copies);
    assert!(!s.rules[0].settings.share.copy_source_permissions);
    // Unset fields take the treatment variables' defaults.
    assert!(golden.share.copy_source_permissions);
    assert_eq!(s.rules[2].settings.copy_completion_minutes, Some(60));
    // The deployment covers every rule: the union is what a message is first checked against.
    assert_eq!(s.rule.target_regions, [r("eu-west-1"), r("ap-southeast-2"), r("us-west-2"), r("eu-central-1")]);
    assert_eq!(s.rule.target_accounts, std::slice::from_ref(&target));
    assert!(!s.rule.encryption.encrypt_copies, "only some rules encrypt");
    assert_eq!(
        c.target_roles.get(&target).map(String::as_str),
        Some("arn:aws:iam::222222222222:role/ami-replicator-target")
    );
    assert_eq!(s.source_regions, [r("us-east-1")]);
}

#[test]
fn every_problem_at_once_named_by_rule_and_field() {
    let doc = r#"{"rules": [
      {"name": "golden", "match": {"tags": {"Kind": "golden"}}, "regions": ["eu-west-1", "eu-wset-1"],
       "kms_keys": {"eu-west-1": "arn:aws:kms:us-east-1:123456789012:key/abc", "us-west-2": "alias/k"}},
      {"name": "golden-eu", "match": {"tags": {"Kind": "golden"}, "regions": ["us-east-1"]}, "regions": ["eu-west-1"]},
      {"name": "targets", "match": {"name": "t-*"}, "accounts": {"222222222222": "", "333333333333": "arn:aws:iam::444444444444:role/r"},
       "kms_keys": {"222222222222/eu-west-1": "arn:aws:kms:eu-west-1:999999999999:key/abc"}},
      {"name": "typo", "regoins": ["eu-west-1"]},
      {"name": "bad name!", "match": {"name": "x-*"}, "regions": ["eu-west-1"], "description": "{nope}", "completion_minutes": 7}
    ]}"#;
    let err = parse(&[QUEUE, ("REPLICATION_RULES", doc), ("TARGET_REGIONS", "eu-west-1")]).unwrap_err();
    let all = err.to_string();
    for expected in [
        "TARGET_REGIONS is set together with REPLICATION_RULES",
        "rule \"golden\" regions: \"eu-wset-1\" is not a valid region",
        "rule \"golden\" kms_keys: the key for eu-west-1 is a key of us-east-1",
        "rule \"golden\" kms_keys: a key is configured for us-west-2, which is not in its regions",
        "rule \"targets\" accounts: account 222222222222 has no role",
        "rule \"targets\" accounts: the role for account 333333333333 belongs to account 444444444444",
        "rule \"typo\": unknown field `regoins`",
        "rule \"bad name!\" name: 1-64 letters",
        "rule \"bad name!\" description: unknown placeholder {nope}",
        "rule \"bad name!\" completion_minutes: 7 is not 15..2880",
        "rule \"golden-eu\" match: rule \"golden\" comes first and matches every image this one matches",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{}", err.0.join("\n"));
    }
}

#[test]
fn a_rule_needs_a_destination_and_roles_agree_across_rules() {
    let doc = r#"{"rules": [
      {"name": "a", "match": {"tags": {"T": "a"}}, "accounts": {"222222222222": "arn:aws:iam::222222222222:role/one"}},
      {"name": "b", "match": {"tags": {"T": "b"}}, "accounts": {"222222222222": "arn:aws:iam::222222222222:role/two"}},
      {"name": "c", "match": {"tags": {"T": "c"}}}
    ]}"#;
    let err = parse(&[QUEUE, ("REPLICATION_RULES", doc)]).unwrap_err().to_string();
    assert!(err.contains("rule \"b\" accounts: account 222222222222 has role"), "{err}");
    assert!(err.contains("rule \"c\" regions: no destination"), "{err}");
    let not_json = parse(&[QUEUE, ("REPLICATION_RULES", "[{\"name\": \"x\"}]")]).unwrap_err().to_string();
    assert!(not_json.contains("not a rules document"), "{not_json}");
}

#[test]
fn every_rules_parameter_lies_under_the_prefix_the_policy_allows() {
    let doc = r#"{"rules": [
      {"name": "in", "match": {"tags": {"T": "a"}}, "regions": ["eu-west-1"], "ssm_parameter": "/ami/{name}"},
      {"name": "out", "match": {"tags": {"T": "b"}}, "regions": ["eu-west-1"], "ssm_parameter": "/other/{name}"}
    ]}"#;
    let err = parse(&[QUEUE, ("REPLICATION_RULES", doc), ("SSM_PARAMETER_PREFIX", "/ami/")]).unwrap_err();
    assert_eq!(err.0, ["REPLICATION_RULES rule \"out\" ssm_parameter: /other/{name} is outside SSM_PARAMETER_PREFIX /ami/ (the function may write only there)"]);
    let legacy = parse(&[
        QUEUE,
        ("TARGET_REGIONS", "eu-west-1"),
        ("SSM_PARAMETER_TEMPLATE", "/ami/{name}"),
        ("SSM_PARAMETER_PREFIX", "/ami/"),
    ]);
    assert!(legacy.is_ok());
    assert!(parse(&[QUEUE, ("REPLICATION_RULES", "ssm:/ami-replicator/rules")])
        .unwrap_err()
        .to_string()
        .contains("read at start-up"));
}

#[test]
fn every_rule_region_is_one_the_policy_allows_writes_in() {
    let doc = r#"{"rules": [
      {"name": "a", "match": {"tags": {"T": "a"}}, "regions": ["eu-west-1", "eu-central-1"]}
    ]}"#;
    let err = parse(&[QUEUE, ("REPLICATION_RULES", doc), ("ALLOWED_REGIONS", "eu-west-1,us-west-2")]).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(
        err.0[0].starts_with("REPLICATION_RULES rule \"a\" regions: eu-central-1 is not in ALLOWED_REGIONS"),
        "{err}"
    );
    assert!(parse(&[QUEUE, ("REPLICATION_RULES", doc), ("ALLOWED_REGIONS", "eu-west-1,eu-central-1")]).is_ok());
    // Without rules, ALLOWED_REGIONS is the template's copy of TARGET_REGIONS: nothing to check.
    assert!(parse(&[QUEUE, ("TARGET_REGIONS", "eu-west-1"), ("ALLOWED_REGIONS", "eu-west-1")]).is_ok());
}

#[test]
fn a_rules_source_regions_are_the_deployments() {
    let doc = r#"{"rules": [{"name": "a", "match": {"regions": ["us-west-2"]}, "regions": ["eu-west-1"]}]}"#;
    let err = parse(&[QUEUE, ("REPLICATION_RULES", doc), ("AWS_REGION", "us-east-1")]).unwrap_err();
    assert!(err.0[0].contains("rule \"a\" match.regions: us-west-2 is not a source region"), "{err}");
    assert!(parse(&[QUEUE, ("REPLICATION_RULES", doc), ("SOURCE_REGIONS", "us-east-1,us-west-2")]).is_ok());
}

#[test]
fn retention_from_the_variables_and_per_rule() {
    use crate::core::retention::Retention;
    let c = parse(&[QUEUE, ("TARGET_REGIONS", "eu-west-1"), ("RETAIN_COPIES", "3"), ("FAMILY_TAG", "Family")]).unwrap();
    assert_eq!(c.settings.rule.retention, Some(Retention { copies: 3, family_tag: "Family".into(), dry_run: false }));
    let err = parse(&[QUEUE, ("TARGET_REGIONS", "eu-west-1"), ("RETAIN_COPIES", "3")]).unwrap_err();
    assert!(err.to_string().contains("RETAIN_COPIES: needs FAMILY_TAG"), "{err}");
    let doc = r#"{"rules": [
      {"name": "keep-5", "match": {"tags": {"T": "a"}}, "regions": ["eu-west-1"], "retain_copies": 5, "retain_dry_run": true},
      {"name": "keep-all", "match": {"tags": {"T": "b"}}, "regions": ["eu-west-1"], "retain_copies": 0},
      {"name": "default", "match": {"tags": {"T": "c"}}, "regions": ["eu-west-1"]}
    ]}"#;
    let c = parse(&[QUEUE, ("REPLICATION_RULES", doc), ("RETAIN_COPIES", "2"), ("FAMILY_TAG", "Family")]).unwrap();
    let of = |i: usize| c.settings.rules[i].settings.retention.clone();
    assert_eq!(of(0), Some(Retention { copies: 5, family_tag: "Family".into(), dry_run: true }));
    assert_eq!(of(1), None);
    assert_eq!(of(2), Some(Retention { copies: 2, family_tag: "Family".into(), dry_run: false }));
    let err = parse(&[QUEUE, ("REPLICATION_RULES", doc)]).unwrap_err();
    assert!(err.to_string().contains("rule \"keep-5\" retain_copies: RETAIN_COPIES"), "{err}");
}

#[test]
fn launch_templates_name_places_of_the_configuration() {
    let c = parse(&[
        QUEUE,
        ("TARGET_REGIONS", "eu-west-1"),
        ("TARGET_ACCOUNTS", "222222222222=arn:aws:iam::222222222222:role/r"),
        ADMISSION,
        ("LAUNCH_TEMPLATES", "eu-west-1=web, 222222222222/us-east-1=lt-0123456789abcdef0"),
        ("LAUNCH_TEMPLATE_SET_DEFAULT", "true"),
    ])
    .unwrap();
    assert_eq!(c.settings.rule.launch_templates.len(), 2);
    assert!(c.settings.rule.launch_template_set_default);
    let err =
        parse(&[QUEUE, ("TARGET_REGIONS", "eu-west-1"), ("LAUNCH_TEMPLATES", "us-west-2=web,eu-west-1=bad name!")])
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("us-west-2, which is not in TARGET_REGIONS")
            && err.contains("\"bad name!\" is not a launch template"),
        "{err}"
    );
    let doc = r#"{"rules": [{"name": "a", "match": {}, "regions": ["eu-west-1"], "launch_templates": {"eu-west-1": "web", "us-west-2": "x-1"}}]}"#;
    let err = parse(&[QUEUE, ("REPLICATION_RULES", doc)]).unwrap_err().to_string();
    assert!(
        err.contains(
            "rule \"a\" launch_templates: a launch template is configured for us-west-2, which is not in its regions"
        ),
        "{err}"
    );
}
