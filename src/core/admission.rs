//! Admission under the per-region concurrent-copy limit.

use super::job::Job;

/// How many new copies a region can take now.
pub fn room(limit: u32, in_flight: usize) -> usize {
    (limit as usize).saturating_sub(in_flight)
}

/// EC2's CopyImage request bucket per account and region: capacity, and tokens added per second (EC2 API
/// reference, "Request throttling").
pub const COPY_BUCKET: (f64, f64) = (100.0, 1.0);

/// CopyImage calls the place's request bucket allows now (at `now`, seconds), replayed from when the copies EC2
/// shows pending there were started (`started`, seconds, in any order): full before the first, one token per
/// start, refilled at one per second. Calls EC2 refused spent tokens too but left no copy: the product keeps
/// them rare by not calling beyond this.
pub fn copy_tokens(started: &[i64], now: i64) -> usize {
    let (capacity, refill) = COPY_BUCKET;
    let mut starts = started.to_vec();
    starts.sort_unstable();
    let mut tokens = capacity;
    let mut last: Option<i64> = None;
    for t in starts.into_iter().chain(std::iter::once(now)) {
        if let Some(at) = last {
            tokens = (tokens + (t - at).max(0) as f64 * refill).min(capacity);
        }
        last = Some(t);
        tokens -= 1.0;
    }
    // The last step was `now` itself, which started nothing.
    tokens += 1.0;
    tokens.max(0.0).floor() as usize
}

/// The CopyImage calls admission spends of the `tokens` the replay found: one fewer unless the bucket is full. The
/// replay sees starts to the second and never the calls EC2 refused; a call over the bucket puts it in debt that
/// every further call deepens, so the estimate errs low.
pub fn usable_tokens(tokens: usize) -> usize {
    if tokens >= COPY_BUCKET.0 as usize {
        tokens
    } else {
        tokens.saturating_sub(1)
    }
}

/// Jobs tagged with the caller's `T`: `(start now, wait)`.
pub type Admission<T> = (Vec<(T, Job)>, Vec<(T, Job)>);

/// A job that has waited for capacity this often goes before every job that has not (about an hour of waits).
pub const STARVING_AFTER_WAITS: u32 = 30;

/// Splits the jobs that need a new copy into those to start now (at most `room`) and those that must wait.
/// Largest images go first (longest processing time first: their copies take longest, so starting them early
/// shortens the whole replication); a job that has waited [`STARVING_AFTER_WAITS`] times goes before all
/// others so none starves; then longer waits first; ties keep arrival order.
pub fn admit<T>(mut candidates: Vec<(T, Job)>, room: usize) -> Admission<T> {
    use std::cmp::Reverse;
    candidates.sort_by_key(|(_, job)| {
        (Reverse(job.capacity_waits >= STARVING_AFTER_WAITS), Reverse(job.size_gib), Reverse(job.capacity_waits))
    });
    let waiting = candidates.split_off(room.min(candidates.len()));
    (candidates, waiting)
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
