//! The admission leases' adapter against aws-smithy-mocks: the exact conditional writes it sends (a place's item
//! holds its lease and its waiting jobs), DynamoDB's refusal of a held lease read as "held until", the waiting
//! list read back from the old item, and its errors mapped to the core's classes.

use ami_replicator::aws::leases::AwsLeases;
use ami_replicator::core::errors::ErrorClass;
use ami_replicator::ports::{Lease, Leases, WaitingChanges, WaitingList};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
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

/// An expression with its placeholders replaced by the names and values they stand for (longest first).
fn resolved(expression: Option<&str>, r: &UpdateItemInput) -> String {
    let mut text = expression.unwrap_or_default().to_string();
    let mut names: Vec<(&String, &String)> = r.expression_attribute_names().into_iter().flatten().collect();
    names.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (placeholder, name) in names {
        text = text.replace(placeholder.as_str(), name);
    }
    let mut values: Vec<(&String, &AttributeValue)> = r.expression_attribute_values().into_iter().flatten().collect();
    values.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (placeholder, value) in values {
        let shown = match value {
            AttributeValue::S(v) => format!("'{v}'"),
            AttributeValue::N(n) => n.clone(),
            other => format!("{other:?}"),
        };
        text = text.replace(placeholder.as_str(), &shown);
    }
    text
}

fn update(r: &UpdateItemInput) -> String {
    resolved(r.update_expression(), r)
}

fn condition(r: &UpdateItemInput) -> String {
    resolved(r.condition_expression(), r)
}

#[tokio::test]
async fn taking_a_lease_is_one_conditional_update_that_returns_the_old_item_and_its_waiting_jobs() {
    let rule = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.table_name() == Some("admission")
                && r.key().and_then(|k| k.get("place")) == Some(&s("123456789012/eu-west-1"))
                && update(r) == "SET expires = 1801296060, holder = 'inv-1', until = 1800000060.000 REMOVE released_at"
                && condition(r) == "attribute_not_exists(until) OR until < 1800000000.000"
                && r.return_values() == Some(&ReturnValue::AllOld)
                && r.return_values_on_condition_check_failure() == Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        })
        .then_output(|| {
            UpdateItemOutput::builder()
                .attributes("place", s("123456789012/eu-west-1"))
                .attributes("holder", s(""))
                .attributes("released_at", AttributeValue::N("1799999990.500".into()))
                .attributes("wake_at", AttributeValue::N("1800000100.000".into()))
                .attributes("w:us-east-1:ami-0000000000000000b", s("8 1799990000 -"))
                .attributes("w:us-east-1:ami-0000000000000000a", s("200 - y"))
                .build()
        });
    let client = mock_client!(aws_sdk_dynamodb, [&rule]);
    let leases = AwsLeases::new(client, "admission");
    let lease = leases.acquire("123456789012/eu-west-1", "inv-1", NOW, NOW + 60.0).await.unwrap();
    let waiting = WaitingList {
        entries: vec![
            ("w:us-east-1:ami-0000000000000000a".into(), "200 - y".into()),
            ("w:us-east-1:ami-0000000000000000b".into(), "8 1799990000 -".into()),
        ],
        wake_at: Some(1_800_000_100.0),
    };
    assert_eq!(lease, Lease::Taken { released_at: Some(1_799_999_990.5), waiting });
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_lease_whose_holder_never_gave_it_back_tells_no_release_time() {
    let rule = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| {
        UpdateItemOutput::builder()
            .attributes("holder", s("stopped-invocation"))
            .attributes("until", AttributeValue::N("1799999000.000".into()))
            .attributes("released_at", AttributeValue::N("1799990000.000".into()))
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, [&rule]);
    let lease = AwsLeases::new(client, "admission").acquire("k", "inv-1", NOW, NOW + 60.0).await.unwrap();
    assert_eq!(lease, Lease::Taken { released_at: None, waiting: WaitingList::default() });
}

#[tokio::test]
async fn a_held_lease_is_read_from_the_refusal_and_errors_keep_their_class() {
    let held = mock!(aws_sdk_dynamodb::Client::update_item).then_http_response(|| {
        dynamodb_error(
            "ConditionalCheckFailedException",
            r#","Item":{"place":{"S":"k"},"holder":{"S":"other"},"until":{"N":"1800000042.000"}}"#,
        )
    });
    let throttled = mock!(aws_sdk_dynamodb::Client::update_item)
        .then_http_response(|| dynamodb_error("ProvisionedThroughputExceededException", ""));
    let missing = mock!(aws_sdk_dynamodb::Client::update_item)
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
    let mine = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            update(r) == "SET expires = 1801296005, holder = '', until = 0.000, released_at = 1800000005.000"
                && condition(r) == "holder = 'inv-1'"
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let not_mine = mock!(aws_sdk_dynamodb::Client::update_item)
        .then_http_response(|| dynamodb_error("ConditionalCheckFailedException", ""));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&mine, &not_mine], |c| c
        .retry_config(RetryConfig::disabled()));
    let leases = AwsLeases::new(client, "admission");
    leases.release("k", "inv-1", NOW + 5.0).await.unwrap();
    // Another invocation holds it now (this one's time ran out): nothing to give back, not an error.
    leases.release("k", "inv-1", NOW + 6.0).await.unwrap();
    assert_eq!((mine.num_calls(), not_mine.num_calls()), (1, 1));
}

mod waiting_list {
    use super::*;

    fn entry(n: usize) -> (String, String) {
        (format!("w:us-east-1:ami-{n:017x}"), format!("{n} - -"))
    }

    #[tokio::test]
    async fn giving_back_changes_the_waiting_list_in_the_same_write_and_the_rest_in_more() {
        // 150 parked and 2 taken: the first write gives the lease back with 100 changes and the wake-up's time,
        // the second (unconditional) carries the other 52.
        let first = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                let text = update(r);
                condition(r) == "holder = 'inv-1'"
                    && text.starts_with("SET expires = 1801296005, holder = '', until = 0.000, released_at = 1800000005.000, w:us-east-1:ami-00000000000000000 = '0 - -'")
                    && text.contains("wake_at = 1800000305.000")
                    && text.matches(" = '").count() == 101
                    && !text.contains("REMOVE")
            })
            .then_output(|| UpdateItemOutput::builder().build());
        let second = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                let text = update(r);
                r.condition_expression().is_none()
                    && text.starts_with("SET expires = 1801296005, w:us-east-1:ami-00000000000000064 = '100 - -'")
                    && text.ends_with("REMOVE w:us-east-1:ami-000000000000003e8, w:us-east-1:ami-000000000000003e9")
            })
            .then_output(|| UpdateItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&first, &second]);
        let leases = AwsLeases::new(client, "admission");
        let changes = WaitingChanges {
            park: (0..150).map(entry).collect(),
            unpark: vec![entry(1000).0, entry(1001).0],
            wake_at: Some(NOW + 305.0),
        };
        leases.release_with("k", "inv-1", NOW + 5.0, changes).await.unwrap();
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_lease_lost_meanwhile_still_parks_and_unparks() {
        let lost = mock!(aws_sdk_dynamodb::Client::update_item)
            .then_http_response(|| dynamodb_error("ConditionalCheckFailedException", ""));
        let changes = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                r.condition_expression().is_none()
                    && update(r) == "SET expires = 1801296005, w:us-east-1:ami-00000000000000001 = '1 - -' REMOVE w:us-east-1:ami-00000000000000002"
            })
            .then_output(|| UpdateItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&lost, &changes], |c| c
            .retry_config(RetryConfig::disabled()));
        let leases = AwsLeases::new(client, "admission");
        let c = WaitingChanges { park: vec![entry(1)], unpark: vec![entry(2).0], wake_at: None };
        leases.release_with("k", "inv-1", NOW + 5.0, c).await.unwrap();
        assert_eq!((lost.num_calls(), changes.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn parking_is_one_unconditional_update_that_answers_the_wake_up_due() {
        let rule = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                r.condition_expression().is_none()
                    && update(r) == "SET expires = 1801296000, w:us-east-1:ami-00000000000000007 = '7 - -'"
                    && r.return_values() == Some(&ReturnValue::AllOld)
            })
            .then_output(|| {
                UpdateItemOutput::builder().attributes("wake_at", AttributeValue::N("1800000300.000".into())).build()
            });
        let client = mock_client!(aws_sdk_dynamodb, [&rule]);
        let leases = AwsLeases::new(client, "admission");
        assert_eq!(leases.park("k", &[entry(7)], NOW).await.unwrap(), Some(1_800_000_300.0));
    }

    #[tokio::test]
    async fn an_item_too_large_refuses_the_park_and_the_list_is_read_consistently() {
        let too_large = mock!(aws_sdk_dynamodb::Client::update_item)
            .then_http_response(|| dynamodb_error("ValidationException", ""));
        let read = mock!(aws_sdk_dynamodb::Client::get_item)
            .match_requests(|r| {
                r.consistent_read() == Some(true) && r.key().and_then(|k| k.get("place")) == Some(&s("k"))
            })
            .then_output(|| {
                GetItemOutput::builder()
                    .item("place", s("k"))
                    .item("holder", s("someone"))
                    .item("w:us-east-1:ami-00000000000000007", s("7 - -"))
                    .build()
            });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&too_large, &read], |c| c
            .retry_config(RetryConfig::disabled()));
        let leases = AwsLeases::new(client, "admission");
        // Whatever its class, a refused park sends the step's jobs back on the queue (tests/suite/pipeline_sim.rs).
        let e = leases.park("k", &[entry(7)], NOW).await.unwrap_err();
        assert_eq!(e.code, "ValidationException", "{e}");
        assert_eq!(leases.waiting("k").await.unwrap(), WaitingList { entries: vec![entry(7)], wake_at: None });
    }
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
