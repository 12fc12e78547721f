//! The EC2 port over the simulated world. Each port acts as one account: the function's own, or a target
//! account whose role was assumed (as credentials from STS act in the role's account).

use super::world::{World, AWS_MANAGED_EBS_KEY};
use super::{lock, Shared};
use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Place, Region, SnapshotId};
use crate::core::image::{ImageInfo, ImageState, LaunchPermission, Tag};
use crate::core::launch_templates::Version;
use crate::core::provenance::SOURCE_IMAGE_TAG;
use crate::ports::{CopyRequest, Ec2, Ec2Regions};

/// A change an EC2 call made: the operation, the account that made it, the region, and the image (or snapshot)
/// it changed, with what it set (grants, tags, the deprecation time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEffect {
    pub op: &'static str,
    pub account: AccountId,
    pub region: Region,
    pub target: String,
    pub detail: String,
}

/// EC2's answer for an image it does not know.
fn not_found(id: &ImageId) -> PortError {
    PortError::from_code("InvalidAMIID.NotFound", format!("The image id '[{id}]' does not exist"))
}

/// Hands out simulated places.
#[derive(Clone)]
pub struct SimRegions {
    world: Shared,
}

impl SimRegions {
    pub fn new(world: Shared) -> Self {
        Self { world }
    }
}

impl Ec2Regions for SimRegions {
    type Ec2 = SimEc2;

    fn region(&self, region: &Region) -> SimEc2 {
        let account = lock(&self.world).account.clone();
        SimEc2 { world: self.world.clone(), region: region.clone(), account }
    }

    fn at(&self, place: &Place) -> Result<SimEc2, PortError> {
        let Some(account) = &place.account else { return Ok(self.region(&place.region)) };
        if !lock(&self.world).assumable.contains(account) && !lock(&self.world).denied_roles.contains(account) {
            return Err(PortError::permanent("NotConfigured", format!("account {account} is not in TARGET_ACCOUNTS")));
        }
        Ok(SimEc2 { world: self.world.clone(), region: place.region.clone(), account: account.clone() })
    }
}

/// EC2 in one simulated region, as one account. Every call yields to the scheduler first, so concurrent
/// invocations interleave.
#[derive(Clone)]
pub struct SimEc2 {
    world: Shared,
    region: Region,
    account: AccountId,
}

mod calls;

impl Ec2 for SimEc2 {
    async fn describe_image(&self, id: &ImageId) -> Result<Option<ImageInfo>, PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "DescribeImages")?;
        // An image of another account is visible only when shared with this one.
        Ok(w.image(&self.region, id).filter(|i| World::can_launch(i, &self.account)).map(|i| i.info.clone()))
    }

    async fn source_images_of(&self, owners: &[AccountId]) -> Result<Vec<ImageInfo>, PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "DescribeImages")?;
        w.settle(&self.region);
        Ok(w.images
            .get(&self.region)
            .map(|m| {
                m.values()
                    .filter(|i| i.info.owner.as_ref().is_some_and(|o| owners.contains(o)))
                    .filter(|i| i.info.state == ImageState::Available || i.info.state.is_disabled())
                    .filter(|i| World::can_launch(i, &self.account))
                    .map(|i| i.info.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn describe_images(&self, ids: &[ImageId]) -> Result<Vec<ImageInfo>, PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "DescribeImages")?;
        w.settle(&self.region);
        let region = w.images.get(&self.region);
        Ok(ids
            .iter()
            .filter_map(|id| region.and_then(|m| m.get(id)))
            .filter(|i| World::can_launch(i, &self.account))
            .map(|i| i.info.clone())
            .collect())
    }

    async fn describe_own_images(&self, ids: &[ImageId]) -> Result<Vec<ImageInfo>, PortError> {
        self.latency().await;
        self.call(&mut lock(&self.world), "DescribeImages")?;
        Ok(self.own_images(|i| ids.contains(&i.id)))
    }

    async fn pending_images(&self) -> Result<Vec<ImageInfo>, PortError> {
        self.latency().await;
        {
            let mut w = lock(&self.world);
            let w = self.call(&mut w, "DescribeImages")?;
            w.pending_queries += 1;
        }
        Ok(self.own_images(|i| i.state == ImageState::Pending))
    }

    async fn find_copies(&self, sources: &[ImageId]) -> Result<Vec<ImageInfo>, PortError> {
        self.latency().await;
        self.call(&mut lock(&self.world), "DescribeImages")?;
        Ok(self.own_images(|i| i.tag(SOURCE_IMAGE_TAG).is_some_and(|s| sources.iter().any(|x| x.as_str() == s))))
    }

    async fn launch_template_versions(&self, template: &str) -> Result<Vec<Version>, PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "DescribeLaunchTemplateVersions")?;
        w.template_versions(&self.account, &self.region, template)
    }

    async fn create_launch_template_version(
        &self,
        template: &str,
        from: i64,
        image: &ImageId,
        token: &str,
    ) -> Result<i64, PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "CreateLaunchTemplateVersion")?;
        let (number, new) = w.new_template_version(&self.account, &self.region, template, from, image, token)?;
        if new {
            self.record(w, "CreateLaunchTemplateVersion", image, format!("{template} v{number}"));
        }
        Ok(number)
    }

    async fn set_default_launch_template_version(&self, template: &str, version: i64) -> Result<(), PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "ModifyLaunchTemplate")?;
        w.set_default_template_version(&self.account, &self.region, template, version)
    }

    async fn disable_image(&self, id: &ImageId) -> Result<(), PortError> {
        self.set_disabled(id, true, "DisableImage").await
    }

    async fn enable_image(&self, id: &ImageId) -> Result<(), PortError> {
        self.set_disabled(id, false, "EnableImage").await
    }

    async fn family_copies(&self, key: &str, value: &str) -> Result<Vec<ImageInfo>, PortError> {
        self.latency().await;
        self.call(&mut lock(&self.world), "DescribeImages")?;
        Ok(self.own_images(|i| i.tag(key) == Some(value) && i.tag(SOURCE_IMAGE_TAG).is_some()))
    }

    async fn copy_image(&self, request: &CopyRequest) -> Result<ImageId, PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "CopyImage")?;
        w.copy_image(&self.region, &self.account, request)
    }

    async fn deregister_image(&self, id: &ImageId) -> Result<(), PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "DeregisterImage")?;
        match w.image(&self.region, id).map(|i| i.info.owner.as_ref() == Some(&self.account)) {
            Some(false) => Err(PortError::from_code("AuthFailure", format!("{id} is not owned by {}", self.account))),
            _ => {
                w.deregister(&self.region, id);
                self.record(w, "DeregisterImage", id, String::new());
                Ok(())
            }
        }
    }

    async fn launch_permissions(&self, id: &ImageId) -> Result<Vec<LaunchPermission>, PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "DescribeImageAttribute")?;
        match w.image(&self.region, id) {
            Some(image) => Ok(image.launch_permissions.clone()),
            None => Err(not_found(id)),
        }
    }

    async fn enable_deprecation(&self, id: &ImageId, time: &str) -> Result<(), PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "EnableImageDeprecation")?;
        // As EC2: a time in the past (or unreadable) is refused.
        let now = super::world::SIM_EPOCH_SECS + (w.now_ms / 1000) as i64;
        match crate::core::time::parse_rfc3339(time) {
            Some(t) if t >= now => {}
            _ => {
                return Err(PortError::from_code(
                    "InvalidParameterValue",
                    format!("The deprecation time {time} is not valid: it cannot be in the past"),
                ))
            }
        }
        let image = w.image_mut(&self.region, id).ok_or_else(|| not_found(id))?;
        image.info.traits.deprecation_time = Some(time.to_string());
        self.record(w, "EnableImageDeprecation", id, time.to_string());
        Ok(())
    }

    async fn enable_deregistration_protection(&self, id: &ImageId, with_cooldown: bool) -> Result<(), PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "EnableImageDeregistrationProtection")?;
        let account = self.account.clone();
        let image = w.image_mut(&self.region, id).ok_or_else(|| not_found(id))?;
        if image.info.owner.as_ref() != Some(&account) {
            return Err(PortError::from_code("AuthFailure", format!("{id} is not owned by {account}")));
        }
        image.info.traits.protection = crate::core::protection::Protection::On { cooldown: with_cooldown };
        self.record(w, "EnableImageDeregistrationProtection", id, with_cooldown.to_string());
        Ok(())
    }

    async fn add_launch_permissions(&self, id: &ImageId, grants: &[LaunchPermission]) -> Result<(), PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "ModifyImageAttribute")?;
        let account = self.account.clone();
        let image = w.image_mut(&self.region, id).ok_or_else(|| not_found(id))?;
        if image.info.owner.as_ref() != Some(&account) {
            return Err(PortError::from_code("AuthFailure", format!("{id} is not owned by {account}")));
        }
        for grant in grants {
            if !image.launch_permissions.contains(grant) {
                image.launch_permissions.push(grant.clone());
            }
        }
        let detail = grants.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        self.record(w, "ModifyImageAttribute", id, detail);
        Ok(())
    }

    async fn add_create_volume_permission(&self, snapshot: &SnapshotId, account: &AccountId) -> Result<(), PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "ModifySnapshotAttribute")?;
        let me = self.account.clone();
        let Some((owner, snap)) = w.snapshot_mut(&self.region, snapshot) else {
            return Err(PortError::from_code("InvalidSnapshot.NotFound", format!("{snapshot} does not exist")));
        };
        if *owner != me {
            return Err(PortError::from_code("AuthFailure", format!("{snapshot} is not owned by {me}")));
        }
        if snap.kms_key.as_deref() == Some(AWS_MANAGED_EBS_KEY) {
            return Err(PortError::from_code(
                "OperationNotPermitted",
                "Encrypted snapshots with EBS default key cannot be shared",
            ));
        }
        if !snap.create_volume.contains(account) {
            snap.create_volume.push(account.clone());
        }
        self.record(w, "ModifySnapshotAttribute", snapshot, account.to_string());
        Ok(())
    }

    async fn add_tags(&self, ids: &[ImageId], tags: &[Tag]) -> Result<(), PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "CreateTags")?;
        let allowed = [
            crate::core::provenance::GAVE_UP_TAG,
            crate::core::provenance::SHARED_TAG,
            crate::core::provenance::SHARE_FAILED_TAG,
            crate::core::provenance::KEPT_TAG,
        ];
        // As EC2 does, the whole call fails when one resource cannot be tagged.
        for id in ids {
            let image = w.image(&self.region, id).ok_or_else(|| not_found(id))?;
            let ours = image.info.tag(SOURCE_IMAGE_TAG).is_some();
            if !ours || tags.iter().any(|t| !allowed.contains(&t.key.as_str())) {
                return Err(PortError::from_code("UnauthorizedOperation", format!("not allowed to tag {id} so")));
            }
        }
        for id in ids {
            if let Some(image) = w.image_mut(&self.region, id) {
                for tag in tags {
                    image.info.tags.retain(|t| t.key != tag.key);
                    image.info.tags.push(tag.clone());
                }
            }
            let detail = tags.iter().map(|t| t.key.clone()).collect::<Vec<_>>().join(",");
            self.record(w, "CreateTags", id, detail);
        }
        Ok(())
    }

    async fn image_references(&self, ids: &[ImageId]) -> Result<Vec<(ImageId, String)>, PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "DescribeImageReferences")?;
        Ok(w.references
            .iter()
            .filter(|(id, _)| ids.contains(id))
            .flat_map(|(id, refs)| refs.iter().map(move |r| (id.clone(), r.clone())))
            .collect())
    }

    async fn deregister_with_snapshots(&self, id: &ImageId) -> Result<Vec<String>, PortError> {
        self.latency().await;
        let mut w = lock(&self.world);
        let w = self.call(&mut w, "DeregisterImage")?;
        let Some(image) = w.image(&self.region, id) else { return Ok(vec![]) };
        if image.info.owner.as_ref() != Some(&self.account) {
            return Err(PortError::from_code("AuthFailure", format!("{id} is not owned by {}", self.account)));
        }
        // One call: the image and its snapshots go together (EC2 reports the snapshots it could not delete).
        let snapshots = image.info.snapshots.clone();
        w.deregister(&self.region, id);
        self.record(w, "DeregisterImage", id, "with its snapshots".into());
        let mut left = Vec::new();
        for snapshot in &snapshots {
            match w.delete_snapshot(&self.region, &self.account, snapshot) {
                Ok(()) => self.record(w, "DeleteSnapshot", snapshot, String::new()),
                Err(e) => left.push(format!("{snapshot}: {}", e.code)),
            }
        }
        Ok(left)
    }
}
