//! The admission leases' adapter against aws-smithy-mocks: the exact conditional writes it sends, DynamoDB's
//! refusal of a held lease read as "held until", and its errors mapped to the core's classes.

use ami_replicator::aws::leases::AwsLeases;
use ami_replicator::core::errors::ErrorClass;
use ami_replicator::ports::{Lease, Leases};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

const NOW: f64 = 1_800_000_000.0;

fn dynamodb_error(code: &str, extra: &str) -> HttpResponse {
    let body = format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"refused"{extra}}}"#);
    let mut response = HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::from(body));
    response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
    response
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

#[tokio::test]
async fn taking_a_lease_is_one_conditional_put_that_returns_the_old_item() {
    let rule = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| {
            r.table_name() == Some("admission")
                && r.item().is_some_and(|i| {
                    i.get("place") == Some(&s("123456789012/eu-west-1"))
                        && i.get("holder") == Some(&s("inv-1"))
                        && i.get("until") == Some(&AttributeValue::N("1800000060.000".into()))
                        && i.contains_key("expires")
                })
                && r.condition_expression() == Some("attribute_not_exists(#p) OR #u < :now")
                && r.expression_attribute_values().and_then(|v| v.get(":now"))
                    == Some(&AttributeValue::N("1800000000.000".into()))
                && r.return_values() == Some(&ReturnValue::AllOld)
                && r.return_values_on_condition_check_failure() == Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        })
        .then_output(|| {
            PutItemOutput::builder()
                .attributes("place", s("123456789012/eu-west-1"))
                .attributes("holder", s(""))
                .attributes("released_at", AttributeValue::N("1799999990.500".into()))
                .build()
        });
    let client = mock_client!(aws_sdk_dynamodb, [&rule]);
    let leases = AwsLeases::new(client, "admission");
    let lease = leases.acquire("123456789012/eu-west-1", "inv-1", NOW, NOW + 60.0).await.unwrap();
    assert_eq!(lease, Lease::Taken { released_at: Some(1_799_999_990.5) });
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_lease_whose_holder_never_gave_it_back_tells_no_release_time() {
    let rule = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| {
        PutItemOutput::builder()
            .attributes("holder", s("stopped-invocation"))
            .attributes("until", AttributeValue::N("1799999000.000".into()))
            .attributes("released_at", AttributeValue::N("1799990000.000".into()))
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, [&rule]);
    let lease = AwsLeases::new(client, "admission").acquire("k", "inv-1", NOW, NOW + 60.0).await.unwrap();
    assert_eq!(lease, Lease::Taken { released_at: None });
}

#[tokio::test]
async fn a_held_lease_is_read_from_the_refusal_and_errors_keep_their_class() {
    let held = mock!(aws_sdk_dynamodb::Client::put_item).then_http_response(|| {
        dynamodb_error(
            "ConditionalCheckFailedException",
            r#","Item":{"place":{"S":"k"},"holder":{"S":"other"},"until":{"N":"1800000042.000"}}"#,
        )
    });
    let throttled = mock!(aws_sdk_dynamodb::Client::put_item)
        .then_http_response(|| dynamodb_error("ProvisionedThroughputExceededException", ""));
    let missing = mock!(aws_sdk_dynamodb::Client::put_item)
        .then_http_response(|| dynamodb_error("ResourceNotFoundException", ""));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&held, &throttled, &missing], |c| c
        .retry_config(RetryConfig::disabled()));
    let leases = AwsLeases::new(client, "admission");
    assert_eq!(leases.acquire("k", "inv-1", NOW, NOW + 60.0).await.unwrap(), Lease::HeldUntil(1_800_000_042.0));
    let e = leases.acquire("k", "inv-1", NOW, NOW + 60.0).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Throttled, "{e}");
    let e = leases.acquire("k", "inv-1", NOW, NOW + 60.0).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
}

#[tokio::test]
async fn giving_back_is_conditional_on_still_holding_it() {
    let mine = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| {
            r.condition_expression() == Some("#h = :me")
                && r.expression_attribute_values().and_then(|v| v.get(":me")) == Some(&s("inv-1"))
                && r.item().is_some_and(|i| {
                    i.get("holder") == Some(&s(""))
                        && i.get("released_at") == Some(&AttributeValue::N("1800000005.000".into()))
                })
        })
        .then_output(|| PutItemOutput::builder().build());
    let not_mine = mock!(aws_sdk_dynamodb::Client::put_item)
        .then_http_response(|| dynamodb_error("ConditionalCheckFailedException", ""));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&mine, &not_mine], |c| c
        .retry_config(RetryConfig::disabled()));
    let leases = AwsLeases::new(client, "admission");
    leases.release("k", "inv-1", NOW + 5.0).await.unwrap();
    // Another invocation holds it now (this one's time ran out): nothing to give back, not an error.
    leases.release("k", "inv-1", NOW + 6.0).await.unwrap();
    assert_eq!((mine.num_calls(), not_mine.num_calls()), (1, 1));
}

mod copy_records {
    use super::*;
    use ami_replicator::core::ids::ImageId;
    use ami_replicator::ports::CopyRecords;
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_sdk_dynamodb::types::KeysAndAttributes;
    use std::collections::HashMap;

    fn id(s: &str) -> ImageId {
        ImageId::parse(s).unwrap()
    }

    fn key(image: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("place".to_string(), s(&format!("copy/222222222222/us-east-1/{image}")))])
    }

    #[tokio::test]
    async fn a_copy_is_recorded_with_one_put_that_never_expires() {
        let rule = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| {
                r.table_name() == Some("admission")
                    && r.item().is_some_and(|i| {
                        i.get("place") == Some(&s("copy/222222222222/us-east-1/ami-0123456789abcdef0"))
                            && i.get("copy") == Some(&s("ami-0123456789abcdef0"))
                            && !i.contains_key("expires")
                    })
                    && r.condition_expression().is_none()
            })
            .then_output(|| PutItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, [&rule]);
        let records = AwsLeases::new(client, "admission");
        records.record("copy/222222222222/us-east-1", &id("ami-0123456789abcdef0")).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn recorded_copies_are_read_back_with_one_consistent_batch_get() {
        let rule = mock!(aws_sdk_dynamodb::Client::batch_get_item)
            .match_requests(|r| {
                let asked = r.request_items().and_then(|items| items.get("admission"));
                asked.is_some_and(|k| {
                    k.consistent_read() == Some(true)
                        && k.keys() == [key("ami-0000000000000000a"), key("ami-0000000000000000b")]
                })
            })
            .then_output(|| {
                BatchGetItemOutput::builder().responses("admission", vec![key("ami-0000000000000000b")]).build()
            });
        let client = mock_client!(aws_sdk_dynamodb, [&rule]);
        let records = AwsLeases::new(client, "admission");
        let ids = [id("ami-0000000000000000a"), id("ami-0000000000000000b")];
        let found = records.recorded("copy/222222222222/us-east-1", &ids).await.unwrap();
        assert_eq!(found, [id("ami-0000000000000000b")], "only what the function recorded");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn keys_dynamodb_left_unread_are_a_transient_error_never_taken_for_unrecorded() {
        let rule = mock!(aws_sdk_dynamodb::Client::batch_get_item).then_output(|| {
            let left = KeysAndAttributes::builder().keys(key("ami-0000000000000000a")).build().unwrap();
            BatchGetItemOutput::builder().unprocessed_keys("admission", left).build()
        });
        let client = mock_client!(aws_sdk_dynamodb, [&rule]);
        let records = AwsLeases::new(client, "admission");
        let err = records.recorded("copy/222222222222/us-east-1", &[id("ami-0000000000000000a")]).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::Transient, "{err}");
    }

    #[tokio::test]
    async fn a_refused_record_keeps_its_class() {
        let rule = mock!(aws_sdk_dynamodb::Client::put_item)
            .then_http_response(|| dynamodb_error("ResourceNotFoundException", ""));
        let client =
            mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule], |c| c.retry_config(RetryConfig::disabled()));
        let records = AwsLeases::new(client, "admission");
        let err = records.record("copy/222222222222/us-east-1", &id("ami-0123456789abcdef0")).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    }
}
