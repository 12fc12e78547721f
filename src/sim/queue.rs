//! The queue port over the simulated world.

use super::{lock, Shared};
use crate::core::errors::PortError;
use crate::ports::{OutgoingMessage, Queue};

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
        *w.calls.entry("SendMessageBatch").or_default() += messages.len().div_ceil(10) as u64;
        if w.faults.discard_sends {
            w.faults.halted = true;
            return messages.iter().map(|_| Ok(())).collect();
        }
        messages
            .iter()
            .map(|m| {
                if w.faults.refuse_next_sends > 0 {
                    w.faults.refuse_next_sends -= 1;
                    return Err(PortError::from_code("InternalError", "simulated SendMessageBatch entry failure"));
                }
                w.enqueue(m);
                Ok(())
            })
            .collect()
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
}
