//! The reconciliation sweep's decisions: which recent images the event path would have replicated, and which of
//! their places still lack a copy. AMI events are best effort; the sweep recovers what they missed. Pure.

use super::ids::{AccountId, ImageId, Place, Region};
use super::image::{ImageInfo, ImageState, Tag};
use super::job::Job;
use super::job::Phase;
use super::plan;
use super::provenance::{gave_up, is_our_copy_at, is_shared, share_failed};
use super::retention::Retention;
use super::time::parse_rfc3339;
use std::collections::BTreeMap;

/// What the sweep needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct SweepScope<'a> {
    pub target_regions: &'a [Region],
    pub target_accounts: &'a [AccountId],
    pub trusted: &'a [AccountId],
    pub tag_filter: Option<&'a Tag>,
    /// Only images created at or after this time (seconds since the epoch) are swept.
    pub since: i64,
}

/// The images of `listed` (one source region's) that the event path would replicate: available, created within
/// the look-back, passing the skip rules (owner or trusted owner, IMAGE_TAG_FILTER, not a copy).
pub fn candidates(listed: Vec<ImageInfo>, home: &AccountId, policy: &SweepScope) -> Vec<ImageInfo> {
    listed
        .into_iter()
        .filter(|img| img.state == ImageState::Available)
        .filter(|img| img.created.as_deref().and_then(parse_rfc3339).is_some_and(|t| t >= policy.since))
        .filter(|img| plan::skip_reason(img, home, policy.trusted, policy.tag_filter).is_none())
        .collect()
}

/// The disabled images of `listed` created within the look-back that pass the skip rules: sources whose copies
/// follow them (DISABLE_COPIES_WITH_SOURCE) when their `disabled` event was missed.
pub fn disabled_sources(listed: &[ImageInfo], home: &AccountId, policy: &SweepScope) -> Vec<ImageInfo> {
    listed
        .iter()
        .filter(|img| img.state.is_disabled())
        .filter(|img| img.created.as_deref().and_then(parse_rfc3339).is_some_and(|t| t >= policy.since))
        .filter(|img| plan::skip_reason(img, home, policy.trusted, policy.tag_filter).is_none())
        .cloned()
        .collect()
}

/// The jobs for the candidates of `place` (available sources whose copies follow them) whose copies there are all
/// disabled: a missed enable. Their jobs find the disabled copy, enable it and share it again.
pub fn to_enable(place: &Place, home: &AccountId, wanted: &[(Region, ImageInfo)], found: &[ImageInfo]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (region, image) in wanted {
        let copies: Vec<&ImageInfo> =
            found.iter().filter(|f| is_our_copy_at(f, &image.id, region, place, home)).collect();
        let live = copies.iter().any(|c| matches!(c.state, ImageState::Available | ImageState::Pending));
        if !live && copies.iter().any(|c| c.state.is_disabled()) {
            jobs.extend(plan::fan_out(image, region, std::slice::from_ref(place)));
        }
    }
    jobs
}

/// The jobs for the candidates of `place` that have no copy there among `found` (its provenance lookup; only
/// this product's verified copies count, `provenance::is_our_copy`), and for
/// those whose available copy is not marked shared (a share that never finished: it is applied again). A copy in
/// any state counts as existing: a pending one is in flight, a failed one is being replaced by its job. A copy
/// marked with a failed share (or a tombstone) is left alone until the operator removes the mark.
pub fn missing(place: &Place, home: &AccountId, wanted: &[(Region, ImageInfo)], found: &[ImageInfo]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (region, image) in wanted {
        let copies: Vec<&ImageInfo> =
            found.iter().filter(|f| is_our_copy_at(f, &image.id, region, place, home)).collect();
        let unshared = copies
            .iter()
            .find(|c| c.state == ImageState::Available && !is_shared(c) && !share_failed(c) && !gave_up(c));
        let mut job = match (copies.is_empty(), unshared) {
            (true, _) => plan::fan_out(image, region, std::slice::from_ref(place)),
            (false, Some(copy)) => plan::fan_out(image, region, std::slice::from_ref(place))
                .into_iter()
                .map(|mut job| {
                    job.phase = Phase::Wait { copy_image: copy.id.clone() };
                    job.polls = 1;
                    job
                })
                .collect(),
            (false, None) => vec![],
        };
        jobs.append(&mut job);
    }
    jobs
}

/// A recent source the sweep found, with what its rule says of it: the rule is resolved once per source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swept {
    pub region: Region,
    pub image: ImageInfo,
    /// Where its rule wants copies.
    pub places: Vec<Place>,
    /// Its copies follow its disabling and enabling (DISABLE_COPIES_WITH_SOURCE).
    pub follows: bool,
    /// Its rule's retention (RETAIN_COPIES, FAMILY_TAG) with the rule's IN_USE_DAYS; `None`: every copy is kept.
    pub retention: Option<(Retention, u32)>,
}

/// Per place, the swept sources that must have a copy there.
pub fn at_places(sources: &[Swept]) -> BTreeMap<Place, Vec<&Swept>> {
    let mut out: BTreeMap<Place, Vec<&Swept>> = BTreeMap::new();
    for source in sources {
        for place in &source.places {
            out.entry(place.clone()).or_default().push(source);
        }
    }
    out
}

/// The jobs the sweep makes at `place` from the provenance lookup of its sources there (`found`): for the copies
/// [`missing`] or unshared, and for those a missed enable left disabled ([`to_enable`], sources whose copies follow
/// them).
pub fn jobs_at(place: &Place, home: &AccountId, wanted: &[&Swept], found: &[ImageInfo]) -> Vec<Job> {
    let pairs = |follows_only: bool| -> Vec<(Region, ImageInfo)> {
        wanted.iter().filter(|s| s.follows || !follows_only).map(|s| (s.region.clone(), s.image.clone())).collect()
    };
    let mut jobs = missing(place, home, &pairs(false), found);
    jobs.extend(to_enable(place, home, &pairs(true), found));
    jobs
}

/// The families retention looks at after the sweep: at each place, those of its sources whose rule retains and
/// that carry the family tag, with the rule's retention and IN_USE_DAYS.
pub fn families(at_places: &BTreeMap<Place, Vec<&Swept>>) -> Vec<(Place, String, Retention, u32)> {
    let mut out = Vec::new();
    for (place, wanted) in at_places {
        for source in wanted {
            let Some((retention, days)) = &source.retention else { continue };
            if let Some(family) = source.image.tag(&retention.family_tag) {
                out.push((place.clone(), family.to_string(), retention.clone(), *days));
            }
        }
    }
    out
}

/// The ids of the sources swept at a place, for its one provenance lookup.
pub fn ids_of(wanted: &[&Swept]) -> Vec<ImageId> {
    let mut ids: Vec<ImageId> = wanted.iter().map(|s| s.image.id.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
#[path = "sweep_tests.rs"]
mod tests;
