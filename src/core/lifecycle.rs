//! The source's lifecycle: what becomes of the copies when their source is deregistered, disabled or enabled
//! again. Pure.

use super::ids::{AccountId, ImageId, Place, Region, SnapshotId};
use super::image::{ImageInfo, ImageState};
use super::job::Job;
use super::provenance::{is_our_copy_at, source_was_home};
use super::step::Decision;

/// What to do with one copy of a deregistered source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleanup {
    pub copy: ImageId,
    /// The copy was still pending: deregistering it is how AWS stops a copy.
    pub stops_pending_copy: bool,
    /// Snapshots to delete once the copy is deregistered (only with DEREGISTER_COPIES_WITH_SOURCE).
    pub delete_snapshots: Vec<SnapshotId>,
}

/// The copies of `source` (from `source_region`) among `found` to deregister: those still `pending` (a copy of an
/// image that no longer exists is not wanted) and failed ones always, the others only when `with_source` is set
/// (DEREGISTER_COPIES_WITH_SOURCE; copies are independent AMIs by default, as AWS documents), with their
/// snapshots. Images that are not this product's copies of that source at `place` (`provenance::is_our_copy`)
/// are never touched, whatever their tags claim; nor are copies of another account's source (`trusted`:
/// TRUSTED_SOURCE_ACCOUNTS), which may only have stopped being shared with this account
/// (`provenance::source_was_home`).
pub fn cleanup(
    found: &[ImageInfo],
    source: &ImageId,
    source_region: &Region,
    place: &Place,
    home: &AccountId,
    trusted: &[AccountId],
    with_source: bool,
) -> Vec<Cleanup> {
    found
        .iter()
        .filter(|img| is_our_copy_at(img, source, source_region, place, home))
        .filter(|img| source_was_home(img, home, trusted))
        .filter_map(|img| match img.state {
            ImageState::Pending => {
                Some(Cleanup { copy: img.id.clone(), stops_pending_copy: true, delete_snapshots: vec![] })
            }
            // A failed copy (a tombstone of a replication that gave up) has no use once its source is gone.
            ImageState::Failed(_) => {
                Some(Cleanup { copy: img.id.clone(), stops_pending_copy: false, delete_snapshots: vec![] })
            }
            _ if with_source => Some(Cleanup {
                copy: img.id.clone(),
                stops_pending_copy: false,
                delete_snapshots: img.snapshots.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The cleanups that may go ahead, and the available copies kept because something uses them (`references`:
/// DescribeImageReferences of those copies), with what uses them. A pending or failed copy is never in use.
pub fn keep_in_use(cleanups: Vec<Cleanup>, references: &[(ImageId, String)]) -> (Vec<Cleanup>, Vec<(ImageId, String)>) {
    let mut go = Vec::new();
    let mut kept = Vec::new();
    for cleanup in cleanups {
        match in_use(&cleanup.copy, references) {
            Some(why) if !cleanup.stops_pending_copy => kept.push((cleanup.copy, why)),
            _ => go.push(cleanup),
        }
    }
    (go, kept)
}

/// The copies nothing uses, and those something uses (`references`: DescribeImageReferences of them) with what.
pub fn split_in_use(copies: Vec<ImageId>, references: &[(ImageId, String)]) -> (Vec<ImageId>, Vec<(ImageId, String)>) {
    let mut go = Vec::new();
    let mut kept = Vec::new();
    for copy in copies {
        match in_use(&copy, references) {
            Some(why) => kept.push((copy, why)),
            None => go.push(copy),
        }
    }
    (go, kept)
}

/// The copies among `images` that some account launched within `days` of `now` (epoch seconds), as uses:
/// (copy, "launched at T, within N days"). EC2's LastLaunchedTime counts every account's launches, those of the
/// accounts a copy is shared with too, which DescribeImageReferences (the owner's resources only) does not see.
/// `days` 0: no window.
pub fn launched_within(images: &[ImageInfo], now: i64, days: u32) -> Vec<(ImageId, String)> {
    let since = now.saturating_sub(i64::from(days) * 86_400);
    images
        .iter()
        .filter(|_| days > 0)
        .filter_map(|i| {
            let at = i.last_launched.as_deref()?;
            let launched = super::time::parse_rfc3339(at)?;
            (launched >= since).then(|| (i.id.clone(), format!("launched at {at} (within {days} days, any account)")))
        })
        .collect()
}

/// "in use by ..." when `references` name `copy`.
fn in_use(copy: &ImageId, references: &[(ImageId, String)]) -> Option<String> {
    let users: Vec<&str> = references.iter().filter(|(i, _)| i == copy).map(|(_, r)| r.as_str()).collect();
    (!users.is_empty()).then(|| format!("in use by {}", users.join(", ")))
}

/// What a copy of ours does when its source is disabled or enabled again (DISABLE_COPIES_WITH_SOURCE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// The source is disabled and the copy available: disable the copy (DisableImage) unless something uses it.
    Disable,
    /// The source is available again and the copy disabled: enable it (EnableImage), then share it again, since
    /// enabling does not restore launch permissions.
    Enable,
    /// Nothing to follow: the setting is off, the states agree, or a state (pending, failed, unknown) that neither
    /// call applies to.
    Stay,
}

/// What `copy` (a copy of ours) does, its source being in `source` (`None`: EC2 does not know it), with
/// DISABLE_COPIES_WITH_SOURCE `follows`. Only positive evidence moves a copy: a source EC2 shows disabled disables
/// an available copy; a source EC2 shows available enables a disabled one. A source that is gone changes nothing
/// here (deregistration has its own rules: [`cleanup`]).
pub fn follow(copy: &ImageState, source: Option<&ImageState>, follows: bool) -> Follow {
    match (copy, source) {
        _ if !follows => Follow::Stay,
        (ImageState::Available, Some(s)) if s.is_disabled() => Follow::Disable,
        (c, Some(ImageState::Available)) if c.is_disabled() => Follow::Enable,
        _ => Follow::Stay,
    }
}

/// The place step's decision about a job's existing copy, once its source's state is known (`None`: EC2 does not
/// know the source), its rule having DISABLE_COPIES_WITH_SOURCE when `follows`: an available copy about to be
/// shared whose source is disabled is disabled instead; a disabled copy whose source is available again is
/// enabled and shared; a disabled copy otherwise stops its job, saying why it is left alone. Other decisions are
/// unchanged.
pub fn with_source(job: &Job, decision: Decision, source: Option<&ImageState>, follows: bool) -> Decision {
    let (copy, state) = match &decision {
        Decision::Share { copy } => (copy.clone(), ImageState::Available),
        Decision::Disabled { copy } => (copy.clone(), ImageState::Other("disabled".into())),
        _ => return decision,
    };
    match follow(&state, source, follows) {
        Follow::Disable => Decision::DisableWithSource { copy },
        Follow::Enable => Decision::EnableAndShare { copy },
        Follow::Stay if matches!(decision, Decision::Disabled { .. }) => Decision::Stop {
            reason: format!(
                "copy {copy} in {} is disabled and left so ({}): enable it, or deregister it for a new copy",
                job.place(),
                match source {
                    Some(s) if s.is_disabled() => "its source is disabled too",
                    _ if !follows => "DISABLE_COPIES_WITH_SOURCE is off",
                    _ => "its source is not available",
                }
            ),
        },
        Follow::Stay => decision,
    }
}

/// After [`Decision::DisableWithSource`]: the job stops once its copy is disabled; a copy kept because something
/// uses it (`disabled` false) is shared as any copy.
pub fn after_disable(job: &Job, copy: ImageId, disabled: bool) -> Decision {
    if !disabled {
        return Decision::Share { copy };
    }
    Decision::Stop {
        reason: format!(
            "source {} is disabled: its copy {copy} in {} follows it (DISABLE_COPIES_WITH_SOURCE); enabling the \
             source enables and shares the copy",
            job.source_image,
            job.place()
        ),
    }
}

/// The copies of `source` (from `source_region`) among `found` that are this product's copies at `place` and
/// follow a source shown disabled: the available ones. Pending copies are left to their jobs, which disable them
/// once available.
pub fn to_disable(
    found: &[ImageInfo],
    source: &ImageId,
    source_region: &Region,
    place: &Place,
    home: &AccountId,
) -> Vec<ImageId> {
    found
        .iter()
        .filter(|img| is_our_copy_at(img, source, source_region, place, home))
        .filter(|img| img.state == ImageState::Available)
        .map(|img| img.id.clone())
        .collect()
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
