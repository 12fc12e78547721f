//! The reconciliation sweep: on a schedule, find the recent images that events missed (AMI events are best
//! effort) and enqueue jobs for exactly the places that lack a copy. Observe (one listing per source region, one
//! provenance lookup per place), decide in `core::sweep`, act (the same jobs the fan-out makes).
//!
//! Calls per run: for each source region, one DescribeImages per page of 1,000 images; for each place (this
//! account in each destination region, each target account in each destination region and the source region),
//! one DescribeImages per 200 candidate images; then one SendMessageBatch per 10 continuation messages of up to
//! 100 jobs each. With DISABLE_COPIES_WITH_SOURCE, the listing includes disabled sources: one DescribeImages per
//! such source and place finds the copies to disable (`follow`).

use super::{push, Effect, Invocation, Replicator};
use crate::core::errors::ErrorClass;
use crate::core::ids::{AccountId, ImageId, Region};
use crate::core::image::ImageInfo;
use crate::core::plan;
use crate::core::sweep::{self, SweepPolicy};
use crate::core::time::parse_rfc3339;
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, Queue};
use futures::future::join_all;
use std::collections::BTreeSet;
use tracing::{info, warn, Instrument};

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Runs the sweep: the event's time (`now`, RFC 3339) is only logged; the window is SWEEP_LOOKBACK_HOURS back
    /// from the invocation's own clock, whatever the event says. What it finds missing is enqueued; when
    /// a region or place could not be read because of a passing fault, the sweep's message is also retried (it is
    /// idempotent: what is enqueued twice makes no second copy). A place that can never be read (a role that
    /// refuses, a region not enabled) is logged and left out.
    pub(super) async fn sweep(&self, now: &str, home: &AccountId, invocation: &Invocation) -> Vec<Effect> {
        let span = tracing::info_span!("sweep", phase = "sweep", at = %now);
        async {
            if parse_rfc3339(now).is_none() {
                warn!("scheduled event without a readable time; sweep skipped");
                return vec![];
            }
            let now_secs = self.now() as i64;
            let settings = &self.settings;
            let policy = SweepPolicy {
                target_regions: &settings.target_regions,
                target_accounts: &settings.target_accounts,
                trusted: &settings.trusted_source_accounts,
                tag_filter: settings.tag_filter.as_ref(),
                since: now_secs - i64::from(settings.sweep_lookback_hours) * 3600,
            };
            let mut owners = vec![home.clone()];
            owners.extend(settings.trusted_source_accounts.iter().cloned());
            let listed = join_all(settings.source_regions.iter().map(|region| {
                let owners = &owners;
                async move { (region.clone(), self.ec2.region(region).source_images_of(owners).await) }
            }))
            .await;
            let mut candidates: Vec<(Region, ImageInfo)> = Vec::new();
            let mut disabled: Vec<(Region, ImageInfo)> = Vec::new();
            let mut incomplete = Vec::new();
            for (region, result) in listed {
                match result {
                    Ok(images) => {
                        // A disabled source whose event was missed: its copies follow it (DISABLE_COPIES_WITH_SOURCE).
                        if settings.disable_copies_with_source {
                            let found = sweep::disabled_sources(&images, home, &policy);
                            disabled.extend(found.into_iter().map(|i| (region.clone(), i)));
                        }
                        candidates
                            .extend(sweep::candidates(images, home, &policy).into_iter().map(|i| (region.clone(), i)))
                    }
                    Err(e) => {
                        warn!(region = %region, error = %e, "could not list the images of a source region");
                        incomplete.push(e);
                    }
                }
            }
            // With REPLICATION_RULES, each image goes where its rule says; one no rule matches is not swept.
            candidates.retain(|(region, image)| match settings.rule_for(image, region, home) {
                Ok(_) => true,
                Err(skip) => {
                    info!(image = %image.id, region = %region, reason = %skip, "skipped by the sweep");
                    false
                }
            });
            let places_of = |region: &Region, image: &ImageInfo| match settings.for_source(image, region, home) {
                Ok((s, _)) => plan::configured_places(region, &s.target_regions, &s.target_accounts, home),
                Err(_) => Vec::new(),
            };
            let places = sweep::by_place_with(&candidates, places_of);
            // Retention runs for the recent images' families at each of their places, at the invocation's end.
            for (place, wanted) in &places {
                for (region, image) in wanted {
                    let Ok((s, _)) = settings.for_source(image, region, home) else { continue };
                    let Some(policy) = &s.retention else { continue };
                    if let Some(family) = image.tag(&policy.family_tag) {
                        let days = s.in_use_days;
                        push(&invocation.retain, (place.clone(), family.to_string(), policy.clone(), days));
                    }
                }
            }
            let follows = |region: &Region, image: &ImageInfo| {
                settings.for_source(image, region, home).is_ok_and(|(s, _)| s.disable_copies_with_source)
            };
            let jobs = join_all(places.iter().map(|(place, wanted)| async move {
                let found = match self.at(place, home) {
                    Ok(ec2) => ec2.find_copies(&sweep::ids(wanted)).await,
                    Err(e) => Err(e),
                };
                match found {
                    Ok(found) => {
                        // A source enabled again whose event was missed: its disabled copies are enabled and shared.
                        let following: Vec<(Region, ImageInfo)> =
                            wanted.iter().filter(|(r, i)| follows(r, i)).cloned().collect();
                        let mut jobs = sweep::missing(place, home, wanted, &found);
                        jobs.extend(sweep::to_enable(place, home, &following, &found));
                        Ok(jobs)
                    }
                    Err(e) => {
                        warn!(region = %place.region, place = %place, error = %e, "could not look for copies here");
                        Err(e)
                    }
                }
            }))
            .await;
            incomplete.extend(self.sweep_disabled(disabled, home).await);
            let mut found_jobs = Vec::new();
            for result in jobs {
                match result {
                    Ok(list) => found_jobs.extend(list),
                    Err(e) => incomplete.push(e),
                }
            }
            let jobs = found_jobs;
            info!(images = candidates.len(), places = places.len(), missing = jobs.len(), "sweep done");
            for job in &jobs {
                info!(image = %job.source_image, region = %job.destination, place = %job.place(),
                    "copy missing (a missed event?): enqueued");
            }
            let now = self.now() as i64;
            // A replication the sweep starts is watched like one an event started (PUBLISH_EVENTS).
            let sources: BTreeSet<(ImageId, Region)> =
                jobs.iter().map(|j| (j.source_image.clone(), j.source_region.clone())).collect();
            let watches: Vec<Effect> = sources
                .into_iter()
                .filter_map(|(image, region)| {
                    let info = candidates.iter().find(|(r, i)| *r == region && i.id == image)?;
                    self.watch_effect(&image, &region, places_of(&region, &info.1))
                })
                .collect();
            let mut effects: Vec<Effect> = jobs
                .into_iter()
                .map(|mut job| {
                    job.since = Some(now);
                    Effect::enqueue(job, 0)
                })
                .chain(watches)
                .collect();
            if let Some(e) = incomplete.iter().find(|e| e.class != ErrorClass::Permanent) {
                effects.push(Effect::Retry(format!("sweep incomplete, run again: {e}")));
            }
            effects
        }
        .instrument(span)
        .await
    }
}
