//! Provenance: how a copy says where it came from, and the deterministic ClientToken that makes
//! CopyImage idempotent.

use super::ids::{AccountId, ImageId, Region};
use super::image::{ImageInfo, Tag};
use sha2::{Digest, Sha256};

/// Tag on every copy (and its snapshots): the id of the image it was copied from.
pub const SOURCE_IMAGE_TAG: &str = "ami-replicator:source-image";
/// Tag on every copy (and its snapshots): the region of the image it was copied from.
pub const SOURCE_REGION_TAG: &str = "ami-replicator:source-region";

/// The provenance tags of a copy of `source` made from `source_region`.
pub fn provenance_tags(source: &ImageId, source_region: &Region) -> Vec<Tag> {
    vec![Tag::new(SOURCE_IMAGE_TAG, source.as_str()), Tag::new(SOURCE_REGION_TAG, source_region.as_str())]
}

/// True when the image is itself a copy made by this product (the loop guard).
pub fn is_replica(image: &ImageInfo) -> bool {
    image.tag(SOURCE_IMAGE_TAG).is_some()
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
mod tests {
    use super::*;
    use crate::core::image::ImageState;

    fn ids() -> (ImageId, Region, Region, AccountId) {
        (
            ImageId::parse("ami-0123456789abcdef0").unwrap(),
            Region::parse("us-east-1").unwrap(),
            Region::parse("eu-west-1").unwrap(),
            AccountId::parse("123456789012").unwrap(),
        )
    }

    #[test]
    fn token_is_deterministic_and_distinct_per_input() {
        let (img, src, dst, acct) = ids();
        let t = client_token(&img, &src, &dst, &acct, 0);
        assert_eq!(t.len(), 64);
        assert_eq!(t, client_token(&img, &src, &dst, &acct, 0));
        assert_ne!(t, client_token(&img, &src, &Region::parse("eu-west-2").unwrap(), &acct, 0));
        assert_ne!(t, client_token(&img, &dst, &src, &acct, 0));
        assert_ne!(t, client_token(&img, &src, &dst, &AccountId::parse("210987654321").unwrap(), 0));
        assert_ne!(t, client_token(&img, &src, &dst, &acct, 1));
    }

    #[test]
    fn copies_are_recognised_by_both_tags() {
        let (img, src, dst, _) = ids();
        let mut copy = ImageInfo {
            id: ImageId::parse("ami-11111111").unwrap(),
            owner: None,
            name: None,
            description: None,
            state: ImageState::Available,
            tags: provenance_tags(&img, &src),
            size_gib: 8,
            traits: Default::default(),
        };
        assert!(is_replica(&copy));
        assert!(is_copy_of(&copy, &img, &src));
        assert!(!is_copy_of(&copy, &img, &dst));
        copy.tags.clear();
        assert!(!is_replica(&copy));
    }
}
