//! What the core knows about an image, independent of any SDK.

use super::ids::{AccountId, ImageId, OrganizationArn, OuArn, SnapshotId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A user-visible tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self { key: key.into(), value: value.into() }
    }
}

/// The lifecycle states of an AMI as EC2 reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageState {
    Pending,
    Available,
    /// The copy (or registration) failed; EC2's reason when it gave one.
    Failed(Option<String>),
    /// deregistered, disabled, invalid, error, transient, or a state added later.
    Other(String),
}

impl ImageState {
    /// Disabled (DisableImage): it cannot be launched, and its launch permissions are gone, until EnableImage.
    pub fn is_disabled(&self) -> bool {
        matches!(self, Self::Other(s) if s == "disabled")
    }

    pub fn parse(state: &str, reason: Option<String>) -> Self {
        match state {
            "pending" => Self::Pending,
            "available" => Self::Available,
            "failed" => Self::Failed(reason),
            other => Self::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ImageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pending => f.write_str("pending"),
            Self::Available => f.write_str("available"),
            Self::Failed(_) => f.write_str("failed"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// One image as DescribeImages returns it, reduced to what the product uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: ImageId,
    /// `None` when EC2 returned an owner this product cannot parse (treated as "not ours").
    pub owner: Option<AccountId>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub state: ImageState,
    pub tags: Vec<Tag>,
    /// Total size of the image's EBS volumes in GiB (0 when unknown): copy time grows with it.
    pub size_gib: u32,
    /// What the copy rules need to know.
    pub traits: ImageTraits,
    /// The EBS snapshots of its block device mappings (what a copy by another account must be allowed to read,
    /// and what DEREGISTER_COPIES_WITH_SOURCE deletes with a copy).
    pub snapshots: Vec<SnapshotId>,
    /// CreationDate (RFC 3339), when EC2 gave one.
    pub created: Option<String>,
    /// Where EC2 records the image was made from (`SourceImageId`, `SourceImageRegion`); `None` when EC2 records
    /// nothing (a registered image, or an older AMI).
    pub origin: Option<Origin>,
    /// When an instance was last launched from it, by any account (`LastLaunchedTime`, RFC 3339; EC2 updates it
    /// within about a day); `None` when never, or not told.
    pub last_launched: Option<String>,
}

/// The image an image was made from, as EC2 records it: CopyImage (and CreateImage, from an instance of it) set
/// `SourceImageId` and `SourceImageRegion`, and nobody can write them. Only `recorded` is the product's own: the
/// shell sets it where the function's record of the ids CopyImage returned it confirms this image (see
/// `provenance::is_our_copy`: needed in the source's own region, where CreateImage records the same origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub image: ImageId,
    pub region: super::ids::Region,
    /// The function's record says CopyImage returned this image to it at its place.
    pub recorded: bool,
}

/// Properties of an image that decide whether and how it can be copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageTraits {
    /// Any of its EBS snapshots is encrypted.
    pub encrypted: bool,
    /// Backed by instance store rather than EBS.
    pub instance_store: bool,
    /// Paravirtual (PV) rather than HVM.
    pub paravirtual: bool,
    /// Carries an AWS Marketplace product code.
    pub marketplace: bool,
    /// When the image is deprecated (RFC 3339), if set.
    pub deprecation_time: Option<String>,
    /// Deregistration protection (DescribeImages' `DeregistrationProtection`).
    pub protection: super::protection::Protection,
}

impl Origin {
    /// For the core's unit tests: the origin a genuine copy with these provenance tags has (EC2's record and the
    /// function's agree with them); `None` for an image whose tags name no source.
    #[cfg(test)]
    pub(crate) fn as_tagged(tags: &[Tag]) -> Option<Self> {
        super::provenance::claimed_source(tags).map(|(image, region)| Origin { image, region, recorded: true })
    }
}

impl ImageInfo {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
    }

    /// An 8 GiB image of account 123456789012 for the core's unit tests; when its tags name a source, EC2's
    /// record (and the function's) agree with them, as on a genuine copy.
    #[cfg(test)]
    pub(crate) fn fixture(id: ImageId, state: ImageState, tags: Vec<Tag>) -> Self {
        let origin = Origin::as_tagged(&tags);
        Self {
            id,
            owner: Some(AccountId::parse("123456789012").unwrap_or_else(|e| panic!("{e}"))),
            name: None,
            description: None,
            state,
            tags,
            size_gib: 8,
            traits: ImageTraits::default(),
            snapshots: vec![],
            created: None,
            origin,
            last_launched: None,
        }
    }
}

/// Who may launch an image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LaunchPermission {
    Account(AccountId),
    Organization(OrganizationArn),
    OrganizationalUnit(OuArn),
    /// The group `all`: everyone.
    Public,
}

impl fmt::Display for LaunchPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(a) => write!(f, "account {a}"),
            Self::Organization(o) => write!(f, "organization {o}"),
            Self::OrganizationalUnit(o) => write!(f, "organizational unit {o}"),
            Self::Public => f.write_str("group all (public)"),
        }
    }
}
