//! Fan-out: a source image to one job per place, and an Image Builder build to the requests of its AMIs.

use super::{push, resend, Effect, Invocation, Replicator};
use crate::core::copy_rules;
use crate::core::errors::ErrorClass;
use crate::core::facts::Fact;
use crate::core::ids::{AccountId, Place, Region};
use crate::core::job::ReplicationRequest;
use crate::core::plan;
use crate::core::provenance::verified_source;
use crate::core::step::{self, RequestDecision};
use crate::core::trust::SourceVerdict;
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, Queue};
use tracing::{info, warn, Instrument};

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Where an event's image lives: this account, or a target account whose forwarder sent it. `None` (logged)
    /// for any other account.
    pub(super) fn event_place(&self, account: Option<&AccountId>, region: &Region, home: &AccountId) -> Option<Place> {
        match account {
            Some(a) if a != home && self.settings.rule.target_accounts.contains(a) => {
                Some(Place::new(Some(a.clone()), region.clone()))
            }
            Some(a) if a != home => {
                info!(account = %a, "event of an account that is neither this one nor a target account; skipped");
                None
            }
            _ => Some(Place::home(region.clone())),
        }
    }

    /// Reads the source image and makes one copy job per place: this account in every destination region, and
    /// every target account in every destination region and the source region.
    pub(super) async fn fan_out(
        &self,
        request: &ReplicationRequest,
        home: &AccountId,
        invocation: &Invocation,
    ) -> Vec<Effect> {
        let span = tracing::info_span!("fan_out", image = %request.image, region = %request.source_region, phase = "fan_out",
                rule = tracing::field::Empty);
        async {
            let dead = |reason: String| vec![Effect::DeadLetter { body: request.body(), reason }];
            let policy = self.settings.message_bounds();
            // A work item names its source region; one that SOURCE_REGIONS does not list is refused before any
            // call. An event's image may still be a copy of ours (forwarded from a destination region): read first.
            let work_item = request.event_time.is_none() && request.event_account.is_none();
            let region_check = if work_item { policy.check_source_region(&request.source_region) } else { Ok(()) };
            if let Err(reason) = policy
                .check_targets(request.targets.as_deref())
                .and(policy.check_encryption(request.encrypted))
                .and(region_check)
            {
                warn!(reason = %reason, "work item outside the configuration");
                return dead(reason);
            }
            // An event forwarded from a target account is about that account's images: read it there.
            let Some(place) = self.event_place(request.event_account.as_ref(), &request.source_region, home) else {
                return vec![];
            };
            let ec2 = match self.at(&place, home) {
                Ok(ec2) => ec2,
                Err(e) => return dead(format!("reading {} at {place}: {e}", request.image)),
            };
            // The function's own sources were read for the whole batch, one DescribeImages per region.
            let own = place.account.is_none();
            let read = if own {
                self.source_image(&request.image, &request.source_region, invocation).await
            } else {
                ec2.describe_image(&request.image).await
            };
            let image = match read {
                Ok(Some(image)) => image,
                Ok(None) => {
                    return dead(format!("source image {} not found in {}", request.image, request.source_region))
                }
                Err(e) => {
                    warn!(error = %e, "could not read the source image");
                    // The batch's read counted its own throttled answer (one for all its sources).
                    if e.class == ErrorClass::Throttled && !own {
                        push(&invocation.facts, Fact::Throttled { region: request.source_region.clone(), calls: 1 });
                    }
                    return match step::on_request_error(request, &e, &self.settings.step) {
                        RequestDecision::Resend { request, delay_seconds } => vec![resend(&request, delay_seconds)],
                        RequestDecision::GiveUp { reason } => dead(reason),
                    };
                }
            };
            // A copy of ours: an event from the region (and account) where it was made. Share it at once.
            if verified_source(&image, place.owner(home), &place.region).is_some() {
                return self.copy_available(&image, &place, request.event_time, home, invocation).await;
            }
            if place.account.is_some() {
                info!("event of a target account about an image that is not a copy of ours; skipped");
                return vec![];
            }
            if let Err(reason) = policy.check_source_region(&request.source_region) {
                // The forwarders carry the events of destination regions: an AMI built there is not a source.
                info!(reason = %reason, "not a source region; skipped");
                return vec![];
            }
            // The rule for this source, from what EC2 says of it: every check below is the rule's, and a work
            // item may only narrow it (another rule's regions are not its own).
            let (settings, rule) = match self.settings.for_source(&image, &request.source_region, home) {
                Ok(found) => found,
                Err(skip) => {
                    info!(reason = %skip, "skipped");
                    return vec![];
                }
            };
            let policy = settings.message_bounds();
            if let Some(rule) = rule {
                tracing::Span::current().record("rule", rule);
                if let Err(reason) =
                    policy.check_targets(request.targets.as_deref()).and(policy.check_encryption(request.encrypted))
                {
                    let reason = format!("rule {rule} (the rule matching {}): {reason}", request.image);
                    warn!(reason = %reason, "work item outside its rule");
                    return dead(reason);
                }
            }
            let wanted = copy_rules::wanted_encryption(request.encrypted, &settings.rule.encryption);
            match policy.judge_source(&image, home, wanted) {
                SourceVerdict::Replicate => {}
                SourceVerdict::Skip(skip) => {
                    info!(reason = %skip, "skipped");
                    return vec![];
                }
                SourceVerdict::NotYet => {
                    let (max_age, now) = (policy.job_max_age_seconds, self.now() as i64);
                    let step = &self.settings.step;
                    return match step::on_source_pending(request, image.created.as_deref(), now, max_age, step) {
                        RequestDecision::Resend { request, delay_seconds } => {
                            info!("source image is still pending; checking again later");
                            vec![resend(&request, delay_seconds)]
                        }
                        RequestDecision::GiveUp { reason } => {
                            warn!(reason = %reason, "source image pending for too long");
                            dead(reason)
                        }
                    };
                }
                SourceVerdict::Refuse(reason) => return dead(reason),
            }
            let destinations =
                plan::destinations(&request.source_region, request.targets.as_deref(), &settings.rule.target_regions);
            let places = plan::places(&destinations, &request.source_region, &settings.rule.target_accounts, home);
            info!(places = ?places.iter().map(ToString::to_string).collect::<Vec<_>>(), "fanned out");
            let jobs = plan::fan_out(&image, &request.source_region, &places);
            let watch = self.watch_effect(&image.id, &request.source_region, places.clone());
            let now = self.now() as i64;
            jobs.into_iter()
                .map(|mut job| {
                    job.encrypt = request.encrypted;
                    job.rule = rule.map(str::to_string);
                    job.since = Some(now);
                    Effect::enqueue(job, 0)
                })
                .chain(watch)
                .collect()
        }
        .instrument(span)
        .await
    }

    /// The replication requests of an Image Builder build: one per AMI of this account that it made (GetImage's
    /// `outputResources.amis`), as if each AMI's own event had arrived. `Err` is the item's effect when the build
    /// cannot be read.
    pub(super) async fn expand_build(
        &self,
        arn: &str,
        body: &str,
        home: &AccountId,
    ) -> Result<Vec<ReplicationRequest>, Effect> {
        let span = tracing::info_span!("image_builder", build = %arn, phase = "fan_out");
        async {
            match self.image_builder.output_amis(arn).await {
                Ok(amis) => {
                    let (mine, others): (Vec<_>, Vec<_>) =
                        amis.into_iter().partition(|a| a.account.as_ref().is_none_or(|a| a == home));
                    for other in others {
                        info!(image = %other.image, region = %other.region, "AMI of another account in the build; skipped");
                    }
                    info!(amis = mine.len(), "Image Builder build available");
                    Ok(mine.into_iter().map(|a| ReplicationRequest::new(a.image, a.region, None)).collect())
                }
                Err(e) if e.class == ErrorClass::Permanent => Err(Effect::DeadLetter {
                    body: body.to_string(),
                    reason: format!("Image Builder build {arn} cannot be read: {e}"),
                }),
                Err(e) => {
                    warn!(error = %e, "could not read the Image Builder build");
                    Err(Effect::Retry(format!("Image Builder GetImage: {e}")))
                }
            }
        }
        .instrument(span)
        .await
    }
}
