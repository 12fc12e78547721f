//! Copies follow their source's disabling (DISABLE_COPIES_WITH_SOURCE): a source disabled disables its available
//! copies that nothing uses; a source enabled again enables its disabled copies and shares them again (EnableImage
//! restores no launch permission). Observe (the source and the copies from EC2), decide in
//! `core::lifecycle::follow`, act.
//!
//! Three ways in: the source's `disabled` event ([`Replicator::sources_disabled`]); a job whose copy becomes
//! available while its source is disabled, or finds its copy disabled (the place step decides it in
//! `core::lifecycle::with_source`; `outcome` carries it out with [`disable_unless_in_use`] or EnableImage); the
//! source's `available` event when it is enabled again, whose jobs find the disabled copies.

use super::{Effect, Invocation, Replicator};
use crate::core::errors::{ErrorClass, PortError};
use crate::core::ids::{AccountId, ImageId, Place, Region};
use crate::core::image::{ImageInfo, Tag};
use crate::core::lifecycle::{self};
use crate::core::plan;
use crate::core::provenance::KEPT_TAG;
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, Queue};
use futures::future::join_all;
use tracing::{info, warn, Instrument};

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Handles the `disabled` events of a batch. The event is a hint: the source is read from EC2 and must be
    /// disabled there, a source of this configuration (not one of our copies), under a rule (or deployment)
    /// with DISABLE_COPIES_WITH_SOURCE. A place that cannot be handled now makes its item retry (idempotent).
    pub(super) async fn sources_disabled(
        &self,
        disabled: Vec<(usize, ImageId, Region)>,
        home: &AccountId,
        invocation: &Invocation,
    ) -> Vec<(usize, Effect)> {
        let handled = join_all(disabled.into_iter().map(|(i, image, region)| {
            let span = tracing::info_span!("lifecycle", image = %image, region = %region, phase = "source_disabled");
            async move {
                let retry = |e: PortError| vec![(i, Effect::Retry(format!("copies of disabled {image}: {e}")))];
                let source = match self.source_image(&image, &region, invocation).await {
                    Ok(Some(source)) if source.state.is_disabled() => source,
                    Ok(found) => {
                        let state = found.map_or("gone".to_string(), |s| s.state.to_string());
                        warn!(state = %state, "disabled event for a source EC2 does not show disabled: ignored");
                        return vec![];
                    }
                    Err(e) if e.class == ErrorClass::Permanent => {
                        warn!(error = %e, "cannot read the disabled source");
                        return vec![];
                    }
                    Err(e) => return retry(e),
                };
                let Some((places, days)) = self.follower_places(&source, &region, home) else { return vec![] };
                let results =
                    join_all(places.iter().map(|place| self.disable_copies(place, &source, &region, home, days)));
                match results.await.into_iter().find_map(Result::err) {
                    Some(e) => retry(e),
                    None => vec![],
                }
            }
            .instrument(span)
        }))
        .await;
        handled.into_iter().flatten().collect()
    }

    /// The sweep's part: the copies of recent disabled sources (their `disabled` event may have been missed) are
    /// disabled as the event would have, at the places their rule gave ([`Self::follower_places`], resolved once by
    /// the sweep); answers the errors that should make the sweep run again.
    pub(super) async fn sweep_disabled(
        &self,
        disabled: Vec<(Region, ImageInfo, Vec<Place>, u32)>,
        home: &AccountId,
    ) -> Vec<PortError> {
        let results = join_all(disabled.iter().map(|(region, source, places, days)| {
            let span = tracing::info_span!("lifecycle", image = %source.id, region = %region, phase = "sweep");
            async move {
                let done = join_all(places.iter().map(|place| self.disable_copies(place, source, region, home, *days)));
                done.await.into_iter().filter_map(Result::err).collect::<Vec<_>>()
            }
            .instrument(span)
        }))
        .await;
        results.into_iter().flatten().collect()
    }

    /// The places whose copies follow `source`: those of its rule when the rule (or the deployment) has
    /// DISABLE_COPIES_WITH_SOURCE, with its IN_USE_DAYS; `None` (logged) when its copies do not follow it.
    pub(super) fn follower_places(
        &self,
        source: &ImageInfo,
        region: &Region,
        home: &AccountId,
    ) -> Option<(Vec<Place>, u32)> {
        let settings = &self.settings;
        let skip = plan::skip_reason(source, home, &settings.trusted_source_accounts, settings.tag_filter.as_ref());
        if let Some(skip) = skip {
            info!(reason = %skip, "disabled image is not a source here: nothing follows it");
            return None;
        }
        match settings.for_source(source, region, home) {
            Err(skip) => {
                info!(reason = %skip, "disabled image is not a source here: nothing follows it");
                None
            }
            Ok((s, rule)) if !s.rule.disable_copies_with_source => {
                info!(
                    rule = rule.unwrap_or(""),
                    "source disabled; its copies stay enabled (DISABLE_COPIES_WITH_SOURCE is off)"
                );
                None
            }
            Ok((s, _)) => Some((
                plan::configured_places(region, &s.rule.target_regions, &s.rule.target_accounts, home),
                s.rule.in_use_days,
            )),
        }
    }

    /// Disables the available copies of `source` at `place` (one provenance lookup, one DescribeImageReferences
    /// for them all): those something uses are kept, logged and tagged with why. A place that can never be
    /// reached (a role that refuses) has nothing of ours to disable: logged, not retried.
    async fn disable_copies(
        &self,
        place: &Place,
        source: &ImageInfo,
        region: &Region,
        home: &AccountId,
        in_use_days: u32,
    ) -> Result<(), PortError> {
        let span = tracing::info_span!("place", region = %place.region,
            account = place.account.as_ref().map_or("", |a| a.as_str()));
        let done = async {
            let ec2 = self.at(place, home)?;
            let found = ec2.find_copies(std::slice::from_ref(&source.id)).await?;
            let copies = lifecycle::to_disable(&found, &source.id, region, place, home);
            let launched = lifecycle::launched_within(&found, self.now() as i64, in_use_days);
            disable_unless_in_use(&ec2, &source.id, copies, launched).await.map(|_| ())
        };
        match done.instrument(span.clone()).await {
            Err(e) if e.class == ErrorClass::Permanent => {
                let _entered = span.enter();
                warn!(error = %e, "cannot disable the copies of the disabled source here");
                Ok(())
            }
            other => other,
        }
    }
}

/// Disables `copies` of `source` (already checked to be ours and available), except those DescribeImageReferences
/// shows in use: a disabled AMI cannot be launched, so an instance's, a launch template's or a parameter's
/// image stays enabled, tagged with why. Answers the copies disabled.
pub(super) async fn disable_unless_in_use<E: Ec2>(
    ec2: &E,
    source: &ImageId,
    copies: Vec<ImageId>,
    launched: Vec<(ImageId, String)>,
) -> Result<Vec<ImageId>, PortError> {
    if copies.is_empty() {
        return Ok(vec![]);
    }
    let mut references = ec2.image_references(&copies).await?;
    references.extend(launched);
    let (go, kept) = lifecycle::split_in_use(copies, &references);
    for (copy, why) in kept {
        warn!(image = %source, copy = %copy, reason = %why, "source disabled, but its copy is in use: kept enabled");
        let reason: String = format!("not disabled with its source: {why}").chars().take(250).collect();
        if let Err(e) = ec2.add_tags(std::slice::from_ref(&copy), &[Tag::new(KEPT_TAG, reason)]).await {
            warn!(copy = %copy, error = %e, "could not mark the kept copy");
        }
    }
    for copy in &go {
        ec2.disable_image(copy).await?;
        info!(image = %source, copy = %copy, "source disabled: copy disabled too (DISABLE_COPIES_WITH_SOURCE)");
    }
    Ok(go)
}
