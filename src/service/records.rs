//! EC2 at a place, with the function's record of its copies: where EC2's record of a copy's source is not enough
//! (the source's own region, where CreateImage records the same source), the images read there that claim to be
//! copies are checked against the record (`Origin::recorded`), and every copy CopyImage returns there is recorded
//! before the job goes on. Elsewhere (every home-account place, every other region) it adds no call.

use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Place, SnapshotId};
use crate::core::image::{ImageInfo, LaunchPermission, Tag};
use crate::core::launch_templates::Version;
use crate::core::provenance::{false_claim, SOURCE_IMAGE_TAG};
use crate::ports::{CopyRecords, CopyRequest, Ec2};
use std::sync::Arc;
use tracing::warn;

/// The EC2 port of one place, recording and checking copies in the source's own region.
pub struct PlaceEc2<E> {
    inner: E,
    place: Place,
    /// The place's account, when known (the function's own account is learnt per invocation).
    owner: Option<AccountId>,
    records: Arc<dyn CopyRecords>,
}

impl<E: Ec2> PlaceEc2<E> {
    pub fn new(inner: E, place: Place, home: Option<&AccountId>, records: Arc<dyn CopyRecords>) -> Self {
        let owner = place.account.clone().or_else(|| home.cloned());
        Self { inner, place, owner, records }
    }

    /// When the source of `image`, read here, was made, if it is this product's copy here
    /// (`provenance::source_created`).
    pub fn source_created(&self, image: &ImageInfo) -> Option<i64> {
        self.owner.as_ref().and_then(|owner| crate::core::provenance::source_created(image, owner, &self.place.region))
    }

    /// The record's key of this place: `ACCOUNT/REGION` (only target accounts copy into a source's region).
    fn key(&self) -> Option<String> {
        self.place.account.as_ref().map(|a| format!("copy/{a}/{}", self.place.region))
    }

    /// Marks the images whose EC2 origin is in this very region and that claim to be copies with whether the
    /// function recorded them: one read, only when there is such an image.
    async fn checked(&self, mut images: Vec<ImageInfo>) -> Result<Vec<ImageInfo>, PortError> {
        let local = |i: &ImageInfo| {
            i.origin.as_ref().is_some_and(|o| o.region == self.place.region) && i.tag(SOURCE_IMAGE_TAG).is_some()
        };
        let ids: Vec<ImageId> = images.iter().filter(|i| local(i)).map(|i| i.id.clone()).collect();
        let Some(key) = self.key().filter(|_| !ids.is_empty()) else { return Ok(images) };
        let recorded = self.records.recorded(&key, &ids).await.map_err(|e| table_fault(e, "reading"))?;
        for image in images.iter_mut().filter(|i| recorded.contains(&i.id)) {
            if let Some(origin) = image.origin.as_mut() {
                origin.recorded = true;
            }
        }
        Ok(images)
    }
}

impl<E: Ec2> Ec2 for PlaceEc2<E> {
    async fn describe_image(&self, id: &ImageId) -> Result<Option<ImageInfo>, PortError> {
        match self.inner.describe_image(id).await? {
            Some(image) => Ok(self.checked(vec![image]).await?.pop()),
            None => Ok(None),
        }
    }

    async fn describe_images(&self, ids: &[ImageId]) -> Result<Vec<ImageInfo>, PortError> {
        self.checked(self.inner.describe_images(ids).await?).await
    }

    async fn describe_own_images(&self, ids: &[ImageId]) -> Result<Vec<ImageInfo>, PortError> {
        self.checked(self.inner.describe_own_images(ids).await?).await
    }

    async fn pending_images(&self) -> Result<Vec<ImageInfo>, PortError> {
        self.checked(self.inner.pending_images().await?).await
    }

    async fn source_images_of(&self, owners: &[AccountId]) -> Result<Vec<ImageInfo>, PortError> {
        self.inner.source_images_of(owners).await
    }

    /// The images that claim to be copies of `sources` (their provenance tag); each whose claim EC2's record (or
    /// the function's) does not confirm is logged here, where it is found, with what it claims: the core never
    /// takes it for a copy.
    async fn find_copies(&self, sources: &[ImageId]) -> Result<Vec<ImageInfo>, PortError> {
        let found = self.checked(self.inner.find_copies(sources).await?).await?;
        if let Some(owner) = &self.owner {
            for claim in found.iter().filter_map(|i| false_claim(i, owner, &self.place.region)) {
                warn!(claim = %claim, "an image claims to be our copy and is not: never shared, changed or deleted");
            }
        }
        Ok(found)
    }

    async fn launch_template_versions(&self, template: &str) -> Result<Vec<Version>, PortError> {
        self.inner.launch_template_versions(template).await
    }

    async fn create_launch_template_version(
        &self,
        template: &str,
        from: i64,
        image: &ImageId,
        token: &str,
    ) -> Result<i64, PortError> {
        self.inner.create_launch_template_version(template, from, image, token).await
    }

    async fn set_default_launch_template_version(&self, template: &str, version: i64) -> Result<(), PortError> {
        self.inner.set_default_launch_template_version(template, version).await
    }

    async fn family_copies(&self, key: &str, value: &str) -> Result<Vec<ImageInfo>, PortError> {
        self.checked(self.inner.family_copies(key, value).await?).await
    }

    /// CopyImage; in the source's own region its answer is recorded before it is returned (a failed record fails
    /// the call: the retry's CopyImage, with the same ClientToken, answers the same image, recorded then).
    async fn copy_image(&self, request: &CopyRequest) -> Result<ImageId, PortError> {
        let copy = self.inner.copy_image(request).await?;
        if let Some(key) = self.key().filter(|_| request.source_region == self.place.region) {
            let doing = format!("recording copy {copy} in");
            self.records.record(&key, &copy).await.map_err(|e| table_fault(e, &doing))?;
        }
        Ok(copy)
    }

    async fn deregister_image(&self, id: &ImageId) -> Result<(), PortError> {
        self.inner.deregister_image(id).await
    }

    async fn launch_permissions(&self, id: &ImageId) -> Result<Vec<LaunchPermission>, PortError> {
        self.inner.launch_permissions(id).await
    }

    async fn enable_deprecation(&self, id: &ImageId, time: &str) -> Result<(), PortError> {
        self.inner.enable_deprecation(id, time).await
    }

    async fn enable_deregistration_protection(&self, id: &ImageId, with_cooldown: bool) -> Result<(), PortError> {
        self.inner.enable_deregistration_protection(id, with_cooldown).await
    }

    async fn disable_image(&self, id: &ImageId) -> Result<(), PortError> {
        self.inner.disable_image(id).await
    }

    async fn enable_image(&self, id: &ImageId) -> Result<(), PortError> {
        self.inner.enable_image(id).await
    }

    async fn add_launch_permissions(&self, id: &ImageId, grants: &[LaunchPermission]) -> Result<(), PortError> {
        self.inner.add_launch_permissions(id, grants).await
    }

    async fn add_create_volume_permission(&self, snapshot: &SnapshotId, account: &AccountId) -> Result<(), PortError> {
        self.inner.add_create_volume_permission(snapshot, account).await
    }

    async fn add_tags(&self, ids: &[ImageId], tags: &[Tag]) -> Result<(), PortError> {
        self.inner.add_tags(ids, tags).await
    }

    async fn image_references(&self, ids: &[ImageId]) -> Result<Vec<(ImageId, String)>, PortError> {
        self.inner.image_references(ids).await
    }

    async fn deregister_with_snapshots(&self, id: &ImageId) -> Result<Vec<String>, PortError> {
        self.inner.deregister_with_snapshots(id).await
    }
}

/// A fault of the record's store (the admission table) is never a copy's failure: the job waits, as for capacity,
/// until the table answers (its age still ends it at JOB_MAX_AGE_HOURS), whatever the fault's own class.
fn table_fault(e: PortError, doing: &str) -> PortError {
    PortError {
        class: crate::core::errors::ErrorClass::Capacity,
        message: format!("{doing} the function's record of its copies (ADMISSION_TABLE): {}", e.message),
        code: e.code,
    }
}
