//! Copy events: EC2 emits `EC2 AMI State Change` (available) for a copy in the region (and account) where it is
//! made; with the region forwarders deployed (region-forwarder.yaml) they reach the work queue. A copy of ours
//! that became available is shared at once and marked shared; the job still waiting for it then finds it done
//! with one DescribeImages and no second ModifyImageAttribute. Polling stays the safety net (events are best
//! effort).

use super::{push, Effect, Invocation, Replicator};
use crate::core::ids::{AccountId, ImageId, Place, Region};
use crate::core::image::{ImageInfo, ImageState};
use crate::core::job::Job;
use crate::core::provenance::{is_shared, SOURCE_IMAGE_TAG, SOURCE_REGION_TAG};
use crate::ports::{Ec2Regions, ImageBuilder, Queue};
use tracing::{info, warn};

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// `image` (seen at `place`) is one of our copies that an event says is available: share it now. Nothing is
    /// retried from here: the job waiting for the copy does it at its next poll if this fails.
    pub(super) async fn copy_available(
        &self,
        image: &ImageInfo,
        place: &Place,
        home: &AccountId,
        invocation: &Invocation,
    ) -> Vec<Effect> {
        if image.state != ImageState::Available || is_shared(image) {
            info!(copy = %image.id, state = %image.state, "copy event: nothing to do (not available, or already shared)");
            return vec![];
        }
        let source = image.tag(SOURCE_IMAGE_TAG).and_then(|s| ImageId::parse(s).ok());
        let source_region = image.tag(SOURCE_REGION_TAG).and_then(|s| Region::parse(s).ok());
        let (Some(source), Some(source_region)) = (source, source_region) else {
            warn!(copy = %image.id, "copy event for an image with unreadable provenance tags; left to polling");
            return vec![];
        };
        let mut job =
            Job::new(source, source_region, place.region.clone(), image.name.clone(), image.description.clone());
        job.account = place.account.clone();
        // The deprecation time is the source's: read it (once per source and invocation).
        let source = self.source_image(&job, invocation).await;
        job.deprecation_time = source.ok().flatten().and_then(|s| s.traits.deprecation_time);
        let ec2 = match self.ec2.at(place) {
            Ok(ec2) => ec2,
            Err(e) => {
                warn!(copy = %image.id, error = %e, "copy event: no client for this place; left to polling");
                return vec![];
            }
        };
        match self.share(&ec2, &job, &image.id, home, invocation).await {
            Ok(()) => {
                info!(copy = %image.id, image = %job.source_image, "replicated (copy event: shared at once)");
                push(&invocation.completed, (job, image.id.clone()));
            }
            Err(e) => warn!(copy = %image.id, error = %e, "copy event: sharing failed; left to polling"),
        }
        vec![]
    }
}
