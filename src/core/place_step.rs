//! One place's step without I/O: the jobs of one (account, region) and what EC2 said about them in, decisions
//! out. The shell (`service::place`) observes with as few calls as the place allows, calls [`decide`], then
//! acts (CopyImage for the admitted jobs, sharing, replacing) and feeds CopyImage's answers to [`after_copy`].

use super::admission;
use super::copy_rules;
use super::errors::{ErrorClass, PortError};
use super::ids::Region;
use super::ids::{AccountId, ImageId};
use super::image::{ImageInfo, ImageState};
use super::job::{Job, Phase};
use super::provenance::{attempt, gave_up, is_shared};
use super::step::{self, Decision, JobLimits};
use super::trust::MessageBounds;
use std::collections::{BTreeMap, BTreeSet};

pub use super::place_plan::PlacePlan;

/// A place's jobs, split by phase. `T` is the caller's tag (the message a job came from).
#[derive(Debug)]
pub struct PlaceJobs<T> {
    /// Jobs waiting for a copy, with that copy's id.
    pub waiting: Vec<(T, ImageId, Job)>,
    /// Jobs that need an existing copy found, or a new one started.
    pub to_copy: Vec<(T, Job)>,
}

impl<T> PlaceJobs<T> {
    pub fn split(jobs: Vec<(T, Job)>) -> Self {
        let mut split = Self { waiting: Vec::new(), to_copy: Vec::new() };
        for (tag, job) in jobs {
            match &job.phase {
                Phase::Wait { copy_image } => split.waiting.push((tag, copy_image.clone(), job)),
                Phase::Copy => split.to_copy.push((tag, job)),
            }
        }
        split
    }

    pub fn len(&self) -> usize {
        self.waiting.len() + self.to_copy.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the in-flight count is needed: only admission uses it (for new jobs, and for the jobs waiting at a
    /// place that a poll of its copies may make room for).
    pub fn needs_in_flight(&self) -> bool {
        !self.to_copy.is_empty() || self.waiting.iter().any(|(_, _, j)| j.behind)
    }

    /// The sources whose existing copies must be looked up (one call covers them all).
    pub fn sources(&self) -> Vec<ImageId> {
        let set: BTreeSet<&ImageId> = self.to_copy.iter().map(|(_, j)| &j.source_image).collect();
        set.into_iter().cloned().collect()
    }

    /// The images to look up by id: the waiting copies whose state the list of pending images does not tell
    /// (those not in it; without that list, `None`, all of them), and the failed copies waiting jobs say they
    /// replace (a message's claim, checked before anything is deregistered).
    pub fn copies_to_describe(&self, pending: Option<&[ImageInfo]>) -> Vec<ImageId> {
        let pending: Option<BTreeSet<&ImageId>> = pending.map(|p| p.iter().map(|i| &i.id).collect());
        let mut ids: BTreeSet<ImageId> = self
            .waiting
            .iter()
            .filter(|(_, copy, _)| pending.as_ref().is_none_or(|p| !p.contains(copy)))
            .map(|(_, c, _)| c.clone())
            .collect();
        ids.extend(self.waiting.iter().filter_map(|(_, _, job)| job.replaces.clone()));
        ids.into_iter().collect()
    }

    /// The sources of waiting jobs whose copy EC2 no longer shows (neither pending nor described) after their
    /// first poll: one more lookup of their copies decides what became of them.
    pub fn vanished_sources(&self, pending: Option<&[ImageInfo]>, described: &[ImageInfo]) -> Vec<ImageId> {
        let known: BTreeSet<&ImageId> = pending.unwrap_or_default().iter().chain(described).map(|i| &i.id).collect();
        let seen = |copy: &ImageId| known.contains(copy);
        let set: BTreeSet<ImageId> = self
            .waiting
            .iter()
            .filter(|(_, copy, job)| job.polls > 0 && !seen(copy))
            .map(|(_, _, job)| job.source_image.clone())
            .collect();
        set.into_iter().collect()
    }
}

/// What EC2 said about a place, gathered by the shell.
#[derive(Debug, Clone)]
pub struct Observations {
    /// The place's pending images (copies in flight), when [`PlaceJobs::needs_in_flight`].
    pub pending: Option<Result<Vec<ImageInfo>, PortError>>,
    /// Existing copies of [`PlaceJobs::sources`] (the provenance-tag lookup).
    pub existing: Result<Vec<ImageInfo>, PortError>,
    /// The images of [`PlaceJobs::copies_to_describe`] that EC2 knows.
    pub described: Result<Vec<ImageInfo>, PortError>,
    /// When some waiting copies are gone ([`PlaceJobs::vanished_sources`]): the copies of their sources here, which
    /// tell a copy replaced by a duplicate job from a cancelled one.
    pub others: Option<Result<Vec<ImageInfo>, PortError>>,
    /// The sources as EC2 showed them in this invocation (admission read them); a source EC2 does not know is
    /// absent.
    pub sources: BTreeMap<(ImageId, Region), ImageState>,
    /// The rules (by name; `None`: the one rule without REPLICATION_RULES) whose copies follow their source's
    /// disabling (DISABLE_COPIES_WITH_SOURCE): from the configuration, not from EC2.
    pub following: BTreeSet<Option<String>>,
    /// When the place was observed (seconds since the epoch): the pending copies' creation times then tell how
    /// many CopyImage calls the place's request bucket allows ([`admission::copy_tokens`]).
    pub now_seconds: i64,
}

/// The copy to resume, if one exists: an available one first, else a pending one. Failed or deregistered
/// copies are not resumed.
pub fn best_existing_copy<'a>(images: &'a [ImageInfo], job: &Job, owner: &AccountId) -> Option<&'a ImageInfo> {
    let mine = || images.iter().filter(|img| MessageBounds::is_our_copy(img, job, owner));
    mine()
        .find(|img| img.state == ImageState::Available)
        .or_else(|| mine().find(|img| img.state == ImageState::Pending))
}

/// Decides every job of a place: waiting copies settled or still pending, existing copies resumed, and at most
/// `limit` minus the copies in flight new copies admitted (largest first, see [`admission::admit`]). `owner` is
/// the place's account. An image id a job carries is only a hint: a copy is waited for, shared or replaced only
/// when EC2 shows it is this product's copy of the job's source owned by `owner`; how many copies failed (the
/// next attempt's ClientToken) and which failed copy a successor replaces are read from EC2 too.
pub fn decide<T>(
    jobs: PlaceJobs<T>,
    observed: Observations,
    limit: u32,
    base: &JobLimits,
    owner: &AccountId,
) -> PlacePlan<T> {
    // One DescribeImages polls every copy of the batch at this place: with few copies, poll less often.
    let policy = JobLimits { poll_seconds: step::poll_seconds_for(base, jobs.len()), ..base.clone() };
    let mut plan = PlacePlan {
        decided: Vec::new(),
        start: Vec::new(),
        in_flight: 0,
        copy_tokens: 0,
        waiting_for_capacity: 0,
        refused: Vec::new(),
        room: 0,
        policy,
        rejected_hints: Vec::new(),
        sources: BTreeMap::new(),
        following: observed.following,
    };
    let policy = &plan.policy.clone();
    let pending = match observed.pending {
        Some(Err(e)) => {
            let all = jobs.waiting.into_iter().map(|(t, _, j)| (t, j)).chain(jobs.to_copy);
            plan.decided.extend(all.map(|(t, j)| {
                let d = step::on_error(&j, &e, policy);
                (t, j, d)
            }));
            return plan;
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    let described: &[ImageInfo] = observed.described.as_deref().unwrap_or_default();
    // Every image observed, by id (a pending one over a described one): a full place has hundreds of each.
    let mut by_id: BTreeMap<&ImageId, &ImageInfo> = described.iter().map(|i| (&i.id, i)).collect();
    by_id.extend(pending.as_deref().unwrap_or_default().iter().map(|i| (&i.id, i)));

    for (tag, copy, mut job) in jobs.waiting {
        // The failed copy the job says it replaces: deregistered later only if EC2 shows it is ours and failed.
        if let Some(old) = job.replaces.take() {
            match described.iter().find(|i| i.id == old) {
                Some(img)
                    if MessageBounds::is_our_copy(img, &job, owner) && matches!(img.state, ImageState::Failed(_)) =>
                {
                    job.replaces = Some(old)
                }
                _ => {
                    plan.rejected_hints.push((old, "not a failed copy of this source here: never deregistered".into()))
                }
            }
        }
        let seen = by_id.get(&copy).copied();
        if let Some(img) = seen.filter(|img| !MessageBounds::is_our_copy(img, &job, owner)) {
            plan.rejected_hints.push((img.id.clone(), "not this source's copy here: looked up by provenance".into()));
            let mut next = job.clone();
            next.phase = Phase::Copy;
            next.replaces = None;
            next.polls = 0;
            plan.decided.push((tag, job, Decision::Continue { job: next, delay_seconds: 0 }));
            continue;
        }
        if let Some(img) = seen {
            job.failed_copies = attempt(img);
        }
        let decision = match seen {
            Some(img) if img.state == ImageState::Pending => {
                step::on_copy_observed(&job, &copy, Some(&ImageState::Pending), policy)
            }
            _ => match &observed.described {
                Ok(_) => match seen {
                    Some(img) if gave_up(img) => given_up(&job, &copy),
                    Some(img) if img.state == ImageState::Available && is_shared(img) => Decision::Done { copy },
                    img => step::on_copy_observed(&job, &copy, img.map(|i| &i.state), policy),
                },
                Err(e) => step::on_error(&job, e, policy),
            },
        };
        let decision = match decision {
            Decision::Vanished { copy } => match &observed.others {
                Some(Ok(others)) => {
                    let source = observed.sources.get(&(job.source_image.clone(), job.source_region.clone()));
                    step::after_vanished(&job, &copy, others, source, owner, policy)
                }
                Some(Err(e)) => step::on_error(&job, e, policy),
                // Not looked up: look again at the next poll.
                None => Decision::Continue { job: job.clone(), delay_seconds: policy.poll_seconds },
            },
            other => other,
        };
        plan.decided.push((tag, job, decision));
    }

    let candidates = decide_copies(jobs.to_copy, &observed.existing, owner, policy, &mut plan.decided);
    plan.sources = observed.sources;
    let room = plan.room(pending.as_deref().unwrap_or_default(), limit, observed.now_seconds);
    let (admitted, refused) = admission::admit(candidates, room);
    plan.waiting_for_capacity = refused.len();
    plan.refused = refused;
    plan.start = admitted;
    plan
}

/// Decides the jobs that need a copy from the lookup of their sources' existing copies (`existing`): an existing
/// copy of ours resumed or done, a replication given up here stopped, a disabled copy followed; answers the
/// candidates for a new copy (their attempt and the failed copy they replace read from EC2).
pub fn decide_copies<T>(
    to_copy: Vec<(T, Job)>,
    existing: &Result<Vec<ImageInfo>, PortError>,
    owner: &AccountId,
    policy: &JobLimits,
    decided: &mut Vec<(T, Job, Decision)>,
) -> Vec<(T, Job)> {
    let mut candidates = Vec::new();
    for (tag, mut job) in to_copy {
        let images = match existing {
            Err(e) => {
                let d = step::on_error(&job, e, policy);
                decided.push((tag, job, d));
                continue;
            }
            Ok(images) => images,
        };
        let mine: Vec<&ImageInfo> = images.iter().filter(|i| MessageBounds::is_our_copy(i, &job, owner)).collect();
        if let Some(tombstone) = mine.iter().find(|i| gave_up(i)) {
            let d = given_up(&job, &tombstone.id);
            decided.push((tag, job, d));
            continue;
        }
        // The last failed copy of this source here, if any: the next attempt follows it, and replaces it.
        let last_failed = mine.iter().filter(|i| matches!(i.state, ImageState::Failed(_))).max_by_key(|i| attempt(i));
        job.failed_copies = last_failed.map_or(0, |i| attempt(i).saturating_add(1));
        job.replaces = last_failed.map(|i| i.id.clone());
        let disabled = mine.iter().find(|i| i.state.is_disabled()).map(|i| i.id.clone());
        match best_existing_copy(images, &job, owner) {
            Some(copy) if copy.state == ImageState::Available && is_shared(copy) => {
                decided.push((tag, job, Decision::Done { copy: copy.id.clone() }));
            }
            Some(copy) => {
                let d = step::on_copy_observed(&job, &copy.id, Some(&copy.state), policy);
                decided.push((tag, job, d));
            }
            // A disabled copy is still this source's copy here: a new one would duplicate it.
            None if disabled.is_some() => {
                decided.extend(disabled.map(|copy| (tag, job, Decision::Disabled { copy })));
            }
            None if job.failed_copies >= policy.max_failed_copies => {
                let reason = format!("{} copies failed in {}, giving up", job.failed_copies, job.place());
                let failed_copy = job.replaces.clone();
                decided.push((tag, job, Decision::GiveUp { reason, failed_copy }));
            }
            None => candidates.push((tag, job)),
        }
    }
    candidates
}

/// Another job of this replication gave up at this place (`tombstone` is its last failed copy): this one stops.
fn given_up(job: &Job, tombstone: &ImageId) -> Decision {
    Decision::Stop {
        reason: format!(
            "replication to {} was given up by another job (its dead letter has the reason); deregister the failed \
             copy {tombstone} there to let the next sweep try again",
            job.place()
        ),
    }
}

/// CopyImage answered `result` for `job`.
pub fn after_copy(job: &Job, result: &Result<ImageId, PortError>, policy: &JobLimits) -> Decision {
    match result {
        Ok(copy) => step::on_copy_observed(job, copy, Some(&ImageState::Pending), policy),
        // Another invocation raced for the last slot, or AWS allows fewer copies than configured.
        Err(e) if e.class == ErrorClass::Capacity => step::wait_for_capacity(job, policy),
        Err(e) if e.class == ErrorClass::Permanent => {
            Decision::GiveUp { reason: copy_rules::explain_copy_error(job, e), failed_copy: None }
        }
        Err(e) => step::on_error(job, e, policy),
    }
}

#[cfg(test)]
#[path = "place_step_tests.rs"]
mod tests;
