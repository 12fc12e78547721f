//! Copy events: EC2 emits `EC2 AMI State Change` (available, failed) for a copy in the region (and account)
//! where it is made; with the region forwarders deployed (region-forwarder.yaml) they reach the work queue. A copy
//! of ours that became available is shared at once and marked shared; the job still waiting for it then finds it
//! done with one DescribeImages and no second ModifyImageAttribute. A copy of ours that failed is replaced at
//! once: a job that waits on it is enqueued without delay, and the region step replaces it with the next attempt's
//! ClientToken (read from the copy's attempt tag), the same token the job still waiting would use, so the two
//! converge on one successor. Polling stays the safety net (events are best effort).

use super::{push, Effect, Invocation, Replicator};
use crate::core::facts::{Completion, Fact};
use crate::core::ids::{AccountId, ImageId, Place};
use crate::core::image::{ImageInfo, ImageState};
use crate::core::job::{Continuation, Job, Phase};
use crate::core::plan;
use crate::core::provenance::{attempt, false_claim, gave_up, is_shared, verified_source};
use crate::core::time::parse_rfc3339;
use crate::core::trust::JobVerdict;
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, OutgoingMessage, Queue};
use tracing::{info, warn, Instrument};

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// `image` (seen at `place`) is one of our copies that an event says is available: share it now. Nothing is
    /// retried from here: the job waiting for the copy does it at its next poll if this fails.
    pub(super) async fn copy_available(
        &self,
        image: &ImageInfo,
        place: &Place,
        available_at: Option<i64>,
        home: &AccountId,
        invocation: &Invocation,
    ) -> Vec<Effect> {
        if image.state != ImageState::Available || is_shared(image) {
            info!(copy = %image.id, state = %image.state, "copy event: nothing to do (not available, or already shared)");
            return vec![];
        }
        let Some((source, source_region)) = verified_source(image, place.owner(home), &place.region) else {
            warn!(copy = %image.id, "copy event for an image that is not a verified copy of ours; nothing to do");
            return vec![];
        };
        let mut job = Job::new(source.clone(), source_region.clone(), place.region.clone(), None, None);
        job.account = place.account.clone();
        job.phase = Phase::Wait { copy_image: image.id.clone() };
        // The source passes the same rules as for any job, read from EC2 (once per source and invocation); its
        // facts (deprecation, creation date) are the source's own.
        let source = match self.source_image(&job.source_image, &job.source_region, invocation).await {
            Ok(source) => source,
            Err(e) => {
                warn!(copy = %image.id, error = %e, "copy event: could not read the source; left to polling");
                return vec![];
            }
        };
        let job = match self.settings.admit_job(&job, source.as_ref(), home, self.now() as i64) {
            JobVerdict::Proceed(job) => *job,
            JobVerdict::Stop(reason) | JobVerdict::Refuse(reason) => {
                info!(copy = %image.id, reason = %reason, "copy event: not shared");
                return vec![];
            }
        };
        let ec2 = match self.at(place, home) {
            Ok(ec2) => ec2,
            Err(e) => {
                warn!(copy = %image.id, error = %e, "copy event: no client for this place; left to polling");
                return vec![];
            }
        };
        match self.share(&ec2, &job, &image.id, home, invocation).await {
            Ok(()) => {
                info!(copy = %image.id, image = %job.source_image, "replicated (copy event: shared at once)");
                let now = self.now();
                let started = image.created.as_deref().and_then(parse_rfc3339);
                let completion = Completion {
                    copy_seconds: available_at.zip(started).map(|(a, s)| (a - s).max(0) as f64),
                    share_latency_seconds: available_at.map(|a| (now - a as f64).max(0.0)),
                    ..self.completion(&job, &image.id, home)
                };
                push(&invocation.facts, Fact::CopyCompleted(Box::new(completion)));
                push(&invocation.completed, (job, image.id.clone()));
                if self.leases.keeps_waiting_jobs() {
                    // Its slot is free: the place's waiting jobs, if any, are looked at soon, not at the next poll
                    // (300 s with copy events). At the next instant of a one-minute grid: the events of a place in
                    // that minute come together, and one step admits for all of them.
                    let grid = self.settings.step.capacity_max_seconds.clamp(1, 60);
                    let delay = crate::core::waiting::next_on_grid(now as i64, grid, home.as_str());
                    let body = Continuation::wake_body(place, true);
                    return vec![Effect::Send(OutgoingMessage { body, delay_seconds: delay })];
                }
            }
            Err(e) => warn!(copy = %image.id, error = %e, "copy event: sharing failed; left to polling"),
        }
        vec![]
    }

    /// A copy event says `image` at `place` failed. A copy of ours (provenance tags, owned at that place, not a
    /// tombstone) is replaced now: a job waiting on it, with the attempt the copy was made by, is enqueued without
    /// delay. Anything else (a build that failed) is ignored. Errors leave it to the waiting job's poll.
    pub(super) async fn copy_failed(
        &self,
        image: &ImageId,
        place: Option<&Place>,
        home: &AccountId,
        invocation: &Invocation,
    ) -> Vec<Effect> {
        let Some(place) = place else { return vec![] };
        let span = tracing::info_span!("copy_failed", copy = %image, region = %place.region, phase = "copy_event");
        async {
            let copy = match self.at(place, home) {
                Ok(ec2) => ec2.describe_image(image).await,
                Err(e) => Err(e),
            };
            let copy = match copy {
                Ok(Some(copy)) => copy,
                Ok(None) => {
                    info!("failed image is gone; nothing to do");
                    return vec![];
                }
                Err(e) => {
                    warn!(error = %e, "copy event: could not read the failed image; left to polling");
                    return vec![];
                }
            };
            let Some((source_id, source_region)) =
                verified_source(&copy, place.owner(home), &place.region).map(|(s, r)| (s.clone(), r.clone()))
            else {
                match false_claim(&copy, place.owner(home), &place.region) {
                    Some(claim) => warn!(claim = %claim, "copy event: a claimed copy that is not ours; left alone"),
                    None => info!("an image that is not a copy of ours failed (a build?); nothing to do"),
                }
                return vec![];
            };
            if gave_up(&copy) || !matches!(copy.state, ImageState::Failed(_)) {
                info!(state = %copy.state, "copy event: the copy is given up on or not failed; nothing to do");
                return vec![];
            }
            let source = match self.source_image(&source_id, &source_region, invocation).await {
                Ok(Some(source)) => source,
                Ok(None) => {
                    info!(image = %source_id, "the failed copy's source is gone; nothing to replace");
                    return vec![];
                }
                Err(e) => {
                    warn!(image = %source_id, error = %e, "copy event: could not read the source; left to polling");
                    return vec![];
                }
            };
            // The job the fan-out made for this place, at the point where its copy failed.
            let Some(mut job) = plan::fan_out(&source, &source_region, std::slice::from_ref(place)).pop() else {
                return vec![];
            };
            job.phase = Phase::Wait { copy_image: copy.id.clone() };
            job.failed_copies = attempt(&copy);
            job.polls = 1;
            job.since = Some(self.now() as i64);
            if let JobVerdict::Stop(reason) | JobVerdict::Refuse(reason) =
                self.settings.admit_job(&job, Some(&source), home, self.now() as i64)
            {
                info!(reason = %reason, "copy event for a job the configuration refuses; nothing to do");
                return vec![];
            }
            info!(image = %job.source_image, attempt = job.failed_copies, "copy event: copy failed, replacing it now");
            vec![Effect::enqueue(job, 0)]
        }
        .instrument(span)
        .await
    }
}
