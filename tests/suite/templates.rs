//! The templates agree with the code: every variable template.yaml sets is one the function reads, and the
//! target account's role trusts the session name the replicator uses. (cfn-lint, checkov and
//! `sam validate --lint` check the templates themselves in scripts/test.sh.)

use std::path::PathBuf;

fn read(name: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

#[test]
fn every_environment_variable_of_the_template_is_read_by_the_configuration() {
    let template = read("template.yaml");
    let variables = template.split("        Variables:\n").nth(1).expect("the function's Environment.Variables");
    let names: Vec<&str> = variables
        .lines()
        .take_while(|l| l.starts_with("          "))
        .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k))
        .collect();
    assert!(names.len() >= 17, "{names:?}");
    // Every name the configuration asks the environment for, as the function reads it at start-up.
    let asked = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let lookup = |name: &str| {
        asked.lock().unwrap().insert(name.to_string());
        match name {
            "TARGET_REGIONS" => Some("eu-west-1".to_string()),
            "WORK_QUEUE_URL" => Some("https://sqs.us-east-1.amazonaws.com/123456789012/work".to_string()),
            _ => None,
        }
    };
    ami_replicator::config::Config::from_lookup(&lookup).unwrap();
    let asked = asked.into_inner().unwrap();
    for name in names {
        assert!(asked.contains(name), "{name} is set by template.yaml but never read");
    }
}

#[test]
fn the_target_role_trusts_the_replicators_session_name() {
    let template = read("target-account.yaml");
    let expected = format!("sts:RoleSessionName: {}", ami_replicator::aws::ec2::SESSION_NAME);
    assert!(template.contains(&expected), "target-account.yaml must trust {expected}");
}

/// The text of the resource or statement that starts at the line `start` (up to the next line indented as much).
fn block<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text.find(start).unwrap_or_else(|| panic!("{start} not found"));
    let indent = text[..at].rsplit('\n').next().unwrap_or_default().len();
    let rest = &text[at..];
    let end = rest
        .match_indices('\n')
        .map(|(i, _)| i)
        .find(|&i| {
            let line = &rest[i + 1..];
            let trimmed = line.trim_start();
            !trimmed.is_empty() && line.len() - trimmed.len() <= indent
        })
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn least_privilege_is_written_in_the_policies() {
    for name in ["template.yaml", "target-account.yaml"] {
        let template = read(name);
        // Sharing a copy only adds; the public group only with AllowPublic (the second branch of the !If).
        let share = block(&template, "- Sid: ShareOwnCopiesOnlyAdding");
        assert!(share.contains("Action: ec2:ModifyImageAttribute") && share.contains("- AllowsPublic"), "{name}");
        let without_public = &share[share.rfind("- \"Null\":").unwrap()..];
        for key in ["ec2:Remove/userId: \"true\"", "ec2:Remove/group: \"true\"", "ec2:Add/group: \"true\""] {
            assert!(without_public.contains(key), "{name}: {key} when AllowPublic is false");
        }
        assert!(!block(&template, "- Sid: ManageOnlyOwnCopies").contains("ModifyImageAttribute"), "{name}");
        // DisableImage/EnableImage only with DisableCopiesWithSource, only on the product's copies.
        let follow = block(&template, "- !If\n                - DisablesWithSource");
        assert!(follow.contains("Action: [ec2:DisableImage, ec2:EnableImage]"), "{name}: {follow}");
        assert!(follow.contains("aws:ResourceTag/ami-replicator:source-image: \"false\""), "{name}");
        let used = block(&template, "- !If\n                - ChecksCopyReferences");
        assert!(used.contains("ec2:DescribeImageReferences"), "{name}: what uses a copy is read before disabling");
        for other in template.split("- Sid: ").skip(1).filter(|s| !s.starts_with("FollowSourceDisablingOwnCopiesOnly"))
        {
            let statement = other.split("- Sid: ").next().unwrap_or_default();
            let allows = statement.contains("Effect: Allow");
            assert!(!(allows && statement.contains("ec2:DisableImage")), "{name}: DisableImage allowed elsewhere");
        }
    }
    for name in ["template.yaml", "target-account.yaml"] {
        let template = read(name);
        let regions = block(&template, "- Sid: WriteOnlyInConfiguredRegions");
        assert!(regions.contains("Effect: Deny") && regions.contains("aws:RequestedRegion"), "{name}: {regions}");
        for action in [
            "CopyImage",
            "CreateTags",
            "ModifyImageAttribute",
            "ModifySnapshotAttribute",
            "DeregisterImage",
            "DeleteSnapshot",
            "DisableImage",
            "EnableImage",
            "CreateLaunchTemplateVersion",
            "ModifyLaunchTemplate",
        ] {
            assert!(regions.contains(&format!("- ec2:{action}")), "{name}: {action} only in configured regions");
        }
        // A copy is shared (and its snapshots) with the configured accounts only, whenever the stack knows them.
        let named = block(&template, "- Sid: ShareCopiesWithTheConfiguredAccountsOnly");
        assert!(named.contains("Effect: Deny") && named.contains("ec2:ModifySnapshotAttribute"), "{name}: {named}");
        assert!(named.contains("ec2:Add/userId: !Split [\",\", !Ref ShareWithAccounts]"), "{name}: {named}");
        assert!(named.contains("aws:ResourceTag/ami-replicator:source-image: \"false\""), "{name}: {named}");
        // Launch templates: only the named ones when the stack names them.
        let templates = block(&template, "- Sid: NewLaunchTemplateVersionsForCopies");
        assert!(templates.contains("- NamesLaunchTemplates") && templates.contains("!Ref LaunchTemplateArns"));
        // SSM parameters: never the whole namespace (a path level of its own).
        assert!(block(&template, "  SsmParameterTemplate:").contains("^/[A-Za-z0-9_.-]+/"), "{name}");
    }
    let template = read("template.yaml");
    assert!(block(&template, "  NamesShareAccounts:").contains("CopySourceLaunchPermissions, \"false\""));
    // Grants on sources only as the code makes them: target accounts, in the source regions, never on a copy.
    for sid in ["ShareSourcesWithTargetAccountsOnly", "ShareSourceSnapshotsWithTargetAccountsOnly"] {
        let grant = block(&template, &format!("- Sid: {sid}"));
        assert!(grant.contains("ec2:Add/userId: !Ref TargetAccountIds"), "{grant}");
        assert!(grant.contains("aws:RequestedRegion: !If") && grant.contains("!Ref SourceRegions"), "{grant}");
        assert!(grant.contains("aws:ResourceTag/ami-replicator:source-image: \"true\""), "{grant}");
    }
    let bus = block(&template, "  ForwardedCopyEventsPolicy:");
    assert!(bus.contains("events:source: aws.ec2") && bus.contains("events:detail-type: EC2 AMI State Change"));
    let senders = block(&template, "- Sid: OnlyNamedSendersFunctionAndRules");
    assert!(
        senders.contains("Effect: Deny") && senders.contains("aws:PrincipalArn") && senders.contains("aws:SourceArn")
    );
    assert!(senders.contains("!GetAtt FunctionRole.Arn") && senders.contains("!GetAtt AmiStateChangeRule.Arn"));
    // With CopyEvents, the function's own default (300 s) applies unless the operator sets a poll.
    assert!(block(&template, "  CopyPollSeconds:").contains("Default: \"\""));
    assert!(block(&template, "  OldestJobAlarm:").contains("MetricName: OldestJobAge"));
}

#[test]
fn admission_leases_are_the_table_the_code_writes_and_nothing_more() {
    let template = read("template.yaml");
    let table = block(&template, "  AdmissionTable:");
    for needed in ["Type: AWS::DynamoDB::Table", "AttributeName: place", "KeyType: HASH", "AttributeName: expires"] {
        assert!(table.contains(needed), "{needed}");
    }
    // The adapter's calls: UpdateItem (a lease taken and given back, both conditional; waiting jobs parked), GetItem
    // (the waiting list read), PutItem (a copy recorded) and BatchGetItem (recorded copies read back), on that table
    // only.
    let leases = read("src/aws/leases.rs");
    assert!(
        leases.matches(".put_item()").count() == 1
            && leases.matches(".batch_get_item()").count() == 1
            && leases.matches(".update_item()").count() == 1
            && leases.matches(".get_item()").count() == 1
            && !leases.contains(".delete_item()")
    );
    let grant = block(&template, "- Sid: TakeAndGiveBackAdmissionLeases");
    assert!(
        grant.contains("Action: [dynamodb:UpdateItem, dynamodb:GetItem, dynamodb:PutItem, dynamodb:BatchGetItem]")
            && grant.contains("Resource: !GetAtt AdmissionTable.Arn"),
        "{grant}"
    );
    assert_eq!(template.matches("dynamodb:").count(), 4, "no other DynamoDB action");
    assert!(template.contains("ADMISSION_TABLE: !Ref AdmissionTable"));
}

#[test]
fn the_simulated_event_source_mapping_is_the_deployed_one() {
    // The benchmark and the simulator's concurrent invocations take these from template.yaml.
    let (batch, concurrency, window) = ami_replicator::sim::routing::deployed_mapping().expect("the mapping");
    let template = read("template.yaml");
    assert!(block(&template, "  BatchSize:").contains(&format!("Default: {batch}")));
    assert!(block(&template, "  MaximumConcurrency:").contains(&format!("Default: {concurrency}")));
    assert!(template.contains(&format!("MaximumBatchingWindowInSeconds: {window}")));
    assert_eq!((batch, concurrency, window), (100, 2, 5));
}

#[test]
fn the_rules_document_is_read_from_exactly_its_parameter() {
    let template = read("template.yaml");
    let grant = block(&template, "- Sid: ReadTheRulesDocument");
    assert!(grant.contains("Action: ssm:GetParameter"), "{grant}");
    assert!(grant.contains(":parameter${ReplicationRulesParameter}"), "that parameter only: {grant}");
    assert!(!grant.contains('*'), "no wildcard: {grant}");
    assert!(template.contains(
        "REPLICATION_RULES: !If [RulesInSsm, !Sub \"ssm:${ReplicationRulesParameter}\", !Ref ReplicationRules]"
    ));
    let config = read("src/aws/replication_rules.rs");
    assert!(config.contains("strip_prefix(\"ssm:\")") && config.contains("with_decryption(true)"));
}

#[test]
fn instance_store_sources_get_exactly_the_s3_grants_the_copy_documentation_lists() {
    // Issue 28: the AMI-copy documentation's policy, behind InstanceStoreSourceBundleArns, in both templates.
    for name in ["template.yaml", "target-account.yaml"] {
        let template = read(name);
        assert!(
            block(&template, "  InstanceStoreSourceBundleArns:").contains("Default: \"\""),
            "{name}: off by default"
        );
        let write = block(&template, "- Sid: CopyInstanceStoreSourcesThroughS3");
        assert!(write.contains("Action: [s3:CreateBucket, s3:PutBucketOwnershipControls, s3:GetBucketAcl, s3:PutObject, s3:PutObjectAcl]"), "{name}");
        assert!(write.contains("s3:::amis-for-${AWS::AccountId}-in-*"), "{name}: this account's copy buckets only");
        let read_bundles = block(&template, "- Sid: ReadInstanceStoreSourceBundles");
        assert!(
            read_bundles.contains("Action: s3:GetObject")
                && read_bundles.contains("!Ref InstanceStoreSourceBundleArns")
        );
        assert!(block(&template, "- Sid: ListBucketsForInstanceStoreCopies").contains("Action: s3:ListAllMyBuckets"));
        assert!(!template.contains("s3:*") && !template.contains("s3:Delete"), "{name}: no other S3 action");
        for sid in
            ["CopyInstanceStoreSourcesThroughS3", "ReadInstanceStoreSourceBundles", "ListBucketsForInstanceStoreCopies"]
        {
            let condition = format!("- CopiesInstanceStore\n                - Sid: {sid}");
            assert!(template.contains(&condition), "{name}: {sid} only with InstanceStoreSourceBundleArns");
        }
    }
}
