//! The queue port over the simulated world.

use super::world::{QueuedMessage, World};
use super::{lock, Shared};
use crate::core::errors::PortError;
use crate::ports::{DeadLetter, OutgoingMessage, Queue};

#[derive(Clone)]
pub struct SimQueue {
    world: Shared,
}

impl SimQueue {
    pub fn new(world: Shared) -> Self {
        Self { world }
    }
}

impl Queue for SimQueue {
    async fn send(&self, messages: &[OutgoingMessage]) -> Vec<Result<(), PortError>> {
        tokio::task::yield_now().await;
        let mut w = lock(&self.world);
        let limit = w.config.max_message_bytes;
        let sizes: Vec<usize> = messages.iter().map(|m| m.body.len()).collect();
        let batches = crate::core::messages::batches(&sizes, 10, limit);
        *w.calls.entry("SendMessageBatch").or_default() += batches.len() as u64;
        if w.faults.discard_sends {
            w.faults.halted = true;
            return messages.iter().map(|_| Ok(())).collect();
        }
        let mut results = Vec::with_capacity(messages.len());
        for batch in batches {
            let total: usize = sizes[batch.clone()].iter().sum();
            w.largest_message_bytes =
                w.largest_message_bytes.max(sizes[batch.clone()].iter().copied().max().unwrap_or(0));
            w.largest_batch_bytes = w.largest_batch_bytes.max(total);
            if total > limit {
                let too_long = |code: &str| PortError::from_code(code, format!("{total} bytes, over {limit}"));
                let code = if batch.len() == 1 { "MessageTooLong" } else { "BatchRequestTooLong" };
                results.extend(batch.map(|_| Err(too_long(code))));
                continue;
            }
            for m in &messages[batch] {
                if w.faults.refuse_next_sends > 0 {
                    w.faults.refuse_next_sends -= 1;
                    results
                        .push(Err(PortError::from_code("InternalError", "simulated SendMessageBatch entry failure")));
                    continue;
                }
                w.enqueue(m);
                results.push(Ok(()));
            }
        }
        results
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<bool, PortError> {
        tokio::task::yield_now().await;
        let mut w = lock(&self.world);
        *w.calls.entry("SendMessage").or_default() += 1;
        if w.faults.discard_sends {
            w.faults.halted = true;
            return Ok(true);
        }
        w.dead_letters.push((body.to_string(), reason.to_string()));
        Ok(true)
    }

    async fn peek_dead_letters(&self) -> Result<Vec<DeadLetter>, PortError> {
        let w = lock(&self.world);
        Ok(w.dead_letters
            .iter()
            .map(|(body, reason)| DeadLetter { body: body.clone(), reason: reason.clone() })
            .collect())
    }
}

/// The simulated work queue: SQS's delays, visibility timeout and redrive.
impl World {
    pub fn enqueue(&mut self, message: &OutgoingMessage) {
        self.next_id += 1;
        self.queue.push(QueuedMessage {
            id: format!("msg-{}", self.next_id),
            body: message.body.clone(),
            visible_at_ms: self.now_ms + u64::from(message.delay_seconds.min(900)) * 1000,
            receive_count: 0,
        });
    }

    /// Receives up to `max` visible messages, hiding them for the visibility timeout. Messages received more
    /// than `max_receive_count` times are moved to the dead-letter queue instead (SQS's redrive policy).
    pub fn receive(&mut self, max: usize) -> Vec<QueuedMessage> {
        let now = self.now_ms;
        let hide_until = now + self.config.visibility_timeout_seconds * 1000;
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.queue.len() && out.len() < max {
            if self.queue[i].visible_at_ms <= now {
                if self.queue[i].receive_count >= self.config.max_receive_count {
                    let m = self.queue.remove(i);
                    self.redriven.push(m.body);
                    continue;
                }
                let m = &mut self.queue[i];
                m.receive_count += 1;
                m.visible_at_ms = hide_until;
                out.push(m.clone());
            }
            i += 1;
        }
        out
    }

    /// After an invocation: deletes every message of the batch except those to retry (which reappear when
    /// their visibility timeout ends).
    pub fn settle_batch(&mut self, batch: &[QueuedMessage], retry: &[String]) {
        self.queue.retain(|m| !batch.iter().any(|b| b.id == m.id) || retry.contains(&m.id));
    }

    /// The next time something becomes visible on the queue.
    pub fn next_event_at(&self) -> Option<u64> {
        self.queue.iter().map(|m| m.visible_at_ms).min()
    }

    pub fn advance_to(&mut self, t_ms: u64) {
        self.now_ms = self.now_ms.max(t_ms);
    }
}
