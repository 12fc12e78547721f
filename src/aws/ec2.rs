//! The EC2 port over aws-sdk-ec2.

use super::convert::{from_sdk_permission, images, sdk_tags, to_sdk_permission};
use super::port_error;
use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Place, Region, SnapshotId};
use crate::core::image::{ImageInfo, LaunchPermission, Tag};
use crate::core::provenance::SOURCE_IMAGE_TAG;
use crate::ports::{CopyRequest, Ec2, Ec2Regions};
use aws_sdk_ec2::types::{
    CreateVolumePermission, CreateVolumePermissionModifications, Filter, ImageAttributeName,
    LaunchPermissionModifications, ResourceType, SnapshotAttributeName, TagSpecification,
};
use aws_sdk_ec2::Client;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

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

    /// Translates an SDK error; a refused AssumeRole behind it becomes `AssumeRoleDenied`, naming the role.
    fn error<E, Raw>(&self, operation: &str, err: aws_sdk_ec2::error::SdkError<E, Raw>) -> PortError
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

/// One EC2 client per place, made on first use. Target accounts' clients use that account's role through
/// aws-config's assume-role credentials provider: one provider per account, shared by all its regions, its
/// credentials cached and refreshed by the SDK's identity cache.
#[derive(Debug)]
pub struct AwsEc2Regions {
    base: aws_config::SdkConfig,
    /// Per target account: its role ARN and the SDK configuration that assumes it.
    accounts: HashMap<AccountId, (String, aws_config::SdkConfig)>,
    clients: Mutex<HashMap<Place, AwsEc2>>,
}

/// The session name the replicator's assumed-role sessions carry (CloudTrail shows it in the target account).
pub const SESSION_NAME: &str = "ami-replicator";

impl AwsEc2Regions {
    pub fn new(base: aws_config::SdkConfig) -> Self {
        Self { base, accounts: HashMap::new(), clients: Mutex::new(HashMap::new()) }
    }

    /// With target accounts (TARGET_ACCOUNTS: account -> role ARN). Makes no call: a role is assumed when its
    /// account's first EC2 call needs credentials.
    pub async fn with_target_roles(base: aws_config::SdkConfig, roles: &BTreeMap<AccountId, String>) -> Self {
        let mut accounts = HashMap::new();
        for (account, role) in roles {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .configure(&base)
                .session_name(SESSION_NAME)
                .build()
                .await;
            let config = base
                .clone()
                .into_builder()
                .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(provider))
                .build();
            accounts.insert(account.clone(), (role.clone(), config));
        }
        Self { base, accounts, clients: Mutex::new(HashMap::new()) }
    }

    fn client(config: &aws_config::SdkConfig, region: &Region) -> Client {
        let config = aws_sdk_ec2::config::Builder::from(config)
            .region(aws_sdk_ec2::config::Region::new(region.to_string()))
            .build();
        Client::from_conf(config)
    }
}

/// The SDK configuration of each place: the function's own, or a target account's through its role. Cheap to
/// clone (the credentials providers and their caches are shared).
#[derive(Debug, Clone)]
pub struct PlaceConfigs {
    base: aws_config::SdkConfig,
    accounts: HashMap<AccountId, (String, aws_config::SdkConfig)>,
}

impl PlaceConfigs {
    /// The configuration to call AWS at `place` with (its region is set by the caller).
    pub fn config(&self, place: &Place) -> Result<aws_config::SdkConfig, PortError> {
        match &place.account {
            None => Ok(self.base.clone()),
            Some(account) => self.accounts.get(account).map(|(_, c)| c.clone()).ok_or_else(|| {
                PortError::permanent("NotConfigured", format!("account {account} is not in TARGET_ACCOUNTS"))
            }),
        }
    }
}

impl AwsEc2Regions {
    /// The places' configurations, for the other clients of a place (SSM).
    pub fn place_configs(&self) -> PlaceConfigs {
        PlaceConfigs { base: self.base.clone(), accounts: self.accounts.clone() }
    }
}

impl Ec2Regions for AwsEc2Regions {
    type Ec2 = AwsEc2;

    fn region(&self, region: &Region) -> AwsEc2 {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(Place::home(region.clone()))
            .or_insert_with(|| AwsEc2::new(Self::client(&self.base, region)))
            .clone()
    }

    fn at(&self, place: &Place) -> Result<AwsEc2, PortError> {
        let Some(account) = &place.account else { return Ok(self.region(&place.region)) };
        let (role, config) = self.accounts.get(account).ok_or_else(|| {
            PortError::permanent("NotConfigured", format!("account {account} is not in TARGET_ACCOUNTS"))
        })?;
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        Ok(clients
            .entry(place.clone())
            .or_insert_with(|| AwsEc2 { client: Self::client(config, &place.region), role: Some(role.clone()) })
            .clone())
    }
}

fn is_gone(err: &PortError) -> bool {
    matches!(err.code.as_str(), "InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")
}

/// Filter values per DescribeImages call; longer lists are split into several calls.
const FILTER_VALUES_PER_CALL: usize = 200;

/// Resources one CreateTags call tags (EC2 accepts up to 1,000).
const TAGGED_RESOURCES_PER_CALL: usize = 1000;

impl AwsEc2 {
    /// Images owned by this account whose `filter` matches one of `values` (deprecated ones included).
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
                .include_disabled(owner.is_none())
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

    async fn available_images_of(&self, owners: &[AccountId]) -> Result<Vec<ImageInfo>, PortError> {
        let mut pages = self
            .client
            .describe_images()
            .set_owners(Some(owners.iter().map(ToString::to_string).collect()))
            .filters(Filter::builder().name("state").values("available").build())
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
            .copy_image_tags(request.copy_image_tags)
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

    async fn delete_snapshot(&self, snapshot: &SnapshotId) -> Result<(), PortError> {
        match self.client.delete_snapshot().snapshot_id(snapshot.as_str()).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = self.error("DeleteSnapshot", e);
                if err.code == "InvalidSnapshot.NotFound" {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }
}
