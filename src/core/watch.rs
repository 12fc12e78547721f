//! The watch of a source's replication (PUBLISH_EVENTS): a message that comes back until every place of the
//! source is done, then says so once with `AMI Replication Finished` and the outcome per place. It observes
//! EC2 only (one provenance lookup per place covers every watched source there): a copy available and marked
//! shared is completed, a tombstone (`ami-replicator:gave-up`) failed with its reason. A place with neither
//! after the deadline (a failure that left no copy, e.g. a role that refused) is reported missing.

use super::ids::{ImageId, Place, Region};
use super::image::{ImageInfo, ImageState};
use super::provenance::{gave_up, is_our_copy_at, is_shared, GAVE_UP_TAG};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One source's replication, watched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub source_image: ImageId,
    pub source_region: Region,
    pub places: Vec<Place>,
    /// When the replication started (epoch seconds).
    pub since: i64,
    /// Checks so far (the delay before the next one doubles, up to the SQS maximum).
    #[serde(default)]
    pub checks: u32,
}

/// How one place ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed {
        copy: ImageId,
    },
    Failed {
        reason: String,
    },
    /// No finished copy and no tombstone by the deadline.
    Missing,
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Completed { .. } => "completed",
            Outcome::Failed { .. } => "failed",
            Outcome::Missing => "missing",
        }
    }
}

/// What the watch found: `None` while a place is still open and the deadline has not passed.
pub fn assess(
    watch: &Watch,
    found: &BTreeMap<Place, Vec<ImageInfo>>,
    home: &super::ids::AccountId,
    now: i64,
    deadline_seconds: i64,
) -> Option<Vec<(Place, Outcome)>> {
    let late = now - watch.since >= deadline_seconds;
    let mut outcomes = Vec::new();
    for place in &watch.places {
        let copies: Vec<&ImageInfo> = found
            .get(place)
            .map(|list| {
                list.iter()
                    .filter(|i| is_our_copy_at(i, &watch.source_image, &watch.source_region, place, home))
                    .collect()
            })
            .unwrap_or_default();
        let done = copies.iter().find(|i| i.state == ImageState::Available && is_shared(i));
        let tombstone = copies.iter().find(|i| gave_up(i));
        let outcome = match (done, tombstone) {
            (Some(copy), _) => Outcome::Completed { copy: copy.id.clone() },
            (None, Some(t)) => Outcome::Failed { reason: t.tag(GAVE_UP_TAG).unwrap_or("gave up").to_string() },
            (None, None) if late => Outcome::Missing,
            (None, None) => return None,
        };
        outcomes.push((place.clone(), outcome));
    }
    Some(outcomes)
}

/// The delay before the watch's next check: `base` doubled per check, at most SQS's 900 s.
pub fn next_delay(watch: &Watch, base: u32) -> u32 {
    base.max(1).saturating_mul(1u32 << watch.checks.min(10)).min(900)
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
