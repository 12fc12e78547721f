//! The reconciliation sweep's decisions: which recent images the event path would have replicated, and which of
//! their places still lack a copy. AMI events are best effort; the sweep recovers what they missed. Pure.

use super::ids::{AccountId, ImageId, Place, Region};
use super::image::{ImageInfo, ImageState, Tag};
use super::job::Job;
use super::plan;
use super::provenance::is_copy_of;
use super::time::parse_rfc3339;
use std::collections::BTreeMap;

/// What the sweep needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct SweepPolicy<'a> {
    pub target_regions: &'a [Region],
    pub target_accounts: &'a [AccountId],
    pub trusted: &'a [AccountId],
    pub tag_filter: Option<&'a Tag>,
    /// Only images created at or after this time (seconds since the epoch) are swept.
    pub since: i64,
}

/// The images of `listed` (one source region's) that the event path would replicate: available, created within
/// the look-back, passing the skip rules (owner or trusted owner, IMAGE_TAG_FILTER, not a copy).
pub fn candidates(listed: Vec<ImageInfo>, home: &AccountId, policy: &SweepPolicy) -> Vec<ImageInfo> {
    listed
        .into_iter()
        .filter(|img| img.state == ImageState::Available)
        .filter(|img| img.created.as_deref().and_then(parse_rfc3339).is_some_and(|t| t >= policy.since))
        .filter(|img| plan::skip_reason(img, home, policy.trusted, policy.tag_filter).is_none())
        .collect()
}

/// Per place, the candidates (with their source region) that must have a copy there.
pub fn by_place(
    candidates: &[(Region, ImageInfo)],
    home: &AccountId,
    policy: &SweepPolicy,
) -> BTreeMap<Place, Vec<(Region, ImageInfo)>> {
    let mut out: BTreeMap<Place, Vec<(Region, ImageInfo)>> = BTreeMap::new();
    for (region, image) in candidates {
        for place in plan::configured_places(region, policy.target_regions, policy.target_accounts, home) {
            out.entry(place).or_default().push((region.clone(), image.clone()));
        }
    }
    out
}

/// The jobs for the candidates of `place` that have no copy there among `found` (its provenance lookup). A copy
/// in any state counts: a pending one is in flight, a failed one is being replaced by its job.
pub fn missing(place: &Place, wanted: &[(Region, ImageInfo)], found: &[ImageInfo]) -> Vec<Job> {
    wanted
        .iter()
        .filter(|(region, image)| !found.iter().any(|f| is_copy_of(f, &image.id, region)))
        .flat_map(|(region, image)| plan::fan_out(image, region, std::slice::from_ref(place)))
        .collect()
}

/// The ids of a place's candidates, for its one provenance lookup.
pub fn ids(wanted: &[(Region, ImageInfo)]) -> Vec<ImageId> {
    let mut ids: Vec<ImageId> = wanted.iter().map(|(_, i)| i.id.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
#[path = "sweep_tests.rs"]
mod tests;
