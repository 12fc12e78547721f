//! A place's step, the shell around `core::place_step`: observe the place with as few calls as it allows, decide
//! in the core, then act (CopyImage for the admitted jobs, then sharing, replacing or ending each job).

use super::durable::decision_effect;
use super::lease::{lease_key, LeaseRound};
use super::waiting::{wake_again, Taken, Wake};
use super::{push, Effect, Invocation, Replicator};
use crate::core::copy_rules;
use crate::core::facts::{Completion, Fact};
use crate::core::ids::{AccountId, ImageId, Place, Region};
use crate::core::image::{ImageState, Tag};
use crate::core::job::{Job, Phase};
use crate::core::place_step::{self, Observations, PlaceJobs};
use crate::core::provenance::{
    client_token, copy_tags, provenance_tags, ATTEMPT_TAG, SOURCE_CREATED_TAG, SOURCE_IMAGE_TAG, SOURCE_OWNER_TAG,
};
use crate::core::replication_rules::RULE_TAG;
use crate::core::step::{self, Decision};
use crate::core::waiting;
use crate::ports::{CopyRequest, Ec2, Ec2Regions, ImageBuilder, Queue};
use futures::future::join_all;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn, Instrument};

/// CopyImage calls in flight at once per place and invocation (the SDK's adaptive retry paces them further).
const COPY_CONCURRENCY: usize = 8;

pub(super) fn job_span(job: &Job) -> tracing::Span {
    tracing::info_span!("job", image = %job.source_image, region = %job.destination,
        account = job.account.as_ref().map_or("", |a| a.as_str()), phase = job.phase_name(),
        rule = job.rule.as_deref().unwrap_or(""))
}

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Advances every job of one place: one DescribeImages for its pending images (the in-flight count, and
    /// which waiting copies are still pending), one for existing copies of the sources to copy, one for waiting
    /// copies that are no longer pending; then CopyImage for as many jobs as the limit has room for.
    pub(super) async fn advance_place(
        &self,
        place: Place,
        jobs: Vec<(usize, Job)>,
        wake: Option<Wake>,
        home: &AccountId,
        invocation: &Invocation,
    ) -> Vec<(usize, Effect)> {
        let span = tracing::info_span!("place", region = %place.region,
            account = place.account.as_ref().map_or("", |a| a.as_str()), phase = "place_step");
        let ec2 = match self.at(&place, home) {
            Ok(ec2) => ec2,
            Err(e) => {
                let _entered = span.enter();
                warn!(error = %e, "no EC2 client for this place");
                return jobs
                    .into_iter()
                    .map(|(i, job)| (i, decision_effect(step::on_error(&job, &e, &self.settings.step), &job)))
                    .collect();
            }
        };
        if self.past_cutoff(invocation) {
            let _entered = span.enter();
            info!(jobs = jobs.len(), "the invocation's deadline is near: this place is left for the next one");
            let mut left: Vec<(usize, Effect)> =
                jobs.into_iter().map(|(i, job)| (i, Effect::enqueue(job, 0))).collect();
            left.extend(wake_again(&place, wake.as_ref(), 0));
            return left;
        }
        if let Some(w) = wake.as_ref().filter(|w| w.check && jobs.is_empty()) {
            // A copy event's: look only when some jobs wait (one read, without the lease).
            match self.leases.waiting(&lease_key(&place, home)).instrument(span.clone()).await {
                Ok(list) if list.entries.is_empty() => return vec![],
                Ok(_) => {}
                Err(e) => {
                    let _entered = span.enter();
                    warn!(error = %e, items = w.items.len(), "the waiting list could not be read; left to the polls");
                    return vec![];
                }
            }
        }
        let jobs = PlaceJobs::split(jobs);
        let behind = jobs.waiting.iter().any(|(_, _, j)| j.behind);
        let sources = self.source_states(&jobs, invocation).await;
        let following = self.settings.rules_following_sources();
        let observed =
            observe(&ec2, &jobs, wake.is_some(), sources, following, self.now() as i64).instrument(span.clone()).await;
        let owner = place.owner(home).clone();
        let observed_at = observed.now_seconds;
        let own_in_flight = observed
            .pending
            .as_ref()
            .and_then(|p| p.as_ref().ok())
            .map_or(0, |p| p.iter().filter(|i| i.tag(SOURCE_IMAGE_TAG).is_some()).count());
        let mut plan =
            place_step::decide(jobs, observed, self.settings.max_copies_per_region, &self.settings.step, &owner);
        let parks = self.leases.keeps_waiting_jobs();
        // Copies start only under the place's admission lease, from an in-flight count no other invocation
        // changed since it was read; the lease's holder sees every job waiting at the place.
        let wanted = plan.room > 0 && (!plan.start.is_empty() || (parks && (wake.is_some() || behind)));
        let mut round = LeaseRound::default();
        let mut taken = Taken::default();
        let mut effects = Vec::new();
        if wanted {
            round = self
                .admit_under_lease(&ec2, &place, home, &mut plan, observed_at, invocation)
                .instrument(span.clone())
                .await;
            if round.until.is_some() && parks {
                let (t, refused) =
                    self.take_waiting(&ec2, &place, home, &mut plan, &round, invocation).instrument(span.clone()).await;
                taken = t;
                effects.extend(refused);
            }
        }
        let until = round.until;
        // The copies started now say whether jobs still wait here: their polls then look at the waiting list.
        let full = plan.start.len() >= plan.room || !plan.refused.is_empty() || !taken.left.is_empty();
        for (_, job) in plan.start.iter_mut() {
            job.behind = parks && full;
        }
        for (image, why) in &plan.rejected_hints {
            let _entered = span.enter();
            warn!(hint = %image, reason = %why, "an image id in a message is not confirmed by EC2; ignored");
        }
        if plan.waiting_for_capacity > 0 {
            let _entered = span.enter();
            info!(
                in_flight = plan.in_flight,
                copy_tokens = plan.copy_tokens,
                admitted = plan.start.len(),
                waiting = plan.waiting_for_capacity,
                "place at its copy limit or out of CopyImage request tokens; jobs wait for capacity"
            );
        }
        let policy = plan.policy.clone();
        let policy = &policy;
        let start = std::mem::take(&mut plan.start);
        let copy_throttled = std::sync::atomic::AtomicBool::new(false);
        let copy_throttled = &copy_throttled;
        let started: Vec<_> = futures::stream::iter(start.into_iter().map(|(i, job)| {
            let ec2 = &ec2;
            let span = job_span(&job);
            async move {
                if copy_throttled.load(std::sync::atomic::Ordering::Relaxed) {
                    info!("CopyImage was throttled at this place; the job waits for the next step");
                    let decision = step::wait_for_capacity(&job, policy);
                    return (i, job, decision);
                }
                if !self.lease_allows_copy(until) {
                    info!("the admission lease is about to end; the job waits for the next step");
                    let decision = step::wait_for_capacity(&job, policy);
                    return (i, job, decision);
                }
                if self.past_cutoff(invocation) {
                    info!("the invocation's deadline is near; the copy starts in the next one");
                    let decision = Decision::Continue { job: job.clone(), delay_seconds: 0 };
                    return (i, job, decision);
                }
                let result = match self.grant_copy_access(&job, home, invocation).await {
                    Ok(()) => ec2.copy_image(&self.copy_request(&job, home)).await,
                    Err(e) => Err(e),
                };
                let mut job = job;
                match &result {
                    Ok(copy) => {
                        info!(copy = %copy, attempt = job.failed_copies, "copy started");
                        job.copy_started = Some(self.now() as i64);
                        push(
                            &invocation.facts,
                            Fact::CopyStarted {
                                region: job.destination.clone(),
                                rule: job.rule.as_deref().map(Into::into),
                            },
                        );
                    }
                    Err(e) => {
                        // The bucket is in debt: a further call would deepen it.
                        if e.class == crate::core::errors::ErrorClass::Throttled {
                            copy_throttled.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        warn!(error = %e, "copy not started")
                    }
                }
                let decision = place_step::after_copy(&job, &result, policy);
                (i, job, decision)
            }
            .instrument(span)
        }))
        .buffer_unordered(COPY_CONCURRENCY)
        .collect()
        .await;
        if parks {
            let left = self
                .settle_waiting(&place, home, &mut plan, &round, taken, own_in_flight, wake.as_ref(), invocation)
                .instrument(span.clone())
                .await;
            effects.extend(left);
        } else {
            if until.is_some() {
                self.release_lease(&place, home, invocation).instrument(span.clone()).await;
            }
            plan.wait_on_queue();
        }

        let mut decided = plan.decisions(started);
        if parks {
            // Every copy is polled at the same instants, whatever round started it: one step covers a place's
            // copies, and the copies of one source in every place (they finish together: the same size, started
            // together) are shared by few invocations, which read the source's launch permissions once each.
            let now = self.now() as i64;
            let key = home.as_str();
            for (_, _, decision) in decided.iter_mut() {
                if let Decision::Continue { job, delay_seconds } = decision {
                    let poll = matches!(job.phase, Phase::Wait { .. }) && job.retries == 0 && job.throttles == 0;
                    if poll && *delay_seconds == plan.policy.poll_seconds {
                        *delay_seconds = waiting::poll_on_grid(now, self.settings.step.poll_seconds, key);
                    }
                }
            }
        }
        // One fact per place and kind, however many jobs wait: a full place may hold thousands of waiters.
        let (mut waits, mut throttles) = (0, 0);
        for (_, job, decision) in &decided {
            if let Decision::Continue { job: next, .. } = decision {
                waits += u32::from(next.capacity_waits > job.capacity_waits);
                throttles += u32::from(next.throttles > job.throttles);
            }
        }
        let waits = waits + plan.waiting_for_capacity as u32 * u32::from(parks);
        if waits > 0 {
            push(&invocation.facts, Fact::CapacityWait { region: place.region.clone(), jobs: waits });
        }
        if throttles > 0 {
            push(&invocation.facts, Fact::Throttled { region: place.region.clone(), calls: throttles });
        }
        let carried = join_all(decided.into_iter().map(|(i, job, decision)| {
            let span = job_span(&job);
            let ec2 = &ec2;
            async move { (i, self.carry_out(ec2, job, decision, home, invocation).await) }.instrument(span)
        }))
        .await;
        effects.extend(carried.into_iter().filter_map(|(i, effect)| effect.map(|e| (i, e))));
        effects
    }

    fn copy_request(&self, job: &Job, home: &AccountId) -> CopyRequest {
        let settings = self.settings.for_job(job);
        let mut tags = provenance_tags(&job.source_image, &job.source_region);
        if let Some(rule) = &job.rule {
            tags.push(Tag::new(RULE_TAG, rule.clone()));
        }
        if job.failed_copies > 0 {
            tags.push(Tag::new(ATTEMPT_TAG, job.failed_copies.to_string()));
        }
        if let Some(owner) = &job.source_owner {
            tags.push(Tag::new(SOURCE_OWNER_TAG, owner.as_str()));
        }
        // Which source is newer decides an SSM parameter and a launch template's version: the copy says.
        let outputs = settings.rule.ssm_parameter_template.is_some() || !settings.rule.launch_templates.is_empty();
        if let (Some(created), true) = (&job.source_created, outputs) {
            tags.push(Tag::new(SOURCE_CREATED_TAG, created.clone()));
        }
        tags.extend(settings.rule.extra_tags.iter().cloned());
        // The source's user tags, as EC2 shows them, written by the product at creation (CopyImageTags would copy
        // only the tags of the copying account, none in a target account, and any tag under our prefix).
        let (tags, left_out) = copy_tags(tags, &job.source_tags);
        if left_out > 0 {
            warn!(left_out, "the source has more tags than a copy may carry (50): the last ones are not copied");
        }
        let place = job.place();
        CopyRequest {
            source_image: job.source_image.clone(),
            source_region: job.source_region.clone(),
            name: job.name.clone().unwrap_or_else(|| job.source_image.to_string()),
            description: copy_rules::describe_copy(settings.rule.description_template.as_deref(), job),
            // The owner of the copy is part of the token: each account's copy is its own.
            client_token: client_token(
                &job.source_image,
                &job.source_region,
                &job.destination,
                place.owner(home),
                job.failed_copies,
            ),
            tags,
            encryption: copy_rules::copy_encryption(job, &settings.rule.encryption),
            completion_minutes: settings.rule.copy_completion_minutes,
        }
    }

    /// The states of the place's sources, as admission read them (no call: the invocation remembers them).
    async fn source_states(
        &self,
        jobs: &PlaceJobs<usize>,
        invocation: &Invocation,
    ) -> BTreeMap<(ImageId, Region), ImageState> {
        let keys: BTreeSet<(ImageId, Region)> = jobs
            .waiting
            .iter()
            .map(|(_, _, j)| j)
            .chain(jobs.to_copy.iter().map(|(_, j)| j))
            .map(|j| (j.source_image.clone(), j.source_region.clone()))
            .collect();
        let mut states = BTreeMap::new();
        for (image, region) in keys {
            if let Ok(Some(source)) = self.source_image(&image, &region, invocation).await {
                states.insert((image, region), source.state);
            }
        }
        states
    }

    /// What a completion is, before its timings: the job's source and place, the copy.
    pub(super) fn completion(&self, job: &Job, copy: &ImageId, home: &AccountId) -> Completion {
        Completion {
            source_image: job.source_image.clone(),
            source_region: job.source_region.clone(),
            copy: copy.clone(),
            account: job.place().owner(home).clone(),
            region: job.destination.clone(),
            copy_seconds: None,
            share_latency_seconds: None,
            source_name: job.name.clone(),
            source_created: job.source_created.clone(),
            rule: job.rule.clone(),
        }
    }
}

/// One round of calls (two when waiting copies are no longer pending, three when one of them is gone) gathers what
/// the place's step needs; the sources' states are the ones admission read.
async fn observe<E: Ec2>(
    ec2: &E,
    jobs: &PlaceJobs<usize>,
    woken: bool,
    source_states: BTreeMap<(ImageId, Region), ImageState>,
    following: BTreeSet<Option<String>>,
    now_seconds: i64,
) -> Observations {
    let sources: Vec<ImageId> = jobs.sources();
    let (pending, existing) = tokio::join!(
        async {
            if woken || jobs.needs_in_flight() {
                Some(ec2.pending_images().await)
            } else {
                None
            }
        },
        async {
            if sources.is_empty() {
                Ok(vec![])
            } else {
                ec2.find_copies(&sources).await
            }
        },
    );
    let described = match &pending {
        Some(Err(_)) => Ok(vec![]),
        _ => {
            let ids = jobs.copies_to_describe(pending.as_ref().and_then(|p| p.as_ref().ok()).map(Vec::as_slice));
            if ids.is_empty() {
                Ok(vec![])
            } else {
                ec2.describe_own_images(&ids).await
            }
        }
    };
    let pending_list = pending.as_ref().and_then(|p| p.as_ref().ok()).map(Vec::as_slice);
    let vanished = jobs.vanished_sources(pending_list, described.as_deref().unwrap_or_default());
    let others = if vanished.is_empty() { None } else { Some(ec2.find_copies(&vanished).await) };
    Observations { pending, existing, described, others, sources: source_states, following, now_seconds }
}
