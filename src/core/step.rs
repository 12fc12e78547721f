//! The decisions of a job's life: given what the ports observed, what happens next. Pure: no SDK, no clock.

use super::errors::{ErrorClass, PortError};
use super::ids::ImageId;
use super::image::ImageState;
use super::job::{Job, Phase, ReplicationRequest};
use sha2::{Digest, Sha256};

/// SQS allows at most 15 minutes of delay on a message.
pub const MAX_DELAY_SECONDS: u32 = 900;

/// Limits of a job's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPolicy {
    /// Delay before checking a pending copy again (COPY_POLL_SECONDS).
    pub poll_seconds: u32,
    /// Copies that may end `failed` before the job gives up (3).
    pub max_failed_copies: u32,
    /// Consecutive transient failures before the job gives up.
    pub max_retries: u32,
    /// First backoff delay; doubles per retry up to [`MAX_DELAY_SECONDS`].
    pub backoff_base_seconds: u32,
    /// First wait for capacity in a full region; doubles per wait up to `capacity_max_seconds`. With the cap at
    /// `poll_seconds`, long waiters travel with the region's waiting copies and start as soon as a poll finds a
    /// copy done.
    pub capacity_base_seconds: u32,
    pub capacity_max_seconds: u32,
}

impl Default for StepPolicy {
    fn default() -> Self {
        Self {
            poll_seconds: 60,
            max_failed_copies: 3,
            max_retries: 8,
            backoff_base_seconds: 5,
            capacity_base_seconds: 15,
            capacity_max_seconds: 60,
        }
    }
}

/// What to do next with a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The copy is available: apply launch permissions, then the job is done.
    Share { copy: ImageId },
    /// Send the job back to the work queue with a delay.
    Continue { job: Job, delay_seconds: u32 },
    /// The copy failed: deregister it, then continue with `job` (a new copy attempt).
    Replace { failed_copy: ImageId, job: Job },
    /// The job can never succeed: deregister `failed_copy` if any, then dead-letter with the reason.
    GiveUp { reason: String, failed_copy: Option<ImageId> },
}

/// Backoff for the `n`-th retry (1-based): exponential, capped, with deterministic "equal jitter" so that
/// many jobs retrying together spread out. `seed` distinguishes jobs.
pub fn backoff_seconds(base: u32, n: u32, seed: &str) -> u32 {
    let ceiling = base.max(1).saturating_mul(1u32 << n.saturating_sub(1).min(16)).min(MAX_DELAY_SECONDS);
    let digest = Sha256::digest(format!("{seed}|{n}"));
    let r = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let half = ceiling / 2;
    half + r % (ceiling - half + 1)
}

fn seed(job: &Job) -> String {
    format!("{}|{}", job.source_image, job.destination)
}

/// Copies per region and batch from which a poll is cheap enough per copy to run every `poll_seconds`.
pub const POLL_FULL_BATCH: usize = 35;

/// The delay before the next check of a region's copies, when `copies` of them are checked together: one
/// DescribeImages covers them all, so a region with few copies is checked less often, up to twice the delay.
pub fn poll_seconds_for(policy: &StepPolicy, copies: usize) -> u32 {
    let missing = POLL_FULL_BATCH.saturating_sub(copies) as u64;
    let scaled = u64::from(policy.poll_seconds) * (POLL_FULL_BATCH as u64 + missing) / POLL_FULL_BATCH as u64;
    scaled.min(u64::from(MAX_DELAY_SECONDS)) as u32
}

/// A copy was observed in `state` (`None`: EC2 does not know it).
pub fn on_copy_observed(job: &Job, copy: &ImageId, state: Option<&ImageState>, policy: &StepPolicy) -> Decision {
    let waiting = |mut next: Job| {
        next.phase = Phase::Wait { copy_image: copy.clone() };
        next.polls += 1;
        next.retries = 0;
        next.throttles = 0;
        next.capacity_waits = 0;
        Decision::Continue { job: next, delay_seconds: policy.poll_seconds }
    };
    match state {
        Some(ImageState::Available) => Decision::Share { copy: copy.clone() },
        Some(ImageState::Pending) => waiting(job.clone()),
        // Just after CopyImage, DescribeImages may not list the copy yet (eventual consistency).
        None if job.polls == 0 => waiting(job.clone()),
        None => Decision::GiveUp {
            reason: format!(
                "copy {copy} in {} disappeared while pending (deregistered: copy cancelled)",
                job.destination
            ),
            failed_copy: None,
        },
        Some(bad) => {
            let why = match bad {
                ImageState::Failed(Some(m)) => format!("failed: {m}"),
                other => format!("is {other}"),
            };
            let failed = job.failed_copies + 1;
            if failed >= policy.max_failed_copies {
                Decision::GiveUp {
                    reason: format!("copy {copy} in {} {why}; {failed} copies failed, giving up", job.destination),
                    failed_copy: Some(copy.clone()),
                }
            } else {
                let mut next = job.clone();
                next.phase = Phase::Copy;
                next.failed_copies = failed;
                next.polls = 0;
                Decision::Replace { failed_copy: copy.clone(), job: next }
            }
        }
    }
}

/// The destination region has no room for another copy: wait, with a jittered delay that grows with the wait
/// and is capped so that a freed slot is used soon. Waiting is never a failure: it leaves `retries` alone.
pub fn wait_for_capacity(job: &Job, policy: &StepPolicy) -> Decision {
    let mut next = job.clone();
    next.capacity_waits += 1;
    // Jittered per region, not per job: the jobs refused together wait together and travel in one message.
    let delay = backoff_seconds(policy.capacity_base_seconds, next.capacity_waits, job.destination.as_str())
        .min(policy.capacity_max_seconds.max(1));
    Decision::Continue { job: next, delay_seconds: delay }
}

/// What to do with a replication request whose source could not be read yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestDecision {
    /// Send the request back to the work queue with a delay.
    Resend {
        request: ReplicationRequest,
        delay_seconds: u32,
    },
    GiveUp {
        reason: String,
    },
}

/// Reading the source failed with `err`: throttling backs off without limit, transient errors a bounded
/// number of times, permanent ones give up.
pub fn on_request_error(request: &ReplicationRequest, err: &PortError, policy: &StepPolicy) -> RequestDecision {
    let mut next = request.clone();
    next.retries += 1;
    let seed = format!("{}|{}", request.image, request.source_region);
    let delay_seconds = backoff_seconds(policy.backoff_base_seconds, next.retries, &seed);
    match err.class {
        ErrorClass::Permanent => {
            RequestDecision::GiveUp { reason: format!("reading source image {}: {err}", request.image) }
        }
        ErrorClass::Transient if next.retries > policy.max_retries => RequestDecision::GiveUp {
            reason: format!(
                "reading source image {}: {err} (still failing after {} retries)",
                request.image, policy.max_retries
            ),
        },
        ErrorClass::Throttled | ErrorClass::Capacity | ErrorClass::Transient => {
            RequestDecision::Resend { request: next, delay_seconds }
        }
    }
}

/// A port call for this job failed with `err`.
pub fn on_error(job: &Job, err: &PortError, policy: &StepPolicy) -> Decision {
    let mut next = job.clone();
    match err.class {
        ErrorClass::Permanent => Decision::GiveUp { reason: err.to_string(), failed_copy: None },
        ErrorClass::Capacity => wait_for_capacity(job, policy),
        // Throttling slows the job down but never fails it: the request is valid, only too early.
        ErrorClass::Throttled => {
            next.throttles += 1;
            let delay = backoff_seconds(policy.backoff_base_seconds, next.throttles, &seed(job));
            Decision::Continue { job: next, delay_seconds: delay }
        }
        ErrorClass::Transient => {
            next.retries += 1;
            if next.retries > policy.max_retries {
                return Decision::GiveUp {
                    reason: format!("{err} (still failing after {} retries)", policy.max_retries),
                    failed_copy: None,
                };
            }
            let delay = backoff_seconds(policy.backoff_base_seconds, next.retries, &seed(job));
            Decision::Continue { job: next, delay_seconds: delay }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::Region;

    fn job() -> Job {
        Job::new(
            ImageId::parse("ami-0123456789abcdef0").unwrap(),
            Region::parse("us-east-1").unwrap(),
            Region::parse("eu-west-1").unwrap(),
            None,
            None,
        )
    }

    fn copy() -> ImageId {
        ImageId::parse("ami-11111111").unwrap()
    }

    #[test]
    fn available_copies_are_shared_and_pending_ones_polled() {
        let p = StepPolicy::default();
        assert_eq!(
            on_copy_observed(&job(), &copy(), Some(&ImageState::Available), &p),
            Decision::Share { copy: copy() }
        );
        match on_copy_observed(&job(), &copy(), Some(&ImageState::Pending), &p) {
            Decision::Continue { job, delay_seconds } => {
                assert_eq!(delay_seconds, 60);
                assert_eq!(job.phase, Phase::Wait { copy_image: copy() });
                assert_eq!(job.polls, 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failed_copies_are_replaced_three_times_then_given_up() {
        let p = StepPolicy::default();
        let mut j = job();
        let failed = ImageState::Failed(Some("snapshot error".into()));
        for attempt in 1..3 {
            match on_copy_observed(&j, &copy(), Some(&failed), &p) {
                Decision::Replace { failed_copy, job } => {
                    assert_eq!(failed_copy, copy());
                    assert_eq!(job.failed_copies, attempt);
                    assert_eq!(job.phase, Phase::Copy);
                    j = job;
                }
                other => panic!("{other:?}"),
            }
        }
        match on_copy_observed(&j, &copy(), Some(&failed), &p) {
            Decision::GiveUp { reason, failed_copy } => {
                assert!(reason.contains("snapshot error") && reason.contains("3 copies failed"), "{reason}");
                assert_eq!(failed_copy, Some(copy()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_copy_missing_after_polling_was_cancelled() {
        let p = StepPolicy::default();
        assert!(matches!(on_copy_observed(&job(), &copy(), None, &p), Decision::Continue { .. }));
        let mut j = job();
        j.polls = 3;
        assert!(matches!(on_copy_observed(&j, &copy(), None, &p), Decision::GiveUp { failed_copy: None, .. }));
    }

    #[test]
    fn errors_by_class() {
        let p = StepPolicy::default();
        let perm = PortError::from_code("InvalidAMIID.NotFound", "gone");
        assert!(
            matches!(on_error(&job(), &perm, &p), Decision::GiveUp { reason, .. } if reason.contains("InvalidAMIID.NotFound"))
        );
        let cap = PortError::from_code("ResourceLimitExceeded", "too many");
        let mut j = job();
        j.retries = 100;
        match on_error(&j, &cap, &p) {
            Decision::Continue { job, delay_seconds } => {
                assert_eq!(job.capacity_waits, 1);
                assert_eq!(job.retries, 100, "capacity waits are not failures");
                assert!((7..=15).contains(&delay_seconds), "{delay_seconds}");
                let mut j = job;
                for _ in 0..10 {
                    j.capacity_waits += 1;
                }
                match wait_for_capacity(&j, &p) {
                    Decision::Continue { delay_seconds, .. } => assert_eq!(delay_seconds, 60),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
        let transient = PortError::from_code("InternalError", "oops");
        let mut j = job();
        for n in 1..=p.max_retries {
            match on_error(&j, &transient, &p) {
                Decision::Continue { job, .. } => {
                    assert_eq!(job.retries, n);
                    j = job;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(on_error(&j, &transient, &p), Decision::GiveUp { .. }));
    }

    #[test]
    fn requests_back_off_on_throttling_and_give_up_on_permanent_errors() {
        let p = StepPolicy::default();
        let mut request = ReplicationRequest::new(
            ImageId::parse("ami-0123456789abcdef0").unwrap(),
            Region::parse("us-east-1").unwrap(),
            None,
        );
        let throttled = PortError::from_code("RequestLimitExceeded", "slow down");
        for _ in 0..20 {
            match on_request_error(&request, &throttled, &p) {
                RequestDecision::Resend { request: next, delay_seconds } => {
                    assert!(delay_seconds >= 2);
                    request = next;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(request.retries, 20);
        let transient = PortError::from_code("InternalError", "oops");
        assert!(matches!(on_request_error(&request, &transient, &p), RequestDecision::GiveUp { .. }));
        let gone = PortError::from_code("InvalidAMIID.Malformed", "bad");
        request.retries = 0;
        assert!(
            matches!(on_request_error(&request, &gone, &p), RequestDecision::GiveUp { reason } if reason.contains("Malformed"))
        );
    }

    #[test]
    fn regions_with_few_copies_are_polled_less_often() {
        let p = StepPolicy::default();
        assert_eq!(poll_seconds_for(&p, POLL_FULL_BATCH), 60);
        assert_eq!(poll_seconds_for(&p, 500), 60);
        assert_eq!(poll_seconds_for(&p, 0), 120);
        let one = poll_seconds_for(&p, 1);
        assert!(one > 110 && one < 120, "{one}");
        let zero = StepPolicy { poll_seconds: 0, ..StepPolicy::default() };
        assert_eq!(poll_seconds_for(&zero, 1), 0, "tests may poll at once");
        let long = StepPolicy { poll_seconds: 900, ..StepPolicy::default() };
        assert_eq!(poll_seconds_for(&long, 1), MAX_DELAY_SECONDS);
    }

    #[test]
    fn throttling_slows_down_but_never_gives_up() {
        let p = StepPolicy::default();
        let throttled = PortError::from_code("RequestLimitExceeded", "slow down");
        let mut j = job();
        let mut last = 0;
        for n in 1..=40 {
            match on_error(&j, &throttled, &p) {
                Decision::Continue { job, delay_seconds } => {
                    assert_eq!((job.throttles, job.retries), (n, 0));
                    assert!(delay_seconds <= MAX_DELAY_SECONDS);
                    last = delay_seconds;
                    j = job;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(last >= MAX_DELAY_SECONDS / 2, "{last}");
        match on_copy_observed(&j, &copy(), Some(&ImageState::Pending), &p) {
            Decision::Continue { job, .. } => assert_eq!(job.throttles, 0, "progress resets the count"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let d1 = backoff_seconds(5, 1, "a");
        assert!((2..=5).contains(&d1), "{d1}");
        let d5 = backoff_seconds(5, 5, "a");
        assert!((40..=80).contains(&d5), "{d5}");
        assert!(backoff_seconds(5, 30, "a") <= MAX_DELAY_SECONDS);
        let spread: std::collections::HashSet<u32> = (0..50).map(|i| backoff_seconds(60, 4, &i.to_string())).collect();
        assert!(spread.len() > 10, "jitter spreads retries: {spread:?}");
    }
}
