//! What a place's step decided ([`super::place_step::decide`]): the jobs decided, those admitted to start, those
//! refused for capacity, and the room the place had. Its methods are the step's later decisions: admissions
//! checked again under the lease, the refused jobs sent back, and every decision judged against its source.

use super::admission;
use super::ids::{ImageId, Region};
use super::image::{ImageInfo, ImageState};
use super::job::{Job, Phase};
use super::lifecycle;
use super::step::{self, Decision, JobLimits};
use std::collections::{BTreeMap, BTreeSet};

/// What to do at a place.
#[derive(Debug)]
pub struct PlacePlan<T> {
    /// Jobs whose next step is decided.
    pub decided: Vec<(T, Job, Decision)>,
    /// Jobs admitted under the copy limit: start CopyImage, then [`after_copy`].
    pub start: Vec<(T, Job)>,
    /// Copies in flight at the place when observed.
    pub in_flight: usize,
    /// CopyImage calls the place's request bucket allowed when observed.
    pub copy_tokens: usize,
    /// Jobs that wait for capacity (the place is at its limit).
    pub waiting_for_capacity: usize,
    /// Those jobs, longest first, not decided yet: the shell parks them in the place's waiting list, or sends them
    /// back on the queue ([`PlacePlan::wait_on_queue`]).
    pub refused: Vec<(T, Job)>,
    /// How many copies the place took when observed (its room under the limit and the request bucket).
    pub room: usize,
    /// The policy the decisions used (the poll delay depends on how many copies one poll covers).
    pub policy: JobLimits,
    /// Image ids a message named that EC2 does not confirm (not this product's copy of the job's source at this
    /// place), with why: ignored, and logged by the shell.
    pub rejected_hints: Vec<(ImageId, String)>,
    /// The sources' states and the rules whose copies follow them ([`super::place_step::Observations`]), for
    /// [`PlacePlan::decisions`].
    pub(super) sources: BTreeMap<(ImageId, Region), ImageState>,
    pub(super) following: BTreeSet<Option<String>>,
}

impl<T> PlacePlan<T> {
    /// How many new copies the place takes now, given its pending copies: at most as many as the limit has room
    /// for and the request bucket has tokens (a call beyond either is refused, and a refused CopyImage spends
    /// the scarcest token there is). Records the in-flight count and the tokens.
    pub(super) fn room(&mut self, pending: &[ImageInfo], limit: u32, now_seconds: i64) -> usize {
        self.in_flight = pending.len();
        let started: Vec<i64> =
            pending.iter().filter_map(|i| i.created.as_deref().and_then(super::time::parse_rfc3339)).collect();
        self.copy_tokens = admission::copy_tokens(&started, now_seconds);
        self.room = admission::room(limit, self.in_flight).min(admission::usable_tokens(self.copy_tokens));
        self.room
    }

    /// The refused jobs go back on the queue after the capacity delay (no waiting list, or it failed).
    pub fn wait_on_queue(&mut self) {
        let refused = std::mem::take(&mut self.refused);
        if refused.is_empty() {
            return;
        }
        for (tag, job) in refused {
            let d = step::wait_for_capacity(&job, &self.policy);
            self.decided.push((tag, job, d));
        }
        let policy = self.policy.clone();
        align_full_place(&mut self.decided, &policy);
    }

    /// The admitted jobs do not start in this step: they wait with the refused ones.
    pub fn refuse_starts(&mut self) {
        let start = std::mem::take(&mut self.start);
        self.waiting_for_capacity += start.len();
        self.refused.splice(0..0, start);
    }

    /// The admissions checked against the place's pending copies read again under its lease (another invocation
    /// may have started copies since the first read): at most as many start as there is room for now, largest
    /// first as admitted; the rest wait for capacity.
    pub fn readmit(&mut self, pending: &[ImageInfo], limit: u32, now_seconds: i64) {
        let room = self.room(pending, limit, now_seconds);
        if self.start.len() > room {
            let refused = self.start.split_off(room);
            self.waiting_for_capacity += refused.len();
            self.refused.splice(0..0, refused);
        }
    }

    /// The step's decisions, those of the copies it started (`started`) included: a decision about an existing
    /// copy is judged against its source's state here ([`lifecycle::with_source`]: a copy follows a disabled or
    /// re-enabled source), so the shell only carries them out.
    pub fn decisions(&mut self, started: Vec<(T, Job, Decision)>) -> Vec<(T, Job, Decision)> {
        let decided: Vec<_> = std::mem::take(&mut self.decided).into_iter().chain(started).collect();
        decided
            .into_iter()
            .map(|(tag, job, decision)| {
                let source = self.sources.get(&(job.source_image.clone(), job.source_region.clone()));
                let decision = lifecycle::with_source(&job, decision, source, self.following.contains(&job.rule));
                (tag, job, decision)
            })
            .collect()
    }

    /// The admitted jobs do not start in this step: each gets `decide`'s decision instead.
    pub fn hold_starts(&mut self, decide: impl Fn(&Job) -> Decision) {
        for (tag, job) in std::mem::take(&mut self.start) {
            let d = decide(&job);
            self.decided.push((tag, job, d));
        }
    }
}

/// At a full place, the copies being waited for and the jobs waiting for room come back together, after the
/// capacity delay: a copy found done then frees its slot for the largest waiting job in the same step, and the
/// place's jobs travel in one message instead of one per backoff step (with copy events, the polls would
/// otherwise be 300 s apart while the waiters are fragmented by their backoff).
fn align_full_place<T>(decided: &mut [(T, Job, Decision)], policy: &JobLimits) {
    let delay = policy.capacity_max_seconds.clamp(1, policy.poll_seconds.max(1));
    for (_, _, decision) in decided.iter_mut() {
        if let Decision::Continue { job, delay_seconds } = decision {
            let polling = matches!(job.phase, Phase::Wait { .. }) && job.retries == 0 && job.throttles == 0;
            let for_room = matches!(job.phase, Phase::Copy) && job.capacity_waits > 0;
            if polling || for_room {
                *delay_seconds = delay;
            }
        }
    }
}
