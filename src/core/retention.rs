//! Retention of copies (RETAIN_COPIES, FAMILY_TAG): per place and image family, the product's newest copies are
//! kept and the older ones retired (deregistered, their snapshots deleted), never one that is in use, protected
//! from deregistration, or the newest of its family. Pure: what EC2 shows of a place's copies in, decisions out.

use super::ids::{AccountId, ImageId, Region, SnapshotId};
use super::image::{ImageInfo, ImageState};
use super::provenance::{source_created, verified_source};
use std::collections::BTreeMap;

/// RETAIN_COPIES, FAMILY_TAG, RETAIN_DRY_RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Copies kept per place and family (at least 1).
    pub copies: u32,
    /// The tag whose value names a copy's family (copied from its source).
    pub family_tag: String,
    /// Only report what would be retired.
    pub dry_run: bool,
}

/// What is known of one copy at a place beyond DescribeImages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed<'a> {
    pub image: &'a ImageInfo,
    /// Deregistration protection is on (DescribeImages' `DeregistrationProtection`).
    pub protected: bool,
    /// What uses it (DescribeImageReferences), e.g. `instance i-0123`.
    pub used_by: Vec<String>,
}

impl<'a> Observed<'a> {
    /// A copy as DescribeImages shows it: protected when its protection blocks deregistration (on, or cooling
    /// down); what uses it not read yet.
    pub fn of(image: &'a ImageInfo) -> Self {
        Self { image, protected: image.traits.protection.blocks_deregistration(), used_by: vec![] }
    }
}

/// Why a copy is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// One of the `retain` newest of its family.
    Retained,
    /// Something uses it.
    InUse(String),
    /// Deregistration protection is on.
    Protected,
}

/// One copy's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Keep(Kept),
    /// Deregister it and delete these snapshots; `reason` is logged and published (`AMI Copy Retired`).
    Retire {
        snapshots: Vec<SnapshotId>,
        reason: String,
    },
}

/// When the copy's source was made, for "newest" (`provenance::source_created`: a tag counted at most up to the
/// copy's own creation date).
fn age_key(image: &ImageInfo, owner: &AccountId, region: &Region) -> i64 {
    source_created(image, owner, region).unwrap_or(0)
}

/// The fate of each available copy of this product at one place, per family (the value of `family_tag` on the
/// copy, copied from its source): the `retain` newest are kept (at least one: the newest is never retired), and
/// of the older ones those in use or protected are kept with the reason. Copies without the tag, pending or
/// failed copies, and images that are not this product's copies at the place of `owner` in `region`
/// (`provenance::verified_source`, whatever their tags claim) get no fate (never touched). Ties in age keep the
/// larger image id, so that the decision is the same on every run.
pub fn decide(
    copies: &[Observed],
    family_tag: &str,
    retain: u32,
    owner: &AccountId,
    region: &Region,
) -> Vec<(ImageId, Fate)> {
    let mut families: BTreeMap<&str, Vec<&Observed>> = BTreeMap::new();
    for c in copies {
        if verified_source(c.image, owner, region).is_none() || c.image.state != ImageState::Available {
            continue;
        }
        if let Some(family) = c.image.tag(family_tag) {
            families.entry(family).or_default().push(c);
        }
    }
    let keep = retain.max(1) as usize;
    let mut out = Vec::new();
    for (family, mut members) in families {
        let age = |o: &Observed| age_key(o.image, owner, region);
        members.sort_by(|a, b| (age(b), &b.image.id).cmp(&(age(a), &a.image.id)));
        for (rank, c) in members.into_iter().enumerate() {
            let fate = if rank < keep {
                Fate::Keep(Kept::Retained)
            } else if !c.used_by.is_empty() {
                Fate::Keep(Kept::InUse(c.used_by.join(", ")))
            } else if c.protected {
                Fate::Keep(Kept::Protected)
            } else {
                Fate::Retire {
                    snapshots: c.image.snapshots.clone(),
                    reason: format!(
                        "{} of family {family_tag}={family} is older than the {keep} newest kept (RETAIN_COPIES)",
                        c.image.id
                    ),
                }
            };
            out.push((c.image.id.clone(), fate));
        }
    }
    out
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
