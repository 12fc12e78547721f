//! The reconciliation sweep: on a schedule, find the recent images that events missed (AMI events are best
//! effort) and enqueue jobs for exactly the places that lack a copy. Observe (one listing per source region),
//! decide once per source (its rule: places, whether its copies follow it, retention), observe again (one
//! provenance lookup per place), decide in `core::sweep`, act (the same jobs the fan-out makes).
//!
//! Calls per run: for each source region, one DescribeImages per page of 1,000 images; for each place (this
//! account in each destination region, each target account in each destination region and the source region),
//! one DescribeImages per 200 candidate images; then one SendMessageBatch per 10 continuation messages of up to
//! 100 jobs each. With DISABLE_COPIES_WITH_SOURCE, the listing includes disabled sources: one DescribeImages per
//! such source and place finds the copies to disable (`follow`).

use super::{push, Effect, Invocation, Replicator};
use crate::core::errors::{ErrorClass, PortError};
use crate::core::ids::{AccountId, ImageId, Place, Region};
use crate::core::image::ImageInfo;
use crate::core::plan;
use crate::core::sweep::{self, SweepScope, Swept};
use crate::core::time::parse_rfc3339;
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, Queue};
use futures::future::join_all;
use std::collections::BTreeSet;
use tracing::{info, warn, Instrument};

/// What the sweep found in the source regions: recent sources to replicate and recent disabled ones, each with its
/// rule resolved.
#[derive(Default)]
struct Found {
    sources: Vec<Swept>,
    disabled: Vec<(Region, ImageInfo, Vec<Place>, u32)>,
    incomplete: Vec<PortError>,
}

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
            // Observe the source regions; decide each source's rule once.
            let Found { sources, disabled, mut incomplete } = self.find_sources(home).await;
            let at_places = sweep::at_places(&sources);
            // Observe each place's copies of its sources; decide the jobs there.
            let looked = join_all(at_places.iter().map(|(place, wanted)| async move {
                let found = match self.at(place, home) {
                    Ok(ec2) => ec2.find_copies(&sweep::ids_of(wanted)).await,
                    Err(e) => Err(e),
                };
                found.map(|found| sweep::jobs_at(place, home, wanted, &found)).inspect_err(
                    |e| warn!(region = %place.region, place = %place, error = %e, "could not look for copies here"),
                )
            }))
            .await;
            let mut jobs = Vec::new();
            for result in looked {
                match result {
                    Ok(list) => jobs.extend(list),
                    Err(e) => incomplete.push(e),
                }
            }
            info!(images = sources.len(), places = at_places.len(), missing = jobs.len(), "sweep done");
            // Act: retention for the recent images' families at the invocation's end, the disabled sources'
            // copies disabled, the jobs enqueued and watched like those an event starts (PUBLISH_EVENTS).
            for family in sweep::families(&at_places) {
                push(&invocation.retain, family);
            }
            incomplete.extend(self.sweep_disabled(disabled, home).await);
            let now = self.now() as i64;
            let started: BTreeSet<(ImageId, Region)> =
                jobs.iter().map(|j| (j.source_image.clone(), j.source_region.clone())).collect();
            let watches = sources
                .iter()
                .filter(|s| started.contains(&(s.image.id.clone(), s.region.clone())))
                .filter_map(|s| self.watch_effect(&s.image.id, &s.region, s.places.clone()));
            let mut effects: Vec<Effect> = jobs
                .into_iter()
                .map(|mut job| {
                    info!(image = %job.source_image, region = %job.destination, place = %job.place(),
                        "copy missing (a missed event?): enqueued");
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

    /// Lists each source region's recent images (one listing per region) and resolves each one's rule once: the
    /// sources to replicate (with REPLICATION_RULES, an image no rule matches is not swept), and the disabled
    /// sources whose copies follow them (their `disabled` event may have been missed).
    async fn find_sources(&self, home: &AccountId) -> Found {
        let settings = &self.settings;
        let scope = SweepScope {
            target_regions: &settings.rule.target_regions,
            target_accounts: &settings.rule.target_accounts,
            trusted: &settings.trusted_source_accounts,
            tag_filter: settings.tag_filter.as_ref(),
            since: self.now() as i64 - i64::from(settings.sweep_lookback_hours) * 3600,
        };
        let mut owners = vec![home.clone()];
        owners.extend(settings.trusted_source_accounts.iter().cloned());
        let listed = join_all(settings.source_regions.iter().map(|region| {
            let owners = &owners;
            async move { (region.clone(), self.ec2.region(region).source_images_of(owners).await) }
        }))
        .await;
        let mut found = Found::default();
        for (region, result) in listed {
            let images = match result {
                Ok(images) => images,
                Err(e) => {
                    warn!(region = %region, error = %e, "could not list the images of a source region");
                    found.incomplete.push(e);
                    continue;
                }
            };
            if settings.rule.disable_copies_with_source {
                for source in sweep::disabled_sources(&images, home, &scope) {
                    if let Some((places, days)) = self.follower_places(&source, &region, home) {
                        found.disabled.push((region.clone(), source, places, days));
                    }
                }
            }
            for image in sweep::candidates(images, home, &scope) {
                match settings.for_source(&image, &region, home) {
                    Ok((s, _)) => found.sources.push(Swept {
                        places: plan::configured_places(&region, &s.rule.target_regions, &s.rule.target_accounts, home),
                        follows: s.rule.disable_copies_with_source,
                        retention: s.rule.retention.clone().map(|r| (r, s.rule.in_use_days)),
                        region: region.clone(),
                        image,
                    }),
                    Err(skip) => info!(image = %image.id, region = %region, reason = %skip, "skipped by the sweep"),
                }
            }
        }
        found
    }
}
