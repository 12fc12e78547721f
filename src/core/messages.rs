//! What fits in SQS: a message, and a SendMessageBatch, may not exceed the queue's MaximumMessageSize (256 KiB on
//! many queues, 1 MiB at most; SQS answers `MessageTooLong` / `BatchRequestTooLong`, the same on every retry).
//! Continuations and batches are therefore packed by bytes, not only by count. Pure.

use super::job::{Continuation, Job, JOBS_PER_MESSAGE};
use std::ops::Range;

/// MAX_MESSAGE_BYTES when unset: the smaller limit, the MaximumMessageSize of many queues.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 262_144;

/// The most SQS takes in one message or one batch.
pub const SQS_MAX_MESSAGE_BYTES: usize = 1_048_576;

/// The continuation bodies that carry `jobs` (in their order), each at most `max_bytes` long and at most
/// [`JOBS_PER_MESSAGE`] jobs, with the indexes of the jobs it carries; and the jobs that alone can never fit
/// (their indexes), which the caller dead-letters with the reason.
pub fn continuation_bodies(jobs: &[Job], max_bytes: usize) -> (Vec<(Vec<usize>, String)>, Vec<usize>) {
    let envelope = Continuation::body(&[]).len();
    let body = |carried: &[usize]| {
        let list: Vec<Job> = carried.iter().map(|i| jobs[*i].clone()).collect();
        (carried.to_vec(), Continuation::body(&list))
    };
    let mut bodies = Vec::new();
    let mut too_large = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut used = envelope;
    for (i, job) in jobs.iter().enumerate() {
        let size = serde_json::to_string(job).map_or(usize::MAX, |s| s.len());
        if envelope.saturating_add(size) > max_bytes {
            too_large.push(i);
            continue;
        }
        let separator = usize::from(!current.is_empty());
        if current.len() >= JOBS_PER_MESSAGE || used + separator + size > max_bytes {
            bodies.push(body(&current));
            current.clear();
            used = envelope;
        }
        used += usize::from(!current.is_empty()) + size;
        current.push(i);
    }
    if !current.is_empty() {
        bodies.push(body(&current));
    }
    (bodies, too_large)
}

/// The SendMessageBatch calls that carry messages of these `sizes` (bytes), in order: each at most
/// `max_entries` messages and at most `max_bytes` in all. A message over `max_bytes` goes alone (SQS refuses it
/// with MessageTooLong, a permanent error).
pub fn batches(sizes: &[usize], max_entries: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = 0usize;
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start >= max_entries || used.saturating_add(*size) > max_bytes) {
            out.push(start..i);
            start = i;
            used = 0;
        }
        used = used.saturating_add(*size);
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

#[cfg(test)]
#[path = "messages_tests.rs"]
mod tests;
