//! What an item's work asks for, and making it durable: continuations grouped per place and delay, dead
//! letters, and the items SQS must deliver again.

use super::{BatchReport, Item, Replicator};
use crate::core::facts::{Fact, Failure};
use crate::core::ids::{AccountId, ImageId, Place};
use crate::core::image::Tag;
use crate::core::job::{Continuation, Job};
use crate::core::messages::continuation_bodies;
use crate::core::provenance::GAVE_UP_TAG;
use crate::core::step::Decision;
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, OutgoingMessage, Queue};
use futures::future::join_all;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{error, info, warn};

/// What one item's work asks for. An item is acknowledged when all its effects are durable.
#[derive(Debug)]
pub(super) enum Effect {
    /// Put the job (back) on the work queue.
    Enqueue { job: Box<Job>, delay_seconds: u32 },
    /// Put this message on the work queue.
    Send(OutgoingMessage),
    /// Store `body` in the dead-letter queue with the reason.
    DeadLetter { body: String, reason: String },
    /// A job gave up after its copies failed: dead-letter it, then (only once the dead letter is stored) mark
    /// its last failed copy at `place` as given up, so that duplicates and the sweep stop there.
    GiveUp { body: String, reason: String, place: Place, tombstone: ImageId },
    /// Nothing durable can be made now: let SQS deliver the item again.
    Retry(String),
}

impl Effect {
    pub(super) fn enqueue(job: Job, delay_seconds: u32) -> Self {
        Effect::Enqueue { job: Box::new(job), delay_seconds }
    }
}

/// The effect of a decision that needs no further call.
pub(super) fn decision_effect(decision: Decision, job: &Job) -> Effect {
    match decision {
        Decision::Continue { job, delay_seconds } => Effect::enqueue(job, delay_seconds),
        Decision::GiveUp { reason, .. } => {
            error!(reason = %reason, "replication failed");
            Effect::DeadLetter {
                body: Continuation::body(std::slice::from_ref(job)),
                reason: format!("{job}: {reason}"),
            }
        }
        Decision::Replace { job, .. } => Effect::enqueue(job, 0),
        Decision::Share { .. }
        | Decision::Done { .. }
        | Decision::Vanished { .. }
        | Decision::Stop { .. }
        | Decision::Disabled { .. }
        | Decision::DisableWithSource { .. }
        | Decision::EnableAndShare { .. } => {
            Effect::Retry("internal: a decision that needs a call reached decision_effect".into())
        }
    }
}

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Tags a job's last failed copy as given up (best effort: without the tag, a duplicate of the job may
    /// dead-letter it once more).
    async fn mark_given_up(&self, place: &Place, copy: &ImageId, reason: &str) {
        let tag = [Tag::new(GAVE_UP_TAG, reason.chars().take(200).collect::<String>())];
        let result = match self.ec2.at(place) {
            Ok(ec2) => ec2.add_tags(std::slice::from_ref(copy), &tag).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                info!(copy = %copy, region = %place.region, "failed copy kept as the tombstone of this replication")
            }
            Err(e) => {
                warn!(copy = %copy, region = %place.region, error = %e, "could not mark the failed copy as given up")
            }
        }
    }

    /// Sends what the effects ask for: continuations grouped per place and delay (one message carries up to
    /// `JOBS_PER_MESSAGE` jobs and at most MAX_MESSAGE_BYTES), and dead letters. Items whose effects failed are retried;
    /// also answers whether an effect of a job taken from a waiting list failed (its entry then stays there).
    pub(super) async fn make_durable(
        &self,
        items: &[Item],
        effects: Vec<(usize, Effect)>,
        home: &AccountId,
    ) -> (BatchReport, bool) {
        let mut report = BatchReport::default();
        let mut retry: BTreeSet<usize> = BTreeSet::new();
        let mut groups: BTreeMap<(Place, u32), Vec<(usize, Job)>> = BTreeMap::new();
        let mut dead = Vec::new();
        let mut raw = Vec::new();
        for (i, effect) in effects {
            match effect {
                Effect::Retry(reason) => {
                    warn!(message_id = %message_id(items, i), phase = "retry", reason = %reason, "message will be delivered again");
                    retry.insert(i);
                }
                Effect::Enqueue { job, delay_seconds } => {
                    groups.entry((job.place(), delay_seconds)).or_default().push((i, *job))
                }
                Effect::DeadLetter { body, reason } => dead.push((i, body, reason, None)),
                Effect::GiveUp { body, reason, place, tombstone } => {
                    dead.push((i, body, reason, Some((place, tombstone))))
                }
                Effect::Send(message) => raw.push((i, message)),
            }
        }

        // Continuations first: a job that can never fit the queue is dead-lettered with its item, with why.
        let mut messages = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        for (i, message) in raw {
            messages.push(message);
            owners.push(vec![i]);
        }
        let limit = self.settings.max_message_bytes;
        for ((_, delay_seconds), jobs) in groups {
            // Packed by bytes under the queue's MaximumMessageSize, and by count.
            let list: Vec<Job> = jobs.iter().map(|(_, j)| j.clone()).collect();
            let (bodies, too_large) = continuation_bodies(&list, limit);
            for (carried, body) in bodies {
                messages.push(OutgoingMessage { body, delay_seconds });
                owners.push(carried.iter().map(|k| jobs[*k].0).collect());
            }
            for k in too_large {
                let (i, job) = &jobs[k];
                let reason = format!("{job}: its continuation can never fit MAX_MESSAGE_BYTES ({limit} bytes)");
                error!(message_id = %message_id(items, *i), phase = "enqueue", reason = %reason, "job too large for the queue");
                let body =
                    items.get(*i).map_or_else(|| Continuation::body(std::slice::from_ref(job)), |it| it.body.clone());
                dead.push((*i, body, reason, None));
            }
        }
        let dead_results = join_all(dead.iter().map(|(_, body, reason, _)| self.queue.dead_letter(body, reason))).await;
        for ((i, body, reason, tombstone), result) in dead.into_iter().zip(dead_results) {
            match result {
                Ok(true) => {
                    warn!(message_id = %message_id(items, i), phase = "dead_letter", reason = %reason, "sent to the dead-letter queue");
                    if let Some((place, copy)) = &tombstone {
                        self.mark_given_up(place, copy, &reason).await;
                    }
                    let failure = failure_of(&body, &reason, home).map(Box::new);
                    let region = failure.as_ref().map(|f| f.region.clone());
                    report.facts.push(Fact::DeadLettered { region, failure });
                    report.dead_lettered.push(reason);
                }
                Ok(false) => {
                    warn!(message_id = %message_id(items, i), phase = "dead_letter", reason = %reason,
                        "can never succeed; no DEAD_LETTER_QUEUE_URL, left to the queue's redrive policy");
                    retry.insert(i);
                }
                Err(e) => {
                    warn!(message_id = %message_id(items, i), phase = "dead_letter", reason = %reason, error = %e, "dead-lettering failed");
                    retry.insert(i);
                }
            }
        }

        if !messages.is_empty() {
            for (owner, result) in owners.into_iter().zip(self.queue.send(&messages).await) {
                if let Err(e) = result {
                    warn!(phase = "enqueue", error = %e, "could not enqueue a continuation; its messages will be delivered again");
                    retry.extend(owner);
                }
            }
        }
        // A job from a place's waiting list has no message: what failed of it stays in the list.
        let list_failed = retry.contains(&super::waiting::FROM_LIST);
        report.retry = retry.into_iter().filter_map(|i| items.get(i).map(|it| it.id.clone())).collect();
        (report, list_failed)
    }
}

/// The id of the message of item `i`; a job taken from a place's waiting list has none.
fn message_id(items: &[Item], i: usize) -> &str {
    items.get(i).map_or("(waiting list)", |it| it.id.as_str())
}

/// The place a dead letter gives up on, when its body is the continuation of one job (a job's give-up); a work
/// item or an undecodable message concerns no single place.
fn failure_of(body: &str, reason: &str, home: &AccountId) -> Option<Failure> {
    let continuation: Continuation = serde_json::from_str(body).ok()?;
    let [job] = continuation.jobs.as_slice() else { return None };
    Some(Failure {
        source_image: job.source_image.clone(),
        source_region: job.source_region.clone(),
        account: job.place().owner(home).clone(),
        region: job.destination.clone(),
        reason: reason.to_string(),
    })
}
