//! The Lambda entry point's logic: decode the input, run the batch, encode the response.

use crate::core::ids::{AccountId, ImageId, Region};
use crate::core::job::{Continuation, ReplicationRequest, MESSAGE_VERSION};
use crate::ports::{Ec2Regions, ImageBuilder, Queue};
use crate::service::{BatchReport, Item, Message, Replicator};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::Deserialize;
use serde_json::Value;

/// The detail of an "EC2 AMI State Change" event (PascalCase keys, as EventBridge sends them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AmiStateChange {
    #[serde(default)]
    pub request_id: Option<String>,
    pub image_id: String,
    pub state: String,
    #[serde(default)]
    pub error_message: Option<String>,
}

/// What the function was invoked with.
#[derive(Debug, Clone)]
pub enum Input {
    /// Invoked directly with one message (an EventBridge event, or a work item for a manual run).
    Direct(Item),
    /// Invoked by the SQS event source mapping.
    Batch(Vec<Item>),
}

#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("unrecognised input: expected an EventBridge event, an SQS batch or a work item ({0})")]
    Unrecognised(String),
    #[error("{0}")]
    Retry(String),
}

pub fn decode_input(payload: Value) -> Result<Input, EntryError> {
    if payload.get("Records").is_some() {
        let event: SqsEvent = serde_json::from_value(payload).map_err(|e| EntryError::Unrecognised(e.to_string()))?;
        let items = event
            .records
            .into_iter()
            .enumerate()
            .map(|(n, record)| {
                let body = record.body.unwrap_or_default();
                let message = decode_record(&body);
                // Without a messageId the item cannot be reported alone; the batch is then retried whole.
                let id = record.message_id.unwrap_or_else(|| format!("#missing-message-id-{n}"));
                Item { id, body, message }
            })
            .collect();
        return Ok(Input::Batch(items));
    }
    if payload.is_object() {
        let body = payload.to_string();
        let id = payload.get("id").and_then(Value::as_str).unwrap_or("direct").to_string();
        let message = decode_value(payload);
        return Ok(Input::Direct(Item { id, body, message }));
    }
    Err(EntryError::Unrecognised(format!("a JSON {}", json_kind(&payload))))
}

/// Why a Scheduled Event that arrived through the work queue runs no sweep.
pub const SWEEP_THROUGH_THE_QUEUE: &str = "a Scheduled Event arrived through the work queue: refused, the sweep runs \
     only when its schedule invokes the function directly (anyone who may send work items could send this one)";

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Reasons quote parts of a message (serde names an unknown field or variant): they are cut to this many
/// characters, so that no message body reaches the logs or the dead-letter attribute whole.
pub const MAX_REASON_CHARS: usize = 300;

fn bounded(reason: String) -> String {
    if reason.chars().count() <= MAX_REASON_CHARS {
        return reason;
    }
    let mut cut: String = reason.chars().take(MAX_REASON_CHARS).collect();
    cut.push_str("... (cut)");
    cut
}

/// Decodes the body of a message that arrived through the work queue: as [`decode_body`], except that a Scheduled
/// Event runs no sweep there. The sweep runs when the schedule invokes the function directly (template.yaml); one on
/// the queue was sent by whoever may send work items, with a window of its choice.
pub fn decode_record(body: &str) -> Result<Message, String> {
    match decode_body(body) {
        Ok(Message::Sweep { .. }) => Ok(Message::Ignore(SWEEP_THROUGH_THE_QUEUE.to_string())),
        other => other,
    }
}

/// Decodes an SQS message body.
pub fn decode_body(body: &str) -> Result<Message, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| bounded(format!("body is not JSON: {e}")))?;
    decode_value(value)
}

fn decode_value(value: Value) -> Result<Message, String> {
    decode_known(value).map_err(bounded)
}

fn decode_known(value: Value) -> Result<Message, String> {
    if value.get("ami_replicator").is_some() {
        let version = value.get("ami_replicator").and_then(Value::as_u64);
        if version != Some(u64::from(MESSAGE_VERSION)) {
            return Err(format!(
                "continuation version {version:?} is not supported (this build reads {MESSAGE_VERSION})"
            ));
        }
        let c: Continuation = serde_json::from_value(value).map_err(|e| format!("bad continuation: {e}"))?;
        if c.jobs.is_empty() && !c.watch.is_empty() {
            return Ok(Message::Watch(c.watch));
        }
        if c.jobs.is_empty() && !c.wake.is_empty() {
            return Ok(Message::Wake { places: c.wake, check: c.check });
        }
        return Ok(Message::Jobs(c.jobs));
    }
    if value.get("detail-type").is_some() {
        return decode_event(value);
    }
    if value.get("image_id").is_some() {
        return decode_work_item(value);
    }
    Err("expected an EventBridge event, a work item {\"image_id\", \"source_region\", \"target_regions\"} or a continuation".into())
}

/// The detail of an "EC2 Image Builder Image State Change" event: `{"state": {"status": "AVAILABLE"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageBuilderStateChange {
    pub state: ImageBuilderState,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageBuilderState {
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

fn decode_event(value: Value) -> Result<Message, String> {
    let event: EventBridgeEvent<Value> =
        serde_json::from_value(value).map_err(|e| format!("bad EventBridge event: {e}"))?;
    match (event.source.as_str(), event.detail_type.as_str()) {
        ("aws.ec2", "EC2 AMI State Change") => decode_ami_state_change(event),
        ("aws.imagebuilder", "EC2 Image Builder Image State Change") => decode_image_builder(event),
        ("aws.events", "Scheduled Event") => match event.time {
            Some(time) => Ok(Message::Sweep { time: crate::core::time::format_rfc3339(time.timestamp()) }),
            None => Err("scheduled event without a time".into()),
        },
        (source, detail_type) => {
            Ok(Message::Ignore(format!("event {source} / {detail_type} is not an AMI or Image Builder state change")))
        }
    }
}

fn decode_ami_state_change(event: EventBridgeEvent<Value>) -> Result<Message, String> {
    let detail: AmiStateChange =
        serde_json::from_value(event.detail).map_err(|e| format!("bad AMI state change detail: {e}"))?;
    let region = || -> Result<Region, String> {
        let region = event.region.as_deref().ok_or("EventBridge event has no region")?;
        Region::parse(region).map_err(|e| e.to_string())
    };
    let image = || ImageId::parse(&detail.image_id).map_err(|e| e.to_string());
    match detail.state.as_str() {
        "available" => {
            let mut request = ReplicationRequest::new(image()?, region()?, None);
            request.event_account = AccountId::parse(&event.account.clone().unwrap_or_default()).ok();
            request.event_time = event.time.map(|t| t.timestamp());
            Ok(Message::Request(request))
        }
        "deregistered" => Ok(Message::SourceGone { image: image()?, region: region()? }),
        "disabled" => Ok(Message::SourceDisabled { image: image()?, region: region()? }),
        // A failed image is either a build that failed (nothing to replicate) or a copy of ours (replace it):
        // the handler tells them apart by the provenance tags.
        "failed" => Ok(Message::CopyFailed {
            image: image()?,
            region: region()?,
            account: AccountId::parse(&event.account.clone().unwrap_or_default()).ok(),
        }),
        other => {
            let why = detail.error_message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default();
            Ok(Message::Ignore(format!(
                "AMI {} is {other}{why}; only available starts replication, deregistered stops it, disabled disables \
                 copies, failed replaces a copy",
                detail.image_id
            )))
        }
    }
}

/// The image build version ARN of an Image Builder event (`resources[0]`), once its status is AVAILABLE.
fn decode_image_builder(event: EventBridgeEvent<Value>) -> Result<Message, String> {
    let detail: ImageBuilderStateChange =
        serde_json::from_value(event.detail).map_err(|e| format!("bad Image Builder state change detail: {e}"))?;
    let arn = event.resources.as_ref().and_then(|r| r.first()).cloned().unwrap_or_default();
    if detail.state.status != "AVAILABLE" {
        return Ok(Message::Ignore(format!(
            "Image Builder image {arn} is {}; only AVAILABLE starts replication",
            detail.state.status
        )));
    }
    let valid =
        arn.starts_with("arn:") && arn.contains(":imagebuilder:") && arn.contains(":image/") && arn.len() <= 2048;
    if !valid {
        return Err(format!("Image Builder event without an image build version ARN in resources[0] ({arn:?})"));
    }
    Ok(Message::ImageBuilt { arn })
}

fn decode_work_item(value: Value) -> Result<Message, String> {
    let request: ReplicationRequest = serde_json::from_value(value).map_err(|e| format!("bad work item: {e}"))?;
    Ok(Message::Request(request))
}

/// Runs one invocation with no deadline ([`handle_until`]).
pub async fn handle<R: Ec2Regions, Q: Queue, B: ImageBuilder>(
    replicator: &Replicator<R, Q, B>,
    payload: Value,
    account: &AccountId,
) -> Result<Value, EntryError> {
    handle_until(replicator, payload, account, None).await
}

/// Runs one invocation that must answer by `deadline` (epoch seconds, Lambda's): no new work starts within
/// `service::DEADLINE_MARGIN_SECONDS` of it; what is left comes back on the queue. An SQS batch answers with the
/// items to retry; a direct invocation fails (so Lambda retries it) when its message must be retried.
pub async fn handle_until<R: Ec2Regions, Q: Queue, B: ImageBuilder>(
    replicator: &Replicator<R, Q, B>,
    payload: Value,
    account: &AccountId,
    deadline: Option<f64>,
) -> Result<Value, EntryError> {
    match decode_input(payload)? {
        Input::Batch(items) => {
            let report = replicator.process_until(items, account, deadline).await;
            emit_metrics(&report, replicator.now());
            Ok(batch_response(&report))
        }
        Input::Direct(item) => {
            let report = replicator.process_until(vec![item], account, deadline).await;
            emit_metrics(&report, replicator.now());
            if !report.retry.is_empty() {
                return Err(EntryError::Retry("the event could not be processed now; see the log".into()));
            }
            Ok(serde_json::json!({
                "dead_lettered": report.dead_lettered,
                "completed": report.completed.len(),
            }))
        }
    }
}

/// The invocation's metrics, as Embedded Metric Format lines on stdout (CloudWatch Logs extracts them).
fn emit_metrics(report: &BatchReport, now: f64) {
    for line in crate::core::emf::lines(&report.facts, (now * 1000.0) as i64) {
        println!("{line}");
    }
}

pub fn batch_response(report: &BatchReport) -> Value {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = report
        .retry
        .iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.clone();
            failure
        })
        .collect();
    serde_json::to_value(response).unwrap_or_else(|_| serde_json::json!({"batchItemFailures": []}))
}

#[cfg(test)]
#[path = "entry_tests.rs"]
mod tests;
