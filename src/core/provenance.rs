//! Provenance: how a copy says where it came from, and the deterministic ClientToken that makes
//! CopyImage idempotent.

use super::ids::{AccountId, ImageId, Place, Region};
use super::image::{ImageInfo, Tag};
use sha2::{Digest, Sha256};

/// Tag on every copy (and its snapshots): the id of the image it was copied from.
pub const SOURCE_IMAGE_TAG: &str = "ami-replicator:source-image";
/// Tag on every copy (and its snapshots): the region of the image it was copied from.
pub const SOURCE_REGION_TAG: &str = "ami-replicator:source-region";

/// Tag put on the last failed copy of a job that gave up (after MAX failed copies): a tombstone that tells
/// duplicate jobs and the sweep that this place was given up on (its dead letter has the reason). Deregister the
/// tombstone to let the next sweep try again.
pub const GAVE_UP_TAG: &str = "ami-replicator:gave-up";

/// True when `image` is a tombstone of a replication that gave up.
pub fn gave_up(image: &ImageInfo) -> bool {
    image.tag(GAVE_UP_TAG).is_some()
}

/// Tag put on a copy once its launch permissions (and deprecation time) are applied: the truth that a copy is
/// done lives in EC2, so that a job that finds it so (e.g. after a copy event was handled first) needs no second
/// ModifyImageAttribute.
pub const SHARED_TAG: &str = "ami-replicator:shared";

/// True when `image` is marked as shared (done).
pub fn is_shared(image: &ImageInfo) -> bool {
    image.tag(SHARED_TAG).is_some()
}

/// Tag put on an available copy whose share failed for good (its value: the reason). The copy stays unshared
/// and the status command shows it `incomplete`; the sweep leaves it alone until the tag is removed.
pub const SHARE_FAILED_TAG: &str = "ami-replicator:share-failed";

/// True when `image` is marked with a share that failed for good.
pub fn share_failed(image: &ImageInfo) -> bool {
    image.tag(SHARE_FAILED_TAG).is_some()
}

/// Tag put on an available copy the product would have deregistered (DEREGISTER_COPIES_WITH_SOURCE) but kept
/// because something still uses it (its value: what, from DescribeImageReferences).
pub const KEPT_TAG: &str = "ami-replicator:kept";

/// The creation date of a copy's source (RFC 3339), put on copies at creation: an SSM parameter naming a copy
/// is only replaced by a copy of a newer source.
pub const SOURCE_CREATED_TAG: &str = "ami-replicator:source-created";

/// The account that owned a copy's source when the copy was made, put on copies at creation: only a copy of a
/// source of the function's own account is ever destroyed because its source is gone (another account's source
/// that vanished from view may only have stopped being shared).
pub const SOURCE_OWNER_TAG: &str = "ami-replicator:source-owner";

/// Whether this product's copy `image` was made from a source of `home` (the function's own account): its
/// source-owner tag says so, or, on a copy made before that tag, no other account's sources are replicated
/// (`trusted`, TRUSTED_SOURCE_ACCOUNTS, is empty). Positive evidence only: another owner, or an unknown one where
/// other accounts' sources are replicated, is not.
pub fn source_was_home(image: &ImageInfo, home: &AccountId, trusted: &[AccountId]) -> bool {
    match image.tag(SOURCE_OWNER_TAG) {
        Some(owner) => owner == home.as_str(),
        None => trusted.is_empty(),
    }
}

/// The attempt a copy was made by (the job's failed copies before it), put on replacement copies only: a
/// `failed` copy event tells from it which ClientToken the successor takes.
pub const ATTEMPT_TAG: &str = "ami-replicator:attempt";

/// The highest attempt read from a copy's tag: the product makes at most MAX_FAILED_COPIES (3) copies per place, so
/// a larger number was not written by it. A tag is a hint: a number read from one is bounded.
pub const MAX_ATTEMPT: u32 = 100;

/// The attempt of a copy (0 when untagged: the first), at most [`MAX_ATTEMPT`].
pub fn attempt(image: &ImageInfo) -> u32 {
    image.tag(ATTEMPT_TAG).and_then(|a| a.parse::<u32>().ok()).unwrap_or(0).min(MAX_ATTEMPT)
}

/// The product's own tag prefix: tags under it are state the product writes on its copies. On a source they are
/// never copied and never read as state.
pub const TAG_PREFIX: &str = "ami-replicator:";

/// The most tags EC2 allows on one resource.
pub const MAX_TAGS: usize = 50;

/// The provenance tags of a copy of `source` made from `source_region`.
pub fn provenance_tags(source: &ImageId, source_region: &Region) -> Vec<Tag> {
    vec![Tag::new(SOURCE_IMAGE_TAG, source.as_str()), Tag::new(SOURCE_REGION_TAG, source_region.as_str())]
}

/// The tags a copy is created with (TagSpecifications on the image and its snapshots, in every account): `own`
/// (provenance and the product's other tags) and the source's user tags as read from EC2, never `aws:` ones and
/// never the product's own (a source carrying `ami-replicator:shared` does not make its copies look shared). At
/// most [`MAX_TAGS`]: the product's own first, then the source's in their order; the count left out is returned.
pub fn copy_tags(own: Vec<Tag>, source_tags: &[Tag]) -> (Vec<Tag>, usize) {
    let mut tags = own;
    let inherited: Vec<&Tag> = source_tags
        .iter()
        .filter(|t| !t.key.starts_with("aws:") && !t.key.starts_with(TAG_PREFIX))
        .filter(|t| !tags.iter().any(|o| o.key == t.key))
        .collect();
    let room = MAX_TAGS.saturating_sub(tags.len());
    let left_out = inherited.len().saturating_sub(room);
    tags.extend(inherited.into_iter().take(room).cloned());
    (tags, left_out)
}

/// The source an image's provenance tags name (they claim it is a copy of it); `None` when they are missing or
/// unreadable. A claim only: anyone allowed CreateTags can write these tags.
pub fn claimed_source(tags: &[Tag]) -> Option<(ImageId, Region)> {
    let get = |key: &str| tags.iter().find(|t| t.key == key).map(|t| t.value.as_str());
    let source = ImageId::parse(get(SOURCE_IMAGE_TAG)?).ok()?;
    let region = Region::parse(get(SOURCE_REGION_TAG)?).ok()?;
    Some((source, region))
}

/// True when the image is itself a copy made by this product (the loop guard: it is never replicated): its
/// provenance tags name the source EC2 records it was made from. A source whose tags merely claim to be a copy
/// (EC2 records another origin, or none) is replicated like any other.
pub fn is_replica(image: &ImageInfo) -> bool {
    match (claimed_source(&image.tags), &image.origin) {
        (Some((source, region)), Some(origin)) => origin.image == source && origin.region == region,
        _ => false,
    }
}

/// The source this product's copy `image` was copied from, as EC2 records it, when `image` was read at the place
/// of account `owner` (the place's: the target account, or the function's own) and `region`; `None` when it is
/// not this product's copy there. The one definition of "our copy":
/// - EC2 records its origin (`SourceImageId`, `SourceImageRegion`), which nobody can write: that, never a tag's
///   value, says which source it is a copy of;
/// - the place's account owns it;
/// - it carries the product's provenance tag (the product puts it on at creation: an image EC2 records as a copy
///   of the source that the product did not tag is somebody else's copy);
/// - in the source's own region (a target account's copy there), where an image made with CreateImage from an
///   instance of the source records the same origin, the function's own record of the ids CopyImage returned it
///   confirms it (`Origin::recorded`, kept where only the function writes).
pub fn verified_source<'a>(
    image: &'a ImageInfo,
    owner: &AccountId,
    region: &Region,
) -> Option<(&'a ImageId, &'a Region)> {
    let origin = image.origin.as_ref()?;
    let owned = image.owner.as_ref() == Some(owner);
    let tagged = image.tag(SOURCE_IMAGE_TAG).is_some();
    let confirmed = origin.region != *region || origin.recorded;
    (owned && tagged && confirmed).then_some((&origin.image, &origin.region))
}

/// When the source of this product's copy `image` (read at the place of `owner` in `region`) was made (epoch
/// seconds): the `source-created` tag the product wrote at creation, counted at most up to the copy's own
/// creation date (EC2 writes that, and no source is newer than its copy: a forged date cannot make a copy outrank
/// those made after it), else the copy's own creation date. `None` for an image that is not this product's copy
/// there (whatever it claims) or carries no date at all.
pub fn source_created(image: &ImageInfo, owner: &AccountId, region: &Region) -> Option<i64> {
    verified_source(image, owner, region)?;
    let created = image.created.as_deref().and_then(super::time::parse_rfc3339);
    let tagged = image.tag(SOURCE_CREATED_TAG).and_then(super::time::parse_rfc3339);
    match (tagged, created) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// True when `image`, read at the place of `owner` in `region`, is this product's copy of `source` from
/// `source_region` ([`verified_source`]).
pub fn is_our_copy(
    image: &ImageInfo,
    source: &ImageId,
    source_region: &Region,
    owner: &AccountId,
    region: &Region,
) -> bool {
    verified_source(image, owner, region).is_some_and(|(s, r)| s == source && r == source_region)
}

/// [`is_our_copy`] at `place` (`home`: the function's own account).
pub fn is_our_copy_at(
    image: &ImageInfo,
    source: &ImageId,
    source_region: &Region,
    place: &Place,
    home: &AccountId,
) -> bool {
    is_our_copy(image, source, source_region, place.owner(home), &place.region)
}

/// When `image`'s provenance tags claim it is a copy made by this product of a source it is not this product's
/// copy of, at the place of `owner` in `region`: what it claims and why it is not believed (for the log and the
/// status command). `None` for a genuine copy whose tags agree with EC2, and for an image that claims nothing.
pub fn false_claim(image: &ImageInfo, owner: &AccountId, region: &Region) -> Option<String> {
    let raw = image.tag(SOURCE_IMAGE_TAG)?;
    let Some((source, claim_region)) = claimed_source(&image.tags) else {
        return Some(format!("{} carries an unreadable provenance tag ({SOURCE_IMAGE_TAG}={raw})", image.id));
    };
    let why = match (&image.origin, verified_source(image, owner, region)) {
        (_, Some((s, r))) if *s == source && *r == claim_region => return None,
        (_, Some((s, r))) => format!("it is this product's copy of {s} from {r}, as EC2 records"),
        (None, None) => "EC2 records no source for it".to_string(),
        (Some(o), None) if o.image != source || o.region != claim_region => {
            format!("EC2 records it was made from {} in {}", o.image, o.region)
        }
        (Some(_), None) if image.owner.as_ref() != Some(owner) => {
            format!("it is owned by {}, not {owner}", image.owner.as_ref().map_or("an unknown account", |o| o.as_str()))
        }
        (Some(_), None) => "in its source's own region, the function has no record that CopyImage made it".to_string(),
    };
    Some(format!(
        "{} claims to be a copy of {source} from {claim_region} (account {owner}, {region}), but {why}",
        image.id
    ))
}

/// The ClientToken of one copy attempt: the SHA-256 of (source image, source region, destination region,
/// account) in hex, 64 characters, the most EC2 accepts. Attempt 0 is the first copy; a retry after a failed
/// copy needs a new token, because EC2 answers a reused token with the earlier (failed) image.
pub fn client_token(
    source: &ImageId,
    source_region: &Region,
    destination: &Region,
    account: &AccountId,
    attempt: u32,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("ami-replicator/v1|{source}|{source_region}|{destination}|{account}"));
    if attempt > 0 {
        hasher.update(format!("|attempt-{attempt}"));
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "provenance_tests.rs"]
mod tests;
