//! The decisions of a job's life: given what the ports observed, what happens next. Pure: no SDK, no clock.

use super::errors::{ErrorClass, PortError};
use super::ids::ImageId;
use super::image::{ImageInfo, ImageState};
use super::job::{Job, Phase, ReplicationRequest};
use super::provenance::{gave_up, is_our_copy};
use sha2::{Digest, Sha256};

/// SQS allows at most 15 minutes of delay on a message.
pub const MAX_DELAY_SECONDS: u32 = 900;

/// Limits of a job's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLimits {
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

impl Default for JobLimits {
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
    /// The copy is available and already shared (marked so in EC2, e.g. by a copy event handled first): done.
    Done { copy: ImageId },
    /// Send the job back to the work queue with a delay.
    Continue { job: Job, delay_seconds: u32 },
    /// The copy failed: continue with `job` (a new copy attempt, which `replaces` the failed copy), after
    /// deregistering `deregister`, the failed copy before it (if any).
    Replace { deregister: Option<ImageId>, job: Job },
    /// The job can never succeed: deregister `failed_copy` if any (and the failed copy before it), then
    /// dead-letter with the reason.
    GiveUp { reason: String, failed_copy: Option<ImageId> },
    /// The pending copy is gone (deregistered): read the source to tell a stopped replication (its source was
    /// deregistered) from a cancelled copy ([`after_vanished`]).
    Vanished { copy: ImageId },
    /// Nothing failed, but there is nothing left to do (e.g. the source was deregistered): log and end.
    Stop { reason: String },
    /// The copy exists but is disabled (DisableImage): never copied again, never counted failed. The place step
    /// turns it into [`Decision::EnableAndShare`] or [`Decision::Stop`] from its source's state
    /// ([`super::lifecycle::with_source`]).
    Disabled { copy: ImageId },
    /// The copy is available, its source EC2 shows disabled and its rule has DISABLE_COPIES_WITH_SOURCE: disable
    /// it, unless something uses it (then it is shared as any copy); the job then stops
    /// ([`super::lifecycle::after_disable`]).
    DisableWithSource { copy: ImageId },
    /// The copy is disabled and its source available again (DISABLE_COPIES_WITH_SOURCE): enable it, then share it
    /// (enabling restores no launch permission).
    EnableAndShare { copy: ImageId },
}

/// How long a share put off by the pacing of sources' reads waits: the request bucket refills 100 calls in 5 s.
pub const PACED_RETRY_SECONDS: u32 = 5;

/// What a failed share of `copy` means for its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareFailure {
    /// Not a failure: the share was put off by request pacing; the job waits for its copy again.
    PutOff { job: Job, delay_seconds: u32 },
    /// The share failed: the job's next step, and the reason to mark on the copy when the failure is for good
    /// (the status command then shows the place `incomplete`).
    Failed { decision: Decision, mark: Option<String> },
}

/// What a failed share means: put off when it was paced, else the job (waiting for its copy) takes the error as
/// any step does ([`on_error`]), and a permanent error is marked on the copy.
pub fn on_share_error(job: &Job, copy: &ImageId, err: &PortError, policy: &JobLimits) -> ShareFailure {
    if err.code == super::errors::PACED {
        let mut waiting = job.clone();
        waiting.phase = Phase::Wait { copy_image: copy.clone() };
        return ShareFailure::PutOff { job: waiting, delay_seconds: PACED_RETRY_SECONDS };
    }
    let mark = (err.class == ErrorClass::Permanent).then(|| err.to_string().chars().take(200).collect());
    ShareFailure::Failed { decision: on_copy_error(job, copy, err, policy), mark }
}

/// A call about the job's existing `copy` (sharing, disabling, enabling it) failed: the job, waiting for that copy,
/// takes the error as any step does ([`on_error`]).
pub fn on_copy_error(job: &Job, copy: &ImageId, err: &PortError, policy: &JobLimits) -> Decision {
    let mut waiting = job.clone();
    waiting.phase = Phase::Wait { copy_image: copy.clone() };
    on_error(&waiting, err, policy)
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

/// The most a check of few copies is put off: a minute. (With copy events the poll is only the safety net for a
/// lost event, already 300 s apart; putting it off further would hold the copies whose event was lost.)
pub const POLL_STRETCH_MAX_SECONDS: u64 = 60;

/// The delay before the next check of a region's copies, when `copies` of them are checked together: one
/// DescribeImages covers them all, so a region with few copies is checked less often: up to twice the delay,
/// and at most [`POLL_STRETCH_MAX_SECONDS`] later.
pub fn poll_seconds_for(policy: &JobLimits, copies: usize) -> u32 {
    let missing = POLL_FULL_BATCH.saturating_sub(copies) as u64;
    let base = u64::from(policy.poll_seconds);
    let scaled = base + base.min(POLL_STRETCH_MAX_SECONDS) * missing / POLL_FULL_BATCH as u64;
    scaled.min(u64::from(MAX_DELAY_SECONDS)) as u32
}

/// A copy was observed in `state` (`None`: EC2 does not know it).
pub fn on_copy_observed(job: &Job, copy: &ImageId, state: Option<&ImageState>, policy: &JobLimits) -> Decision {
    let waiting = |mut next: Job| {
        next.phase = Phase::Wait { copy_image: copy.clone() };
        next.polls = next.polls.saturating_add(1);
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
        None => Decision::Vanished { copy: copy.clone() },
        Some(s) if s.is_disabled() => Decision::Disabled { copy: copy.clone() },
        Some(bad) => {
            let why = match bad {
                ImageState::Failed(Some(m)) => format!("failed: {m}"),
                other => format!("is {other}"),
            };
            let failed = job.failed_copies.saturating_add(1);
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
                next.replaces = Some(copy.clone());
                Decision::Replace { deregister: job.replaces.clone().filter(|old| old != copy), job: next }
            }
        }
    }
}

/// A pending copy disappeared; `replacement` is another copy of the same source at the same place (the
/// provenance lookup), `source` what EC2 says of the source now (`None`: unknown to EC2). A replacement means a
/// duplicate job replaced a failed copy (both follow the same ClientTokens): wait for it. A source that is gone
/// explains it: replication of that source stopped, nothing failed. Otherwise someone deregistered the copy,
/// which cancels it: a failure to report.
pub fn after_vanished(
    job: &Job,
    copy: &ImageId,
    others: &[ImageInfo],
    source: Option<&ImageState>,
    owner: &super::ids::AccountId,
    policy: &JobLimits,
) -> Decision {
    let ours = |o: &&ImageInfo| is_our_copy(o, &job.source_image, &job.source_region, owner, &job.destination);
    let chain: Vec<&ImageInfo> = others.iter().filter(|o| &o.id != copy).filter(ours).collect();
    let live = chain.iter().find(|o| matches!(o.state, ImageState::Available | ImageState::Pending));
    if let Some(other) = live {
        let mut next = job.clone();
        next.failed_copies = next.failed_copies.max(1);
        return on_copy_observed(&next, &other.id, Some(&other.state), policy);
    }
    if let Some(failed) = chain.first() {
        // A failed copy of the same chain: the job that saw it fail carries the replication on (or gave up, and
        // its dead letter says why). This one is a duplicate.
        return Decision::Stop {
            reason: format!(
                "copy {copy} in {} is gone and {} (failed{}) is handled by another job of this replication",
                job.place(),
                failed.id,
                if gave_up(failed) { ", given up" } else { "" }
            ),
        };
    }
    match source {
        None | Some(ImageState::Other(_)) => Decision::Stop {
            reason: format!(
                "source {} in {} is {}; its pending copy {copy} in {} was stopped",
                job.source_image,
                job.source_region,
                source.map_or("deregistered".to_string(), ToString::to_string),
                job.place()
            ),
        },
        Some(_) => Decision::GiveUp {
            reason: format!("copy {copy} in {} disappeared while pending (deregistered: copy cancelled)", job.place()),
            failed_copy: None,
        },
    }
}

/// The destination region has no room for another copy: wait, with a jittered delay that grows with the wait
/// and is capped so that a freed slot is used soon. Waiting is never a failure: it leaves `retries` alone.
pub fn wait_for_capacity(job: &Job, policy: &JobLimits) -> Decision {
    let mut next = job.clone();
    next.capacity_waits = next.capacity_waits.saturating_add(1);
    // Jittered per region, not per job: the jobs refused together wait together and travel in one message.
    let delay = backoff_seconds(policy.capacity_base_seconds, next.capacity_waits, job.destination.as_str())
        .min(policy.capacity_max_seconds.max(1));
    Decision::Continue { job: next, delay_seconds: delay }
}

/// The admission table failed (`err`) when the job's place would have started copies: the job waits and never
/// fails for it (its age still ends it at JOB_MAX_AGE_HOURS). A passing fault (throttling, a short outage) backs
/// off like a wait for capacity; a lasting one (the table missing, access denied) waits at the capacity delay's
/// ceiling while the operator fixes it (the invocation logs it once and the AdmissionTableErrors alarm fires).
pub fn wait_for_admission_table(job: &Job, err: &PortError, policy: &JobLimits) -> Decision {
    let mut next = job.clone();
    next.capacity_waits = next.capacity_waits.saturating_add(1);
    let ceiling = policy.capacity_max_seconds.max(1);
    let delay = match err.class {
        ErrorClass::Permanent => ceiling,
        _ => backoff_seconds(policy.capacity_base_seconds, next.capacity_waits, &seed(job)).min(ceiling),
    };
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
pub fn on_request_error(request: &ReplicationRequest, err: &PortError, policy: &JobLimits) -> RequestDecision {
    let mut next = request.clone();
    next.retries = next.retries.saturating_add(1);
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

/// The request's source is still pending (EC2 shows it so, created at `created`, RFC 3339): look again after
/// `policy.poll_seconds`, until it is older than JOB_MAX_AGE_HOURS (`max_age_seconds`) like every job. The age is
/// EC2's (the source's creation date); without one, the request's own count of looks bounds it.
pub fn on_source_pending(
    request: &ReplicationRequest,
    created: Option<&str>,
    now: i64,
    max_age_seconds: i64,
    policy: &JobLimits,
) -> RequestDecision {
    let mut next = request.clone();
    next.retries = next.retries.saturating_add(1);
    let looked = i64::from(next.retries).saturating_mul(i64::from(policy.poll_seconds.max(1)));
    let age = created.and_then(super::time::parse_rfc3339).map_or(looked, |c| now.saturating_sub(c));
    if age > max_age_seconds {
        return RequestDecision::GiveUp {
            reason: format!(
                "source image {} has been pending for {} h, longer than JOB_MAX_AGE_HOURS ({} h): given up; send a \
                 work item once it is available",
                request.image,
                age / 3600,
                max_age_seconds / 3600
            ),
        };
    }
    RequestDecision::Resend { request: next, delay_seconds: policy.poll_seconds }
}

/// A port call for this job failed with `err`.
pub fn on_error(job: &Job, err: &PortError, policy: &JobLimits) -> Decision {
    let mut next = job.clone();
    match err.class {
        ErrorClass::Permanent => {
            Decision::GiveUp { reason: super::copy_rules::explain_copy_error(job, err), failed_copy: None }
        }
        ErrorClass::Capacity => wait_for_capacity(job, policy),
        // Throttling slows the job down but never fails it: the request is valid, only too early.
        ErrorClass::Throttled => {
            next.throttles = next.throttles.saturating_add(1);
            let delay = backoff_seconds(policy.backoff_base_seconds, next.throttles, &seed(job));
            Decision::Continue { job: next, delay_seconds: delay }
        }
        ErrorClass::Transient => {
            next.retries = next.retries.saturating_add(1);
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
#[path = "step_tests.rs"]
mod tests;
