//! The source's lifecycle: when a source is deregistered, its pending copies are stopped everywhere (and, with
//! DEREGISTER_COPIES_WITH_SOURCE, its available copies deregistered and their snapshots deleted).

use super::{Effect, Replicator};
use crate::core::errors::{ErrorClass, PortError};
use crate::core::ids::{AccountId, ImageId, Place, Region};
use crate::core::image::ImageState;
use crate::core::image::Tag;
use crate::core::lifecycle::{self, Cleanup};
use crate::core::plan;
use crate::core::provenance::{is_our_copy_at, source_was_home, KEPT_TAG};
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, Queue};
use futures::future::join_all;
use std::collections::BTreeMap;
use tracing::{info, warn, Instrument};

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Handles the deregistration events of a batch: one provenance lookup per place covers every source.
    /// A place that cannot be cleaned now makes its items retry (all of this is idempotent). The event's claim is
    /// checked with EC2 first: a message on the queue cannot stop the copies of a source that still exists.
    pub(super) async fn sources_gone(
        &self,
        gone: Vec<(usize, ImageId, Region)>,
        home: &AccountId,
    ) -> Vec<(usize, Effect)> {
        let mut effects = Vec::new();
        let checked = join_all(gone.into_iter().map(|(i, image, region)| async move {
            let now = self.ec2.region(&region).describe_image(&image).await;
            (i, image, region, now)
        }))
        .await;
        let mut by_place: BTreeMap<Place, Vec<(usize, ImageId, Region)>> = BTreeMap::new();
        for (i, image, region, now) in checked {
            // Only an image EC2 no longer knows (or shows deregistered) is gone: a disabled source can be enabled
            // again, so nothing of its copies is touched.
            match now.map(|found| found.map(|img| img.state)) {
                Ok(None) => {}
                Ok(Some(ImageState::Other(state))) if state == "deregistered" => {}
                Ok(Some(state)) => {
                    warn!(image = %image, region = %region, phase = "source_deregistered", state = %state,
                        "deregistration event for a source that still exists; ignored");
                    continue;
                }
                Err(e) => {
                    effects.push((i, Effect::Retry(format!("checking that {image} is deregistered: {e}"))));
                    continue;
                }
            }
            let settings = &self.settings;
            for place in
                plan::configured_places(&region, &settings.rule.target_regions, &settings.rule.target_accounts, home)
            {
                by_place.entry(place).or_default().push((i, image.clone(), region.clone()));
            }
        }
        let results = join_all(by_place.into_iter().map(|(place, sources)| {
            let span = tracing::info_span!("lifecycle", region = %place.region,
                account = place.account.as_ref().map_or("", |a| a.as_str()), phase = "source_deregistered");
            async move {
                match self.clean_place(&place, &sources, home).await {
                    Ok(()) => vec![],
                    // A place that can never be reached (a role that refuses, an account not configured) has no
                    // copies of ours to stop: retrying would only block the event.
                    Err(e) if e.class == ErrorClass::Permanent => {
                        warn!(error = %e, "cannot look for copies of the deregistered source here");
                        vec![]
                    }
                    Err(e) => {
                        warn!(error = %e, "could not stop the copies of a deregistered source here; retrying");
                        let retry = format!("stopping copies in {place}: {e}");
                        sources.into_iter().map(|(i, _, _)| (i, Effect::Retry(retry.clone()))).collect()
                    }
                }
            }
            .instrument(span)
        }))
        .await;
        effects.extend(results.into_iter().flatten());
        effects
    }

    async fn clean_place(
        &self,
        place: &Place,
        sources: &[(usize, ImageId, Region)],
        home: &AccountId,
    ) -> Result<(), PortError> {
        let ec2 = self.at(place, home)?;
        let ids: Vec<ImageId> = sources.iter().map(|(_, image, _)| image.clone()).collect();
        let found = ec2.find_copies(&ids).await?;
        let mut cleanups = Vec::new();
        for (_, source, region) in sources {
            let with_source = self.settings.deregister_copies_with_source;
            let trusted = &self.settings.trusted_source_accounts;
            let planned = lifecycle::cleanup(&found, source, region, place, home, trusted, with_source);
            let foreign = found.iter().filter(|c| is_our_copy_at(c, source, region, place, home));
            for copy in foreign.filter(|c| !source_was_home(c, home, trusted)) {
                info!(image = %source, copy = %copy.id, "the source is out of view, but not this account's: it may \
                    only have stopped being shared; its copy is left (retention, or you, retire it)");
            }
            cleanups.extend(planned.into_iter().map(|c| (source.clone(), c)));
        }
        // An available copy is deregistered only when nothing uses it: one DescribeImageReferences for them all.
        let available: Vec<ImageId> =
            cleanups.iter().filter(|(_, c)| !c.delete_snapshots.is_empty()).map(|(_, c)| c.copy.clone()).collect();
        let mut references = if available.is_empty() { vec![] } else { ec2.image_references(&available).await? };
        // A launch by any account within IN_USE_DAYS (the longest of the rules': a gone source's rule is unknown).
        references.extend(lifecycle::launched_within(&found, self.now() as i64, self.settings.rule.in_use_days));
        let (go, kept) = lifecycle::keep_in_use(cleanups.iter().map(|(_, c)| c.clone()).collect(), &references);
        for (copy, why) in kept {
            warn!(copy = %copy, reason = %why, "source deregistered, but its copy is in use: kept");
            let reason: String = why.chars().take(250).collect();
            if let Err(e) = ec2.add_tags(std::slice::from_ref(&copy), &[Tag::new(KEPT_TAG, reason)]).await {
                warn!(copy = %copy, error = %e, "could not mark the kept copy");
            }
        }
        for (source, Cleanup { copy, stops_pending_copy, delete_snapshots }) in
            cleanups.into_iter().filter(|(_, c)| go.contains(c))
        {
            if delete_snapshots.is_empty() {
                ec2.deregister_image(&copy).await?;
            } else {
                // One call for the image and its snapshots: a fault can leave nothing half done.
                let left = ec2.deregister_with_snapshots(&copy).await?;
                if !left.is_empty() {
                    warn!(image = %source, copy = %copy, left = ?left, "EC2 kept some of the copy's snapshots");
                }
            }
            if stops_pending_copy {
                info!(image = %source, copy = %copy, "source deregistered: its pending copy was stopped");
            } else {
                info!(image = %source, copy = %copy, "source deregistered: copy deregistered too (DEREGISTER_COPIES_WITH_SOURCE)");
            }
            for snapshot in delete_snapshots {
                info!(image = %source, copy = %copy, snapshot = %snapshot, "snapshot of the deregistered copy deleted");
            }
        }
        Ok(())
    }
}
