//! What to copy where: which images are replicated, and to which regions.

use super::ids::{AccountId, Place, Region};
use super::image::{ImageInfo, ImageState, Tag};
use super::job::Job;
use super::provenance::{is_replica, SOURCE_IMAGE_TAG};
use std::fmt;

/// Why a source image is not replicated. Skips are logged and acknowledged, never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    NotOwned {
        owner: Option<AccountId>,
    },
    TagFilter {
        key: String,
        value: String,
    },
    IsReplica {
        of: String,
    },
    /// No replication rule matches (REPLICATION_RULES): why, rule by rule.
    NoRule {
        why: String,
    },
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOwned { owner: Some(o) } => {
                write!(f, "image is owned by account {o}, neither this account nor one of TRUSTED_SOURCE_ACCOUNTS")
            }
            Self::NotOwned { owner: None } => f.write_str("image has no owner this account can read"),
            Self::TagFilter { key, value } => write!(f, "image lacks tag {key}={value} (IMAGE_TAG_FILTER)"),
            Self::NoRule { why } => write!(f, "no replication rule matches the image ({why})"),
            Self::IsReplica { of } => {
                write!(f, "image is a copy made by ami-replicator (of {of}); never replicated back")
            }
        }
    }
}

/// Whether the source image can be copied now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Still pending: try again later.
    NotYet,
    /// Failed, deregistered, disabled: copying can never succeed.
    Never(String),
}

pub fn source_readiness(image: &ImageInfo) -> Readiness {
    match &image.state {
        ImageState::Available => Readiness::Ready,
        ImageState::Pending => Readiness::NotYet,
        other => Readiness::Never(format!("source image {} is {other}", image.id)),
    }
}

/// The reason to skip `image`, if any. Images of this account are replicated, and images of `trusted` accounts
/// (TRUSTED_SOURCE_ACCOUNTS) that this account can see, i.e. that are shared with it.
pub fn skip_reason(
    image: &ImageInfo,
    account: &AccountId,
    trusted: &[AccountId],
    tag_filter: Option<&Tag>,
) -> Option<Skip> {
    if is_replica(image) {
        let of = image.tag(SOURCE_IMAGE_TAG).unwrap_or_default().to_string();
        return Some(Skip::IsReplica { of });
    }
    let owned = image.owner.as_ref() == Some(account);
    let trusted = image.owner.as_ref().is_some_and(|o| trusted.contains(o)) && !image.traits.marketplace;
    if !owned && !trusted {
        return Some(Skip::NotOwned { owner: image.owner.clone() });
    }
    if let Some(filter) = tag_filter {
        if image.tag(&filter.key) != Some(filter.value.as_str()) {
            return Some(Skip::TagFilter { key: filter.key.clone(), value: filter.value.clone() });
        }
    }
    None
}

/// Destination regions: the requested ones (or the configured ones), without duplicates and never the source.
pub fn destinations(source_region: &Region, requested: Option<&[Region]>, configured: &[Region]) -> Vec<Region> {
    let mut out: Vec<Region> = Vec::new();
    for region in requested.unwrap_or(configured) {
        if region != source_region && !out.contains(region) {
            out.push(region.clone());
        }
    }
    out
}

/// Every place that gets a copy: this account in each destination region, and each target account (other than
/// this one) in each destination region and in the source region, since it owns all of its copies.
pub fn places(destinations: &[Region], source_region: &Region, targets: &[AccountId], home: &AccountId) -> Vec<Place> {
    let mut out: Vec<Place> = destinations.iter().map(|r| Place::home(r.clone())).collect();
    for account in targets.iter().filter(|a| *a != home) {
        let mut regions = vec![source_region.clone()];
        regions.extend(destinations.iter().filter(|r| *r != source_region).cloned());
        out.extend(regions.into_iter().map(|r| Place::new(Some(account.clone()), r)));
    }
    out
}

/// Every place the configuration gives a source in `source_region`: [`places`] of its configured destinations.
pub fn configured_places(
    source_region: &Region,
    target_regions: &[Region],
    targets: &[AccountId],
    home: &AccountId,
) -> Vec<Place> {
    places(&destinations(source_region, None, target_regions), source_region, targets, home)
}

/// One job per place, carrying what copying needs to know of the source (name, description, size, encryption).
pub fn fan_out(source: &ImageInfo, source_region: &Region, places: &[Place]) -> Vec<Job> {
    places
        .iter()
        .map(|place| {
            let mut job = Job::new(source.id.clone(), source_region.clone(), place.region.clone(), None, None);
            job.account = place.account.clone();
            super::trust::refresh_from_source(&mut job, source);
            job
        })
        .collect()
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
