//! The AWS adapters against aws-smithy-mocks: the exact request of a call, and real EC2/SQS error responses
//! (status and XML/JSON bodies as the services send them) mapped to the core's error classes.

use ami_replicator::aws::ec2::AwsEc2;
use ami_replicator::aws::sqs::AwsQueue;
use ami_replicator::core::copy_rules::CopyEncryption;
use ami_replicator::core::errors::{ErrorClass, ERROR_TABLE};
use ami_replicator::core::ids::{ImageId, Region};
use ami_replicator::core::image::{LaunchPermission, Tag};
use ami_replicator::core::provenance::SOURCE_IMAGE_TAG;
use ami_replicator::ports::{CopyRequest, Ec2, OutgoingMessage, Queue};
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::types::ResourceType;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

fn ec2_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>5b4c8a4e-0d2a-4a0e-9c8e-1f2e3d4c5b6a</RequestID></Response>"
    );
    HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

fn request() -> CopyRequest {
    CopyRequest {
        source_image: ImageId::parse("ami-0123456789abcdef0").unwrap(),
        source_region: Region::parse("us-east-1").unwrap(),
        name: "golden".into(),
        description: Some("built by CI".into()),
        client_token: "a".repeat(64),
        tags: vec![Tag::new(SOURCE_IMAGE_TAG, "ami-0123456789abcdef0")],
        encryption: CopyEncryption { encrypted: true, kms_key_id: Some("alias/ami-copies".into()) },
        completion_minutes: None,
    }
}

/// Real EC2 error codes for CopyImage, with the status EC2 answers them with, and the class the core gives them.
const COPY_IMAGE_ERRORS: &[(u16, &str, ErrorClass)] = &[
    (400, "ResourceLimitExceeded", ErrorClass::Capacity),
    (503, "RequestLimitExceeded", ErrorClass::Throttled),
    (500, "InternalError", ErrorClass::Transient),
    (503, "Unavailable", ErrorClass::Transient),
    (400, "InvalidAMIID.NotFound", ErrorClass::Permanent),
    (400, "InvalidAMIID.Unavailable", ErrorClass::Permanent),
    (400, "InvalidSnapshot.NotFound", ErrorClass::Permanent),
    (400, "InvalidParameterValue", ErrorClass::Permanent),
    (400, "IdempotentParameterMismatch", ErrorClass::Permanent),
    (403, "UnauthorizedOperation", ErrorClass::Permanent),
    (401, "AuthFailure", ErrorClass::Permanent),
    (401, "OptInRequired", ErrorClass::Permanent),
    (400, "SomeCodeAddedNextYear", ErrorClass::Transient),
];

#[tokio::test]
async fn copy_image_errors_are_classified_by_their_code() {
    for &(status, code, class) in COPY_IMAGE_ERRORS {
        let rule = mock!(aws_sdk_ec2::Client::copy_image).then_http_response(move || ec2_error(status, code, "boom"));
        let client =
            mock_client!(aws_sdk_ec2, RuleMode::Sequential, &[&rule], |c| c.retry_config(RetryConfig::disabled()));
        let err = AwsEc2::new(client).copy_image(&request()).await.unwrap_err();
        assert_eq!(err.code, code);
        assert_eq!(err.class, class, "{code}");
        assert!(err.message.contains("boom"), "{err}");
    }
}

/// The class every code must have, written here by hand (not read from the core's table): a row of
/// ERROR_TABLE that changes class, or a code added without a line here, fails this test.
const EXPECTED_CLASSES: &[(&str, ErrorClass)] = &[
    ("RequestLimitExceeded", ErrorClass::Throttled),
    ("Throttling", ErrorClass::Throttled),
    ("ThrottlingException", ErrorClass::Throttled),
    ("RequestThrottled", ErrorClass::Throttled),
    ("ProvisionedThroughputExceededException", ErrorClass::Throttled),
    ("ResourceLimitExceeded", ErrorClass::Capacity),
    ("InternalError", ErrorClass::Transient),
    ("InternalFailure", ErrorClass::Transient),
    ("ServiceUnavailable", ErrorClass::Transient),
    ("Unavailable", ErrorClass::Transient),
    ("RequestTimeout", ErrorClass::Transient),
    ("IncorrectState", ErrorClass::Transient),
    ("InvalidAMIID.NotFound", ErrorClass::Permanent),
    ("InvalidAMIID.Malformed", ErrorClass::Permanent),
    ("InvalidAMIID.Unavailable", ErrorClass::Permanent),
    ("InvalidSnapshot.NotFound", ErrorClass::Permanent),
    ("InvalidParameterValue", ErrorClass::Permanent),
    ("InvalidParameter", ErrorClass::Permanent),
    ("InvalidParameterCombination", ErrorClass::Permanent),
    ("InvalidRequest", ErrorClass::Permanent),
    ("MissingParameter", ErrorClass::Permanent),
    ("UnsupportedOperation", ErrorClass::Permanent),
    ("IdempotentParameterMismatch", ErrorClass::Permanent),
    ("UnauthorizedOperation", ErrorClass::Permanent),
    ("AccessDenied", ErrorClass::Permanent),
    ("AccessDeniedException", ErrorClass::Permanent),
    ("AuthFailure", ErrorClass::Permanent),
    ("OptInRequired", ErrorClass::Permanent),
    ("OperationNotPermitted", ErrorClass::Permanent),
    ("ResourceNotFoundException", ErrorClass::Permanent),
    ("ParameterNotFound", ErrorClass::Permanent),
    ("ParameterLimitExceeded", ErrorClass::Permanent),
    ("HierarchyLevelLimitExceededException", ErrorClass::Permanent),
    ("InvalidDataType", ErrorClass::Permanent),
    ("AssumeRoleDenied", ErrorClass::Permanent),
    ("InvalidClientTokenId", ErrorClass::Permanent),
    ("UnrecognizedClientException", ErrorClass::Permanent),
    ("DisabledException", ErrorClass::Permanent),
    ("KMSInvalidStateException", ErrorClass::Permanent),
    ("InvalidKeyUsageException", ErrorClass::Permanent),
    ("NotFoundException", ErrorClass::Permanent),
    ("KeyUnavailableException", ErrorClass::Transient),
    ("DependencyTimeoutException", ErrorClass::Transient),
    ("AWS.SimpleQueueService.NonExistentQueue", ErrorClass::Permanent),
    ("QueueDoesNotExist", ErrorClass::Permanent),
    ("MessageTooLong", ErrorClass::Permanent),
    ("BatchRequestTooLong", ErrorClass::Permanent),
];

/// Every code, answered by CopyImage as EC2 answers errors, gets the class written above and its meaning.
#[tokio::test]
async fn every_code_is_classified_as_written_in_the_test() {
    let table: Vec<&str> = ERROR_TABLE.iter().map(|(c, _, _)| *c).collect();
    let expected: Vec<&str> = EXPECTED_CLASSES.iter().map(|(c, _)| *c).collect();
    assert_eq!(table, expected, "every code of ERROR_TABLE has its expected class written here");
    for &(code, class) in EXPECTED_CLASSES {
        let status = match class {
            ErrorClass::Throttled | ErrorClass::Transient => 503,
            _ => 400,
        };
        let rule = mock!(aws_sdk_ec2::Client::copy_image).then_http_response(move || ec2_error(status, code, "detail"));
        let client =
            mock_client!(aws_sdk_ec2, RuleMode::Sequential, &[&rule], |c| c.retry_config(RetryConfig::disabled()));
        let err = AwsEc2::new(client).copy_image(&request()).await.unwrap_err();
        assert_eq!((err.code.as_str(), err.class), (code, class));
        let meaning = ERROR_TABLE.iter().find(|(c, _, _)| *c == code).map(|(_, _, m)| *m).unwrap_or_default();
        assert!(err.to_string().contains(meaning), "{err}");
    }
}

#[tokio::test]
async fn copy_image_sends_token_and_its_own_tags_never_copy_image_tags() {
    let rule = mock!(aws_sdk_ec2::Client::copy_image)
        .match_requests(|r| {
            let specs = r.tag_specifications();
            let kinds: Vec<_> = specs.iter().filter_map(|s| s.resource_type().cloned()).collect();
            r.source_image_id() == Some("ami-0123456789abcdef0")
                && r.source_region() == Some("us-east-1")
                && r.name() == Some("golden")
                && r.description() == Some("built by CI")
                && r.client_token().map(str::len) == Some(64)
                && r.copy_image_tags() == Some(false)
                && r.encrypted() == Some(true)
                && r.kms_key_id() == Some("alias/ami-copies")
                && kinds == vec![ResourceType::Image, ResourceType::Snapshot]
                && specs.iter().all(|s| s.tags().iter().any(|t| t.key() == Some(SOURCE_IMAGE_TAG)))
        })
        .then_output(|| {
            aws_sdk_ec2::operation::copy_image::CopyImageOutput::builder().image_id("ami-11111111").build()
        });
    let client = mock_client!(aws_sdk_ec2, [&rule]);
    let copy = AwsEc2::new(client).copy_image(&request()).await.unwrap();
    assert_eq!(copy.as_str(), "ami-11111111");
    assert_eq!(rule.num_calls(), 1);
}

/// A time-based copy sends SnapshotCopyCompletionDurationMinutes, and a refusal because the throughput quota is
/// in use is capacity (wait and retry), never a failure. EC2 reports account quotas on CopyImage as
/// `ResourceLimitExceeded`; the message is the one the EBS guide gives for the cumulative quota.
#[tokio::test]
async fn time_based_copies_send_their_duration_and_a_used_up_quota_is_capacity() {
    let ok = mock!(aws_sdk_ec2::Client::copy_image)
        .match_requests(|r| r.snapshot_copy_completion_duration_minutes() == Some(15))
        .then_output(|| {
            aws_sdk_ec2::operation::copy_image::CopyImageOutput::builder().image_id("ami-22222222").build()
        });
    let quota = mock!(aws_sdk_ec2::Client::copy_image).then_http_response(|| {
        ec2_error(400, "ResourceLimitExceeded", "The cumulative snapshot copy throughput quota has been exceeded")
    });
    let client =
        mock_client!(aws_sdk_ec2, RuleMode::Sequential, &[&ok, &quota], |c| c.retry_config(RetryConfig::disabled()));
    let ec2 = AwsEc2::new(client);
    let timed = CopyRequest { completion_minutes: Some(15), ..request() };
    assert_eq!(ec2.copy_image(&timed).await.unwrap().as_str(), "ami-22222222");
    let err = ec2.copy_image(&timed).await.unwrap_err();
    assert_eq!((err.code.as_str(), err.class), ("ResourceLimitExceeded", ErrorClass::Capacity));
    assert_eq!(ok.num_calls(), 1);
}

#[tokio::test]
async fn best_effort_copies_send_no_completion_duration() {
    let rule = mock!(aws_sdk_ec2::Client::copy_image)
        .match_requests(|r| r.snapshot_copy_completion_duration_minutes().is_none())
        .then_output(|| {
            aws_sdk_ec2::operation::copy_image::CopyImageOutput::builder().image_id("ami-33333333").build()
        });
    let client = mock_client!(aws_sdk_ec2, [&rule]);
    AwsEc2::new(client).copy_image(&request()).await.unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_missing_source_is_none_and_deregistering_a_gone_image_is_success() {
    let describe = mock!(aws_sdk_ec2::Client::describe_images).then_http_response(|| {
        ec2_error(400, "InvalidAMIID.NotFound", "The image id '[ami-0123456789abcdef0]' does not exist")
    });
    let deregister = mock!(aws_sdk_ec2::Client::deregister_image)
        .then_http_response(|| ec2_error(400, "InvalidAMIID.Unavailable", "The image is already deregistered"));
    let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, &[&describe, &deregister], |c| c
        .retry_config(RetryConfig::disabled()));
    let ec2 = AwsEc2::new(client);
    let id = ImageId::parse("ami-0123456789abcdef0").unwrap();
    assert_eq!(ec2.describe_image(&id).await.unwrap(), None);
    ec2.deregister_image(&id).await.unwrap();
}

#[tokio::test]
async fn launch_permissions_round_trip_through_the_sdk_types() {
    use aws_sdk_ec2::types::{LaunchPermission as P, PermissionGroup};
    let describe = mock!(aws_sdk_ec2::Client::describe_image_attribute).then_output(|| {
        aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput::builder()
            .launch_permissions(P::builder().user_id("111122223333").build())
            .launch_permissions(P::builder().group(PermissionGroup::All).build())
            .launch_permissions(
                P::builder().organization_arn("arn:aws:organizations::123456789012:organization/o-abc123def4").build(),
            )
            .build()
    });
    let modify = mock!(aws_sdk_ec2::Client::modify_image_attribute)
        .match_requests(|r| {
            let add = r.launch_permission().map(|l| l.add().to_vec()).unwrap_or_default();
            add.len() == 2 && add[0].user_id() == Some("111122223333") && add[1].group() == Some(&PermissionGroup::All)
        })
        .then_output(|| aws_sdk_ec2::operation::modify_image_attribute::ModifyImageAttributeOutput::builder().build());
    let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, &[&describe, &modify]);
    let ec2 = AwsEc2::new(client);
    let id = ImageId::parse("ami-0123456789abcdef0").unwrap();
    let perms = ec2.launch_permissions(&id).await.unwrap();
    assert_eq!(perms.len(), 3);
    assert_eq!(perms[1], LaunchPermission::Public);
    ec2.add_launch_permissions(&id, &perms[..2]).await.unwrap();
    assert_eq!(modify.num_calls(), 1);
}

#[tokio::test]
async fn send_reports_each_entry_and_splits_into_batches_of_ten() {
    use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
    use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchResultEntry};
    let ok = |id: &str| {
        SendMessageBatchResultEntry::builder().id(id).message_id("m").md5_of_message_body("x").build().unwrap()
    };
    let rule = mock!(aws_sdk_sqs::Client::send_message_batch)
        .sequence()
        .output(move || {
            let mut out = SendMessageBatchOutput::builder();
            for i in 0..10 {
                if i == 3 {
                    continue;
                }
                out = out.successful(ok(&i.to_string()));
            }
            out.failed(
                BatchResultErrorEntry::builder()
                    .id("3")
                    .code("InternalError")
                    .sender_fault(false)
                    .message("try later")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
        })
        .output(move || {
            SendMessageBatchOutput::builder()
                .successful(ok("0"))
                .successful(ok("1"))
                .set_failed(Some(vec![]))
                .build()
                .unwrap()
        })
        .build();
    let client = mock_client!(aws_sdk_sqs, [&rule]);
    let queue = AwsQueue::new(client, "https://sqs.us-east-1.amazonaws.com/123456789012/work".into(), None);
    let messages: Vec<OutgoingMessage> =
        (0..12).map(|i| OutgoingMessage { body: format!("m{i}"), delay_seconds: 5 }).collect();
    let results = queue.send(&messages).await;
    assert_eq!(results.len(), 12);
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    assert_eq!(results[3].as_ref().unwrap_err().class, ErrorClass::Transient);
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn dead_letters_carry_the_reason_as_an_attribute() {
    let rule = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(|r| {
            r.queue_url() == Some("https://sqs.us-east-1.amazonaws.com/123456789012/dlq")
                && r.message_body() == Some("{}")
                && r.message_attributes().and_then(|a| a.get("failure_reason")).and_then(|v| v.string_value())
                    == Some("source image not found")
        })
        .then_output(|| aws_sdk_sqs::operation::send_message::SendMessageOutput::builder().build());
    let client = mock_client!(aws_sdk_sqs, [&rule]);
    let queue = AwsQueue::new(
        client,
        "https://sqs.us-east-1.amazonaws.com/123456789012/work".into(),
        Some("https://sqs.us-east-1.amazonaws.com/123456789012/dlq".into()),
    );
    assert!(queue.dead_letter("{}", "source image not found").await.unwrap());
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn sharing_a_snapshot_sends_create_volume_permission_and_aws_ebs_is_refused() {
    use aws_sdk_ec2::types::SnapshotAttributeName;
    let snapshot = ami_replicator::core::ids::SnapshotId::parse("snap-0123456789abcdef0").unwrap();
    let account = ami_replicator::core::ids::AccountId::parse("222222222222").unwrap();
    let grant = mock!(aws_sdk_ec2::Client::modify_snapshot_attribute)
        .match_requests(|r| {
            r.snapshot_id() == Some("snap-0123456789abcdef0")
                && r.attribute() == Some(&SnapshotAttributeName::CreateVolumePermission)
                && r.create_volume_permission().map(|m| m.add().iter().filter_map(|p| p.user_id()).collect::<Vec<_>>())
                    == Some(vec!["222222222222"])
        })
        .then_output(|| {
            aws_sdk_ec2::operation::modify_snapshot_attribute::ModifySnapshotAttributeOutput::builder().build()
        });
    let client = mock_client!(aws_sdk_ec2, [&grant]);
    AwsEc2::new(client).add_create_volume_permission(&snapshot, &account).await.unwrap();
    assert_eq!(grant.num_calls(), 1);

    // EC2's answer for a snapshot encrypted with the AWS-managed key: permanent, never retried.
    let refused = mock!(aws_sdk_ec2::Client::modify_snapshot_attribute).then_http_response(|| {
        ec2_error(400, "OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
    });
    let client =
        mock_client!(aws_sdk_ec2, RuleMode::Sequential, &[&refused], |c| c.retry_config(RetryConfig::disabled()));
    let err = AwsEc2::new(client).add_create_volume_permission(&snapshot, &account).await.unwrap_err();
    assert_eq!((err.code.as_str(), err.class), ("OperationNotPermitted", ErrorClass::Permanent));
    assert!(err.to_string().contains("aws/ebs"), "{err}");
}

#[tokio::test]
async fn a_copy_and_its_snapshots_go_in_one_call_and_what_ec2_kept_is_told() {
    // Issue 28: DeregisterImage with DeleteAssociatedSnapshots, so that no fault between two calls orphans a
    // snapshot; the snapshots EC2 could not delete are answered with why; an image already gone is success.
    use aws_sdk_ec2::types::{DeleteSnapshotReturnCode, SnapshotReturnCodes};
    let copy = ImageId::parse("ami-0123456789abcdef0").unwrap();
    let retired = mock!(aws_sdk_ec2::Client::deregister_image)
        .match_requests(|r| {
            r.image_id() == Some("ami-0123456789abcdef0") && r.delete_associated_snapshots() == Some(true)
        })
        .then_output(|| {
            let result = |id: &str, code: SnapshotReturnCodes| {
                DeleteSnapshotReturnCode::builder().snapshot_id(id).return_code(code).build()
            };
            aws_sdk_ec2::operation::deregister_image::DeregisterImageOutput::builder()
                .r#return(true)
                .delete_snapshot_results(result("snap-0123456789abcdef0", SnapshotReturnCodes::Success))
                .delete_snapshot_results(result("snap-0123456789abcdef1", SnapshotReturnCodes::ErrorMissingPermissions))
                .build()
        });
    let gone = mock!(aws_sdk_ec2::Client::deregister_image)
        .then_http_response(|| ec2_error(400, "InvalidAMIID.NotFound", "The image id does not exist."));
    let denied = mock!(aws_sdk_ec2::Client::deregister_image)
        .then_http_response(|| ec2_error(403, "UnauthorizedOperation", "You are not authorized"));
    let client = mock_client!(aws_sdk_ec2, RuleMode::Sequential, &[&retired, &gone, &denied], |c| c
        .retry_config(RetryConfig::disabled()));
    let ec2 = AwsEc2::new(client);
    let left = ec2.deregister_with_snapshots(&copy).await.unwrap();
    assert_eq!(left, ["snap-0123456789abcdef1: missing-permissions"]);
    assert!(ec2.deregister_with_snapshots(&copy).await.unwrap().is_empty(), "already gone: done");
    assert_eq!(ec2.deregister_with_snapshots(&copy).await.unwrap_err().class, ErrorClass::Permanent);
}

#[tokio::test]
async fn image_builder_get_image_lists_the_amis_and_missing_builds_are_permanent() {
    use ami_replicator::aws::imagebuilder::AwsImageBuilder;
    use ami_replicator::ports::ImageBuilder;
    use aws_sdk_imagebuilder::types::{Ami, Image, OutputResources};
    let arn = "arn:aws:imagebuilder:us-east-1:123456789012:image/golden/1.0.0/3";
    let get = mock!(aws_sdk_imagebuilder::Client::get_image)
        .match_requests(move |r| r.image_build_version_arn() == Some(arn))
        .then_output(|| {
            let amis = OutputResources::builder()
                .amis(
                    Ami::builder()
                        .region("us-east-1")
                        .image("ami-0123456789abcdef0")
                        .account_id("123456789012")
                        .build(),
                )
                .amis(Ami::builder().region("eu-west-1").image("ami-0fedcba9876543210").build())
                .amis(Ami::builder().region("moon-1").image("ami-0fedcba9876543210").build())
                .build();
            aws_sdk_imagebuilder::operation::get_image::GetImageOutput::builder()
                .image(Image::builder().output_resources(amis).build())
                .build()
        });
    let client = mock_client!(aws_sdk_imagebuilder, [&get]);
    let amis = AwsImageBuilder::new(client).output_amis(arn).await.unwrap();
    assert_eq!(amis.len(), 2, "an AMI with an unknown region is left out: {amis:?}");
    assert_eq!(amis[0].account.as_ref().map(|a| a.as_str()), Some("123456789012"));
    assert_eq!(amis[1].region.as_str(), "eu-west-1");

    let missing = mock!(aws_sdk_imagebuilder::Client::get_image).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(404).unwrap(),
            SdkBody::from(r#"{"__type":"ResourceNotFoundException","message":"Image not found"}"#),
        )
    });
    let client = mock_client!(aws_sdk_imagebuilder, RuleMode::Sequential, &[&missing], |c| c
        .retry_config(aws_sdk_imagebuilder::config::retry::RetryConfig::disabled()));
    let err = AwsImageBuilder::new(client).output_amis(arn).await.unwrap_err();
    assert_eq!((err.code.as_str(), err.class), ("ResourceNotFoundException", ErrorClass::Permanent), "{err}");
}

/// What EC2 answers in an opt-in region the account has not enabled, through the SDK: the code survives as sent
/// (OptInRequired, or AuthFailure since the credentials are not valid there), both permanent, and the job's
/// reason names the region and how to enable it.
#[tokio::test]
async fn a_region_that_is_not_enabled_is_permanent_and_says_how_to_enable_it() {
    use ami_replicator::core::copy_rules::explain_copy_error;
    use ami_replicator::core::job::Job;
    let answers = [
        (
            401,
            "OptInRequired",
            "You are not subscribed to this service. Please go to http://aws.amazon.com to subscribe.",
        ),
        (401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
    ];
    for (status, code, message) in answers {
        let rule =
            mock!(aws_sdk_ec2::Client::describe_images).then_http_response(move || ec2_error(status, code, message));
        let client =
            mock_client!(aws_sdk_ec2, RuleMode::Sequential, &[&rule], |c| c.retry_config(RetryConfig::disabled()));
        let err = AwsEc2::new(client).pending_images().await.unwrap_err();
        assert_eq!((err.code.as_str(), err.class), (code, ErrorClass::Permanent));
        let job = Job::new(
            ImageId::parse("ami-0123456789abcdef0").unwrap(),
            Region::parse("us-east-1").unwrap(),
            Region::parse("af-south-1").unwrap(),
            None,
            None,
        );
        let reason = explain_copy_error(&job, &err);
        assert!(reason.contains("af-south-1 is an opt-in region") && reason.contains("enable-region"), "{reason}");
    }
}

mod outputs {
    use super::*;
    use ami_replicator::aws::outputs::AwsOutputs;
    use ami_replicator::core::ids::Place;
    use ami_replicator::ports::{OutgoingEvent, Outputs};

    fn json_error(status: u16, code: &str, message: &str) -> HttpResponse {
        let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
    }

    async fn places() -> ami_replicator::aws::ec2::PlaceConfigs {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new("a", "b", None, None, "test"))
            .load()
            .await;
        ami_replicator::aws::ec2::AwsEc2Regions::new(sdk).place_configs()
    }

    #[tokio::test]
    async fn put_events_sends_source_detail_type_and_detail_and_reports_refused_entries() {
        let ok = mock!(aws_sdk_eventbridge::Client::put_events)
            .match_requests(|r| {
                let e = &r.entries()[0];
                e.source() == Some("ami-replicator")
                    && e.detail_type() == Some("AMI Replication Completed")
                    && e.detail() == Some(r#"{"image_id":"ami-11111111"}"#)
                    && e.resources() == ["arn:aws:ec2:eu-west-1::image/ami-11111111"]
            })
            .then_output(|| {
                aws_sdk_eventbridge::operation::put_events::PutEventsOutput::builder().failed_entry_count(0).build()
            });
        let refused = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
            aws_sdk_eventbridge::operation::put_events::PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(
                    aws_sdk_eventbridge::types::PutEventsResultEntry::builder()
                        .error_code("ThrottlingException")
                        .error_message("Rate exceeded")
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, &[&ok, &refused]);
        let outputs = AwsOutputs::new(client, places().await);
        let event = OutgoingEvent {
            detail_type: "AMI Replication Completed".into(),
            detail: serde_json::json!({"image_id": "ami-11111111"}),
            resources: vec!["arn:aws:ec2:eu-west-1::image/ami-11111111".into()],
        };
        outputs.publish(std::slice::from_ref(&event)).await.unwrap();
        let err = outputs.publish(std::slice::from_ref(&event)).await.unwrap_err();
        assert_eq!((err.code.as_str(), err.class), ("ThrottlingException", ErrorClass::Throttled));
        assert_eq!(ok.num_calls(), 1);
    }

    #[tokio::test]
    async fn ssm_parameters_are_image_typed_and_a_missing_one_is_none() {
        // SSM clients are made per place; the place's client is replaced by one the mocks answer.
        let missing = mock!(aws_sdk_ssm::Client::get_parameter)
            .then_http_response(|| json_error(400, "ParameterNotFound", "not found"));
        let put = mock!(aws_sdk_ssm::Client::put_parameter)
            .match_requests(|r| {
                r.name() == Some("/ami/golden/latest")
                    && r.value() == Some("ami-11111111")
                    && r.data_type() == Some("aws:ec2:image")
                    && r.overwrite() == Some(true)
            })
            .then_output(|| aws_sdk_ssm::operation::put_parameter::PutParameterOutput::builder().version(1).build());
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, &[&missing, &put], |c| c
            .retry_config(RetryConfig::disabled()));
        let place = Place::home(Region::parse("eu-west-1").unwrap());
        let outputs =
            AwsOutputs::new(mock_client!(aws_sdk_eventbridge, []), places().await).with_ssm_client(&place, ssm);
        assert_eq!(outputs.parameter(&place, "/ami/golden/latest").await.unwrap(), None);
        let copy = ImageId::parse("ami-11111111").unwrap();
        outputs.put_image_parameter(&place, "/ami/golden/latest", &copy).await.unwrap();
        assert_eq!(put.num_calls(), 1);
    }
}

#[tokio::test]
async fn image_references_ask_for_every_resource_type_and_follow_the_pages() {
    use aws_sdk_ec2::operation::describe_image_references::DescribeImageReferencesOutput;
    use aws_sdk_ec2::types::{ImageReference, ImageReferenceResourceType};
    let first = mock!(aws_sdk_ec2::Client::describe_image_references)
        .match_requests(|r| {
            r.include_all_resource_types() == Some(true)
                && r.image_ids() == ["ami-0123456789abcdef0".to_string()]
                && r.next_token().is_none()
        })
        .then_output(|| {
            DescribeImageReferencesOutput::builder()
                .image_references(
                    ImageReference::builder()
                        .image_id("ami-0123456789abcdef0")
                        .resource_type(ImageReferenceResourceType::Ec2Instance)
                        .arn("arn:aws:ec2:eu-west-1:123456789012:instance/i-1")
                        .build(),
                )
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_ec2::Client::describe_image_references)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            DescribeImageReferencesOutput::builder()
                .image_references(
                    ImageReference::builder()
                        .image_id("ami-0123456789abcdef0")
                        .resource_type(ImageReferenceResourceType::SsmParameter)
                        .arn("arn:aws:ssm:eu-west-1:123456789012:parameter/ami/latest")
                        .build(),
                )
                .build()
        });
    let client = mock_client!(aws_sdk_ec2, RuleMode::Sequential, &[&first, &second]);
    let id = ImageId::parse("ami-0123456789abcdef0").unwrap();
    let refs = AwsEc2::new(client).image_references(std::slice::from_ref(&id)).await.unwrap();
    let users: Vec<&str> = refs.iter().map(|(_, u)| u.as_str()).collect();
    assert_eq!(
        users,
        vec![
            "ec2:Instance arn:aws:ec2:eu-west-1:123456789012:instance/i-1",
            "ssm:Parameter arn:aws:ssm:eu-west-1:123456789012:parameter/ami/latest"
        ]
    );
}

#[tokio::test]
async fn the_sources_of_a_batch_are_read_in_one_call_by_filter_never_failing_on_an_unknown_id() {
    use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
    let rule = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| {
            let filter = &r.filters()[0];
            r.owners().is_empty()
                && r.image_ids().is_empty()
                && filter.name() == Some("image-id")
                && filter.values() == ["ami-0123456789abcdef0".to_string(), "ami-0123456789abcdef1".to_string()]
                && r.include_disabled() == Some(true)
        })
        .then_output(|| {
            DescribeImagesOutput::builder()
                .images(
                    aws_sdk_ec2::types::Image::builder()
                        .image_id("ami-0123456789abcdef0")
                        .state("disabled".into())
                        .build(),
                )
                .build()
        });
    let client = mock_client!(aws_sdk_ec2, [&rule]);
    let ids = [ImageId::parse("ami-0123456789abcdef0").unwrap(), ImageId::parse("ami-0123456789abcdef1").unwrap()];
    let found = AwsEc2::new(client).describe_images(&ids).await.unwrap();
    assert_eq!(found.len(), 1, "the unknown id is absent, not an error");
    assert_eq!(found[0].state.to_string(), "disabled");
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn the_copies_of_a_place_are_marked_in_one_create_tags() {
    let rule = mock!(aws_sdk_ec2::Client::create_tags)
        .match_requests(|r| {
            r.resources() == ["ami-0123456789abcdef0".to_string(), "ami-0123456789abcdef1".to_string()]
                && r.tags().len() == 1
                && r.tags()[0].key() == Some("ami-replicator:shared")
        })
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let client = mock_client!(aws_sdk_ec2, [&rule]);
    let ids = [ImageId::parse("ami-0123456789abcdef0").unwrap(), ImageId::parse("ami-0123456789abcdef1").unwrap()];
    AwsEc2::new(client).add_tags(&ids, &[Tag::new("ami-replicator:shared", "true")]).await.unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn batches_are_packed_under_the_queues_maximum_message_size() {
    // Issue 28: three 100 KB messages never go in one SendMessageBatch of a 256 KiB queue (SQS would answer
    // BatchRequestTooLong, now a permanent error, on every retry).
    use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
    use aws_sdk_sqs::types::SendMessageBatchResultEntry;
    fn answer() -> SendMessageBatchOutput {
        let ok = |id: &str| {
            SendMessageBatchResultEntry::builder().id(id).message_id("m").md5_of_message_body("x").build().unwrap()
        };
        SendMessageBatchOutput::builder()
            .successful(ok("0"))
            .successful(ok("1"))
            .set_failed(Some(vec![]))
            .build()
            .unwrap()
    }
    let rule = mock!(aws_sdk_sqs::Client::send_message_batch)
        .match_requests(|r| r.entries().iter().map(|e| e.message_body().len()).sum::<usize>() <= 262_144)
        .sequence()
        .output(answer)
        .output(answer)
        .build();
    let client = mock_client!(aws_sdk_sqs, [&rule]);
    let queue = AwsQueue::new(client, "https://sqs.us-east-1.amazonaws.com/123456789012/work".into(), None)
        .with_max_message_bytes(262_144);
    let messages: Vec<OutgoingMessage> =
        (0..3).map(|i| OutgoingMessage { body: format!("{i}{}", "x".repeat(100_000)), delay_seconds: 0 }).collect();
    let results = queue.send(&messages).await;
    assert_eq!(rule.num_calls(), 2, "two batches: 200 KB, then 100 KB");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(ami_replicator::core::errors::classify("BatchRequestTooLong"), ErrorClass::Permanent);
    assert_eq!(ami_replicator::core::errors::classify("MessageTooLong"), ErrorClass::Permanent);
}
