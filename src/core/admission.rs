//! Admission under the per-region concurrent-copy limit.

use super::job::Job;

/// How many new copies a region can take now.
pub fn room(limit: u32, in_flight: usize) -> usize {
    (limit as usize).saturating_sub(in_flight)
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
