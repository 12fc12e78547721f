//! The EC2 port over aws-sdk-ec2.

use super::convert::{from_sdk_permission, images, sdk_tags, to_sdk_permission};
use super::port_error;
use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, SnapshotId};
use crate::core::image::{ImageInfo, LaunchPermission, Tag};
use crate::core::provenance::SOURCE_IMAGE_TAG;
use crate::ports::{CopyRequest, Ec2};
use aws_sdk_ec2::types::{
    CreateVolumePermission, CreateVolumePermissionModifications, Filter, ImageAttributeName,
    LaunchPermissionModifications, ResourceType, SnapshotAttributeName, TagSpecification,
};
use aws_sdk_ec2::Client;

/// EC2 in one place.
#[derive(Clone, Debug)]
pub struct AwsEc2 {
    client: Client,
    /// The role assumed for a target account (named in errors), `None` for the function's own credentials.
    role: Option<String>,
}

impl AwsEc2 {
    pub fn new(client: Client) -> Self {
        Self { client, role: None }
    }

    /// EC2 at a target account through `role` (named in errors).
    pub(super) fn with_role(client: Client, role: String) -> Self {
        Self { client, role: Some(role) }
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// Translates an SDK error; a refused AssumeRole behind it becomes `AssumeRoleDenied`, naming the role.
    pub(super) fn error<E, Raw>(&self, operation: &str, err: aws_sdk_ec2::error::SdkError<E, Raw>) -> PortError
    where
        E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        Raw: std::fmt::Debug + Send + Sync + 'static,
    {
        match (&self.role, super::assume_role_refusal(&err)) {
            (Some(role), Some(refusal)) => PortError::permanent(
                "AssumeRoleDenied",
                format!("{operation}: STS refused to let the replicator assume {role}: {refusal}"),
            ),
            _ => port_error(operation, err),
        }
    }
}

pub use super::places::{AwsEc2Regions, PlaceConfigs, SESSION_NAME};

fn is_gone(err: &PortError) -> bool {
    matches!(err.code.as_str(), "InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")
}

/// Filter values per DescribeImages call; longer lists are split into several calls.
const FILTER_VALUES_PER_CALL: usize = 200;

/// Resources one CreateTags call tags (EC2 accepts up to 1,000).
const TAGGED_RESOURCES_PER_CALL: usize = 1000;

impl AwsEc2 {
    /// Images owned by this account whose `filter` matches one of `values` (deprecated and disabled ones
    /// included: a disabled copy is still a copy, never to be made again).
    async fn describe_own(&self, filter: &str, values: Vec<String>) -> Result<Vec<ImageInfo>, PortError> {
        self.describe_filtered(Some("self"), filter, values).await
    }

    /// Images of `owner` (`None`: every image this account may launch) whose `filter` matches one of `values`,
    /// deprecated and disabled ones included; a filter, unlike ImageIds, never fails on an unknown id.
    async fn describe_filtered(
        &self,
        owner: Option<&str>,
        filter: &str,
        values: Vec<String>,
    ) -> Result<Vec<ImageInfo>, PortError> {
        let mut found = Vec::new();
        for chunk in values.chunks(FILTER_VALUES_PER_CALL) {
            let output = self
                .client
                .describe_images()
                .set_owners(owner.map(|o| vec![o.to_string()]))
                .filters(Filter::builder().name(filter).set_values(Some(chunk.to_vec())).build())
                .include_deprecated(true)
                .include_disabled(true)
                .send()
                .await
                .map_err(|e| self.error("DescribeImages", e))?;
            found.extend(images(&output));
        }
        Ok(found)
    }
}

impl Ec2 for AwsEc2 {
    async fn describe_image(&self, id: &ImageId) -> Result<Option<ImageInfo>, PortError> {
        let result = self
            .client
            .describe_images()
            .image_ids(id.as_str())
            .include_deprecated(true)
            .include_disabled(true)
            .send()
            .await;
        match result {
            Ok(output) => Ok(images(&output).into_iter().find(|img| &img.id == id)),
            Err(e) => {
                let err = self.error("DescribeImages", e);
                if err.code == "InvalidAMIID.NotFound" {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn source_images_of(&self, owners: &[AccountId]) -> Result<Vec<ImageInfo>, PortError> {
        let mut pages = self
            .client
            .describe_images()
            .set_owners(Some(owners.iter().map(ToString::to_string).collect()))
            .filters(Filter::builder().name("state").values("available").values("disabled").build())
            .include_disabled(true)
            .max_results(1000)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            found.extend(images(&page.map_err(|e| self.error("DescribeImages", e))?));
        }
        Ok(found)
    }

    async fn describe_images(&self, ids: &[ImageId]) -> Result<Vec<ImageInfo>, PortError> {
        self.describe_filtered(None, "image-id", ids.iter().map(ToString::to_string).collect()).await
    }

    async fn describe_own_images(&self, ids: &[ImageId]) -> Result<Vec<ImageInfo>, PortError> {
        self.describe_own("image-id", ids.iter().map(ToString::to_string).collect()).await
    }

    async fn image_references(&self, ids: &[ImageId]) -> Result<Vec<(ImageId, String)>, PortError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .describe_image_references()
                .set_image_ids(Some(ids.iter().map(ToString::to_string).collect()))
                .include_all_resource_types(true)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.error("DescribeImageReferences", e))?;
            for reference in page.image_references() {
                let Some(image) = reference.image_id().and_then(|i| ImageId::parse(i).ok()) else { continue };
                let kind = reference.resource_type().map_or("resource", |t| t.as_str());
                out.push((image, format!("{kind} {}", reference.arn().unwrap_or_default())));
            }
            token = page.next_token().filter(|t| !t.is_empty()).map(String::from);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn pending_images(&self) -> Result<Vec<ImageInfo>, PortError> {
        self.describe_own("state", vec!["pending".to_string()]).await
    }

    async fn find_copies(&self, sources: &[ImageId]) -> Result<Vec<ImageInfo>, PortError> {
        self.describe_own(&format!("tag:{SOURCE_IMAGE_TAG}"), sources.iter().map(ToString::to_string).collect()).await
    }

    async fn copy_image(&self, request: &CopyRequest) -> Result<ImageId, PortError> {
        let spec = |kind: ResourceType| {
            TagSpecification::builder().resource_type(kind).set_tags(Some(sdk_tags(&request.tags))).build()
        };
        let output = self
            .client
            .copy_image()
            .source_image_id(request.source_image.as_str())
            .source_region(request.source_region.as_str())
            .name(&request.name)
            .set_description(request.description.clone())
            .client_token(&request.client_token)
            .copy_image_tags(false)
            .set_encrypted(request.encryption.encrypted.then_some(true))
            .set_kms_key_id(request.encryption.kms_key_id.clone())
            .set_snapshot_copy_completion_duration_minutes(request.completion_minutes.map(i64::from))
            .tag_specifications(spec(ResourceType::Image))
            .tag_specifications(spec(ResourceType::Snapshot))
            .send()
            .await
            .map_err(|e| self.error("CopyImage", e))?;
        let id = output.image_id().unwrap_or_default();
        ImageId::parse(id).map_err(|e| PortError::transient("CopyImage", format!("unexpected answer: {e}")))
    }

    async fn deregister_image(&self, id: &ImageId) -> Result<(), PortError> {
        match self.client.deregister_image().image_id(id.as_str()).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = self.error("DeregisterImage", e);
                if is_gone(&err) {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn launch_permissions(&self, id: &ImageId) -> Result<Vec<LaunchPermission>, PortError> {
        let output = self
            .client
            .describe_image_attribute()
            .image_id(id.as_str())
            .attribute(ImageAttributeName::LaunchPermission)
            .send()
            .await
            .map_err(|e| self.error("DescribeImageAttribute", e))?;
        Ok(output.launch_permissions().iter().filter_map(from_sdk_permission).collect())
    }

    async fn enable_deprecation(&self, id: &ImageId, time: &str) -> Result<(), PortError> {
        let at = aws_sdk_ec2::primitives::DateTime::from_str(time, aws_sdk_ec2::primitives::DateTimeFormat::DateTime)
            .map_err(|e| PortError::permanent("InvalidDeprecationTime", format!("{time:?}: {e}")))?;
        self.client
            .enable_image_deprecation()
            .image_id(id.as_str())
            .deprecate_at(at)
            .send()
            .await
            .map_err(|e| self.error("EnableImageDeprecation", e))?;
        Ok(())
    }

    async fn enable_deregistration_protection(&self, id: &ImageId, with_cooldown: bool) -> Result<(), PortError> {
        self.client
            .enable_image_deregistration_protection()
            .image_id(id.as_str())
            .with_cooldown(with_cooldown)
            .send()
            .await
            .map_err(|e| self.error("EnableImageDeregistrationProtection", e))?;
        Ok(())
    }

    async fn disable_image(&self, id: &ImageId) -> Result<(), PortError> {
        let call = self.client.disable_image().image_id(id.as_str()).send().await;
        call.map_err(|e| self.error("DisableImage", e))?;
        Ok(())
    }

    async fn enable_image(&self, id: &ImageId) -> Result<(), PortError> {
        let call = self.client.enable_image().image_id(id.as_str()).send().await;
        call.map_err(|e| self.error("EnableImage", e))?;
        Ok(())
    }

    async fn launch_template_versions(
        &self,
        template: &str,
    ) -> Result<Vec<crate::core::launch_templates::Version>, PortError> {
        self.template_versions(template).await
    }

    async fn create_launch_template_version(
        &self,
        template: &str,
        from: i64,
        image: &ImageId,
        token: &str,
    ) -> Result<i64, PortError> {
        self.create_template_version(template, from, image, token).await
    }

    async fn set_default_launch_template_version(&self, template: &str, version: i64) -> Result<(), PortError> {
        self.set_default_template_version(template, version).await
    }

    async fn family_copies(&self, key: &str, value: &str) -> Result<Vec<ImageInfo>, PortError> {
        let output = self
            .client
            .describe_images()
            .owners("self")
            .filters(Filter::builder().name(format!("tag:{key}")).values(value).build())
            .filters(Filter::builder().name("tag-key").values(SOURCE_IMAGE_TAG).build())
            .include_deprecated(true)
            .send()
            .await
            .map_err(|e| self.error("DescribeImages", e))?;
        Ok(images(&output))
    }

    async fn add_launch_permissions(&self, id: &ImageId, grants: &[LaunchPermission]) -> Result<(), PortError> {
        let add = LaunchPermissionModifications::builder()
            .set_add(Some(grants.iter().map(to_sdk_permission).collect()))
            .build();
        self.client
            .modify_image_attribute()
            .image_id(id.as_str())
            .launch_permission(add)
            .send()
            .await
            .map_err(|e| self.error("ModifyImageAttribute", e))?;
        Ok(())
    }

    async fn add_create_volume_permission(&self, snapshot: &SnapshotId, account: &AccountId) -> Result<(), PortError> {
        let add = CreateVolumePermissionModifications::builder()
            .add(CreateVolumePermission::builder().user_id(account.as_str()).build())
            .build();
        self.client
            .modify_snapshot_attribute()
            .snapshot_id(snapshot.as_str())
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .create_volume_permission(add)
            .send()
            .await
            .map_err(|e| self.error("ModifySnapshotAttribute", e))?;
        Ok(())
    }

    async fn add_tags(&self, ids: &[ImageId], tags: &[Tag]) -> Result<(), PortError> {
        for chunk in ids.chunks(TAGGED_RESOURCES_PER_CALL) {
            self.client
                .create_tags()
                .set_resources(Some(chunk.iter().map(ToString::to_string).collect()))
                .set_tags(Some(sdk_tags(tags)))
                .send()
                .await
                .map_err(|e| self.error("CreateTags", e))?;
        }
        Ok(())
    }

    async fn deregister_with_snapshots(&self, id: &ImageId) -> Result<Vec<String>, PortError> {
        let sent = self.client.deregister_image().image_id(id.as_str()).delete_associated_snapshots(true).send().await;
        match sent {
            Ok(out) => Ok(out
                .delete_snapshot_results()
                .iter()
                .filter(|r| r.return_code().is_some_and(|c| c.as_str() != "success"))
                .map(|r| {
                    let code = r.return_code().map_or("unknown", |c| c.as_str());
                    format!("{}: {code}", r.snapshot_id().unwrap_or("(no id)"))
                })
                .collect()),
            Err(e) => {
                let err = self.error("DeregisterImage", e);
                if is_gone(&err) {
                    Ok(vec![])
                } else {
                    Err(err)
                }
            }
        }
    }
}
