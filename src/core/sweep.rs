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
        let destinations = plan::destinations(region, None, policy.target_regions);
        for place in plan::places(&destinations, region, policy.target_accounts, home) {
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
mod tests {
    use super::*;
    use crate::core::image::ImageTraits;
    use crate::core::provenance::provenance_tags;

    fn r(s: &str) -> Region {
        Region::parse(s).unwrap()
    }

    fn image(n: u32, owner: &str, created: &str, tags: Vec<Tag>) -> ImageInfo {
        ImageInfo {
            id: ImageId::parse(&format!("ami-{n:08x}")).unwrap(),
            owner: Some(AccountId::parse(owner).unwrap()),
            name: None,
            description: None,
            state: ImageState::Available,
            tags,
            size_gib: 8,
            traits: ImageTraits::default(),
            snapshots: vec![],
            created: Some(created.to_string()),
        }
    }

    #[test]
    fn only_recent_images_the_event_path_would_replicate_and_only_where_a_copy_is_missing() {
        let home = AccountId::parse("111111111111").unwrap();
        let trusted = [AccountId::parse("777777777777").unwrap()];
        let targets = [r("eu-west-1"), r("us-west-2")];
        let since = parse_rfc3339("2026-11-27T10:00:00Z").unwrap();
        let policy =
            SweepPolicy { target_regions: &targets, target_accounts: &[], trusted: &trusted, tag_filter: None, since };
        let recent = image(1, "111111111111", "2026-11-29T09:00:00.000Z", vec![]);
        let listed = vec![
            recent.clone(),
            image(2, "111111111111", "2026-11-01T09:00:00.000Z", vec![]),
            image(3, "777777777777", "2026-11-29T09:00:00.000Z", vec![]),
            image(4, "111111111111", "2026-11-29T09:00:00.000Z", provenance_tags(&recent.id, &r("us-east-1"))),
            image(5, "222222222222", "2026-11-29T09:00:00.000Z", vec![]),
        ];
        let kept = candidates(listed, &home, &policy);
        let kept_ids: Vec<u32> = kept.iter().map(|i| u32::from_str_radix(&i.id.as_str()[4..], 16).unwrap()).collect();
        assert_eq!(kept_ids, vec![1, 3], "too old, a copy, and an untrusted owner are left out");

        let with_region: Vec<(Region, ImageInfo)> = kept.into_iter().map(|i| (r("us-east-1"), i)).collect();
        let places = by_place(&with_region, &home, &policy);
        assert_eq!(places.len(), 2);
        let eu = Place::home(r("eu-west-1"));
        // Image 1 already has a copy in eu-west-1 (pending); image 3 has none.
        let mut found =
            image(9, "111111111111", "2026-11-29T09:10:00.000Z", provenance_tags(&recent.id, &r("us-east-1")));
        found.state = ImageState::Pending;
        let jobs = missing(&eu, &places[&eu], &[found]);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].source_image.as_str(), "ami-00000003");
        assert_eq!(ids(&places[&eu]).len(), 2);
    }
}
