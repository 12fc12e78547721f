//! The leases port over aws-sdk-dynamodb: the stack's admission table (ADMISSION_TABLE), one item per place, only
//! ever written with a condition. Taking: PutItem if no item, or its time ran out (the old item tells when it was
//! given back). Giving back: PutItem if the caller still holds it, keeping when.

use super::port_error;
use crate::ports::{Lease, Leases, PortFuture};
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

/// Items outlive their lease by a day, then DynamoDB's TTL deletes them (a place not admitted at for a day needs
/// no history).
const ITEM_DAYS_SECONDS: f64 = 86_400.0;

pub struct AwsLeases {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl AwsLeases {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// A PutItem of the lease `key`'s item: its holder (empty: given back), until when, and when DynamoDB may
    /// delete it. The caller adds the condition.
    fn put(&self, key: &str, holder: &str, until: f64, expires: f64) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("place", AttributeValue::S(key.to_string()))
            .item("holder", AttributeValue::S(holder.to_string()))
            .item("until", n(until))
            .item("expires", AttributeValue::N(format!("{}", (expires + ITEM_DAYS_SECONDS) as i64)))
    }
}

fn n(value: f64) -> AttributeValue {
    AttributeValue::N(format!("{value:.3}"))
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<f64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// When the previous holder gave the lease back, from the item the write replaced (`None`: no item, or one whose
/// holder never gave it back).
fn released_at(old: Option<&HashMap<String, AttributeValue>>) -> Option<f64> {
    let old = old?;
    let given_back = old.get("holder").and_then(|h| h.as_s().ok()).is_some_and(String::is_empty);
    number(old, "released_at").filter(|_| given_back)
}

impl Leases for AwsLeases {
    fn acquire<'a>(&'a self, key: &'a str, holder: &'a str, now: f64, until: f64) -> PortFuture<'a, Lease> {
        Box::pin(async move {
            let answer = self
                .put(key, holder, until, until)
                .condition_expression("attribute_not_exists(#p) OR #u < :now")
                .expression_attribute_names("#p", "place")
                .expression_attribute_names("#u", "until")
                .expression_attribute_values(":now", n(now))
                .return_values(ReturnValue::AllOld)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            match answer {
                Ok(out) => Ok(Lease::Taken { released_at: released_at(out.attributes()) }),
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(held)) => {
                        Ok(Lease::HeldUntil(held.item().and_then(|i| number(i, "until")).unwrap_or(until)))
                    }
                    _ => Err(port_error("PutItem", e)),
                },
            }
        })
    }

    fn release<'a>(&'a self, key: &'a str, holder: &'a str, now: f64) -> PortFuture<'a, ()> {
        Box::pin(async move {
            let answer = self
                .put(key, "", 0.0, now)
                .item("released_at", n(now))
                .condition_expression("#h = :me")
                .expression_attribute_names("#h", "holder")
                .expression_attribute_values(":me", AttributeValue::S(holder.to_string()))
                .send()
                .await;
            match answer {
                Ok(_) => Ok(()),
                // Its time ran out and another invocation holds it now: nothing to give back.
                Err(e) if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                    Ok(())
                }
                Err(e) => Err(port_error("PutItem", e)),
            }
        })
    }
}

/// Keys one BatchGetItem reads (DynamoDB's limit).
const KEYS_PER_BATCH: usize = 100;

/// The item of a recorded copy: `place` = `copy/ACCOUNT/REGION/ami-...`, no expiry (a copy lives for years).
fn record_key(place_key: &str, copy: &crate::core::ids::ImageId) -> String {
    format!("{place_key}/{copy}")
}

/// The function's record of its copies in the source's own region, in the same table: one item per copy, written
/// only by the function (its role is the only writer the template allows).
impl crate::ports::CopyRecords for AwsLeases {
    fn record<'a>(&'a self, place_key: &'a str, copy: &'a crate::core::ids::ImageId) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("place", AttributeValue::S(record_key(place_key, copy)))
                .item("copy", AttributeValue::S(copy.to_string()))
                .send()
                .await
                .map_err(|e| port_error("PutItem", e))?;
            Ok(())
        })
    }

    fn recorded<'a>(
        &'a self,
        place_key: &'a str,
        ids: &'a [crate::core::ids::ImageId],
    ) -> PortFuture<'a, Vec<crate::core::ids::ImageId>> {
        Box::pin(async move {
            let mut found = Vec::new();
            for chunk in ids.chunks(KEYS_PER_BATCH) {
                let keys: Vec<HashMap<String, AttributeValue>> = chunk
                    .iter()
                    .map(|id| HashMap::from([("place".to_string(), AttributeValue::S(record_key(place_key, id)))]))
                    .collect();
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| crate::core::errors::PortError::permanent("BatchGetItem", e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| port_error("BatchGetItem", e))?;
                if out.unprocessed_keys().is_some_and(|u| u.values().any(|k| !k.keys().is_empty())) {
                    return Err(crate::core::errors::PortError::transient(
                        "ProvisionedThroughputExceededException",
                        "BatchGetItem left keys unread: read again",
                    ));
                }
                let items = out.responses().and_then(|r| r.get(&self.table)).map(Vec::as_slice).unwrap_or_default();
                found.extend(chunk.iter().filter(|id| {
                    let key = record_key(place_key, id);
                    items.iter().any(|i| i.get("place").and_then(|p| p.as_s().ok()) == Some(&key))
                }));
            }
            Ok(found.into_iter().cloned().collect())
        })
    }
}
