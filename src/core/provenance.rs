//! Provenance: how a copy says where it came from, and the deterministic ClientToken that makes
//! CopyImage idempotent.

use super::ids::{AccountId, ImageId, Region};
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

/// The attempt a copy was made by (the job's failed copies before it), put on replacement copies only: a
/// `failed` copy event tells from it which ClientToken the successor takes.
pub const ATTEMPT_TAG: &str = "ami-replicator:attempt";

/// The attempt of a copy (0 when untagged: the first).
pub fn attempt(image: &ImageInfo) -> u32 {
    image.tag(ATTEMPT_TAG).and_then(|a| a.parse().ok()).unwrap_or(0)
}

/// The provenance tags of a copy of `source` made from `source_region`.
pub fn provenance_tags(source: &ImageId, source_region: &Region) -> Vec<Tag> {
    vec![Tag::new(SOURCE_IMAGE_TAG, source.as_str()), Tag::new(SOURCE_REGION_TAG, source_region.as_str())]
}

/// True when the image is itself a copy made by this product (the loop guard).
pub fn is_replica(image: &ImageInfo) -> bool {
    image.tag(SOURCE_IMAGE_TAG).is_some()
}

/// The source (image and region) a copy of this product was made from, read from its provenance tags; `None`
/// when they are missing or unreadable.
pub fn source_of(image: &ImageInfo) -> Option<(ImageId, Region)> {
    let source = ImageId::parse(image.tag(SOURCE_IMAGE_TAG)?).ok()?;
    let region = Region::parse(image.tag(SOURCE_REGION_TAG)?).ok()?;
    Some((source, region))
}

/// True when `image` is this product's copy of `source` from `source_region`.
pub fn is_copy_of(image: &ImageInfo, source: &ImageId, source_region: &Region) -> bool {
    image.tag(SOURCE_IMAGE_TAG) == Some(source.as_str()) && image.tag(SOURCE_REGION_TAG) == Some(source_region.as_str())
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
