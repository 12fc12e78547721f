//! The queue port over aws-sdk-sqs.

use super::port_error;
use crate::core::errors::PortError;
use crate::ports::{DeadLetter, OutgoingMessage, Queue};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use std::collections::BTreeMap;

/// SQS accepts at most 10 entries per SendMessageBatch.
pub const SEND_BATCH_SIZE: usize = 10;
/// Message attribute values are kept short enough to read in the console.
const MAX_REASON_CHARS: usize = 1000;

#[derive(Clone, Debug)]
pub struct AwsQueue {
    client: Client,
    work_queue_url: String,
    dead_letter_queue_url: Option<String>,
    /// The work queue's MaximumMessageSize (MAX_MESSAGE_BYTES): no batch goes over it.
    max_message_bytes: usize,
}

impl AwsQueue {
    pub fn new(client: Client, work_queue_url: String, dead_letter_queue_url: Option<String>) -> Self {
        let max_message_bytes = crate::core::messages::DEFAULT_MAX_MESSAGE_BYTES;
        Self { client, work_queue_url, dead_letter_queue_url, max_message_bytes }
    }

    /// The same queue, packing batches to at most `bytes` (the queue's MaximumMessageSize).
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    async fn send_chunk(&self, chunk: &[OutgoingMessage]) -> Vec<Result<(), PortError>> {
        let entries: Result<Vec<_>, _> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .delay_seconds(m.delay_seconds.min(900) as i32)
                    .build()
            })
            .collect();
        let entries = match entries {
            Ok(e) => e,
            Err(e) => {
                return chunk.iter().map(|_| Err(PortError::permanent("ConstructionFailure", e.to_string()))).collect()
            }
        };
        let output = match self
            .client
            .send_message_batch()
            .queue_url(&self.work_queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                let err = port_error("SendMessageBatch", e);
                return chunk.iter().map(|_| Err(err.clone())).collect();
            }
        };
        let mut results: Vec<Result<(), PortError>> =
            chunk.iter().map(|_| Err(PortError::transient("SendMessageBatch", "no answer for this entry"))).collect();
        for ok in output.successful() {
            if let Some(slot) = ok.id().parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *slot = Ok(());
            }
        }
        for failed in output.failed() {
            if let Some(slot) = failed.id().parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *slot = Err(PortError::from_code(failed.code(), failed.message().unwrap_or_default()));
            }
        }
        results
    }
}

impl Queue for AwsQueue {
    /// In batches of at most 10 messages and at most the queue's MaximumMessageSize in all.
    async fn send(&self, messages: &[OutgoingMessage]) -> Vec<Result<(), PortError>> {
        let sizes: Vec<usize> = messages.iter().map(|m| m.body.len()).collect();
        let batches = crate::core::messages::batches(&sizes, SEND_BATCH_SIZE, self.max_message_bytes);
        let chunks = batches.into_iter().map(|range| self.send_chunk(&messages[range]));
        futures::future::join_all(chunks).await.into_iter().flatten().collect()
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<bool, PortError> {
        let Some(url) = &self.dead_letter_queue_url else {
            return Ok(false);
        };
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(reason)
            .build()
            .map_err(|e| PortError::permanent("ConstructionFailure", e.to_string()))?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .message_attributes("failure_reason", attribute)
            .send()
            .await
            .map_err(|e| port_error("SendMessage", e))?;
        Ok(true)
    }

    /// ReceiveMessage with a visibility timeout of 0: the messages stay visible (nothing is consumed). Rounds of
    /// up to 10 messages until one brings nothing new (at most 20 rounds: 200 messages are more than a status
    /// needs).
    async fn peek_dead_letters(&self) -> Result<Vec<DeadLetter>, PortError> {
        let Some(url) = &self.dead_letter_queue_url else { return Ok(vec![]) };
        let mut seen: BTreeMap<String, DeadLetter> = BTreeMap::new();
        for _ in 0..20 {
            let out = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(0)
                .message_attribute_names("failure_reason")
                .send()
                .await
                .map_err(|e| port_error("ReceiveMessage", e))?;
            let before = seen.len();
            for m in out.messages() {
                let reason = m
                    .message_attributes()
                    .and_then(|a| a.get("failure_reason"))
                    .and_then(|v| v.string_value())
                    .unwrap_or("")
                    .to_string();
                let id = m.message_id().unwrap_or_default().to_string();
                seen.entry(id).or_insert(DeadLetter { body: m.body().unwrap_or_default().to_string(), reason });
            }
            if seen.len() == before {
                break;
            }
        }
        Ok(seen.into_values().collect())
    }
}
