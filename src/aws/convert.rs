//! Translations between the SDK's EC2 types and the core's: images, tags, launch permissions.

use crate::core::ids::{AccountId, ImageId, OrganizationArn, OuArn, Region, SnapshotId};
use crate::core::image::{ImageInfo, ImageState, ImageTraits, LaunchPermission, Origin, Tag};
use aws_sdk_ec2::types::{
    DeviceType, Image, LaunchPermission as SdkPermission, PermissionGroup, ProductCodeValues, Tag as SdkTag,
    VirtualizationType,
};
use tracing::warn;

/// The core's view of an SDK image; `None` (with a warning) when EC2 returned an id this product cannot parse.
pub(crate) fn image_info(image: &Image) -> Option<ImageInfo> {
    let raw_id = image.image_id()?;
    let id = match ImageId::parse(raw_id) {
        Ok(id) => id,
        Err(e) => {
            warn!(error = %e, "ignoring an image with an unexpected id");
            return None;
        }
    };
    let reason = image.state_reason().and_then(|r| r.message()).map(str::to_string);
    Some(ImageInfo {
        id,
        owner: image.owner_id().and_then(|o| AccountId::parse(o).ok()),
        name: image.name().map(str::to_string),
        description: image.description().map(str::to_string),
        state: ImageState::parse(image.state().map(|s| s.as_str()).unwrap_or("unknown"), reason),
        tags: image
            .tags()
            .iter()
            .map(|t| Tag::new(t.key().unwrap_or_default(), t.value().unwrap_or_default()))
            .collect(),
        size_gib: image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs()?.volume_size())
            .map(|s| s.max(0) as u32)
            .sum(),
        traits: ImageTraits {
            encrypted: image.block_device_mappings().iter().any(|m| m.ebs().and_then(|e| e.encrypted()) == Some(true)),
            instance_store: image.root_device_type() == Some(&DeviceType::InstanceStore),
            paravirtual: image.virtualization_type() == Some(&VirtualizationType::Paravirtual),
            marketplace: image
                .product_codes()
                .iter()
                .any(|p| p.product_code_type() == Some(&ProductCodeValues::Marketplace)),
            deprecation_time: image.deprecation_time().map(str::to_string),
            protection: crate::core::protection::Protection::parse(image.deregistration_protection()),
        },
        snapshots: image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs()?.snapshot_id())
            .filter_map(|s| SnapshotId::parse(s).ok())
            .collect(),
        created: image.creation_date().map(str::to_string),
        origin: origin(image),
        last_launched: image.last_launched_time().map(str::to_string),
    })
}

/// EC2's record of the image this one was made from (SourceImageId, SourceImageRegion), when it has one that
/// this product can parse.
fn origin(image: &Image) -> Option<Origin> {
    let source = ImageId::parse(image.source_image_id()?).ok()?;
    let region = Region::parse(image.source_image_region()?).ok()?;
    Some(Origin { image: source, region, recorded: false })
}

pub(crate) fn sdk_tags(tags: &[Tag]) -> Vec<SdkTag> {
    tags.iter().map(|t| SdkTag::builder().key(&t.key).value(&t.value).build()).collect()
}

pub(crate) fn to_sdk_permission(p: &LaunchPermission) -> SdkPermission {
    let b = SdkPermission::builder();
    match p {
        LaunchPermission::Account(a) => b.user_id(a.as_str()),
        LaunchPermission::Organization(o) => b.organization_arn(o.as_str()),
        LaunchPermission::OrganizationalUnit(o) => b.organizational_unit_arn(o.as_str()),
        LaunchPermission::Public => b.group(PermissionGroup::All),
    }
    .build()
}

pub(crate) fn from_sdk_permission(p: &SdkPermission) -> Option<LaunchPermission> {
    if let Some(user) = p.user_id() {
        return AccountId::parse(user).ok().map(LaunchPermission::Account);
    }
    if p.group() == Some(&PermissionGroup::All) {
        return Some(LaunchPermission::Public);
    }
    if let Some(org) = p.organization_arn() {
        return OrganizationArn::parse(org).ok().map(LaunchPermission::Organization);
    }
    if let Some(ou) = p.organizational_unit_arn() {
        return OuArn::parse(ou).ok().map(LaunchPermission::OrganizationalUnit);
    }
    None
}

pub(crate) fn images(output: &aws_sdk_ec2::operation::describe_images::DescribeImagesOutput) -> Vec<ImageInfo> {
    output.images().iter().filter_map(image_info).collect()
}
