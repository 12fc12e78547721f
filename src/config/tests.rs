//! Unit tests of `config`.

use super::*;
use crate::core::ids::Place;
use std::collections::HashMap;

fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(&move |k| map.get(k).cloned())
}

const QUEUE: (&str, &str) = ("WORK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/work");

#[test]
fn minimal_configuration_has_safe_defaults() {
    let c = parse(&[("TARGET_REGIONS", "eu-west-1, us-west-2"), QUEUE]).unwrap();
    assert_eq!(c.settings.rule.target_regions.len(), 2);
    assert_eq!(c.settings.step.poll_seconds, 60);
    assert_eq!(c.settings.max_copies_per_region, 100);
    assert!(c.settings.rule.share.copy_source_permissions);
    assert!(!c.settings.rule.share.allow_public);
    assert!(c.settings.rule.share.extra.is_empty());
    assert_eq!(c.settings.tag_filter, None);
    assert_eq!(c.dead_letter_queue_url, None);
}

#[test]
fn everything_set() {
    let c = parse(&[
        ("TARGET_REGIONS", "eu-west-1"),
        QUEUE,
        ("DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/dlq"),
        ("IMAGE_TAG_FILTER", "replicate=true"),
        ("COPY_POLL_SECONDS", "0"),
        ("COPY_SOURCE_LAUNCH_PERMISSIONS", "false"),
        ("SHARE_WITH_ACCOUNTS", "111111111111,222222222222"),
        ("SHARE_WITH_ORGANIZATION_ARNS", "arn:aws:organizations::123456789012:organization/o-abc123def4"),
        ("SHARE_WITH_OU_ARNS", "arn:aws:organizations::123456789012:ou/o-abc123def4/ou-ab12-cd34ef56"),
        ("ALLOW_PUBLIC", "TRUE"),
        ("MAX_CONCURRENT_COPIES_PER_REGION", "300"),
    ])
    .unwrap();
    assert_eq!(c.settings.tag_filter, Some(Tag::new("replicate", "true")));
    assert_eq!(c.settings.step.poll_seconds, 0);
    assert!(!c.settings.rule.share.copy_source_permissions);
    assert!(c.settings.rule.share.allow_public);
    assert_eq!(c.settings.rule.share.extra.len(), 4);
    assert_eq!(c.settings.max_copies_per_region, 300);
}

#[test]
fn every_problem_is_reported_with_its_variable() {
    let err = parse(&[
        ("TARGET_REGIONS", "eu-west-1,mars-north-1"),
        ("SHARE_WITH_ACCOUNTS", "12345"),
        ("SHARE_WITH_OU_ARNS", "ou-nope"),
        ("COPY_POLL_SECONDS", "901"),
        ("ALLOW_PUBLIC", "maybe"),
        ("IMAGE_TAG_FILTER", "novalue"),
        ("MAX_CONCURRENT_COPIES_PER_REGION", "0"),
    ])
    .unwrap_err();
    let text = err.to_string();
    for needle in [
        "mars-north-1",
        "WORK_QUEUE_URL is required",
        "SHARE_WITH_ACCOUNTS",
        "SHARE_WITH_OU_ARNS",
        "COPY_POLL_SECONDS",
        "ALLOW_PUBLIC",
        "IMAGE_TAG_FILTER",
        "MAX_CONCURRENT_COPIES_PER_REGION",
    ] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
}

#[test]
fn kms_keys_must_belong_to_a_destination_and_its_region() {
    let base = [("TARGET_REGIONS", "eu-west-1,us-west-2"), QUEUE, ("ENCRYPT_COPIES", "true")];
    let ok = parse(&[
        base[0],
        base[1],
        base[2],
        ("KMS_KEY_IDS", "eu-west-1=arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab, us-west-2=alias/copies"),
    ])
    .unwrap();
    assert!(ok.settings.rule.encryption.encrypt_copies);
    assert_eq!(ok.settings.rule.encryption.kms_keys.len(), 2);
    let elsewhere = parse(&[base[0], base[1], ("KMS_KEY_IDS", "ap-south-1=alias/copies")]).unwrap_err();
    assert!(elsewhere.to_string().contains("not in TARGET_REGIONS"), "{elsewhere}");
    let wrong_region =
        parse(&[base[0], base[1], ("KMS_KEY_IDS", "eu-west-1=arn:aws:kms:us-east-1:123456789012:key/abcd")])
            .unwrap_err();
    assert!(wrong_region.to_string().contains("belongs to one region"), "{wrong_region}");
    let garbage = parse(&[base[0], base[1], ("KMS_KEY_IDS", "eu-west-1")]).unwrap_err();
    assert!(garbage.to_string().contains("REGION=KEY"), "{garbage}");
}

#[test]
fn copy_options_are_validated() {
    let ok = parse(&[
        ("TARGET_REGIONS", "eu-west-1"),
        QUEUE,
        ("COPY_DESCRIPTION_TEMPLATE", "{name}: copied from {image} in {region}"),
        ("EXTRA_TAGS", "replicated-by=ami-replicator, cost-center=42"),
    ])
    .unwrap();
    assert_eq!(ok.settings.rule.extra_tags.len(), 2);
    assert!(ok.settings.rule.description_template.is_some());
    let err = parse(&[
        ("TARGET_REGIONS", "eu-west-1"),
        QUEUE,
        ("COPY_DESCRIPTION_TEMPLATE", "copied from {source}"),
        ("EXTRA_TAGS", "aws:owner=x,ami-replicator:source-image=y,novalue"),
    ])
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("{source}") && text.contains("reserved") && text.contains("KEY=VALUE"), "{text}");
}

#[test]
fn target_regions_are_required() {
    let err = parse(&[QUEUE]).unwrap_err();
    assert!(err.to_string().contains("TARGET_REGIONS is required"), "{err}");
}

#[test]
fn target_accounts_name_their_roles_and_keys_of_their_own() {
    let role = "arn:aws:iam::222222222222:role/ami-replicator-target";
    let c = parse(&[
        ("TARGET_REGIONS", "eu-west-1"),
        QUEUE,
        ("TARGET_ACCOUNTS", &format!("222222222222={role}, arn:aws:iam::333333333333:role/path/other")),
        ("ADMISSION_TABLE", "admission"),
        (
            "KMS_KEY_IDS",
            "eu-west-1=alias/home, 222222222222/us-east-1=arn:aws:kms:us-east-1:222222222222:key/abcd, 333333333333/eu-west-1=alias/c",
        ),
        ("DEREGISTER_COPIES_WITH_SOURCE", "true"),
    ])
    .unwrap();
    let b = AccountId::parse("222222222222").unwrap();
    assert_eq!(c.target_roles.get(&b).map(String::as_str), Some(role));
    assert_eq!(c.settings.rule.target_accounts.len(), 2);
    assert!(c.settings.deregister_copies_with_source);
    let keys = &c.settings.rule.encryption.kms_keys;
    assert_eq!(keys.len(), 3);
    // A target account's key may be for the source region: its copies go there too.
    assert!(keys.contains_key(&Place::new(Some(b), Region::parse("us-east-1").unwrap())));

    let unset = parse(&[("TARGET_REGIONS", "eu-west-1"), QUEUE]).unwrap();
    assert!(unset.target_roles.is_empty() && unset.settings.rule.target_accounts.is_empty());
    assert!(!unset.settings.deregister_copies_with_source);
}

#[test]
fn target_account_mistakes_are_named() {
    let base = [("TARGET_REGIONS", "eu-west-1"), QUEUE];
    let cases = [
        ("TARGET_ACCOUNTS", "222222222222=arn:aws:iam::333333333333:role/x", "belongs to account 333333333333"),
        ("TARGET_ACCOUNTS", "222222222222=arn:aws:iam::222222222222:user/x", "not an IAM role ARN"),
        ("TARGET_ACCOUNTS", "2222=arn:aws:iam::222222222222:role/x", "12 digits"),
        ("KMS_KEY_IDS", "444444444444/eu-west-1=alias/x", "not in TARGET_ACCOUNTS"),
    ];
    for (var, value, expected) in cases {
        let err = parse(&[base[0], base[1], (var, value)]).unwrap_err().to_string();
        assert!(err.contains(var) && err.contains(expected), "{var}={value}: {err}");
    }
    let wrong_owner = parse(&[
        base[0],
        base[1],
        ("TARGET_ACCOUNTS", "arn:aws:iam::222222222222:role/x"),
        ("KMS_KEY_IDS", "222222222222/eu-west-1=arn:aws:kms:eu-west-1:111111111111:key/abcd"),
    ])
    .unwrap_err()
    .to_string();
    assert!(wrong_owner.contains("a key of its own"), "{wrong_owner}");
    // Target accounts copy into the source region, where only the function's record (in the admission table)
    // tells its copy from an image built there from an instance of the source.
    let no_table =
        parse(&[base[0], base[1], ("TARGET_ACCOUNTS", "arn:aws:iam::222222222222:role/x")]).unwrap_err().to_string();
    assert!(no_table.contains("ADMISSION_TABLE is required with target accounts"), "{no_table}");
}

#[test]
fn sweep_and_trust_settings() {
    let c = parse(&[
        ("TARGET_REGIONS", "eu-west-1"),
        QUEUE,
        ("AWS_REGION", "us-east-1"),
        ("TRUSTED_SOURCE_ACCOUNTS", "777788889999"),
        ("SWEEP_LOOKBACK_HOURS", "72"),
    ])
    .unwrap();
    assert_eq!(c.settings.source_regions, vec![Region::parse("us-east-1").unwrap()], "the function's own region");
    assert_eq!(c.settings.sweep_lookback_hours, 72);
    assert_eq!(c.settings.trusted_source_accounts.len(), 1);
    let c = parse(&[
        ("TARGET_REGIONS", "eu-west-1"),
        QUEUE,
        ("AWS_REGION", "us-east-1"),
        ("SOURCE_REGIONS", "eu-west-2,ap-south-1"),
    ])
    .unwrap();
    assert_eq!(c.settings.source_regions.len(), 2);
    assert_eq!(c.settings.sweep_lookback_hours, 48);
    let err = parse(&[("TARGET_REGIONS", "eu-west-1"), QUEUE, ("SWEEP_LOOKBACK_HOURS", "0")]).unwrap_err().to_string();
    assert!(err.contains("SWEEP_LOOKBACK_HOURS"), "{err}");
}

#[test]
fn copy_events_make_polling_the_safety_net() {
    let c = parse(&[("TARGET_REGIONS", "eu-west-1"), QUEUE, ("COPY_EVENTS", "true")]).unwrap();
    assert_eq!(c.settings.step.poll_seconds, 300);
    let c = parse(&[("TARGET_REGIONS", "eu-west-1"), QUEUE, ("COPY_EVENTS", "true"), ("COPY_POLL_SECONDS", "120")])
        .unwrap();
    assert_eq!(c.settings.step.poll_seconds, 120, "an explicit COPY_POLL_SECONDS wins");
}

#[test]
fn copy_completion_minutes_are_15_to_2880_in_steps_of_15() {
    let base = [("TARGET_REGIONS", "eu-west-1"), QUEUE];
    assert_eq!(parse(&base).unwrap().settings.rule.copy_completion_minutes, None, "unset: best effort");
    for (raw, want) in [("15", 15), ("60", 60), ("2880", 2880)] {
        let c = parse(&[base[0], base[1], ("COPY_COMPLETION_MINUTES", raw)]).unwrap();
        assert_eq!(c.settings.rule.copy_completion_minutes, Some(want));
    }
    for bad in ["0", "10", "20", "2895", "abc", "-15"] {
        let err = parse(&[base[0], base[1], ("COPY_COMPLETION_MINUTES", bad)]).unwrap_err().to_string();
        assert!(err.contains("COPY_COMPLETION_MINUTES"), "{bad}: {err}");
    }
}

#[test]
fn publish_events_and_ssm_parameter_template() {
    let base = [("TARGET_REGIONS", "eu-west-1"), QUEUE];
    let c = parse(&base).unwrap();
    assert!(!c.settings.publish_events);
    assert_eq!(c.settings.rule.ssm_parameter_template, None);
    let c = parse(&[base[0], base[1], ("PUBLISH_EVENTS", "true"), ("SSM_PARAMETER_TEMPLATE", "/ami/{name}/latest")])
        .unwrap();
    assert!(c.settings.publish_events);
    assert_eq!(c.settings.rule.ssm_parameter_template.as_deref(), Some("/ami/{name}/latest"));
    for bad in ["ami/{name}", "/ami/{owner}/latest", "/ami/{name", "/{name}", "/ami-{name}", "//{name}", "/latest"] {
        let err = parse(&[base[0], base[1], ("SSM_PARAMETER_TEMPLATE", bad)]).unwrap_err().to_string();
        assert!(err.contains("SSM_PARAMETER_TEMPLATE"), "{bad}: {err}");
    }
}

#[test]
fn every_job_has_a_maximum_age_and_an_empty_poll_takes_the_default() {
    let c = parse(&[("TARGET_REGIONS", "eu-west-1"), QUEUE]).unwrap();
    assert_eq!(c.settings.job_max_age_hours, 72);
    let c = parse(&[("TARGET_REGIONS", "eu-west-1"), QUEUE, ("JOB_MAX_AGE_HOURS", "24")]).unwrap();
    assert_eq!(c.settings.job_max_age_hours, 24);
    for bad in ["0", "337", "a day"] {
        let err = parse(&[("TARGET_REGIONS", "eu-west-1"), QUEUE, ("JOB_MAX_AGE_HOURS", bad)]).unwrap_err();
        assert!(err.to_string().contains("JOB_MAX_AGE_HOURS"), "{bad}: {err}");
    }
    // The template passes CopyPollSeconds through, empty by default: 300 s with copy events, 60 s without.
    let c =
        parse(&[("TARGET_REGIONS", "eu-west-1"), QUEUE, ("COPY_EVENTS", "true"), ("COPY_POLL_SECONDS", "")]).unwrap();
    assert_eq!(c.settings.step.poll_seconds, 300);
    let c = parse(&[("TARGET_REGIONS", "eu-west-1"), QUEUE, ("COPY_POLL_SECONDS", "")]).unwrap();
    assert_eq!(c.settings.step.poll_seconds, 60);
}
