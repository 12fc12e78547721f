//! The EC2 port over the simulated world.

use super::{lock, Shared};
use crate::core::errors::PortError;
use crate::core::ids::{ImageId, Region};
use crate::core::image::{ImageInfo, ImageState, LaunchPermission};
use crate::core::provenance::SOURCE_IMAGE_TAG;
use crate::ports::{CopyRequest, Ec2, Ec2Regions};

/// EC2's answer for an image it does not know.
fn not_found(id: &ImageId) -> PortError {
    PortError::from_code("InvalidAMIID.NotFound", format!("The image id '[{id}]' does not exist"))
}

/// Hands out simulated regions; counts how many distinct regions were touched.
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
        SimEc2 { world: self.world.clone(), region: region.clone() }
    }
}

/// EC2 in one simulated region. Every call yields to the scheduler first, so concurrent invocations interleave.
#[derive(Clone)]
pub struct SimEc2 {
    world: Shared,
    region: Region,
}

impl SimEc2 {
    fn own_images(&self, keep: impl Fn(&ImageInfo) -> bool) -> Vec<ImageInfo> {
        let mut w = lock(&self.world);
        w.settle(&self.region);
        let account = w.account.clone();
        w.images
            .get(&self.region)
            .map(|m| {
                m.values()
                    .filter(|i| i.info.owner.as_ref() == Some(&account) && keep(&i.info))
                    .map(|i| i.info.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Ec2 for SimEc2 {
    async fn describe_image(&self, id: &ImageId) -> Result<Option<ImageInfo>, PortError> {
        tokio::task::yield_now().await;
        let mut w = lock(&self.world);
        w.ec2_call("DescribeImages")?;
        Ok(w.image(&self.region, id).map(|i| i.info.clone()))
    }

    async fn describe_own_images(&self, ids: &[ImageId]) -> Result<Vec<ImageInfo>, PortError> {
        tokio::task::yield_now().await;
        lock(&self.world).ec2_call("DescribeImages")?;
        Ok(self.own_images(|i| ids.contains(&i.id)))
    }

    async fn pending_images(&self) -> Result<Vec<ImageId>, PortError> {
        tokio::task::yield_now().await;
        {
            let mut w = lock(&self.world);
            w.ec2_call("DescribeImages")?;
            w.pending_queries += 1;
        }
        Ok(self.own_images(|i| i.state == ImageState::Pending).into_iter().map(|i| i.id).collect())
    }

    async fn find_copies(&self, sources: &[ImageId]) -> Result<Vec<ImageInfo>, PortError> {
        tokio::task::yield_now().await;
        lock(&self.world).ec2_call("DescribeImages")?;
        Ok(self.own_images(|i| i.tag(SOURCE_IMAGE_TAG).is_some_and(|s| sources.iter().any(|x| x.as_str() == s))))
    }

    async fn copy_image(&self, request: &CopyRequest) -> Result<ImageId, PortError> {
        tokio::task::yield_now().await;
        let mut w = lock(&self.world);
        w.ec2_call("CopyImage")?;
        w.copy_image(&self.region, request)
    }

    async fn deregister_image(&self, id: &ImageId) -> Result<(), PortError> {
        tokio::task::yield_now().await;
        let mut w = lock(&self.world);
        w.ec2_call("DeregisterImage")?;
        w.deregister(&self.region, id);
        Ok(())
    }

    async fn launch_permissions(&self, id: &ImageId) -> Result<Vec<LaunchPermission>, PortError> {
        tokio::task::yield_now().await;
        let mut w = lock(&self.world);
        w.ec2_call("DescribeImageAttribute")?;
        match w.image(&self.region, id) {
            Some(image) => Ok(image.launch_permissions.clone()),
            None => Err(not_found(id)),
        }
    }

    async fn enable_deprecation(&self, id: &ImageId, time: &str) -> Result<(), PortError> {
        tokio::task::yield_now().await;
        let mut w = lock(&self.world);
        w.ec2_call("EnableImageDeprecation")?;
        let image = w.image_mut(&self.region, id).ok_or_else(|| not_found(id))?;
        image.info.traits.deprecation_time = Some(time.to_string());
        Ok(())
    }

    async fn add_launch_permissions(&self, id: &ImageId, grants: &[LaunchPermission]) -> Result<(), PortError> {
        tokio::task::yield_now().await;
        let mut w = lock(&self.world);
        w.ec2_call("ModifyImageAttribute")?;
        let image = w.image_mut(&self.region, id).ok_or_else(|| not_found(id))?;
        for grant in grants {
            if !image.launch_permissions.contains(grant) {
                image.launch_permissions.push(grant.clone());
            }
        }
        Ok(())
    }
}
