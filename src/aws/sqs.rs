//! The queue port over aws-sdk-sqs.

use super::port_error;
use crate::core::errors::PortError;
use crate::ports::{OutgoingMessage, Queue};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;

/// SQS accepts at most 10 entries per SendMessageBatch.
pub const SEND_BATCH_SIZE: usize = 10;
/// Message attribute values are kept short enough to read in the console.
const MAX_REASON_CHARS: usize = 1000;

#[derive(Clone, Debug)]
pub struct AwsQueue {
    client: Client,
    work_queue_url: String,
    dead_letter_queue_url: Option<String>,
}

impl AwsQueue {
    pub fn new(client: Client, work_queue_url: String, dead_letter_queue_url: Option<String>) -> Self {
        Self { client, work_queue_url, dead_letter_queue_url }
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
    async fn send(&self, messages: &[OutgoingMessage]) -> Vec<Result<(), PortError>> {
        let chunks = messages.chunks(SEND_BATCH_SIZE).map(|chunk| self.send_chunk(chunk));
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
}
