//! The leases port over aws-sdk-dynamodb: the stack's admission table (ADMISSION_TABLE), one item per place: its
//! lease, only ever taken and given back with a condition, and the jobs waiting there (one attribute per job,
//! `core::waiting`). Taking: UpdateItem if no one holds it, or its time ran out; the old item answers when it was
//! given back and what waits. Giving back: UpdateItem if the caller still holds it, with the waiting list's changes.
//! Parking: UpdateItem of the entries alone, whoever holds the lease.

use super::port_error;
use crate::core::waiting::ENTRY_PREFIX;
use crate::ports::{Lease, Leases, PortFuture, WaitingChanges, WaitingList};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

/// Items outlive their last write by this long, then DynamoDB's TTL deletes them: longer than any job may wait
/// (JOB_MAX_AGE_HOURS is at most 14 days), so no waiting entry expires before its job would end.
const ITEM_SECONDS: f64 = 15.0 * 86_400.0;

/// Entries one UpdateItem changes (its expression stays far below DynamoDB's 4 KB): more take more writes.
pub const ENTRIES_PER_WRITE: usize = 100;

pub struct AwsLeases {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl AwsLeases {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn update(&self, key: &str) -> UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).key("place", AttributeValue::S(key.to_string()))
    }

    /// Entry changes alone, whoever holds the lease: one UpdateItem per [`ENTRIES_PER_WRITE`]. Answers the wake
    /// time the item had before the first write.
    async fn change(
        &self,
        key: &str,
        changes: &WaitingChanges,
        now: f64,
    ) -> Result<Option<f64>, crate::core::errors::PortError> {
        let mut wake_before = None;
        let mut first = true;
        let (mut park, mut unpark) = (changes.park.as_slice(), changes.unpark.as_slice());
        while first || !park.is_empty() || !unpark.is_empty() {
            let n_park = park.len().min(ENTRIES_PER_WRITE);
            let n_unpark = unpark.len().min(ENTRIES_PER_WRITE - n_park);
            let mut expression = Expression::new(now);
            expression.park(&park[..n_park]);
            expression.unpark(&unpark[..n_unpark]);
            if first {
                if let Some(at) = changes.wake_at {
                    expression.set("wake_at", n(at));
                }
            }
            let out = expression
                .apply(self.update(key))
                .return_values(if first { ReturnValue::AllOld } else { ReturnValue::None })
                .send()
                .await
                .map_err(|e| port_error("UpdateItem", e))?;
            if first {
                wake_before = out.attributes().and_then(|a| number(a, "wake_at"));
            }
            park = &park[n_park..];
            unpark = &unpark[n_unpark..];
            first = false;
        }
        Ok(wake_before)
    }
}

/// An update expression under construction: `SET` and `REMOVE` clauses with placeholders for every name and value.
struct Expression {
    set: Vec<String>,
    remove: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    /// Every write keeps the item alive for [`ITEM_SECONDS`] from `now`.
    fn new(now: f64) -> Self {
        let mut e = Self { set: vec![], remove: vec![], names: HashMap::new(), values: HashMap::new() };
        e.set("expires", AttributeValue::N(format!("{}", (now + ITEM_SECONDS) as i64)));
        e
    }

    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_string());
        placeholder
    }

    fn set(&mut self, attribute: &str, value: AttributeValue) {
        let name = self.name(attribute);
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        self.set.push(format!("{name} = {placeholder}"));
    }

    fn park(&mut self, entries: &[(String, String)]) {
        for (key, value) in entries {
            self.set(key, AttributeValue::S(value.clone()));
        }
    }

    fn unpark(&mut self, keys: &[String]) {
        for key in keys {
            let name = self.name(key);
            self.remove.push(name);
        }
    }

    /// A value the condition uses.
    fn value(&mut self, placeholder: &str, value: AttributeValue) {
        self.values.insert(placeholder.to_string(), value);
    }

    fn text(&self) -> String {
        let mut text = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            text.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        text
    }

    fn apply(self, update: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
        let text = self.text();
        update
            .update_expression(text)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
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

/// The waiting list of an item.
fn waiting_list(item: Option<&HashMap<String, AttributeValue>>) -> WaitingList {
    let Some(item) = item else { return WaitingList::default() };
    let mut entries: Vec<(String, String)> = item
        .iter()
        .filter(|(k, _)| k.starts_with(ENTRY_PREFIX))
        .map(|(k, v)| (k.clone(), v.as_s().cloned().unwrap_or_default()))
        .collect();
    entries.sort();
    WaitingList { entries, wake_at: number(item, "wake_at") }
}

impl Leases for AwsLeases {
    fn acquire<'a>(&'a self, key: &'a str, holder: &'a str, now: f64, until: f64) -> PortFuture<'a, Lease> {
        Box::pin(async move {
            let mut expression = Expression::new(until);
            expression.set("holder", AttributeValue::S(holder.to_string()));
            expression.set("until", n(until));
            let released = expression.name("released_at");
            expression.remove.push(released);
            // An item with only waiting jobs (parked before any lease) has no `until`.
            let u = expression.name("until");
            expression.value(":now", n(now));
            let answer = expression
                .apply(self.update(key))
                .condition_expression(format!("attribute_not_exists({u}) OR {u} < :now"))
                .return_values(ReturnValue::AllOld)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            match answer {
                Ok(out) => Ok(Lease::Taken {
                    released_at: released_at(out.attributes()),
                    waiting: waiting_list(out.attributes()),
                }),
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(held)) => {
                        Ok(Lease::HeldUntil(held.item().and_then(|i| number(i, "until")).unwrap_or(until)))
                    }
                    _ => Err(port_error("UpdateItem", e)),
                },
            }
        })
    }

    fn release_with<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        now: f64,
        changes: WaitingChanges,
    ) -> PortFuture<'a, ()> {
        Box::pin(async move {
            // The first write gives the lease back with what fits in it; the rest follow as entry changes.
            let n_park = changes.park.len().min(ENTRIES_PER_WRITE);
            let n_unpark = changes.unpark.len().min(ENTRIES_PER_WRITE - n_park);
            let mut expression = Expression::new(now);
            expression.set("holder", AttributeValue::S(String::new()));
            expression.set("until", n(0.0));
            expression.set("released_at", n(now));
            expression.park(&changes.park[..n_park]);
            expression.unpark(&changes.unpark[..n_unpark]);
            if let Some(at) = changes.wake_at {
                expression.set("wake_at", n(at));
            }
            let h = expression.name("holder");
            expression.value(":me", AttributeValue::S(holder.to_string()));
            let answer = expression.apply(self.update(key)).condition_expression(format!("{h} = :me")).send().await;
            let rest = match answer {
                Ok(_) => WaitingChanges {
                    park: changes.park[n_park..].to_vec(),
                    unpark: changes.unpark[n_unpark..].to_vec(),
                    wake_at: None,
                },
                // Its time ran out and another invocation holds it now: nothing to give back, the changes stand.
                Err(e) if matches!(e.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
                    changes
                }
                Err(e) => return Err(port_error("UpdateItem", e)),
            };
            if !rest.is_empty() {
                self.change(key, &rest, now).await?;
            }
            Ok(())
        })
    }

    fn park<'a>(&'a self, key: &'a str, entries: &'a [(String, String)], now: f64) -> PortFuture<'a, Option<f64>> {
        Box::pin(async move {
            let changes = WaitingChanges { park: entries.to_vec(), ..WaitingChanges::default() };
            self.change(key, &changes, now).await
        })
    }

    fn waiting<'a>(&'a self, key: &'a str) -> PortFuture<'a, WaitingList> {
        Box::pin(async move {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("place", AttributeValue::S(key.to_string()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| port_error("GetItem", e))?;
            Ok(waiting_list(out.item()))
        })
    }

    fn set_wake<'a>(&'a self, key: &'a str, at: f64) -> PortFuture<'a, ()> {
        Box::pin(async move {
            let changes = WaitingChanges { wake_at: Some(at), ..WaitingChanges::default() };
            self.change(key, &changes, at).await.map(|_| ())
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
